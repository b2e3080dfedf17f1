import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const COMPILED = __filename.endsWith('.js');
/** Where the scripts are: the repository from source (bench/), dist/ when compiled (dist/bench/). */
const SCRIPTS_ROOT = join(__dirname, '..');
const REPOSITORY_ROOT = COMPILED ? join(SCRIPTS_ROOT, '..') : SCRIPTS_ROOT;

/**
 * Node's flags for a process that runs the ledger, as `npm start` gives them (package.json's `start`, read from there
 * so the two cannot drift apart; docs/operations.md says why). The bench's ledger processes run with them.
 */
export const LEDGER_NODE_FLAGS: readonly string[] = ledgerNodeFlags();

function ledgerNodeFlags(): string[] {
  const manifest = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const start = manifest.scripts['start'] ?? '';
  const words = start.split(/\s+/);
  if (words[0] !== 'node') throw new Error(`assertion: package.json's start runs node, not "${start}"`);
  return words.slice(1).filter((word) => word.startsWith('--'));
}

/**
 * Node's arguments to run one of the repository's scripts (named without extension, e.g. `app/cli`) in a child
 * process the way this one runs: compiled JavaScript when the bench runs compiled (`npm run bench`, what ships), else
 * through ts-node from the source. The TypeScript compiler ts-node keeps loaded is ~40 MB of live heap that every
 * major collection marks; the processes measured must not carry it.
 */
export function nodeArgsFor(script: string, flags: readonly string[] = []): string[] {
  return COMPILED
    ? [...flags, join(SCRIPTS_ROOT, `${script}.js`)]
    : [...flags, '-r', 'ts-node/register/transpile-only', join(SCRIPTS_ROOT, `${script}.ts`)];
}
