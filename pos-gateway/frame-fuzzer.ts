/**
 * Frames for fuzzing the TCP door (issue #9, must-show 4), and the loop that sends them: random, truncated and
 * mutated frames derived from valid seed frames, a few with a length prefix that promises more than is sent (the
 * server must time the read out) or that no frame may have (0, or above the bound: the server must hang up).
 *
 * Every frame must get a reply or a closed connection within a deadline; anything else is a hung connection. A seeded
 * generator keeps a failure reproducible.
 */
import { LENGTH_PREFIX_BYTES, TPDU_BYTES, HEADER_BYTES } from './frame';
import { PosTerminalClient } from './terminal-client';

export type FuzzKind = 'random' | 'truncated' | 'mutated' | 'stalled' | 'bad_length';

export interface FuzzFrame {
  readonly kind: FuzzKind;
  readonly bytes: Buffer;
}

/** Shares of each kind, out of 10,000. A stalled frame costs a read time-out, so it is rare. */
const SHARES: readonly [FuzzKind, number][] = [
  ['random', 2_000],
  ['truncated', 2_500],
  ['mutated', 5_440],
  ['bad_length', 50],
  ['stalled', 10],
];
const MAX_RANDOM_PAYLOAD_BYTES = 300;
const MAX_MUTATIONS = 8;

/** mulberry32: small, fast, seedable. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FrameFuzzer {
  private readonly random: () => number;

  /** `seedFrames` are whole valid frames (length prefix included). */
  constructor(
    private readonly seedFrames: readonly Buffer[],
    seed: number,
    private readonly maxFrameBytes: number,
  ) {
    if (seedFrames.length === 0) throw new Error('the fuzzer needs at least one seed frame');
    this.random = seededRandom(seed);
  }

  next(): FuzzFrame {
    let pick = this.int(10_000);
    for (const [kind, share] of SHARES) {
      if (pick < share) return { kind, bytes: this.make(kind) };
      pick -= share;
    }
    return { kind: 'mutated', bytes: this.make('mutated') };
  }

  private make(kind: FuzzKind): Buffer {
    const seed = this.seedPayload();
    switch (kind) {
      case 'random': {
        // Half keep a valid TPDU and header, so decoding gets as far as the message.
        const body = this.bytes(1 + this.int(MAX_RANDOM_PAYLOAD_BYTES));
        return framed(this.int(2) === 0 ? body : Buffer.concat([seed.subarray(0, TPDU_BYTES + HEADER_BYTES), body]));
      }
      case 'truncated':
        return framed(seed.subarray(0, 1 + this.int(seed.length - 1)));
      case 'mutated':
        return framed(this.mutate(seed));
      case 'bad_length': {
        const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
        prefix.writeUInt16BE(this.int(2) === 0 ? 0 : this.maxFrameBytes + 1 + this.int(1_000));
        return Buffer.concat([prefix, seed]);
      }
      case 'stalled': {
        // The prefix promises more than is sent: the server must give up on the read time-out.
        const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
        prefix.writeUInt16BE(Math.min(this.maxFrameBytes, seed.length + 1 + this.int(50)));
        return Buffer.concat([prefix, seed]);
      }
    }
  }

  private mutate(payload: Buffer): Buffer {
    let out = Buffer.from(payload);
    const count = 1 + this.int(MAX_MUTATIONS);
    for (let i = 0; i < count; i++) {
      const at = this.int(out.length);
      const operation = this.int(4);
      if (operation === 0) out[at] = this.int(256);
      else if (operation === 1) out[at] = (out[at] ?? 0) ^ (1 << this.int(8));
      else if (operation === 2) out = Buffer.concat([out.subarray(0, at), this.bytes(1), out.subarray(at)]);
      else if (out.length > 1) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    }
    return out;
  }

  private seedPayload(): Buffer {
    const frame = this.seedFrames[this.int(this.seedFrames.length)]!;
    return frame.subarray(LENGTH_PREFIX_BYTES);
  }

  private int(below: number): number {
    return Math.floor(this.random() * below);
  }

  private bytes(count: number): Buffer {
    const out = Buffer.alloc(count);
    for (let i = 0; i < count; i++) out[i] = this.int(256);
    return out;
  }
}

function framed(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
  prefix.writeUInt16BE(payload.length);
  return Buffer.concat([prefix, payload]);
}

export interface FuzzRunResult {
  readonly frames: number;
  readonly answered: number;
  readonly closed: number;
  /** Frames that got neither a reply nor a close within the deadline. */
  readonly hung: number;
  readonly connections: number;
  readonly byKind: Readonly<Record<FuzzKind, number>>;
  readonly seconds: number;
}

/**
 * Sends `frames` fuzz frames over `connections` concurrent connections, one at a time on each, and classifies what
 * came back. A closed connection is replaced by a new one.
 */
export async function runFuzz(options: {
  host: string;
  port: number;
  fuzzer: FrameFuzzer;
  frames: number;
  connections: number;
  /** Longest wait for a reply or a close; above the server's read and handler time-outs. */
  deadlineMs: number;
  onProgress?: (sent: number) => void;
}): Promise<FuzzRunResult> {
  const started = Date.now();
  const byKind: Record<FuzzKind, number> = { random: 0, truncated: 0, mutated: 0, stalled: 0, bad_length: 0 };
  let sent = 0;
  let answered = 0;
  let closed = 0;
  let hung = 0;
  let connections = 0;
  const worker = async (): Promise<void> => {
    let client: PosTerminalClient | undefined;
    while (sent < options.frames) {
      sent += 1;
      if (sent % 100_000 === 0) options.onProgress?.(sent);
      const frame = options.fuzzer.next();
      byKind[frame.kind] += 1;
      if (!client?.isOpen) {
        client = await PosTerminalClient.connect({ host: options.host, port: options.port });
        connections += 1;
      }
      client.sendRaw(frame.bytes);
      const reply = await client.receivePayload(options.deadlineMs);
      if (reply.ok) answered += 1;
      else if (reply.error.code === 'closed') closed += 1;
      else {
        hung += 1;
        await client.close();
      }
    }
    await client?.close();
  };
  await Promise.all(Array.from({ length: options.connections }, () => worker()));
  return { frames: sent, answered, closed, hung, connections, byKind, seconds: (Date.now() - started) / 1000 };
}
