/**
 * POS security: the vectors of research §2 (K1–K3 key download, PIN blocks, X9.19 / X9.9 MACs, SM4 KAT) on exact
 * bytes; the CUP "ECB" MAC against an independent step-by-step oracle (no published MAB exists in the notes);
 * SM4 against the separate sm-crypto implementation; the field-64 MAC over real messages; response-code table.
 */
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { sm4 as smCryptoSm4 } from 'sm-crypto';
import {
  CUP_POS_SPEC,
  cupEcbMac,
  decodeKeyDownload,
  decodePinBlockFormat0,
  decryptKeyUnder,
  decryptPinBlock,
  ecbDecrypt,
  ecbEncrypt,
  encodeKeyDownload,
  encodePinBlockFormat0,
  encryptKeyUnder,
  encryptPinBlock,
  generateWorkingKeys,
  KEY_DOWNLOAD_LAYOUTS,
  keyCheckValue,
  keyDownloadLayout,
  macBlockOf,
  packMessage,
  panFromTrack2,
  PosGatewayError,
  recoverPin,
  RESPONSE_CODES,
  describeResponseCode,
  signMessage,
  unpackMessage,
  verifyMessageMac,
  verifyReceivedMac,
  withOddParity,
  x919RetailMac,
  x99CbcMac,
} from '../../pos-gateway';
import type { MacKey, PosMessage } from '../../pos-gateway';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const upperHex = (bytes: Buffer) => bytes.toString('hex').toUpperCase();

// ---------------------------------------------------------------------------------------------------------------
// Key download (research §2.1)

const K1_TMK = hex('CA5D92598DCA48CE8A4C76361A9269E9');
const K1_FIELD_62 = hex('6701EAD6A9AD51E51AA406E2C27FCFA9 8D0A74B8 B651F9E9BACE9AE1 0000000000000000 AB7153CA');
const K1_PIK = hex('807A23AD32B36D457AE91FDF927570EA');
const K1_MAK = hex('5BB5C72CD00B7338');

describe('vector K1: sign-on key download, 60.3 = 003 (40-byte field 62)', () => {
  const layout = keyDownloadLayout('003')!;

  test('decrypts PIK and MAK under the TMK and checks both check values', () => {
    expect(decodeKeyDownload(layout, K1_TMK, K1_FIELD_62)).toEqual({ ok: true, value: { pik: K1_PIK, mak: K1_MAK } });
  });

  test('check values: 3DES(PIK, 0^8) = 8D0A74B8C5EF66C6, DES(MAK, 0^8) = AB7153CA985B10C2', () => {
    expect(upperHex(keyCheckValue('des', K1_PIK, 8))).toBe('8D0A74B8C5EF66C6');
    expect(upperHex(keyCheckValue('des', K1_MAK, 8))).toBe('AB7153CA985B10C2');
  });

  test('the host side builds exactly the published field 62 from the clear keys', () => {
    expect(upperHex(encodeKeyDownload(layout, K1_TMK, { pik: K1_PIK, mak: K1_MAK }))).toBe(upperHex(K1_FIELD_62));
  });

  test('it travels as LLL binary field 62 of an 0810: prefix 00 40', () => {
    const bytes = packMessage({ mti: '0810', fields: { 39: '00', 62: K1_FIELD_62 } }, CUP_POS_SPEC);
    expect(bytes.ok && upperHex(bytes.value.subarray(12, 14))).toBe('0040');
    expect(bytes.ok && unpackMessage(bytes.value, CUP_POS_SPEC)).toMatchObject({
      ok: true,
      value: { fields: { 62: K1_FIELD_62 } },
    });
  });

  test('any flipped bit, a wrong length or a non-zero filler is refused with a typed error', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: K1_FIELD_62.length * 8 - 1 }), (bit) => {
        const tampered = Buffer.from(K1_FIELD_62);
        tampered[bit >> 3]! ^= 0x80 >> (bit & 7);
        const result = decodeKeyDownload(layout, K1_TMK, tampered);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(['kcv_mismatch', 'bad_filler']).toContain(result.error.code);
      }),
      { numRuns: 320 },
    );
    expect(decodeKeyDownload(layout, K1_TMK, K1_FIELD_62.subarray(0, 39))).toMatchObject({
      ok: false,
      error: { code: 'bad_length' },
    });
    expect(decodeKeyDownload(keyDownloadLayout('001')!, K1_TMK, K1_FIELD_62)).toMatchObject({
      ok: false,
      error: { code: 'bad_length' },
    });
  });
});

describe('vectors K2 and K3: keys under a key-encrypting key', () => {
  test('K2: TMK under transport key 31…31 → 1CF88AB5D64F314F9EF237FBD99E29CD, KCV 712C8C734B2E669E', () => {
    const transportKey = Buffer.alloc(16, 0x31);
    const tmk = decryptKeyUnder('des', transportKey, hex('E51D9047310F731798CF74AF483931B3'));
    expect(upperHex(tmk)).toBe('1CF88AB5D64F314F9EF237FBD99E29CD');
    expect(upperHex(keyCheckValue('des', tmk, 8))).toBe('712C8C734B2E669E');
    expect(upperHex(encryptKeyUnder('des', transportKey, tmk))).toBe('E51D9047310F731798CF74AF483931B3');
  });

  test('K2: PIK C7D50808A7DFFE62B9943B45A4C77FC7 has KCV AE103AE98D332DCB', () => {
    expect(upperHex(keyCheckValue('des', hex('C7D50808A7DFFE62B9943B45A4C77FC7'), 8))).toBe('AE103AE98D332DCB');
  });

  test('K3: TAK cipher 96D605EA176B7E9E under TMK 70F2…B923 → C24A8FB57AA20123', () => {
    const tak = decryptKeyUnder('des', hex('70F2A84CCBC2AE8625CBB0F2C22AB923'), hex('96D605EA176B7E9E'));
    expect(upperHex(tak)).toBe('C24A8FB57AA20123');
  });
});

describe('generated working keys round-trip through every layout', () => {
  test.each(Object.keys(KEY_DOWNLOAD_LAYOUTS))('layout %s', (code) => {
    const layout = KEY_DOWNLOAD_LAYOUTS[code]!;
    const tmk = layout.algorithm === 'sm4' ? Buffer.alloc(16, 0x5a) : K1_TMK;
    const keys = generateWorkingKeys(layout);
    const field62 = encodeKeyDownload(layout, tmk, keys);
    expect(field62.length).toBe(layout.parts.reduce((sum, part) => sum + part.lengthBytes, 0));
    expect(decodeKeyDownload(layout, tmk, field62)).toEqual({ ok: true, value: keys });
    if (layout.algorithm === 'des') {
      for (const key of [keys.pik, keys.mak]) expect(withOddParity(key)).toEqual(key);
    }
    // Another TMK decrypts to other keys, which fail their check values.
    const otherTmk = Buffer.from(tmk).fill(0x11, 0, 8);
    expect(decodeKeyDownload(layout, otherTmk, field62)).toMatchObject({ ok: false, error: { code: 'kcv_mismatch' } });
  });

  test('the SM4 layout uses SM4 check values (first 4 bytes of SM4(key, 0^16))', () => {
    const layout = KEY_DOWNLOAD_LAYOUTS.sm4!;
    const tmk = hex('0123456789ABCDEFFEDCBA9876543210');
    const keys = generateWorkingKeys(layout);
    const field62 = encodeKeyDownload(layout, tmk, keys);
    const theirs = (key: Buffer) =>
      Buffer.from(smCryptoSm4.encrypt(Buffer.alloc(16), key, { mode: 'ecb', padding: 'none', output: 'array' }));
    expect(field62.subarray(0, 16)).toEqual(
      Buffer.from(smCryptoSm4.encrypt(keys.pik, tmk, { mode: 'ecb', padding: 'none', output: 'array' })),
    );
    expect(field62.subarray(16, 20)).toEqual(theirs(keys.pik).subarray(0, 4));
    expect(field62.subarray(36, 40)).toEqual(theirs(keys.mak).subarray(0, 4));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// PIN blocks (research §2.2)

describe('ISO 9564 format 0 PIN blocks: the four vectors', () => {
  test.each([
    ['1234', '43219876543210987', '0412AC89ABCDEF67'],
    ['92389', '4000001234562', '0592789FFFEDCBA9'],
    ['123456', '123456789012345678', '061253DFFEDCBA98'],
    ['123456', '6222521311350221', '06121177CEECAFDD'],
  ])('PIN %s, PAN %s → %s, and back', (pin, pan, clear) => {
    expect(upperHex(encodePinBlockFormat0(pin, pan))).toBe(clear);
    expect(decodePinBlockFormat0(hex(clear), pan)).toEqual({ ok: true, value: pin });
  });

  test('3DES under the K1 PIK: 06121177CEECAFDD → 9CF97B4BEA9E3A95, and recoverPin reads it back', () => {
    const encrypted = encryptPinBlock('des', K1_PIK, hex('06121177CEECAFDD'));
    expect(upperHex(encrypted)).toBe('9CF97B4BEA9E3A95');
    expect(upperHex(decryptPinBlock('des', K1_PIK, encrypted))).toBe('06121177CEECAFDD');
    expect(recoverPin(K1_PIK, encrypted, '6222521311350221')).toEqual({ ok: true, value: '123456' });
  });

  test('property: any 4–12 digit PIN and 13–19 digit PAN round-trip', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{4,12}$/), fc.stringMatching(/^[0-9]{13,19}$/), (pin, pan) => {
        expect(decodePinBlockFormat0(encodePinBlockFormat0(pin, pan), pan)).toEqual({ ok: true, value: pin });
      }),
    );
  });

  test('malformed blocks are typed errors; bad input to encode is a PosGatewayError', () => {
    const pan = '6222521311350221';
    const panPart = hex('0000252131135022');
    const block = (nibbles: string) => Buffer.from(hex(nibbles).map((byte, i) => byte ^ panPart[i]!));
    expect(decodePinBlockFormat0(block('1412AC89ABCDEF67'), pan)).toMatchObject({
      ok: false,
      error: { code: 'bad_pin_block_format' },
    });
    expect(decodePinBlockFormat0(block('0312FFFFFFFFFFFF'), pan)).toMatchObject({
      ok: false,
      error: { code: 'bad_pin_length' },
    });
    expect(decodePinBlockFormat0(block('04123AFFFFFFFFFF'), pan)).toMatchObject({
      ok: false,
      error: { code: 'bad_pin_digit' },
    });
    expect(decodePinBlockFormat0(block('041234FFFFFFFF0F'), pan)).toMatchObject({
      ok: false,
      error: { code: 'bad_pin_filler' },
    });
    expect(decodePinBlockFormat0(hex('0412'), pan)).toMatchObject({ ok: false });
    expect(() => encodePinBlockFormat0('123', pan)).toThrow(PosGatewayError);
    expect(() => encodePinBlockFormat0('12345a', pan)).toThrow(PosGatewayError);
  });

  test('the PAN comes from track 2 up to the separator', () => {
    expect(panFromTrack2('6222521311350221=25121010000000000')).toBe('6222521311350221');
    expect(panFromTrack2('=2512')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// MACs (research §2.3)

describe('retail MACs: published vectors', () => {
  test('X9.19 (ISO 9797-1 alg. 3), BouncyCastle: "Hello World !!!!" → F09B856213BAB83B', () => {
    const key = hex('7CA110454A1A6E570131D9619DC1376E');
    expect(upperHex(x919RetailMac(key, Buffer.from('Hello World !!!!', 'latin1')))).toBe('F09B856213BAB83B');
  });

  test('X9.9 CBC-MAC, FIPS 113: "7654321 Now is the time for " → F1D30F68 (49312CA4)', () => {
    const mac = x99CbcMac(hex('0123456789ABCDEF'), Buffer.from('7654321 Now is the time for ', 'latin1'));
    expect(upperHex(mac)).toBe('F1D30F6849312CA4');
  });
});

/** The CUP ECB MAC written out step by step from research §2.3, on raw node:crypto: an independent oracle. */
function oracleCupEcbMacDes(key: Buffer, mab: Buffer): string {
  const encrypt = (block: Buffer) => {
    const fullKey = key.length === 8 ? Buffer.concat([key, key, key]) : key;
    const cipher = createCipheriv(key.length === 16 ? 'des-ede-ecb' : 'des-ede3-ecb', fullKey, null);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(block), cipher.final()]);
  };
  const padded = Buffer.concat([mab, Buffer.alloc((8 - (mab.length % 8)) % 8)]);
  const r = Buffer.alloc(8);
  padded.forEach((byte, i) => (r[i % 8]! ^= byte));
  const h = r.toString('hex').toUpperCase();
  const e1 = encrypt(Buffer.from(h.slice(0, 8), 'ascii'));
  const t = Buffer.from(e1.map((byte, i) => byte ^ h.charCodeAt(8 + i)));
  return encrypt(t).toString('hex').toUpperCase().slice(0, 8);
}

function oracleCupEcbMacSm4(key: Buffer, mab: Buffer): string {
  const encrypt = (block: Buffer) =>
    Buffer.from(smCryptoSm4.encrypt(block, key, { mode: 'ecb', padding: 'none', output: 'array' }));
  const padded = Buffer.concat([mab, Buffer.alloc((16 - (mab.length % 16)) % 16)]);
  const r = Buffer.alloc(16);
  padded.forEach((byte, i) => (r[i % 16]! ^= byte));
  const h = r.toString('hex').toUpperCase();
  const e1 = encrypt(Buffer.from(h.slice(0, 16), 'ascii'));
  const t = Buffer.from(e1.map((byte, i) => byte ^ h.charCodeAt(16 + i)));
  return encrypt(t).toString('hex').toUpperCase().slice(0, 8);
}

const SALE: PosMessage = {
  mti: '0200',
  fields: {
    2: '6222521311350221',
    3: '000000',
    4: '000000001000',
    11: '000123',
    22: '021',
    25: '00',
    26: '06',
    41: '00000764',
    42: '848100058126002',
    49: '156',
    52: hex('9CF97B4BEA9E3A95'),
    53: '2600000000000000',
    60: '22000001000',
  },
};

describe('UnionPay POS "ECB" MAC', () => {
  test('the MAB is MTI…field 63 with bit 64 set (research §2.3 step 1): the §1.6 body with 01 in the last bitmap byte', () => {
    const body = hex(
      '0800 0020000000C00013 000105 3030303030373634 383438313030303538313236303032 0011 000000010030 0003 303031',
    );
    const signOn: PosMessage = {
      mti: '0800',
      fields: { 11: '000105', 41: '00000764', 42: '848100058126002', 60: '00000001003', 63: '001' },
    };
    expect(macBlockOf(signOn, CUP_POS_SPEC)).toEqual({ ok: true, value: body });
  });

  test('DES with the K1 MAK and 3DES with the K1 PIK agree with the step-by-step oracle; output is 8 ASCII hex', () => {
    const mab = macBlockOf(SALE, CUP_POS_SPEC);
    if (!mab.ok) throw new Error(mab.error.detail);
    for (const key of [K1_MAK, K1_PIK]) {
      const mac = cupEcbMac('des', key, mab.value);
      expect(mac.toString('latin1')).toMatch(/^[0-9A-F]{8}$/);
      expect(mac.toString('latin1')).toBe(oracleCupEcbMacDes(key, mab.value));
    }
  });

  test('property: oracle agreement on random MABs (incl. empty and block-aligned) and random keys', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(8, 16),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (mab, keyBytes, keyMaterial) => {
          const key = Buffer.from(keyMaterial.subarray(0, keyBytes));
          expect(cupEcbMac('des', key, Buffer.from(mab)).toString('latin1')).toBe(
            oracleCupEcbMacDes(key, Buffer.from(mab)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  test('SM4 variant agrees with an oracle built on sm-crypto', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (mab, key) => {
        expect(cupEcbMac('sm4', Buffer.from(key), Buffer.from(mab)).toString('latin1')).toBe(
          oracleCupEcbMacSm4(Buffer.from(key), Buffer.from(mab)),
        );
      }),
      { numRuns: 200 },
    );
  });

  test.each<[string, MacKey]>([
    ['cup-ecb DES', { scheme: 'cup-ecb', algorithm: 'des', key: K1_MAK }],
    ['cup-ecb 3DES', { scheme: 'cup-ecb', algorithm: 'des', key: K1_PIK }],
    ['cup-ecb SM4', { scheme: 'cup-ecb', algorithm: 'sm4', key: hex('0123456789ABCDEFFEDCBA9876543210') }],
    ['x9.19', { scheme: 'x9.19', algorithm: 'des', key: K1_PIK }],
  ])('%s: sign → pack → unpack → verify; any flipped bit of the packed message fails', (_name, macKey) => {
    const signed = signMessage(SALE, macKey, CUP_POS_SPEC);
    if (!signed.ok) throw new Error(signed.error.detail);
    const bytes = packMessage(signed.value, CUP_POS_SPEC);
    if (!bytes.ok) throw new Error(bytes.error.detail);
    const received = unpackMessage(bytes.value, CUP_POS_SPEC);
    expect(received.ok && verifyMessageMac(received.value, macKey, CUP_POS_SPEC)).toEqual({ ok: true, value: true });
    expect(verifyReceivedMac(bytes.value, macKey)).toEqual({ ok: true, value: true });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.value.length * 8 - 1 }), (bit) => {
        const tampered = Buffer.from(bytes.value);
        tampered[bit >> 3]! ^= 0x80 >> (bit & 7);
        const decoded = unpackMessage(tampered, CUP_POS_SPEC);
        // A flip either breaks the format (typed codec error) or is caught by the MAC over the received bytes,
        // pad nibbles included.
        if (decoded.ok) expect(verifyReceivedMac(tampered, macKey).ok).toBe(false);
      }),
      { numRuns: 200 },
    );
    expect(verifyMessageMac(SALE, macKey, CUP_POS_SPEC)).toMatchObject({ ok: false, error: { code: 'mac_missing' } });
    const unsigned = packMessage(SALE, CUP_POS_SPEC);
    expect(unsigned.ok && verifyReceivedMac(unsigned.value, macKey)).toMatchObject({
      ok: false,
      error: { code: 'mac_missing' },
    });
  });
});

describe('block ciphers', () => {
  test('SM4 KAT (GB/T 32907-2016): key = plaintext = 0123…3210 → 681EDF34D206965E86B3E94F536E4246', () => {
    const key = hex('0123456789ABCDEFFEDCBA9876543210');
    expect(upperHex(ecbEncrypt('sm4', key, key))).toBe('681EDF34D206965E86B3E94F536E4246');
    expect(ecbDecrypt('sm4', key, hex('681EDF34D206965E86B3E94F536E4246'))).toEqual(key);
  });

  test('single DES as 3DES with K1 = K2 = K3 equals 2-key 3DES with K1 = K2', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (k, d) => {
          const key = Buffer.from(k);
          expect(ecbEncrypt('des', key, Buffer.from(d))).toEqual(
            ecbEncrypt('des', Buffer.concat([key, key]), Buffer.from(d)),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  test('wrong key or data lengths are a PosGatewayError', () => {
    expect(() => ecbEncrypt('des', Buffer.alloc(7), Buffer.alloc(8))).toThrow(PosGatewayError);
    expect(() => ecbEncrypt('sm4', Buffer.alloc(8), Buffer.alloc(16))).toThrow(PosGatewayError);
    expect(() => ecbEncrypt('des', Buffer.alloc(8), Buffer.alloc(9))).toThrow(PosGatewayError);
  });
});

describe('response codes table', () => {
  test('has every code the gateway answers with, each unique, two characters', () => {
    const codes = Object.values(RESPONSE_CODES).map((entry) => entry.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of ['00', '12', '13', '14', '25', '30', '51', '55', '75', '94', '96', 'A0']) {
      expect(describeResponseCode(code)?.code).toBe(code);
    }
    for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{2}$/);
    expect(describeResponseCode('A0')?.terminalAction).toBe('re_sign_on');
    expect(describeResponseCode('XX')).toBeUndefined();
  });
});
