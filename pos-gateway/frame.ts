/**
 * The UnionPay-style TCP frame (research §1.1 [V]):
 *
 *   LEN (2 B, big-endian, counts everything after it) | TPDU (5 B) | header (6 B) | MTI (2 B BCD) | bitmap | fields
 *
 * TPDU and header are kept as hex so that any bytes a terminal sends round-trip; their meaning is parsed into named
 * parts. The reply carries the request's TPDU with destination and source swapped (jPOS `tpdu-swap`).
 */
import { type CodecError, type PosMessage, packMessage, unpackMessage } from './codec';
import { err, ok, PosGatewayError, type Result } from './result';
import type { MessageSpec } from './spec';

export const LENGTH_PREFIX_BYTES = 2;
export const TPDU_BYTES = 5;
export const HEADER_BYTES = 6;
/** The 2-byte length prefix cannot say more. */
export const MAX_FRAME_PAYLOAD_BYTES = 0xffff;

/** `ID (0x60) | destination (2 B) | source (2 B)`, each as upper-case hex. */
export interface Tpdu {
  readonly id: string;
  readonly destination: string;
  readonly source: string;
}

/**
 * `应用类别 N2 | 软件总版本号 N2 | 终端状态 N1 + 处理要求 N1 | 软件分版本号 N6`, each as upper-case hex. In a reply,
 * `processingRequirement` is the host's instruction (3 = sign on again).
 */
export interface FrameHeader {
  readonly applicationType: string;
  readonly softwareVersion: string;
  readonly terminalStatus: string;
  readonly processingRequirement: string;
  readonly softwareSubVersion: string;
}

export interface PosFrame {
  readonly tpdu: Tpdu;
  readonly header: FrameHeader;
  readonly message: PosMessage;
  /** The message bytes as received (MTI to the end), for a MAC over exactly what the terminal sent. */
  readonly body?: Buffer;
}

export type FrameErrorCode = CodecError['code'] | 'frame_too_long' | 'bad_frame_length';

export interface FrameError {
  readonly code: FrameErrorCode;
  readonly detail: string;
  readonly field?: number;
  /** What could be read before the failure, enough to answer with response code 30 when `mti` is known. */
  readonly recovered?: {
    readonly tpdu: Tpdu;
    readonly header: FrameHeader;
    readonly mti?: string;
    readonly fields?: PosMessage['fields'];
  };
}

export function swapTpdu(tpdu: Tpdu): Tpdu {
  return { id: tpdu.id, destination: tpdu.source, source: tpdu.destination };
}

export function tpduToBytes(tpdu: Tpdu): Buffer {
  return hexBytes(`${tpdu.id}${tpdu.destination}${tpdu.source}`, TPDU_BYTES);
}

export function headerToBytes(header: FrameHeader): Buffer {
  const h = header;
  const hex = `${h.applicationType}${h.softwareVersion}${h.terminalStatus}${h.processingRequirement}${h.softwareSubVersion}`;
  return hexBytes(hex, HEADER_BYTES);
}

export function tpduFromBytes(bytes: Buffer): Tpdu {
  const hex = bytes.toString('hex').toUpperCase();
  return { id: hex.slice(0, 2), destination: hex.slice(2, 6), source: hex.slice(6, 10) };
}

export function headerFromBytes(bytes: Buffer): FrameHeader {
  const hex = bytes.toString('hex').toUpperCase();
  return {
    applicationType: hex.slice(0, 2),
    softwareVersion: hex.slice(2, 4),
    terminalStatus: hex.slice(4, 5),
    processingRequirement: hex.slice(5, 6),
    softwareSubVersion: hex.slice(6, 12),
  };
}

function hexBytes(hex: string, length: number): Buffer {
  if (!new RegExp(`^[0-9A-Fa-f]{${length * 2}}$`).test(hex)) {
    throw new PosGatewayError(`expected ${length} bytes of hex, got "${hex}"`);
  }
  return Buffer.from(hex, 'hex');
}

/** The whole frame, length prefix included. */
export function encodeFrame(frame: PosFrame, spec: MessageSpec): Result<Buffer, CodecError> {
  const body = packMessage(frame.message, spec);
  if (!body.ok) return body;
  const payloadLength = TPDU_BYTES + HEADER_BYTES + body.value.length;
  if (payloadLength > MAX_FRAME_PAYLOAD_BYTES) {
    return err({ code: 'bad_length', detail: `frame of ${payloadLength} bytes exceeds the 2-byte length prefix` });
  }
  const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
  prefix.writeUInt16BE(payloadLength, 0);
  return ok(Buffer.concat([prefix, tpduToBytes(frame.tpdu), headerToBytes(frame.header), body.value]));
}

/** Decodes one payload as the splitter yields it (without the length prefix). Never throws. */
export function decodeFramePayload(payload: Buffer, spec: MessageSpec): Result<PosFrame, FrameError> {
  if (payload.length < TPDU_BYTES + HEADER_BYTES) {
    return err({ code: 'truncated', detail: `frame of ${payload.length} bytes has no room for TPDU and header` });
  }
  const tpdu = tpduFromBytes(payload.subarray(0, TPDU_BYTES));
  const header = headerFromBytes(payload.subarray(TPDU_BYTES, TPDU_BYTES + HEADER_BYTES));
  const body = payload.subarray(TPDU_BYTES + HEADER_BYTES);
  const message = unpackMessage(body, spec);
  if (message.ok) return ok({ tpdu, header, message: message.value, body });
  const { code, detail, field, partial } = message.error;
  return err({
    code,
    detail,
    ...(field === undefined ? {} : { field }),
    recovered: { tpdu, header, ...(partial ? { mti: partial.mti, fields: partial.fields } : {}) },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming splitter for TCP

export interface SplitResult {
  readonly frames: Buffer[];
  /** Set once the stream cannot be framed any more (length 0 or above the bound); the connection must close. */
  readonly error?: FrameError;
}

/**
 * Cuts a byte stream into payloads at the 2-byte length prefixes. Holds at most one partial frame (≤ maxFrameBytes + 2
 * bytes); a length above `maxFrameBytes` or equal to 0 poisons the splitter, since the stream can no longer be framed.
 */
export class FrameSplitter {
  private buffered: Buffer = Buffer.alloc(0);
  private failed: FrameError | undefined;

  constructor(private readonly maxFrameBytes: number) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_PAYLOAD_BYTES) {
      throw new PosGatewayError(`maxFrameBytes must be an integer in 1..${MAX_FRAME_PAYLOAD_BYTES}`);
    }
  }

  /** Bytes of an incomplete frame held so far (0 between frames). */
  get pendingBytes(): number {
    return this.buffered.length;
  }

  push(chunk: Buffer): SplitResult {
    if (this.failed) return { frames: [], error: this.failed };
    const frames: Buffer[] = [];
    let data = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (data.length >= LENGTH_PREFIX_BYTES) {
      const length = data.readUInt16BE(0);
      if (length === 0 || length > this.maxFrameBytes) {
        this.failed = {
          code: length === 0 ? 'bad_frame_length' : 'frame_too_long',
          detail: `frame length ${length} outside 1..${this.maxFrameBytes}`,
        };
        this.buffered = Buffer.alloc(0);
        return { frames, error: this.failed };
      }
      if (data.length < LENGTH_PREFIX_BYTES + length) break;
      // Copy so a frame never pins the (possibly large) chunk it came in.
      frames.push(Buffer.from(data.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + length)));
      data = data.subarray(LENGTH_PREFIX_BYTES + length);
    }
    this.buffered = Buffer.from(data);
    return { frames };
  }
}
