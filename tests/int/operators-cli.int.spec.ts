import { PGlite } from '@electric-sql/pglite';
import { runOperators } from '../../app';
import { PgliteReadModels } from '../../projections';
import { OperatorDirectory, totpCodeOf } from '../../security';

/** `carbonpay operators add` on PGlite: creates, prints the TOTP secret once, refuses bad usage with exit 2. */
test('operators add: created operators can log in; bad usage, weak passwords and duplicates exit 2', async () => {
  const pglite = await PGlite.create();
  const directory = new OperatorDirectory(new PgliteReadModels(pglite));
  await directory.install();
  const open = async (): Promise<{ directory: OperatorDirectory; close(): Promise<void> }> => ({
    directory,
    close: async () => undefined,
  });
  const run = async (args: string[], password?: string): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const env = password === undefined ? {} : { CARBONPAY_OPERATOR_PASSWORD: password };
    const code = await runOperators(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, env, open);
    return { code, out, err };
  };
  try {
    const admin = await run(['add', '--username', 'ada', '--role', 'administrator'], 'Root_Of_Trust9');
    expect(admin.code).toBe(0);
    const secret = /TOTP secret .*: ([A-Z2-7]+)$/.exec(admin.out[1]!)![1]!;
    const now = new Date();
    const session = await directory.login({
      username: 'ada',
      password: 'Root_Of_Trust9',
      totp: totpCodeOf(secret, now),
      now,
    });
    expect(session.principal.role).toBe('administrator');
    const auditor = await run(['add', '--username', 'ivan', '--role', 'auditor'], 'Audit_Trail7');
    expect([auditor.code, auditor.out.length]).toEqual([0, 1]); // no TOTP for auditors
    for (const [args, password, message] of [
      [['add', '--username', 'ada', '--role', 'administrator'], 'Root_Of_Trust9', /exists/],
      [['add', '--username', 'bob', '--role', 'king'], 'Root_Of_Trust9', /unknown role/],
      [['add', '--username', 'bob', '--role', 'operator'], 'weak', /10–64/],
      [['add', '--username', 'bob', '--role', 'operator'], undefined, /CARBONPAY_OPERATOR_PASSWORD/],
      [['add', '--username', 'bob'], 'Root_Of_Trust9', /usage/],
      [['remove', '--username', 'bob', '--role', 'operator'], 'Root_Of_Trust9', /usage/],
    ] as const) {
      const answer = await run([...args], password);
      expect([answer.code, answer.out, answer.err.length]).toEqual([2, [], 1]);
      expect(answer.err[0]).toMatch(message);
    }
  } finally {
    await pglite.close();
  }
});
