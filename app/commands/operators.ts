import type { Role } from '../../security';
import { AuthenticationError, isRole, OperatorDirectory, ROLES } from '../../security';
import type { Io } from './io';

const USAGE = `carbonpay operators add --username <name> --role <${ROLES.join('|')}>  (password from CARBONPAY_OPERATOR_PASSWORD)`;

/**
 * `carbonpay operators add`: creates an operator of the console. The password comes from the environment, never from
 * the command line (visible to every user in the process list); an administrator's TOTP secret is printed once, to be
 * enrolled in an authenticator app.
 */
export async function runOperators(
  args: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  openDirectory: () => Promise<{ directory: OperatorDirectory; close(): Promise<void> }>,
): Promise<number> {
  const [action, ...rest] = args;
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i]!;
    const value = rest[i + 1];
    if (!['--username', '--role'].includes(name) || value === undefined) {
      io.stderr(`carbonpay: usage: ${USAGE}`);
      return 2;
    }
    options.set(name, value);
  }
  const username = options.get('--username');
  const role = options.get('--role');
  if (action !== 'add' || username === undefined || role === undefined) {
    io.stderr(`carbonpay: usage: ${USAGE}`);
    return 2;
  }
  if (!isRole(role)) {
    io.stderr(`carbonpay: operators add: unknown role ${JSON.stringify(role)}; one of ${ROLES.join(', ')}`);
    return 2;
  }
  const password = env['CARBONPAY_OPERATOR_PASSWORD'];
  if (password === undefined || password === '') {
    io.stderr('carbonpay: operators add: set CARBONPAY_OPERATOR_PASSWORD (never pass a password as an argument)');
    return 2;
  }
  const { directory, close } = await openDirectory();
  try {
    const created = await directory.create({ username, role: role as Role, password, now: new Date() });
    io.stdout(`operator ${created.operatorId} (${username}, ${role}) created`);
    if (created.totpSecret) {
      io.stdout(`TOTP secret (enrol it now; it is not shown again): ${created.totpSecret}`);
      io.stdout(
        `otpauth://totp/carbonpay:${encodeURIComponent(username)}?secret=${created.totpSecret}&issuer=carbonpay&digits=6&period=30`,
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof AuthenticationError) {
      io.stderr(`carbonpay: operators add: ${error.message}`);
      return 2;
    }
    if ((error as { code?: string }).code === '23505') {
      io.stderr(`carbonpay: operators add: ${username} exists`);
      return 2;
    }
    throw error;
  } finally {
    await close();
  }
}
