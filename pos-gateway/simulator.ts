/**
 * A terminal simulator that speaks the protocol as a CUP terminal does (research §1.4): it holds its TMK, signs on and
 * decrypts the working keys (checking their check values), numbers its messages (trace 11), MACs every 0200/0400 and
 * checks the MAC of every reply, builds PIN blocks, keeps its batch's totals for settlement, and — like a terminal —
 * hangs up when a reply does not come in time, so the next request goes over a new connection.
 *
 * For tests, the bench, and anyone who wants to talk to the gateway by hand.
 */
import { encodePinBlockFormat0, encryptPinBlock } from './pin-block';
import type { FieldValue, PosMessage } from './codec';
import { composeBatchUpload, composeField, decomposeField, type BatchUploadItem } from './composite';
import type { FrameHeader, Tpdu } from './frame';
import { decodeKeyDownload, type WorkingKeys } from './key-download';
import { type MacKey, signMessage, verifyReceivedMac } from './mac';
import { type Result, err, ok } from './result';
import { CUP_POS_SPEC, FIELD_48_SETTLEMENT, FIELD_60, FIELD_61, RECONCILIATION_CODES, REVERSAL_REASONS } from './spec';
import { PosTerminalClient, type TerminalError } from './terminal-client';
import { layoutOf, type TerminalKeyScheme } from './terminals';

export interface TerminalSimulatorOptions {
  readonly host: string;
  readonly port: number;
  readonly terminalId: string;
  readonly cardAcceptorId: string;
  readonly masterKey: Buffer;
  readonly keyScheme: TerminalKeyScheme;
  /** How long the terminal waits for a reply before it hangs up (and, for a sale, reverses). Default 10 s. */
  readonly replyTimeoutMs?: number;
  readonly tpdu?: Tpdu;
  readonly header?: FrameHeader;
}

export interface SimulatorReply {
  readonly message: PosMessage;
  readonly header: FrameHeader;
  /** Whether the reply's field 64 verifies under our MAK; undefined when the reply has no field 64. */
  readonly macValid: boolean | undefined;
}

/** A sale the terminal holds as approved in its open batch (what settlement totals and batch upload sends). */
export interface TerminalSale {
  readonly trace: string;
  readonly amountFen: string;
  readonly pan: string;
  readonly rrn: string;
}

/** Field 53: format 0 with the PAN (2), double-length 3DES (6), no track encryption (research §1.3). */
const SECURITY_CONTROL = '2600000000000000';
const CURRENCY_CNY = '156';
const MAX_TRACE = 999_999;

export class TerminalSimulator {
  private client: PosTerminalClient | undefined;
  private lastTrace = 0;
  private keys: WorkingKeys | undefined;
  /** The batch the host gave at sign-on; moves on after settlement. */
  batch = '000000';
  /** Approved sales of the open batch that were neither voided nor reversed. */
  readonly openSales = new Map<string, TerminalSale>();
  /** The sales of the batch settled last, for a batch upload after an unbalanced settlement. */
  settledSales: { batch: string; sales: TerminalSale[] } | undefined;

  constructor(readonly options: TerminalSimulatorOptions) {}

  get workingKeys(): WorkingKeys | undefined {
    return this.keys;
  }

  get signedOn(): boolean {
    return this.keys !== undefined;
  }

  nextTrace(): string {
    this.lastTrace = this.lastTrace >= MAX_TRACE ? 1 : this.lastTrace + 1;
    return String(this.lastTrace).padStart(6, '0');
  }

  // ---- messages ----

  async signOn(): Promise<Result<SimulatorReply, TerminalError | { code: 'keys'; detail: string }>> {
    const networkCode = this.options.keyScheme === 'sm4' ? '004' : this.options.keyScheme;
    const reply = await this.send(
      {
        mti: '0800',
        fields: { 11: this.nextTrace(), ...this.ids(), 60: sixty('00', this.batch, networkCode), 63: '001' },
      },
      { sign: false },
    );
    if (!reply.ok || reply.value.message.fields[39] !== '00') return reply;
    const field62 = reply.value.message.fields[62];
    if (!Buffer.isBuffer(field62)) return err({ code: 'keys', detail: 'no field 62 in an approved sign-on' });
    const keys = decodeKeyDownload(layoutOf(this.options.keyScheme), this.options.masterKey, field62);
    if (!keys.ok) return err({ code: 'keys', detail: keys.error.detail });
    this.keys = keys.value;
    const batch = decomposeField(FIELD_60, text(reply.value.message.fields[60]));
    if (batch.ok && batch.value.batchNumber !== undefined) this.batch = batch.value.batchNumber;
    return reply;
  }

  async signOff(): Promise<Result<SimulatorReply, TerminalError>> {
    const reply = await this.send(
      { mti: '0820', fields: { 11: this.nextTrace(), ...this.ids(), 60: sixty('00', this.batch, '002') } },
      { sign: false },
    );
    if (reply.ok && reply.value.message.fields[39] === '00') this.keys = undefined;
    return reply;
  }

  /** A sale request (unsigned), for callers that send it themselves (e.g. to tamper with it). */
  saleMessage(input: { pan: string; amountFen: string; pin?: string; trace?: string }): PosMessage {
    return {
      mti: '0200',
      fields: {
        2: input.pan,
        3: '000000',
        4: input.amountFen,
        11: input.trace ?? this.nextTrace(),
        22: input.pin === undefined ? '022' : '021',
        25: '00',
        ...this.ids(),
        49: CURRENCY_CNY,
        ...this.pinFields(input.pan, input.pin),
        60: sixty('22', this.batch, '000'),
      },
    };
  }

  async sale(input: {
    pan: string;
    amountFen: string;
    pin?: string;
    replyTimeoutMs?: number;
  }): Promise<{ trace: string; reply: Result<SimulatorReply, TerminalError> }> {
    const request = this.saleMessage(input);
    const trace = text(request.fields[11]);
    const reply = await this.send(request, { sign: true, replyTimeoutMs: input.replyTimeoutMs });
    if (reply.ok && reply.value.message.fields[39] === '00') {
      this.openSales.set(trace, {
        trace,
        amountFen: input.amountFen,
        pan: input.pan,
        rrn: text(reply.value.message.fields[37]),
      });
    }
    return { trace, reply };
  }

  /** Void of an approved sale of the open batch (61 = its batch and trace, 37 = its RRN). */
  async void(original: TerminalSale): Promise<{ trace: string; reply: Result<SimulatorReply, TerminalError> }> {
    const trace = this.nextTrace();
    const field61 = composeField(FIELD_61, { originalBatchNumber: this.batch, originalTraceNumber: original.trace });
    if (!field61.ok) throw new Error(field61.error.detail);
    const reply = await this.send(
      {
        mti: '0200',
        fields: {
          2: original.pan,
          3: '200000',
          4: original.amountFen,
          11: trace,
          22: '022',
          25: '00',
          37: original.rrn,
          ...this.ids(),
          49: CURRENCY_CNY,
          60: sixty('23', this.batch, '000'),
          61: field61.value,
        },
      },
      { sign: true },
    );
    if (reply.ok && reply.value.message.fields[39] === '00') this.openSales.delete(original.trace);
    return { trace, reply };
  }

  /** Reversal (0400) of a sale: 3, 4 and 11 are the original's; 39 the reason (98 = no reply in time). */
  async reverse(
    original: { trace: string; amountFen: string; pan: string },
    reason: string = REVERSAL_REASONS.noResponse,
  ): Promise<Result<SimulatorReply, TerminalError>> {
    const reply = await this.send(this.reversalMessage(original, reason), { sign: true });
    if (reply.ok && reply.value.message.fields[39] === '00') this.openSales.delete(original.trace);
    return reply;
  }

  /** A reversal request (unsigned), for callers that send it themselves (e.g. over several connections). */
  reversalMessage(
    original: { trace: string; amountFen: string; pan: string },
    reason: string = REVERSAL_REASONS.noResponse,
  ): PosMessage {
    return {
      mti: '0400',
      fields: {
        2: original.pan,
        3: '000000',
        4: original.amountFen,
        11: original.trace,
        22: '022',
        25: '00',
        39: reason,
        ...this.ids(),
        49: CURRENCY_CNY,
        60: sixty('22', this.batch, '000'),
      },
    };
  }

  async balance(input: { pan: string; pin: string }): Promise<Result<SimulatorReply, TerminalError>> {
    return this.send(
      {
        mti: '0200',
        fields: {
          2: input.pan,
          3: '310000',
          11: this.nextTrace(),
          22: '021',
          25: '00',
          ...this.ids(),
          49: CURRENCY_CNY,
          ...this.pinFields(input.pan, input.pin),
          60: sixty('01', this.batch, '000'),
        },
      },
      { sign: true },
    );
  }

  /**
   * Settlement (0500) with the totals of the open batch (or the ones given, to model a terminal that disagrees).
   * On 00 the terminal closes its batch, whatever the reconciliation code; the next batch is the one after.
   */
  async settle(totals?: {
    debitFen: string;
    debitCount: number;
  }): Promise<{ reply: Result<SimulatorReply, TerminalError>; reconciliation: string | undefined }> {
    const sales = [...this.openSales.values()];
    const debitFen =
      totals?.debitFen ??
      sales
        .reduce((sum, s) => sum + BigInt(s.amountFen), 0n)
        .toString()
        .padStart(12, '0');
    const debitCount = totals?.debitCount ?? sales.length;
    const field48 = composeField(FIELD_48_SETTLEMENT, {
      domesticDebitAmountFen: debitFen,
      domesticDebitCount: String(debitCount).padStart(3, '0'),
      domesticCreditAmountFen: '000000000000',
      domesticCreditCount: '000',
      domesticReconciliationCode: RECONCILIATION_CODES.request,
      foreignDebitAmountFen: '000000000000',
      foreignDebitCount: '000',
      foreignCreditAmountFen: '000000000000',
      foreignCreditCount: '000',
      foreignReconciliationCode: RECONCILIATION_CODES.request,
    });
    if (!field48.ok) throw new Error(field48.error.detail);
    const reply = await this.send(
      {
        mti: '0500',
        fields: {
          11: this.nextTrace(),
          ...this.ids(),
          48: field48.value,
          49: CURRENCY_CNY,
          60: sixty('00', this.batch, '201'),
          63: '001',
        },
      },
      { sign: false },
    );
    if (!reply.ok || reply.value.message.fields[39] !== '00') return { reply, reconciliation: undefined };
    const answer = decomposeField(FIELD_48_SETTLEMENT, text(reply.value.message.fields[48]));
    this.settledSales = { batch: this.batch, sales };
    this.openSales.clear();
    this.batch = String((Number(this.batch) % MAX_TRACE) + 1).padStart(6, '0');
    return { reply, reconciliation: answer.ok ? answer.value.domesticReconciliationCode : undefined };
  }

  /** Batch upload (0320, 201) of the settled batch's sales, 8 per message, then the end message (202). */
  async uploadBatch(items?: readonly BatchUploadItem[]): Promise<Result<SimulatorReply, TerminalError>[]> {
    const settled = this.settledSales;
    if (!settled) return [];
    const all =
      items ??
      settled.sales.map((s) => ({
        cardOrganisation: '00',
        traceNumber: s.trace,
        primaryAccountNumber: s.pan.padStart(20, '0'),
        amountFen: s.amountFen,
      }));
    const replies: Result<SimulatorReply, TerminalError>[] = [];
    for (let i = 0; i < all.length; i += 8) {
      const field48 = composeBatchUpload(all.slice(i, i + 8));
      if (!field48.ok) throw new Error(field48.error.detail);
      replies.push(await this.uploadMessage(settled.batch, '201', field48.value));
    }
    replies.push(await this.uploadMessage(settled.batch, '202', String(all.length).padStart(4, '0')));
    return replies;
  }

  /** Sends one message (MAC'd when `sign`), waits for its reply, checks its MAC; hangs up on a time-out. */
  async send(
    message: PosMessage,
    options: { sign: boolean; replyTimeoutMs?: number | undefined },
  ): Promise<Result<SimulatorReply, TerminalError>> {
    const request = options.sign ? this.signed(message) : message;
    const client = await this.connection();
    const reply = await client.request(request, options.replyTimeoutMs ?? this.options.replyTimeoutMs ?? 10_000);
    if (!reply.ok) {
      // A terminal that gives up hangs up: a late reply must not be taken for the next request's.
      await this.close();
      return reply;
    }
    const macKey = this.macKey();
    const body = reply.value.body;
    const macValid =
      reply.value.message.fields[64] === undefined
        ? undefined
        : macKey !== undefined && body !== undefined && verifyReceivedMac(body, macKey).ok;
    return ok({ message: reply.value.message, header: reply.value.header, macValid });
  }

  /** The message with our MAC in field 64 (or unchanged when not signed on). */
  signed(message: PosMessage): PosMessage {
    const macKey = this.macKey();
    if (macKey === undefined) return message;
    const signed = signMessage(message, macKey, CUP_POS_SPEC);
    if (!signed.ok) throw new Error(signed.error.detail);
    return signed.value;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.close();
  }

  // ---- internals ----

  private async uploadMessage(
    batch: string,
    networkCode: string,
    field48: string,
  ): Promise<Result<SimulatorReply, TerminalError>> {
    return this.send(
      {
        mti: '0320',
        fields: { 11: this.nextTrace(), ...this.ids(), 48: field48, 60: sixty('00', batch, networkCode) },
      },
      { sign: false },
    );
  }

  private async connection(): Promise<PosTerminalClient> {
    if (this.client?.isOpen) return this.client;
    this.client = await PosTerminalClient.connect({
      host: this.options.host,
      port: this.options.port,
      ...(this.options.tpdu ? { tpdu: this.options.tpdu } : {}),
      ...(this.options.header ? { header: this.options.header } : {}),
    });
    return this.client;
  }

  private ids(): Record<number, FieldValue> {
    return { 41: this.options.terminalId, 42: this.options.cardAcceptorId };
  }

  private macKey(): MacKey | undefined {
    if (!this.keys) return undefined;
    return { scheme: 'cup-ecb', algorithm: layoutOf(this.options.keyScheme).algorithm, key: this.keys.mak };
  }

  private pinFields(pan: string, pin: string | undefined): Record<number, FieldValue> {
    if (pin === undefined || !this.keys) return {};
    const block = encryptPinBlock('des', this.keys.pik, encodePinBlockFormat0(pin, pan));
    return { 26: '06', 52: block, 53: SECURITY_CONTROL };
  }
}

function sixty(type: string, batch: string, networkCode: string): string {
  const value = composeField(FIELD_60, {
    transactionTypeCode: type,
    batchNumber: batch,
    networkManagementCode: networkCode,
  });
  if (!value.ok) throw new Error(value.error.detail);
  return value.value;
}

function text(value: FieldValue | undefined): string {
  return typeof value === 'string' ? value : '';
}
