import type { EventStore } from '../../core-ledger';
import { AuditChain, AuditChainNotInstalledError } from '../../security';
import type { AuditVerification } from '../../security';
import type { Config } from '../config';
import { ConfigError, loadConfig } from '../config';
import { openEventStore, startReadModels } from '../platform';
import type { ReadModels } from '../platform';
import type { Io } from './io';

const USAGE = 'usage: carbonpay audit verify [--json]';

/** Exit codes: the chain is intact; a problem was found; the chain could not be checked at all. */
const EXIT_INTACT = 0;
const EXIT_TAMPERED = 1;
const EXIT_CANNOT_VERIFY = 2;

/**
 * `carbonpay audit verify [--json]`: walks the audit chain where the read models live (CARBONPAY_READ_MODEL_URL,
 * else DATABASE_URL, else the PGlite data folder) and recomputes every hash. Exit 0 when intact; 1 when a row was
 * modified, deleted or inserted, each problem one line on stdout (or one JSON object with --json); 2 on bad usage,
 * bad configuration, or a database that cannot be read, one line on stderr — never 1, which means tampering.
 */
export async function runAudit(args: readonly string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const [action, ...flags] = args;
  if (action !== 'verify' || flags.length > 1 || flags.some((flag) => flag !== '--json')) return usageError(io);
  const json = flags.length === 1;

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return cannotVerify(io, error.message);
    throw error;
  }
  if (config.eventStore === 'memory' && config.readModelUrl === undefined)
    return cannotVerify(io, 'the memory event store keeps no audit trail; set DATABASE_URL or CARBONPAY_DATA_DIR');

  let store: EventStore;
  try {
    store = await openEventStore(config);
  } catch (error) {
    return cannotVerify(io, `cannot open the database: ${messageOf(error)}`);
  }
  try {
    let readModels: ReadModels;
    try {
      readModels = await startReadModels({ ...config, runProjections: false }, store);
    } catch (error) {
      return cannotVerify(io, `cannot open the read-model database: ${messageOf(error)}`);
    }
    try {
      const verification = await new AuditChain(readModels.database).verify();
      report(verification, json, io);
      return verification.ok ? EXIT_INTACT : EXIT_TAMPERED;
    } catch (error) {
      if (error instanceof AuditChainNotInstalledError)
        return cannotVerify(io, `no audit trail in this database: ${error.message}`);
      return cannotVerify(io, `cannot read the audit trail: ${messageOf(error)}`);
    } finally {
      await readModels.close();
    }
  } finally {
    await store.close();
  }
}

function report(verification: AuditVerification, json: boolean, io: Io): void {
  if (json) {
    io.stdout(JSON.stringify(verification));
    return;
  }
  const { head, rows, problems } = verification;
  if (verification.ok) {
    // A missing head is itself a problem: an intact chain always has one.
    if (head === undefined) throw new Error('assertion: an intact audit chain has a head');
    io.stdout(`audit chain intact: ${rows} rows, head seq ${head.seq} hash ${head.hash}`);
    return;
  }
  for (const problem of problems) io.stdout(`seq ${problem.seq}: ${problem.kind}: ${problem.message}`);
  const truncated = verification.problemsTruncated ? ' (only the first are listed)' : '';
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  io.stdout(`audit chain broken: ${count}${truncated} in ${rows} rows checked`);
}

function usageError(io: Io): number {
  io.stderr(`carbonpay audit: ${USAGE}`);
  return EXIT_CANNOT_VERIFY;
}

function cannotVerify(io: Io, reason: string): number {
  io.stderr(`carbonpay audit: ${reason}`);
  return EXIT_CANNOT_VERIFY;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
