/**
 * Fuzzing the wire path (issue 9, "must show" 4): ≥ 100,000 random, truncated and mutated frames, derived from valid
 * ones, go through the frame splitter (in random chunks), the frame decoder and the unpacker. The only acceptable
 * outcomes are a decoded message (which must then pack again) or a typed error with a known code; any exception fails.
 * A seeded generator keeps a failure reproducible: the seed and case number are in the message.
 */
import {
  composeField,
  CUP_POS_SPEC,
  decodeFramePayload,
  encodeFrame,
  FIELD_60,
  FrameSplitter,
  packMessage,
  unpackMessage,
} from '../../pos-gateway';
import type { PosFrame, PosMessage } from '../../pos-gateway';

const CASES = 100_000;
const SEED = 0x8583;
const MAX_FRAME_BYTES = 2048;
const TIME_BUDGET_MS = 60_000;

const CODEC_CODES = new Set([
  'truncated',
  'bad_length',
  'bad_bcd',
  'bad_mti',
  'bad_value',
  'unknown_field',
  'trailing_bytes',
]);
const SPLITTER_CODES = new Set(['frame_too_long', 'bad_frame_length']);

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (text: string) => Buffer.from(text, 'hex');
const sixty = (type: string, code: string) => {
  const value = composeField(FIELD_60, {
    transactionTypeCode: type,
    batchNumber: '000001',
    networkManagementCode: code,
  });
  if (!value.ok) throw new Error(value.error.detail);
  return value.value;
};
const terminal = { 41: '00000764', 42: '848100058126002' };

const SEEDS: PosMessage[] = [
  { mti: '0800', fields: { 11: '000105', ...terminal, 60: sixty('00', '003'), 63: '001' } },
  {
    mti: '0810',
    fields: {
      11: '000105',
      12: '101010',
      13: '1111',
      32: '00010000',
      37: '000000000001',
      39: '00',
      ...terminal,
      60: sixty('00', '003'),
      62: hex('6701EAD6A9AD51E51AA406E2C27FCFA98D0A74B8B651F9E9BACE9AE10000000000000000AB7153CA'),
    },
  },
  {
    mti: '0200',
    fields: {
      2: '6222521311350221',
      3: '000000',
      4: '000000001000',
      11: '000123',
      14: '2512',
      22: '021',
      23: '001',
      25: '00',
      26: '06',
      35: '6222521311350221=2512101',
      36: '996222521311350221=1561560000000000000003000000114000025120=000000000000=000000000000=000000000',
      ...terminal,
      49: '156',
      52: hex('9CF97B4BEA9E3A95'),
      53: '2600000000000000',
      55: hex('9F2608AABBCCDDEEFF00119F2701809F101307010103A0A000010A010000000000'),
      60: '22000001000500',
      63: '001',
      64: hex('3132333435363738'),
    },
  },
  {
    mti: '0210',
    fields: {
      3: '310000',
      11: '000124',
      32: '00010000',
      37: '000000000002',
      39: '00',
      44: 'ISSUER ACQUIRER',
      ...terminal,
      49: '156',
      54: '1002156C000000012345',
      60: sixty('01', '000'),
      64: hex('4142434445464748'),
    },
  },
  {
    mti: '0500',
    fields: { 11: '000200', ...terminal, 48: '0'.repeat(62), 49: '156', 60: sixty('00', '201'), 63: '001' },
  },
  { mti: '0400', fields: { 3: '000000', 4: '000000001000', 11: '000123', 39: '98', ...terminal, 61: '000001000123' } },
];

const VALID_FRAMES: Buffer[] = SEEDS.map((message) => {
  const frame: PosFrame = {
    tpdu: { id: '60', destination: '0003', source: '0000' },
    header: {
      applicationType: '60',
      softwareVersion: '31',
      terminalStatus: '0',
      processingRequirement: '0',
      softwareSubVersion: '310730',
    },
    message,
  };
  const bytes = encodeFrame(frame, CUP_POS_SPEC);
  if (!bytes.ok) throw new Error(bytes.error.detail);
  return bytes.value;
});

type Mutation = (frame: Buffer, random: () => number) => Buffer;
const int = (random: () => number, below: number) => Math.floor(random() * below);

const MUTATIONS: Record<string, Mutation> = {
  random: (_frame, random) => Buffer.from(Array.from({ length: int(random, 400) }, () => int(random, 256))),
  truncate: (frame, random) => frame.subarray(0, int(random, frame.length)),
  flipBits: (frame, random) => {
    const out = Buffer.from(frame);
    for (let i = 0, n = 1 + int(random, 8); i < n; i++) out[int(random, out.length)]! ^= 1 << int(random, 8);
    return out;
  },
  replaceBytes: (frame, random) => {
    const out = Buffer.from(frame);
    for (let i = 0, n = 1 + int(random, 4); i < n; i++) out[int(random, out.length)] = int(random, 256);
    return out;
  },
  /** A mutated body with a length prefix that matches it, so the splitter passes it to the decoder. */
  bodyWithFixedLength: (frame, random) => {
    const body = Buffer.from(frame.subarray(2));
    for (let i = 0, n = 1 + int(random, 6); i < n; i++) body[13 + int(random, body.length - 13)] = int(random, 256);
    const cut = body.subarray(0, 11 + int(random, body.length - 10));
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(cut.length, 0);
    return Buffer.concat([prefix, cut]);
  },
  bitmapChaos: (frame, random) => {
    const out = Buffer.from(frame);
    for (let i = 0; i < 8; i++) if (random() < 0.3) out[2 + 11 + 2 + i] = int(random, 256);
    return out;
  },
  insertDelete: (frame, random) => {
    const at = int(random, frame.length);
    return random() < 0.5
      ? Buffer.concat([frame.subarray(0, at), Buffer.from([int(random, 256)]), frame.subarray(at)])
      : Buffer.concat([frame.subarray(0, at), frame.subarray(at + 1 + int(random, 4))]);
  },
  splice: (frame, random) => {
    const other = VALID_FRAMES[int(random, VALID_FRAMES.length)]!;
    return Buffer.concat([frame.subarray(0, int(random, frame.length)), other.subarray(int(random, other.length))]);
  },
  lengthPrefix: (frame, random) => {
    const out = Buffer.from(frame);
    out.writeUInt16BE(int(random, 0x10000), 0);
    return out;
  },
};
const MUTATION_NAMES = Object.keys(MUTATIONS);

/** A plain check: jest's `expect` costs too much to call several times in each of 100,000 cases. */
function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
}

describe('fuzz: splitter, frame decoder and unpacker never throw on hostile bytes', () => {
  test(`${CASES.toLocaleString('en')} random, truncated and mutated frames`, () => {
    const random = prng(SEED);
    const startedMs = Date.now();
    const outcomes: Record<string, number> = {};
    const count = (key: string) => (outcomes[key] = (outcomes[key] ?? 0) + 1);
    let payloadsDecoded = 0;

    for (let caseNumber = 0; caseNumber < CASES; caseNumber++) {
      const name = MUTATION_NAMES[caseNumber % MUTATION_NAMES.length]!;
      const base = VALID_FRAMES[int(random, VALID_FRAMES.length)]!;
      const input = MUTATIONS[name]!(base, random);
      try {
        // The raw body straight into the unpacker.
        const direct = unpackMessage(input.subarray(Math.min(13, input.length)), CUP_POS_SPEC);
        if (direct.ok) {
          check(packMessage(direct.value, CUP_POS_SPEC).ok, 'a decoded message packs again');
        } else {
          check(CODEC_CODES.has(direct.error.code), `known code ${direct.error.code}`);
        }
        // The stream path: random chunks into a splitter, each payload into the frame decoder.
        const splitter = new FrameSplitter(MAX_FRAME_BYTES);
        for (let offset = 0; offset < input.length;) {
          const size = 1 + int(random, 64);
          const { frames, error } = splitter.push(input.subarray(offset, offset + size));
          offset += size;
          if (error) {
            check(SPLITTER_CODES.has(error.code), `known code ${error.code}`);
            count(`splitter:${error.code}`);
            break;
          }
          for (const payload of frames) {
            check(payload.length <= MAX_FRAME_BYTES, 'payload within the bound');
            const decoded = decodeFramePayload(payload, CUP_POS_SPEC);
            payloadsDecoded++;
            if (decoded.ok) {
              count('frame:ok');
              check(packMessage(decoded.value.message, CUP_POS_SPEC).ok, 'a decoded frame packs again');
            } else {
              check(CODEC_CODES.has(decoded.error.code), `known code ${decoded.error.code}`);
              count(`frame:${decoded.error.code}`);
            }
          }
        }
        check(splitter.pendingBytes <= MAX_FRAME_BYTES + 2, 'splitter within its bound');
      } catch (error) {
        throw new Error(`seed ${SEED} case ${caseNumber} (${name}) input ${input.toString('hex')}: ${String(error)}`);
      }
    }

    const elapsedMs = Date.now() - startedMs;
    expect(elapsedMs).toBeLessThan(TIME_BUDGET_MS);
    // The corpus really exercised the decoder: valid frames and each kind of refusal occurred.
    expect(payloadsDecoded).toBeGreaterThan(CASES / 4);
    for (const code of ['frame:ok', 'frame:truncated', 'frame:bad_bcd', 'frame:bad_length', 'frame:unknown_field']) {
      expect(outcomes[code] ?? 0).toBeGreaterThan(0);
    }
    expect((outcomes['splitter:frame_too_long'] ?? 0) + (outcomes['splitter:bad_frame_length'] ?? 0)).toBeGreaterThan(
      0,
    );
    console.info(`fuzz: ${CASES} cases in ${elapsedMs} ms, ${payloadsDecoded} payloads decoded`, outcomes);
  });
});
