import type { BillCollector, BillParseResult } from './bill-record';
import { MAX_BILL_LINE_BYTES } from './bill-record';

/**
 * Streaming input for every bill parser: bytes in any chunking → lines of bytes → the format's line parser.
 * Lines are split on the LF byte (an optional CR before it is dropped). That is safe for GBK as well as UTF-8:
 * GBK trail bytes are 0x40–0xFE, so 0x0A never occurs inside a character. Decoding is per line, so a chunk may end
 * anywhere, even inside a character.
 */

export interface BillLineParser {
  readonly collector: BillCollector;
  /** One physical line without its terminator; lineNo is 1-based. */
  acceptLine(bytes: Uint8Array, lineNo: number): void;
  /** End of input: file-level checks (summary present and equal to the parsed sums). */
  finish(): BillParseResult;
}

const LF = 0x0a;
const CR = 0x0d;

export class BillReader {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  private overlong = false;
  private lineNo = 0;
  private ended = false;

  constructor(private readonly parser: BillLineParser) {}

  push(chunk: Uint8Array | string): void {
    if (this.ended) throw new Error('assertion: push after end');
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(LF, start);
      if (newline < 0) break;
      this.appendCarry(bytes.subarray(start, newline));
      this.emitLine();
      start = newline + 1;
    }
    this.appendCarry(bytes.subarray(start));
  }

  end(): BillParseResult {
    if (this.ended) throw new Error('assertion: end called twice');
    // A last line without a newline is still a line; an empty tail after the final newline is not.
    if (this.carryBytes > 0 || this.overlong) this.emitLine();
    this.ended = true;
    return this.parser.finish();
  }

  private appendCarry(part: Uint8Array): void {
    if (part.length === 0 || this.overlong) return;
    if (this.carryBytes + part.length > MAX_BILL_LINE_BYTES) {
      // Keep no more of an over-long line than the bound; it is reported, not buffered without limit.
      this.overlong = true;
      this.carry = [];
      this.carryBytes = 0;
      return;
    }
    this.carry.push(part);
    this.carryBytes += part.length;
  }

  private emitLine(): void {
    this.lineNo += 1;
    const collector = this.parser.collector;
    const lineNo = this.lineNo;
    const overlong = this.overlong;
    let line = this.carry.length === 1 ? this.carry[0]! : Buffer.concat(this.carry, this.carryBytes);
    this.carry = [];
    this.carryBytes = 0;
    this.overlong = false;
    if (!collector.countLine()) return;
    if (overlong) {
      collector.reject([
        { line: lineNo, code: 'line_too_long', message: `line longer than ${MAX_BILL_LINE_BYTES} bytes` },
      ]);
      return;
    }
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    this.parser.acceptLine(line, lineNo);
  }
}

/** Parses a whole file held in memory (bytes as received, or a string for tests and our own UTF-8 files). */
export function parseBillWith(parser: BillLineParser, input: Uint8Array | string): BillParseResult {
  const reader = new BillReader(parser);
  reader.push(input);
  return reader.end();
}

/** Parses a stream of chunks (e.g. fs.createReadStream) without holding the file. */
export async function parseBillStream(
  parser: BillLineParser,
  source: AsyncIterable<Uint8Array | string>,
): Promise<BillParseResult> {
  const reader = new BillReader(parser);
  for await (const chunk of source) reader.push(chunk);
  return reader.end();
}

export type BillEncoding = 'utf-8' | 'gbk' | 'auto';

/**
 * Decodes one line at a time. 'auto' (for Alipay, GBK in practice but UTF-8 after a re-save) decides on the first
 * line with a non-ASCII byte: valid UTF-8 → UTF-8, otherwise GBK. A GBK line of Chinese text is practically never
 * valid UTF-8 (GBK lead bytes 0x81–0xFE are mostly followed by bytes that are not UTF-8 continuations). Decoding is
 * fatal: an invalid line is reported as bad_encoding, never decoded into replacement characters.
 */
export class LineDecoder {
  private decided: 'utf-8' | 'gbk' | null;
  private readonly decoders = {
    'utf-8': new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }),
    gbk: new TextDecoder('gbk', { fatal: true }),
  };

  constructor(encoding: BillEncoding) {
    this.decided = encoding === 'auto' ? null : encoding;
  }

  get encoding(): 'utf-8' | 'gbk' | null {
    return this.decided;
  }

  decode(bytes: Uint8Array): { ok: true; text: string } | { ok: false; message: string } {
    if (this.decided === null) {
      if (isAscii(bytes)) return { ok: true, text: Buffer.from(bytes).toString('latin1') };
      this.decided = this.tryDecode('utf-8', bytes) === null ? 'gbk' : 'utf-8';
    }
    const text = this.tryDecode(this.decided, bytes);
    if (text === null) return { ok: false, message: `line is not valid ${this.decided}` };
    return { ok: true, text };
  }

  private tryDecode(encoding: 'utf-8' | 'gbk', bytes: Uint8Array): string | null {
    try {
      return this.decoders[encoding].decode(bytes);
    } catch {
      return null;
    }
  }
}

function isAscii(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte > 0x7f) return false;
  return true;
}
