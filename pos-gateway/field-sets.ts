/**
 * Reading the per-message field sets of spec.ts: which transaction a request is, and whether a message carries the
 * fields its set requires. The tables decide; this file only looks them up.
 */
import type { PosMessage } from './codec';
import { MESSAGE_FIELD_SETS, type MessageFieldSet } from './spec';

/** 0200 → 0210, 0800 → 0810 …; undefined when the MTI is not a request (its function digit is odd). */
export function responseMtiOf(requestMti: string): string | undefined {
  if (!/^[0-9]{4}$/.test(requestMti)) return undefined;
  const functionDigit = Number(requestMti[2]);
  if (functionDigit % 2 !== 0) return undefined;
  return `${requestMti.slice(0, 2)}${functionDigit + 1}${requestMti[3]}`;
}

/** The field set a request belongs to: by MTI, then field 3, then 60.1 (research §1.3 transaction matrix). */
export function identifyTransaction(request: PosMessage): MessageFieldSet | undefined {
  const processingCode = asText(request.fields[3]);
  const transactionTypeCode = asText(request.fields[60])?.slice(0, 2);
  return MESSAGE_FIELD_SETS.find(
    (set) =>
      set.requestMti === request.mti &&
      (set.processingCode === undefined || set.processingCode === processingCode) &&
      (set.transactionTypeCode === undefined || set.transactionTypeCode === transactionTypeCode),
  );
}

export interface FieldSetCheck {
  readonly missing: readonly number[];
  /** Present but neither mandatory nor conditional for this message. */
  readonly unexpected: readonly number[];
}

export function checkFieldSet(
  message: PosMessage,
  set: MessageFieldSet,
  direction: 'request' | 'response',
): FieldSetCheck {
  const { mandatory, conditional } = set[direction];
  const present = Object.keys(message.fields)
    .map(Number)
    .filter((n) => message.fields[n] !== undefined);
  return {
    missing: mandatory.filter((n) => message.fields[n] === undefined),
    unexpected: present.filter((n) => !mandatory.includes(n) && !conditional.includes(n)),
  };
}

function asText(value: string | Buffer | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
