/**
 * SM2, SM3, HMAC-SM3 and SM4 against the published vectors (/work/shared/vectors/sm.md, OpenSSL's evpmac_sm3.txt
 * and evpciph_sm4.txt, RFC 8998), against sm-crypto-v2 used directly, against the `openssl` binary and against
 * Node's own SM2, plus round-trip properties.
 */
import { spawnSync } from 'node:child_process';
import nodeCrypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { sm2 as sm2Library } from 'sm-crypto-v2';
import {
  CryptoDecryptionError,
  CryptoInputError,
  hmacSm3,
  hmacSm3Verify,
  sm2ComputeDigest,
  sm2ComputeZ,
  sm2ConvertCiphertext,
  sm2ConvertSignature,
  sm2Decrypt,
  sm2Encrypt,
  Sm2PrivateKey,
  Sm2PublicKey,
  sm2Sign,
  sm2Verify,
  sm3Digest,
  sm4CbcDecrypt,
  sm4CbcEncrypt,
  sm4EcbDecrypt,
  sm4EcbEncrypt,
  sm4GcmDecrypt,
  sm4GcmEncrypt,
} from '../../security';
import type { Sm2CiphertextEncoding, Sm2SignatureEncoding } from '../../security';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');
const ascii = (value: string): Buffer => Buffer.from(value, 'ascii');

function flipBit(bytes: Uint8Array, bitIndex: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bitIndex >> 3]! ^= 0x80 >> (bitIndex & 7);
  return copy;
}

function errorOf(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

function expectInputError(action: () => unknown, code: CryptoInputError['code']): void {
  const error = errorOf(action);
  expect(error).toBeInstanceOf(CryptoInputError);
  expect((error as CryptoInputError).code).toBe(code);
}

function expectDecryptionError(action: () => unknown, code: CryptoDecryptionError['code']): void {
  const error = errorOf(action);
  expect(error).toBeInstanceOf(CryptoDecryptionError);
  expect((error as CryptoDecryptionError).code).toBe(code);
}

// ---- vectors (sm.md) ------------------------------------------------------------------------------------------

const VECTOR_PRIVATE_KEY_HEX = '3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8';
const VECTOR_PUBLIC_KEY_HEX =
  '04' +
  '09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020' +
  'ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13';
const VECTOR_USER_ID = '1234567812345678';
const VECTOR_SIGNED_MESSAGE = ascii('message digest');
const VECTOR_Z_HEX = 'b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3';
const VECTOR_E_HEX = 'f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640';
const VECTOR_K_HEX = '59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21';
const VECTOR_R_HEX = 'f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3';
const VECTOR_S_HEX = 'b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa';
const VECTOR_RAW_SIGNATURE = hex(VECTOR_R_HEX + VECTOR_S_HEX);
const VECTOR_DER_SIGNATURE = hex(`3046022100${VECTOR_R_HEX}022100${VECTOR_S_HEX}`);

const VECTOR_ENCRYPTED_MESSAGE = ascii('encryption standard');
const VECTOR_C1_XY_HEX =
  '04ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73' +
  'e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0';
const VECTOR_C3_HEX = '59983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766';
const VECTOR_C2_HEX = '21886ca989ca9c7d58087307ca93092d651efa';
const VECTOR_C1C3C2 = hex(`04${VECTOR_C1_XY_HEX}${VECTOR_C3_HEX}${VECTOR_C2_HEX}`);
const VECTOR_C1C3C2_WITHOUT_04 = hex(`${VECTOR_C1_XY_HEX}${VECTOR_C3_HEX}${VECTOR_C2_HEX}`);
const VECTOR_ASN1_CIPHERTEXT = hex(
  '307c' +
    `0220${VECTOR_C1_XY_HEX.slice(0, 64)}` +
    `022100${VECTOR_C1_XY_HEX.slice(64)}` +
    `0420${VECTOR_C3_HEX}` +
    `0413${VECTOR_C2_HEX}`,
);

const SM4_VECTOR_KEY_HEX = '0123456789abcdeffedcba9876543210';

const vectorPrivateKey = Sm2PrivateKey.from(VECTOR_PRIVATE_KEY_HEX);
const vectorPublicKey = Sm2PublicKey.from(VECTOR_PUBLIC_KEY_HEX);

describe('SM3 (GB/T 32905-2016 A.1, A.2)', () => {
  test('"abc" and "abcd" × 16', () => {
    expect(sm3Digest(ascii('abc')).toString('hex')).toBe(
      '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0',
    );
    expect(sm3Digest(ascii('abcd'.repeat(16))).toString('hex')).toBe(
      'debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732',
    );
  });

  test('refuses text where bytes are expected', () => {
    expectInputError(() => sm3Digest('abc' as unknown as Uint8Array), 'invalid_input_type');
  });
});

describe('HMAC-SM3 (GM/T 0042-2015 D.3, OpenSSL evpmac_sm3.txt)', () => {
  const keyOfBytesFrom1To = (last: number): Buffer => Buffer.from(Array.from({ length: last }, (_, i) => i + 1));
  const vectors = [
    {
      key: keyOfBytesFrom1To(0x20),
      data: ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'.repeat(2)),
      mac: 'ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a',
    },
    {
      key: keyOfBytesFrom1To(0x25),
      data: Buffer.alloc(50, 0xcd),
      mac: '220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae',
    },
    {
      key: Buffer.alloc(32, 0x0b),
      data: ascii('Hi There'),
      mac: 'c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e',
    },
    {
      key: ascii('Jefe Jeferson Jr'),
      data: ascii('what do ya want for nothing?'),
      mac: 'ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c',
    },
  ];

  test.each(vectors.map((vector, index) => ({ ...vector, index })))('vector $index', ({ key, data, mac }) => {
    expect(hmacSm3(key, data).toString('hex')).toBe(mac);
    expect(hmacSm3(key.toString('hex'), data).toString('hex')).toBe(mac);
    expect(hmacSm3Verify(key, data, mac)).toBe(true);
  });

  test('verify refuses a MAC, message or key changed by one bit, and a MAC of another length', () => {
    const { key, data, mac } = vectors[2]!;
    expect(hmacSm3Verify(key, data, flipBit(hex(mac), 255))).toBe(false);
    expect(hmacSm3Verify(key, flipBit(data, 0), mac)).toBe(false);
    expect(hmacSm3Verify(flipBit(key, 7), data, mac)).toBe(false);
    expect(hmacSm3Verify(key, data, hex(mac).subarray(0, 31))).toBe(false);
    expect(hmacSm3Verify(key, data, '')).toBe(false);
  });

  test('verify compares in constant time', () => {
    const timingSafeEqual = jest.spyOn(nodeCrypto, 'timingSafeEqual');
    try {
      const { key, data, mac } = vectors[0]!;
      expect(hmacSm3Verify(key, data, mac)).toBe(true);
      expect(timingSafeEqual).toHaveBeenCalledTimes(1);
    } finally {
      timingSafeEqual.mockRestore();
    }
  });

  test('refuses short keys and bad hex with typed errors', () => {
    expectInputError(() => hmacSm3(Buffer.alloc(15, 1), ascii('x')), 'invalid_key_length');
    expectInputError(() => hmacSm3('', ascii('x')), 'invalid_key_length');
    expectInputError(() => hmacSm3('0b'.repeat(31) + '0', ascii('x')), 'invalid_hex');
    expectInputError(() => hmacSm3('zz'.repeat(32), ascii('x')), 'invalid_hex');
    expectInputError(() => hmacSm3Verify(Buffer.alloc(32, 0x0b), ascii('x'), '0x12'), 'invalid_hex');
    const error = errorOf(() => hmacSm3('secret-key-not-hex-0123456789', ascii('x'))) as Error;
    expect(error.message).not.toContain('secret');
  });
});

describe('SM4 (GB/T 32907-2016)', () => {
  const vectorKey = SM4_VECTOR_KEY_HEX;
  const vectorBlock = hex(SM4_VECTOR_KEY_HEX);

  test('ECB, one block (A.1)', () => {
    const ciphertext = sm4EcbEncrypt(vectorBlock, { key: vectorKey, padding: 'none' });
    expect(ciphertext.toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
    expect(sm4EcbDecrypt(ciphertext, { key: hex(vectorKey), padding: 'none' })).toEqual(vectorBlock);
  });

  test('the block encrypted 1,000,000 times (A.2)', () => {
    // CBC with a zero IV over x0 ‖ 0 ‖ 0 ‖ … gives C1 = E(x0) and Ci = E(0 ⊕ Ci-1) = E(Ci-1): the last block is
    // E applied 10^6 times, in one call instead of 10^6 (about 0.1 s instead of 3 s).
    const iterations = 1_000_000;
    const plaintext = Buffer.alloc(16 * iterations);
    vectorBlock.copy(plaintext);
    const chain = sm4CbcEncrypt(plaintext, { key: vectorKey, iv: Buffer.alloc(16), padding: 'none' });
    expect(chain.subarray(0, 16).toString('hex')).toBe('681edf34d206965e86b3e94f536e4246');
    expect(chain.subarray(-16).toString('hex')).toBe('595298c7c6fd271f0402f804c33d3f66');
  });

  test('CBC vector (draft-ribose-cfrg-sm4, OpenSSL evpciph_sm4.txt)', () => {
    const params = { key: vectorKey, iv: vectorKey, padding: 'none' } as const;
    const ciphertext = sm4CbcEncrypt(Buffer.concat([vectorBlock, vectorBlock]), params);
    expect(ciphertext.toString('hex')).toBe('2677f46b09c122cc975533105bd4a22af6125f7275ce552c3a2bbcf533de8a3b');
    expect(sm4CbcDecrypt(ciphertext, params)).toEqual(Buffer.concat([vectorBlock, vectorBlock]));
  });

  test('GCM vector (RFC 8998 A.1)', () => {
    const plaintext = hex(['aa', 'bb', 'cc', 'dd', 'ee', 'ff', 'ee', 'aa'].map((byte) => byte.repeat(8)).join(''));
    const params = {
      key: vectorKey,
      iv: '00001234567800000000abcd',
      associatedData: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
    };
    const sealed = sm4GcmEncrypt(plaintext, params);
    expect(sealed.ciphertext.toString('hex')).toBe(
      '17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735' +
        'd82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d',
    );
    expect(sealed.tag.toString('hex')).toBe('83de3541e4c2b58177e065a9bf7b62ec');
    expect(sm4GcmDecrypt(sealed.ciphertext, { ...params, tag: sealed.tag })).toEqual(plaintext);
  });

  test('property: CBC round trip, with and without padding', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 300 }),
        (key, iv, plaintext) => {
          const padded = { key, iv, padding: 'pkcs7' } as const;
          const ciphertext = sm4CbcEncrypt(plaintext, padded);
          expect(ciphertext.length).toBe((Math.floor(plaintext.length / 16) + 1) * 16);
          expect(sm4CbcDecrypt(ciphertext, padded)).toEqual(Buffer.from(plaintext));
          const wholeBlocks = plaintext.subarray(0, plaintext.length - (plaintext.length % 16));
          const unpadded = { key, iv, padding: 'none' } as const;
          expect(sm4CbcDecrypt(sm4CbcEncrypt(wholeBlocks, unpadded), unpadded)).toEqual(Buffer.from(wholeBlocks));
        },
      ),
      { numRuns: 100 },
    );
  });

  test('property: GCM round trip; its key stream is SM4-CTR from IV ‖ 00000002 (Node, independently)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 300 }),
        (key, iv, associatedData, plaintext) => {
          const sealed = sm4GcmEncrypt(plaintext, { key, iv, associatedData });
          const counterBlock = Buffer.concat([iv, hex('00000002')]);
          const ctr = nodeCrypto.createCipheriv('sm4-ctr', key, counterBlock);
          expect(sealed.ciphertext).toEqual(Buffer.concat([ctr.update(plaintext), ctr.final()]));
          expect(sealed.tag.length).toBe(16);
          expect(sm4GcmDecrypt(sealed.ciphertext, { key, iv, associatedData, tag: sealed.tag })).toEqual(
            Buffer.from(plaintext),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  test('property: GCM detects one flipped bit in the ciphertext, the tag, the associated data or the IV', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        fc.nat(),
        (plaintext, associatedData, bitSeed) => {
          const key = nodeCrypto.randomBytes(16);
          const iv = nodeCrypto.randomBytes(12);
          const { ciphertext, tag } = sm4GcmEncrypt(plaintext, { key, iv, associatedData });
          const opened = { key, iv, associatedData, tag };
          const bitIn = (bytes: Uint8Array): number => bitSeed % (bytes.length * 8);
          expectDecryptionError(
            () => sm4GcmDecrypt(flipBit(ciphertext, bitIn(ciphertext)), opened),
            'authentication_failed',
          );
          expectDecryptionError(
            () => sm4GcmDecrypt(ciphertext, { ...opened, tag: flipBit(tag, bitIn(tag)) }),
            'authentication_failed',
          );
          expectDecryptionError(
            () =>
              sm4GcmDecrypt(ciphertext, { ...opened, associatedData: flipBit(associatedData, bitIn(associatedData)) }),
            'authentication_failed',
          );
          expectDecryptionError(
            () => sm4GcmDecrypt(ciphertext, { ...opened, iv: flipBit(iv, bitIn(iv)) }),
            'authentication_failed',
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  test('GCM refuses truncated or missing tags, which would weaken or skip the check', () => {
    const params = { key: vectorKey, iv: Buffer.alloc(12), associatedData: Buffer.alloc(0) };
    const { ciphertext, tag } = sm4GcmEncrypt(ascii('pay 12.30'), params);
    expectInputError(() => sm4GcmDecrypt(ciphertext, { ...params, tag: tag.subarray(0, 12) }), 'invalid_tag_length');
    expectInputError(() => sm4GcmDecrypt(ciphertext, { ...params, tag: '' }), 'invalid_tag_length');
    expectInputError(() => sm4GcmEncrypt(ascii('x'), { ...params, iv: Buffer.alloc(16) }), 'invalid_iv_length');
  });

  test('bad key and IV lengths, bad hex, partial blocks and bad padding fail with typed errors', () => {
    const block = Buffer.alloc(16, 7);
    expectInputError(() => sm4EcbEncrypt(block, { key: Buffer.alloc(15), padding: 'none' }), 'invalid_key_length');
    expectInputError(() => sm4EcbEncrypt(block, { key: '00'.repeat(17), padding: 'none' }), 'invalid_key_length');
    expectInputError(() => sm4EcbEncrypt(block, { key: 'g'.repeat(32), padding: 'none' }), 'invalid_hex');
    const cbc = (iv: Uint8Array) => ({ key: vectorKey, iv, padding: 'pkcs7' }) as const;
    expectInputError(() => sm4CbcEncrypt(block, cbc(Buffer.alloc(12))), 'invalid_iv_length');
    expectInputError(() => sm4CbcEncrypt(Buffer.alloc(17), { ...cbc(block), padding: 'none' }), 'invalid_data_length');
    expectInputError(() => sm4CbcDecrypt(Buffer.alloc(20), cbc(block)), 'invalid_data_length');
    expectInputError(() => sm4EcbDecrypt(Buffer.alloc(0), { key: vectorKey, padding: 'pkcs7' }), 'invalid_data_length');
    expectInputError(() => sm4CbcDecrypt('abc', cbc(block)), 'invalid_hex');

    // A last plaintext byte of 00 is not PKCS#7 (sm-crypto-v2's own check would accept it; OpenSSL's does not).
    const endsInZero = Buffer.concat([Buffer.alloc(15, 1), Buffer.of(0)]);
    const noPadding = { key: vectorKey, padding: 'none' } as const;
    const ciphertext = sm4EcbEncrypt(endsInZero, noPadding);
    expectDecryptionError(() => sm4EcbDecrypt(ciphertext, { key: vectorKey, padding: 'pkcs7' }), 'bad_padding');
    const endsInBadRun = Buffer.concat([Buffer.alloc(13, 1), Buffer.of(3, 2, 3)]);
    expectDecryptionError(
      () => sm4CbcDecrypt(sm4CbcEncrypt(endsInBadRun, { ...cbc(block), padding: 'none' }), cbc(block)),
      'bad_padding',
    );
  });
});

describe('SM2 (GB/T 32918, recommended curve)', () => {
  test('Z and e of the signature example, computed with Node SM3, agree with sm-crypto-v2', () => {
    const z = sm2ComputeZ(vectorPublicKey, { userId: VECTOR_USER_ID });
    expect(z.toString('hex')).toBe(VECTOR_Z_HEX);
    expect(sm2ComputeZ(VECTOR_PUBLIC_KEY_HEX).toString('hex')).toBe(VECTOR_Z_HEX); // default user id
    expect(Buffer.from(sm2Library.getZ(VECTOR_PUBLIC_KEY_HEX, VECTOR_USER_ID))).toEqual(z);
    const e = sm2ComputeDigest(VECTOR_SIGNED_MESSAGE, vectorPublicKey, { userId: VECTOR_USER_ID });
    expect(e.toString('hex')).toBe(VECTOR_E_HEX);
    // Empty id (Node's and OpenSSL's default): research/smcrypto.md §1.7.
    expect(sm2ComputeDigest(VECTOR_SIGNED_MESSAGE, vectorPublicKey, { userId: '' }).toString('hex')).toBe(
      '2305bdc3a3eb4bcb28f8b33816de087e70af98169c1a7b32c8589fa8711a1f10',
    );
  });

  test('signing with the example k gives exactly (r, s)', () => {
    // sm2Sign has no way to fix k on purpose: a caller-chosen k that repeats gives away the private key. So the
    // known-answer test drives sm-crypto-v2 directly with the options sm2Sign passes, plus `pointPool`, the
    // library's way to supply k (with x1 of kG, derived here as the "public key" of k).
    const kG = sm2Library.getPublicKeyFromPrivateKey(VECTOR_K_HEX);
    expect(kG.slice(2, 66)).toBe(VECTOR_C1_XY_HEX.slice(0, 64)); // kG = C1 of the encryption example
    const signatureHex = sm2Library.doSignature(VECTOR_SIGNED_MESSAGE, VECTOR_PRIVATE_KEY_HEX, {
      hash: true,
      userId: VECTOR_USER_ID,
      publicKey: vectorPrivateKey.publicKey.toHex(),
      der: false,
      pointPool: [{ k: BigInt(`0x${VECTOR_K_HEX}`), x1: BigInt(`0x${kG.slice(2, 66)}`) }],
    });
    expect(signatureHex).toBe(VECTOR_R_HEX + VECTOR_S_HEX);
  });

  test('the example signature verifies, raw and DER, and converts between the two', () => {
    const raw = { signatureEncoding: 'raw', userId: VECTOR_USER_ID } as const;
    const der = { signatureEncoding: 'der', userId: VECTOR_USER_ID } as const;
    expect(sm2Verify(VECTOR_SIGNED_MESSAGE, VECTOR_RAW_SIGNATURE, vectorPublicKey, raw)).toBe(true);
    expect(sm2Verify(VECTOR_SIGNED_MESSAGE, VECTOR_DER_SIGNATURE, VECTOR_PUBLIC_KEY_HEX, der)).toBe(true);
    expect(
      sm2Verify(VECTOR_SIGNED_MESSAGE, VECTOR_R_HEX + VECTOR_S_HEX, vectorPublicKey, { signatureEncoding: 'raw' }),
    ).toBe(true); // default user id
    expect(sm2ConvertSignature(VECTOR_RAW_SIGNATURE, 'raw', 'der')).toEqual(VECTOR_DER_SIGNATURE);
    expect(sm2ConvertSignature(VECTOR_DER_SIGNATURE, 'der', 'raw')).toEqual(VECTOR_RAW_SIGNATURE);
  });

  test('verification refuses the example when M, ID, r or s changes by one bit', () => {
    const verifyRaw = (message: Uint8Array, signature: Uint8Array, userId: string): boolean =>
      sm2Verify(message, signature, vectorPublicKey, { signatureEncoding: 'raw', userId });
    for (let byteIndex = 0; byteIndex < VECTOR_SIGNED_MESSAGE.length; byteIndex++) {
      expect(verifyRaw(flipBit(VECTOR_SIGNED_MESSAGE, byteIndex * 8 + 7), VECTOR_RAW_SIGNATURE, VECTOR_USER_ID)).toBe(
        false,
      );
    }
    for (let byteIndex = 0; byteIndex < VECTOR_USER_ID.length; byteIndex++) {
      const userId = flipBit(ascii(VECTOR_USER_ID), byteIndex * 8 + 7).toString('ascii'); // '1' ↔ '0', '2' ↔ '3', …
      expect(verifyRaw(VECTOR_SIGNED_MESSAGE, VECTOR_RAW_SIGNATURE, userId)).toBe(false);
    }
    for (const bitIndex of [0, 1, 100, 200, 255, 256, 257, 300, 400, 511]) {
      expect(verifyRaw(VECTOR_SIGNED_MESSAGE, flipBit(VECTOR_RAW_SIGNATURE, bitIndex), VECTOR_USER_ID)).toBe(false);
    }
    const derFlipped = sm2ConvertSignature(flipBit(VECTOR_RAW_SIGNATURE, 511), 'raw', 'der');
    expect(sm2Verify(VECTOR_SIGNED_MESSAGE, derFlipped, vectorPublicKey, { signatureEncoding: 'der' })).toBe(false);
  });

  test('r or s outside [1, n - 1] is a failed verification, not an error', () => {
    const n = 'fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123';
    const options = { signatureEncoding: 'raw', userId: VECTOR_USER_ID } as const;
    for (const signatureHex of ['00'.repeat(32) + VECTOR_S_HEX, VECTOR_R_HEX + '00'.repeat(32), VECTOR_R_HEX + n]) {
      expect(sm2Verify(VECTOR_SIGNED_MESSAGE, signatureHex, vectorPublicKey, options)).toBe(false);
    }
  });

  test('malformed signatures fail with typed errors', () => {
    const raw = { signatureEncoding: 'raw' } as const;
    const der = { signatureEncoding: 'der' } as const;
    const message = VECTOR_SIGNED_MESSAGE;
    expectInputError(
      () => sm2Verify(message, VECTOR_RAW_SIGNATURE.subarray(1), vectorPublicKey, raw),
      'malformed_signature',
    );
    expectInputError(() => sm2Verify(message, `${VECTOR_R_HEX}${VECTOR_S_HEX}0`, vectorPublicKey, raw), 'invalid_hex');
    expectInputError(() => sm2Verify(message, VECTOR_RAW_SIGNATURE, vectorPublicKey, der), 'malformed_signature');
    const derCases = {
      trailingByte: Buffer.concat([VECTOR_DER_SIGNATURE, Buffer.of(0)]),
      truncated: VECTOR_DER_SIGNATURE.subarray(0, -1),
      nonMinimalInteger: hex(`304702220000${VECTOR_R_HEX}022100${VECTOR_S_HEX}`),
      negativeInteger: hex(`30450220${VECTOR_R_HEX}022100${VECTOR_S_HEX}`),
      threeIntegers: hex(`3049022100${VECTOR_R_HEX}022100${VECTOR_S_HEX}020101`),
      nonMinimalLength: hex(`308146022100${VECTOR_R_HEX}022100${VECTOR_S_HEX}`),
      notASequence: hex(`3146022100${VECTOR_R_HEX}022100${VECTOR_S_HEX}`),
      integerTooLong: hex(`3047022201${VECTOR_R_HEX}022100${VECTOR_S_HEX}`),
    };
    for (const signature of Object.values(derCases)) {
      expectInputError(() => sm2Verify(message, signature, vectorPublicKey, der), 'malformed_signature');
    }
  });

  test('the encryption example decrypts in every serialization, and converts to its published ASN.1 exactly', () => {
    const decrypt = (ciphertext: Uint8Array, ciphertextEncoding: Sm2CiphertextEncoding): Buffer =>
      sm2Decrypt(ciphertext, vectorPrivateKey, { ciphertextEncoding });
    expect(decrypt(VECTOR_C1C3C2, 'c1c3c2')).toEqual(VECTOR_ENCRYPTED_MESSAGE);
    expect(decrypt(VECTOR_C1C3C2_WITHOUT_04, 'c1c3c2-without-04')).toEqual(VECTOR_ENCRYPTED_MESSAGE);
    expect(decrypt(VECTOR_ASN1_CIPHERTEXT, 'asn1')).toEqual(VECTOR_ENCRYPTED_MESSAGE);
    expect(sm2ConvertCiphertext(VECTOR_C1C3C2, 'c1c3c2', 'asn1')).toEqual(VECTOR_ASN1_CIPHERTEXT);
    expect(sm2ConvertCiphertext(VECTOR_ASN1_CIPHERTEXT, 'asn1', 'c1c3c2-without-04')).toEqual(VECTOR_C1C3C2_WITHOUT_04);
    expect(sm2ConvertCiphertext(VECTOR_C1C3C2_WITHOUT_04, 'c1c3c2-without-04', 'c1c3c2')).toEqual(VECTOR_C1C3C2);
  });

  test('a serialization is never guessed: x1 of the example starts with 04, so the wrong contract fails loudly', () => {
    expect(VECTOR_C1C3C2_WITHOUT_04[0]).toBe(0x04);
    const error = errorOf(() =>
      sm2Decrypt(VECTOR_C1C3C2_WITHOUT_04, vectorPrivateKey, { ciphertextEncoding: 'c1c3c2' }),
    );
    expect(error instanceof CryptoInputError || error instanceof CryptoDecryptionError).toBe(true);
    expectInputError(
      () => sm2Decrypt(VECTOR_C1C3C2.subarray(1, 40), vectorPrivateKey, { ciphertextEncoding: 'c1c3c2' }),
      'malformed_ciphertext',
    );
  });

  test('a ciphertext changed by one bit in C1, C3 or C2, or opened with another key, is refused', () => {
    const options = { ciphertextEncoding: 'c1c3c2' } as const;
    const c3StartBit = (1 + 64) * 8;
    const c2StartBit = (1 + 64 + 32) * 8;
    for (const bitIndex of [c3StartBit, c3StartBit + 255, c2StartBit, c2StartBit + 100]) {
      expectDecryptionError(
        () => sm2Decrypt(flipBit(VECTOR_C1C3C2, bitIndex), vectorPrivateKey, options),
        'authentication_failed',
      );
    }
    // C1 off the curve: the point is checked before any arithmetic.
    expectInputError(
      () => sm2Decrypt(flipBit(VECTOR_C1C3C2, 8 + 255), vectorPrivateKey, options),
      'malformed_ciphertext',
    );
    expectDecryptionError(() => sm2Decrypt(VECTOR_C1C3C2, Sm2PrivateKey.generate(), options), 'authentication_failed');
  });

  test('interoperates with sm-crypto-v2 used directly (hash: true, the same user id, C1C3C2)', () => {
    const key = Sm2PrivateKey.generate();
    const keyHex = key.exportBytes().toString('hex');
    const message = ascii('{"amount":"12.30","payee":"商户"}');
    const userId = 'partner-7@example.cn';

    const libraryDer = sm2Library.doSignature(message, keyHex, {
      hash: true,
      der: true,
      userId,
      publicKey: key.publicKey.toHex(),
    });
    expect(sm2Verify(message, libraryDer, key.publicKey, { signatureEncoding: 'der', userId })).toBe(true);
    const ours = sm2Sign(message, key, { signatureEncoding: 'raw', userId });
    expect(
      sm2Library.doVerifySignature(message, ours.toString('hex'), key.publicKey.toHex(), {
        hash: true,
        der: false,
        userId,
      }),
    ).toBe(true);
    expect(
      sm2Library.doVerifySignature(message, ours.toString('hex'), key.publicKey.toHex(), {
        hash: true,
        der: false,
        userId: VECTOR_USER_ID,
      }),
    ).toBe(false);

    const libraryCiphertext = sm2Library.doEncrypt(message, key.publicKey.toHex(), 1, { asn1: false });
    expect(sm2Decrypt(libraryCiphertext, key, { ciphertextEncoding: 'c1c3c2-without-04' })).toEqual(message);
    const libraryAsn1 = sm2Library.doEncrypt(message, key.publicKey.toHex(), 1, { asn1: true });
    expect(sm2Decrypt(libraryAsn1, key, { ciphertextEncoding: 'asn1' })).toEqual(message);
    const oursWithout04 = sm2Encrypt(message, key.publicKey, { ciphertextEncoding: 'c1c3c2-without-04' });
    expect(
      Buffer.from(sm2Library.doDecrypt(oursWithout04.toString('hex'), keyHex, 1, { output: 'array', asn1: false })),
    ).toEqual(message);
    const oursAsn1 = sm2Encrypt(message, key.publicKey, { ciphertextEncoding: 'asn1' });
    expect(
      Buffer.from(sm2Library.doDecrypt(oursAsn1.toString('hex'), keyHex, 1, { output: 'array', asn1: true })),
    ).toEqual(message);
  });

  test("Node's own SM2 signs over an empty user id, and only once the key is re-imported", () => {
    const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'SM2' });
    const message = ascii('message digest');
    const point = publicKey.export({ type: 'spki', format: 'der' }).subarray(-65);
    const asSm2 = (signature: Buffer, userId: string): boolean =>
      sm2Verify(message, signature, point, { signatureEncoding: 'der', userId });
    // A freshly generated key is an 'ec' key: crypto.sign makes an ECDSA signature on the SM2 curve, not SM2.
    expect(asSm2(nodeCrypto.sign(null, message, privateKey), '')).toBe(false);
    // Imported from PKCS#8 the key becomes an SM2 key (asymmetricKeyType undefined), and signs SM2 with ID = ''.
    const reimported = nodeCrypto.createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const nodeSignature = nodeCrypto.sign(null, message, reimported);
    expect(asSm2(nodeSignature, '')).toBe(true);
    expect(asSm2(nodeSignature, VECTOR_USER_ID)).toBe(false);
    // So Node cannot check the standard signature, whose Z covers the default id.
    expect(nodeCrypto.verify(null, VECTOR_SIGNED_MESSAGE, vectorPublicKeyPem(), VECTOR_DER_SIGNATURE)).toBe(false);
  });

  describe('cross-checked with the openssl binary (distid)', () => {
    let folder = '';
    const file = (name: string): string => join(folder, name);
    const openssl = (args: string[]): { status: number | null; stdout: Buffer; stderr: string } => {
      const result = spawnSync('openssl', args);
      if (result.error) throw new Error(`openssl could not run: ${result.error.message}`);
      return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
    };

    beforeAll(() => {
      folder = mkdtempSync(join(tmpdir(), 'sm-crypto-'));
      const privateKey = nodeCrypto.createPrivateKey({ key: vectorSec1Der(), format: 'der', type: 'sec1' });
      writeFileSync(file('key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      writeFileSync(file('pub.pem'), vectorPublicKeyPem());
    });
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    const signWithOpenssl = (message: Uint8Array, distid: string | undefined): Buffer => {
      writeFileSync(file('message.bin'), message);
      const distidOptions = distid === undefined ? [] : ['-pkeyopt', `distid:${distid}`];
      const { status, stderr } = openssl(
        ['pkeyutl', '-sign', '-rawin', '-digest', 'sm3', '-inkey', file('key.pem'), '-in', file('message.bin')].concat(
          distidOptions,
          ['-out', file('openssl.sig')],
        ),
      );
      expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
      return readFileSync(file('openssl.sig'));
    };
    const opensslVerifies = (message: Uint8Array, derSignature: Uint8Array, distid: string): boolean => {
      writeFileSync(file('message.bin'), message);
      writeFileSync(file('ours.sig'), derSignature);
      const { status } = openssl([
        'pkeyutl',
        '-verify',
        '-rawin',
        '-digest',
        'sm3',
        '-pubin',
        '-inkey',
        file('pub.pem'),
        '-in',
        file('message.bin'),
        '-sigfile',
        file('ours.sig'),
        '-pkeyopt',
        `distid:${distid}`,
      ]);
      return status === 0;
    };

    test('openssl accepts the published example signature', () => {
      expect(opensslVerifies(VECTOR_SIGNED_MESSAGE, VECTOR_DER_SIGNATURE, VECTOR_USER_ID)).toBe(true);
      expect(opensslVerifies(flipBit(VECTOR_SIGNED_MESSAGE, 0), VECTOR_DER_SIGNATURE, VECTOR_USER_ID)).toBe(false);
    });

    test.each([VECTOR_USER_ID, 'ALICE123@YAHOO.COM'])(
      "openssl's signature verifies here and ours there (id %s)",
      (userId) => {
        const message = ascii(`transfer 100.00 CNY to ${userId}`);
        const options = { signatureEncoding: 'der', userId } as const;
        const opensslSignature = signWithOpenssl(message, userId);
        expect(sm2Verify(message, opensslSignature, vectorPublicKey, options)).toBe(true);
        expect(sm2Verify(flipBit(message, 3), opensslSignature, vectorPublicKey, options)).toBe(false);

        const ours = sm2Sign(message, vectorPrivateKey, options);
        expect(opensslVerifies(message, ours, userId)).toBe(true);
        expect(opensslVerifies(flipBit(message, 3), ours, userId)).toBe(false);
        expect(opensslVerifies(message, ours, 'another id')).toBe(false);
      },
    );

    test('without distid openssl uses an empty id, as Node does', () => {
      const message = ascii('no distid');
      const opensslSignature = signWithOpenssl(message, undefined);
      expect(sm2Verify(message, opensslSignature, vectorPublicKey, { signatureEncoding: 'der', userId: '' })).toBe(
        true,
      );
      expect(sm2Verify(message, opensslSignature, vectorPublicKey, { signatureEncoding: 'der' })).toBe(false);
    });

    test("openssl's SM2 ciphertext (ASN.1) decrypts here and ours there", () => {
      const message = ascii('SM4 key 0123456789abcdef');
      writeFileSync(file('plain.bin'), message);
      const encrypted = openssl(['pkeyutl', '-encrypt', '-pubin', '-inkey', file('pub.pem'), '-in', file('plain.bin')]);
      expect(encrypted.status).toBe(0);
      expect(sm2Decrypt(encrypted.stdout, vectorPrivateKey, { ciphertextEncoding: 'asn1' })).toEqual(message);

      writeFileSync(file('ours.der'), sm2Encrypt(message, vectorPublicKey, { ciphertextEncoding: 'asn1' }));
      const decrypted = openssl(['pkeyutl', '-decrypt', '-inkey', file('key.pem'), '-in', file('ours.der')]);
      expect(decrypted.status).toBe(0);
      expect(decrypted.stdout).toEqual(message);
    });
  });

  test('property: sign → verify for any message, user id and encoding; one flipped message bit fails', () => {
    const key = Sm2PrivateKey.generate();
    const precomputed = Sm2PublicKey.from(key.publicKey.toBytes(), { precompute: true });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.string({ maxLength: 20 }),
        fc.constantFrom<Sm2SignatureEncoding>('raw', 'der'),
        fc.nat(),
        (message, userId, signatureEncoding, bitSeed) => {
          const options = { signatureEncoding, userId };
          const signature = sm2Sign(message, key, options);
          expect(sm2Verify(message, signature, key.publicKey, options)).toBe(true);
          expect(sm2Verify(message, signature, precomputed, options)).toBe(true);
          const e = sm2ComputeDigest(message, key.publicKey, { userId }).toString('hex');
          expect(e).toBe(sm2Library.getHash(message, key.publicKey.toHex(), userId));
          const tampered = flipBit(message, bitSeed % (message.length * 8));
          expect(sm2Verify(tampered, signature, precomputed, options)).toBe(false);
        },
      ),
      { numRuns: 15 },
    );
  });

  test('property: encrypt → decrypt for any message and serialization', () => {
    const key = Sm2PrivateKey.generate();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.constantFrom<Sm2CiphertextEncoding>('c1c3c2', 'c1c3c2-without-04', 'asn1'),
        (message, ciphertextEncoding) => {
          const ciphertext = sm2Encrypt(message, key.publicKey, { ciphertextEncoding });
          expect(sm2Decrypt(ciphertext, key, { ciphertextEncoding })).toEqual(Buffer.from(message));
          expect(sm2Decrypt(ciphertext.toString('hex'), key.exportBytes(), { ciphertextEncoding })).toEqual(
            Buffer.from(message),
          );
        },
      ),
      { numRuns: 15 },
    );
  });

  test('a private key never shows its material; export is explicit', () => {
    const shown = [
      JSON.stringify({ key: vectorPrivateKey }),
      inspect(vectorPrivateKey, { showHidden: true, depth: 5 }),
      String(vectorPrivateKey),
      `${vectorPrivateKey}`,
      JSON.stringify(Object.entries(vectorPrivateKey)),
    ];
    for (const text of shown) expect(text.toLowerCase()).not.toContain(VECTOR_PRIVATE_KEY_HEX.slice(8, 40));
    expect(vectorPrivateKey.exportBytes().toString('hex')).toBe(VECTOR_PRIVATE_KEY_HEX);
    expect(vectorPrivateKey.publicKey.toHex()).toBe(VECTOR_PUBLIC_KEY_HEX);
  });

  test('keys: bad lengths, out-of-range scalars, points off the curve; compressed points are accepted', () => {
    expectInputError(() => Sm2PrivateKey.from(VECTOR_PRIVATE_KEY_HEX.slice(2)), 'invalid_key_length');
    expectInputError(() => Sm2PrivateKey.from('00'.repeat(32)), 'invalid_key');
    const nMinus1 = 'fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122';
    expectInputError(() => Sm2PrivateKey.from(nMinus1), 'invalid_key');
    expectInputError(() => Sm2PrivateKey.from(`${VECTOR_PRIVATE_KEY_HEX.slice(1)}x`), 'invalid_hex');
    expectInputError(() => Sm2PublicKey.from(VECTOR_PUBLIC_KEY_HEX.slice(2)), 'invalid_key'); // no 04
    expectInputError(() => Sm2PublicKey.from(flipBit(hex(VECTOR_PUBLIC_KEY_HEX), 519)), 'invalid_key');
    expectInputError(() => Sm2PublicKey.from('00'), 'invalid_key'); // the point at infinity
    const compressed = nodeCrypto.ECDH.convertKey(VECTOR_PUBLIC_KEY_HEX, 'SM2', 'hex', 'hex', 'compressed') as string;
    expect(Sm2PublicKey.from(compressed).equals(vectorPublicKey)).toBe(true);
    expect(
      sm2Verify(VECTOR_SIGNED_MESSAGE, VECTOR_RAW_SIGNATURE, compressed, {
        signatureEncoding: 'raw',
        userId: VECTOR_USER_ID,
      }),
    ).toBe(true);
  });

  test('user ids: UTF-8 up to 8191 bytes; lone surrogates and longer ids are refused', () => {
    const options = (userId: string) => ({ signatureEncoding: 'raw', userId }) as const;
    const longest = 'a'.repeat(8191);
    const signature = sm2Sign(VECTOR_SIGNED_MESSAGE, vectorPrivateKey, options(longest));
    expect(sm2Verify(VECTOR_SIGNED_MESSAGE, signature, vectorPublicKey, options(longest))).toBe(true);
    expectInputError(() => sm2Sign(VECTOR_SIGNED_MESSAGE, vectorPrivateKey, options(`${longest}a`)), 'invalid_user_id');
    expectInputError(() => sm2Sign(VECTOR_SIGNED_MESSAGE, vectorPrivateKey, options('id\ud800')), 'invalid_user_id');
  });

  test('plaintext bounds: empty and over-long plaintexts are refused', () => {
    const options = { ciphertextEncoding: 'c1c3c2' } as const;
    expectInputError(() => sm2Encrypt(Buffer.alloc(0), vectorPublicKey, options), 'invalid_data_length');
    expectInputError(() => sm2Encrypt(Buffer.alloc(1024 * 1024 + 1), vectorPublicKey, options), 'invalid_data_length');
  });
});

/** The example key as SEC1 DER: ECPrivateKey { 1, d, [0] sm2 curve OID, [1] public point }. */
function vectorSec1Der(): Buffer {
  return hex(`30770201010420${VECTOR_PRIVATE_KEY_HEX}a00a06082a811ccf5501822da144034200${VECTOR_PUBLIC_KEY_HEX}`);
}

function vectorPublicKeyPem(): string {
  const privateKey = nodeCrypto.createPrivateKey({ key: vectorSec1Der(), format: 'der', type: 'sec1' });
  return nodeCrypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}
