/** Where a CLI command writes: one line at a time, results on stdout, problems on stderr. */
export interface Io {
  stdout(line: string): void;
  stderr(line: string): void;
}
