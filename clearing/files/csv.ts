/**
 * RFC 4180 CSV, the two halves we need: splitting one physical line (bills never put a newline inside a field) and
 * writing one field.
 */

/** Splits a line into fields; null when a quoted field is not closed or text follows a closing quote. */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let index = 0;
  for (;;) {
    if (line[index] === '"') {
      let value = '';
      index += 1;
      for (;;) {
        const quote = line.indexOf('"', index);
        if (quote < 0) return null;
        value += line.slice(index, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          index = quote + 2;
          continue;
        }
        index = quote + 1;
        break;
      }
      fields.push(value);
      if (index === line.length) return fields;
      if (line[index] !== ',') return null;
      index += 1;
    } else {
      const comma = line.indexOf(',', index);
      if (comma < 0) {
        fields.push(line.slice(index));
        return fields;
      }
      fields.push(line.slice(index, comma));
      index = comma + 1;
    }
  }
}

/** Quotes a field when it holds a comma, a quote or leading/trailing space; CR and LF are refused by callers. */
export function csvField(value: string): string {
  if (/[",]/.test(value) || value !== value.trim()) return `"${value.replace(/"/g, '""')}"`;
  return value;
}

/** Control characters (CR, LF, TAB, NUL…) never belong in a field of a file we write. */
export function hasControlCharacter(value: string): boolean {
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
