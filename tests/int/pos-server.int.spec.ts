/**
 * The POS TCP server over real sockets on loopback, with fake handlers (no ledger): many concurrent terminals, one
 * outstanding request per connection, format errors answered 30, handler failures answered 96, every time-out and
 * bound closing the connection, and close() draining.
 */
import { connect, type Socket } from 'node:net';
import {
  createPosServer,
  CUP_POS_SPEC,
  DEFAULT_HEADER,
  DEFAULT_TPDU,
  encodeFrame,
  errorReply,
  PosTerminalClient,
  responseMtiOf,
} from '../../pos-gateway';
import type { ConnectionInfo, PosHandler, PosMessage, PosServer, PosServerOptions } from '../../pos-gateway';

const READ_TIMEOUT_MS = 300;
const IDLE_TIMEOUT_MS = 1_000;
const HANDLER_TIMEOUT_MS = 800;
const REPLY_WAIT_MS = 5_000;

const servers: PosServer[] = [];
const clients: PosTerminalClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Approves everything: echoes 3, 4, 11, 41, 42 with 39 = 00, like the ledger wiring will for a good request. */
const approve: PosHandler = async (request) => errorReply(request, responseMtiOf(request.mti)!, '00');

async function startServer(overrides: Partial<PosServerOptions> = {}) {
  const server = createPosServer({
    handler: approve,
    readTimeoutMs: READ_TIMEOUT_MS,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    handlerTimeoutMs: HANDLER_TIMEOUT_MS,
    maxFrameBytes: 1024,
    maxConnections: 500,
    maxQueuedFrames: 2,
    drainTimeoutMs: 3_000,
    ...overrides,
  });
  servers.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

async function terminal(port: number): Promise<PosTerminalClient> {
  const client = await PosTerminalClient.connect({ host: '127.0.0.1', port });
  clients.push(client);
  return client;
}

function sale(trace: string, terminalId = '00000764'): PosMessage {
  return {
    mti: '0200',
    fields: {
      3: '000000',
      4: '000000001000',
      11: trace,
      22: '021',
      25: '00',
      41: terminalId,
      42: '848100058126002',
      49: '156',
      60: '22000001000',
    },
  };
}

function frameOf(message: PosMessage): Buffer {
  const bytes = encodeFrame({ tpdu: DEFAULT_TPDU, header: DEFAULT_HEADER, message }, CUP_POS_SPEC);
  if (!bytes.ok) throw new Error(bytes.error.detail);
  return bytes.value;
}

/** A frame whose length prefix is right but whose body is cut inside field 41: splits, does not decode. */
function frameCutInField41(trace: string): Buffer {
  const whole = frameOf(sale(trace)).subarray(2);
  const cut = whole.subarray(0, 11 + 2 + 8 + 3 + 6 + 2 + 1 + 3 + 4); // TPDU+header | MTI bitmap 3 4 11 22 25 | 4 B of 41
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(cut.length, 0);
  return Buffer.concat([prefix, cut]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function closedWithin(client: PosTerminalClient, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([client.closed.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadlineMs = Date.now() + ms;
  while (!condition() && Date.now() < deadlineMs) await sleep(10);
  return condition();
}

describe('POS server over TCP', () => {
  test('200 concurrent terminals, 3 sales each: every reply matches its request, TPDU swapped', async () => {
    const { server, port } = await startServer();
    const terminals = await Promise.all(Array.from({ length: 200 }, () => terminal(port)));
    expect(await waitFor(() => server.connectionCount === 200, 2_000)).toBe(true);
    const failures: string[] = [];
    await Promise.all(
      terminals.map(async (client, index) => {
        const terminalId = String(index).padStart(8, '0');
        for (let round = 0; round < 3; round++) {
          const trace = String(index * 10 + round).padStart(6, '0');
          const reply = await client.request(sale(trace, terminalId), REPLY_WAIT_MS);
          if (!reply.ok) {
            failures.push(`${terminalId}/${trace}: ${reply.error.code}`);
            continue;
          }
          const { tpdu, message } = reply.value;
          if (message.mti !== '0210' || message.fields[11] !== trace || message.fields[41] !== terminalId) {
            failures.push(`${terminalId}/${trace}: mismatched reply`);
          }
          if (message.fields[39] !== '00' || tpdu.destination !== '0000' || tpdu.source !== '0003') {
            failures.push(`${terminalId}/${trace}: bad code or TPDU`);
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(server.stats).toMatchObject({ framesReceived: 600, repliesSent: 600, formatErrors: 0, handlerErrors: 0 });
  });

  test('a frame that splits but does not decode is answered 30 with what was read, and the connection lives on', async () => {
    const { server, port } = await startServer();
    const client = await terminal(port);
    client.sendRaw(frameCutInField41('000777'));
    const formatError = await client.receive(REPLY_WAIT_MS);
    expect(formatError).toMatchObject({
      ok: true,
      value: {
        tpdu: { destination: '0000', source: '0003' },
        message: { mti: '0210', fields: { 3: '000000', 4: '000000001000', 11: '000777', 39: '30' } },
      },
    });
    const next = await client.request(sale('000778'), REPLY_WAIT_MS);
    expect(next).toMatchObject({ ok: true, value: { message: { fields: { 11: '000778', 39: '00' } } } });
    expect(server.stats.formatErrors).toBe(1);
  });

  test('frames that cannot be answered close the connection: no MTI, a response MTI, a length over the bound', async () => {
    const { server, port } = await startServer();
    const tooShort = await terminal(port);
    tooShort.sendRaw(Buffer.from('00056000030000', 'hex'));
    expect(await closedWithin(tooShort, 2_000)).toBe(true);

    const responseMti = await terminal(port);
    responseMti.sendRaw(frameOf({ mti: '0210', fields: { 11: '000001' } }));
    expect(await closedWithin(responseMti, 2_000)).toBe(true);

    const tooLong = await terminal(port);
    tooLong.sendRaw(Buffer.from('0401', 'hex')); // 1025 > maxFrameBytes 1024
    expect(await closedWithin(tooLong, 2_000)).toBe(true);
    expect(server.stats.frameErrors).toBe(1);
  });

  test('a handler that throws (or rejects, or answers garbage) gives 96 with the echoed fields', async () => {
    let calls = 0;
    const { server, port } = await startServer({
      handler: async (request) => {
        calls++;
        if (request.fields[11] === '000001') throw new Error('ledger unavailable');
        if (request.fields[11] === '000002') return { mti: '0210', fields: { 39: '000' } }; // does not pack
        return approve(request, {} as ConnectionInfo);
      },
    });
    const client = await terminal(port);
    for (const trace of ['000001', '000002']) {
      const reply = await client.request(sale(trace), REPLY_WAIT_MS);
      expect(reply).toMatchObject({
        ok: true,
        value: { message: { mti: '0210', fields: { 3: '000000', 11: trace, 41: '00000764', 39: '96' } } },
      });
    }
    expect(await client.request(sale('000003'), REPLY_WAIT_MS)).toMatchObject({
      ok: true,
      value: { message: { fields: { 39: '00' } } },
    });
    expect(calls).toBe(3);
    expect(server.stats.handlerErrors).toBe(2);
  });

  test('idle timeout closes a silent connection', async () => {
    const { server, port } = await startServer();
    const client = await terminal(port);
    const startedMs = Date.now();
    await client.closed;
    const elapsedMs = Date.now() - startedMs;
    expect(elapsedMs).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(IDLE_TIMEOUT_MS + 1_000);
    expect(server.stats.idleTimeouts).toBe(1);
  });

  test('a half-sent frame times out on the read timeout, not the idle one; so does a byte-a-while trickle', async () => {
    const { server, port } = await startServer();
    const half = await terminal(port);
    const frame = frameOf(sale('000010'));
    const startedMs = Date.now();
    half.sendRaw(frame.subarray(0, 20));
    await half.closed;
    const elapsedMs = Date.now() - startedMs;
    expect(elapsedMs).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(IDLE_TIMEOUT_MS);

    const trickle = await terminal(port);
    let sent = 0;
    while (trickle.isOpen && sent < frame.length - 1) {
      trickle.sendRaw(frame.subarray(sent, sent + 1));
      sent++;
      await sleep(50);
    }
    expect(trickle.isOpen).toBe(false);
    expect(sent).toBeLessThan(frame.length - 1);
    expect(server.stats.readTimeouts).toBe(2);
  });

  test('one outstanding request per connection: pipelined frames are handled one at a time, in order', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const seen: string[] = [];
    const { port } = await startServer({
      handler: async (request) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        seen.push(request.fields[11] as string);
        await sleep(30);
        inFlight--;
        return approve(request, {} as ConnectionInfo);
      },
    });
    const client = await terminal(port);
    client.sendRaw(Buffer.concat(['000021', '000022', '000023'].map((trace) => frameOf(sale(trace)))));
    const traces: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await client.receive(REPLY_WAIT_MS);
      traces.push(reply.ok ? reply.value.message.fields[11] : reply.error.code);
    }
    expect(traces).toEqual(['000021', '000022', '000023']);
    expect(seen).toEqual(['000021', '000022', '000023']);
    expect(maxInFlight).toBe(1);
  });

  test('more frames queued than maxQueuedFrames closes the connection', async () => {
    const { server, port } = await startServer({
      handler: async (request) => {
        await sleep(200);
        return approve(request, {} as ConnectionInfo);
      },
    });
    const client = await terminal(port);
    // 1 handled + 2 queued is the bound; the 4th frame overflows.
    client.sendRaw(Buffer.concat(['000031', '000032', '000033', '000034'].map((trace) => frameOf(sale(trace)))));
    expect(await closedWithin(client, 2_000)).toBe(true);
    expect(server.stats.queueOverflows).toBe(1);
  });

  test('a handler slower than handlerTimeoutMs: the connection closes without a reply (the terminal reverses)', async () => {
    const { server, port } = await startServer({ handler: () => new Promise(() => undefined) });
    const client = await terminal(port);
    const reply = await client.request(sale('000041'), REPLY_WAIT_MS);
    expect(reply).toMatchObject({ ok: false, error: { code: 'closed' } });
    expect(server.stats.handlerTimeouts).toBe(1);
  });

  test('maxConnections: the connection over the bound is closed at once, the others keep working', async () => {
    const { server, port } = await startServer({ maxConnections: 3 });
    const admitted = await Promise.all([terminal(port), terminal(port), terminal(port)]);
    await sleep(50);
    const extra = await terminal(port);
    expect(await closedWithin(extra, 2_000)).toBe(true);
    expect(server.stats.connectionsRejected).toBe(1);
    const reply = await admitted[0]!.request(sale('000051'), REPLY_WAIT_MS);
    expect(reply).toMatchObject({ ok: true, value: { message: { fields: { 39: '00' } } } });
  });

  test('a peer that resets mid-request does not disturb the server', async () => {
    let release: () => void = () => undefined;
    const { server, port } = await startServer({
      handler: async (request) => {
        await new Promise<void>((resolve) => (release = resolve));
        return approve(request, {} as ConnectionInfo);
      },
    });
    const socket: Socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(frameOf(sale('000061')));
    await sleep(50);
    socket.resetAndDestroy();
    await sleep(50);
    release();
    await sleep(50);
    expect(server.connectionCount).toBe(0);
    const client = await terminal(port);
    const reply = client.request(sale('000062'), REPLY_WAIT_MS);
    await sleep(20);
    release();
    expect(await reply).toMatchObject({ ok: true, value: { message: { fields: { 11: '000062', 39: '00' } } } });
  });

  test('close() lets the outstanding request finish and answers it, then closes; new connections are refused', async () => {
    const { server, port } = await startServer({
      handler: async (request) => {
        await sleep(300);
        return approve(request, {} as ConnectionInfo);
      },
    });
    const busy = await terminal(port);
    const idle = await terminal(port);
    const pending = busy.request(sale('000071'), REPLY_WAIT_MS);
    await sleep(50);
    const closing = server.close();
    expect(await closedWithin(idle, 500)).toBe(true);
    expect(await pending).toMatchObject({ ok: true, value: { message: { fields: { 11: '000071', 39: '00' } } } });
    await closing;
    expect(busy.isOpen).toBe(false);
    await expect(PosTerminalClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 1_000 })).rejects.toThrow();
  });

  test('300 connections sending mutated frames: none hangs, the server keeps answering', async () => {
    const { server, port } = await startServer();
    let state = 0x9;
    const random = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 4294967296;
    };
    const valid = frameOf(sale('000090'));
    const mutated = Array.from({ length: 300 }, (_, i) => {
      const bytes = Buffer.from(valid.subarray(0, 2 + Math.floor(random() * (valid.length - 1))));
      if (i % 3 !== 0)
        for (let k = 0; k < 3; k++) bytes[2 + Math.floor(random() * (bytes.length - 2))] = random() * 256;
      return bytes;
    });
    const connections = await Promise.all(mutated.map(() => terminal(port)));
    connections.forEach((client, i) => client.sendRaw(mutated[i]!));
    const startedMs = Date.now();
    const closed = await Promise.all(connections.map((client) => closedWithin(client, IDLE_TIMEOUT_MS + 2_000)));
    expect(closed.every(Boolean)).toBe(true);
    expect(Date.now() - startedMs).toBeLessThan(IDLE_TIMEOUT_MS + 2_000);
    expect(await waitFor(() => server.connectionCount === 0, 1_000)).toBe(true);
    const client = await terminal(port);
    expect(await client.request(sale('000091'), REPLY_WAIT_MS)).toMatchObject({
      ok: true,
      value: { message: { fields: { 39: '00' } } },
    });
  });
});
