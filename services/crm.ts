import type { CommandContext, CustomerClass, Ledger, LedgerCommand } from '../core-ledger';
import { canonicalJson } from '../core-ledger';
import type { ServiceDatabase } from './database';
import { executeOrRefuse, ServiceRefusal } from './database';
import type { WalletRecord, WalletService } from './wallets';
import { SUB_ACCOUNTS } from './wallets';

/**
 * Account lifecycle from the CRM (T13): open, close, report loss, replace card, suspend and resume arrive one by one or
 * in batches; each record is answered on its own (applied, duplicate or rejected with a reason) and applied whole or
 * not at all. Records are idempotent per (source, record id): a record seen before is answered as it was, a record id
 * reused with other content is rejected. Each record's ledger commands are themselves idempotent, so a record left
 * `pending` by a crash is finished by sending it again.
 */

export const CRM_ACTIONS = ['open', 'close', 'report_loss', 'replace_card', 'suspend', 'resume'] as const;
export type CrmAction = (typeof CRM_ACTIONS)[number];

export const CRM_LIMITS = { maxRecordsPerBatch: 500, maxRecordIdLength: 64 } as const;

export const CRM_SQL = `
CREATE TABLE IF NOT EXISTS cp_crm_records (
  source text NOT NULL,
  record_id text NOT NULL,
  action text NOT NULL,
  content_hash text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
  result jsonb,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (source, record_id)
);
`;

export type CrmRecordResult =
  | { readonly recordId: string; readonly status: 'applied'; readonly walletId: string; readonly detail?: string }
  | { readonly recordId: string; readonly status: 'duplicate'; readonly original: 'applied' | 'rejected' }
  | { readonly recordId: string; readonly status: 'rejected'; readonly code: string; readonly message: string };

/** What each action needs besides `recordId`, `action` and `accountNumber` (validated per record, not per batch). */
const REQUIRED_FIELDS: Readonly<Record<CrmAction, readonly string[]>> = {
  open: ['name', 'areaCode', 'customerClass'],
  close: [],
  report_loss: ['reason'],
  replace_card: ['reason'],
  suspend: ['reason'],
  resume: ['reason'],
};

export class CrmSyncService {
  constructor(
    private readonly database: ServiceDatabase,
    private readonly ledger: Ledger,
    private readonly wallets: WalletService,
  ) {}

  async install(): Promise<void> {
    await this.database.exec(CRM_SQL);
  }

  async sync(
    source: string,
    records: readonly unknown[],
    context: CommandContext,
    at: Date,
  ): Promise<CrmRecordResult[]> {
    if (records.length === 0 || records.length > CRM_LIMITS.maxRecordsPerBatch)
      throw new ServiceRefusal('validation_failed', `a batch has 1..${CRM_LIMITS.maxRecordsPerBatch} records`);
    const results: CrmRecordResult[] = [];
    for (const [index, raw] of records.entries()) results.push(await this.syncOne(source, raw, index, context, at));
    return results;
  }

  private async syncOne(
    source: string,
    raw: unknown,
    index: number,
    context: CommandContext,
    at: Date,
  ): Promise<CrmRecordResult> {
    const checked = checkRecord(raw, index);
    if (!checked.ok) return checked.result;
    const record = checked.record;
    const hash = canonicalJson(record);
    const claimed = await this.database.query<{ record_id: string }>(
      `INSERT INTO cp_crm_records (source, record_id, action, content_hash, status, received_at)
       VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT DO NOTHING RETURNING record_id`,
      [source, record.recordId, record.action, hash, at.toISOString()],
    );
    if (claimed.length === 0) {
      const seen = (
        await this.database.query<{ content_hash: string; status: 'pending' | 'applied' | 'rejected' }>(
          'SELECT content_hash, status FROM cp_crm_records WHERE source = $1 AND record_id = $2',
          [source, record.recordId],
        )
      )[0]!;
      if (seen.content_hash !== hash)
        return rejected(record.recordId, 'idempotency_conflict', 'this record id was sent before with other content');
      // A record a crash left pending is applied again (every step is idempotent); a finished one is answered.
      if (seen.status !== 'pending') return { recordId: record.recordId, status: 'duplicate', original: seen.status };
    }
    let result: CrmRecordResult;
    try {
      result = await this.apply(record, context, at);
    } catch (error) {
      if (!(error instanceof ServiceRefusal)) throw error;
      result = rejected(record.recordId, error.code, error.message);
    }
    await this.database.query(
      'UPDATE cp_crm_records SET status = $3, result = $4 WHERE source = $1 AND record_id = $2',
      [source, record.recordId, result.status === 'applied' ? 'applied' : 'rejected', JSON.stringify(result)],
    );
    return result;
  }

  private async apply(record: CrmRecord, context: CommandContext, at: Date): Promise<CrmRecordResult> {
    if (record.action === 'open') {
      const wallet = await this.wallets.openWallet(
        {
          accountNumber: record.accountNumber,
          name: record.fields['name']!,
          areaCode: record.fields['areaCode']!,
          customerClass: record.fields['customerClass'] as CustomerClass,
          purpose: 'general',
        },
        context,
        at,
      );
      return { recordId: record.recordId, status: 'applied', walletId: wallet.walletId };
    }
    const wallet = await this.wallets.findByAccountNumber(record.accountNumber);
    if (!wallet) throw new ServiceRefusal('not_found', 'no wallet has this account number');
    const reason = record.fields['reason'] ?? `crm ${record.action}`;
    const stamp = at.toISOString();
    const everyAccount = (type: 'FreezeAccount' | 'UnfreezeAccount' | 'CloseAccount'): LedgerCommand[] =>
      SUB_ACCOUNTS.map((s) => ({ type, accountId: wallet.accounts[s.role], reason, at: stamp }));
    switch (record.action) {
      case 'suspend':
        await this.runAll(everyAccount('FreezeAccount'), context);
        break;
      case 'resume':
        await this.runAll(everyAccount('UnfreezeAccount'), context);
        break;
      case 'report_loss':
        await this.runAll([{ type: 'ReportAccountLost', accountId: wallet.accounts.main, reason, at: stamp }], context);
        break;
      case 'replace_card': {
        const cardNumber = await this.wallets.replaceCard(wallet);
        await this.runAll(
          [{ type: 'ReplaceCard', accountId: wallet.accounts.main, newCardNumber: cardNumber, reason, at: stamp }],
          context,
        );
        return { recordId: record.recordId, status: 'applied', walletId: wallet.walletId, detail: 'card replaced' };
      }
      case 'close':
        await this.closeEmpty(wallet, reason, context, at);
        break;
    }
    return { recordId: record.recordId, status: 'applied', walletId: wallet.walletId };
  }

  /** The CRM closes only empty wallets: paying a balance out needs the customer's card and goes through closeWallet. */
  private async closeEmpty(wallet: WalletRecord, reason: string, context: CommandContext, at: Date): Promise<void> {
    for (const sub of SUB_ACCOUNTS) {
      const account = await this.ledger.getAccount(wallet.accounts[sub.role]);
      if (account && account.status !== 'closed' && !account.posted.isZero())
        throw new ServiceRefusal('balance_not_zero', `sub-account ${account.accountId} still holds a balance`);
    }
    await this.runAll(
      SUB_ACCOUNTS.map((s) => ({
        type: 'CloseAccount',
        accountId: wallet.accounts[s.role],
        reason,
        at: at.toISOString(),
      })),
      context,
    );
    await this.wallets.markClosed(wallet.walletId);
  }

  /** Every command must succeed; a refusal before the first change leaves nothing half-applied (checked in order). */
  private async runAll(commands: readonly LedgerCommand[], context: CommandContext): Promise<void> {
    for (const command of commands) await executeOrRefuse(this.ledger, command, context);
  }
}

interface CrmRecord {
  readonly recordId: string;
  readonly action: CrmAction;
  readonly accountNumber: string;
  readonly fields: Readonly<Record<string, string>>;
}

function rejected(recordId: string, code: string, message: string): CrmRecordResult {
  return { recordId, status: 'rejected', code, message };
}

/** Per-record validation: a malformed record is answered, never a reason to refuse the batch. */
function checkRecord(
  raw: unknown,
  index: number,
): { ok: true; record: CrmRecord } | { ok: false; result: CrmRecordResult } {
  const fallbackId = `#${index}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, result: rejected(fallbackId, 'validation_failed', 'a record is a JSON object') };
  const value = raw as Record<string, unknown>;
  const recordId = value['recordId'];
  if (typeof recordId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(recordId))
    return { ok: false, result: rejected(fallbackId, 'validation_failed', 'recordId: 1..64 letters, digits, . _ : -') };
  const action = value['action'];
  if (typeof action !== 'string' || !(CRM_ACTIONS as readonly string[]).includes(action))
    return { ok: false, result: rejected(recordId, 'validation_failed', `action: one of ${CRM_ACTIONS.join(', ')}`) };
  const accountNumber = value['accountNumber'];
  if (typeof accountNumber !== 'string' || !/^\d{11,12}$/.test(accountNumber))
    return { ok: false, result: rejected(recordId, 'validation_failed', 'accountNumber: 11 or 12 digits (T5)') };
  const fields: Record<string, string> = {};
  for (const name of REQUIRED_FIELDS[action as CrmAction]) {
    const field = value[name];
    if (typeof field !== 'string' || field.length === 0 || field.length > 256)
      return { ok: false, result: rejected(recordId, 'validation_failed', `${name}: required for ${action}`) };
    fields[name] = field;
  }
  const allowed = new Set(['recordId', 'action', 'accountNumber', ...REQUIRED_FIELDS[action as CrmAction]]);
  const unknown = Object.keys(value).find((k) => !allowed.has(k));
  if (unknown !== undefined)
    return { ok: false, result: rejected(recordId, 'validation_failed', `${unknown}: not a field of ${action}`) };
  return { ok: true, record: { recordId, action: action as CrmAction, accountNumber, fields } };
}
