/**
 * The terminal registry: which terminal (field 41) of which card acceptor (field 42) belongs to which of our
 * merchants, its key scheme, its open batch and its session; and, in a table of their own, its keys.
 *
 * Keys apart from the data (issue #9, research §2.1): the terminal master key (TMK, injected into the terminal out of
 * band) and the working keys issued at sign-on live in `cp_pos_terminal_keys`, every value sealed by the injected
 * key cipher (in production a `DataKeyRing` whose master key never enters the database). The terminals table holds
 * no key material, so a read of it (reports, support) reads none.
 *
 * Terminal state is cached in the process; a miss or a stale cache (a MAC that does not verify, a batch that does
 * not match) reads the tables again, so several gateway processes may share them.
 */
import { randomBytes } from 'node:crypto';
import type { PersonalDataCipher, ServiceDatabase } from '../services';
import { ServiceRefusal } from '../services';
import { keyCheckValue, withOddParity } from './block-cipher';
import type { WorkingKeys } from './key-download';
import { keyDownloadLayout } from './key-download';
import type { KeyDownloadLayout } from './spec';

/** 001/003/004 are the DES layouts of 60.3 (research §2.1); `sm4` is our convention (README, "SM4 variants"). */
export type TerminalKeyScheme = '001' | '003' | '004' | 'sm4';
export const TERMINAL_KEY_SCHEMES: readonly TerminalKeyScheme[] = ['001', '003', '004', 'sm4'];

/** Sealed-field names: the cipher binds each value to its field (SM4-GCM associated data). */
export const KEY_FIELDS = { tmk: 'posTerminalMasterKey', pik: 'posPinKey', mak: 'posMacKey' } as const;

export const FIRST_BATCH = '000001';
const LAST_BATCH = 999_999;

export const TERMINALS_SQL = `
CREATE TABLE IF NOT EXISTS cp_pos_card_acceptors (
  card_acceptor_id text PRIMARY KEY,
  merchant_id text NOT NULL
);
CREATE TABLE IF NOT EXISTS cp_pos_terminals (
  card_acceptor_id text NOT NULL REFERENCES cp_pos_card_acceptors (card_acceptor_id),
  terminal_id text NOT NULL,
  key_scheme text NOT NULL CHECK (key_scheme IN ('001', '003', '004', 'sm4')),
  status text NOT NULL CHECK (status IN ('active', 'disabled')),
  batch_number text NOT NULL CHECK (batch_number ~ '^[0-9]{6}$'),
  session text NOT NULL CHECK (session IN ('signed_off', 'signed_on')),
  signed_on_at timestamptz,
  registered_at timestamptz NOT NULL,
  PRIMARY KEY (card_acceptor_id, terminal_id)
);
CREATE TABLE IF NOT EXISTS cp_pos_terminal_keys (
  card_acceptor_id text NOT NULL,
  terminal_id text NOT NULL,
  tmk text NOT NULL,
  tmk_check_value text NOT NULL,
  pik text,
  mak text,
  generation integer NOT NULL DEFAULT 0,
  issued_at timestamptz,
  PRIMARY KEY (card_acceptor_id, terminal_id),
  FOREIGN KEY (card_acceptor_id, terminal_id) REFERENCES cp_pos_terminals (card_acceptor_id, terminal_id)
);
`;

export interface TerminalRegistration {
  /** Our merchant (cp_merchants.merchant_id). */
  readonly merchantId: string;
  /** Field 42: 15 printable characters, the card acceptor (商户号) the terminal sends. */
  readonly cardAcceptorId: string;
  /** Field 41: 8 printable characters. */
  readonly terminalId: string;
  readonly keyScheme: TerminalKeyScheme;
}

export interface TerminalState extends TerminalRegistration {
  readonly status: 'active' | 'disabled';
  readonly batchNumber: string;
  readonly signedOn: boolean;
  readonly masterKey: Buffer;
  /** The working keys of the current session; absent when signed off or never signed on. */
  readonly workingKeys?: WorkingKeys;
  readonly keyGeneration: number;
}

interface TerminalRow {
  merchant_id: string;
  card_acceptor_id: string;
  terminal_id: string;
  key_scheme: TerminalKeyScheme;
  status: 'active' | 'disabled';
  batch_number: string;
  session: 'signed_off' | 'signed_on';
  tmk: string;
  pik: string | null;
  mak: string | null;
  generation: number;
}

const PRINTABLE = /^[\x21-\x7e]+$/;

/** The layout a terminal's sign-on uses (KEY_DOWNLOAD_LAYOUTS in spec.ts). */
export function layoutOf(scheme: TerminalKeyScheme): KeyDownloadLayout {
  const layout = keyDownloadLayout(scheme);
  if (layout === undefined) throw new Error(`assertion: no key-download layout for scheme ${scheme}`);
  return layout;
}

/** A fresh TMK for the scheme: 16 bytes (double-length DES with odd parity, or SM4). */
export function generateMasterKey(scheme: TerminalKeyScheme): Buffer {
  return scheme === 'sm4' ? randomBytes(16) : withOddParity(randomBytes(16));
}

/** The batch after `batch`: 000001 … 999999, then 000001 again. */
export function nextBatch(batch: string): string {
  const n = Number(batch);
  return String(n >= LAST_BATCH ? 1 : n + 1).padStart(6, '0');
}

export class TerminalRegistry {
  private readonly cache = new Map<string, TerminalState>();

  constructor(
    private readonly database: ServiceDatabase,
    /** Seals the keys. Not the cipher of personal data unless they share a master key by choice. */
    private readonly keyCipher: PersonalDataCipher,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(TERMINALS_SQL);
  }

  /**
   * Registers a terminal with its TMK (a fresh one unless given) and returns the TMK once, with its check value, to
   * be injected into the terminal. A card acceptor id belongs to one merchant; a terminal is registered once.
   */
  async register(
    input: TerminalRegistration,
    at: Date,
    masterKey: Buffer = generateMasterKey(input.keyScheme),
  ): Promise<{ terminal: TerminalState; masterKey: Buffer; masterKeyCheckValue: string }> {
    checkRegistration(input, masterKey);
    const layout = layoutOf(input.keyScheme);
    const checkValue = keyCheckValue(layout.algorithm, masterKey, 4).toString('hex').toUpperCase();
    await this.database.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO cp_pos_card_acceptors (card_acceptor_id, merchant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [input.cardAcceptorId, input.merchantId],
      );
      const owner = await tx.query<{ merchant_id: string }>(
        'SELECT merchant_id FROM cp_pos_card_acceptors WHERE card_acceptor_id = $1 FOR UPDATE',
        [input.cardAcceptorId],
      );
      if (owner[0]?.merchant_id !== input.merchantId)
        throw new ServiceRefusal('conflict', `card acceptor ${input.cardAcceptorId} belongs to another merchant`);
      const inserted = await tx.query(
        `INSERT INTO cp_pos_terminals (card_acceptor_id, terminal_id, key_scheme, status, batch_number, session,
           registered_at) VALUES ($1, $2, $3, 'active', $4, 'signed_off', $5) ON CONFLICT DO NOTHING RETURNING terminal_id`,
        [input.cardAcceptorId, input.terminalId, input.keyScheme, FIRST_BATCH, at.toISOString()],
      );
      if (inserted.length === 0)
        throw new ServiceRefusal('conflict', `terminal ${input.terminalId} of ${input.cardAcceptorId} exists`);
      await tx.query(
        `INSERT INTO cp_pos_terminal_keys (card_acceptor_id, terminal_id, tmk, tmk_check_value) VALUES ($1, $2, $3, $4)`,
        [
          input.cardAcceptorId,
          input.terminalId,
          this.keyCipher.seal(KEY_FIELDS.tmk, masterKey.toString('hex')),
          checkValue,
        ],
      );
    });
    const terminal = await this.find(input.cardAcceptorId, input.terminalId, { fresh: true });
    if (!terminal) throw new Error('assertion: a registered terminal is found');
    return { terminal, masterKey, masterKeyCheckValue: checkValue };
  }

  /** The terminal with its keys opened; from the cache unless `fresh`. */
  async find(
    cardAcceptorId: string,
    terminalId: string,
    options: { fresh: boolean } = { fresh: false },
  ): Promise<TerminalState | undefined> {
    const key = cacheKey(cardAcceptorId, terminalId);
    if (!options.fresh) {
      const cached = this.cache.get(key);
      if (cached) return cached;
    }
    const rows = await this.database.query<TerminalRow>(
      `SELECT a.merchant_id, t.card_acceptor_id, t.terminal_id, t.key_scheme, t.status, t.batch_number, t.session,
              k.tmk, k.pik, k.mak, k.generation
         FROM cp_pos_terminals t
         JOIN cp_pos_card_acceptors a USING (card_acceptor_id)
         JOIN cp_pos_terminal_keys k USING (card_acceptor_id, terminal_id)
        WHERE t.card_acceptor_id = $1 AND t.terminal_id = $2`,
      [cardAcceptorId, terminalId],
    );
    const row = rows[0];
    if (!row) {
      this.cache.delete(key);
      return undefined;
    }
    const state = this.stateOf(row);
    this.cache.set(key, state);
    return state;
  }

  /** Sign-on: the new working keys (sealed) replace the old ones; the session is open. */
  async signOn(terminal: TerminalState, keys: WorkingKeys, at: Date): Promise<TerminalState> {
    await this.database.transaction(async (tx) => {
      await tx.query(
        `UPDATE cp_pos_terminal_keys SET pik = $3, mak = $4, generation = generation + 1, issued_at = $5
          WHERE card_acceptor_id = $1 AND terminal_id = $2`,
        [
          terminal.cardAcceptorId,
          terminal.terminalId,
          this.keyCipher.seal(KEY_FIELDS.pik, keys.pik.toString('hex')),
          this.keyCipher.seal(KEY_FIELDS.mak, keys.mak.toString('hex')),
          at.toISOString(),
        ],
      );
      await tx.query(
        `UPDATE cp_pos_terminals SET session = 'signed_on', signed_on_at = $3 WHERE card_acceptor_id = $1 AND terminal_id = $2`,
        [terminal.cardAcceptorId, terminal.terminalId, at.toISOString()],
      );
    });
    return this.reload(terminal);
  }

  /** Sign-off: the working keys are destroyed; the terminal must sign on before its next financial message. */
  async signOff(terminal: TerminalState): Promise<TerminalState> {
    await this.database.transaction(async (tx) => {
      await tx.query(
        `UPDATE cp_pos_terminal_keys SET pik = NULL, mak = NULL WHERE card_acceptor_id = $1 AND terminal_id = $2`,
        [terminal.cardAcceptorId, terminal.terminalId],
      );
      await tx.query(
        `UPDATE cp_pos_terminals SET session = 'signed_off' WHERE card_acceptor_id = $1 AND terminal_id = $2`,
        [terminal.cardAcceptorId, terminal.terminalId],
      );
    });
    return this.reload(terminal);
  }

  /** Closes `batch` if it is the terminal's open batch (settlement): the next one opens. Idempotent. */
  async closeBatch(terminal: TerminalState, batch: string): Promise<TerminalState> {
    await this.database.query(
      `UPDATE cp_pos_terminals SET batch_number = $4 WHERE card_acceptor_id = $1 AND terminal_id = $2 AND batch_number = $3`,
      [terminal.cardAcceptorId, terminal.terminalId, batch, nextBatch(batch)],
    );
    return this.reload(terminal);
  }

  async setStatus(cardAcceptorId: string, terminalId: string, status: 'active' | 'disabled'): Promise<void> {
    await this.database.query(
      'UPDATE cp_pos_terminals SET status = $3 WHERE card_acceptor_id = $1 AND terminal_id = $2',
      [cardAcceptorId, terminalId, status],
    );
    this.cache.delete(cacheKey(cardAcceptorId, terminalId));
  }

  private async reload(terminal: TerminalState): Promise<TerminalState> {
    const state = await this.find(terminal.cardAcceptorId, terminal.terminalId, { fresh: true });
    if (!state) throw new Error(`assertion: terminal ${terminal.terminalId} vanished`);
    return state;
  }

  private stateOf(row: TerminalRow): TerminalState {
    const open = (field: string, stored: string) => Buffer.from(this.keyCipher.open(field, stored), 'hex');
    const signedOn = row.session === 'signed_on' && row.pik !== null && row.mak !== null;
    return {
      merchantId: row.merchant_id,
      cardAcceptorId: row.card_acceptor_id,
      terminalId: row.terminal_id,
      keyScheme: row.key_scheme,
      status: row.status,
      batchNumber: row.batch_number,
      signedOn,
      masterKey: open(KEY_FIELDS.tmk, row.tmk),
      ...(signedOn
        ? { workingKeys: { pik: open(KEY_FIELDS.pik, row.pik!), mak: open(KEY_FIELDS.mak, row.mak!) } }
        : {}),
      keyGeneration: row.generation,
    };
  }
}

function cacheKey(cardAcceptorId: string, terminalId: string): string {
  return `${cardAcceptorId}|${terminalId}`;
}

function checkRegistration(input: TerminalRegistration, masterKey: Buffer): void {
  if (input.terminalId.length !== 8 || !PRINTABLE.test(input.terminalId))
    throw new ServiceRefusal('validation_failed', 'a terminal id (field 41) is 8 printable characters');
  if (input.cardAcceptorId.length !== 15 || !PRINTABLE.test(input.cardAcceptorId))
    throw new ServiceRefusal('validation_failed', 'a card acceptor id (field 42) is 15 printable characters');
  if (!TERMINAL_KEY_SCHEMES.includes(input.keyScheme))
    throw new ServiceRefusal('validation_failed', `key scheme is one of ${TERMINAL_KEY_SCHEMES.join(', ')}`);
  if (masterKey.length !== 16) throw new ServiceRefusal('validation_failed', 'a terminal master key is 16 bytes');
}
