/**
 * The TCP door for POS terminals, independent of the ledger: it frames, decodes and answers; what a message *means*
 * is decided by the `handler` given to it (the ledger wiring).
 *
 * Per connection (research §1.1: one outstanding request per connection):
 * - one request at a time; frames that arrive meanwhile wait in a queue of at most `maxQueuedFrames`, beyond which the
 *   connection is closed; the socket is paused while a request is handled, and while a reply waits for 'drain';
 * - a frame must arrive whole within `readTimeoutMs` of its first byte; a connection with nothing in flight is closed
 *   after `idleTimeoutMs`; a handler gets `handlerTimeoutMs`, after which the connection is closed without a reply, so
 *   the terminal reverses (reason 98) rather than trusting a late answer;
 * - a frame that splits but does not decode is answered 30 when its MTI (and TPDU/header) could be read, else the
 *   connection is closed; a handler that throws or answers an unpackable message gives 96.
 * Nothing a peer sends reaches the process as an exception: every socket has an 'error' listener and every handler
 * call is wrapped.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { PosMessage } from './codec';
import { responseMtiOf } from './field-sets';
import {
  decodeFramePayload,
  encodeFrame,
  type FrameError,
  type FrameHeader,
  FrameSplitter,
  swapTpdu,
  type Tpdu,
} from './frame';
import { RESPONSE_CODES } from './response-codes';
import { PosGatewayError } from './result';
import { CUP_POS_SPEC, ECHOED_FIELDS, type MessageSpec } from './spec';

export interface ConnectionInfo {
  readonly connectionId: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The request's TPDU and header, as the terminal sent them. */
  readonly tpdu: Tpdu;
  readonly header: FrameHeader;
  /** The request's message bytes as received (MTI to the end): give them to `verifyReceivedMac`. */
  readonly requestBody: Buffer;
}

/** Answers one decoded request. The reply is framed with the request's TPDU swapped. */
export type PosHandler = (request: PosMessage, connection: ConnectionInfo) => Promise<PosMessage>;

export type PosServerEventType =
  | 'connection_opened'
  | 'connection_rejected'
  | 'connection_closed'
  | 'format_error'
  | 'frame_error'
  | 'handler_error'
  | 'handler_timeout'
  | 'bad_response'
  | 'queue_overflow'
  | 'read_timeout'
  | 'idle_timeout'
  | 'socket_error';

export interface PosServerEvent {
  readonly type: PosServerEventType;
  readonly connectionId: number;
  readonly detail?: string;
}

export interface PosServerOptions {
  readonly handler: PosHandler;
  readonly spec?: MessageSpec;
  /** Longest time from the first byte of a frame to its last. */
  readonly readTimeoutMs: number;
  /** Longest time a connection may sit with no frame in progress and no request outstanding. */
  readonly idleTimeoutMs: number;
  /** Longest time the handler may take; then the connection is closed without a reply. */
  readonly handlerTimeoutMs: number;
  /** Largest frame payload (after the 2-byte length) accepted; at most 65,535. */
  readonly maxFrameBytes: number;
  readonly maxConnections: number;
  /** Frames that may wait behind the one being handled; one more closes the connection. Default 4. */
  readonly maxQueuedFrames?: number;
  /** How long `close()` waits for outstanding requests before cutting connections. Default 5,000 ms. */
  readonly drainTimeoutMs?: number;
  /** The reply header; default: the request's header unchanged. Lets the wiring set 处理要求 = 3 (sign on again). */
  readonly responseHeader?: (requestHeader: FrameHeader, response: PosMessage) => FrameHeader;
  /** Observability hook; never given message contents. */
  readonly onEvent?: (event: PosServerEvent) => void;
}

export interface PosServerStats {
  connectionsOpened: number;
  connectionsRejected: number;
  framesReceived: number;
  repliesSent: number;
  formatErrors: number;
  handlerErrors: number;
  handlerTimeouts: number;
  readTimeouts: number;
  idleTimeouts: number;
  queueOverflows: number;
  frameErrors: number;
}

export interface PosServer {
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, lets outstanding and queued requests finish (≤ drainTimeoutMs), then closes every connection. */
  close(): Promise<void>;
  readonly connectionCount: number;
  readonly stats: Readonly<PosServerStats>;
}

const DEFAULT_MAX_QUEUED_FRAMES = 4;
const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;
/** After a graceful end(), how long the peer gets to close its side before the socket is destroyed. */
const LINGER_MS = 1_000;

interface ResolvedOptions extends Required<Omit<PosServerOptions, 'onEvent' | 'responseHeader'>> {
  readonly onEvent: (event: PosServerEvent) => void;
  readonly responseHeader: (requestHeader: FrameHeader, response: PosMessage) => FrameHeader;
}

function resolveOptions(options: PosServerOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    handler: options.handler,
    spec: options.spec ?? CUP_POS_SPEC,
    readTimeoutMs: options.readTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    handlerTimeoutMs: options.handlerTimeoutMs,
    maxFrameBytes: options.maxFrameBytes,
    maxConnections: options.maxConnections,
    maxQueuedFrames: options.maxQueuedFrames ?? DEFAULT_MAX_QUEUED_FRAMES,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    onEvent: options.onEvent ?? (() => undefined),
    responseHeader: options.responseHeader ?? ((header) => header),
  };
  const bounds: [string, number][] = [
    ['readTimeoutMs', resolved.readTimeoutMs],
    ['idleTimeoutMs', resolved.idleTimeoutMs],
    ['handlerTimeoutMs', resolved.handlerTimeoutMs],
    ['maxFrameBytes', resolved.maxFrameBytes],
    ['maxConnections', resolved.maxConnections],
    ['drainTimeoutMs', resolved.drainTimeoutMs],
  ];
  for (const [name, value] of bounds) {
    if (!Number.isInteger(value) || value <= 0) throw new PosGatewayError(`${name} must be a positive integer`);
  }
  if (!Number.isInteger(resolved.maxQueuedFrames) || resolved.maxQueuedFrames < 0) {
    throw new PosGatewayError('maxQueuedFrames must be a non-negative integer');
  }
  return resolved;
}

export function createPosServer(options: PosServerOptions): PosServer {
  const config = resolveOptions(options);
  const stats: PosServerStats = {
    connectionsOpened: 0,
    connectionsRejected: 0,
    framesReceived: 0,
    repliesSent: 0,
    formatErrors: 0,
    handlerErrors: 0,
    handlerTimeouts: 0,
    readTimeouts: 0,
    idleTimeouts: 0,
    queueOverflows: 0,
    frameErrors: 0,
  };
  const connections = new Set<PosConnection>();
  let nextConnectionId = 1;
  let draining = false;

  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    const connectionId = nextConnectionId++;
    socket.on('error', () => undefined); // a reset peer must never become an uncaught exception
    if (draining || connections.size >= config.maxConnections) {
      stats.connectionsRejected++;
      config.onEvent({ type: 'connection_rejected', connectionId });
      socket.destroy();
      return;
    }
    const connection = new PosConnection(socket, connectionId, config, stats, () => connections.delete(connection));
    connections.add(connection);
    stats.connectionsOpened++;
    config.onEvent({ type: 'connection_opened', connectionId });
    connection.start();
  });
  server.on('error', () => undefined);

  return {
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.drain();
      const cutOff = setTimeout(() => {
        for (const connection of connections) connection.destroy();
      }, config.drainTimeoutMs);
      await closed;
      clearTimeout(cutOff);
    },
    get connectionCount() {
      return connections.size;
    },
    stats,
  };
}

type Answer = { readonly reply: Buffer } | { readonly close: string };

const HANDLER_TIMED_OUT = Symbol('handler timed out');

class PosConnection {
  private readonly splitter: FrameSplitter;
  private readonly queue: Buffer[] = [];
  private busy = false;
  private draining = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private frameStartedAtMs = 0;

  constructor(
    private readonly socket: Socket,
    private readonly connectionId: number,
    private readonly config: ResolvedOptions,
    private readonly stats: PosServerStats,
    private readonly onClosed: () => void,
  ) {
    this.splitter = new FrameSplitter(config.maxFrameBytes);
  }

  start(): void {
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => this.event('socket_error', error.message));
    this.socket.on('close', () => this.onSocketClosed());
    this.armTimer();
  }

  drain(): void {
    this.draining = true;
    this.endIfDone();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    const wasPending = this.splitter.pendingBytes > 0;
    const { frames, error } = this.splitter.push(chunk);
    if (this.splitter.pendingBytes > 0 && (!wasPending || frames.length > 0)) this.frameStartedAtMs = Date.now();
    this.stats.framesReceived += frames.length;
    this.queue.push(...frames);
    if (error) return this.fail('frame_error', error.detail);
    // The frame being handled is not in the queue; the queue holds only those waiting behind it.
    const waiting = this.busy ? this.queue.length : this.queue.length - 1;
    if (waiting > this.config.maxQueuedFrames) return this.fail('queue_overflow', `${waiting} frames waiting`);
    this.armTimer();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy || this.closed) return;
    const frame = this.queue.shift();
    if (frame === undefined) return this.endIfDone();
    this.busy = true;
    this.socket.pause();
    this.armTimer();
    const answer = await this.answer(frame);
    if (this.closed) return;
    if ('close' in answer) return this.closeGracefully(answer.close);
    this.stats.repliesSent++;
    if (!this.socket.write(answer.reply)) await this.waitForDrain();
    if (this.closed) return;
    this.busy = false;
    this.socket.resume();
    if (this.splitter.pendingBytes > 0) this.frameStartedAtMs = Date.now();
    this.armTimer();
    void this.pump();
  }

  private waitForDrain(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Decodes one payload and produces the reply bytes, or the reason to close. Never rejects. */
  private async answer(payload: Buffer): Promise<Answer> {
    const { spec } = this.config;
    const decoded = decodeFramePayload(payload, spec);
    if (!decoded.ok) return this.formatErrorReply(decoded.error);
    const { tpdu, header, message, body } = decoded.value;
    const responseMti = responseMtiOf(message.mti);
    if (responseMti === undefined) return { close: `MTI ${message.mti} is not a request` };
    const info: ConnectionInfo = {
      connectionId: this.connectionId,
      remoteAddress: this.socket.remoteAddress ?? '',
      remotePort: this.socket.remotePort ?? 0,
      tpdu,
      header,
      requestBody: body ?? Buffer.alloc(0),
    };
    const outcome = await this.callHandler(message, info);
    if (outcome === HANDLER_TIMED_OUT) {
      this.stats.handlerTimeouts++;
      return { close: 'handler timed out' };
    }
    if (outcome instanceof Error) {
      this.stats.handlerErrors++;
      this.event('handler_error', outcome.message);
      return this.encodeReply(tpdu, header, errorReply(message, responseMti, RESPONSE_CODES.systemMalfunction.code));
    }
    const encoded = this.encodeReply(tpdu, header, outcome);
    if ('reply' in encoded) return encoded;
    this.stats.handlerErrors++;
    this.event('bad_response', encoded.close);
    return this.encodeReply(tpdu, header, errorReply(message, responseMti, RESPONSE_CODES.systemMalfunction.code));
  }

  private async callHandler(
    message: PosMessage,
    info: ConnectionInfo,
  ): Promise<PosMessage | Error | typeof HANDLER_TIMED_OUT> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof HANDLER_TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(HANDLER_TIMED_OUT), this.config.handlerTimeoutMs);
    });
    const handled = Promise.resolve()
      .then(() => this.config.handler(message, info))
      .then(
        (response): PosMessage | Error =>
          isPosMessage(response) ? response : new Error('handler returned something that is not a PosMessage'),
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
    try {
      return await Promise.race([handled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private formatErrorReply(error: FrameError): Answer {
    this.stats.formatErrors++;
    this.event('format_error', `${error.code}${error.field === undefined ? '' : ` field ${error.field}`}`);
    const recovered = error.recovered;
    const responseMti = recovered?.mti === undefined ? undefined : responseMtiOf(recovered.mti);
    if (recovered === undefined || responseMti === undefined) return { close: `unanswerable frame: ${error.code}` };
    const request: PosMessage = { mti: recovered.mti ?? '', fields: recovered.fields ?? {} };
    return this.encodeReply(
      recovered.tpdu,
      recovered.header,
      errorReply(request, responseMti, RESPONSE_CODES.formatError.code),
    );
  }

  private encodeReply(tpdu: Tpdu, header: FrameHeader, response: PosMessage): Answer {
    let replyHeader: FrameHeader;
    try {
      replyHeader = this.config.responseHeader(header, response);
    } catch (error) {
      return { close: `responseHeader threw: ${(error as Error).message}` };
    }
    try {
      const encoded = encodeFrame({ tpdu: swapTpdu(tpdu), header: replyHeader, message: response }, this.config.spec);
      return encoded.ok ? { reply: encoded.value } : { close: `reply does not pack: ${encoded.error.detail}` };
    } catch (error) {
      return { close: `reply does not pack: ${(error as Error).message}` };
    }
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed || this.busy) return;
    if (this.splitter.pendingBytes > 0) {
      const remainingMs = Math.max(0, this.frameStartedAtMs + this.config.readTimeoutMs - Date.now());
      this.timer = setTimeout(() => this.timeOut('read_timeout'), remainingMs);
    } else {
      this.timer = setTimeout(() => this.timeOut('idle_timeout'), this.config.idleTimeoutMs);
    }
  }

  private timeOut(type: 'read_timeout' | 'idle_timeout'): void {
    if (type === 'read_timeout') this.stats.readTimeouts++;
    else this.stats.idleTimeouts++;
    this.fail(type);
  }

  private endIfDone(): void {
    if (this.draining && !this.busy && this.queue.length === 0 && this.splitter.pendingBytes === 0) {
      this.closeGracefully('server closing');
    }
  }

  /** Protocol failure: no reply is possible, so the connection goes. */
  private fail(type: PosServerEventType, detail?: string): void {
    if (type === 'queue_overflow') this.stats.queueOverflows++;
    if (type === 'frame_error') this.stats.frameErrors++;
    this.event(type, detail);
    this.closeGracefully(detail ?? type);
  }

  private closeGracefully(_reason: string): void {
    if (this.closed) return;
    this.markClosed();
    this.socket.resume(); // let the peer's FIN (and anything after) be read and dropped, so 'close' can come
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  private markClosed(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private onSocketClosed(): void {
    this.markClosed();
    this.onClosed();
    this.event('connection_closed');
  }

  private event(type: PosServerEventType, detail?: string): void {
    try {
      this.config.onEvent({ type, connectionId: this.connectionId, ...(detail === undefined ? {} : { detail }) });
    } catch {
      // An observer's bug must not take the connection down.
    }
  }
}

/** A reply carrying only the echoed fields (3, 4, 11, 41, 42) and a response code. */
export function errorReply(request: PosMessage, responseMti: string, responseCode: string): PosMessage {
  const fields: Record<number, PosMessage['fields'][number]> = {};
  for (const n of ECHOED_FIELDS) {
    const value = request.fields[n];
    if (value !== undefined) fields[n] = value;
  }
  fields[39] = responseCode;
  return { mti: responseMti, fields };
}

function isPosMessage(value: unknown): value is PosMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as PosMessage).mti === 'string' &&
    typeof (value as PosMessage).fields === 'object' &&
    (value as PosMessage).fields !== null
  );
}
