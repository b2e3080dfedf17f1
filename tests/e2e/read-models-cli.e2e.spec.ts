import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../app';

jest.setTimeout(60_000);

describe('carbonpay read-models', () => {
  const folder = mkdtempSync(join(tmpdir(), 'carbonpay-cli-'));
  const saved = { ...process.env };

  beforeAll(() => {
    process.env['CARBONPAY_DATA_DIR'] = join(folder, 'pglite');
    delete process.env['DATABASE_URL'];
    delete process.env['CARBONPAY_EVENT_STORE'];
  });

  afterAll(() => {
    process.env = saved;
    rmSync(folder, { recursive: true, force: true });
  });

  const run = async (args: string[]): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
    return { code, out, err };
  };

  test('status on a fresh platform, then a rebuild that swaps in generation 2', async () => {
    const status = await run(['read-models', 'status']);
    expect(status).toMatchObject({ code: 0, err: [] });
    expect(status.out).toEqual([expect.stringMatching(/^ledger: generation 1, position /)]);
    const rebuild = await run(['read-models', 'rebuild']);
    expect(rebuild.code).toBe(0);
    expect(rebuild.out[1]).toMatch(/^carbonpay: generation 2 swapped in after \d+\.\d s$/);
    expect(rebuild.out[2]).toMatch(/^ledger: generation 2, /);
  });

  test('a wrong action: exit 2 and one line on stderr', async () => {
    expect(await run(['read-models', 'drop'])).toEqual({
      code: 2,
      out: [],
      err: ['carbonpay: usage: carbonpay read-models status|rebuild'],
    });
  });
});
