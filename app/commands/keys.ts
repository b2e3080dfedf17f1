import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import type { SecurityDatabase } from '../../security';
import { DataKeyRing, FieldEncryptionError, readMasterKey, Sm2PrivateKey } from '../../security';
import type { Io } from './io';

const USAGE =
  'carbonpay keys new-master --to <file> | rotate-data-key | new-platform-sm2 --to <file> | new-client-secret';

/**
 * `carbonpay keys new-master --to FILE` writes a fresh SM4 master key (32 hex digits, mode 0600, never over an
 * existing file); `carbonpay keys rotate-data-key` retires the data key that seals personal data and creates the next
 * one, wrapped by the master key of CARBONPAY_MASTER_KEY_FILE (instances seal with it from their next start; old
 * keys keep opening history). Exit 0 done, 2 bad usage or configuration.
 */
export async function runKeys(
  args: readonly string[],
  io: Io,
  env: NodeJS.ProcessEnv,
  openDatabase: () => Promise<{ database: SecurityDatabase; close(): Promise<void> }>,
): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'new-master') {
    if (rest.length !== 2 || rest[0] !== '--to') {
      io.stderr(`carbonpay: usage: ${USAGE}`);
      return 2;
    }
    const file = rest[1]!;
    if (existsSync(file)) {
      io.stderr(`carbonpay: keys new-master: ${file} exists; a master key is never overwritten`);
      return 2;
    }
    writeFileSync(file, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    io.stdout(`master key written to ${file} (mode 0600); keep a copy apart from the database backups`);
    return 0;
  }
  if (action === 'new-platform-sm2') {
    if (rest.length !== 2 || rest[0] !== '--to') {
      io.stderr(`carbonpay: usage: ${USAGE}`);
      return 2;
    }
    const file = rest[1]!;
    if (existsSync(file)) {
      io.stderr(`carbonpay: keys new-platform-sm2: ${file} exists; a key is never overwritten`);
      return 2;
    }
    const key = Sm2PrivateKey.generate();
    writeFileSync(file, `${key.exportBytes().toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    io.stdout(`platform SM2 key written to ${file} (mode 0600); give partners its public key:`);
    io.stdout(key.publicKey.toHex());
    return 0;
  }
  if (action === 'new-client-secret' && rest.length === 0) {
    // For a clients-file line: the HMAC-SM3 secret and the SM4 field key, each shared with that one client only.
    io.stdout(`secretHex ${randomBytes(32).toString('hex')}`);
    io.stdout(`fieldKeyHex ${randomBytes(16).toString('hex')}`);
    return 0;
  }
  if (action !== 'rotate-data-key' || rest.length !== 0) {
    io.stderr(`carbonpay: usage: ${USAGE}`);
    return 2;
  }
  const file = env['CARBONPAY_MASTER_KEY_FILE'];
  if (file === undefined || file === '') {
    io.stderr('carbonpay: keys rotate-data-key: set CARBONPAY_MASTER_KEY_FILE');
    return 2;
  }
  let masterKey: Buffer;
  try {
    masterKey = readMasterKey(file);
  } catch (error) {
    io.stderr(`carbonpay: keys rotate-data-key: ${(error as Error).message}`);
    return 2;
  }
  const { database, close } = await openDatabase();
  try {
    // Opening first proves the master key opens the keys there are, before a new one is wrapped with it.
    await DataKeyRing.open(database, masterKey);
    const keyId = await DataKeyRing.rotate(database, masterKey);
    io.stdout(`data key ${keyId} created; instances seal with it from their next start`);
    return 0;
  } catch (error) {
    if (error instanceof FieldEncryptionError) {
      io.stderr(`carbonpay: keys rotate-data-key: ${error.message}`);
      return 2;
    }
    throw error;
  } finally {
    await close();
  }
}
