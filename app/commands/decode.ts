import { decodeCode } from '../../core-ledger';
import type { DecodedCode } from '../../core-ledger';
import type { Io } from './io';

const USAGE_ERROR = 'expected exactly one argument: <card number|account id>';

/**
 * `carbonpay decode <card number|account id>`: the code's parts on stdout and 0; a malformed code gives 2 and one line
 * on stderr. A card number with a wrong Luhn digit is malformed too, but its parts are still shown so the reader sees
 * which digit was expected.
 */
export function runDecode(args: readonly string[], io: Io): number {
  const [code] = args;
  if (args.length !== 1 || code === undefined) return fail(io, USAGE_ERROR);
  const decoded = decodeCode(code);
  if (!decoded.ok) return fail(io, decoded.reason);
  describeCode(decoded.value).forEach((line) => io.stdout(line));
  if (decoded.value.kind === 'card_number' && !decoded.value.checkDigitValid) {
    const { expectedCheckDigit, checkDigit } = decoded.value;
    return fail(io, `bad Luhn check digit: expected ${expectedCheckDigit}, got ${checkDigit}`);
  }
  return 0;
}

function fail(io: Io, reason: string): number {
  io.stderr(`carbonpay decode: ${reason}`);
  return 2;
}

function describeCode(code: DecodedCode): string[] {
  if (code.kind === 'account_id') {
    return [
      'kind: account id',
      `class: ${code.customerClass} (${code.customerClassName})`,
      `type: ${code.accountType} (${code.accountTypeName})`,
      `area: ${code.area}`,
      `sequence: ${code.sequence}`,
    ];
  }
  return [
    'kind: card number',
    `class: ${code.customerClass} (${code.customerClassName})`,
    `card level: ${code.cardLevel}`,
    `area: ${code.area}`,
    `sequence: ${code.sequence}`,
    code.checkDigitValid
      ? `check digit: ${code.checkDigit} (valid)`
      : `check digit: invalid (expected ${code.expectedCheckDigit})`,
  ];
}
