import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Operator passwords: scrypt (RFC 7914, a standard memory-hard KDF) with a random salt per hash, stored as
 * `scrypt$N$r$p$salt$hash` (base64) so parameters can be raised without breaking old hashes.
 */
const SCRYPT = { N: 16_384, r: 8, p: 1, keyBytes: 32, saltBytes: 16, maxmem: 64 * 1024 * 1024 } as const;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const hash = await derive(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyBytes);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, saltText, hashText] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !saltText || !hashText) return false;
  const expected = Buffer.from(hashText, 'base64');
  const actual = await derive(
    password,
    Buffer.from(saltText, 'base64'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, keyBytes, { N, r, p, maxmem: SCRYPT.maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** A hash to compare against when the user does not exist, so a missing user costs the same time as a wrong password. */
export const DUMMY_PASSWORD_HASH =
  'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

/**
 * Operator password rules (T19 for system users; T4's character rules): 10–64 characters, at least three of lower
 * case, upper case, digits and specials; never `-`, space, `"` or `$` (T4's excluded characters); not one of the
 * last 20 (checked by the caller against the history).
 */
export const PASSWORD_POLICY = {
  minLength: 10,
  maxLength: 64,
  minClasses: 3,
  excluded: ['-', ' ', '"', '$'],
  historyDepth: 20,
} as const;

export function passwordPolicyProblem(password: string): string | undefined {
  if (password.length < PASSWORD_POLICY.minLength || password.length > PASSWORD_POLICY.maxLength)
    return `a password has ${PASSWORD_POLICY.minLength}–${PASSWORD_POLICY.maxLength} characters`;
  const excluded = PASSWORD_POLICY.excluded.find((c) => password.includes(c));
  if (excluded !== undefined) return `a password may not contain ${JSON.stringify(excluded)}`;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((pattern) => pattern.test(password)).length;
  if (classes < PASSWORD_POLICY.minClasses)
    return 'a password mixes at least three of: lower case, upper case, digits, other characters';
  return undefined;
}
