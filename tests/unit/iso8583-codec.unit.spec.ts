/**
 * The table-driven ISO 8583 codec: the golden frame of research §1.6, every encoding rule of §1.2 on exact bytes,
 * typed errors on malformed input, composites and field sets, masking, and pack∘unpack = id over generated messages.
 */
import fc from 'fast-check';
import {
  checkFieldSet,
  composeBatchUpload,
  composeField,
  CUP_POS_SPEC,
  decomposeBatchUpload,
  decomposeField,
  describeMessage,
  FIELD_48_SETTLEMENT,
  FIELD_53,
  FIELD_54,
  FIELD_60,
  FIELD_61,
  identifyTransaction,
  MESSAGE_FIELD_SETS,
  packMessage,
  responseMtiOf,
  unpackMessage,
} from '../../pos-gateway';
import type { FieldSpec, FieldValue, MessageSpec, PosMessage } from '../../pos-gateway';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function packed(message: PosMessage, spec: MessageSpec = CUP_POS_SPEC): Buffer {
  const result = packMessage(message, spec);
  if (!result.ok) throw new Error(`pack failed: ${result.error.detail}`);
  return result.value;
}

/** Packs a message holding only `field` and returns the bytes after MTI + bitmap. */
function fieldBytes(field: number, value: FieldValue): Buffer {
  return packed({ mti: '0200', fields: { [field]: value } }).subarray(10);
}

// research §1.6 (a): jsPOS README 0800 sign-on body, decoded there [V]
const SIGN_ON_BODY = hex(`
  0800 0020000000C00012
  000105
  3030303030373634
  383438313030303538313236303032
  0011 000000010030
  0003 303031`);
const SIGN_ON_MESSAGE: PosMessage = {
  mti: '0800',
  fields: { 11: '000105', 41: '00000764', 42: '848100058126002', 60: '00000001003', 63: '001' },
};

describe('research §1.6 (a): 0800 sign-on body', () => {
  test('unpacks to the decoded fields', () => {
    const result = unpackMessage(SIGN_ON_BODY, CUP_POS_SPEC);
    expect(result).toEqual({ ok: true, value: SIGN_ON_MESSAGE });
  });

  test('packs to the same bytes', () => {
    expect(packed(SIGN_ON_MESSAGE).toString('hex')).toBe(SIGN_ON_BODY.toString('hex'));
  });

  test('field 60 splits into 60.1 = 00, 60.2 = 000001, 60.3 = 003', () => {
    expect(decomposeField(FIELD_60, '00000001003')).toEqual({
      ok: true,
      value: { transactionTypeCode: '00', batchNumber: '000001', networkManagementCode: '003' },
    });
    expect(
      composeField(FIELD_60, { transactionTypeCode: '00', batchNumber: '000001', networkManagementCode: '003' }),
    ).toEqual({ ok: true, value: '00000001003' });
  });

  test('is identified as sign-on and carries every mandatory request field', () => {
    const set = identifyTransaction(SIGN_ON_MESSAGE);
    expect(set?.transaction).toBe('signOn');
    expect(checkFieldSet(SIGN_ON_MESSAGE, set!, 'request')).toEqual({ missing: [], unexpected: [] });
  });
});

describe('encoding rules of research §1.2, byte for byte', () => {
  test('fixed n is right-aligned BCD with leading zeros: amount 1234 fen ⇒ 00 00 00 00 12 34', () => {
    expect(fieldBytes(4, '1234').toString('hex')).toBe('000000001234');
    expect(fieldBytes(4, '000000001234').toString('hex')).toBe('000000001234');
  });

  test('field 22 n3 is left-aligned: "021" ⇒ 02 10; field 23 n3 right-aligned: "001" ⇒ 00 01', () => {
    expect(fieldBytes(22, '021').toString('hex')).toBe('0210');
    expect(fieldBytes(23, '001').toString('hex')).toBe('0001');
    expect(unpackMessage(packed({ mti: '0200', fields: { 22: '021', 23: '001' } }), CUP_POS_SPEC)).toMatchObject({
      ok: true,
      value: { fields: { 22: '021', 23: '001' } },
    });
  });

  test('LL n counts digits in a 1-byte BCD prefix, odd data left-aligned with a trailing 0 nibble', () => {
    expect(fieldBytes(2, '6222521311350221').toString('hex')).toBe('166222521311350221');
    expect(fieldBytes(2, '4000001234562').toString('hex')).toBe('134000001234562' + '0');
  });

  test('LLL n counts digits in a 2-byte BCD prefix (field 60 "0019" + 10 bytes)', () => {
    expect(fieldBytes(60, '2200000100050000000').toString('hex')).toBe('0019' + '22000001000500000000');
  });

  test('z track data maps "=" to the D nibble, counts digits, pads last', () => {
    expect(fieldBytes(35, '6222521311350221=2512').toString('hex')).toBe('21' + '6222521311350221d25120');
  });

  test('fixed an/ans are ASCII, left-aligned, space-padded', () => {
    expect(fieldBytes(41, '764').toString('latin1')).toBe('764     ');
    expect(fieldBytes(49, '156').toString('hex')).toBe('313536');
  });

  test('LLL ans counts bytes: 63 "001" ⇒ 00 03 30 30 31', () => {
    expect(fieldBytes(63, '001').toString('hex')).toBe('0003303031');
  });

  test('fixed b is raw and must have its exact length; LLL b counts bytes', () => {
    expect(fieldBytes(52, hex('0412AC89ABCDEF67')).toString('hex')).toBe('0412ac89abcdef67');
    expect(fieldBytes(55, hex('9F2608AABBCCDDEEFF0011')).toString('hex')).toBe('0011' + '9f2608aabbccddeeff0011');
    expect(packMessage({ mti: '0200', fields: { 52: hex('0412') } }, CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'bad_value', field: 52 },
    });
  });

  test('the bitmap has bit n set for field n and nothing else; bit 1 stays clear without fields > 64', () => {
    const bytes = packed({ mti: '0200', fields: { 2: '6222521311350221', 64: hex('3132333435363738') } });
    expect(bytes.subarray(2, 10).toString('hex')).toBe('4000000000000001');
  });

  test('a field above 64 sets bit 1 and a secondary bitmap (spec with field 70)', () => {
    const spec: MessageSpec = {
      name: 'test with secondary bitmap',
      fields: {
        ...CUP_POS_SPEC.fields,
        70: {
          name: 'networkManagementInformationCode',
          type: 'n',
          lengthKind: 'fixed',
          maxLength: 3,
          encoding: 'BCD',
          align: 'right',
          pad: '0',
        },
      },
    };
    const message: PosMessage = { mti: '0800', fields: { 11: '000001', 70: '301' } };
    const bytes = packed(message, spec);
    expect(bytes.toString('hex')).toBe('0800' + '8020000000000000' + '0400000000000000' + '000001' + '0301');
    expect(unpackMessage(bytes, spec)).toEqual({ ok: true, value: message });
    // The CUP dictionary has no field 70: a typed refusal, both ways.
    expect(unpackMessage(bytes, CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'unknown_field', field: 70 },
    });
    expect(packMessage(message, CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'unknown_field', field: 70 },
    });
  });
});

describe('packing refuses values the table does not allow', () => {
  test.each<[number, FieldValue, string]>([
    [4, '12a', 'digits only'],
    [4, '1234567890123', 'longer'],
    [2, '12345678901234567890', 'longer'],
    [35, '6222=25X', 'digits and ='],
    [41, '123456789', 'longer'],
    [63, '中文', 'beyond one byte'],
    [41, hex('00'), 'needs a string'],
    [64, 'ABCDEFGH', 'needs a Buffer'],
  ])('field %d = %p ⇒ bad_value (%s)', (field, value, why) => {
    const result = packMessage({ mti: '0200', fields: { [field]: value } }, CUP_POS_SPEC);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatchObject({ code: 'bad_value', field });
      expect(result.error.detail).toContain(why);
    }
  });

  test('a bad MTI and field 1 are refused', () => {
    expect(packMessage({ mti: '02A0', fields: {} }, CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'bad_mti' },
    });
    expect(packMessage({ mti: '0200', fields: { 1: hex('00') } }, CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'unknown_field' },
    });
  });
});

describe('unpacking malformed bytes gives typed errors with what was read', () => {
  test('truncated inside a field: code, field number, and the fields before it', () => {
    const result = unpackMessage(SIGN_ON_BODY.subarray(0, SIGN_ON_BODY.length - 2), CUP_POS_SPEC);
    expect(result).toMatchObject({ ok: false, error: { code: 'truncated', field: 63 } });
    if (!result.ok)
      expect(result.error.partial).toEqual({
        mti: '0800',
        fields: { 11: '000105', 41: '00000764', 42: '848100058126002', 60: '00000001003' },
      });
  });

  test('an LLL prefix above the field maximum is bad_length (60 claims 23 digits)', () => {
    const bytes = Buffer.from(SIGN_ON_BODY);
    bytes.writeUInt16BE(0x0023, 10 + 3 + 8 + 15);
    expect(unpackMessage(bytes, CUP_POS_SPEC)).toMatchObject({ ok: false, error: { code: 'bad_length', field: 60 } });
  });

  test('a non-BCD nibble in n data or in a length prefix is bad_bcd', () => {
    const badData = Buffer.from(SIGN_ON_BODY);
    badData[10] = 0x0a; // field 11 first byte
    expect(unpackMessage(badData, CUP_POS_SPEC)).toMatchObject({ ok: false, error: { code: 'bad_bcd', field: 11 } });
    const badPrefix = Buffer.from(SIGN_ON_BODY);
    badPrefix[10 + 3 + 8 + 15] = 0xf0; // field 60 prefix
    expect(unpackMessage(badPrefix, CUP_POS_SPEC)).toMatchObject({ ok: false, error: { code: 'bad_bcd', field: 60 } });
  });

  test('bytes after the last field, a non-BCD MTI, a short bitmap and an unknown field are refused', () => {
    expect(unpackMessage(Buffer.concat([SIGN_ON_BODY, hex('00')]), CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'trailing_bytes' },
    });
    expect(unpackMessage(hex('08A0 0020000000C00012'), CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'bad_mti' },
    });
    expect(unpackMessage(hex('0800 0020'), CUP_POS_SPEC)).toMatchObject({ ok: false, error: { code: 'truncated' } });
    // bit 5 set: field 5 (settlement amount) is not in the CUP POS dictionary
    expect(unpackMessage(hex('0800 0800000000000000 00'), CUP_POS_SPEC)).toMatchObject({
      ok: false,
      error: { code: 'unknown_field', field: 5 },
    });
  });
});

describe('composite fields (nested tables)', () => {
  test('60 for a sale: 22 + batch + 000 + 60.4 = 5', () => {
    expect(
      composeField(FIELD_60, {
        transactionTypeCode: '22',
        batchNumber: '000001',
        networkManagementCode: '000',
        terminalReadCapability: '5',
      }),
    ).toEqual({ ok: true, value: '220000010005' });
  });

  test('60 refuses a missing required part, a gap, or a wrong width; keeps unknown trailing digits as rest', () => {
    expect(composeField(FIELD_60, { transactionTypeCode: '22' })).toMatchObject({ ok: false });
    expect(
      composeField(FIELD_60, { transactionTypeCode: '22', batchNumber: '000001', terminalReadCapability: '5' }),
    ).toMatchObject({ ok: false, error: { subfield: '60.4' } });
    expect(composeField(FIELD_60, { transactionTypeCode: '2', batchNumber: '000001' })).toMatchObject({ ok: false });
    expect(decomposeField(FIELD_60, '2200000100050001')).toEqual({
      ok: true,
      value: {
        transactionTypeCode: '22',
        batchNumber: '000001',
        networkManagementCode: '000',
        terminalReadCapability: '5',
        icConditionCode: '0',
        partialApprovalFlag: '0',
        rest: '01',
      },
    });
    expect(decomposeField(FIELD_60, '2200')).toMatchObject({ ok: false, error: { subfield: '60.2' } });
  });

  test('61 (void): original batch + trace; 53 = 2600000000000000; 54 balance', () => {
    expect(decomposeField(FIELD_61, '000001000123')).toEqual({
      ok: true,
      value: { originalBatchNumber: '000001', originalTraceNumber: '000123' },
    });
    expect(decomposeField(FIELD_53, '2600000000000000')).toEqual({
      ok: true,
      value: { pinFormat: '2', encryptionAlgorithm: '6', trackEncryptionFlag: '0', reserved: '0000000000000' },
    });
    expect(
      composeField(FIELD_54, {
        accountType: '10',
        amountType: '02',
        currencyCode: '156',
        balanceSign: 'C',
        balanceFen: '000000012345',
      }),
    ).toEqual({ ok: true, value: '1002156C000000012345' });
  });

  test('48 settlement totals: 62 digits that fit field 48 and come back', () => {
    const totals = {
      domesticDebitAmountFen: '000000150000',
      domesticDebitCount: '003',
      domesticCreditAmountFen: '000000000000',
      domesticCreditCount: '000',
      domesticReconciliationCode: '0',
      foreignDebitAmountFen: '000000000000',
      foreignDebitCount: '000',
      foreignCreditAmountFen: '000000000000',
      foreignCreditCount: '000',
      foreignReconciliationCode: '0',
    };
    const value = composeField(FIELD_48_SETTLEMENT, totals);
    expect(value.ok && value.value.length).toBe(62);
    if (!value.ok) return;
    const bytes = packed({ mti: '0500', fields: { 48: value.value } });
    const back = unpackMessage(bytes, CUP_POS_SPEC);
    expect(back.ok && decomposeField(FIELD_48_SETTLEMENT, back.value.fields[48] as string)).toEqual({
      ok: true,
      value: totals,
    });
  });

  test('48 batch upload: N2 count + 40 digits per item, at most 8 items (322 digits = the field maximum)', () => {
    const item = {
      cardOrganisation: '00',
      traceNumber: '000123',
      primaryAccountNumber: '00006222521311350221',
      amountFen: '000000001000',
    };
    const eight = Array.from({ length: 8 }, () => item);
    const composed = composeBatchUpload(eight);
    expect(composed.ok && composed.value.length).toBe(322);
    expect(composed.ok && packMessage({ mti: '0320', fields: { 48: composed.value } }, CUP_POS_SPEC).ok).toBe(true);
    expect(composed.ok && decomposeBatchUpload(composed.value)).toEqual({ ok: true, value: eight });
    expect(composeBatchUpload([...eight, item])).toMatchObject({ ok: false });
    expect(decomposeBatchUpload('01' + '0'.repeat(39))).toMatchObject({ ok: false });
  });
});

describe('per-message field sets', () => {
  test('request MTI → response MTI, and only requests have one', () => {
    expect(['0800', '0820', '0200', '0400', '0500', '0320'].map(responseMtiOf)).toEqual([
      '0810',
      '0830',
      '0210',
      '0410',
      '0510',
      '0330',
    ]);
    expect(responseMtiOf('0210')).toBeUndefined();
    expect(responseMtiOf('02')).toBeUndefined();
  });

  test('every table entry names response MTI = request + 10 and has no field both mandatory and conditional', () => {
    for (const set of MESSAGE_FIELD_SETS) {
      expect(responseMtiOf(set.requestMti)).toBe(set.responseMti);
      for (const direction of ['request', 'response'] as const) {
        const { mandatory, conditional } = set[direction];
        expect(mandatory.filter((n) => conditional.includes(n))).toEqual([]);
        for (const n of [...mandatory, ...conditional]) expect(CUP_POS_SPEC.fields[n]).toBeDefined();
      }
    }
  });

  test('0200 is told apart by field 3 and 60.1: balance 310000/01, sale 000000/22, void 200000/23', () => {
    const base = { 11: '000001', 41: 'T0000001', 42: 'M00000000000001' };
    const kind = (processingCode: string, sixty: string) =>
      identifyTransaction({ mti: '0200', fields: { ...base, 3: processingCode, 60: sixty } })?.transaction;
    expect(kind('310000', '01000001')).toBe('balanceInquiry');
    expect(kind('000000', '22000001000')).toBe('sale');
    expect(kind('200000', '23000001000')).toBe('saleVoid');
    expect(kind('000000', '23000001000')).toBeUndefined();
  });

  test('a sale missing 4 and carrying 48 is reported', () => {
    const sale = MESSAGE_FIELD_SETS.find((set) => set.transaction === 'sale')!;
    const message: PosMessage = {
      mti: '0200',
      fields: {
        3: '000000',
        11: '1',
        22: '021',
        25: '00',
        41: 'x',
        42: 'y',
        48: '1',
        49: '156',
        60: '22',
        64: hex('00'),
      },
    };
    expect(checkFieldSet(message, sale, 'request')).toEqual({ missing: [4], unexpected: [48] });
  });
});

describe('describeMessage masks sensitive fields', () => {
  test('PAN keeps 6 + 4, PIN block and track are hidden, plain fields shown', () => {
    const lines = describeMessage(
      {
        mti: '0200',
        fields: { 2: '6222521311350221', 4: '000000001000', 35: '6222521311350221=2512', 52: hex('9CF97B4BEA9E3A95') },
      },
      CUP_POS_SPEC,
    );
    const text = lines.join('\n');
    expect(lines).toContain('02 primaryAccountNumber: 622252******0221');
    expect(lines).toContain('04 amountFen: 000000001000');
    expect(text).not.toContain('9cf97b4b');
    expect(text).not.toContain('1311350221=');
    expect(lines).toContain('52 pinBlock: *** (8 bytes)');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Property: pack∘unpack = id over generated messages (values in canonical, full-length form).

function arbitraryValue(spec: FieldSpec): fc.Arbitrary<FieldValue> {
  const fixed = spec.lengthKind === 'fixed';
  const lengths = fixed ? fc.constant(spec.maxLength) : fc.integer({ min: 0, max: spec.maxLength });
  if (spec.type === 'b') return lengths.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }).map(Buffer.from));
  const alphabet = spec.type === 'n' ? '0123456789' : spec.type === 'z' ? '0123456789=' : null;
  const char = alphabet
    ? fc.constantFrom(...alphabet.split(''))
    : fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code));
  return lengths.chain((n) => fc.array(char, { minLength: n, maxLength: n }).map((chars) => chars.join('')));
}

const fieldNumbersInSpec = Object.keys(CUP_POS_SPEC.fields).map(Number);

const arbitraryMessage: fc.Arbitrary<PosMessage> = fc
  .tuple(fc.stringMatching(/^[0-9]{4}$/), fc.subarray(fieldNumbersInSpec))
  .chain(([mti, numbers]) =>
    fc
      .tuple(...numbers.map((n) => arbitraryValue(CUP_POS_SPEC.fields[n]!)))
      .map((values) => ({ mti, fields: Object.fromEntries(numbers.map((n, i) => [n, values[i]!])) })),
  );

describe('property: pack∘unpack = id', () => {
  test('any message of the CUP dictionary survives pack then unpack', () => {
    fc.assert(
      fc.property(arbitraryMessage, (message) => {
        const bytes = packed(message);
        expect(unpackMessage(bytes, CUP_POS_SPEC)).toEqual({ ok: true, value: message });
      }),
      { numRuns: 2_000 },
    );
  });

  test('unpack∘pack = id on bytes the packer produced (canonical encoding)', () => {
    fc.assert(
      fc.property(arbitraryMessage, (message) => {
        const bytes = packed(message);
        const back = unpackMessage(bytes, CUP_POS_SPEC);
        expect(back.ok && packed(back.value).equals(bytes)).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });
});
