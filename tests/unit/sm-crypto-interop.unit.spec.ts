/**
 * Interoperability with the original `sm-crypto` (JuneAndGreen), which partners run in browsers and mini-programs:
 * its SM2 signatures verify here and ours there (raw and DER, default and custom user id); its C1C3C2 ciphertexts
 * (no 04 prefix) decrypt here and ours there; its SM3, HMAC-SM3 and SM4 agree with ours on random inputs.
 * Every sm-crypto option is written out (see tests/support/sm-crypto.d.ts), except where a test says why not.
 */
import fc from 'fast-check';
import { sm2 as smCryptoSm2, sm3 as smCryptoSm3, sm4 as smCryptoSm4 } from 'sm-crypto';
import smCryptoPackage from 'sm-crypto/package.json';
import {
  hmacSm3,
  SM2_DEFAULT_USER_ID,
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
} from '../../security';
import type { Sm4Padding } from '../../security';

function flipBit(bytes: Uint8Array, bitIndex: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bitIndex >> 3]! ^= 0x80 >> (bitIndex & 7);
  return copy;
}

/** A signing key as a partner makes it: with sm-crypto. */
const partnerKeyPair = smCryptoSm2.generateKeyPairHex();
const partnerPrivateKey = Sm2PrivateKey.from(partnerKeyPair.privateKey);
/** Verification keys of known partners are precomputed in production; check that path too. */
const partnerPublicKey = Sm2PublicKey.from(partnerKeyPair.publicKey, { precompute: true });
/** Our own key. */
const ourPrivateKey = Sm2PrivateKey.generate();
const ourPublicKeyHex = ourPrivateKey.publicKey.toHex();

const USER_IDS = [SM2_DEFAULT_USER_ID, 'partner-7@example.cn', '商户-0042'];
const SIGNATURE_CASES = USER_IDS.flatMap((userId) => [
  { userId, der: false },
  { userId, der: true },
]);
/** sm-crypto's SM2 runs on jsbn at a few dozen operations per second: keep SM2 properties short. */
const SM2_RUNS = 3;
const message = fc.uint8Array({ minLength: 0, maxLength: 300 });
/** sm-crypto's own UTF-8 encoder gets these code points wrong (see the SM3 tests). */
const MISENCODED_CODE_POINT_MIN = 0x40000;
const MISENCODED_CODE_POINT_MAX = 0xfffff;

test('the installed sm-crypto is ≥ 0.5.8 (earlier versions draw SM2 keys and nonces from a weak RNG in Node)', () => {
  const [major, minor, patch] = smCryptoPackage.version.split('.').map(Number) as [number, number, number];
  expect(major * 1e6 + minor * 1e3 + patch).toBeGreaterThanOrEqual(5008);
});

describe('SM2 signatures, both ways', () => {
  test.each(SIGNATURE_CASES)("sm-crypto's signature verifies here (userId $userId, der $der)", ({ userId, der }) => {
    fc.assert(
      fc.property(message, (signed) => {
        const signatureHex = smCryptoSm2.doSignature(signed, partnerKeyPair.privateKey, {
          hash: true,
          der,
          publicKey: partnerKeyPair.publicKey,
          userId,
        });
        const options = { signatureEncoding: der ? 'der' : 'raw', userId } as const;
        expect(sm2Verify(signed, signatureHex, partnerPublicKey, options)).toBe(true);
        expect(sm2Verify(signed, signatureHex, partnerKeyPair.publicKey, options)).toBe(true);
        expect(sm2Verify(signed, signatureHex, partnerPublicKey, { ...options, userId: `${userId}x` })).toBe(false);
        const tampered = Buffer.concat([signed, Buffer.of(0)]);
        expect(sm2Verify(tampered, signatureHex, partnerPublicKey, options)).toBe(false);
      }),
      { numRuns: SM2_RUNS },
    );
  });

  test.each(SIGNATURE_CASES)('our signature verifies in sm-crypto (userId $userId, der $der)', ({ userId, der }) => {
    fc.assert(
      fc.property(message, fc.boolean(), (signed, changeUserId) => {
        const signature = sm2Sign(signed, ourPrivateKey, { signatureEncoding: der ? 'der' : 'raw', userId });
        const signatureHex = signature.toString('hex');
        expect(smCryptoSm2.doVerifySignature(signed, signatureHex, ourPublicKeyHex, { hash: true, der, userId })).toBe(
          true,
        );
        // One refusal per run (sm-crypto's verify is slow): another user id, or the message one byte longer.
        const refused = changeUserId
          ? smCryptoSm2.doVerifySignature(signed, signatureHex, ourPublicKeyHex, {
              hash: true,
              der,
              userId: `${userId}x`,
            })
          : smCryptoSm2.doVerifySignature(Buffer.concat([signed, Buffer.of(0)]), signatureHex, ourPublicKeyHex, {
              hash: true,
              der,
              userId,
            });
        expect(refused).toBe(false);
      }),
      { numRuns: SM2_RUNS },
    );
  });

  test('a partner that leaves userId out signs under our default id, and verifies ours under it', () => {
    // The one call that omits an option on purpose: it is what a partner who never heard of the user id sends.
    const signed = Buffer.from('{"amount":"12.30"}', 'utf8');
    const theirs = smCryptoSm2.doSignature(signed, partnerKeyPair.privateKey, {
      hash: true,
      der: false,
      publicKey: partnerKeyPair.publicKey,
    });
    const raw = { signatureEncoding: 'raw', userId: SM2_DEFAULT_USER_ID } as const;
    expect(sm2Verify(signed, theirs, partnerPublicKey, raw)).toBe(true);
    const ours = sm2Sign(signed, ourPrivateKey, raw).toString('hex');
    expect(smCryptoSm2.doVerifySignature(signed, ours, ourPublicKeyHex, { hash: true, der: false })).toBe(true);
  });

  test('a partner that signs a JavaScript string signs its UTF-8 bytes', () => {
    const body = '{"payee":"碳普惠商户","amount":"8.80"}';
    const theirs = smCryptoSm2.doSignature(body, partnerKeyPair.privateKey, {
      hash: true,
      der: true,
      publicKey: partnerKeyPair.publicKey,
      userId: SM2_DEFAULT_USER_ID,
    });
    const der = { signatureEncoding: 'der', userId: SM2_DEFAULT_USER_ID } as const;
    expect(sm2Verify(Buffer.from(body, 'utf8'), theirs, partnerPublicKey, der)).toBe(true);
    expect(sm2Verify(Buffer.from(body, 'latin1'), theirs, partnerPublicKey, der)).toBe(false);
  });

  test('sm-crypto accepts the GM/T 0003.5 example signature, raw and DER, and refuses it with one bit changed', () => {
    const publicKeyHex =
      '0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020' +
      'ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13';
    const r = 'f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3';
    const s = 'b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa';
    const signed = Buffer.from('message digest', 'ascii');
    const options = (der: boolean) => ({ hash: true, der, userId: '1234567812345678' });
    expect(smCryptoSm2.doVerifySignature(signed, r + s, publicKeyHex, options(false))).toBe(true);
    expect(smCryptoSm2.doVerifySignature(signed, `3046022100${r}022100${s}`, publicKeyHex, options(true))).toBe(true);
    expect(smCryptoSm2.doVerifySignature(flipBit(signed, 7), r + s, publicKeyHex, options(false))).toBe(false);
  });
});

describe('SM2 encryption: sm-crypto cipherMode 1 is C1C3C2 without the 04 prefix', () => {
  const plaintext = fc.uint8Array({ minLength: 1, maxLength: 300 });

  test("sm-crypto's ciphertext decrypts here as c1c3c2-without-04, and as c1c3c2 once 04 is put in front", () => {
    fc.assert(
      fc.property(plaintext, (secret) => {
        const ciphertextHex = smCryptoSm2.doEncrypt(secret, ourPublicKeyHex, 1);
        expect(ciphertextHex).toHaveLength(2 * (64 + 32 + secret.length));
        const decrypted = sm2Decrypt(ciphertextHex, ourPrivateKey, { ciphertextEncoding: 'c1c3c2-without-04' });
        expect(decrypted).toEqual(Buffer.from(secret));
        expect(sm2Decrypt(`04${ciphertextHex}`, ourPrivateKey, { ciphertextEncoding: 'c1c3c2' })).toEqual(
          Buffer.from(secret),
        );
      }),
      { numRuns: SM2_RUNS },
    );
  });

  test('our c1c3c2-without-04 ciphertext decrypts in sm-crypto', () => {
    fc.assert(
      fc.property(plaintext, (secret) => {
        const ciphertext = sm2Encrypt(secret, partnerPublicKey, { ciphertextEncoding: 'c1c3c2-without-04' });
        const decrypted = smCryptoSm2.doDecrypt(ciphertext.toString('hex'), partnerKeyPair.privateKey, 1, {
          output: 'array',
        });
        expect(Buffer.from(decrypted)).toEqual(Buffer.from(secret));
        // sm-crypto's own check of C3: a changed C2 byte gives it nothing back.
        const tampered = flipBit(ciphertext, ciphertext.length * 8 - 1).toString('hex');
        expect(smCryptoSm2.doDecrypt(tampered, partnerKeyPair.privateKey, 1, { output: 'array' })).toEqual([]);
      }),
      { numRuns: SM2_RUNS },
    );
  });

  test('a key pair made by sm-crypto imports here: same public key, and it decrypts; another key does not', () => {
    const derivedPublicKeyHex = partnerPrivateKey.publicKey.toHex();
    expect(derivedPublicKeyHex).toBe(partnerKeyPair.publicKey);
    const secret = Buffer.from('SM4 key 0123456789abcdef', 'ascii');
    const ciphertextHex = smCryptoSm2.doEncrypt(secret, derivedPublicKeyHex, 1);
    expect(sm2Decrypt(ciphertextHex, partnerPrivateKey, { ciphertextEncoding: 'c1c3c2-without-04' })).toEqual(secret);
    expect(() => sm2Decrypt(ciphertextHex, ourPrivateKey, { ciphertextEncoding: 'c1c3c2-without-04' })).toThrow(
      /does not decrypt/,
    );
  });
});

describe('SM3 and HMAC-SM3 agree with sm-crypto', () => {
  test('property: SM3 of bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1000 }), (data) => {
        expect(smCryptoSm3(data)).toBe(sm3Digest(data).toString('hex'));
      }),
      { numRuns: 200 },
    );
  });

  test('property: SM3 of text is SM3 of its UTF-8 bytes, outside U+40000–U+FFFFF', () => {
    const codePointOutsideMisencodedRange = fc.oneof(
      fc.integer({ min: 0, max: 0xd7ff }),
      fc.integer({ min: 0xe000, max: MISENCODED_CODE_POINT_MIN - 1 }),
      fc.integer({ min: MISENCODED_CODE_POINT_MAX + 1, max: 0x10ffff }),
    );
    fc.assert(
      fc.property(
        fc.string({ unit: codePointOutsideMisencodedRange.map((cp) => String.fromCodePoint(cp)), maxLength: 100 }),
        (text) => {
          expect(smCryptoSm3(text)).toBe(sm3Digest(Buffer.from(text, 'utf8')).toString('hex'));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('sm-crypto hashes and encrypts text in U+40000–U+FFFFF with a wrong lead byte; SM2 signing is unaffected', () => {
    // Its utf8ToArray (sm3 and sm4) masks the lead byte with 0x1c instead of 0x07, so F1–F3 become F0. Affected:
    // variation selectors U+E0100… (CJK ideographic variation sequences, e.g. in names), tags, private use.
    // Partners must hash and encrypt bytes, not strings; doSignature encodes strings correctly.
    for (const text of ['张\u{E0100}', '\u{F0000}', '\u{40000}']) {
      const utf8 = Buffer.from(text, 'utf8');
      const asSmCryptoEncodes = Buffer.from(utf8);
      asSmCryptoEncodes[utf8.length - 4] = 0xf0;
      expect(asSmCryptoEncodes).not.toEqual(utf8);
      expect(smCryptoSm3(text)).toBe(sm3Digest(asSmCryptoEncodes).toString('hex'));

      const key = Buffer.alloc(16, 7);
      const sm4Options = { mode: 'ecb', padding: 'pkcs#7', output: 'array' } as const;
      expect(Buffer.from(smCryptoSm4.encrypt(text, key, sm4Options))).toEqual(
        sm4EcbEncrypt(asSmCryptoEncodes, { key, padding: 'pkcs7' }),
      );

      const signatureHex = smCryptoSm2.doSignature(text, partnerKeyPair.privateKey, {
        hash: true,
        der: false,
        publicKey: partnerKeyPair.publicKey,
        userId: SM2_DEFAULT_USER_ID,
      });
      const raw = { signatureEncoding: 'raw', userId: SM2_DEFAULT_USER_ID } as const;
      expect(sm2Verify(utf8, signatureHex, partnerPublicKey, raw)).toBe(true);
    }
  });

  test('property: HMAC-SM3, keys shorter and longer than the 64-byte block', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 100 }), fc.uint8Array({ maxLength: 300 }), (key, data) => {
        expect(smCryptoSm3(data, { mode: 'hmac', key })).toBe(hmacSm3(key, data).toString('hex'));
      }),
      { numRuns: 100 },
    );
  });
});

describe('SM4 agrees with sm-crypto', () => {
  test('property: ECB and CBC, with and without PKCS#7 padding, both ways', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom<'ecb' | 'cbc'>('ecb', 'cbc'),
        fc.constantFrom<Sm4Padding>('pkcs7', 'none'),
        (key, iv, data, mode, padding) => {
          const plaintext = padding === 'none' ? data.subarray(0, data.length - (data.length % 16)) : data;
          const smCryptoPadding = padding === 'pkcs7' ? 'pkcs#7' : 'none';
          const smCryptoOptions =
            mode === 'cbc'
              ? ({ mode, iv, padding: smCryptoPadding, output: 'array' } as const)
              : ({ mode, padding: smCryptoPadding, output: 'array' } as const);
          const theirs = Buffer.from(smCryptoSm4.encrypt(plaintext, key, smCryptoOptions));
          const ours =
            mode === 'cbc'
              ? sm4CbcEncrypt(plaintext, { key, iv, padding })
              : sm4EcbEncrypt(plaintext, { key, padding });
          expect(ours).toEqual(theirs);
          const decryptedHere =
            mode === 'cbc' ? sm4CbcDecrypt(theirs, { key, iv, padding }) : sm4EcbDecrypt(theirs, { key, padding });
          expect(decryptedHere).toEqual(Buffer.from(plaintext));
          expect(Buffer.from(smCryptoSm4.decrypt(ours, key, smCryptoOptions))).toEqual(Buffer.from(plaintext));
        },
      ),
      { numRuns: 150 },
    );
  });
});
