/**
 * The POS door wired to the ledger (issue #9, must-shows 2, 3 at CI size, 4 at CI size, 5), over real TCP against
 * the real PostgreSQL: event store and service tables. A terminal simulator (pos-gateway/simulator.ts) holds its TMK,
 * signs on, MACs its messages and checks ours. Balances are read from the ledger after every step.
 */
import { randomBytes } from 'node:crypto';
import type { AccountState, CommandContext, EventStore } from '../../core-ledger';
import { Ledger, Money, openPostgresEventStore } from '../../core-ledger';
import {
  checkFieldSet,
  createPosServer,
  CUP_POS_SPEC,
  decomposeField,
  DEFAULT_HEADER,
  DEFAULT_TPDU,
  encodeFrame,
  FIELD_54,
  FrameFuzzer,
  generateMasterKey,
  identifyTransaction,
  MESSAGE_FIELD_SETS,
  PosJournal,
  PosLedgerService,
  PosTerminalClient,
  runFuzz,
  TerminalRegistry,
  TerminalSimulator,
} from '../../pos-gateway';
import type { PosHandler, PosMessage, PosServer, Result, SimulatorReply, TerminalKeyScheme } from '../../pos-gateway';
import { PostgresReadModels } from '../../projections';
import { DataKeyRing } from '../../security';
import type { WalletRecord } from '../../services';
import { BankChannelSimulator, PaymentService, PLAINTEXT, WalletService } from '../../services';
import { createTestDatabase } from '../support/databases';
import { openPlatformAccounts } from '../support/ledger-fixtures';

const CONTEXT: CommandContext = { actor: 'pos-test', channel: 'api' };
const NOW = new Date('2026-11-23T04:00:00.000Z'); // 12:00 in Shanghai
const INDEX_KEY = Buffer.alloc(32, 9);
const PASSWORD = '135790';
const READ_TIMEOUT_MS = 1_000;
const REPLY_WAIT_MS = 10_000;

let drop: () => Promise<void>;
let store: EventStore;
let database: PostgresReadModels;
let ledger: Ledger;
let wallets: WalletService;
let payments: PaymentService;
let pos: PosLedgerService;
let bank: BankChannelSimulator;
let server: PosServer;
let port: number;
let merchantId: string;
let pendingAccount: string;
const handlerErrors: unknown[] = [];
/** Traces whose reply the host holds back (after doing the work), so the terminal times out. */
const slowTraces = new Set<string>();

beforeAll(async () => {
  const db = await createTestDatabase('pos');
  drop = db.drop;
  store = await openPostgresEventStore({ connectionString: db.url, maxConnections: 8 });
  database = new PostgresReadModels(db.url, 20);
  ledger = new Ledger(store);
  await openPlatformAccounts(ledger);
  wallets = new WalletService(database, ledger, PLAINTEXT, INDEX_KEY);
  payments = new PaymentService(database, ledger, wallets, PLAINTEXT);
  await wallets.install();
  await payments.install();
  // Top-up callbacks are delivered by hand below; the channel's own would come long after the tests.
  bank = new BankChannelSimulator(async () => undefined, {
    delayMs: 600_000,
    deliveries: 1,
    declineAbove: '1000000.00',
  });
  payments.attachChannel(bank);
  // Terminal keys sealed under a master key that is not in the database.
  const keyRing = await DataKeyRing.open(database, randomBytes(16));
  pos = new PosLedgerService(
    {
      terminals: new TerminalRegistry(database, keyRing),
      journal: new PosJournal(database),
      payments,
      wallets,
      ledger,
    },
    { acquirerId: '48480000', now: () => NOW, onError: (error) => handlerErrors.push(error) },
  );
  await pos.install();
  const merchant = await payments.applyMerchant(
    {
      name: 'Corner Shop',
      category: 'grocery',
      feeRateBps: 60,
      settlementBankAccount: '6222000011112222',
      areaCode: '0794',
    },
    NOW,
  );
  await payments.reviewMerchant(merchant.merchantId, 'approve', 'ok', CONTEXT, NOW);
  merchantId = merchant.merchantId;
  pendingAccount = merchant.pendingAccount;
  const slow: PosHandler = async (request, connection) => {
    const reply = await pos.handler(request, connection);
    if (slowTraces.has(String(request.fields[11]))) await new Promise((resolve) => setTimeout(resolve, 1_000));
    return reply;
  };
  server = createPosServer({
    handler: slow,
    responseHeader: pos.responseHeader,
    readTimeoutMs: READ_TIMEOUT_MS,
    idleTimeoutMs: 20_000,
    handlerTimeoutMs: 15_000,
    maxFrameBytes: 2_048,
    maxConnections: 2_000,
  });
  port = (await server.listen(0, '127.0.0.1')).port;
});

afterAll(async () => {
  bank.close();
  await server.close();
  await ledger.close();
  await database.close();
  await store.close();
  await drop();
});

afterEach(() => {
  expect(handlerErrors).toEqual([]);
});

let nextAccountNumber = 13_800_000_000;
async function fundedWallet(amount: string, password: string | undefined = PASSWORD): Promise<WalletRecord> {
  nextAccountNumber += 1;
  const wallet = await wallets.openWallet(
    {
      accountNumber: String(nextAccountNumber),
      name: 'Card Holder',
      areaCode: '0794',
      customerClass: '2',
      purpose: 'general',
    },
    CONTEXT,
    NOW,
  );
  if (password !== undefined) await wallets.setPaymentPassword(wallet.walletId, password);
  const topUp = await payments.requestTopUp(wallet.walletId, amount, 'bank_sim', NOW);
  await payments.confirmTopUp(
    { topUpId: topUp.topUpId, result: 'success', channelTradeNo: `T${nextAccountNumber}` },
    CONTEXT,
    NOW,
  );
  return wallet;
}

let nextTerminal = 10_000_000;
const ACCEPTOR = '848100058126002';
const simulators: TerminalSimulator[] = [];
afterAll(async () => {
  await Promise.all(simulators.map((s) => s.close()));
});

async function newTerminal(keyScheme: TerminalKeyScheme = '003'): Promise<TerminalSimulator> {
  nextTerminal += 1;
  const terminalId = String(nextTerminal);
  const { masterKey } = await pos.registerTerminal(
    { merchantId, cardAcceptorId: ACCEPTOR, terminalId, keyScheme },
    NOW,
  );
  const simulator = new TerminalSimulator({
    host: '127.0.0.1',
    port,
    terminalId,
    cardAcceptorId: ACCEPTOR,
    masterKey,
    keyScheme,
    replyTimeoutMs: REPLY_WAIT_MS,
  });
  simulators.push(simulator);
  return simulator;
}

async function account(id: string): Promise<AccountState> {
  ledger.invalidate();
  const state = await ledger.getAccount(id);
  if (!state) throw new Error(`no account ${id}`);
  return state;
}
const posted = async (id: string): Promise<string> => (await account(id)).posted.toFixed(2);

async function sumOfBalances(asset: string): Promise<string> {
  const rows = await database.query<{ sum: string }>(
    `SELECT coalesce(sum((data->>'amount')::numeric * CASE WHEN data->>'direction' = 'credit' THEN 1 ELSE -1 END), 0)::text AS sum
       FROM cp_events e WHERE type = 'AccountPosted' AND EXISTS (
         SELECT 1 FROM cp_events o WHERE o.type = 'AccountOpened' AND o.data->>'accountId' = e.data->>'accountId' AND o.data->>'asset' = $1)`,
    [asset],
  );
  return new Money(rows[0]!.sum).toFixed(2);
}

type Reply = Result<SimulatorReply, { code: string; detail: string }>;

function fieldsOf(reply: Reply): PosMessage['fields'] {
  if (!reply.ok) throw new Error(`no reply: ${reply.error.code} ${reply.error.detail}`);
  return reply.value.message.fields;
}
const codeOf = (reply: Reply): string => String(fieldsOf(reply)[39]);

/** The reply carries every field its set requires (research §1.4). */
function expectComplete(request: PosMessage, reply: PosMessage['fields']): void {
  const set = identifyTransaction(request) ?? MESSAGE_FIELD_SETS.find((s) => s.requestMti === request.mti)!;
  expect(checkFieldSet({ mti: '0210', fields: reply }, set, 'response').missing).toEqual([]);
}

describe('POS over TCP, wired to the ledger', () => {
  test('sign-on → sale → balance → void → sale → reversal after a time-out → settlement balanced; balances at each step', async () => {
    const wallet = await fundedWallet('500.00');
    const sim = await newTerminal('003');

    const signOn = await sim.signOn();
    expect(codeOf(signOn)).toBe('00');
    expect(sim.signedOn).toBe(true); // field 62 decrypted under the TMK and its check values matched
    expect(sim.batch).toBe('000001');
    const keyRow = (
      await database.query<{ tmk: string; pik: string; mak: string }>(
        'SELECT tmk, pik, mak FROM cp_pos_terminal_keys WHERE terminal_id = $1',
        [sim.options.terminalId],
      )
    )[0]!;
    for (const sealed of [keyRow.tmk, keyRow.pik, keyRow.mak]) expect(sealed).toMatch(/^sm4gcm:v1:/);
    expect(keyRow.tmk).not.toContain(sim.options.masterKey.toString('hex'));

    // Sale with the PIN: 123.45 CNY; the merchant's fee at 60 bps is 0.74 (half-up of 0.7407).
    const saleRequest = sim.saleMessage({ pan: wallet.cardNumber, amountFen: '000000012345', pin: PASSWORD });
    const sale = await sim.send(saleRequest, { sign: true });
    expect(codeOf(sale)).toBe('00');
    expect(sale.ok && sale.value.macValid).toBe(true);
    expectComplete(saleRequest, fieldsOf(sale));
    expect(fieldsOf(sale)[38]).toMatch(/^[0-9]{6}$/);
    const saleTrace = String(saleRequest.fields[11]);
    const firstSale = {
      trace: saleTrace,
      amountFen: '000000012345',
      pan: wallet.cardNumber,
      rrn: String(fieldsOf(sale)[37]),
    };
    expect(await posted(wallet.accounts.main)).toBe('376.55');
    expect(await posted(pendingAccount)).toBe('122.71');

    const balance = await sim.balance({ pan: wallet.cardNumber, pin: PASSWORD });
    expect(codeOf(balance)).toBe('00');
    const field54 = decomposeField(FIELD_54, String(fieldsOf(balance)[54]));
    expect(field54.ok && field54.value).toMatchObject({
      currencyCode: '156',
      balanceSign: 'C',
      balanceFen: '000000037655',
    });

    const voided = await sim.void(firstSale);
    expect(codeOf(voided.reply)).toBe('00');
    expect(voided.reply.ok && voided.reply.value.macValid).toBe(true);
    expect(await posted(wallet.accounts.main)).toBe('500.00');
    expect(await posted(pendingAccount)).toBe('0.00');

    // The host does the sale but its reply comes too late: the terminal hangs up and reverses (reason 98).
    const lateTrace = sim.nextTrace();
    slowTraces.add(lateTrace);
    const late = await sim.send(
      sim.saleMessage({ pan: wallet.cardNumber, amountFen: '000000008800', trace: lateTrace }),
      {
        sign: true,
        replyTimeoutMs: 300,
      },
    );
    expect(late.ok ? 'replied' : late.error.code).toBe('timeout');
    await waitFor(
      async () =>
        (await payments.findPayment(merchantId, `${sim.options.terminalId}-000001-${lateTrace}`))?.status ===
        'captured',
    );
    expect(await posted(wallet.accounts.main)).toBe('412.00');
    const reversal = await sim.reverse({ trace: lateTrace, amountFen: '000000008800', pan: wallet.cardNumber });
    expect(codeOf(reversal)).toBe('00');
    expect(reversal.ok && reversal.value.macValid).toBe(true);
    expect(await posted(wallet.accounts.main)).toBe('500.00');
    expect(await posted(pendingAccount)).toBe('0.00');

    const last = await sim.sale({ pan: wallet.cardNumber, amountFen: '000000001000' });
    expect(codeOf(last.reply)).toBe('00');
    expect(await posted(wallet.accounts.main)).toBe('490.00');
    expect(await posted(pendingAccount)).toBe('9.94');

    const settlement = await sim.settle();
    expect(codeOf(settlement.reply)).toBe('00');
    expect(settlement.reconciliation).toBe('1');
    expect(sim.batch).toBe('000002');
    const stored = await database.query<{ batch_number: string }>(
      'SELECT batch_number FROM cp_pos_terminals WHERE terminal_id = $1',
      [sim.options.terminalId],
    );
    expect(stored[0]!.batch_number).toBe('000002');
    expect(await sumOfBalances('CNY')).toBe('0.00');
  });

  test('a reversal sent 10 times (10 connections at once) reverses once; a reversal of an unknown trace answers 25', async () => {
    const wallet = await fundedWallet('100.00');
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    const sale = await sim.sale({ pan: wallet.cardNumber, amountFen: '000000002500' });
    expect(codeOf(sale.reply)).toBe('00');
    expect(await posted(wallet.accounts.main)).toBe('75.00');
    const pendingBefore = new Money(await posted(pendingAccount));

    const frame = encodeFrame(
      {
        tpdu: DEFAULT_TPDU,
        header: DEFAULT_HEADER,
        message: sim.signed(
          sim.reversalMessage({ trace: sale.trace, amountFen: '000000002500', pan: wallet.cardNumber }),
        ),
      },
      CUP_POS_SPEC,
    );
    if (!frame.ok) throw new Error(frame.error.detail);
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => PosTerminalClient.connect({ host: '127.0.0.1', port })),
    );
    for (const client of clients) client.sendRaw(frame.value);
    const replies = await Promise.all(clients.map((client) => client.receive(REPLY_WAIT_MS)));
    await Promise.all(clients.map((client) => client.close()));
    expect(replies.map((r) => (r.ok ? r.value.message.fields[39] : r.error.code))).toEqual(Array(10).fill('00'));
    expect(await posted(wallet.accounts.main)).toBe('100.00');
    expect(await posted(pendingAccount)).toBe(pendingBefore.minus('24.85').toFixed(2)); // 25.00 less its 0.15 fee
    const payment = await payments.findPayment(merchantId, `${sim.options.terminalId}-000001-${sale.trace}`);
    expect(payment?.status).toBe('reversed');
    // Exactly one reversal: a single cash tender is one transfer (gross, net and fee together).
    const reversals = await database.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM cp_events WHERE type = 'TransferReversed' AND data->>'reason' = $1`,
      [`POS reversal ${sim.options.terminalId} batch 000001 trace ${sale.trace} reason 98`],
    );
    expect(reversals[0]!.n).toBe('1');
    // Once more after the fact: still 00, still no money moves.
    expect(codeOf(await sim.reverse({ trace: sale.trace, amountFen: '000000002500', pan: wallet.cardNumber }))).toBe(
      '00',
    );
    expect(await posted(wallet.accounts.main)).toBe('100.00');

    const unknown = await sim.reverse({ trace: '999999', amountFen: '000000002500', pan: wallet.cardNumber });
    expect(codeOf(unknown)).toBe('25');
    expect(await sumOfBalances('CNY')).toBe('0.00');
  });

  test('a bad MAC answers A0 and asks for a new sign-on; no money moves', async () => {
    const wallet = await fundedWallet('50.00');
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    const signed = sim.signed(sim.saleMessage({ pan: wallet.cardNumber, amountFen: '000000001000' }));
    // The amount changed after the MAC was computed: what a man in the middle would do.
    const tampered = { mti: signed.mti, fields: { ...signed.fields, 4: '000000009000' } };
    const reply = await sim.send(tampered, { sign: false });
    expect(codeOf(reply)).toBe('A0');
    expect(reply.ok && reply.value.header.processingRequirement).toBe('3');
    expect(await posted(wallet.accounts.main)).toBe('50.00');
    // A terminal that signed off has no MAC key any more: A0 too, then signing on again works.
    expect(codeOf(await sim.signOff())).toBe('00');
    const afterSignOff = await sim.send(signed, { sign: false });
    expect(codeOf(afterSignOff)).toBe('A0');
    expect(codeOf(await sim.signOn())).toBe('00');
    expect(codeOf((await sim.sale({ pan: wallet.cardNumber, amountFen: '000000001000' })).reply)).toBe('00');
    expect(await posted(wallet.accounts.main)).toBe('40.00');
  });

  test('a wrong PIN answers 55; the fifth in a row locks the card (75), and then even the right PIN is 75', async () => {
    const wallet = await fundedWallet('80.00');
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    for (let i = 0; i < 4; i++) {
      const wrong = await sim.sale({ pan: wallet.cardNumber, amountFen: '000000001000', pin: '000000' });
      expect(codeOf(wrong.reply)).toBe('55');
      expect(wrong.reply.ok && wrong.reply.value.macValid).toBe(true);
    }
    expect(codeOf(await sim.balance({ pan: wallet.cardNumber, pin: '111111' }))).toBe('75');
    expect(codeOf((await sim.sale({ pan: wallet.cardNumber, amountFen: '000000001000', pin: PASSWORD })).reply)).toBe(
      '75',
    );
    expect(await posted(wallet.accounts.main)).toBe('80.00');
  });

  test('refusals as response codes: insufficient funds 51, unknown card 14, password-free limit 61, unknown terminal 97, stale batch 77', async () => {
    const wallet = await fundedWallet('20.00');
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    expect(codeOf((await sim.sale({ pan: wallet.cardNumber, amountFen: '000000003000', pin: PASSWORD })).reply)).toBe(
      '51',
    );
    expect(codeOf((await sim.sale({ pan: '8600794099999999', amountFen: '000000000100' })).reply)).toBe('14');
    const rich = await fundedWallet('1000.00');
    expect(codeOf((await sim.sale({ pan: rich.cardNumber, amountFen: '000000030000' })).reply)).toBe('61');
    expect(codeOf((await sim.sale({ pan: rich.cardNumber, amountFen: '000000030000', pin: PASSWORD })).reply)).toBe(
      '00',
    );
    const stranger = new TerminalSimulator({ ...sim.options, terminalId: '99999999' });
    simulators.push(stranger);
    expect(codeOf(await stranger.signOn())).toBe('97');
    const nul = new TerminalSimulator({ ...sim.options, terminalId: '1000\u0000001' });
    simulators.push(nul);
    expect(codeOf(await nul.signOn())).toBe('97');
    sim.batch = '000007';
    expect(codeOf((await sim.sale({ pan: rich.cardNumber, amountFen: '000000000100' })).reply)).toBe('77');
    expect(await posted(wallet.accounts.main)).toBe('20.00');
    expect(await posted(rich.accounts.main)).toBe('700.00');
  });

  test('a retransmitted sale is answered as the first time and pays once', async () => {
    const wallet = await fundedWallet('30.00');
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    const request = sim.saleMessage({ pan: wallet.cardNumber, amountFen: '000000000990' });
    const first = await sim.send(request, { sign: true });
    const again = await sim.send(request, { sign: true });
    expect(codeOf(first)).toBe('00');
    expect(fieldsOf(again)[37]).toBe(fieldsOf(first)[37]);
    expect(fieldsOf(again)[38]).toBe(fieldsOf(first)[38]);
    expect(await posted(wallet.accounts.main)).toBe('20.10');
  });

  test('the journal: one message recorded 10 times at once (one group commit) is first exactly once', async () => {
    const journal = new PosJournal(database);
    const entry = {
      cardAcceptorId: '898440100000001',
      terminalId: 'JRNL0001',
      batchNumber: '000001',
      trace: '424242',
      kind: 'sale' as const,
      merchantId,
      orderId: 'journal-order',
      amount: '1.00',
    };
    const firsts = await Promise.all(Array.from({ length: 10 }, () => journal.record(entry, NOW)));
    expect(firsts.filter((first) => first)).toHaveLength(1);
    expect(await journal.record(entry, NOW)).toBe(false);
    expect(await journal.find(entry)).toMatchObject({ orderId: 'journal-order', amount: '1.00' });
  });

  test('an unbalanced settlement answers 2; the batch upload is compared with the ledger item by item', async () => {
    const wallet = await fundedWallet('60.00');
    const sim = await newTerminal('004');
    expect(codeOf(await sim.signOn())).toBe('00');
    const sales = [];
    for (const amountFen of ['000000000500', '000000000700', '000000001100']) {
      const sale = await sim.sale({ pan: wallet.cardNumber, amountFen });
      expect(codeOf(sale.reply)).toBe('00');
      sales.push(sale.trace);
    }
    const settlement = await sim.settle({ debitFen: '000000002400', debitCount: 4 }); // the terminal counts one too many
    expect(settlement.reconciliation).toBe('2');
    const uploads = await sim.uploadBatch([
      ...[...sim.settledSales!.sales].map((s) => ({
        cardOrganisation: '00',
        traceNumber: s.trace,
        primaryAccountNumber: s.pan.padStart(20, '0'),
        amountFen: s.amountFen,
      })),
      {
        cardOrganisation: '00',
        traceNumber: '777777',
        primaryAccountNumber: wallet.cardNumber.padStart(20, '0'),
        amountFen: '000000000100',
      },
    ]);
    expect(uploads.map(codeOf)).toEqual(['00', '00']);
    const findings = await database.query<{ trace: string; finding: string }>(
      'SELECT trace, finding FROM cp_pos_batch_uploads WHERE terminal_id = $1 ORDER BY trace',
      [sim.options.terminalId],
    );
    expect(findings).toEqual([
      ...sales.map((trace) => ({ trace, finding: 'matched' })),
      { trace: '777777', finding: 'missing' },
    ]);
  });

  test('SM4 terminal: sign-on with the SM4 layout, sales MAC-ed with the SM4 variant', async () => {
    const wallet = await fundedWallet('10.00', undefined);
    const sim = await newTerminal('sm4');
    expect(codeOf(await sim.signOn())).toBe('00');
    expect(sim.workingKeys?.mak.length).toBe(16);
    const sale = await sim.sale({ pan: wallet.cardNumber, amountFen: '000000000123' });
    expect(codeOf(sale.reply)).toBe('00');
    expect(sale.reply.ok && sale.reply.value.macValid).toBe(true);
    expect(await posted(wallet.accounts.main)).toBe('8.77');
    expect(generateMasterKey('sm4').length).toBe(16);
  });

  test('200 concurrent terminal connections doing sales: 0 errors, every reply MAC-ed, the books add up', async () => {
    const TERMINALS = 200;
    const SALES_EACH = 2;
    const walletsUsed = await inParallel(20, 10, () => fundedWallet('200.00', undefined));
    const sims = await inParallel(TERMINALS, 20, () => newTerminal());
    const pendingBefore = new Money(await posted(pendingAccount));
    const errors: string[] = [];
    let netFen = 0n;
    await Promise.all(
      sims.map(async (sim, index) => {
        const signOn = await sim.signOn();
        if (!signOn.ok || signOn.value.message.fields[39] !== '00') return void errors.push(`${index}: sign-on`);
        for (let round = 0; round < SALES_EACH; round++) {
          const wallet = walletsUsed[(index + round) % walletsUsed.length]!;
          const amountFen = String(100 + index).padStart(12, '0');
          const sale = await sim.sale({ pan: wallet.cardNumber, amountFen });
          if (!sale.reply.ok) errors.push(`${index}/${round}: ${sale.reply.error.code}`);
          else if (sale.reply.value.message.fields[39] !== '00' || sale.reply.value.macValid !== true)
            errors.push(`${index}/${round}: ${String(sale.reply.value.message.fields[39])}`);
          else netFen += BigInt(amountFen) - fee60Bps(BigInt(amountFen));
        }
      }),
    );
    expect(errors).toEqual([]);
    expect(server.stats.handlerErrors).toBe(0);
    expect(new Money(await posted(pendingAccount)).minus(pendingBefore).mul(100).toFixed(0)).toBe(netFen.toString());
    expect(await sumOfBalances('CNY')).toBe('0.00');
  }, 60_000);

  test('10,000 random, truncated and mutated frames over TCP at the wired handler: no hung connection, still serving', async () => {
    const wallet = await fundedWallet('50.00', PASSWORD);
    const sim = await newTerminal();
    expect(codeOf(await sim.signOn())).toBe('00');
    const seeds = [
      sim.signed(sim.saleMessage({ pan: wallet.cardNumber, amountFen: '000000000100', pin: PASSWORD })),
      sim.signed(sim.reversalMessage({ trace: '000001', amountFen: '000000000100', pan: wallet.cardNumber })),
      { mti: '0800', fields: { 11: '000001', 41: sim.options.terminalId, 42: ACCEPTOR, 60: '00000001003', 63: '001' } },
    ].map((message) => {
      const frame = encodeFrame({ tpdu: DEFAULT_TPDU, header: DEFAULT_HEADER, message }, CUP_POS_SPEC);
      if (!frame.ok) throw new Error(frame.error.detail);
      return frame.value;
    });
    const result = await runFuzz({
      host: '127.0.0.1',
      port,
      fuzzer: new FrameFuzzer(seeds, 0x9e37, 2_048),
      frames: 10_000,
      connections: 32,
      deadlineMs: READ_TIMEOUT_MS + 5_000,
    });
    expect(result.hung).toBe(0);
    expect(result.answered + result.closed).toBe(10_000);
    expect(result.answered).toBeGreaterThan(0);
    expect(server.stats.handlerErrors).toBe(0); // every frame the handler saw was answered by it, none threw
    // Mutated sign-ons of this terminal may have re-keyed it; a real terminal signs on again, so does the simulator.
    await sim.close();
    expect(codeOf(await sim.signOn())).toBe('00');
    expect(codeOf((await sim.sale({ pan: wallet.cardNumber, amountFen: '000000000100' })).reply)).toBe('00');
    expect(await sumOfBalances('CNY')).toBe('0.00');
  }, 60_000);
});

/** The fee at 60 bps, half-up to the fen, in fen (what feeFor does, in integers). */
function fee60Bps(amountFen: bigint): bigint {
  return (amountFen * 60n + 5_000n) / 10_000n;
}

async function inParallel<T>(count: number, width: number, make: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += width) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, count - start) }, make))));
  }
  return out;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
