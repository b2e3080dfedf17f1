import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type {
  ClearingSummary,
  DiscrepancyCase,
  ReconciliationSummary,
  Resolution,
  SettlementSummary,
} from '../../clearing';
import {
  BillRejectedError,
  ClearingJobs,
  ClearingService,
  FileDriftError,
  isBusinessDate,
  isReconChannel,
  isResolution,
  RECON_CHANNELS,
  RESOLUTION_NAMES,
  ResolutionRefusedError,
  RunBusyError,
  RunPreconditionError,
} from '../../clearing';
import type { EventStore } from '../../core-ledger';
import { DEFAULT_PAYMENT_POLICY, PaymentService, WalletService } from '../../services';
import { serviceKeys } from '../server';
import type { Config } from '../config';
import { loadConfig } from '../config';
import { openEventStore, startLedger, startReadModels } from '../platform';
import { protectPersonalData } from '../server';
import type { Io } from './io';

/**
 * `carbonpay clearing …`: the daily batch for clearing operators (issue #10).
 *
 *   clearing run --date D [--json]                            清分: clear a business date, write the report
 *   clearing settle --date D [--json]                         结算: settle a cleared date, write the bank files
 *   clearing reconcile --file F --channel C --date D [--json] 对账: import a channel bill and match it
 *   clearing discrepancies list [--date D] [--channel C] [--all] [--json]
 *   clearing discrepancies resolve --case ID --resolution R --date D [--merchant M] [--note T] [--json]
 *   clearing jobs work                                        run the queue worker and the daily scheduler (REDIS_URL)
 *   clearing jobs enqueue run|settle --date D                 add a job for a date
 *
 * Results go to stdout (one JSON object with --json); progress and every error to stderr, one line each.
 */

export const CLEARING_EXIT = {
  /** Done. */
  ok: 0,
  /** Failed while running (database, ledger, file system); the run row says `failed`, a rerun resumes it. */
  failed: 1,
  /** Bad usage or input: arguments, an unreadable or rejected bill, an unknown case, a resolution not allowed. */
  usage: 2,
  /** Done, and an operator is needed: discrepancies found, or settlement lines held. */
  attention: 3,
  /** Another run of the same step and date holds the lock; try again later. */
  busy: 4,
  /** Not yet possible: the step before is missing, a later date is cleared, the ledger or a service said no. */
  precondition: 5,
} as const;

const USAGE = [
  'usage: carbonpay clearing run --date YYYY-MM-DD [--json]',
  '       carbonpay clearing settle --date YYYY-MM-DD [--json]',
  `       carbonpay clearing reconcile --file F --channel ${RECON_CHANNELS.join('|')} --date YYYY-MM-DD [--json]`,
  '       carbonpay clearing discrepancies list [--date YYYY-MM-DD] [--channel C] [--all] [--json]',
  `       carbonpay clearing discrepancies resolve --case ID --resolution ${RESOLUTION_NAMES.join('|')} --date YYYY-MM-DD [--merchant M] [--note T] [--json]`,
  '       carbonpay clearing jobs work | jobs enqueue run|settle --date YYYY-MM-DD',
  'exit codes: 0 done, 1 failed, 2 usage or input, 3 done but discrepancies or held lines, 4 busy, 5 precondition',
];

export interface ClearingCliContext {
  readonly clearing: ClearingService;
  /** The queue (REDIS_URL); undefined when no Redis is configured. */
  readonly jobs?: () => ClearingJobs;
  close(): Promise<void>;
}

interface Parsed {
  readonly words: string[];
  readonly options: Map<string, string>;
  readonly flags: Set<string>;
}

const VALUE_OPTIONS = ['--date', '--file', '--channel', '--case', '--resolution', '--merchant', '--note'];
const FLAG_OPTIONS = ['--json', '--all'];

function parse(args: readonly string[]): Parsed | string {
  const words: string[] = [];
  const options = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (FLAG_OPTIONS.includes(arg)) flags.add(arg);
    else if (VALUE_OPTIONS.includes(arg)) {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) return `${arg} needs a value`;
      if (options.has(arg)) return `${arg} given twice`;
      options.set(arg, value);
      i += 1;
    } else if (arg.startsWith('--')) return `unknown option ${arg}`;
    else words.push(arg);
  }
  return { words, options, flags };
}

export async function runClearing(
  args: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  open: () => Promise<ClearingCliContext>,
): Promise<number> {
  const parsed = parse(args);
  const usage = (problem: string): number => {
    io.stderr(`carbonpay: clearing: ${problem}`);
    USAGE.forEach(io.stderr);
    return CLEARING_EXIT.usage;
  };
  if (typeof parsed === 'string') return usage(parsed);
  const { words, options, flags } = parsed;
  const command = words.join(' ');
  const allowed: Record<string, { required: string[]; optional: string[]; flags: string[] }> = {
    run: { required: ['--date'], optional: [], flags: ['--json'] },
    settle: { required: ['--date'], optional: [], flags: ['--json'] },
    reconcile: { required: ['--file', '--channel', '--date'], optional: [], flags: ['--json'] },
    'discrepancies list': { required: [], optional: ['--date', '--channel'], flags: ['--json', '--all'] },
    'discrepancies resolve': {
      required: ['--case', '--resolution', '--date'],
      optional: ['--merchant', '--note'],
      flags: ['--json'],
    },
    'jobs work': { required: [], optional: [], flags: [] },
    'jobs enqueue run': { required: ['--date'], optional: [], flags: [] },
    'jobs enqueue settle': { required: ['--date'], optional: [], flags: [] },
  };
  const shape = allowed[command];
  if (!shape)
    return usage(command === '' ? 'a subcommand is required' : `unknown subcommand ${JSON.stringify(command)}`);
  for (const name of shape.required) if (!options.has(name)) return usage(`${command} needs ${name}`);
  for (const name of options.keys())
    if (!shape.required.includes(name) && !shape.optional.includes(name)) return usage(`${command} takes no ${name}`);
  for (const flag of flags) if (!shape.flags.includes(flag)) return usage(`${command} takes no ${flag}`);
  const date = options.get('--date');
  if (date !== undefined && !isBusinessDate(date)) return usage(`--date ${JSON.stringify(date)} is not YYYY-MM-DD`);
  const channel = options.get('--channel');
  if (channel !== undefined && !isReconChannel(channel))
    return usage(`--channel ${JSON.stringify(channel)}: one of ${RECON_CHANNELS.join(', ')}`);
  const resolution = options.get('--resolution');
  if (resolution !== undefined && !isResolution(resolution))
    return usage(`--resolution ${JSON.stringify(resolution)}: one of ${RESOLUTION_NAMES.join(', ')}`);
  let bill: Buffer | undefined;
  const file = options.get('--file');
  if (file !== undefined) {
    try {
      bill = readFileSync(file);
    } catch (error) {
      io.stderr(`carbonpay: clearing: cannot read ${file}: ${(error as Error).message}`);
      return CLEARING_EXIT.usage;
    }
  }
  const json = flags.has('--json');

  const context = await open();
  const service = context.clearing.as({ actor: env['USER'] ?? 'operator', channel: 'cli' });
  service.hooks.progress = (message) => io.stderr(`carbonpay: clearing: ${message}`);
  try {
    switch (command) {
      case 'run':
        return printClearing(io, json, await service.clear(date!));
      case 'settle':
        return printSettlement(io, json, await service.settle(date!));
      case 'reconcile':
        return printReconciliation(io, json, await service.reconcile(channel as never, date!, bill!, basename(file!)));
      case 'discrepancies list':
        return printCases(
          io,
          json,
          await service.listCases({
            ...(date === undefined ? {} : { billDate: date }),
            ...(channel === undefined ? {} : { channel }),
            all: flags.has('--all'),
          }),
        );
      case 'discrepancies resolve': {
        const merchant = options.get('--merchant');
        const note = options.get('--note');
        const resolved = await service.resolve({
          caseId: options.get('--case')!,
          resolution: resolution as Resolution,
          businessDate: date!,
          ...(merchant === undefined ? {} : { merchantId: merchant }),
          ...(note === undefined ? {} : { note }),
        });
        return printCases(io, json, [resolved]);
      }
      case 'jobs work':
        return await work(io, context);
      default: {
        if (!context.jobs) {
          io.stderr('carbonpay: clearing: jobs need REDIS_URL');
          return CLEARING_EXIT.usage;
        }
        const jobs = context.jobs();
        try {
          const id = await jobs.enqueue({ step: command.endsWith('run') ? 'clearing' : 'settlement', date: date! });
          io.stdout(`job ${id} queued`);
          return CLEARING_EXIT.ok;
        } finally {
          await jobs.close();
        }
      }
    }
  } catch (error) {
    return exitFor(io, error);
  } finally {
    await context.close();
  }
}

function exitFor(io: Io, error: unknown): number {
  const message = (error as Error).message ?? String(error);
  io.stderr(`carbonpay: clearing: ${message}`);
  if (error instanceof RunBusyError) return CLEARING_EXIT.busy;
  if (error instanceof RunPreconditionError) return CLEARING_EXIT.precondition;
  if (error instanceof BillRejectedError) return CLEARING_EXIT.usage;
  if (error instanceof ResolutionRefusedError)
    return error.kind === 'refused' ? CLEARING_EXIT.precondition : CLEARING_EXIT.usage;
  if (error instanceof FileDriftError) return CLEARING_EXIT.failed;
  return CLEARING_EXIT.failed;
}

function printClearing(io: Io, json: boolean, s: ClearingSummary): number {
  if (json) io.stdout(JSON.stringify(s));
  else {
    io.stdout(
      `clearing ${s.businessDate}${s.replayed ? ' (cleared before; files rewritten)' : ''}: ${s.merchants} merchants, ${s.paymentCount} payments, ${s.refundCount} refunds, payout ${s.payout} CNY, carried forward ${s.carriedOut} CNY`,
    );
    io.stdout(`files in ${s.directory}: ${s.files.join(', ')}`);
  }
  return CLEARING_EXIT.ok;
}

function printSettlement(io: Io, json: boolean, s: SettlementSummary): number {
  if (json) io.stdout(JSON.stringify(s));
  else {
    io.stdout(
      `settlement ${s.businessDate}${s.replayed ? ' (settled before; files rewritten)' : ''}: ${s.settled} of ${s.merchants} merchants paid ${s.settledAmount} CNY, ${s.transfersMarked} transfers marked settled`,
    );
    for (const held of s.held)
      io.stderr(`carbonpay: clearing: held ${held.merchantId} ${held.amount} CNY: ${held.reason}`);
    io.stdout(`files in ${s.directory}: ${s.files.join(', ')}`);
  }
  return s.held.length > 0 ? CLEARING_EXIT.attention : CLEARING_EXIT.ok;
}

function printReconciliation(io: Io, json: boolean, s: ReconciliationSummary): number {
  if (json) io.stdout(JSON.stringify(s));
  else {
    const classes = Object.entries(s.classes)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
    io.stdout(
      `reconciliation ${s.channel} ${s.businessDate}${s.replayed ? ' (reconciled before; files rewritten)' : ''}: ${s.lines} lines, ${s.matched} matched; ${classes}; ${s.rematched} earlier cases re-matched`,
    );
    io.stdout(`files in ${s.directory}: ${s.files.join(', ')}`);
  }
  if (s.discrepancies > 0) io.stderr(`carbonpay: clearing: ${s.discrepancies} discrepancies to resolve`);
  return s.discrepancies > 0 ? CLEARING_EXIT.attention : CLEARING_EXIT.ok;
}

function printCases(io: Io, json: boolean, cases: readonly DiscrepancyCase[]): number {
  if (json) io.stdout(JSON.stringify(cases));
  else
    for (const c of cases)
      io.stdout(
        [
          c.caseId,
          c.billDate,
          c.channel,
          c.class,
          c.state,
          c.kind,
          c.merchantOrderNo + (c.refundNo === '' ? '' : `/${c.refundNo}`),
          `delta ${c.delta}`,
          c.resolution ?? '',
        ].join('  '),
      );
  return CLEARING_EXIT.ok;
}

async function work(io: Io, context: ClearingCliContext): Promise<number> {
  if (!context.jobs) {
    io.stderr('carbonpay: clearing: jobs need REDIS_URL');
    return CLEARING_EXIT.usage;
  }
  const jobs = context.jobs();
  await jobs.start();
  io.stdout(`carbonpay: clearing worker started (daily at ${jobs.options.dailyPattern} ${jobs.options.timeZone})`);
  await new Promise<void>((done) => {
    process.once('SIGTERM', () => done());
    process.once('SIGINT', () => done());
  });
  await jobs.close();
  io.stdout('carbonpay: clearing worker stopped');
  return CLEARING_EXIT.ok;
}

/**
 * Everything `carbonpay clearing` needs, from the configuration: the event store and ledger (personal data
 * protected as in the server), the read-model database with the service tables, the payment service, the clearing
 * tables. Environment: CARBONPAY_CLEARING_DIR (files; default ./clearing-output), CARBONPAY_CLEARING_PAYER_ACCOUNT,
 * CARBONPAY_CLEARING_BANK_CODE (12-digit CNAPS code of the merchants' bank), REDIS_URL for jobs.
 */
export async function openClearing(config: Config, env: NodeJS.ProcessEnv): Promise<ClearingCliContext> {
  const store: EventStore = await openEventStore(config);
  const readModels = await startReadModels({ ...config, runProjections: false }, store);
  const ledgerStore = await protectPersonalData(store, readModels, config);
  const ledger = await startLedger(ledgerStore, config);
  const { cipher, indexKey } = await serviceKeys(readModels.database, config.masterKeyFile);
  const wallets = new WalletService(readModels.database, ledger, cipher, indexKey);
  const payments = new PaymentService(readModels.database, ledger, wallets, cipher, {
    ...DEFAULT_PAYMENT_POLICY,
    cutoffHourLocal: config.cutoffHourLocal,
  });
  await wallets.install();
  await payments.install();
  const clearing = new ClearingService(readModels.database, ledger, payments, wallets, {
    outputDir: resolve(env['CARBONPAY_CLEARING_DIR'] ?? 'clearing-output'),
    cutoffHourLocal: config.cutoffHourLocal,
    ...(env['CARBONPAY_CLEARING_PAYER_ACCOUNT'] ? { payerAccount: env['CARBONPAY_CLEARING_PAYER_ACCOUNT'] } : {}),
    ...(env['CARBONPAY_CLEARING_BANK_CODE'] ? { payeeBankCode: env['CARBONPAY_CLEARING_BANK_CODE'] } : {}),
  });
  await clearing.install();
  const redisUrl = config.redisUrl;
  return {
    clearing,
    ...(redisUrl === undefined
      ? {}
      : {
          jobs: () =>
            new ClearingJobs(clearing, {
              redisUrl,
              cutoffHourLocal: config.cutoffHourLocal,
              logger: (line) => process.stderr.write(`carbonpay: clearing: ${line}\n`),
            }),
        }),
    close: async () => {
      await ledger.close();
      await readModels.close();
      await store.close();
    },
  };
}

/** Run directly (`node -r ts-node/register/transpile-only app/commands/clearing.ts …`), as `carbonpay clearing …`. */
if (require.main === module) {
  const io: Io = {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  };
  runClearing(process.argv.slice(2), io, process.env, () => openClearing(loadConfig(process.env), process.env)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`carbonpay: clearing: ${(error as Error).message}\n`);
      process.exitCode = CLEARING_EXIT.failed;
    },
  );
}
