import pino from 'pino';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ledger, LedgerStats } from '../core-ledger';
import type { ProjectionRunner } from '../projections';

export type { Logger } from 'pino';

/** JSON lines on stdout; secrets never reach a log line (headers are not logged, bodies never are). */
export function createLogger(level: string = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'carbonpay' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['*.authorization', '*.password', '*.pin', '*.key', '*.cardNumber'], censor: '[redacted]' },
  });
}

export interface ApiMetrics {
  readonly registry: Registry;
  readonly requestSeconds: Histogram<'operation' | 'status'>;
  readonly requestsInFlight: Gauge;
  readonly errors: Counter<'operation' | 'code'>;
}

/**
 * The metrics catalogue of the API: latency per operation and status, errors per stable code, requests in flight;
 * the writer's group commit (batches, commands, conflicts, its queue and batches in flight, state loads) and the
 * read models' lag, read when scraped. Figures of the database (the books, reconciliation cases, clearing runs) come
 * from postgres_exporter (ops/postgres-exporter-queries.yml): read once, not once per instance.
 */
export function createMetrics(ledger: Ledger, runner: ProjectionRunner | undefined): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'carbonpay_process_' });
  const requestSeconds = new Histogram({
    name: 'carbonpay_http_request_duration_seconds',
    help: 'HTTP request latency by operation and status',
    labelNames: ['operation', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const requestsInFlight = new Gauge({
    name: 'carbonpay_http_requests_in_flight',
    help: 'Requests being handled',
    registers: [registry],
  });
  const errors = new Counter({
    name: 'carbonpay_http_errors_total',
    help: 'Error answers by operation and stable code',
    labelNames: ['operation', 'code'] as const,
    registers: [registry],
  });
  // The writer's figures, read when scraped: counters from its statistics, gauges of its state now.
  const ledgerCounters: readonly (readonly [name: string, help: string, stat: keyof LedgerStats])[] = [
    ['carbonpay_ledger_batches_total', 'Group commits appended', 'batches'],
    ['carbonpay_ledger_commands_committed_total', 'Commands accepted and appended', 'commandsCommitted'],
    ['carbonpay_ledger_conflicts_total', 'Appends refused by optimistic concurrency', 'conflicts'],
    ['carbonpay_ledger_account_loads_total', 'Accounts read from the store', 'accountLoads'],
    ['carbonpay_ledger_transfer_loads_total', 'Transfers read from the store', 'transferLoads'],
    ['carbonpay_ledger_snapshots_written_total', 'Account snapshots written', 'snapshotsWritten'],
  ];
  for (const [name, help, stat] of ledgerCounters)
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(ledger.stats[stat]);
      },
    });
  const ledgerGauges: readonly (readonly [name: string, help: string, read: () => number])[] = [
    [
      'carbonpay_ledger_queue_depth',
      'Commands waiting for the writer to take them into a batch',
      () => ledger.load.queuedCommands,
    ],
    [
      'carbonpay_ledger_batches_in_flight',
      'Batches the writer is deciding or committing',
      () => ledger.load.batchesInFlight,
    ],
    [
      'carbonpay_ledger_commands_per_batch',
      'Mean commands per group commit since start',
      () => (ledger.stats.batches === 0 ? 0 : ledger.stats.commandsCommitted / ledger.stats.batches),
    ],
  ];
  for (const [name, help, read] of ledgerGauges)
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  new Gauge({
    name: 'carbonpay_projection_lag_seconds',
    help: 'Age of the last event the read models applied, 0 when caught up (set where this process leads)',
    registers: [registry],
    collect() {
      const status = runner?.status();
      if (status?.leader) this.set(status.lagMs / 1000);
    },
  });
  return { registry, requestSeconds, requestsInFlight, errors };
}
