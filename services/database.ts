import type { CommandContext, CommandOutcome, CommandResult, Ledger, LedgerCommand, RefusalCode } from '../core-ledger';
import type { SqlQueryable } from '../projections';

/**
 * What the services need of a SQL database: statements, and transactions whose row locks serialise writers of one
 * wallet, user or payment across processes. The read-model database (PostgreSQL, or PGlite in one process) is one.
 */
export interface ServiceDatabase extends SqlQueryable {
  exec(script: string): Promise<void>;
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
}

export type { PreparedSql, SqlQueryable, SqlStatement } from '../projections';
export { lengthUnseen, preparedSql } from '../projections';

/** Seals and opens personal data kept in service tables; `plain` keeps it as it is (no master key configured). */
export interface PersonalDataCipher {
  seal(field: string, plaintext: string): string;
  open(field: string, stored: string): string;
}

export const PLAINTEXT: PersonalDataCipher = {
  seal: (_field, plaintext) => plaintext,
  open: (_field, stored) => stored,
};

/** Every refusal a service gives; the API has an HTTP status for each (a new one without a status does not compile). */
export type ServiceRefusalCode =
  | 'validation_failed'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'insufficient_funds'
  | 'wallet_exists'
  | 'wallet_not_open'
  | 'payment_password_not_set'
  | 'payment_password_wrong'
  | 'payment_password_locked'
  | 'password_free_limit_exceeded'
  | 'category_not_allowed'
  | 'merchant_not_active'
  | 'invalid_merchant_state'
  | 'refund_exceeds_paid'
  | 'payment_failed'
  | 'risk_refused'
  | 'risk_review'
  | 'forbidden'
  | 'bad_signature';

/** A service's expected refusal: the API maps `code` to its HTTP status. Never used for bugs. */
export class ServiceRefusal extends Error {
  constructor(
    readonly code: ServiceRefusalCode | RefusalCode,
    message: string,
    readonly details?: Readonly<Record<string, string | number | boolean | null>>,
  ) {
    super(message);
    this.name = 'ServiceRefusal';
  }
}

/** Runs a ledger command; a refusal becomes a {@link ServiceRefusal} with the ledger's own code. */
export async function executeOrRefuse(
  ledger: Ledger,
  command: LedgerCommand,
  context: CommandContext,
): Promise<{ readonly result: CommandResult; readonly replayed: boolean }> {
  const outcome: CommandOutcome = await ledger.execute(command, context);
  if (outcome.status === 'refused')
    throw new ServiceRefusal(outcome.refusal.code, outcome.refusal.message, outcome.refusal.details);
  return { result: outcome.result, replayed: outcome.status === 'replayed' };
}
