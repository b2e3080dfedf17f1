/**
 * A minimal terminal side of the protocol: connect, send frames, read framed replies. For tests, the bench and the
 * terminal simulator; it holds one connection and expects one reply per request, as a CUP terminal does.
 */
import { connect, type Socket } from 'node:net';
import type { PosMessage } from './codec';
import {
  decodeFramePayload,
  encodeFrame,
  type FrameErrorCode,
  type FrameHeader,
  FrameSplitter,
  MAX_FRAME_PAYLOAD_BYTES,
  type PosFrame,
  type Tpdu,
} from './frame';
import { err, type Result } from './result';
import { CUP_POS_SPEC, type MessageSpec } from './spec';

export interface TerminalClientOptions {
  readonly host: string;
  readonly port: number;
  readonly spec?: MessageSpec;
  readonly tpdu?: Tpdu;
  readonly header?: FrameHeader;
  readonly connectTimeoutMs?: number;
}

export type TerminalErrorCode = 'closed' | 'timeout' | 'encode' | FrameErrorCode;

export interface TerminalError {
  readonly code: TerminalErrorCode;
  readonly detail: string;
}

/** Research §1.1 examples: TPDU 60 0003 0000 (to the host at 0003), header 60 31 00 31 07 30. */
export const DEFAULT_TPDU: Tpdu = { id: '60', destination: '0003', source: '0000' };
export const DEFAULT_HEADER: FrameHeader = {
  applicationType: '60',
  softwareVersion: '31',
  terminalStatus: '0',
  processingRequirement: '0',
  softwareSubVersion: '310730',
};

export class PosTerminalClient {
  private readonly splitter = new FrameSplitter(MAX_FRAME_PAYLOAD_BYTES);
  private readonly frames: Buffer[] = [];
  private waiter: (() => void) | undefined;
  private isClosed = false;
  /** Resolves when the server (or we) closed the connection. */
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly options: TerminalClientOptions,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.splitter.push(chunk).frames);
      this.wake();
    });
    socket.on('close', () => {
      this.isClosed = true;
      this.wake();
    });
  }

  static connect(options: TerminalClientOptions): Promise<PosTerminalClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timed out'));
      }, options.connectTimeoutMs ?? 5_000);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new PosTerminalClient(socket, options));
      });
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame payload (without its length prefix), or why none came. */
  async receivePayload(timeoutMs: number): Promise<Result<Buffer, TerminalError>> {
    const deadlineMs = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return { ok: true, value: frame };
      if (this.isClosed) return err({ code: 'closed', detail: 'connection closed' });
      const leftMs = deadlineMs - Date.now();
      if (leftMs <= 0) return err({ code: 'timeout', detail: `no frame within ${timeoutMs} ms` });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async receive(timeoutMs: number): Promise<Result<PosFrame, TerminalError>> {
    const payload = await this.receivePayload(timeoutMs);
    if (!payload.ok) return payload;
    const decoded = decodeFramePayload(payload.value, this.options.spec ?? CUP_POS_SPEC);
    return decoded.ok ? decoded : err({ code: decoded.error.code, detail: decoded.error.detail });
  }

  /** Sends one message and waits for its reply. */
  async request(message: PosMessage, timeoutMs: number): Promise<Result<PosFrame, TerminalError>> {
    const frame = encodeFrame(
      { tpdu: this.options.tpdu ?? DEFAULT_TPDU, header: this.options.header ?? DEFAULT_HEADER, message },
      this.options.spec ?? CUP_POS_SPEC,
    );
    if (!frame.ok) return err({ code: 'encode', detail: frame.error.detail });
    this.sendRaw(frame.value);
    return this.receive(timeoutMs);
  }

  close(): Promise<void> {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
    return this.closed;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
