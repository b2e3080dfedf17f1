import { PGlite } from '@electric-sql/pglite';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKeys } from '../../app';
import { PgliteReadModels } from '../../projections';
import { DataKeyRing, readMasterKey, Sm2PrivateKey } from '../../security';

/** `carbonpay keys`: a master key file, data key rotation that keeps history readable, bad usage exit 2. */
test('new-master writes a private key file once; rotate-data-key seals with a new key and opens the old', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'carbonpay-keys-'));
  const pglite = await PGlite.create();
  const database = new PgliteReadModels(pglite);
  const open = async (): Promise<{ database: PgliteReadModels; close(): Promise<void> }> => ({
    database,
    close: async () => undefined,
  });
  const run = async (
    args: string[],
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runKeys(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, env, open);
    return { code, out, err };
  };
  try {
    const file = join(folder, 'master.key');
    expect((await run(['new-master', '--to', file])).code).toBe(0);
    expect(readFileSync(file, 'utf8').trim()).toMatch(/^[0-9a-f]{32}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await run(['new-master', '--to', file]);
    expect([again.code, again.err]).toEqual([2, [expect.stringMatching(/never overwritten/)]]);

    const masterKey = readMasterKey(file);
    const before = await DataKeyRing.open(database, masterKey);
    const sealedBefore = before.seal('cardNumber', '6222600123451234');
    const rotated = await run(['rotate-data-key'], { CARBONPAY_MASTER_KEY_FILE: file });
    expect([rotated.code, rotated.out[0]]).toEqual([0, expect.stringMatching(/^data key dk-[0-9a-f]{12} created/)]);
    const after = await DataKeyRing.open(database, masterKey);
    const sealedAfter = after.seal('cardNumber', '6222600123451234');
    expect(sealedAfter.split(':')[2]).not.toBe(sealedBefore.split(':')[2]); // another key id
    expect([after.open('cardNumber', sealedBefore), after.open('cardNumber', sealedAfter)]).toEqual([
      '6222600123451234',
      '6222600123451234',
    ]);
    expect(() => after.open('accountNumber', sealedAfter)).toThrow(); // bound to its field

    const wrongKey = join(folder, 'other.key');
    expect((await run(['new-master', '--to', wrongKey])).code).toBe(0);
    const refused = await run(['rotate-data-key'], { CARBONPAY_MASTER_KEY_FILE: wrongKey });
    expect([refused.code, refused.err]).toEqual([2, [expect.stringMatching(/does not open with this master key/)]]);
    for (const args of [
      ['rotate-data-key'],
      ['new-master'],
      ['burn'],
      ['new-platform-sm2'],
      ['new-client-secret', 'x'],
    ])
      expect((await run(args)).code).toBe(2);

    const platformFile = join(folder, 'platform.sm2');
    const platform = await run(['new-platform-sm2', '--to', platformFile]);
    expect(platform.code).toBe(0);
    const privateKey = Sm2PrivateKey.from(readFileSync(platformFile, 'utf8').trim());
    expect(platform.out[1]).toBe(privateKey.publicKey.toHex());
    expect(statSync(platformFile).mode & 0o777).toBe(0o600);
    expect((await run(['new-platform-sm2', '--to', platformFile])).code).toBe(2);
    const secrets = await run(['new-client-secret']);
    expect([secrets.code, secrets.out]).toEqual([
      0,
      [expect.stringMatching(/^secretHex [0-9a-f]{64}$/), expect.stringMatching(/^fieldKeyHex [0-9a-f]{32}$/)],
    ]);
  } finally {
    await pglite.close();
    rmSync(folder, { recursive: true, force: true });
  }
});
