/**
 * node -r ts-node/register/transpile-only bench/sm-crypto.ts [--seconds N] [--json]
 *
 * Single-thread throughput of the security/ crypto module: SM2 through sm-crypto-v2 (our wrapper and the library
 * called bare, to show the wrapper's cost), Node's native SM2 for reference (it hashes Z over an empty user id, so
 * it cannot serve the standard signature), and SM3 / SM4 in MB/s. Each figure runs for N seconds after a short
 * warm-up; every operation's result is checked, so a fast wrong answer cannot pass for a fast one.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { sm2 as sm2Library } from 'sm-crypto-v2';
import smCryptoV2Package from 'sm-crypto-v2/package.json';
import {
  SM2_DEFAULT_USER_ID,
  sm2Decrypt,
  sm2Encrypt,
  Sm2PrivateKey,
  Sm2PublicKey,
  sm2Sign,
  sm2Verify,
  sm3Digest,
  sm4CbcEncrypt,
  sm4GcmEncrypt,
} from '../security';

interface Options {
  seconds: number;
  json: boolean;
}

interface Measurement {
  name: string;
  opsPerSecond: number;
  microsecondsPerOp: number;
  megabytesPerSecond?: number;
}

const WARMUP_SECONDS = 0.3;
const SIGNED_MESSAGE_BYTES = 256;
const SM2_ENCRYPTED_BYTES = 32;
const BULK_INPUT_BYTES = 64 * 1024;

function parseOptions(argv: string[]): Options {
  const options: Options = { seconds: 2, json: false };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--json') options.json = true;
    else if (argument === '--seconds') {
      const seconds = Number(argv[++i]);
      if (!(seconds > 0 && seconds <= 600)) throw new Error('--seconds takes a number in (0, 600]');
      options.seconds = seconds;
    } else throw new Error(`unknown argument ${argument}`);
  }
  return options;
}

/** Calls `operation` back to back for `seconds`, after a warm-up; `operation` returns false if its result is wrong. */
function measure(name: string, seconds: number, operation: () => boolean, bytesPerOp?: number): Measurement {
  const run = (forSeconds: number): { count: number; elapsedSeconds: number } => {
    const started = process.hrtime.bigint();
    const deadline = started + BigInt(Math.round(forSeconds * 1e9));
    let count = 0;
    let now = started;
    while (now < deadline) {
      if (!operation()) throw new Error(`${name}: the operation returned a wrong result`);
      count += 1;
      now = process.hrtime.bigint();
    }
    return { count, elapsedSeconds: Number(now - started) / 1e9 };
  };
  run(WARMUP_SECONDS);
  const { count, elapsedSeconds } = run(seconds);
  const opsPerSecond = count / elapsedSeconds;
  const measurement: Measurement = { name, opsPerSecond, microsecondsPerOp: 1e6 / opsPerSecond };
  if (bytesPerOp !== undefined) measurement.megabytesPerSecond = (opsPerSecond * bytesPerOp) / 1e6;
  return measurement;
}

function sm2Measurements(seconds: number): Measurement[] {
  const privateKey = Sm2PrivateKey.generate();
  const publicKeyHex = privateKey.publicKey.toHex();
  const privateKeyHex = privateKey.exportBytes().toString('hex');
  const precomputedPublicKey = Sm2PublicKey.from(publicKeyHex, { precompute: true });
  const message = crypto.randomBytes(SIGNED_MESSAGE_BYTES);
  const signatureOptions = { signatureEncoding: 'raw', userId: SM2_DEFAULT_USER_ID } as const;
  const signature = sm2Sign(message, privateKey, signatureOptions);
  const libraryOptions = { hash: true, userId: SM2_DEFAULT_USER_ID, der: false } as const;
  const librarySignatureHex = sm2Library.doSignature(message, privateKeyHex, {
    ...libraryOptions,
    publicKey: publicKeyHex,
  });

  const nodePrivateKey = nodeSm2PrivateKey();
  const nodePublicKey = crypto.createPublicKey(nodePrivateKey);
  const nodeSignature = crypto.sign(null, message, nodePrivateKey);

  const plaintext = crypto.randomBytes(SM2_ENCRYPTED_BYTES);
  const cipherOptions = { ciphertextEncoding: 'c1c3c2' } as const;
  const ciphertext = sm2Encrypt(plaintext, privateKey.publicKey, cipherOptions);

  return [
    measure('SM2 sign (wrapper)', seconds, () => sm2Sign(message, privateKey, signatureOptions).length === 64),
    measure('SM2 verify (wrapper, key as hex each call)', seconds, () =>
      sm2Verify(message, signature, publicKeyHex, signatureOptions),
    ),
    measure('SM2 verify (wrapper, Sm2PublicKey parsed once)', seconds, () =>
      sm2Verify(message, signature, privateKey.publicKey, signatureOptions),
    ),
    measure('SM2 verify (wrapper, precomputed Sm2PublicKey)', seconds, () =>
      sm2Verify(message, signature, precomputedPublicKey, signatureOptions),
    ),
    measure(
      'SM2 sign (sm-crypto-v2 bare)',
      seconds,
      () =>
        sm2Library.doSignature(message, privateKeyHex, { ...libraryOptions, publicKey: publicKeyHex }).length === 128,
    ),
    measure('SM2 verify (sm-crypto-v2 bare, hex key)', seconds, () =>
      sm2Library.doVerifySignature(message, librarySignatureHex, publicKeyHex, libraryOptions),
    ),
    measure(
      'SM2 sign (Node native, empty user id: reference only)',
      seconds,
      () => crypto.sign(null, message, nodePrivateKey).length > 0,
    ),
    measure('SM2 verify (Node native, empty user id: reference only)', seconds, () =>
      crypto.verify(null, message, nodePublicKey, nodeSignature),
    ),
    measure(
      `SM2 encrypt ${SM2_ENCRYPTED_BYTES} B (wrapper, precomputed key)`,
      seconds,
      () => sm2Encrypt(plaintext, precomputedPublicKey, cipherOptions).length === 1 + 64 + 32 + SM2_ENCRYPTED_BYTES,
    ),
    measure(`SM2 decrypt ${SM2_ENCRYPTED_BYTES} B (wrapper)`, seconds, () =>
      sm2Decrypt(ciphertext, privateKey, cipherOptions).equals(plaintext),
    ),
  ];
}

function bulkMeasurements(seconds: number): Measurement[] {
  const input = crypto.randomBytes(BULK_INPUT_BYTES);
  const key = crypto.randomBytes(16);
  const cbcIv = crypto.randomBytes(16);
  const gcmIv = crypto.randomBytes(12);
  const associatedData = Buffer.alloc(0);
  return [
    measure('SM3 (Node)', seconds, () => sm3Digest(input).length === 32, BULK_INPUT_BYTES),
    measure(
      'SM4-CBC encrypt (Node)',
      seconds,
      () => sm4CbcEncrypt(input, { key, iv: cbcIv, padding: 'pkcs7' }).length === BULK_INPUT_BYTES + 16,
      BULK_INPUT_BYTES,
    ),
    measure(
      'SM4-GCM encrypt (sm-crypto-v2)',
      seconds,
      () => sm4GcmEncrypt(input, { key, iv: gcmIv, associatedData }).ciphertext.length === BULK_INPUT_BYTES,
      BULK_INPUT_BYTES,
    ),
  ];
}

/** A key Node signs with as SM2: a freshly generated 'ec' key signs ECDSA; re-imported from PKCS#8 it is SM2. */
function nodeSm2PrivateKey(): crypto.KeyObject {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'SM2' });
  return crypto.createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }));
}

function formatRow(measurement: Measurement): string {
  const rate = measurement.opsPerSecond.toFixed(0).padStart(9);
  const latency = measurement.microsecondsPerOp.toFixed(1).padStart(10);
  const throughput =
    measurement.megabytesPerSecond === undefined ? '' : `  ${measurement.megabytesPerSecond.toFixed(1)} MB/s`;
  return `${measurement.name.padEnd(58)} ${rate} ops/s ${latency} µs/op${throughput}`;
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  const measurements = [...sm2Measurements(options.seconds), ...bulkMeasurements(options.seconds)];
  const environment = {
    node: process.version,
    openssl: process.versions.openssl,
    cpu: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    sm4GcmInNodeOpenssl: crypto.getCiphers().includes('sm4-gcm'),
    smCryptoV2: smCryptoV2Package.version,
    secondsPerFigure: options.seconds,
  };
  if (options.json) {
    console.log(JSON.stringify({ environment, measurements }, null, 2));
    return;
  }
  console.log(
    `node ${environment.node}, OpenSSL ${environment.openssl}, sm-crypto-v2 ${environment.smCryptoV2}, ` +
      `${environment.cpu}, sm4-gcm in Node's OpenSSL: ${environment.sm4GcmInNodeOpenssl}, ` +
      `${options.seconds} s per figure, one thread`,
  );
  for (const measurement of measurements) console.log(formatRow(measurement));
}

main();
