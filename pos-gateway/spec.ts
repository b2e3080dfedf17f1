/**
 * The UnionPay-style (CUP POS terminal ↔ POSP) ISO 8583 message format, as data.
 *
 * The packer in codec.ts reads these tables and nothing else: no field has code of its own (jPOS `GenericPackager`,
 * moov-io `MessageSpec`). Sources for every row are in ../shared/research/iso8583.md (§1.2 encodings, §1.3 dictionary,
 * §1.4 per-message field sets, §2.1 field 62); confidence tags [V]/[S]/[1]/[?] are copied from there.
 */

/** n = numeric digits, z = track data (digits and '='), an/ans = text, b = raw bytes. */
export type FieldType = 'n' | 'z' | 'an' | 'ans' | 'b';
/** fixed, or a BCD length prefix of 1 byte (LL, up to 99) or 2 bytes (LLL, up to 999). */
export type LengthKind = 'fixed' | 'LL' | 'LLL';
export type FieldEncoding = 'BCD' | 'ASCII' | 'binary';
export type Alignment = 'left' | 'right';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly lengthKind: LengthKind;
  /** The fixed length, or the largest allowed variable length: in digits for n/z, in bytes for an/ans/b. */
  readonly maxLength: number;
  readonly encoding: FieldEncoding;
  /**
   * Where the data sits when it is shorter than its room: for BCD, which side the pad nibble of an odd digit count
   * goes on (right-aligned = pad nibble first); for a short fixed value, which side is padded.
   */
  readonly align: Alignment;
  /** The pad character ('0' for digits, ' ' for text); binary fields are never padded. */
  readonly pad: '0' | ' ' | '';
  /** Masked whenever a message is described or logged. */
  readonly sensitive?: true;
}

export interface MessageSpec {
  readonly name: string;
  readonly fields: Readonly<Record<number, FieldSpec>>;
}

/** The largest value a 2-byte BCD length prefix can hold; every variable field is bounded by it (and by its own max). */
export const MAX_LLL_LENGTH = 999;
export const MAX_LL_LENGTH = 99;

const nFixed = (name: string, length: number, align: Alignment = 'right'): FieldSpec => ({
  name,
  type: 'n',
  lengthKind: 'fixed',
  maxLength: length,
  encoding: 'BCD',
  align,
  pad: '0',
});
const nVar = (name: string, lengthKind: 'LL' | 'LLL', maxLength: number): FieldSpec => ({
  name,
  type: 'n',
  lengthKind,
  maxLength,
  encoding: 'BCD',
  align: 'left', // "左靠", trailing 0 nibble: [V] for LLL (field 60), [?] for LL (fields 2, 32)
  pad: '0',
});
const text = (name: string, type: 'an' | 'ans', lengthKind: LengthKind, maxLength: number): FieldSpec => ({
  name,
  type,
  lengthKind,
  maxLength,
  encoding: 'ASCII',
  align: 'left',
  pad: lengthKind === 'fixed' ? ' ' : '',
});
const binary = (name: string, lengthKind: LengthKind, maxLength: number): FieldSpec => ({
  name,
  type: 'b',
  lengthKind,
  maxLength,
  encoding: 'binary',
  align: 'left',
  pad: '',
});
const track = (name: string, lengthKind: 'LL' | 'LLL', maxLength: number): FieldSpec => ({
  name,
  type: 'z',
  lengthKind,
  maxLength,
  encoding: 'BCD',
  align: 'left', // [?] moov's Track2BCD pads on the left instead; confirm with the acquirer (research §6)
  pad: '0',
  sensitive: true,
});
const secret = (spec: FieldSpec): FieldSpec => ({ ...spec, sensitive: true });

/** The CUP POS field dictionary, research §1.3 (fields 2–64; bit 1 is never set by CUP terminals). */
export const CUP_POS_SPEC: MessageSpec = {
  name: 'CUP POS terminal (UnionPay style)',
  fields: {
    2: secret(nVar('primaryAccountNumber', 'LL', 19)),
    3: nFixed('processingCode', 6),
    4: nFixed('amountFen', 12),
    11: nFixed('systemTraceAuditNumber', 6),
    12: nFixed('localTimeHhmmss', 6),
    13: nFixed('localDateMmdd', 4),
    14: secret(nFixed('expiryYymm', 4)),
    15: nFixed('settlementDateMmdd', 4),
    22: nFixed('posEntryMode', 3, 'left'), // "021" ⇒ 02 10 [V]
    23: nFixed('cardSequenceNumber', 3, 'right'),
    25: nFixed('posConditionCode', 2),
    26: nFixed('pinCaptureCode', 2),
    32: nVar('acquiringInstitutionId', 'LL', 11),
    35: track('track2', 'LL', 37),
    36: track('track3', 'LLL', 104),
    37: text('retrievalReferenceNumber', 'an', 'fixed', 12),
    38: text('authorizationCode', 'an', 'fixed', 6),
    39: text('responseCode', 'an', 'fixed', 2),
    41: text('terminalId', 'ans', 'fixed', 8),
    42: text('merchantId', 'ans', 'fixed', 15),
    44: text('additionalResponseData', 'ans', 'LL', 25),
    48: nVar('additionalData', 'LLL', 322),
    49: text('currencyCode', 'an', 'fixed', 3),
    52: secret(binary('pinBlock', 'fixed', 8)),
    53: nFixed('securityControlInfo', 16),
    54: text('balanceAmounts', 'an', 'LLL', 20),
    55: secret(binary('iccData', 'LLL', 255)),
    // n...17 in the baseline; some specs use …019/…022, so the bound is the widest seen (research §1.3, §6).
    60: nVar('reservedPrivate60', 'LLL', 22),
    61: nVar('originalMessageData', 'LLL', 29),
    // b...084 for keys, ans...512 for terminal info: carried as bytes, the wider bound (research §1.3).
    62: secret(binary('reservedPrivate62', 'LLL', 512)),
    63: text('reservedPrivate63', 'ans', 'LLL', 163),
    64: binary('messageAuthenticationCode', 'fixed', 8),
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Composite fields: nested tables of fixed-width sub-fields inside one field's value (digits or text).

export interface SubfieldSpec {
  readonly id: string;
  readonly name: string;
  /** Characters (digits for n, characters for an). */
  readonly length: number;
  readonly type: 'n' | 'an';
}

export interface CompositeSpec {
  readonly field: number;
  readonly name: string;
  readonly subfields: readonly SubfieldSpec[];
  /** Sub-fields 1..requiredCount must be present; later ones are optional but come in order. */
  readonly requiredCount: number;
}

/** Field 60, research §1.3 [S]: 60.1 type code, 60.2 batch, 60.3 network management code, 60.4–60.6 IC flags. */
export const FIELD_60: CompositeSpec = {
  field: 60,
  name: 'reservedPrivate60',
  requiredCount: 2,
  subfields: [
    { id: '60.1', name: 'transactionTypeCode', length: 2, type: 'n' },
    { id: '60.2', name: 'batchNumber', length: 6, type: 'n' },
    { id: '60.3', name: 'networkManagementCode', length: 3, type: 'n' },
    { id: '60.4', name: 'terminalReadCapability', length: 1, type: 'n' },
    { id: '60.5', name: 'icConditionCode', length: 1, type: 'n' },
    { id: '60.6', name: 'partialApprovalFlag', length: 1, type: 'n' },
  ],
};

/** Field 61 for a void: original batch + original trace (+ original date MMDD for refunds), research §1.4. */
export const FIELD_61: CompositeSpec = {
  field: 61,
  name: 'originalMessageData',
  requiredCount: 2,
  subfields: [
    { id: '61.1', name: 'originalBatchNumber', length: 6, type: 'n' },
    { id: '61.2', name: 'originalTraceNumber', length: 6, type: 'n' },
    { id: '61.3', name: 'originalDateMmdd', length: 4, type: 'n' },
  ],
};

/** Field 53 (n16), research §1.3 [S]: typical value 2600000000000000. */
export const FIELD_53: CompositeSpec = {
  field: 53,
  name: 'securityControlInfo',
  requiredCount: 4,
  subfields: [
    { id: '53.1', name: 'pinFormat', length: 1, type: 'n' }, // 1 = X9.8 without PAN, 2 = with PAN
    { id: '53.2', name: 'encryptionAlgorithm', length: 1, type: 'n' }, // 0 = single DES, 6 = double-length 3DES
    { id: '53.3', name: 'trackEncryptionFlag', length: 1, type: 'n' },
    { id: '53.4', name: 'reserved', length: 13, type: 'n' },
  ],
};

/** Field 54 in a 0210 balance reply (20 chars), research §1.3 [1]. */
export const FIELD_54: CompositeSpec = {
  field: 54,
  name: 'balanceAmounts',
  requiredCount: 5,
  subfields: [
    { id: '54.1', name: 'accountType', length: 2, type: 'an' },
    { id: '54.2', name: 'amountType', length: 2, type: 'an' },
    { id: '54.3', name: 'currencyCode', length: 3, type: 'an' },
    { id: '54.4', name: 'balanceSign', length: 1, type: 'an' }, // C credit / D debit
    { id: '54.5', name: 'balanceFen', length: 12, type: 'an' },
  ],
};

/** Field 48 in 0500/0510 settlement, research §1.4 [S]: domestic then foreign totals; N3 counts (some specs N6). */
export const FIELD_48_SETTLEMENT: CompositeSpec = {
  field: 48,
  name: 'settlementTotals',
  requiredCount: 10,
  subfields: [
    { id: '48.1', name: 'domesticDebitAmountFen', length: 12, type: 'n' },
    { id: '48.2', name: 'domesticDebitCount', length: 3, type: 'n' },
    { id: '48.3', name: 'domesticCreditAmountFen', length: 12, type: 'n' },
    { id: '48.4', name: 'domesticCreditCount', length: 3, type: 'n' },
    { id: '48.5', name: 'domesticReconciliationCode', length: 1, type: 'n' },
    { id: '48.6', name: 'foreignDebitAmountFen', length: 12, type: 'n' },
    { id: '48.7', name: 'foreignDebitCount', length: 3, type: 'n' },
    { id: '48.8', name: 'foreignCreditAmountFen', length: 12, type: 'n' },
    { id: '48.9', name: 'foreignCreditCount', length: 3, type: 'n' },
    { id: '48.10', name: 'foreignReconciliationCode', length: 1, type: 'n' },
  ],
};

/** Reconciliation code in 48.5 / 48.10 (research §1.4): 0 in the request, then 1 balanced, 2 not, 3 error. */
export const RECONCILIATION_CODES = { request: '0', balanced: '1', unbalanced: '2', error: '3' } as const;

/** Field 48 in 0320 mag-stripe batch upload, research §1.4 [1]: N2 count (≤ 8) then this item repeated. */
export const FIELD_48_BATCH_UPLOAD = {
  field: 48,
  countDigits: 2,
  maxItems: 8,
  item: {
    field: 48,
    name: 'batchUploadItem',
    requiredCount: 4,
    subfields: [
      { id: 'cardOrganisation', name: 'cardOrganisation', length: 2, type: 'n' }, // 00 CUP, 01 foreign
      { id: 'traceNumber', name: 'traceNumber', length: 6, type: 'n' },
      { id: 'primaryAccountNumber', name: 'primaryAccountNumber', length: 20, type: 'n' }, // left-zero-padded
      { id: 'amountFen', name: 'amountFen', length: 12, type: 'n' },
    ],
  } satisfies CompositeSpec,
} as const;

/** Field 62 in a 0810: working keys under the TMK, each followed by a 4-byte check value; layout chosen by 60.3. */
export type KeyDownloadPart = 'pik' | 'pikKcv' | 'mak' | 'makKcv' | 'tdk' | 'tdkKcv' | 'zeros';
export interface KeyDownloadLayout {
  readonly networkManagementCode: string;
  readonly algorithm: 'des' | 'sm4';
  readonly parts: readonly { readonly part: KeyDownloadPart; readonly lengthBytes: number }[];
  readonly source: string;
}

export const KEY_DOWNLOAD_LAYOUTS: Readonly<Record<string, KeyDownloadLayout>> = {
  '001': {
    networkManagementCode: '001',
    algorithm: 'des',
    parts: [
      { part: 'pik', lengthBytes: 8 },
      { part: 'pikKcv', lengthBytes: 4 },
      { part: 'mak', lengthBytes: 8 },
      { part: 'makKcv', lengthBytes: 4 },
    ],
    source: 'research §2.1 (Guizhou table; e-com-net 5481825) [S]: single-length PIK and MAK, 24 bytes',
  },
  '003': {
    networkManagementCode: '003',
    algorithm: 'des',
    parts: [
      { part: 'pik', lengthBytes: 16 },
      { part: 'pikKcv', lengthBytes: 4 },
      { part: 'mak', lengthBytes: 8 },
      { part: 'zeros', lengthBytes: 8 },
      { part: 'makKcv', lengthBytes: 4 },
    ],
    source: 'research §2.1, vector K1 [V]: double-length PIK, single-length MAK + 8 zero bytes, 40 bytes',
  },
  '004': {
    networkManagementCode: '004',
    algorithm: 'des',
    parts: [
      { part: 'pik', lengthBytes: 16 },
      { part: 'pikKcv', lengthBytes: 4 },
      { part: 'mak', lengthBytes: 16 },
      { part: 'makKcv', lengthBytes: 4 },
      { part: 'tdk', lengthBytes: 16 },
      { part: 'tdkKcv', lengthBytes: 4 },
    ],
    source: 'research §2.1 (Guizhou table) [S]: double-length PIK, MAK and TDK, 60 bytes',
  },
  // OUR CONVENTION, not a published format (research §2.4: SM4 key-download formats were not found). Confirm with
  // the acquirer before a terminal is configured for it. Chosen to mirror '004' with 16-byte SM4 keys.
  sm4: {
    networkManagementCode: 'sm4',
    algorithm: 'sm4',
    parts: [
      { part: 'pik', lengthBytes: 16 },
      { part: 'pikKcv', lengthBytes: 4 },
      { part: 'mak', lengthBytes: 16 },
      { part: 'makKcv', lengthBytes: 4 },
      { part: 'tdk', lengthBytes: 16 },
      { part: 'tdkKcv', lengthBytes: 4 },
    ],
    source: 'carbonpay convention (no public source): SM4-ECB under an SM4 TMK, KCV = first 4 B of SM4(key, 0^16)',
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Per-message field sets (research §1.4; response columns for 0210 are baseline expectations [?]).

export type PosTransaction =
  'signOn' | 'signOff' | 'balanceInquiry' | 'sale' | 'saleVoid' | 'reversal' | 'settlement' | 'batchUpload';

export interface FieldSet {
  readonly mandatory: readonly number[];
  readonly conditional: readonly number[];
}

export interface MessageFieldSet {
  readonly transaction: PosTransaction;
  readonly requestMti: string;
  readonly responseMti: string;
  /** Field 3 when it identifies the transaction. */
  readonly processingCode?: string;
  /** Sub-field 60.1 when it identifies the transaction. */
  readonly transactionTypeCode?: string;
  /** Sub-field 60.3 values this message may carry. */
  readonly networkManagementCodes?: readonly string[];
  readonly request: FieldSet;
  readonly response: FieldSet;
  readonly reversible: boolean;
}

const CARD_CONDITIONAL = [2, 14, 23, 26, 35, 36, 52, 53, 55];

export const MESSAGE_FIELD_SETS: readonly MessageFieldSet[] = [
  {
    transaction: 'signOn',
    requestMti: '0800',
    responseMti: '0810',
    networkManagementCodes: ['001', '003', '004'],
    request: { mandatory: [11, 41, 42, 60, 63], conditional: [62] },
    response: { mandatory: [11, 12, 13, 32, 37, 39, 41, 42, 60], conditional: [62] },
    reversible: false,
  },
  {
    transaction: 'signOff',
    requestMti: '0820',
    responseMti: '0830',
    networkManagementCodes: ['002'],
    request: { mandatory: [11, 41, 42, 60], conditional: [] },
    response: { mandatory: [11, 12, 13, 32, 37, 39, 41, 42, 60], conditional: [] },
    reversible: false,
  },
  {
    transaction: 'balanceInquiry',
    requestMti: '0200',
    responseMti: '0210',
    processingCode: '310000',
    transactionTypeCode: '01',
    request: { mandatory: [3, 11, 22, 25, 41, 42, 49, 60, 64], conditional: CARD_CONDITIONAL },
    response: {
      mandatory: [3, 11, 12, 13, 25, 32, 37, 39, 41, 42, 49, 60, 64],
      conditional: [2, 14, 15, 44, 54],
    },
    reversible: false,
  },
  {
    transaction: 'sale',
    requestMti: '0200',
    responseMti: '0210',
    processingCode: '000000',
    transactionTypeCode: '22',
    request: { mandatory: [3, 4, 11, 22, 25, 41, 42, 49, 60, 64], conditional: [...CARD_CONDITIONAL, 63] },
    response: {
      mandatory: [3, 4, 11, 12, 13, 25, 32, 37, 39, 41, 42, 49, 60, 64],
      conditional: [2, 14, 15, 38, 44, 55, 63],
    },
    reversible: true,
  },
  {
    transaction: 'saleVoid',
    requestMti: '0200',
    responseMti: '0210',
    processingCode: '200000',
    transactionTypeCode: '23',
    request: { mandatory: [3, 4, 11, 22, 25, 37, 41, 42, 49, 60, 61, 64], conditional: [...CARD_CONDITIONAL, 38, 63] },
    response: {
      mandatory: [3, 4, 11, 12, 13, 25, 32, 37, 39, 41, 42, 49, 60, 64],
      conditional: [2, 14, 15, 38, 44, 55, 63],
    },
    reversible: true,
  },
  {
    transaction: 'reversal',
    requestMti: '0400',
    responseMti: '0410',
    request: { mandatory: [3, 4, 11, 22, 25, 39, 41, 42, 49, 60, 64], conditional: [2, 14, 23, 38, 55, 61] },
    response: { mandatory: [3, 4, 11, 12, 13, 25, 32, 37, 39, 41, 42, 60, 64], conditional: [2] },
    reversible: false,
  },
  {
    transaction: 'settlement',
    requestMti: '0500',
    responseMti: '0510',
    request: { mandatory: [11, 41, 42, 48, 49, 60, 63], conditional: [] },
    response: { mandatory: [11, 12, 13, 15, 32, 37, 39, 41, 42, 48, 49, 60, 63], conditional: [] },
    reversible: false,
  },
  {
    transaction: 'batchUpload',
    requestMti: '0320',
    responseMti: '0330',
    networkManagementCodes: ['201', '202', '206', '207'],
    request: { mandatory: [11, 41, 42, 48, 60], conditional: [55] },
    response: { mandatory: [11, 12, 13, 37, 39, 41, 42, 48, 60], conditional: [] },
    reversible: false,
  },
];

/** Fields a terminal checks on every reply (research §1.4, LiaoYang `ProcRspPacket`): the gateway echoes them. */
export const ECHOED_FIELDS: readonly number[] = [3, 4, 11, 41, 42];

/** The reason codes a terminal puts in field 39 of a 0400 (research §1.4). */
export const REVERSAL_REASONS = { noResponse: '98', responseMacError: 'A0', other: '06' } as const;
