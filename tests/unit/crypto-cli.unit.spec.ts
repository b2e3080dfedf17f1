/**
 * `carbonpay crypto …` on the vectors of /work/shared/vectors/sm.md, and every kind of bad usage or input.
 */
import { runCrypto } from '../../app';

interface CommandResult {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

async function run(args: readonly string[]): Promise<CommandResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exitCode = await runCrypto(args, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { exitCode, stdout, stderr };
}

/** Exit 0 and exactly one line on stdout, returned. */
async function outputOf(args: readonly string[]): Promise<string> {
  const result = await run(args);
  expect(result).toEqual({ exitCode: 0, stdout: [expect.any(String)], stderr: [] });
  return result.stdout[0]!;
}

const hexOfAscii = (text: string): string => Buffer.from(text, 'ascii').toString('hex');

function flipBitInHex(hex: string, bitIndex: number): string {
  const bytes = Buffer.from(hex, 'hex');
  bytes[bitIndex >> 3]! ^= 0x80 >> (bitIndex & 7);
  return bytes.toString('hex');
}

// GM/T 0003.5 signature example, as printed in sm.md (upper case).
const VECTOR_PRIVATE_KEY_HEX = '3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8';
const VECTOR_PUBLIC_KEY_HEX =
  '04' +
  '09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020' +
  'CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13';
const VECTOR_USER_ID = '1234567812345678';
const VECTOR_MESSAGE_HEX = hexOfAscii('message digest');
const VECTOR_R_HEX = 'F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3';
const VECTOR_S_HEX = 'B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA';
const VECTOR_RAW_SIGNATURE_HEX = VECTOR_R_HEX + VECTOR_S_HEX;
const VECTOR_DER_SIGNATURE_HEX = `3046022100${VECTOR_R_HEX}022100${VECTOR_S_HEX}`;

const SM4_VECTOR_KEY_HEX = '0123456789abcdeffedcba9876543210';
const SM4_VECTOR_CIPHERTEXT_HEX = '681edf34d206965e86b3e94f536e4246';

const verifyVectorArgs = (overrides: { sig?: string; msg?: string; id?: string } = {}): string[] => [
  'sm2-verify',
  '--pub',
  VECTOR_PUBLIC_KEY_HEX,
  '--sig',
  overrides.sig ?? VECTOR_RAW_SIGNATURE_HEX,
  '--msg',
  overrides.msg ?? VECTOR_MESSAGE_HEX,
  '--id',
  overrides.id ?? VECTOR_USER_ID,
];

describe('carbonpay crypto sm3', () => {
  test('GB/T 32905 A.1 and A.2: "abc" and "abcd" × 16', async () => {
    expect(await outputOf(['sm3', '--hex', hexOfAscii('abc')])).toBe(
      '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0',
    );
    expect(await outputOf(['sm3', '--hex', hexOfAscii('abcd'.repeat(16)).toUpperCase()])).toBe(
      'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732',
    );
  });
});

describe('carbonpay crypto sm4', () => {
  test('GB/T 32907 A.1, ECB without padding, both ways', async () => {
    const ecb = ['sm4', '--mode', 'ecb', '--key', SM4_VECTOR_KEY_HEX, '--no-padding'];
    expect(await outputOf([...ecb, '--hex', SM4_VECTOR_KEY_HEX])).toBe(SM4_VECTOR_CIPHERTEXT_HEX);
    expect(await outputOf([...ecb, '--hex', SM4_VECTOR_CIPHERTEXT_HEX, '--decrypt'])).toBe(SM4_VECTOR_KEY_HEX);
  });

  test('ECB pads with PKCS#7 by default: a whole block gains a block of 10s', async () => {
    const ecb = ['sm4', '--mode', 'ecb', '--key', SM4_VECTOR_KEY_HEX];
    const ciphertext = await outputOf([...ecb, '--hex', SM4_VECTOR_KEY_HEX]);
    expect(ciphertext).toHaveLength(64);
    expect(ciphertext.slice(0, 32)).toBe(SM4_VECTOR_CIPHERTEXT_HEX);
    const paddingBlock = await outputOf([...ecb, '--no-padding', '--hex', '10'.repeat(16)]);
    expect(ciphertext.slice(32)).toBe(paddingBlock);
    expect(await outputOf([...ecb, '--hex', ciphertext, '--decrypt'])).toBe(SM4_VECTOR_KEY_HEX);
  });

  test('CBC vector (OpenSSL evpciph_sm4.txt) without padding, and a padded round trip', async () => {
    const cbc = ['sm4', '--mode', 'cbc', '--key', SM4_VECTOR_KEY_HEX, '--iv', SM4_VECTOR_KEY_HEX];
    const twoBlocks = SM4_VECTOR_KEY_HEX.repeat(2);
    const expected = '2677f46b09c122cc975533105bd4a22af6125f7275ce552c3a2bbcf533de8a3b';
    expect(await outputOf([...cbc, '--no-padding', '--hex', twoBlocks])).toBe(expected);
    expect(await outputOf([...cbc, '--no-padding', '--decrypt', '--hex', expected])).toBe(twoBlocks);

    const plaintext = hexOfAscii('card 6222 0000 1234'); // 19 bytes: padded to 32
    const ciphertext = await outputOf([...cbc, '--hex', plaintext]);
    expect(ciphertext).toHaveLength(64);
    expect(await outputOf([...cbc, '--decrypt', '--hex', ciphertext])).toBe(plaintext);
  });
});

describe('carbonpay crypto sm2-verify', () => {
  test('the GM/T 0003.5 signature is valid: exit 0', async () => {
    expect(await run(verifyVectorArgs())).toEqual({ exitCode: 0, stdout: ['valid'], stderr: [] });
  });

  test('without --id the default user id applies, which is the example one', async () => {
    const withoutId = verifyVectorArgs().slice(0, -2);
    expect(withoutId).not.toContain('--id');
    expect(await run(withoutId)).toEqual({ exitCode: 0, stdout: ['valid'], stderr: [] });
  });

  test.each([0, 255, 256, 511])('signature bit %i flipped: exit 1', async (bitIndex) => {
    const sig = flipBitInHex(VECTOR_RAW_SIGNATURE_HEX, bitIndex);
    expect(await run(verifyVectorArgs({ sig }))).toEqual({ exitCode: 1, stdout: ['invalid'], stderr: [] });
  });

  test('message bit flipped: exit 1', async () => {
    const msg = flipBitInHex(VECTOR_MESSAGE_HEX, 7);
    expect(await run(verifyVectorArgs({ msg }))).toEqual({ exitCode: 1, stdout: ['invalid'], stderr: [] });
  });

  test.each(['1234567812345679', '', 'ALICE123@YAHOO.COM'])(
    'user id %j instead of the example one: exit 1',
    async (id) => {
      expect(await run(verifyVectorArgs({ id }))).toEqual({ exitCode: 1, stdout: ['invalid'], stderr: [] });
    },
  );

  test('--der: the DER form is valid, a flipped s is not', async () => {
    const der = await run([...verifyVectorArgs({ sig: VECTOR_DER_SIGNATURE_HEX }), '--der']);
    expect(der).toEqual({ exitCode: 0, stdout: ['valid'], stderr: [] });
    const flippedS = `3046022100${VECTOR_R_HEX}022100${flipBitInHex(VECTOR_S_HEX, 255)}`;
    const tampered = await run([...verifyVectorArgs({ sig: flippedS }), '--der']);
    expect(tampered).toEqual({ exitCode: 1, stdout: ['invalid'], stderr: [] });
  });
});

describe('carbonpay crypto sm2-sign and sm2-keygen', () => {
  test('sign then verify, raw and --der; another message or id does not verify', async () => {
    const msg = hexOfAscii('POST /v1/payments 1732500000 n-42');
    const sign = ['sm2-sign', '--key', VECTOR_PRIVATE_KEY_HEX, '--msg', msg];
    const raw = await outputOf(sign);
    expect(raw).toMatch(/^[0-9a-f]{128}$/);
    expect(await run(verifyVectorArgs({ sig: raw, msg }))).toEqual({ exitCode: 0, stdout: ['valid'], stderr: [] });

    const der = await outputOf([...sign, '--der']);
    expect(der).toMatch(/^30[0-9a-f]+$/);
    expect((await run([...verifyVectorArgs({ sig: der, msg }), '--der'])).exitCode).toBe(0);
    expect((await run([...verifyVectorArgs({ sig: der, msg: VECTOR_MESSAGE_HEX }), '--der'])).exitCode).toBe(1);

    const partnerId = 'partner-7@example.cn';
    const withId = await outputOf([...sign, '--id', partnerId]);
    expect((await run(verifyVectorArgs({ sig: withId, msg, id: partnerId }))).exitCode).toBe(0);
    expect((await run(verifyVectorArgs({ sig: withId, msg }))).exitCode).toBe(1);
  });

  test('keygen prints a fresh private and public key that sign and verify together', async () => {
    const line = await outputOf(['sm2-keygen']);
    expect(line).toMatch(/^[0-9a-f]{64} 04[0-9a-f]{128}$/);
    const [privateKeyHex, publicKeyHex] = line.split(' ') as [string, string];
    expect(await outputOf(['sm2-keygen'])).not.toBe(line);

    const msg = hexOfAscii('onboarding check');
    const sig = await outputOf(['sm2-sign', '--key', privateKeyHex, '--msg', msg]);
    const verify = ['sm2-verify', '--pub', publicKeyHex, '--sig', sig, '--msg', msg];
    expect(await run(verify)).toEqual({ exitCode: 0, stdout: ['valid'], stderr: [] });
    const otherPublicKeyHex = (await outputOf(['sm2-keygen'])).split(' ')[1]!;
    expect((await run(['sm2-verify', '--pub', otherPublicKeyHex, '--sig', sig, '--msg', msg])).exitCode).toBe(1);
  });
});

describe('carbonpay crypto help', () => {
  test('prints every subcommand, and says sm4 pads with PKCS#7 unless --no-padding', async () => {
    const { exitCode, stdout, stderr } = await run(['help']);
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: [] });
    for (const subcommand of ['sm3', 'sm4', 'sm2-sign', 'sm2-verify', 'sm2-keygen']) {
      expect(stdout.some((line) => line.startsWith(`  carbonpay crypto ${subcommand} `))).toBe(true);
    }
    expect(stdout.find((line) => line.includes('crypto sm4 '))).toContain('PKCS#7 padding unless --no-padding');
  });
});

describe('bad usage or input: exit 2, nothing on stdout, one line on stderr', () => {
  const ecb = ['sm4', '--mode', 'ecb', '--key', SM4_VECTOR_KEY_HEX];
  const cbc = ['sm4', '--mode', 'cbc', '--key', SM4_VECTOR_KEY_HEX];
  const block = SM4_VECTOR_KEY_HEX;
  const sign = ['sm2-sign', '--key', VECTOR_PRIVATE_KEY_HEX];
  const cases: ReadonlyArray<[string, string[], RegExp]> = [
    ['no subcommand', [], /^carbonpay: crypto: a subcommand is required; expected one of sm3, sm4, /],
    ['unknown subcommand', ['sm9', '--hex', '00'], /^carbonpay: crypto: unknown subcommand "sm9"/],
    ['missing option', ['sm3'], /^carbonpay: crypto sm3: missing --hex \(usage: carbonpay crypto sm3 --hex <data>\)$/],
    ['unknown option', ['sm3', '--hex', '00', '--base64'], /^carbonpay: crypto sm3: unknown option "--base64"/],
    ['option of another subcommand', ['sm3', '--hex', '00', '--der'], /unknown option "--der"/],
    ['option given twice', ['sm3', '--hex', '00', '--hex', '01'], /--hex is given twice/],
    ['option without its value', ['sm3', '--hex'], /--hex needs a value/],
    ['option followed by another option', [...ecb, '--hex', '--decrypt'], /--hex needs a value/],
    ['stray argument, not echoed', ['sm3', '--hex', '00', 'deadbeef'], /unexpected argument at position 3: /],
    ['odd-length hex', ['sm3', '--hex', 'abc'], /^carbonpay: crypto sm3: --hex is not hex: .* got 3 characters$/],
    ['non-hex characters', ['sm3', '--hex', '0x00'], /--hex is not hex/],
    ['sm4 without --mode', ['sm4', '--key', block, '--hex', block], /missing --mode/],
    [
      'sm4 --mode ofb',
      ['sm4', '--mode', 'ofb', '--key', block, '--hex', block],
      /--mode must be ecb or cbc, got "ofb"/,
    ],
    [
      'sm4 key of 15 bytes',
      ['sm4', '--mode', 'ecb', '--key', block.slice(2), '--hex', block],
      /SM4 key must be 16 bytes, got 15/,
    ],
    ['sm4 key not hex', ['sm4', '--mode', 'ecb', '--key', 'k'.repeat(32), '--hex', block], /--key is not hex/],
    ['sm4 ecb with --iv', [...ecb, '--iv', block, '--hex', block], /--iv is for --mode cbc only/],
    ['sm4 cbc without --iv', [...cbc, '--hex', block], /missing --iv/],
    [
      'sm4 cbc IV of 12 bytes',
      [...cbc, '--iv', '00'.repeat(12), '--hex', block],
      /SM4-CBC IV must be 16 bytes, got 12/,
    ],
    [
      'sm4 --no-padding, partial block',
      [...ecb, '--no-padding', '--hex', '00'.repeat(17)],
      /whole number of 16-byte blocks/,
    ],
    ['sm4 --decrypt, partial block', [...ecb, '--decrypt', '--hex', '00'.repeat(20)], /whole number of 16-byte blocks/],
    [
      'sm4 --decrypt, bad padding',
      [...ecb, '--decrypt', '--hex', SM4_VECTOR_CIPHERTEXT_HEX],
      /cannot decrypt: .*padding/,
    ],
    [
      'sm2-sign key of 31 bytes',
      ['sm2-sign', '--key', VECTOR_PRIVATE_KEY_HEX.slice(2), '--msg', '00'],
      /SM2 private key must be 32 bytes, got 31/,
    ],
    [
      'sm2-sign key out of range',
      ['sm2-sign', '--key', '00'.repeat(32), '--msg', '00'],
      /SM2 private key is out of range/,
    ],
    ['sm2-sign without --msg', sign, /missing --msg/],
    ['sm2-verify without --sig', ['sm2-verify', '--pub', VECTOR_PUBLIC_KEY_HEX, '--msg', '00'], /missing --sig/],
    [
      'sm2-verify key without 04',
      verifyVectorArgs().map((arg) => (arg === VECTOR_PUBLIC_KEY_HEX ? arg.slice(2) : arg)),
      /SM2 public key must be 65 bytes starting 04/,
    ],
    [
      'sm2-verify key off the curve',
      verifyVectorArgs().map((arg) => (arg === VECTOR_PUBLIC_KEY_HEX ? `${arg.slice(0, -2)}14` : arg)),
      /not a point on the SM2 curve/,
    ],
    [
      'sm2-verify raw signature of 63 bytes',
      verifyVectorArgs({ sig: VECTOR_RAW_SIGNATURE_HEX.slice(2) }),
      /SM2 raw signature must be 64 bytes/,
    ],
    [
      'sm2-verify DER signature without --der',
      verifyVectorArgs({ sig: VECTOR_DER_SIGNATURE_HEX }),
      /SM2 raw signature must be 64 bytes \(r ‖ s\), got 72/,
    ],
    ['sm2-verify --der on a raw signature', [...verifyVectorArgs(), '--der'], /SM2 DER signature is not/],
    ['sm2-verify user id over 8191 bytes', verifyVectorArgs({ id: 'a'.repeat(8192) }), /SM2 user id is 8192 bytes/],
    ['sm2-keygen with an option', ['sm2-keygen', '--der'], /^carbonpay: crypto sm2-keygen: unknown option "--der"/],
  ];

  test.each(cases)('%s', async (_description, args, stderrPattern) => {
    const { exitCode, stdout, stderr } = await run(args);
    expect({ exitCode, stdout, stderrLines: stderr.length }).toEqual({ exitCode: 2, stdout: [], stderrLines: 1 });
    expect(stderr[0]).toMatch(/^carbonpay: /);
    expect(stderr[0]).toMatch(stderrPattern);
  });

  test('errors never repeat a key', async () => {
    const secretLookingKey = 'f'.repeat(31);
    const { stderr } = await run(['sm2-sign', '--key', secretLookingKey, '--msg', '00']);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).not.toContain(secretLookingKey);
    const stray = await run(['sm2-sign', VECTOR_PRIVATE_KEY_HEX, '--msg', '00']);
    expect(stray.stderr).toHaveLength(1);
    expect(stray.stderr[0]).not.toContain(VECTOR_PRIVATE_KEY_HEX);
  });
});
