import { runDecode } from './commands/decode';
import { ConfigError, CONFIG_VARIABLES, loadConfig } from './config';
import { openEventStore, startLedger, startReadModels } from './platform';
import { createApp, listen } from './server';

const USAGE = [
  'usage: carbonpay <command> [arguments]',
  '  serve                         run the platform (HTTP on HOST:PORT)',
  '  decode <card number|account>  explain a T6 card number or T7 account id',
  '  help                          this text and the configuration variables',
];

interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

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

async function serve(io: Io): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`carbonpay: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const store = await openEventStore(config);
  const ledger = await startLedger(store, config);
  const readModels = await startReadModels(config, store);
  const server = await listen(createApp(ledger, store, readModels), config.host, config.port);
  io.stdout(`carbonpay listening on http://${config.host}:${config.port} (event store: ${store.name})`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      io.stdout('carbonpay: shutting down, draining in-flight requests');
      server.close(() => resolve());
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await ledger.close();
  await readModels.close();
  await store.close();
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
