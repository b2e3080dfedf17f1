import {
  CryptoDecryptionError,
  CryptoInputError,
  SM2_DEFAULT_USER_ID,
  Sm2PrivateKey,
  Sm2PublicKey,
  sm2Sign,
  sm2Verify,
  sm3Digest,
  sm4CbcDecrypt,
  sm4CbcEncrypt,
  sm4EcbDecrypt,
  sm4EcbEncrypt,
} from '../../security';
import type { Sm2SignatureOptions, Sm4Padding } from '../../security';
import type { Io } from './io';

/** What a subcommand accepts: options followed by a value, and flags that stand alone. */
interface Subcommand {
  readonly usage: string;
  readonly valueOptions: readonly string[];
  readonly flagOptions: readonly string[];
  /** Writes its result to stdout and returns the exit code; throws on bad usage or input. */
  run(options: ParsedOptions, io: Io): number;
}

const SUBCOMMANDS = new Map<string, Subcommand>([
  [
    'sm3',
    {
      usage: 'carbonpay crypto sm3 --hex <data>',
      valueOptions: ['hex'],
      flagOptions: [],
      run: runSm3,
    },
  ],
  [
    'sm4',
    {
      usage:
        'carbonpay crypto sm4 --mode ecb|cbc --key <hex> [--iv <hex>] --hex <data> [--decrypt] [--no-padding]' +
        '  (PKCS#7 padding unless --no-padding; --iv with cbc only)',
      valueOptions: ['mode', 'key', 'iv', 'hex'],
      flagOptions: ['decrypt', 'no-padding'],
      run: runSm4,
    },
  ],
  [
    'sm2-sign',
    {
      usage:
        'carbonpay crypto sm2-sign --key <hex> --msg <hex> [--id <uid>] [--der]' +
        `  (raw r‖s unless --der; user id ${SM2_DEFAULT_USER_ID} unless --id)`,
      valueOptions: ['key', 'msg', 'id'],
      flagOptions: ['der'],
      run: runSm2Sign,
    },
  ],
  [
    'sm2-verify',
    {
      usage:
        'carbonpay crypto sm2-verify --pub <hex> --sig <hex> --msg <hex> [--id <uid>] [--der]' +
        `  (exit 0 valid, 1 invalid; raw r‖s unless --der; user id ${SM2_DEFAULT_USER_ID} unless --id)`,
      valueOptions: ['pub', 'sig', 'msg', 'id'],
      flagOptions: ['der'],
      run: runSm2Verify,
    },
  ],
  [
    'sm2-keygen',
    {
      usage: 'carbonpay crypto sm2-keygen  (prints "<private key> <public key>": 32 bytes d, 65 bytes 04‖x‖y)',
      valueOptions: [],
      flagOptions: [],
      run: runSm2Keygen,
    },
  ],
]);

const CRYPTO_USAGE = [
  'usage: carbonpay crypto <subcommand> [options]; data, keys and results in hex, results on one line',
  ...[...SUBCOMMANDS.values()].map((subcommand) => `  ${subcommand.usage}`),
  'exit codes: 0 done or signature valid, 1 signature invalid, 2 bad usage or input (one line on stderr)',
];

/**
 * `carbonpay crypto <subcommand>`: SM2/SM3/SM4 for partner onboarding and support, through the security module.
 * Exit codes: 0 done (or signature valid), 1 signature invalid (sm2-verify), 2 bad usage or input, which includes
 * a ciphertext that does not decrypt under the given key; then stderr holds exactly one line and stdout nothing.
 */
export async function runCrypto(args: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = args;
  if (name === 'help' || name === '--help') {
    CRYPTO_USAGE.forEach((line) => io.stdout(line));
    return 0;
  }
  const subcommand = name === undefined ? undefined : SUBCOMMANDS.get(name);
  if (name === undefined || subcommand === undefined) {
    const problem = name === undefined ? 'a subcommand is required' : `unknown subcommand ${JSON.stringify(name)}`;
    const known = [...SUBCOMMANDS.keys()].join(', ');
    io.stderr(`carbonpay: crypto: ${problem}; expected one of ${known} (see carbonpay crypto help)`);
    return 2;
  }
  try {
    return subcommand.run(parseOptions(rest, subcommand), io);
  } catch (error) {
    const reason = describeRefusal(error, subcommand);
    if (reason === undefined) throw error;
    io.stderr(`carbonpay: crypto ${name}: ${reason}`);
    return 2;
  }
}

// ---- subcommands ----------------------------------------------------------------------------------------------

function runSm3(options: ParsedOptions, io: Io): number {
  io.stdout(sm3Digest(options.hex('hex')).toString('hex'));
  return 0;
}

function runSm4(options: ParsedOptions, io: Io): number {
  const mode = options.required('mode');
  if (mode !== 'ecb' && mode !== 'cbc') {
    throw new CommandLineError(`--mode must be ecb or cbc, got ${JSON.stringify(mode)}`, { showUsage: true });
  }
  if (mode === 'ecb' && options.has('iv')) {
    throw new CommandLineError('--iv is for --mode cbc only: ECB takes no IV', { showUsage: true });
  }
  const key = options.hex('key');
  const data = options.hex('hex');
  const padding: Sm4Padding = options.flag('no-padding') ? 'none' : 'pkcs7';
  const decrypt = options.flag('decrypt');
  let result: Buffer;
  if (mode === 'ecb') {
    const params = { key, padding };
    result = decrypt ? sm4EcbDecrypt(data, params) : sm4EcbEncrypt(data, params);
  } else {
    const params = { key, iv: options.hex('iv'), padding };
    result = decrypt ? sm4CbcDecrypt(data, params) : sm4CbcEncrypt(data, params);
  }
  io.stdout(result.toString('hex'));
  return 0;
}

function runSm2Sign(options: ParsedOptions, io: Io): number {
  const privateKey = Sm2PrivateKey.from(options.hex('key'));
  io.stdout(sm2Sign(options.hex('msg'), privateKey, signatureOptions(options)).toString('hex'));
  return 0;
}

function runSm2Verify(options: ParsedOptions, io: Io): number {
  const publicKey = Sm2PublicKey.from(options.hex('pub'));
  const valid = sm2Verify(options.hex('msg'), options.hex('sig'), publicKey, signatureOptions(options));
  io.stdout(valid ? 'valid' : 'invalid');
  return valid ? 0 : 1;
}

function runSm2Keygen(_options: ParsedOptions, io: Io): number {
  const privateKey = Sm2PrivateKey.generate();
  io.stdout(`${privateKey.exportBytes().toString('hex')} ${privateKey.publicKey.toHex()}`);
  return 0;
}

function signatureOptions(options: ParsedOptions): Sm2SignatureOptions {
  return {
    signatureEncoding: options.flag('der') ? 'der' : 'raw',
    userId: options.value('id') ?? SM2_DEFAULT_USER_ID,
  };
}

// ---- options --------------------------------------------------------------------------------------------------

/** Bad usage (unknown, missing or repeated options) or input this file checks itself (hex). */
class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
  readonly showUsage: boolean;
  constructor(message: string, options: { showUsage: boolean }) {
    super(message);
    this.showUsage = options.showUsage;
  }
}

const HEX_PATTERN = /^(?:[0-9a-fA-F]{2})*$/;

class ParsedOptions {
  constructor(
    private readonly valueByName: ReadonlyMap<string, string>,
    private readonly flagNames: ReadonlySet<string>,
  ) {}

  has(name: string): boolean {
    return this.valueByName.has(name);
  }

  value(name: string): string | undefined {
    return this.valueByName.get(name);
  }

  required(name: string): string {
    const value = this.valueByName.get(name);
    if (value === undefined) throw new CommandLineError(`missing --${name}`, { showUsage: true });
    return value;
  }

  /** The option's bytes; either case of hex, no `0x`, no spaces. The error never repeats the value (keys). */
  hex(name: string): Buffer {
    const text = this.required(name);
    if (!HEX_PATTERN.test(text)) {
      throw new CommandLineError(
        `--${name} is not hex: expected an even number of 0-9a-f characters, got ${text.length} characters`,
        { showUsage: false },
      );
    }
    return Buffer.from(text, 'hex');
  }

  flag(name: string): boolean {
    return this.flagNames.has(name);
  }
}

/** `--name value` and `--flag` only; a value may be empty (`--id ''`) but may not start with `--`. */
function parseOptions(args: readonly string[], subcommand: Subcommand): ParsedOptions {
  const valueByName = new Map<string, string>();
  const flagNames = new Set<string>();
  for (let index = 0; index < args.length; index++) {
    const argument = args[index]!;
    if (!argument.startsWith('--')) {
      // Not echoed: a stray positional argument is often a key pasted without its option.
      throw new CommandLineError(`unexpected argument at position ${index + 1}: options are --name value`, {
        showUsage: true,
      });
    }
    const name = argument.slice(2);
    if (valueByName.has(name) || flagNames.has(name)) {
      throw new CommandLineError(`${argument} is given twice`, { showUsage: true });
    }
    if (subcommand.flagOptions.includes(name)) {
      flagNames.add(name);
    } else if (subcommand.valueOptions.includes(name)) {
      const value = args[index + 1];
      if (value === undefined || value.startsWith('--')) {
        throw new CommandLineError(`${argument} needs a value`, { showUsage: true });
      }
      valueByName.set(name, value);
      index++;
    } else {
      throw new CommandLineError(`unknown option ${JSON.stringify(argument)}`, { showUsage: true });
    }
  }
  return new ParsedOptions(valueByName, flagNames);
}

/** The one stderr line for a refusal, or undefined for an error that is a bug and must propagate. */
function describeRefusal(error: unknown, subcommand: Subcommand): string | undefined {
  if (error instanceof CommandLineError) {
    return error.showUsage ? `${error.message} (usage: ${subcommand.usage})` : error.message;
  }
  if (error instanceof CryptoInputError) return error.message;
  if (error instanceof CryptoDecryptionError) return `cannot decrypt: ${error.message}`;
  return undefined;
}
