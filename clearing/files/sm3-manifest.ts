import { createHash } from 'node:crypto';
import { hasControlCharacter } from './csv';

/**
 * An SM3 manifest for a set of files (imported channel bills, reports, bank files kept for ≥ 10 years, notes §5).
 * One line per file, sorted by name: `<sm3 hex>  <bytes>  <file name>` (two spaces, like sha256sum plus a size),
 * LF-terminated. SM3 comes from node:crypto (OpenSSL), spelled out at the call site.
 */

export interface ManifestFile {
  /** A plain file name (no directory separators, no control characters). */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface ManifestEntry {
  readonly sm3: string;
  readonly size: number;
  readonly name: string;
}

export const MAX_MANIFEST_FILES = 100_000;
const MANIFEST_LINE = /^([0-9a-f]{64}) {2}(\d{1,15}) {2}(.+)$/;

export function sm3Hex(bytes: Uint8Array): string {
  return createHash('sm3').update(bytes).digest('hex');
}

function checkName(name: string): string | null {
  if (name === '' || name !== name.trim()) return `file name ${JSON.stringify(name)} is empty or padded`;
  if (hasControlCharacter(name) || /[/\\]/.test(name))
    return `file name ${JSON.stringify(name)} has a separator or control`;
  return null;
}

export function writeSm3Manifest(files: readonly ManifestFile[]): Buffer {
  if (files.length > MAX_MANIFEST_FILES) throw new RangeError(`more than ${MAX_MANIFEST_FILES} files`);
  const names = new Set<string>();
  for (const file of files) {
    const problem = checkName(file.name);
    if (problem) throw new RangeError(problem);
    if (names.has(file.name)) throw new RangeError(`file ${JSON.stringify(file.name)} listed twice`);
    names.add(file.name);
  }
  const lines = [...files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((file) => `${sm3Hex(file.bytes)}  ${file.bytes.length}  ${file.name}\n`);
  return Buffer.from(lines.join(''), 'utf8');
}

export type ManifestProblem =
  | { readonly kind: 'malformed_line'; readonly line: number }
  | { readonly kind: 'duplicate_entry'; readonly name: string }
  | { readonly kind: 'missing_file'; readonly name: string }
  | { readonly kind: 'size_mismatch'; readonly name: string; readonly expected: number; readonly actual: number }
  | { readonly kind: 'hash_mismatch'; readonly name: string }
  | { readonly kind: 'unlisted_file'; readonly name: string };

export function parseSm3Manifest(manifest: Uint8Array): { entries: ManifestEntry[]; problems: ManifestProblem[] } {
  const text = Buffer.from(manifest).toString('utf8');
  const entries: ManifestEntry[] = [];
  const problems: ManifestProblem[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else problems.push({ kind: 'malformed_line', line: lines.length });
  lines.forEach((line, index) => {
    const match = MANIFEST_LINE.exec(line);
    if (!match) problems.push({ kind: 'malformed_line', line: index + 1 });
    else entries.push({ sm3: match[1]!, size: Number(match[2]), name: match[3]! });
  });
  return { entries, problems };
}

/** Checks every file against the manifest; files present but not listed are reported too. */
export function verifySm3Manifest(
  manifest: Uint8Array,
  files: readonly ManifestFile[],
): { ok: boolean; problems: ManifestProblem[] } {
  const { entries, problems } = parseSm3Manifest(manifest);
  const byName = new Map(files.map((file) => [file.name, file]));
  const listed = new Set<string>();
  for (const entry of entries) {
    if (listed.has(entry.name)) problems.push({ kind: 'duplicate_entry', name: entry.name });
    listed.add(entry.name);
    const file = byName.get(entry.name);
    if (!file) problems.push({ kind: 'missing_file', name: entry.name });
    else if (file.bytes.length !== entry.size) {
      problems.push({ kind: 'size_mismatch', name: entry.name, expected: entry.size, actual: file.bytes.length });
    } else if (sm3Hex(file.bytes) !== entry.sm3) problems.push({ kind: 'hash_mismatch', name: entry.name });
  }
  for (const file of files) if (!listed.has(file.name)) problems.push({ kind: 'unlisted_file', name: file.name });
  return { ok: problems.length === 0, problems };
}
