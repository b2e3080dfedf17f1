import { runDecode } from './commands/decode';
import type { Config } from './config';
import { ConfigError, CONFIG_VARIABLES, loadConfig } from './config';
import { openEventStore, startLedger, startReadModels } from './platform';
import { createLogger, drainAndClose } from '../api';
import type { ReadModelDatabase } from '../projections';
import { OperatorDirectory } from '../security';
import { runAudit } from './commands/audit';
import { runCrypto } from './commands/crypto';
import { runKeys } from './commands/keys';
import { runOperators } from './commands/operators';
import { openClearing, runClearing } from './commands/clearing';
import { runBackup, runRestore } from './commands/backup';
import { runArchive } from './commands/archive';

/** Configuration refused: its line is already on stderr. */
class UsageError extends Error {}
import { createPlatformApi, listenPlatform, protectPersonalData } from './server';
import type { Io } from './commands/io';

const USAGE = [
  'usage: carbonpay <command> [arguments]',
  '  serve                         run the platform (HTTP on HOST:PORT)',
  '  decode <card number|account>  explain a T6 card number or T7 account id',
  '  read-models status|rebuild    show the read models, or rebuild them from position zero and swap them in',
  '  crypto <sm3|sm4|sm2-sign|sm2-verify|sm2-keygen> …  SM crypto for partner onboarding (carbonpay crypto help)',
  '  keys new-master|new-platform-sm2 --to <file> | rotate-data-key | new-client-secret  keys (docs/operations.md)',
  '  audit verify [--json]         check the SM3 hash chain of the audit log (exit 1: tampered)',
  '  operators add --username <name> --role <role>  create a console operator (password from CARBONPAY_OPERATOR_PASSWORD)',
  '  clearing run|settle|reconcile|discrepancies list|discrepancies resolve|jobs …  the daily batch (exit 0/1/2/3/4/5)',
  '  backup full|incremental --to <set> | verify --from <dir> | checksums  SM3-manifested backups (docs/operations.md)',
  '  restore --from <set or backup>…  restore into an empty database, then rebuild the read models',
  '  archive --before YYYY-MM --to <dir> [--detach] | read --from <dir> … | verify --from <dir>  archive closed months (T18)',
  '  help                          this text and the configuration variables',
];

const processIo: Io = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
};

/** Exit codes: 0 done, 1 failed while running, 2 bad usage, input or configuration. */
export async function main(args: readonly string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'decode':
      return runDecode(rest, io);
    case 'serve':
      return serve(io);
    case 'read-models':
      return readModelsCommand(rest, io);
    case 'crypto':
      return runCrypto(rest, io);
    case 'audit':
      return runAudit(rest, io, process.env);
    case 'keys':
      return orUsage(runKeys(rest, io, process.env, () => openReadModelDatabase(io)));
    case 'operators':
      return orUsage(
        runOperators(rest, io, process.env, async () => {
          const { database, close } = await openReadModelDatabase(io);
          const directory = new OperatorDirectory(database);
          await directory.install();
          return { directory, close };
        }),
      );
    case 'backup':
      return runBackup(rest, io, process.env);
    case 'restore':
      return runRestore(rest, io, process.env);
    case 'archive':
      return runArchive(rest, io, process.env);
    case 'clearing':
      return orUsage(
        runClearing(rest, io, process.env, async () => {
          const config = configOrExit(io);
          if (!config) throw new UsageError();
          return openClearing(config, process.env);
        }),
      );
    case 'help':
    case '--help':
      USAGE.forEach(io.stdout);
      io.stdout('configuration (environment variables):');
      for (const [name, rule] of Object.entries(CONFIG_VARIABLES)) io.stdout(`  ${name.padEnd(30)} ${rule}`);
      return 0;
    default:
      io.stderr(
        command === undefined
          ? 'carbonpay: a command is required'
          : `carbonpay: unknown command ${JSON.stringify(command)}`,
      );
      USAGE.forEach(io.stderr);
      return 2;
  }
}

/** The database beside the read models (operators, keys, audit), for commands that run outside the server. */
async function openReadModelDatabase(io: Io): Promise<{ database: ReadModelDatabase; close(): Promise<void> }> {
  const config = configOrExit(io);
  if (!config) throw new UsageError();
  const store = await openEventStore(config);
  const readModels = await startReadModels({ ...config, runProjections: false }, store);
  return {
    database: readModels.database,
    close: async () => {
      await readModels.close();
      await store.close();
    },
  };
}

/** A refused configuration has printed its line already: exit 2. */
async function orUsage(run: Promise<number>): Promise<number> {
  try {
    return await run;
  } catch (error) {
    if (error instanceof UsageError) return 2;
    throw error;
  }
}

function configOrExit(io: Io): Config | undefined {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`carbonpay: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}

/**
 * `read-models status` prints each projection's generation, checkpoint and events applied; `read-models rebuild`
 * asks for a rebuild and waits for the swap. A running server's runner does the work when it leads; otherwise
 * this process runs one until the swap.
 */
async function readModelsCommand(args: readonly string[], io: Io): Promise<number> {
  const [action] = args;
  if ((action !== 'status' && action !== 'rebuild') || args.length !== 1) {
    io.stderr('carbonpay: usage: carbonpay read-models status|rebuild');
    return 2;
  }
  const config = configOrExit(io);
  if (!config) return 2;
  const store = await openEventStore(config);
  const readModels = await startReadModels({ ...config, runProjections: true }, store);
  try {
    if (action === 'rebuild') {
      const started = Date.now();
      io.stdout('carbonpay: rebuilding the read models from position zero');
      const generation = await readModels.runner!.rebuild();
      io.stdout(`carbonpay: generation ${generation} swapped in after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const rows = await readModels.database.query<{
      projection: string;
      active_generation: number;
      position: string;
      events_applied: string;
      updated_at: string;
    }>(
      `SELECT p.projection, p.active_generation, c.position, c.events_applied::text, c.updated_at::text
         FROM cp_projections p JOIN cp_projection_checkpoints c
           ON c.projection = p.projection AND c.generation = p.active_generation ORDER BY 1`,
    );
    for (const r of rows)
      io.stdout(
        `${r.projection}: generation ${r.active_generation}, position ${r.position || '(start)'}, ${r.events_applied} events applied, last batch ${r.updated_at}`,
      );
    return 0;
  } finally {
    await readModels.close();
    await store.close();
  }
}

async function serve(io: Io): Promise<number> {
  const config = configOrExit(io);
  if (!config) return 2;
  const logger = createLogger(process.env['LOG_LEVEL'] ?? 'info');
  const store = await openEventStore(config);
  // The read models keep what the log holds (sealed personal data); the ledger sees it opened.
  const readModels = await startReadModels(config, store);
  const ledgerStore = await protectPersonalData(store, readModels, config);
  if (ledgerStore === store) logger.warn('CARBONPAY_MASTER_KEY_FILE is not set: personal data is stored unencrypted');
  const ledger = await startLedger(ledgerStore, config);
  const platform = await createPlatformApi(ledger, ledgerStore, readModels, config, logger);
  const { api } = platform;
  // Whatever a crash left unfinished (issuances, payments) is finished before the first request.
  await platform.services.runJobs();
  const server = await listenPlatform(api, config);
  if (config.auth === 'off') logger.warn('authentication is off (CARBONPAY_AUTH=off): development on loopback only');
  const scheme = config.tlsCertFile ? 'https' : 'http';
  io.stdout(`carbonpay listening on ${scheme}://${config.host}:${config.port} (event store: ${store.name})`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  io.stdout('carbonpay: shutting down, draining in-flight requests');
  const unanswered = await drainAndClose(api, server, config.shutdownGraceMs);
  if (unanswered > 0) logger.warn({ unanswered }, 'shutdown deadline passed with requests in flight');
  await ledger.close();
  await platform.close();
  await readModels.close();
  await store.close();
  io.stdout('carbonpay: stopped');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`carbonpay: ${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
