/**
 * The ledger wiring of the POS door (issue #9): a `PosHandler` that turns each decoded request into service calls and
 * answers it. A payment from the TCP door down: server.ts (frame, decode) → `PosLedgerService.handle` (terminal, MAC,
 * batch, PIN) → `PaymentService.pay` / `cancel` (services/payments.ts) → core-ledger → event store → projections.
 *
 * Rules, each in one place below:
 * - The idempotency key of a financial message is 42 + 41 + batch (60.2) + trace (11). A sale is the order
 *   `<41>-<batch>-<trace>` of the terminal's merchant, so `pay` answers a retransmission with the first outcome; a
 *   reversal carries its sale's trace and so names the same order. Messages with one key run one at a time here, so
 *   a reversal that arrives while its sale is still being decided waits for it, then cancels it.
 * - Sign-on (0800) issues fresh PIK and MAK under the terminal's TMK, with check values (field 62), and the open
 *   batch (60.2). Sign-off (0820) destroys them.
 * - Every 0200 and 0400 is MAC-checked over the bytes as received (`verifyReceivedMac`); a mismatch answers A0 and
 *   moves no money. Replies to them carry our MAC.
 * - A PIN block (52, ISO 9564 format 0 under the PIK, PAN from field 2 or track 2) is the wallet's payment password.
 *   A sale without one is password-free (免密) within the wallet's limits; a balance inquiry needs one.
 * - Refusals map to field 39 through REFUSAL_RESPONSE_CODES (a table); anything unexpected answers 96 with our MAC.
 */
import type { CommandContext, Ledger } from '../core-ledger';
import { businessDateOf, CHINA_STANDARD_TIME_OFFSET_HOURS, Money, sha256 } from '../core-ledger';
import type { PaymentService, PaymentView, WalletRecord, WalletService } from '../services';
import { ServiceRefusal } from '../services';
import { fenToYuan, isZeroFen, yuanToFen } from './amount-fen';
import type { FieldValue, PosMessage } from './codec';
import { composeField, decomposeBatchUpload, decomposeField } from './composite';
import { checkFieldSet, identifyTransaction, responseMtiOf } from './field-sets';
import type { FrameHeader } from './frame';
import { encodeKeyDownload, generateWorkingKeys } from './key-download';
import { type MacKey, signMessage, verifyReceivedMac } from './mac';
import { panFromTrack2, recoverPin } from './pin-block';
import type { PosJournal, UploadFinding } from './pos-journal';
import { responseCodeOfRefusal } from './refusal-codes';
import { describeResponseCode, RESPONSE_CODES } from './response-codes';
import type { ConnectionInfo, PosHandler } from './server';
import { errorReply } from './server';
import {
  CUP_POS_SPEC,
  FIELD_48_SETTLEMENT,
  FIELD_53,
  FIELD_54,
  FIELD_60,
  FIELD_61,
  type MessageFieldSet,
  RECONCILIATION_CODES,
} from './spec';
import { layoutOf, type TerminalRegistration, type TerminalRegistry, type TerminalState } from './terminals';

export interface PosServiceOptions {
  /** Field 32, the acquiring institution id we answer with (n..11). */
  readonly acquirerId: string;
  readonly cutoffHourLocal?: number;
  readonly now?: () => Date;
  /** Told of every unexpected error (answered 96); never of refusals. */
  readonly onError?: (error: unknown, transaction: string) => void;
}

export interface PosServiceDependencies {
  readonly terminals: TerminalRegistry;
  readonly journal: PosJournal;
  readonly payments: PaymentService;
  readonly wallets: WalletService;
  readonly ledger: Ledger;
}

/** Fields of a request that a reply echoes when its field set allows them (research §1.4: the terminal checks them). */
const ECHOED = [2, 3, 4, 11, 25, 41, 42, 49, 60, 61, 63];

/** Field 54 in a balance reply: account type 10 (default), amount type 02 (available), CNY, sign, fen. */
const BALANCE_FIELD = { accountType: '10', amountType: '02', currencyCode: '156' } as const;

/** Field 53.1 = 2: the PIN block is ISO 9564 format 0, with the PAN (research §1.3). */
const PIN_FORMAT_WITH_PAN = '2';

const PRINTABLE_ID = /^[\x21-\x7e]+$/;

const PROCESSING = { sale: '000000', void: '200000', balance: '310000' } as const;
const UPLOAD_ITEMS = '201';

/** One request being answered. */
interface Exchange {
  readonly request: PosMessage;
  readonly connection: ConnectionInfo;
  readonly set: MessageFieldSet;
  readonly responseMti: string;
  readonly terminal: TerminalState;
  /** 60.2 and 11: with 41 and 42, the idempotency key. */
  readonly batch: string;
  readonly trace: string;
  readonly now: Date;
}

type Outcome = { readonly code: string; readonly fields?: Readonly<Record<number, FieldValue>> };

export class PosLedgerService {
  private readonly exclusiveRuns = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;

  constructor(
    private readonly deps: PosServiceDependencies,
    private readonly options: PosServiceOptions,
  ) {
    if (!/^[0-9]{1,11}$/.test(options.acquirerId)) throw new Error('acquirerId (field 32) is 1..11 digits');
    this.now = options.now ?? (() => new Date());
  }

  async install(): Promise<void> {
    await this.deps.terminals.install();
    await this.deps.journal.install();
  }

  /** Registers a terminal of an existing merchant; returns its TMK once, for injection into the terminal. */
  async registerTerminal(
    input: TerminalRegistration,
    at: Date,
    masterKey?: Buffer,
  ): ReturnType<TerminalRegistry['register']> {
    const merchant = await this.deps.payments.getMerchant(input.merchantId);
    if (!merchant) throw new ServiceRefusal('not_found', `merchant ${input.merchantId} does not exist`);
    return this.deps.terminals.register(input, at, masterKey);
  }

  /** For createPosServer({ handler }). */
  readonly handler: PosHandler = (request, connection) => this.handle(request, connection);

  /** For createPosServer({ responseHeader }): a reply that asks the terminal to sign on again says so (处理要求 = 3). */
  readonly responseHeader = (requestHeader: FrameHeader, response: PosMessage): FrameHeader => {
    const code = response.fields[39];
    const action = typeof code === 'string' ? describeResponseCode(code)?.terminalAction : undefined;
    return action === 're_sign_on' ? { ...requestHeader, processingRequirement: '3' } : requestHeader;
  };

  async handle(request: PosMessage, connection: ConnectionInfo): Promise<PosMessage> {
    const responseMti = responseMtiOf(request.mti) ?? request.mti;
    const set = identifyTransaction(request);
    if (!set) return errorReply(request, responseMti, RESPONSE_CODES.invalidTransaction.code);
    if (checkFieldSet(request, set, 'request').missing.length > 0)
      return errorReply(request, responseMti, RESPONSE_CODES.formatError.code);
    const sixty = decomposeField(FIELD_60, text(request.fields[60]));
    if (!sixty.ok) return errorReply(request, responseMti, RESPONSE_CODES.formatError.code);
    const cardAcceptorId = text(request.fields[42]);
    const terminalId = text(request.fields[41]);
    // Registered ids are printable ASCII; anything else (a NUL byte would not even reach PostgreSQL) is unknown.
    if (!PRINTABLE_ID.test(cardAcceptorId) || !PRINTABLE_ID.test(terminalId))
      return errorReply(request, responseMti, RESPONSE_CODES.terminalNotRegistered.code);
    let terminal: TerminalState | undefined;
    try {
      terminal = await this.deps.terminals.find(cardAcceptorId, terminalId);
    } catch (error) {
      this.options.onError?.(error, set.transaction);
      return errorReply(request, responseMti, RESPONSE_CODES.systemMalfunction.code);
    }
    if (!terminal || terminal.status !== 'active')
      return errorReply(request, responseMti, RESPONSE_CODES.terminalNotRegistered.code);
    const exchange: Exchange = {
      request,
      connection,
      set,
      responseMti,
      terminal,
      batch: sixty.value.batchNumber ?? '',
      trace: text(request.fields[11]),
      now: this.now(),
    };
    try {
      switch (set.transaction) {
        case 'signOn':
          return await this.signOn(exchange, sixty.value.networkManagementCode ?? '');
        case 'signOff':
          return this.reply(exchange, { code: (await this.signOff(exchange)).code });
        case 'settlement':
          return this.reply(exchange, await this.settle(exchange));
        case 'batchUpload':
          return this.reply(exchange, await this.batchUpload(exchange, sixty.value.networkManagementCode ?? ''));
        default:
          return await this.financial(exchange);
      }
    } catch (error) {
      if (error instanceof ServiceRefusal) {
        // Risk control names the response code of the rule that fired.
        const ruled = error.details?.['isoResponseCode'];
        return this.reply(exchange, {
          code: typeof ruled === 'string' && /^[0-9A-Z]{2}$/.test(ruled) ? ruled : responseCodeOfRefusal(error.code),
        });
      }
      this.options.onError?.(error, set.transaction);
      return this.reply(exchange, { code: RESPONSE_CODES.systemMalfunction.code });
    }
  }

  // ---- network management ----

  private async signOn(x: Exchange, networkManagementCode: string): Promise<PosMessage> {
    const { terminal } = x;
    // A DES terminal asks for its own layout; an SM4 terminal has no 60.3 code of its own (README, SM4 variants).
    if (terminal.keyScheme !== 'sm4' && networkManagementCode !== terminal.keyScheme)
      return this.reply(x, { code: RESPONSE_CODES.formatError.code });
    const layout = layoutOf(terminal.keyScheme);
    const keys = generateWorkingKeys(layout);
    const field62 = encodeKeyDownload(layout, terminal.masterKey, keys);
    const signedOn = await this.deps.terminals.signOn(terminal, keys, x.now);
    const sixty = composeField(FIELD_60, {
      transactionTypeCode: '00',
      batchNumber: signedOn.batchNumber,
      networkManagementCode,
    });
    if (!sixty.ok) throw new Error(`assertion: field 60 of a sign-on reply composes: ${sixty.error.detail}`);
    return this.reply({ ...x, terminal: signedOn }, { code: '00', fields: { 60: sixty.value, 62: field62 } });
  }

  private async signOff(x: Exchange): Promise<Outcome> {
    await this.deps.terminals.signOff(x.terminal);
    return { code: RESPONSE_CODES.approved.code };
  }

  // ---- financial messages: MAC, batch, then the transaction ----

  private async financial(x0: Exchange): Promise<PosMessage> {
    const terminal = await this.authenticated(x0);
    if (!terminal) return this.reply(x0, { code: RESPONSE_CODES.macError.code }, { sign: false });
    let x: Exchange = { ...x0, terminal };
    if (x.batch !== terminal.batchNumber) {
      // Another gateway process may have closed the batch: read again before refusing.
      const fresh = await this.deps.terminals.find(terminal.cardAcceptorId, terminal.terminalId, { fresh: true });
      if (fresh) x = { ...x, terminal: fresh };
    }
    const batchOpen = x.batch === x.terminal.batchNumber;
    switch (x.set.transaction) {
      case 'sale':
        return this.reply(x, batchOpen ? await this.sale(x) : { code: RESPONSE_CODES.batchMismatch.code });
      case 'saleVoid':
        return this.reply(x, batchOpen ? await this.void(x) : { code: RESPONSE_CODES.batchMismatch.code });
      case 'balanceInquiry':
        return this.reply(x, batchOpen ? await this.balance(x) : { code: RESPONSE_CODES.batchMismatch.code });
      case 'reversal':
        // A reversal in a settled batch would change totals already agreed: refused; the terminal marks it 06.
        return this.reply(x, batchOpen ? await this.reverse(x) : { code: RESPONSE_CODES.invalidTransaction.code });
      default:
        return this.reply(x, { code: RESPONSE_CODES.invalidTransaction.code });
    }
  }

  /** The terminal whose MAK verifies the request as received; read again once on a mismatch (keys re-issued elsewhere). */
  private async authenticated(x: Exchange): Promise<TerminalState | undefined> {
    const verifies = (terminal: TerminalState): boolean => {
      const macKey = macKeyOf(terminal);
      return macKey !== undefined && verifyReceivedMac(x.connection.requestBody, macKey).ok;
    };
    if (verifies(x.terminal)) return x.terminal;
    const fresh = await this.deps.terminals.find(x.terminal.cardAcceptorId, x.terminal.terminalId, { fresh: true });
    return fresh && fresh.status === 'active' && verifies(fresh) ? fresh : undefined;
  }

  private async sale(x: Exchange): Promise<Outcome> {
    const amount = amountOf(x.request);
    if (!amount.ok) return { code: RESPONSE_CODES.invalidAmount.code };
    const orderId = orderIdOf(x.terminal, x.batch, x.trace);
    // The journal names the sale whatever its card turns out to be (batch totals count captured payments only), so
    // it is written while the card is looked up: two batched round trips side by side, not one after the other.
    const [card] = await Promise.all([
      this.cardholder(x),
      this.deps.journal.record(
        { ...journalKey(x, 'sale', x.trace), merchantId: x.terminal.merchantId, orderId, amount: amount.value },
        x.now,
      ),
    ]);
    if (!card.ok) return { code: card.code };
    const pin = this.pinOf(x, card.pan);
    if (!pin.ok) return { code: pin.code };
    return this.exclusive(idempotencyKeyOf(x.terminal, x.batch, x.trace), async () => {
      const payment = await this.deps.payments.pay(
        {
          merchantId: x.terminal.merchantId,
          orderId,
          walletId: card.wallet.walletId,
          amount: amount.value,
          tenders: { wallet: amount.value },
          ...(pin.value === undefined ? {} : { paymentPassword: pin.value }),
          terminalId: x.terminal.terminalId,
        },
        contextOf(x),
        x.now,
        { wallet: card.wallet },
      );
      const code = saleResponseCode(payment);
      return code === RESPONSE_CODES.approved.code
        ? { code, fields: { 38: authorizationCodeOf(idempotencyKeyOf(x.terminal, x.batch, x.trace)) } }
        : { code };
    });
  }

  /** Sale void (撤销): the original is named by 61 (its batch and trace) and 37 (its RRN); it must be in this batch. */
  private async void(x: Exchange): Promise<Outcome> {
    const original = decomposeField(FIELD_61, text(x.request.fields[61]));
    if (!original.ok) return { code: RESPONSE_CODES.formatError.code };
    const originalBatch = original.value.originalBatchNumber ?? '';
    const originalTrace = original.value.originalTraceNumber ?? '';
    if (originalBatch !== x.terminal.batchNumber) return { code: RESPONSE_CODES.invalidTransaction.code };
    const amount = amountOf(x.request);
    if (!amount.ok) return { code: RESPONSE_CODES.invalidAmount.code };
    const originalKey = idempotencyKeyOf(x.terminal, originalBatch, originalTrace);
    if (text(x.request.fields[37]) !== retrievalReferenceOf(originalKey))
      return { code: RESPONSE_CODES.originalNotFound.code };
    const orderId = orderIdOf(x.terminal, originalBatch, originalTrace);
    const first = await this.deps.journal.record(
      { ...journalKey(x, 'void', x.trace), merchantId: x.terminal.merchantId, orderId, amount: amount.value },
      x.now,
    );
    return this.exclusive(originalKey, async () => {
      const payment = await this.deps.payments.findPayment(x.terminal.merchantId, orderId);
      if (!payment) return { code: RESPONSE_CODES.originalNotFound.code };
      if (!new Money(payment.amount).eq(amount.value)) return { code: RESPONSE_CODES.invalidAmount.code };
      if (x.request.fields[2] !== undefined || x.request.fields[35] !== undefined) {
        const card = await this.cardholder(x);
        if (!card.ok || card.wallet.walletId !== payment.walletId)
          return { code: RESPONSE_CODES.originalNotFound.code };
      }
      // Reversed by another message (a reversal, another void): this void changes nothing and is refused; reversed
      // by this very void (a retransmission) it is answered as the first time.
      if (payment.status === 'reversed')
        return { code: first ? RESPONSE_CODES.invalidTransaction.code : RESPONSE_CODES.approved.code };
      if (payment.status === 'failed' || payment.status === 'authorizing')
        return { code: RESPONSE_CODES.invalidTransaction.code };
      const cancelled = await this.deps.payments.cancel(
        payment.paymentId,
        `POS void ${x.terminal.terminalId} batch ${x.batch} trace ${x.trace}`,
        contextOf(x),
        x.now,
      );
      return {
        code: cancelled.status === 'reversed' ? RESPONSE_CODES.approved.code : RESPONSE_CODES.systemMalfunction.code,
      };
    });
  }

  /**
   * Reversal (冲正, 0400): the sale with this terminal, batch and trace (3/4/11 are the original's) is cancelled. It
   * can come any number of times: `cancel` is idempotent and the key's runs are serialised, so it reverses once.
   * A reversal of a void cannot be honoured (a cancelled payment is not restored) and is refused 12.
   */
  private async reverse(x: Exchange): Promise<Outcome> {
    const processingCode = text(x.request.fields[3]);
    if (processingCode === PROCESSING.void) {
      const voided = await this.deps.journal.find(journalKey(x, 'void', x.trace));
      return { code: voided ? RESPONSE_CODES.invalidTransaction.code : RESPONSE_CODES.originalNotFound.code };
    }
    if (processingCode !== PROCESSING.sale) return { code: RESPONSE_CODES.invalidTransaction.code };
    const amount = amountOf(x.request);
    if (!amount.ok) return { code: RESPONSE_CODES.originalNotFound.code };
    const orderId = orderIdOf(x.terminal, x.batch, x.trace);
    await this.deps.journal.record(
      { ...journalKey(x, 'reversal', x.trace), merchantId: x.terminal.merchantId, orderId, amount: amount.value },
      x.now,
    );
    return this.exclusive(idempotencyKeyOf(x.terminal, x.batch, x.trace), async () => {
      const payment = await this.deps.payments.findPayment(x.terminal.merchantId, orderId);
      if (!payment || !new Money(payment.amount).eq(amount.value))
        return { code: RESPONSE_CODES.originalNotFound.code };
      if (payment.status === 'reversed' || payment.status === 'failed') return { code: RESPONSE_CODES.approved.code };
      const cancelled = await this.deps.payments.cancel(
        payment.paymentId,
        `POS reversal ${x.terminal.terminalId} batch ${x.batch} trace ${x.trace} reason ${text(x.request.fields[39]).replace(/[^0-9A-Za-z]/g, '?')}`,
        contextOf(x),
        x.now,
      );
      const done = cancelled.status === 'reversed' || cancelled.status === 'failed';
      return { code: done ? RESPONSE_CODES.approved.code : RESPONSE_CODES.systemMalfunction.code };
    });
  }

  /** Balance inquiry (310000): the PIN is required; field 54 is the main account's available balance. */
  private async balance(x: Exchange): Promise<Outcome> {
    const card = await this.cardholder(x);
    if (!card.ok) return { code: card.code };
    const pin = this.pinOf(x, card.pan);
    if (!pin.ok) return { code: pin.code };
    if (pin.value === undefined) return { code: RESPONSE_CODES.incorrectPin.code };
    await this.deps.wallets.verifyPaymentPassword(card.wallet.walletId, pin.value, x.now);
    const account = await this.deps.ledger.getAccount(card.wallet.accounts.main);
    if (!account) return { code: RESPONSE_CODES.invalidCardNumber.code };
    const available = account.posted.minus(account.pendingDebits);
    const fen = yuanToFen(available.abs());
    if (!fen.ok) throw new Error(`assertion: a wallet balance fits field 54: ${fen.error}`);
    const field54 = composeField(FIELD_54, {
      ...BALANCE_FIELD,
      balanceSign: available.isNegative() ? 'D' : 'C',
      balanceFen: fen.value,
    });
    if (!field54.ok) throw new Error(`assertion: field 54 composes: ${field54.error.detail}`);
    return { code: RESPONSE_CODES.approved.code, fields: { 54: field54.value } };
  }

  // ---- end of day ----

  /**
   * Settlement (0500): the terminal's totals (48) against the batch's captured sales; 48.5 / 48.10 answer 1 balanced
   * or 2 not (then the terminal uploads the batch). Settling the open batch closes it and opens the next.
   */
  private async settle(x: Exchange): Promise<Outcome> {
    const claimed = decomposeField(FIELD_48_SETTLEMENT, text(x.request.fields[48]));
    if (!claimed.ok) return { code: RESPONSE_CODES.formatError.code };
    const c = claimed.value;
    const ours = await this.deps.journal.batchTotals(x.terminal.cardAcceptorId, x.terminal.terminalId, x.batch);
    const fen = (amount: InstanceType<typeof Money>) => yuanToFen(amount);
    const debitFen = fen(ours.debitAmount);
    const creditFen = fen(ours.creditAmount);
    const balanced =
      debitFen.ok &&
      creditFen.ok &&
      c.domesticDebitAmountFen === debitFen.value &&
      Number(c.domesticDebitCount) === ours.debitCount &&
      c.domesticCreditAmountFen === creditFen.value &&
      Number(c.domesticCreditCount) === ours.creditCount &&
      isZeroFen(c.foreignDebitAmountFen ?? '') &&
      isZeroFen(c.foreignCreditAmountFen ?? '') &&
      Number(c.foreignDebitCount) === 0 &&
      Number(c.foreignCreditCount) === 0;
    const reconciliation = balanced ? RECONCILIATION_CODES.balanced : RECONCILIATION_CODES.unbalanced;
    const answer = composeField(FIELD_48_SETTLEMENT, {
      ...c,
      domesticReconciliationCode: reconciliation,
      foreignReconciliationCode: reconciliation,
    });
    if (!answer.ok) throw new Error(`assertion: field 48 composes again: ${answer.error.detail}`);
    if (x.batch === x.terminal.batchNumber) await this.deps.terminals.closeBatch(x.terminal, x.batch);
    return { code: RESPONSE_CODES.approved.code, fields: { 48: answer.value } };
  }

  /** Batch upload (0320, 60.3 = 201): each item is compared with the ledger and the finding kept for operators. */
  private async batchUpload(x: Exchange, networkManagementCode: string): Promise<Outcome> {
    if (networkManagementCode !== UPLOAD_ITEMS) return { code: RESPONSE_CODES.approved.code }; // 202/207: end of upload
    const items = decomposeBatchUpload(text(x.request.fields[48]));
    if (!items.ok) return { code: RESPONSE_CODES.formatError.code };
    for (const item of items.value) {
      const amount = fenToYuan(item.amountFen);
      if (!amount.ok) return { code: RESPONSE_CODES.formatError.code };
      const orderId = orderIdOf(x.terminal, x.batch, item.traceNumber);
      const payment = await this.deps.payments.findPayment(x.terminal.merchantId, orderId);
      const wallet = await this.deps.wallets.findByCardNumber(item.primaryAccountNumber.replace(/^0+/, ''));
      const finding: UploadFinding = !payment
        ? 'missing'
        : payment.status !== 'captured'
          ? 'not_captured'
          : !new Money(payment.amount).eq(amount.value)
            ? 'amount_differs'
            : wallet?.walletId !== payment.walletId
              ? 'card_differs'
              : 'matched';
      await this.deps.journal.recordUpload(
        {
          cardAcceptorId: x.terminal.cardAcceptorId,
          terminalId: x.terminal.terminalId,
          batchNumber: x.batch,
          trace: item.traceNumber,
          amount: amount.value,
        },
        finding,
        x.now,
      );
    }
    return { code: RESPONSE_CODES.approved.code };
  }

  // ---- helpers ----

  /** The wallet of the card in field 2 (or track 2): the PAN is the wallet's T6 card number. */
  private async cardholder(
    x: Exchange,
  ): Promise<{ ok: true; pan: string; wallet: WalletRecord } | { ok: false; code: string }> {
    const field2 = text(x.request.fields[2]);
    const pan = field2 !== '' ? field2 : panFromTrack2(text(x.request.fields[35]));
    const invalid = { ok: false as const, code: RESPONSE_CODES.invalidCardNumber.code };
    if (pan === undefined || pan === '') return invalid;
    const wallet = await this.deps.wallets.findByCardNumber(pan);
    return wallet && wallet.status === 'open' ? { ok: true, pan, wallet } : invalid;
  }

  /** The PIN from field 52, if any: decrypted under the PIK and decoded with the PAN (format 0). */
  private pinOf(x: Exchange, pan: string): { ok: true; value: string | undefined } | { ok: false; code: string } {
    const block = x.request.fields[52];
    if (block === undefined) return { ok: true, value: undefined };
    const pinFormatError = { ok: false as const, code: RESPONSE_CODES.pinFormatError.code };
    const keys = x.terminal.workingKeys;
    // No SM4 PIN block is defined (README: SM4 variants), so an SM4 terminal cannot send one.
    if (!Buffer.isBuffer(block) || keys === undefined || x.terminal.keyScheme === 'sm4') return pinFormatError;
    const security = x.request.fields[53];
    if (security !== undefined) {
      const parts = decomposeField(FIELD_53, text(security));
      if (!parts.ok || parts.value.pinFormat !== PIN_FORMAT_WITH_PAN) return pinFormatError;
    }
    const pin = recoverPin(keys.pik, block, pan);
    return pin.ok ? { ok: true, value: pin.value } : pinFormatError;
  }

  /** Runs `work` after every earlier run with the same key has finished. */
  private async exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.exclusiveRuns.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.catch(() => undefined);
    this.exclusiveRuns.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.exclusiveRuns.get(key) === settled) this.exclusiveRuns.delete(key);
    }
  }

  /** The reply: echoed fields its set allows, host time, acquirer, RRN, code, extras; our MAC when the set has 64. */
  private reply(x: Exchange, outcome: Outcome, options: { sign: boolean } = { sign: true }): PosMessage {
    const { set, request, now, terminal } = x;
    const allowed = new Set([...set.response.mandatory, ...set.response.conditional]);
    const fields: Record<number, FieldValue> = {};
    for (const n of ECHOED) {
      const value = request.fields[n];
      if (allowed.has(n) && value !== undefined) fields[n] = value;
    }
    const local = chinaStandardTime(now);
    const business = businessDateOf(now, this.options.cutoffHourLocal ?? 0);
    const host: Record<number, string> = {
      12: local.slice(11, 19).replace(/:/g, ''),
      13: local.slice(5, 10).replace('-', ''),
      15: business.slice(5, 10).replace('-', ''),
      32: this.options.acquirerId,
      37: retrievalReferenceOf(idempotencyKeyOf(terminal, x.batch, x.trace)),
    };
    for (const [n, value] of Object.entries(host)) if (allowed.has(Number(n))) fields[Number(n)] = value;
    fields[39] = outcome.code;
    Object.assign(fields, outcome.fields ?? {});
    const message: PosMessage = { mti: x.responseMti, fields };
    const macKey = macKeyOf(terminal);
    if (!options.sign || !set.response.mandatory.includes(64) || macKey === undefined) return message;
    const signed = signMessage(message, macKey, CUP_POS_SPEC);
    if (!signed.ok) throw new Error(`assertion: a reply can be signed: ${signed.error.detail}`);
    return signed.value;
  }
}

// ---- pure helpers ----

function text(value: FieldValue | undefined): string {
  return typeof value === 'string' ? value : '';
}

function amountOf(request: PosMessage): { ok: true; value: string } | { ok: false } {
  const fen = text(request.fields[4]);
  if (isZeroFen(fen)) return { ok: false };
  const yuan = fenToYuan(fen);
  return yuan.ok ? { ok: true, value: yuan.value } : { ok: false };
}

function macKeyOf(terminal: TerminalState): MacKey | undefined {
  const keys = terminal.workingKeys;
  if (!keys) return undefined;
  return { scheme: 'cup-ecb', algorithm: layoutOf(terminal.keyScheme).algorithm, key: keys.mak };
}

/** The sale's order at its merchant: terminal, batch and trace. */
export function orderIdOf(terminal: Pick<TerminalState, 'terminalId'>, batch: string, trace: string): string {
  return `${terminal.terminalId}-${batch}-${trace}`;
}

/** The idempotency key of a financial message: 42 + 41 + batch + trace. */
export function idempotencyKeyOf(
  terminal: Pick<TerminalState, 'cardAcceptorId' | 'terminalId'>,
  batch: string,
  trace: string,
): string {
  return `${terminal.cardAcceptorId}|${terminal.terminalId}|${batch}|${trace}`;
}

function digitsOf(key: string, label: string, digits: number): string {
  const hash = sha256(`${label}|${key}`);
  return (hash.readBigUInt64BE(0) % 10n ** BigInt(digits)).toString().padStart(digits, '0');
}

/** Field 37 (an12): a function of the idempotency key, so a retransmission gets the same RRN and a void can name it. */
export function retrievalReferenceOf(idempotencyKey: string): string {
  return digitsOf(idempotencyKey, 'rrn', 12);
}

/** Field 38 (an6) of an approved sale, a function of its key. */
export function authorizationCodeOf(idempotencyKey: string): string {
  return digitsOf(idempotencyKey, 'auth', 6);
}

function saleResponseCode(payment: PaymentView): string {
  switch (payment.status) {
    case 'captured':
    case 'capturing': // past the commit point: the captures finish (resumePayments), the money moves
      return RESPONSE_CODES.approved.code;
    case 'failed':
      return responseCodeOfRefusal(payment.failure ?? '');
    case 'reversed':
    case 'reversing': // a retransmitted sale that was since reversed must not read as approved
      return RESPONSE_CODES.invalidTransaction.code;
    default:
      return RESPONSE_CODES.systemMalfunction.code;
  }
}

function journalKey(x: Exchange, kind: 'sale' | 'void' | 'reversal', trace: string) {
  return {
    cardAcceptorId: x.terminal.cardAcceptorId,
    terminalId: x.terminal.terminalId,
    batchNumber: x.batch,
    trace,
    kind,
  };
}

function contextOf(x: Exchange): CommandContext {
  return {
    actor: `pos:${x.terminal.cardAcceptorId}:${x.terminal.terminalId}`,
    channel: 'pos',
    source: x.connection.remoteAddress,
    requestId: idempotencyKeyOf(x.terminal, x.batch, x.trace),
  };
}

/** `YYYY-MM-DDTHH:MM:SS` in China Standard Time (UTC+8), for fields 12 and 13. */
function chinaStandardTime(now: Date): string {
  return new Date(now.getTime() + CHINA_STANDARD_TIME_OFFSET_HOURS * 3_600_000).toISOString();
}
