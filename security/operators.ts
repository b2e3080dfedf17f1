import { createHash, randomBytes } from 'node:crypto';
import * as OTPAuth from 'otpauth';
import { DUMMY_PASSWORD_HASH, hashPassword, PASSWORD_POLICY, passwordPolicyProblem, verifyPassword } from './passwords';
import type { Role } from './permissions';
import { isRole } from './permissions';

/** The SQL the directory needs: PostgreSQL or PGlite, one statement per call. */
export interface SecurityDatabase {
  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

/** Bounds of operator sessions and logins (C11, C12, T19, T20); every figure configurable. */
export interface OperatorPolicy {
  readonly maxFailedLogins: number;
  readonly lockoutMs: number;
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  /** Password age after which login answers `password_expired` (T19: 2 months for system users, 6 for operators). */
  readonly passwordMaxAgeMs: Readonly<Partial<Record<Role, number>>> & { readonly default: number };
  /** Roles that must give a TOTP code (T20: administrators). */
  readonly totpRoles: readonly Role[];
}

const DAY_MS = 86_400_000;

export const DEFAULT_OPERATOR_POLICY: OperatorPolicy = {
  maxFailedLogins: 5,
  lockoutMs: 15 * 60_000,
  idleTimeoutMs: 15 * 60_000,
  absoluteTimeoutMs: 8 * 3_600_000,
  passwordMaxAgeMs: { administrator: 61 * DAY_MS, default: 183 * DAY_MS },
  totpRoles: ['administrator'],
};

export type LoginRefusal =
  | 'invalid_credentials'
  | 'account_locked'
  | 'totp_required'
  | 'password_expired'
  | 'session_expired'
  | 'password_rejected';

export class AuthenticationError extends Error {
  constructor(
    readonly reason: LoginRefusal,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

export interface OperatorPrincipal {
  readonly operatorId: string;
  readonly username: string;
  readonly role: Role;
}

export interface Session {
  readonly token: string;
  readonly principal: OperatorPrincipal;
  readonly idleExpiresAt: Date;
  readonly absoluteExpiresAt: Date;
}

export const OPERATORS_SQL = [
  `CREATE TABLE IF NOT EXISTS cp_operators (
     operator_id text PRIMARY KEY,
     username text NOT NULL UNIQUE,
     role text NOT NULL,
     password_hash text NOT NULL,
     password_history jsonb NOT NULL DEFAULT '[]',
     password_changed_at timestamptz NOT NULL,
     totp_secret text,
     totp_last_step bigint NOT NULL DEFAULT -1,
     failed_logins integer NOT NULL DEFAULT 0,
     locked_until timestamptz,
     created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS cp_operator_sessions (
     token_hash text PRIMARY KEY,
     operator_id text NOT NULL REFERENCES cp_operators (operator_id),
     created_at timestamptz NOT NULL,
     last_seen_at timestamptz NOT NULL,
     ended_at timestamptz)`,
];

interface OperatorRow {
  operator_id: string;
  username: string;
  role: string;
  password_hash: string;
  password_history: string[];
  password_changed_at: string | Date;
  totp_secret: string | null;
  totp_last_step: string | number;
  failed_logins: number;
  locked_until: string | Date | null;
}

const TOTP_PERIOD_SECONDS = 30;
/** Session rows are touched at most this often, so an active console does not write on every request. */
const LAST_SEEN_RESOLUTION_MS = 30_000;

/** Operators, their logins and sessions. Tokens are random; the database keeps only their SHA-256. */
export class OperatorDirectory {
  constructor(
    private readonly db: SecurityDatabase,
    private readonly policy: OperatorPolicy = DEFAULT_OPERATOR_POLICY,
  ) {}

  async install(): Promise<void> {
    for (const statement of OPERATORS_SQL) await this.db.query(statement);
  }

  /** Creates an operator; administrators get a TOTP secret (base32) to enrol in an authenticator app. */
  async create(input: {
    username: string;
    role: Role;
    password: string;
    now: Date;
  }): Promise<{ operatorId: string; totpSecret: string | null }> {
    const problem = passwordPolicyProblem(input.password);
    if (problem) throw new AuthenticationError('password_rejected', problem);
    const operatorId = `op-${randomBytes(9).toString('base64url')}`;
    const totpSecret = this.policy.totpRoles.includes(input.role) ? new OTPAuth.Secret({ size: 20 }).base32 : null;
    const hash = await hashPassword(input.password);
    await this.db.query(
      `INSERT INTO cp_operators (operator_id, username, role, password_hash, password_history, password_changed_at, totp_secret)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)`,
      [operatorId, input.username, input.role, hash, JSON.stringify([hash]), input.now.toISOString(), totpSecret],
    );
    return { operatorId, totpSecret };
  }

  async login(input: { username: string; password: string; totp?: string; now: Date }): Promise<Session> {
    const row = (
      await this.db.query<OperatorRow>('SELECT * FROM cp_operators WHERE username = $1', [input.username])
    )[0];
    if (!row) {
      await verifyPassword(input.password, DUMMY_PASSWORD_HASH);
      throw new AuthenticationError('invalid_credentials', 'unknown user or wrong password');
    }
    const now = input.now.getTime();
    const lockedUntil = row.locked_until === null ? 0 : new Date(row.locked_until).getTime();
    if (lockedUntil > now) {
      throw new AuthenticationError('account_locked', 'too many failed logins; try again later', lockedUntil - now);
    }
    const role = roleOf(row);
    let secondFactorStep: number | undefined;
    const passwordOk = await verifyPassword(input.password, row.password_hash);
    if (passwordOk && this.policy.totpRoles.includes(role)) {
      if (input.totp === undefined) throw new AuthenticationError('totp_required', 'this role needs a TOTP code');
      secondFactorStep = this.totpStep(row, input.totp, now);
    }
    if (!passwordOk || (secondFactorStep === undefined && this.policy.totpRoles.includes(role))) {
      await this.recordFailure(row, now);
      throw new AuthenticationError('invalid_credentials', 'unknown user or wrong password');
    }
    await this.db.query(
      `UPDATE cp_operators SET failed_logins = 0, locked_until = NULL, totp_last_step = greatest(totp_last_step, $2) WHERE operator_id = $1`,
      [row.operator_id, secondFactorStep ?? -1],
    );
    const maxAge = this.policy.passwordMaxAgeMs[role] ?? this.policy.passwordMaxAgeMs.default;
    if (now - new Date(row.password_changed_at).getTime() > maxAge) {
      throw new AuthenticationError('password_expired', 'the password is older than the rotation period; change it');
    }
    const token = randomBytes(32).toString('base64url');
    await this.db.query(
      'INSERT INTO cp_operator_sessions (token_hash, operator_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)',
      [tokenHash(token), row.operator_id, input.now.toISOString()],
    );
    return {
      token,
      principal: { operatorId: row.operator_id, username: row.username, role },
      idleExpiresAt: new Date(now + this.policy.idleTimeoutMs),
      absoluteExpiresAt: new Date(now + this.policy.absoluteTimeoutMs),
    };
  }

  /** The operator behind a bearer token, or a refusal: unknown, logged out, idle too long, or older than 8 hours. */
  async authenticate(token: string, nowDate: Date): Promise<OperatorPrincipal> {
    const now = nowDate.getTime();
    const row = (
      await this.db.query<{
        operator_id: string;
        username: string;
        role: string;
        created_at: string | Date;
        last_seen_at: string | Date;
        ended_at: string | Date | null;
      }>(
        `SELECT s.operator_id, o.username, o.role, s.created_at, s.last_seen_at, s.ended_at
           FROM cp_operator_sessions s JOIN cp_operators o USING (operator_id) WHERE s.token_hash = $1`,
        [tokenHash(token)],
      )
    )[0];
    if (!row || row.ended_at !== null) throw new AuthenticationError('session_expired', 'no such session; log in');
    const lastSeen = new Date(row.last_seen_at).getTime();
    if (now - lastSeen > this.policy.idleTimeoutMs)
      throw new AuthenticationError('session_expired', 'the session was idle too long; log in again');
    if (now - new Date(row.created_at).getTime() > this.policy.absoluteTimeoutMs)
      throw new AuthenticationError('session_expired', 'the session reached its maximum length; log in again');
    if (now - lastSeen > LAST_SEEN_RESOLUTION_MS) {
      await this.db.query('UPDATE cp_operator_sessions SET last_seen_at = $2 WHERE token_hash = $1', [
        tokenHash(token),
        nowDate.toISOString(),
      ]);
    }
    return { operatorId: row.operator_id, username: row.username, role: roleOf(row) };
  }

  async logout(token: string, now: Date): Promise<void> {
    await this.db.query('UPDATE cp_operator_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL', [
      tokenHash(token),
      now.toISOString(),
    ]);
  }

  /** Changes a password: the current one must be right, the new one must follow the rules and not be one of the last 20. */
  async changePassword(input: { username: string; current: string; next: string; now: Date }): Promise<void> {
    const row = (
      await this.db.query<OperatorRow>('SELECT * FROM cp_operators WHERE username = $1', [input.username])
    )[0];
    if (!row || !(await verifyPassword(input.current, row.password_hash)))
      throw new AuthenticationError('invalid_credentials', 'unknown user or wrong password');
    const problem = passwordPolicyProblem(input.next);
    if (problem) throw new AuthenticationError('password_rejected', problem);
    for (const old of row.password_history.slice(-PASSWORD_POLICY.historyDepth)) {
      if (await verifyPassword(input.next, old))
        throw new AuthenticationError(
          'password_rejected',
          `a password may not repeat one of the last ${PASSWORD_POLICY.historyDepth}`,
        );
    }
    const hash = await hashPassword(input.next);
    const history = [...row.password_history, hash].slice(-PASSWORD_POLICY.historyDepth);
    await this.db.query(
      'UPDATE cp_operators SET password_hash = $2, password_history = $3::jsonb, password_changed_at = $4 WHERE operator_id = $1',
      [row.operator_id, hash, JSON.stringify(history), input.now.toISOString()],
    );
  }

  /** The TOTP step a code matches (±1 step), refusing a step already used (a code works once). */
  private totpStep(row: OperatorRow, code: string, now: number): number | undefined {
    if (!row.totp_secret || !/^\d{6}$/.test(code)) return undefined;
    const totp = new OTPAuth.TOTP({
      algorithm: 'SHA1',
      digits: 6,
      period: TOTP_PERIOD_SECONDS,
      secret: OTPAuth.Secret.fromBase32(row.totp_secret),
    });
    const delta = totp.validate({ token: code, timestamp: now, window: 1 });
    if (delta === null) return undefined;
    const step = Math.floor(now / 1000 / TOTP_PERIOD_SECONDS) + delta;
    return step > Number(row.totp_last_step) ? step : undefined;
  }

  private async recordFailure(row: OperatorRow, now: number): Promise<void> {
    // One statement: concurrent failures all count, the lock starts on the failure that reaches the limit, and a
    // lock that has run out starts the count again.
    await this.db.query(
      `UPDATE cp_operators
          SET failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $4 THEN 1 ELSE failed_logins + 1 END,
              locked_until = CASE
                WHEN locked_until IS NOT NULL AND locked_until <= $4 THEN NULL
                WHEN failed_logins + 1 >= $2 THEN $3::timestamptz
                ELSE locked_until END
        WHERE operator_id = $1`,
      [
        row.operator_id,
        this.policy.maxFailedLogins,
        new Date(now + this.policy.lockoutMs).toISOString(),
        new Date(now).toISOString(),
      ],
    );
  }
}

/** The code an authenticator app shows now; for tests and the console's enrolment check. */
export function totpCodeOf(secretBase32: string, at: Date): string {
  return new OTPAuth.TOTP({
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_SECONDS,
    secret: OTPAuth.Secret.fromBase32(secretBase32),
  }).generate({ timestamp: at.getTime() });
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function roleOf(row: { role: string }): Role {
  if (!isRole(row.role)) throw new Error(`operator has unknown role ${row.role}`);
  return row.role;
}
