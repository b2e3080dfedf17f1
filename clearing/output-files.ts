import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SqlQueryable } from '../projections';
import type { ManifestFile } from './files/sm3-manifest';
import { sm3Hex, writeSm3Manifest } from './files/sm3-manifest';
import type { StepName } from './run-gate';

/**
 * Files a step writes: into `<outputDir>/<date>/<step>[-<scope>]/`, each through a temporary name and a rename (a
 * reader never sees half a file), with `MANIFEST.sm3` listing them (kept ≥ 10 years with the files, notes §5). The
 * first run records every file's SM3 in cp_clearing_files; a rerun writes the files again from the stored rows and
 * must produce the same bytes — a difference is a bug (or a tampered table), never silently overwritten.
 */

export const MANIFEST_NAME = 'MANIFEST.sm3';

export interface WrittenFile {
  readonly name: string;
  readonly path: string;
  readonly sm3: string;
  readonly size: number;
}

export class FileDriftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileDriftError';
  }
}

export function stepDirectory(outputDir: string, step: StepName, scope: string, businessDate: string): string {
  return join(outputDir, businessDate, scope === '*' ? step : `${step}-${scope}`);
}

export async function writeStepFiles(
  db: SqlQueryable,
  outputDir: string,
  step: StepName,
  scope: string,
  businessDate: string,
  files: readonly ManifestFile[],
): Promise<{ directory: string; files: WrittenFile[] }> {
  const all = [...files, { name: MANIFEST_NAME, bytes: writeSm3Manifest(files) }];
  const stored = await db.query<{ name: string; sm3: string; size_bytes: string }>(
    'SELECT name, sm3, size_bytes::text FROM cp_clearing_files WHERE step = $1 AND scope = $2 AND business_date = $3',
    [step, scope, businessDate],
  );
  if (stored.length > 0) {
    const byName = new Map(stored.map((row) => [row.name, row]));
    const drift = all
      .filter((file) => byName.get(file.name)?.sm3 !== sm3Hex(file.bytes))
      .map((f) => f.name)
      .concat(stored.filter((row) => !all.some((file) => file.name === row.name)).map((row) => row.name));
    if (drift.length > 0)
      throw new FileDriftError(
        `${step} ${businessDate}: files differ from the first run's (${drift.join(', ')}); the stored rows changed`,
      );
  } else {
    await db.query(
      `INSERT INTO cp_clearing_files (step, scope, business_date, name, sm3, size_bytes)
       SELECT $1, $2, $3, * FROM unnest($4::text[], $5::text[], $6::bigint[]) ON CONFLICT DO NOTHING`,
      [
        step,
        scope,
        businessDate,
        all.map((f) => f.name),
        all.map((f) => sm3Hex(f.bytes)),
        all.map((f) => String(f.bytes.length)),
      ],
    );
  }
  const directory = stepDirectory(outputDir, step, scope, businessDate);
  mkdirSync(directory, { recursive: true });
  const written = all.map((file) => {
    const path = join(directory, file.name);
    writeFileSync(`${path}.part`, file.bytes);
    renameSync(`${path}.part`, path);
    return { name: file.name, path, sm3: sm3Hex(file.bytes), size: file.bytes.length };
  });
  return { directory, files: written };
}
