import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { SqlDriver } from './sql-store';
import { SqlEventStore } from './sql-store';

/**
 * PGlite (PostgreSQL in WASM) in this process: the zero-setup default. It has one connection and no lock of its
 * own on the data folder, and two processes opening one folder corrupt it; a lock file beside the folder,
 * holding the owner's pid, keeps a second process out with a clear message.
 */
export class PgliteDriver implements SqlDriver {
  readonly name = 'pglite';

  private constructor(
    private readonly db: PGlite,
    private readonly lockPath: string | undefined,
  ) {}

  /** The in-process database, for read models kept beside the log (it has one connection to share). */
  get database(): PGlite {
    return this.db;
  }

  /** `dataDir` undefined → in memory (tests). */
  static async open(dataDir: string | undefined): Promise<PgliteDriver> {
    if (dataDir === undefined) return new PgliteDriver(await PGlite.create(), undefined);
    mkdirSync(dirname(dataDir), { recursive: true });
    const lockPath = `${dataDir}.lock`;
    acquireLock(lockPath);
    try {
      return new PgliteDriver(await PGlite.create(dataDir), lockPath);
    } catch (error) {
      rmSync(lockPath, { force: true });
      throw error;
    }
  }

  async query<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    const result = await this.db.query<Row>(text, params as unknown[]);
    return result.rows;
  }

  /** PGlite has one connection: every statement already runs in order. */
  queryInOrder<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.query(text, params);
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    return this.db.listen(channel, () => onNotify());
  }

  async close(): Promise<void> {
    await this.db.close();
    if (this.lockPath) rmSync(this.lockPath, { force: true });
  }
}

export class DataFolderLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly ownerPid: number,
  ) {
    super(
      `the data folder is in use by process ${ownerPid} (lock file ${lockPath}); stop it or choose another CARBONPAY_DATA_DIR`,
    );
    this.name = 'DataFolderLockedError';
  }
}

function acquireLock(lockPath: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const ownerPid = Number(readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(ownerPid) && ownerPid > 0 && isAlive(ownerPid))
        throw new DataFolderLockedError(lockPath, ownerPid);
      rmSync(lockPath, { force: true }); // left by a process that died: take it over
    }
  }
  throw new Error(`could not take the lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function openPgliteEventStore(dataDir: string | undefined): Promise<SqlEventStore> {
  const driver = await PgliteDriver.open(dataDir);
  try {
    return await SqlEventStore.open(driver);
  } catch (error) {
    await driver.close();
    throw error;
  }
}
