/**
 * SM2 (GB/T 32918) signatures and public-key encryption on the recommended curve, through sm-crypto-v2.
 *
 * Node cannot do either itself: its SM2 signatures hash Z over an empty user id with no way to set one, and it
 * has no SM2 encryption (`research/smcrypto.md` §2.6). Every call into the library writes all its options out
 * (`hash`, `userId`, `publicKey`, `der`, cipher mode, `asn1`, `output`), because its defaults are not the
 * standard's (`hash` is false by default) and have changed between sm-crypto versions.
 *
 * Wire formats are fixed by the caller's contract, never sniffed from the bytes:
 * - signatures: `raw` = r ‖ s, 32 bytes each (64 bytes); `der` = SEQUENCE { r INTEGER, s INTEGER }.
 * - ciphertexts: see Sm2CiphertextEncoding.
 * DER is parsed strictly here (minimal lengths and integers, no trailing bytes) rather than by the library, whose
 * reader checks no tags.
 */
import { ECDH } from 'node:crypto';
import { inspect } from 'node:util';
import { sm2 as sm2Library } from 'sm-crypto-v2';
import type { BytesOrHex } from './sm3';
import { bytesFrom, CryptoDecryptionError, CryptoInputError, messageBytes, SM3_DIGEST_BYTES, sm3Digest } from './sm3';

/** The default distinguishing identifier of GM/T 0009 and GB/T 35276, also sm-crypto's. */
export const SM2_DEFAULT_USER_ID = '1234567812345678';
/** ENTL, the identifier's length in bits, is two bytes: 65,535 bits at most, so 8,191 whole bytes. */
export const SM2_USER_ID_MAX_BYTES = 8191;
/** SM2 carries keys and short fields; bulk data goes under SM4 with an SM2-encrypted key. */
export const SM2_PLAINTEXT_MAX_BYTES = 1024 * 1024;

const SM2_COORDINATE_BYTES = 32;
const SM2_PRIVATE_KEY_BYTES = 32;
const SM2_RAW_SIGNATURE_BYTES = 2 * SM2_COORDINATE_BYTES;
const UNCOMPRESSED_POINT_PREFIX = 0x04;

// The recommended curve, GB/T 32918.5-2017.
const CURVE_A_HEX = 'fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc';
const CURVE_B_HEX = '28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93';
const CURVE_GX_HEX = '32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7';
const CURVE_GY_HEX = 'bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0';
const CURVE_ORDER_N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
/** a ‖ b ‖ Gx ‖ Gy, the curve's part of Z. */
const CURVE_A_B_GX_GY = Buffer.from(CURVE_A_HEX + CURVE_B_HEX + CURVE_GX_HEX + CURVE_GY_HEX, 'hex');

export type Sm2SignatureEncoding = 'raw' | 'der';

/**
 * - `c1c3c2`: 04 ‖ x1 ‖ y1 ‖ C3 ‖ C2, the order of GB/T 32918.4 with C1 an uncompressed point, prefix included.
 * - `c1c3c2-without-04`: x1 ‖ y1 ‖ C3 ‖ C2, what sm-crypto and sm-crypto-v2 emit with cipherMode 1.
 * - `asn1`: SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (C3), ciphertext OCTET STRING (C2) }, GM/T 0009 and
 *   GB/T 35276; what OpenSSL emits.
 * x1 may itself begin with 04, so whether the prefix is there cannot be told from the bytes: the contract says.
 */
export type Sm2CiphertextEncoding = 'c1c3c2' | 'c1c3c2-without-04' | 'asn1';

export interface Sm2SignatureOptions {
  readonly signatureEncoding: Sm2SignatureEncoding;
  /** UTF-8; SM2_DEFAULT_USER_ID when absent. Signer and verifier must agree on it. */
  readonly userId?: string;
}

export interface Sm2CiphertextOptions {
  readonly ciphertextEncoding: Sm2CiphertextEncoding;
}

export interface Sm2UserIdOptions {
  /** UTF-8; SM2_DEFAULT_USER_ID when absent. */
  readonly userId?: string;
}

// ---- keys -----------------------------------------------------------------------------------------------------

type Sm2PrecomputedPoint = Exclude<Parameters<typeof sm2Library.doVerifySignature>[2], string>;

export interface Sm2PublicKeyOptions {
  /**
   * Precompute multiples of the point (about 40 ms and 650 KB per key, once) so that each verification and
   * encryption under this key runs about six times faster. For the few partner keys that are used on every request.
   */
  readonly precompute?: boolean;
}

/** Precomputed points, kept off the public surface of Sm2PublicKey (they are the library's type). */
const precomputedPointByKey = new WeakMap<Sm2PublicKey, Sm2PrecomputedPoint>();

/** A point on the SM2 curve, checked when parsed. Public, so it prints as hex. */
export class Sm2PublicKey {
  private constructor(private readonly uncompressedHex: string) {}

  /** 65 bytes 04 ‖ x ‖ y, or 33 bytes 02/03 ‖ x (compressed). */
  static from(input: BytesOrHex, options: Sm2PublicKeyOptions = {}): Sm2PublicKey {
    const key = new Sm2PublicKey(uncompressedPointHex(bytesFrom(input, 'SM2 public key'), 'SM2 public key'));
    if (options.precompute === true) {
      precomputedPointByKey.set(key, sm2Library.precomputePublicKey(key.uncompressedHex));
    }
    return key;
  }

  /** 04 ‖ x ‖ y, 65 bytes. */
  toBytes(): Buffer {
    return Buffer.from(this.uncompressedHex, 'hex');
  }

  /** 04 ‖ x ‖ y as 130 lower-case hex characters. */
  toHex(): string {
    return this.uncompressedHex;
  }

  equals(other: Sm2PublicKey): boolean {
    return other.uncompressedHex === this.uncompressedHex;
  }

  toJSON(): string {
    return this.uncompressedHex;
  }
}

/** What the library takes for verification and encryption: the precomputed point when there is one. */
function libraryPublicKey(key: Sm2PublicKey): string | Sm2PrecomputedPoint {
  return precomputedPointByKey.get(key) ?? key.toHex();
}

/** The secret scalar of each key, reachable only from this file: nothing on the object holds it. */
const privateScalarHexByKey = new WeakMap<Sm2PrivateKey, string>();

/** An SM2 private key. Its material never appears in JSON, `util.inspect`, `console.log` or string conversion. */
export class Sm2PrivateKey {
  readonly publicKey: Sm2PublicKey;

  private constructor(scalarHex: string) {
    privateScalarHexByKey.set(this, scalarHex);
    this.publicKey = Sm2PublicKey.from(sm2Library.getPublicKeyFromPrivateKey(scalarHex));
  }

  /** A fresh key from the platform CSPRNG (sm-crypto-v2 uses `crypto.getRandomValues` and refuses to run without). */
  static generate(): Sm2PrivateKey {
    for (;;) {
      // No argument: an argument would be used as the key instead of random bytes.
      const scalarHex = sm2Library.generateKeyPairHex().privateKey;
      if (isValidPrivateScalar(BigInt(`0x${scalarHex}`))) return new Sm2PrivateKey(scalarHex);
    }
  }

  /** The scalar d as exactly 32 bytes, big-endian (left-pad with zeros first: Node's ECDH does not). */
  static from(input: BytesOrHex): Sm2PrivateKey {
    const scalar = bytesFrom(input, 'SM2 private key');
    if (scalar.length !== SM2_PRIVATE_KEY_BYTES) {
      throw new CryptoInputError(
        'invalid_key_length',
        `SM2 private key must be ${SM2_PRIVATE_KEY_BYTES} bytes, got ${scalar.length}`,
      );
    }
    const scalarHex = scalar.toString('hex');
    if (!isValidPrivateScalar(BigInt(`0x${scalarHex}`))) {
      throw new CryptoInputError('invalid_key', 'SM2 private key is out of range: d must be in [1, n - 2]');
    }
    return new Sm2PrivateKey(scalarHex);
  }

  /** The secret scalar, 32 bytes: for the key store only. */
  exportBytes(): Buffer {
    return Buffer.from(scalarHexOf(this), 'hex');
  }

  toJSON(): string {
    return '[Sm2PrivateKey: redacted]';
  }

  toString(): string {
    return '[Sm2PrivateKey: redacted]';
  }

  [inspect.custom](): string {
    return `Sm2PrivateKey { redacted, publicKey: ${this.publicKey.toHex()} }`;
  }
}

function scalarHexOf(key: Sm2PrivateKey): string {
  const scalarHex = privateScalarHexByKey.get(key);
  if (scalarHex === undefined) throw new Error('assertion: an Sm2PrivateKey without its scalar');
  return scalarHex;
}

function isValidPrivateScalar(scalar: bigint): boolean {
  // d = n - 1 has no (1 + d)^-1 mod n, which every signature needs.
  return scalar >= 1n && scalar <= CURVE_ORDER_N - 2n;
}

function privateKeyFrom(input: Sm2PrivateKey | BytesOrHex): Sm2PrivateKey {
  return input instanceof Sm2PrivateKey ? input : Sm2PrivateKey.from(input);
}

function publicKeyFrom(input: Sm2PublicKey | BytesOrHex): Sm2PublicKey {
  return input instanceof Sm2PublicKey ? input : Sm2PublicKey.from(input);
}

/** Checks the point is on the curve (Node's OpenSSL does) and returns it uncompressed, as lower-case hex. */
function uncompressedPointHex(point: Buffer, what: string): string {
  const prefix = point[0];
  const isUncompressed = point.length === 1 + 2 * SM2_COORDINATE_BYTES && prefix === UNCOMPRESSED_POINT_PREFIX;
  const isCompressed = point.length === 1 + SM2_COORDINATE_BYTES && (prefix === 0x02 || prefix === 0x03);
  if (!isUncompressed && !isCompressed) {
    throw new CryptoInputError(
      'invalid_key',
      `${what} must be 65 bytes starting 04, or 33 bytes starting 02 or 03 (got ${point.length} bytes)`,
    );
  }
  try {
    return (ECDH.convertKey(point, 'SM2', undefined, 'hex', 'uncompressed') as string).toLowerCase();
  } catch {
    throw new CryptoInputError('invalid_key', `${what} is not a point on the SM2 curve`);
  }
}

/** The library takes the user id as a string and hashes its UTF-8 bytes; lone surrogates would not survive that. */
function checkedUserId(userId: string): string {
  if (typeof userId !== 'string' || Buffer.from(userId, 'utf8').toString('utf8') !== userId) {
    throw new CryptoInputError('invalid_user_id', 'SM2 user id must be a well-formed string (it is hashed as UTF-8)');
  }
  const lengthBytes = Buffer.byteLength(userId, 'utf8');
  if (lengthBytes > SM2_USER_ID_MAX_BYTES) {
    throw new CryptoInputError(
      'invalid_user_id',
      `SM2 user id is ${lengthBytes} bytes; ENTL allows at most ${SM2_USER_ID_MAX_BYTES}`,
    );
  }
  return userId;
}

// ---- Z and e --------------------------------------------------------------------------------------------------

/** Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ x ‖ y), computed here with Node's SM3, independently of the library. */
export function sm2ComputeZ(publicKey: Sm2PublicKey | BytesOrHex, options: Sm2UserIdOptions = {}): Buffer {
  const userIdBytes = Buffer.from(checkedUserId(options.userId ?? SM2_DEFAULT_USER_ID), 'utf8');
  const entl = Buffer.alloc(2);
  entl.writeUInt16BE(userIdBytes.length * 8);
  const publicKeyXY = publicKeyFrom(publicKey).toBytes().subarray(1);
  return sm3Digest(Buffer.concat([entl, userIdBytes, CURVE_A_B_GX_GY, publicKeyXY]));
}

/** e = SM3(Z ‖ M), the value an SM2 signature signs. */
export function sm2ComputeDigest(
  message: Uint8Array,
  publicKey: Sm2PublicKey | BytesOrHex,
  options: Sm2UserIdOptions = {},
): Buffer {
  return sm3Digest(Buffer.concat([sm2ComputeZ(publicKey, options), messageBytes(message, 'SM2 message')]));
}

// ---- signatures -----------------------------------------------------------------------------------------------

export function sm2Sign(
  message: Uint8Array,
  privateKey: Sm2PrivateKey | BytesOrHex,
  options: Sm2SignatureOptions,
): Buffer {
  const key = privateKeyFrom(privateKey);
  const rawSignatureHex = sm2Library.doSignature(messageBytes(message, 'SM2 message'), scalarHexOf(key), {
    hash: true,
    userId: checkedUserId(options.userId ?? SM2_DEFAULT_USER_ID),
    publicKey: key.publicKey.toHex(),
    der: false,
  });
  const rawSignature = Buffer.from(rawSignatureHex, 'hex');
  if (rawSignature.length !== SM2_RAW_SIGNATURE_BYTES) {
    throw new Error(`assertion: sm-crypto-v2 returned a ${rawSignature.length}-byte r ‖ s`);
  }
  return options.signatureEncoding === 'der' ? derSignatureFromRaw(rawSignature) : rawSignature;
}

/**
 * False when the signature does not verify, including r or s outside [1, n - 1]. Throws CryptoInputError when the
 * signature is not even well-formed in the agreed encoding, so a garbled request can be told from a forged one.
 */
export function sm2Verify(
  message: Uint8Array,
  signature: BytesOrHex,
  publicKey: Sm2PublicKey | BytesOrHex,
  options: Sm2SignatureOptions,
): boolean {
  const key = publicKeyFrom(publicKey);
  const userId = checkedUserId(options.userId ?? SM2_DEFAULT_USER_ID);
  const data = messageBytes(message, 'SM2 message');
  const { r, s } = parseSignature(bytesFrom(signature, 'SM2 signature'), options.signatureEncoding);
  if (!isInSignatureRange(r) || !isInSignatureRange(s)) return false;
  try {
    return sm2Library.doVerifySignature(data, Buffer.concat([r, s]).toString('hex'), libraryPublicKey(key), {
      hash: true,
      userId,
      der: false,
    });
  } catch {
    // Inputs are checked above; what is left to throw is the curve arithmetic on a crafted (r, s), e.g. a sum at
    // the point at infinity. Such a signature is invalid.
    return false;
  }
}

export function sm2ConvertSignature(
  signature: BytesOrHex,
  from: Sm2SignatureEncoding,
  to: Sm2SignatureEncoding,
): Buffer {
  const { r, s } = parseSignature(bytesFrom(signature, 'SM2 signature'), from);
  const rawSignature = Buffer.concat([r, s]);
  return to === 'der' ? derSignatureFromRaw(rawSignature) : rawSignature;
}

function isInSignatureRange(value: Buffer): boolean {
  const integer = BigInt(`0x${value.toString('hex')}`);
  return integer >= 1n && integer < CURVE_ORDER_N;
}

function parseSignature(signature: Buffer, encoding: Sm2SignatureEncoding): { r: Buffer; s: Buffer } {
  if (encoding === 'raw') {
    if (signature.length !== SM2_RAW_SIGNATURE_BYTES) {
      throw new CryptoInputError(
        'malformed_signature',
        `SM2 raw signature must be ${SM2_RAW_SIGNATURE_BYTES} bytes (r ‖ s), got ${signature.length}`,
      );
    }
    return { r: signature.subarray(0, SM2_COORDINATE_BYTES), s: signature.subarray(SM2_COORDINATE_BYTES) };
  }
  const fields = readDerSequence(signature, 'SM2 DER signature', 'malformed_signature');
  if (fields.length !== 2) {
    throw new CryptoInputError('malformed_signature', 'SM2 DER signature must hold exactly two INTEGERs, r and s');
  }
  return {
    r: readDerUnsigned32(fields[0]!, 'SM2 DER signature r', 'malformed_signature'),
    s: readDerUnsigned32(fields[1]!, 'SM2 DER signature s', 'malformed_signature'),
  };
}

function derSignatureFromRaw(rawSignature: Buffer): Buffer {
  return derSequence([
    derInteger(rawSignature.subarray(0, SM2_COORDINATE_BYTES)),
    derInteger(rawSignature.subarray(SM2_COORDINATE_BYTES)),
  ]);
}

// ---- encryption -----------------------------------------------------------------------------------------------

/** C1 = the ephemeral point's x ‖ y (64 bytes), C3 = SM3(x2 ‖ M ‖ y2), C2 = M xor KDF(x2 ‖ y2). */
interface Sm2CiphertextParts {
  readonly c1XY: Buffer;
  readonly c3: Buffer;
  readonly c2: Buffer;
}

/** A repeat happens when KDF output is all zeros (C2 = M, GB/T 32918.4 step A5): odds 2^-8 per byte of M. */
const SM2_ENCRYPT_MAX_ATTEMPTS = 16;

export function sm2Encrypt(
  plaintext: Uint8Array,
  publicKey: Sm2PublicKey | BytesOrHex,
  options: Sm2CiphertextOptions,
): Buffer {
  const data = messageBytes(plaintext, 'SM2 plaintext');
  if (data.length === 0 || data.length > SM2_PLAINTEXT_MAX_BYTES) {
    throw new CryptoInputError(
      'invalid_data_length',
      `SM2 plaintext must be 1 to ${SM2_PLAINTEXT_MAX_BYTES} bytes, got ${data.length}`,
    );
  }
  const key = publicKeyFrom(publicKey);
  for (let attempt = 0; attempt < SM2_ENCRYPT_MAX_ATTEMPTS; attempt++) {
    // Cipher mode 1 = C1C3C2, without the 04 prefix and without ASN.1: we serialize ourselves.
    const ciphertextHex = sm2Library.doEncrypt(data, libraryPublicKey(key), 1, { asn1: false });
    const parts = splitCiphertext(Buffer.from(ciphertextHex, 'hex'), 'c1c3c2-without-04');
    if (!parts.c2.equals(data)) return serializeCiphertext(parts, options.ciphertextEncoding);
  }
  throw new Error(`assertion: ${SM2_ENCRYPT_MAX_ATTEMPTS} SM2 encryptions in a row with an all-zero KDF output`);
}

/** Throws CryptoDecryptionError('authentication_failed') when C3 does not match: the wrong key or altered data. */
export function sm2Decrypt(
  ciphertext: BytesOrHex,
  privateKey: Sm2PrivateKey | BytesOrHex,
  options: Sm2CiphertextOptions,
): Buffer {
  const parts = splitCiphertext(bytesFrom(ciphertext, 'SM2 ciphertext'), options.ciphertextEncoding);
  const key = privateKeyFrom(privateKey);
  const libraryCiphertextHex = Buffer.concat([parts.c1XY, parts.c3, parts.c2]).toString('hex');
  // On a C3 mismatch the library returns an empty result instead of throwing; C2 is never empty here, so an
  // empty result is unambiguous.
  const plaintext = sm2Library.doDecrypt(libraryCiphertextHex, scalarHexOf(key), 1, { output: 'array', asn1: false });
  if (plaintext.length !== parts.c2.length) {
    throw new CryptoDecryptionError('authentication_failed', 'SM2: the ciphertext does not decrypt under this key');
  }
  const plaintextBytes = Buffer.from(plaintext);
  // An all-zero KDF output (C2 = M) is an error in GB/T 32918.4 step B4; a conforming encryptor never emits it.
  if (plaintextBytes.equals(parts.c2)) {
    throw new CryptoDecryptionError('authentication_failed', 'SM2: the ciphertext has an all-zero key stream');
  }
  return plaintextBytes;
}

export function sm2ConvertCiphertext(
  ciphertext: BytesOrHex,
  from: Sm2CiphertextEncoding,
  to: Sm2CiphertextEncoding,
): Buffer {
  return serializeCiphertext(splitCiphertext(bytesFrom(ciphertext, 'SM2 ciphertext'), from), to);
}

function splitCiphertext(ciphertext: Buffer, encoding: Sm2CiphertextEncoding): Sm2CiphertextParts {
  const parts = encoding === 'asn1' ? splitAsn1Ciphertext(ciphertext) : splitRawCiphertext(ciphertext, encoding);
  if (parts.c2.length === 0 || parts.c2.length > SM2_PLAINTEXT_MAX_BYTES) {
    throw new CryptoInputError(
      'malformed_ciphertext',
      `SM2 ciphertext C2 must be 1 to ${SM2_PLAINTEXT_MAX_BYTES} bytes, got ${parts.c2.length}`,
    );
  }
  try {
    uncompressedPointHex(Buffer.concat([Buffer.of(UNCOMPRESSED_POINT_PREFIX), parts.c1XY]), 'SM2 ciphertext C1');
  } catch (error) {
    if (error instanceof CryptoInputError) throw new CryptoInputError('malformed_ciphertext', error.message);
    throw error;
  }
  return parts;
}

function splitRawCiphertext(ciphertext: Buffer, encoding: 'c1c3c2' | 'c1c3c2-without-04'): Sm2CiphertextParts {
  let body = ciphertext;
  if (encoding === 'c1c3c2') {
    if (ciphertext[0] !== UNCOMPRESSED_POINT_PREFIX) {
      throw new CryptoInputError(
        'malformed_ciphertext',
        'SM2 ciphertext (c1c3c2) must start with 04; sm-crypto output without it is c1c3c2-without-04',
      );
    }
    body = ciphertext.subarray(1);
  }
  const c1Bytes = 2 * SM2_COORDINATE_BYTES;
  if (body.length <= c1Bytes + SM3_DIGEST_BYTES) {
    throw new CryptoInputError(
      'malformed_ciphertext',
      `SM2 ciphertext (${encoding}) of ${ciphertext.length} bytes is too short to hold C1, C3 and a C2`,
    );
  }
  return {
    c1XY: body.subarray(0, c1Bytes),
    c3: body.subarray(c1Bytes, c1Bytes + SM3_DIGEST_BYTES),
    c2: body.subarray(c1Bytes + SM3_DIGEST_BYTES),
  };
}

function splitAsn1Ciphertext(ciphertext: Buffer): Sm2CiphertextParts {
  const fields = readDerSequence(ciphertext, 'SM2 ASN.1 ciphertext', 'malformed_ciphertext');
  if (fields.length !== 4) {
    throw new CryptoInputError('malformed_ciphertext', 'SM2 ASN.1 ciphertext must hold x, y, hash and ciphertext');
  }
  const [x, y, hash, body] = fields as [DerElement, DerElement, DerElement, DerElement];
  const c3 = readDerOctetString(hash, 'SM2 ASN.1 ciphertext hash');
  if (c3.length !== SM3_DIGEST_BYTES) {
    throw new CryptoInputError(
      'malformed_ciphertext',
      `SM2 ASN.1 ciphertext hash must be ${SM3_DIGEST_BYTES} bytes, got ${c3.length}`,
    );
  }
  return {
    c1XY: Buffer.concat([
      readDerUnsigned32(x, 'SM2 ASN.1 ciphertext x', 'malformed_ciphertext'),
      readDerUnsigned32(y, 'SM2 ASN.1 ciphertext y', 'malformed_ciphertext'),
    ]),
    c3,
    c2: readDerOctetString(body, 'SM2 ASN.1 ciphertext body'),
  };
}

function serializeCiphertext(parts: Sm2CiphertextParts, encoding: Sm2CiphertextEncoding): Buffer {
  switch (encoding) {
    case 'c1c3c2':
      return Buffer.concat([Buffer.of(UNCOMPRESSED_POINT_PREFIX), parts.c1XY, parts.c3, parts.c2]);
    case 'c1c3c2-without-04':
      return Buffer.concat([parts.c1XY, parts.c3, parts.c2]);
    case 'asn1':
      return derSequence([
        derInteger(parts.c1XY.subarray(0, SM2_COORDINATE_BYTES)),
        derInteger(parts.c1XY.subarray(SM2_COORDINATE_BYTES)),
        derOctetString(parts.c3),
        derOctetString(parts.c2),
      ]);
  }
}

// ---- DER: the three types SM2 needs, strictly ------------------------------------------------------------------

const DER_TAG_INTEGER = 0x02;
const DER_TAG_OCTET_STRING = 0x04;
const DER_TAG_SEQUENCE = 0x30;
/** Lengths up to 2^32 - 1 bytes: far beyond SM2_PLAINTEXT_MAX_BYTES, which is checked afterwards. */
const DER_LENGTH_MAX_OCTETS = 4;

interface DerElement {
  readonly tag: number;
  readonly value: Buffer;
}

type DerErrorCode = 'malformed_signature' | 'malformed_ciphertext';

/** One element at `offset`; `end` is where the next one starts. */
function readDerElement(
  bytes: Buffer,
  offset: number,
  what: string,
  code: DerErrorCode,
): DerElement & { readonly end: number } {
  const fail = (reason: string): never => {
    throw new CryptoInputError(code, `${what} is not valid DER: ${reason}`);
  };
  const tag = bytes[offset];
  const firstLengthOctet = bytes[offset + 1];
  if (tag === undefined || firstLengthOctet === undefined) return fail('truncated');
  let length = firstLengthOctet;
  let valueStart = offset + 2;
  if (firstLengthOctet & 0x80) {
    const lengthOctets = firstLengthOctet & 0x7f;
    if (lengthOctets === 0 || lengthOctets > DER_LENGTH_MAX_OCTETS) return fail('unsupported length form');
    if (valueStart + lengthOctets > bytes.length) return fail('truncated');
    length = bytes.readUIntBE(valueStart, lengthOctets);
    if (bytes[valueStart] === 0 || length < 0x80) return fail('length not minimally encoded');
    valueStart += lengthOctets;
  }
  const end = valueStart + length;
  if (end > bytes.length) return fail('truncated');
  return { tag, value: bytes.subarray(valueStart, end), end };
}

function readDerSequence(bytes: Buffer, what: string, code: DerErrorCode): DerElement[] {
  const sequence = readDerElement(bytes, 0, what, code);
  if (sequence.tag !== DER_TAG_SEQUENCE) throw new CryptoInputError(code, `${what} is not a DER SEQUENCE`);
  if (sequence.end !== bytes.length) throw new CryptoInputError(code, `${what} has bytes after its SEQUENCE`);
  const fields: DerElement[] = [];
  for (let offset = 0; offset < sequence.value.length;) {
    const field = readDerElement(sequence.value, offset, what, code);
    fields.push(field);
    offset = field.end;
  }
  return fields;
}

/** A non-negative, minimally encoded INTEGER below 2^256, as 32 bytes big-endian. */
function readDerUnsigned32(element: DerElement, what: string, code: DerErrorCode): Buffer {
  const fail = (reason: string): never => {
    throw new CryptoInputError(code, `${what} ${reason}`);
  };
  if (element.tag !== DER_TAG_INTEGER) return fail('is not an INTEGER');
  const value = element.value;
  if (value.length === 0) return fail('is empty');
  if (value[0]! & 0x80) return fail('is negative');
  if (value.length > 1 && value[0] === 0 && !(value[1]! & 0x80)) return fail('is not minimally encoded');
  const magnitude = value[0] === 0 ? value.subarray(1) : value;
  if (magnitude.length > SM2_COORDINATE_BYTES) return fail(`is longer than ${SM2_COORDINATE_BYTES} bytes`);
  return Buffer.concat([Buffer.alloc(SM2_COORDINATE_BYTES - magnitude.length), magnitude]);
}

function readDerOctetString(element: DerElement, what: string): Buffer {
  if (element.tag !== DER_TAG_OCTET_STRING) {
    throw new CryptoInputError('malformed_ciphertext', `${what} is not an OCTET STRING`);
  }
  return element.value;
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

function derElement(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.of(tag), derLength(value.length), value]);
}

/** Unsigned big-endian bytes as a minimal INTEGER: leading zeros dropped, one 00 added when the top bit is set. */
function derInteger(unsignedBigEndian: Buffer): Buffer {
  let start = 0;
  while (start < unsignedBigEndian.length - 1 && unsignedBigEndian[start] === 0) start++;
  const magnitude = unsignedBigEndian.subarray(start);
  return derElement(DER_TAG_INTEGER, magnitude[0]! & 0x80 ? Buffer.concat([Buffer.of(0), magnitude]) : magnitude);
}

function derOctetString(value: Buffer): Buffer {
  return derElement(DER_TAG_OCTET_STRING, value);
}

function derSequence(elements: Buffer[]): Buffer {
  return derElement(DER_TAG_SEQUENCE, Buffer.concat(elements));
}
