import { createHmac, randomInt } from 'node:crypto';
import type { AccountKind, Amount, CommandContext, CustomerClass, Ledger } from '../core-ledger';
import {
  atScale,
  codedArea,
  formatAmount,
  luhnCheckDigit,
  makeAccountId,
  makeCardNumber,
  Money,
  parseAmount,
  uuidV5,
} from '../core-ledger';
import { hashPassword, mask, verifyPassword } from '../security';

const maskCard = (cardNumber: string): string => mask('bank_card', cardNumber);
import type { PersonalDataCipher, ServiceDatabase, SqlQueryable } from './database';
import { executeOrRefuse, lengthUnseen, preparedSql, ServiceRefusal } from './database';
import type { Outbox } from './outbox';
import { DEFAULT_GROUP_COMMIT_LIMITS, GroupCommit } from './group-commit';

/**
 * E-wallets (C7, T2–T7): a customer's five sub-accounts with their T7 ids, the T6 card number, the T5 account number
 * (the lookup key of partners and POS), the 6-digit payment password and the password-free limits. Money lives in the
 * ledger; this table is the directory and the payment-password state, with personal data sealed at rest.
 */

export type WalletPurpose = 'general' | 'earmarked';

export const SUB_ACCOUNTS: readonly {
  readonly role: SubAccountRole;
  readonly kind: AccountKind;
  readonly typeDigit: '0' | '1' | '2' | '3' | '4';
}[] = [
  { role: 'main', kind: 'user_main', typeDigit: '0' },
  { role: 'online', kind: 'user_online', typeDigit: '1' },
  { role: 'offline', kind: 'user_offline', typeDigit: '2' },
  { role: 'voucher', kind: 'user_voucher', typeDigit: '3' },
  { role: 'points', kind: 'user_points', typeDigit: '4' },
];
export type SubAccountRole = 'main' | 'online' | 'offline' | 'voucher' | 'points';

export const WALLET_POLICY = {
  /** Wrong payment passwords in a row before the wallet's payments lock (#8). */
  maxPasswordFailures: 5,
  passwordLockMinutes: 24 * 60,
  /** Password-free (免密) limits when the customer sets none: per payment and per business day, CNY. */
  defaultPasswordFreePerPayment: '200.00',
  defaultPasswordFreePerDay: '1000.00',
  maxGroupRegistration: 1_000,
} as const;

export interface WalletRecord {
  readonly walletId: string;
  readonly accountNumber: string;
  readonly name: string;
  readonly cardNumber: string;
  /** The card number's blind index (cardNumberIndex), as stored: risk control's card identity. */
  readonly cardNumberIndex: string;
  readonly customerClass: CustomerClass;
  readonly area: string;
  readonly accounts: Readonly<Record<SubAccountRole, string>>;
  readonly purpose: WalletPurpose;
  readonly allowedCategories: readonly string[];
  readonly passwordSet: boolean;
  readonly passwordFreePerPayment: string;
  readonly passwordFreePerDay: string;
  readonly status: 'opening' | 'open' | 'closed';
  readonly openedAt: string;
}

export interface OpenWalletInput {
  readonly accountNumber: string;
  readonly name: string;
  readonly areaCode: string;
  readonly customerClass: CustomerClass;
  readonly purpose: WalletPurpose;
  readonly allowedCategories?: readonly string[];
}

export const WALLETS_SQL = `
CREATE TABLE IF NOT EXISTS cp_wallets (
  wallet_id text PRIMARY KEY,
  account_number_index text NOT NULL UNIQUE,
  card_number_index text NOT NULL UNIQUE,
  account_number text NOT NULL,
  name text NOT NULL,
  card_number text NOT NULL,
  customer_class text NOT NULL,
  area text NOT NULL,
  accounts jsonb NOT NULL,
  points_account text NOT NULL UNIQUE,
  purpose text NOT NULL CHECK (purpose IN ('general', 'earmarked')),
  allowed_categories text[] NOT NULL,
  payment_password_hash text,
  password_failures integer NOT NULL DEFAULT 0,
  password_locked_until timestamptz,
  password_free_per_payment numeric NOT NULL,
  password_free_per_day numeric NOT NULL,
  status text NOT NULL,
  opened_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS cp_bank_cards (
  wallet_id text NOT NULL REFERENCES cp_wallets (wallet_id),
  card_id text NOT NULL,
  bank_code text NOT NULL,
  card_number text NOT NULL,
  card_number_index text NOT NULL,
  masked text NOT NULL,
  status text NOT NULL CHECK (status IN ('bound', 'unbound')),
  bound_at timestamptz NOT NULL,
  unbound_at timestamptz,
  PRIMARY KEY (wallet_id, card_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS cp_bank_cards_bound ON cp_bank_cards (wallet_id, card_number_index) WHERE status = 'bound';
CREATE TABLE IF NOT EXISTS cp_code_sequences (scope text PRIMARY KEY, last_value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS cp_password_free_usage (
  wallet_id text NOT NULL,
  business_date date NOT NULL,
  used numeric NOT NULL,
  PRIMARY KEY (wallet_id, business_date)
);
`;

interface WalletRow {
  card_number_index: string;
  wallet_id: string;
  account_number: string;
  name: string;
  card_number: string;
  customer_class: string;
  area: string;
  accounts: Record<SubAccountRole, string>;
  purpose: WalletPurpose;
  allowed_categories: string[];
  payment_password_hash: string | null;
  password_failures: number;
  password_locked_until: Date | string | null;
  password_free_per_payment: string;
  password_free_per_day: string;
  status: WalletRecord['status'];
  opened_at: Date | string;
}

/** WalletRow's columns, named: a prepared `SELECT *` fails once a column is added to the table under it. */
const WALLET_COLUMNS = `card_number_index, wallet_id, account_number, name, card_number, customer_class, area, accounts,
  purpose, allowed_categories, payment_password_hash, password_failures, password_locked_until,
  password_free_per_payment, password_free_per_day, status, opened_at`;

export class WalletService {
  constructor(
    private readonly database: ServiceDatabase,
    private readonly ledger: Ledger,
    private readonly cipher: PersonalDataCipher,
    /** Key of the blind index on account numbers (HMAC-SM3): lookups without keeping the number in clear. */
    private readonly indexKey: Buffer,
  ) {}

  private outbox: Outbox | undefined;
  /** Reads take no locks: two batches may be at the database at once. */
  private readonly cardLookups = new GroupCommit<string, WalletRecord | undefined>(
    (indexes) => this.findBy('card_number_index', indexes),
    { ...DEFAULT_GROUP_COMMIT_LIMITS, maxInFlight: 2 },
  );
  /** Account and card numbers: openings waiting at the same time take theirs in one statement. */
  private readonly codeNumbers = new GroupCommit<readonly string[], Map<string, number>>((requests) =>
    takeCodeNumbers(this.database, requests),
  );
  /** Wallets by id, batched alike (every payment reads its payer's). */
  private readonly walletLookups = new GroupCommit<string, WalletRecord | undefined>(
    (walletIds) => this.findBy('wallet_id', walletIds),
    { ...DEFAULT_GROUP_COMMIT_LIMITS, maxInFlight: 2 },
  );

  async install(): Promise<void> {
    await this.database.exec(WALLETS_SQL);
  }

  /** The blind index of an account number: equal numbers, equal index; the number is not recoverable from it. */
  accountNumberIndex(accountNumber: string): string {
    return createHmac('sm3', this.indexKey).update(accountNumber, 'utf8').digest('hex');
  }

  /** The next number of each per-area counter named (`account|<area>`, `card|<area>`): never twice, maybe with gaps. */
  takeCodeNumbers(scopes: readonly string[]): Promise<Map<string, number>> {
    return this.codeNumbers.submit(scopes);
  }

  /**
   * Opens a wallet and its five sub-accounts. Idempotent per account number: opening it again with the same details
   * returns the wallet (and finishes opening its accounts if a crash stopped it), with other details is refused.
   */
  async openWallet(input: OpenWalletInput, context: CommandContext, at: Date): Promise<WalletRecord> {
    checkOpenInput(input);
    const index = this.accountNumberIndex(input.accountNumber);
    const existing = await this.byIndex(this.database, index);
    let wallet: WalletRecord;
    if (existing) {
      if (
        existing.name !== input.name ||
        existing.purpose !== input.purpose ||
        existing.area !== codedArea(input.areaCode)
      )
        throw new ServiceRefusal('wallet_exists', 'a wallet with this account number exists with other details');
      wallet = existing;
    } else {
      const area = codedArea(input.areaCode);
      const numbers = await this.takeCodeNumbers([`account|${area}`, `card|${area}`]);
      wallet = await this.database.transaction(async (tx) => {
        const again = await this.byIndex(tx, index, true);
        if (again) return again;
        const accountSequence = numbers.get(`account|${area}`)!;
        const cardSequence = numbers.get(`card|${area}`)!;
        const accounts = Object.fromEntries(
          SUB_ACCOUNTS.map((s) => [
            s.role,
            makeAccountId({
              customerClass: input.customerClass,
              accountType: s.typeDigit,
              areaCode: input.areaCode,
              sequence: accountSequence,
            }),
          ]),
        ) as Record<SubAccountRole, string>;
        const cardNumber = makeCardNumber({ areaCode: input.areaCode, sequence: cardSequence });
        await tx.query(
          `INSERT INTO cp_wallets (wallet_id, account_number_index, card_number_index, account_number, name, card_number,
             customer_class, area, accounts, points_account, purpose, allowed_categories, password_free_per_payment,
             password_free_per_day, status, opened_at)
           VALUES ($1, $2, $15, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'opening', $14)`,
          [
            accounts.main,
            index,
            this.cipher.seal('accountNumber', input.accountNumber),
            this.cipher.seal('name', input.name),
            this.cipher.seal('cardNumber', cardNumber),
            input.customerClass,
            area,
            JSON.stringify(accounts),
            accounts.points,
            input.purpose,
            [...(input.allowedCategories ?? [])].sort(),
            WALLET_POLICY.defaultPasswordFreePerPayment,
            WALLET_POLICY.defaultPasswordFreePerDay,
            at.toISOString(),
            this.cardNumberIndex(cardNumber),
          ],
        );
        if (this.outbox) await this.sendInitialPassword(tx, accounts.main, at);
        return (await this.byIndex(tx, index))!;
      });
    }
    if (wallet.status === 'opening') wallet = await this.finishOpening(wallet, context, at);
    return wallet;
  }

  private async finishOpening(wallet: WalletRecord, context: CommandContext, at: Date): Promise<WalletRecord> {
    for (const sub of SUB_ACCOUNTS) {
      await executeOrRefuse(
        this.ledger,
        {
          type: 'OpenAccount',
          accountId: wallet.accounts[sub.role],
          kind: sub.kind,
          ownerId: wallet.walletId,
          accountNumber: wallet.accountNumber,
          ...(sub.role === 'main' ? { cardNumber: wallet.cardNumber } : {}),
          at: at.toISOString(),
        },
        context,
      );
    }
    await this.database.query(`UPDATE cp_wallets SET status = 'open' WHERE wallet_id = $1 AND status = 'opening'`, [
      wallet.walletId,
    ]);
    return { ...wallet, status: 'open' };
  }

  /** The blind index of a T6 card number (the PAN a POS terminal reads), under the same key. */
  cardNumberIndex(cardNumber: string): string {
    return createHmac('sm3', this.indexKey).update(`card|${cardNumber}`, 'utf8').digest('hex');
  }

  /** The wallet a card number names (the POS door's lookup, batched with concurrent ones: one query for all). */
  findByCardNumber(cardNumber: string): Promise<WalletRecord | undefined> {
    return this.cardLookups.submit(this.cardNumberIndex(cardNumber));
  }

  /** Wallets by a unique key, one answer per key asked (a key asked twice is read once). */
  private async findBy(
    column: 'wallet_id' | 'card_number_index',
    keys: readonly string[],
  ): Promise<(WalletRecord | undefined)[]> {
    // Every payment reads its wallet here: planned once per connection, a probe by key per wallet (both are unique).
    const rows = await this.database.query<WalletRow>(
      preparedSql(
        `cp_wallets_by_${column}`,
        `SELECT w.* FROM unnest(${lengthUnseen('$1::text[]')}) AS k(key)
           CROSS JOIN LATERAL (SELECT ${WALLET_COLUMNS} FROM cp_wallets WHERE ${column} = k.key LIMIT 1) w`,
      ),
      [[...new Set(keys)]],
    );
    const byKey = new Map(rows.map((row) => [row[column], row]));
    return keys.map((key) => {
      const row = byKey.get(key);
      return row ? this.recordOf(row) : undefined;
    });
  }

  /** A new T6 card number for a wallet whose card was lost (补卡): the ledger's ReplaceCard follows with it. */
  async replaceCard(wallet: WalletRecord): Promise<string> {
    const scope = `card|${wallet.area}`;
    const sequence = (await this.takeCodeNumbers([scope])).get(scope)!;
    return this.database.transaction(async (tx) => {
      const cardNumber = makeCardNumber({ areaCode: areaCodeOf(wallet.area), sequence });
      await tx.query('UPDATE cp_wallets SET card_number = $2, card_number_index = $3 WHERE wallet_id = $1', [
        wallet.walletId,
        this.cipher.seal('cardNumber', cardNumber),
        this.cardNumberIndex(cardNumber),
      ]);
      return cardNumber;
    });
  }

  async markClosed(walletId: string): Promise<void> {
    await this.database.query(`UPDATE cp_wallets SET status = 'closed' WHERE wallet_id = $1`, [walletId]);
  }

  /** With an outbox, a new wallet gets a random initial payment password, delivered by SMS only (T4). */
  attachOutbox(outbox: Outbox): void {
    this.outbox = outbox;
  }

  private async sendInitialPassword(tx: SqlQueryable, walletId: string, at: Date): Promise<void> {
    const password = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await tx.query('UPDATE cp_wallets SET payment_password_hash = $2 WHERE wallet_id = $1', [
      walletId,
      await hashPassword(password),
    ]);
    await this.outbox!.enqueue(
      tx,
      {
        messageId: `wallet.initial-password:${walletId}`,
        receiver: `sms:${walletId}`,
        kind: 'wallet.opened',
        payload: { template: 'initial_password' },
        secret: password,
      },
      at,
    );
  }

  async findByAccountNumber(accountNumber: string): Promise<WalletRecord | undefined> {
    return this.byIndex(this.database, this.accountNumberIndex(accountNumber));
  }

  /** Points accounts of many account numbers at once (partner batches): account number → points account id. */
  async pointsAccountsOf(accountNumbers: readonly string[]): Promise<Map<string, string>> {
    const byIndex = new Map(accountNumbers.map((n) => [this.accountNumberIndex(n), n]));
    const rows = await this.database.query<{ account_number_index: string; points_account: string }>(
      `SELECT account_number_index, points_account FROM cp_wallets
        WHERE account_number_index = ANY($1::text[]) AND status = 'open'`,
      [[...byIndex.keys()]],
    );
    return new Map(rows.map((r) => [byIndex.get(r.account_number_index)!, r.points_account]));
  }

  /** The account number of the wallet a points account belongs to (data exchange details). */
  async accountNumberOfPoints(pointsAccountId: string): Promise<string> {
    const rows = await this.database.query<WalletRow>('SELECT * FROM cp_wallets WHERE points_account = $1', [
      pointsAccountId,
    ]);
    if (!rows[0]) throw new Error(`assertion: points account ${pointsAccountId} belongs to no wallet`);
    return this.recordOf(rows[0]).accountNumber;
  }

  /**
   * A wallet as it stands, read with the lookups of other calls waiting at the same time: one query for all. The
   * batch is read after this call was made, so a caller sees its own writes.
   */
  getWallet(walletId: string): Promise<WalletRecord | undefined> {
    return this.walletLookups.submit(walletId);
  }

  /** Sets or changes the 6-digit payment password (T4); a new password clears failures and the lock. */
  async setPaymentPassword(walletId: string, password: string): Promise<void> {
    if (!/^\d{6}$/.test(password)) throw new ServiceRefusal('validation_failed', 'a payment password is 6 digits (T4)');
    const hash = await hashPassword(password);
    const rows = await this.database.query<{ wallet_id: string }>(
      `UPDATE cp_wallets SET payment_password_hash = $2, password_failures = 0, password_locked_until = NULL
        WHERE wallet_id = $1 AND status = 'open' RETURNING wallet_id`,
      [walletId, hash],
    );
    if (rows.length === 0) throw new ServiceRefusal('not_found', `wallet ${walletId} does not exist or is not open`);
  }

  /**
   * Checks a payment password. Failures are counted under the wallet's row lock, so concurrent wrong guesses cannot
   * slip past the limit; the fifth failure locks payments for {@link WALLET_POLICY.passwordLockMinutes}.
   */
  async verifyPaymentPassword(walletId: string, password: string, now: Date): Promise<void> {
    const row = (await this.database.query<WalletRow>('SELECT * FROM cp_wallets WHERE wallet_id = $1', [walletId]))[0];
    if (!row) throw new ServiceRefusal('not_found', `wallet ${walletId} does not exist`);
    if (row.payment_password_hash === null)
      throw new ServiceRefusal('payment_password_not_set', 'set a payment password first');
    if (isLocked(row, now)) throw lockedRefusal(row);
    const matches = /^\d{6}$/.test(password) && (await verifyPassword(password, row.payment_password_hash));
    // The count is committed before the answer: a refusal thrown inside the transaction would roll it back.
    const outcome = await this.database.transaction(async (tx): Promise<'ok' | 'wrong' | 'locked'> => {
      const current = (
        await tx.query<WalletRow>('SELECT * FROM cp_wallets WHERE wallet_id = $1 FOR UPDATE', [walletId])
      )[0]!;
      if (isLocked(current, now)) return 'locked';
      if (matches) {
        await tx.query('UPDATE cp_wallets SET password_failures = 0 WHERE wallet_id = $1', [walletId]);
        return 'ok';
      }
      const failures = current.password_failures + 1;
      const locks = failures >= WALLET_POLICY.maxPasswordFailures;
      await tx.query('UPDATE cp_wallets SET password_failures = $2, password_locked_until = $3 WHERE wallet_id = $1', [
        walletId,
        locks ? 0 : failures,
        locks ? new Date(now.getTime() + WALLET_POLICY.passwordLockMinutes * 60_000).toISOString() : null,
      ]);
      return locks ? 'locked' : 'wrong';
    });
    if (outcome === 'locked')
      throw new ServiceRefusal('payment_password_locked', 'too many wrong payment passwords: payments are locked');
    if (!matches) throw new ServiceRefusal('payment_password_wrong', 'wrong payment password');
  }

  /**
   * The per-payment password-free (免密) limit, checked before anything is reserved; the daily limit is reserved in the
   * payment's first statement (`cp_payment_begin`, services/payments.ts): one conditional upsert, so concurrent
   * payments never overshoot. A payment that then fails gives its reservation back with {@link releasePasswordFree}.
   */
  checkPasswordFreePerPayment(wallet: WalletRecord, amount: Amount): void {
    if (amount.gt(wallet.passwordFreePerPayment))
      throw new ServiceRefusal(
        'password_free_limit_exceeded',
        `a password-free payment is at most ${wallet.passwordFreePerPayment} CNY`,
      );
  }

  passwordFreeDailyRefusal(wallet: WalletRecord): ServiceRefusal {
    return new ServiceRefusal(
      'password_free_limit_exceeded',
      `password-free payments are at most ${wallet.passwordFreePerDay} CNY a day`,
    );
  }

  async releasePasswordFree(walletId: string, amount: Amount, businessDate: string): Promise<void> {
    await this.database.query(
      `UPDATE cp_password_free_usage SET used = used - $3::numeric WHERE wallet_id = $1 AND business_date = $2`,
      [walletId, businessDate, formatAmount('CNY', amount)],
    );
  }

  /**
   * Binds a bank card (C7) for top-ups and pay-outs: kept sealed, answered masked (App. B: first 6, last 4). The same
   * card bound twice to one wallet is the same binding.
   */
  async bindBankCard(
    walletId: string,
    input: { bankCode: string; cardNumber: string },
    at: Date,
  ): Promise<BankCardView> {
    if (!/^\d{12,19}$/.test(input.cardNumber) || !luhnValid(input.cardNumber))
      throw new ServiceRefusal(
        'validation_failed',
        'a bank card number has 12..19 digits and a valid Luhn check digit',
      );
    if (!/^[A-Z0-9]{2,12}$/.test(input.bankCode))
      throw new ServiceRefusal('validation_failed', 'bank code is 2..12 capital letters or digits');
    const wallet = await this.getWallet(walletId);
    if (!wallet || wallet.status !== 'open')
      throw new ServiceRefusal('wallet_not_open', `wallet ${walletId} is not open`);
    const index = createHmac('sm3', this.indexKey).update(`bank-card|${input.cardNumber}`, 'utf8').digest('hex');
    const cardId = index.slice(0, 16);
    const masked = maskCard(input.cardNumber);
    await this.database.query(
      `INSERT INTO cp_bank_cards (wallet_id, card_id, bank_code, card_number, card_number_index, masked, status, bound_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'bound', $7)
       ON CONFLICT (wallet_id, card_id) DO UPDATE SET status = 'bound', unbound_at = NULL, bound_at = EXCLUDED.bound_at
         WHERE cp_bank_cards.status = 'unbound'`,
      [
        walletId,
        cardId,
        input.bankCode,
        this.cipher.seal('bankCard', input.cardNumber),
        index,
        masked,
        at.toISOString(),
      ],
    );
    return (await this.bankCards(walletId)).find((c) => c.cardId === cardId)!;
  }

  async unbindBankCard(walletId: string, cardId: string, at: Date): Promise<BankCardView> {
    const rows = await this.database.query<{ card_id: string }>(
      `UPDATE cp_bank_cards SET status = 'unbound', unbound_at = coalesce(unbound_at, $3)
        WHERE wallet_id = $1 AND card_id = $2 RETURNING card_id`,
      [walletId, cardId, at.toISOString()],
    );
    if (rows.length === 0) throw new ServiceRefusal('not_found', `card ${cardId} is not bound to wallet ${walletId}`);
    return (await this.bankCards(walletId)).find((c) => c.cardId === cardId)!;
  }

  async bankCards(walletId: string): Promise<BankCardView[]> {
    const rows = await this.database.query<{
      card_id: string;
      bank_code: string;
      masked: string;
      status: 'bound' | 'unbound';
    }>('SELECT card_id, bank_code, masked, status FROM cp_bank_cards WHERE wallet_id = $1 ORDER BY bound_at, card_id', [
      walletId,
    ]);
    return rows.map((r) => ({ cardId: r.card_id, bankCode: r.bank_code, cardNumber: r.masked, status: r.status }));
  }

  /**
   * Closes a wallet (C7): the cash sub-accounts are paid out to a bound bank card first (a `withdrawal` through the
   * bank channel), coupons go back to marketing and credits to the expiry account; then every sub-account is closed.
   * Refused while anything is held. Idempotent: each step has a deterministic transfer id.
   */
  async closeWallet(walletId: string, cardId: string, context: CommandContext, at: Date): Promise<{ paidOut: string }> {
    const wallet = await this.getWallet(walletId);
    if (!wallet) throw new ServiceRefusal('not_found', `wallet ${walletId} does not exist`);
    if (wallet.status === 'closed') return { paidOut: '0.00' };
    const card = (await this.bankCards(walletId)).find((c) => c.cardId === cardId && c.status === 'bound');
    if (!card) throw new ServiceRefusal('not_found', `card ${cardId} is not bound to wallet ${walletId}`);
    let paidOut = new Money(0);
    const businessDate = at.toISOString().slice(0, 10);
    for (const sub of SUB_ACCOUNTS) {
      const accountId = wallet.accounts[sub.role];
      const state = await this.ledger.getAccount(accountId);
      if (!state || state.status === 'closed') continue;
      if (!state.pendingDebits.isZero() || !state.pendingCredits.isZero())
        throw new ServiceRefusal('balance_not_zero', `sub-account ${accountId} has holds; close it when they end`);
      if (state.posted.gt(0)) {
        const sink = CLOSING_SINKS[sub.role];
        const amount = formatAmount(state.asset, state.posted);
        await executeOrRefuse(
          this.ledger,
          {
            type: 'PostTransfer',
            transferId: uuidV5(`wallet-close|${accountId}|${state.revision}`),
            idempotencyKey: `wallet-close:${accountId}:${state.revision}`,
            transferType: sink.transferType,
            postings: [
              { accountId, direction: 'debit', amount },
              { accountId: sink.accountId, direction: 'credit', amount },
            ],
            reason: `wallet closed${sink.transferType === 'withdrawal' ? `; paid out to ${card.cardNumber}` : ''}`,
            reference: cardId,
            businessDate,
            at: at.toISOString(),
          },
          context,
        );
        if (sink.transferType === 'withdrawal') paidOut = paidOut.plus(state.posted);
      }
      await executeOrRefuse(
        this.ledger,
        { type: 'CloseAccount', accountId, reason: 'wallet closed', at: at.toISOString() },
        context,
      );
    }
    await this.database.query(`UPDATE cp_wallets SET status = 'closed' WHERE wallet_id = $1`, [walletId]);
    return { paidOut: formatAmount('CNY', paidOut) };
  }

  /** Group customers (T2) registered in one batch: each wallet opened on its own, each answered. */
  async registerGroup(
    inputs: readonly OpenWalletInput[],
    context: CommandContext,
    at: Date,
  ): Promise<({ status: 'opened'; walletId: string } | { status: 'refused'; code: string; message: string })[]> {
    if (inputs.length === 0 || inputs.length > WALLET_POLICY.maxGroupRegistration)
      throw new ServiceRefusal('validation_failed', `a group has 1..${WALLET_POLICY.maxGroupRegistration} customers`);
    const results = [];
    for (const input of inputs) {
      try {
        const wallet = await this.openWallet(input, context, at);
        results.push({ status: 'opened' as const, walletId: wallet.walletId });
      } catch (error) {
        if (!(error instanceof ServiceRefusal)) throw error;
        results.push({ status: 'refused' as const, code: error.code, message: error.message });
      }
    }
    return results;
  }

  private async byIndex(db: SqlQueryable, index: string, forUpdate = false): Promise<WalletRecord | undefined> {
    const rows = await db.query<WalletRow>(
      `SELECT * FROM cp_wallets WHERE account_number_index = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [index],
    );
    return rows[0] ? this.recordOf(rows[0]) : undefined;
  }

  private recordOf(row: WalletRow): WalletRecord {
    return {
      walletId: row.wallet_id,
      accountNumber: this.cipher.open('accountNumber', row.account_number),
      name: this.cipher.open('name', row.name),
      cardNumber: this.cipher.open('cardNumber', row.card_number),
      cardNumberIndex: row.card_number_index,
      customerClass: row.customer_class as CustomerClass,
      area: row.area,
      accounts: row.accounts,
      purpose: row.purpose,
      allowedCategories: row.allowed_categories,
      passwordSet: row.payment_password_hash !== null,
      passwordFreePerPayment: atScale('CNY', row.password_free_per_payment),
      passwordFreePerDay: atScale('CNY', row.password_free_per_day),
      status: row.status,
      openedAt: new Date(row.opened_at).toISOString(),
    };
  }
}

export interface BankCardView {
  readonly cardId: string;
  readonly bankCode: string;
  /** Always masked (App. B). */
  readonly cardNumber: string;
  readonly status: 'bound' | 'unbound';
}

/** Where a closing wallet's balances go: cash out through the bank channel, gifts back to where they came from. */
const CLOSING_SINKS: Readonly<
  Record<
    SubAccountRole,
    { readonly accountId: string; readonly transferType: 'withdrawal' | 'internal' | 'credit_expiry' }
  >
> = {
  main: { accountId: 'PLATFORM-BANK-CLEARING-CNY', transferType: 'withdrawal' },
  online: { accountId: 'PLATFORM-BANK-CLEARING-CNY', transferType: 'withdrawal' },
  offline: { accountId: 'PLATFORM-BANK-CLEARING-CNY', transferType: 'withdrawal' },
  voucher: { accountId: 'PLATFORM-MARKETING-CNY', transferType: 'internal' },
  points: { accountId: 'PLATFORM-CREDIT-EXPIRY-CCR', transferType: 'credit_expiry' },
};

function luhnValid(digits: string): boolean {
  return luhnCheckDigit(digits.slice(0, -1)) === Number(digits.slice(-1));
}

function checkOpenInput(input: OpenWalletInput): void {
  if (!/^\d{11,12}$/.test(input.accountNumber))
    throw new ServiceRefusal('validation_failed', 'account number must be 11 or 12 digits (T5)');
  if (!/^0[1-9]\d{1,2}$/.test(input.areaCode))
    throw new ServiceRefusal('validation_failed', 'area code is 0 and 2 or 3 digits (e.g. 010, 0794)');
  if (input.name.trim().length === 0 || input.name.length > 64)
    throw new ServiceRefusal('validation_failed', 'name has 1..64 characters');
  if (input.purpose === 'earmarked' && (input.allowedCategories ?? []).length === 0)
    throw new ServiceRefusal(
      'validation_failed',
      'an earmarked (专款专用) wallet names the merchant categories it may pay',
    );
  const amount = parseAmount('CNY', WALLET_POLICY.defaultPasswordFreePerPayment, { positive: true });
  if (!amount.ok) throw new Error('assertion: default password-free limit is a CNY amount');
}

/** The area code (with its leading 0) of a coded 3-digit area: 794 → 0794, 010 → 010. */
function areaCodeOf(area: string): string {
  return area.startsWith('0') ? area : `0${area}`;
}

/**
 * Numbers of the per-area counters (`account|<area>`, `card|<area>`) for several callers in one statement that commits
 * on its own, each a number of every scope it names: a scope's counter moves once by as many as asked, and its block
 * goes to the callers in order. A number is never given twice; one whose holder is not opened after all stays unused
 * (gaps, never repeats). The rows are locked for this statement only: taken inside an opening's transaction, they
 * were held to its commit, and openings in one area queued on them (~30–56 ms a number under load).
 */
async function takeCodeNumbers(
  database: ServiceDatabase,
  requests: readonly (readonly string[])[],
): Promise<Map<string, number>[]> {
  const wanted = requests.map((scopes) => [...new Set(scopes)]);
  const counts = new Map<string, number>();
  for (const scopes of wanted) for (const scope of scopes) counts.set(scope, (counts.get(scope) ?? 0) + 1);
  // Sorted and distinct: concurrent statements lock the rows in one order, and no row is updated twice.
  const distinct = [...counts.keys()].sort();
  const rows = await database.query<{ scope: string; last_value: string }>(
    `INSERT INTO cp_code_sequences AS s (scope, last_value)
     SELECT scope, n FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(scope, n, o) ORDER BY o
     ON CONFLICT (scope) DO UPDATE SET last_value = s.last_value + excluded.last_value
     RETURNING scope, last_value`,
    [distinct, distinct.map((scope) => counts.get(scope)!)],
  );
  if (rows.length !== distinct.length) throw new Error('assertion: a number for every scope');
  const next = new Map(rows.map((r) => [r.scope, Number(r.last_value) - counts.get(r.scope)! + 1]));
  return wanted.map((scopes) => {
    const numbers = new Map<string, number>();
    for (const scope of scopes) {
      const number = next.get(scope)!;
      numbers.set(scope, number);
      next.set(scope, number + 1);
    }
    return numbers;
  });
}

function isLocked(row: WalletRow, now: Date): boolean {
  return row.password_locked_until !== null && new Date(row.password_locked_until).getTime() > now.getTime();
}

function lockedRefusal(row: WalletRow): ServiceRefusal {
  return new ServiceRefusal('payment_password_locked', 'payments are locked after too many wrong passwords', {
    lockedUntil: new Date(row.password_locked_until!).toISOString(),
  });
}
