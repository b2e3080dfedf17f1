/**
 * The TCP frame: 2-byte length | TPDU | header | message (research §1.1), the TPDU swap on replies, and the streaming
 * splitter under every chunking, with its bound.
 */
import fc from 'fast-check';
import {
  CUP_POS_SPEC,
  decodeFramePayload,
  encodeFrame,
  FrameSplitter,
  headerFromBytes,
  headerToBytes,
  MAX_FRAME_PAYLOAD_BYTES,
  PosGatewayError,
  swapTpdu,
  tpduFromBytes,
  tpduToBytes,
} from '../../pos-gateway';
import type { FrameHeader, PosFrame, Tpdu } from '../../pos-gateway';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

const TPDU: Tpdu = { id: '60', destination: '0003', source: '0000' };
const HEADER: FrameHeader = {
  applicationType: '60',
  softwareVersion: '31',
  terminalStatus: '0',
  processingRequirement: '0',
  softwareSubVersion: '310730',
};
// research §1.6 (a)
const SIGN_ON_BODY = hex(
  '0800 0020000000C00012 000105 3030303030373634 383438313030303538313236303032 0011 000000010030 0003 303031',
);
const SIGN_ON: PosFrame = {
  tpdu: TPDU,
  header: HEADER,
  message: {
    mti: '0800',
    fields: { 11: '000105', 41: '00000764', 42: '848100058126002', 60: '00000001003', 63: '001' },
  },
};

function frameBytes(frame: PosFrame): Buffer {
  const result = encodeFrame(frame, CUP_POS_SPEC);
  if (!result.ok) throw new Error(result.error.detail);
  return result.value;
}

describe('frame layout (research §1.1)', () => {
  test('LEN (big-endian, counts TPDU + header + body) | 60 0003 0000 | 60 31 00 31 07 30 | §1.6 body', () => {
    const bytes = frameBytes(SIGN_ON);
    const payloadLength = 5 + 6 + SIGN_ON_BODY.length;
    expect(bytes.toString('hex')).toBe(
      payloadLength.toString(16).padStart(4, '0') + '6000030000' + '603100310730' + SIGN_ON_BODY.toString('hex'),
    );
    expect(bytes.readUInt16BE(0)).toBe(bytes.length - 2);
  });

  test('decoding the payload gives back TPDU, header (with its nibbles named), message and raw body', () => {
    const decoded = decodeFramePayload(frameBytes(SIGN_ON).subarray(2), CUP_POS_SPEC);
    expect(decoded).toEqual({ ok: true, value: { ...SIGN_ON, body: SIGN_ON_BODY } });
    expect(headerFromBytes(hex('603110310730'))).toEqual({ ...HEADER, terminalStatus: '1' }); // LiaoYang test mode
  });

  test('the reply TPDU swaps destination and source; swapping twice is the identity', () => {
    expect(tpduToBytes(swapTpdu(TPDU)).toString('hex')).toBe('6000000003');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 5, maxLength: 5 }), (bytes) => {
        const tpdu = tpduFromBytes(Buffer.from(bytes));
        expect(tpduToBytes(tpdu)).toEqual(Buffer.from(bytes));
        expect(swapTpdu(swapTpdu(tpdu))).toEqual(tpdu);
      }),
    );
  });

  test('any 6 header bytes round-trip; a malformed TPDU value is a PosGatewayError at build time', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        expect(headerToBytes(headerFromBytes(Buffer.from(bytes)))).toEqual(Buffer.from(bytes));
      }),
    );
    expect(() => tpduToBytes({ id: '6', destination: '0003', source: '0000' })).toThrow(PosGatewayError);
  });

  test('a payload too short for TPDU + header recovers nothing; a bad body recovers TPDU, header and MTI', () => {
    expect(decodeFramePayload(hex('6000030000'), CUP_POS_SPEC)).toEqual({
      ok: false,
      error: { code: 'truncated', detail: expect.any(String) },
    });
    const cut = frameBytes(SIGN_ON).subarray(2, 40);
    const result = decodeFramePayload(cut, CUP_POS_SPEC);
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: 'truncated',
        field: 42,
        recovered: { tpdu: TPDU, header: HEADER, mti: '0800', fields: { 11: '000105', 41: '00000764' } },
      },
    });
  });
});

describe('FrameSplitter', () => {
  const frames = [frameBytes(SIGN_ON), frameBytes({ ...SIGN_ON, message: { mti: '0820', fields: { 11: '000106' } } })];
  const stream = Buffer.concat([frames[0]!, frames[1]!, frames[0]!]);
  const expected = [frames[0]!, frames[1]!, frames[0]!].map((frame) => frame.subarray(2));

  test('property: any chunking of a stream yields the same payloads, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const splitter = new FrameSplitter(1024);
        const out: Buffer[] = [];
        let start = 0;
        for (const point of [...points, stream.length]) {
          const result = splitter.push(stream.subarray(start, point));
          expect(result.error).toBeUndefined();
          out.push(...result.frames);
          start = point;
        }
        expect(out).toEqual(expected);
        expect(splitter.pendingBytes).toBe(0);
      }),
    );
  });

  test('byte by byte: pendingBytes counts the incomplete frame', () => {
    const splitter = new FrameSplitter(1024);
    const frame = frames[0]!;
    for (let i = 0; i < frame.length - 1; i++) {
      expect(splitter.push(frame.subarray(i, i + 1)).frames).toEqual([]);
      expect(splitter.pendingBytes).toBe(i + 1);
    }
    expect(splitter.push(frame.subarray(frame.length - 1)).frames).toEqual([frame.subarray(2)]);
  });

  test('a length above the bound, or 0, poisons the splitter; frames before it still come out', () => {
    const splitter = new FrameSplitter(64);
    const result = splitter.push(Buffer.concat([frames[1]!, hex('0041'), Buffer.alloc(65)]));
    expect(result.frames).toEqual([frames[1]!.subarray(2)]);
    expect(result.error).toMatchObject({ code: 'frame_too_long' });
    expect(splitter.push(frames[1]!)).toMatchObject({ frames: [], error: { code: 'frame_too_long' } });
    expect(new FrameSplitter(64).push(hex('0000'))).toMatchObject({ frames: [], error: { code: 'bad_frame_length' } });
  });

  test('property: it never holds more than maxFrameBytes + 2 bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 30 }), (chunks) => {
        const splitter = new FrameSplitter(100);
        for (const chunk of chunks) {
          splitter.push(Buffer.from(chunk));
          expect(splitter.pendingBytes).toBeLessThanOrEqual(102);
        }
      }),
    );
  });

  test('its bound must be 1..65535', () => {
    expect(() => new FrameSplitter(0)).toThrow(PosGatewayError);
    expect(() => new FrameSplitter(MAX_FRAME_PAYLOAD_BYTES + 1)).toThrow(PosGatewayError);
  });
});
