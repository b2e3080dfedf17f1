/**
 * Masking of personal data (C App. B) as data: what each kind keeps, and how many stars stand for the rest. The star
 * counts follow the examples of App. B and do not depend on the value's length, so a masked value says nothing about
 * how long the original was.
 */
export type PersonalDataKind =
  'chinese_name' | 'citizen_id' | 'landline' | 'mobile' | 'address' | 'email' | 'bank_card' | 'bank_joint_number';

interface MaskingRule {
  readonly keepFirst: number;
  readonly keepLast: number;
  readonly stars: number;
}

export const MASKING_RULES: Readonly<Record<Exclude<PersonalDataKind, 'email'>, MaskingRule>> = {
  chinese_name: { keepFirst: 1, keepLast: 0, stars: 2 }, // 李**
  citizen_id: { keepFirst: 1, keepLast: 1, stars: 5 }, // 3*****8
  landline: { keepFirst: 0, keepLast: 4, stars: 4 }, // ****1234
  mobile: { keepFirst: 1, keepLast: 2, stars: 5 }, // 1*****34
  address: { keepFirst: 6, keepLast: 0, stars: 4 }, // 抚州市临川区****
  bank_card: { keepFirst: 6, keepLast: 4, stars: 5 }, // 622260*****1234
  bank_joint_number: { keepFirst: 2, keepLast: 0, stars: 5 }, // 12*****
};

/** e-mail: the first character of the local part, two stars, then `@` and the domain (g**@163.com). */
const EMAIL_STARS = 2;

export function mask(kind: PersonalDataKind, value: string): string {
  // Code points, not UTF-16 units: a name's first character may lie outside the BMP.
  const characters = [...value];
  if (kind === 'email') {
    const at = value.lastIndexOf('@');
    if (at <= 0) return '*'.repeat(EMAIL_STARS);
    return `${[...value.slice(0, at)][0]!}${'*'.repeat(EMAIL_STARS)}${value.slice(at)}`;
  }
  const rule = MASKING_RULES[kind];
  // A value too short to keep both ends keeps nothing: never reveal more than the rule would.
  if (characters.length <= rule.keepFirst + rule.keepLast) return '*'.repeat(rule.stars);
  const first = characters.slice(0, rule.keepFirst).join('');
  const last = rule.keepLast === 0 ? '' : characters.slice(-rule.keepLast).join('');
  return `${first}${'*'.repeat(rule.stars)}${last}`;
}

/** An account number of T5 is a mobile number (11 digits starting with 1) or a fixed line; masked by its kind. */
export function maskAccountNumber(accountNumber: string): string {
  return mask(/^1\d{10}$/.test(accountNumber) ? 'mobile' : 'landline', accountNumber);
}
