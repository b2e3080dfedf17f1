/**
 * Sign-on key download (research §2.1 [V]): the host generates working keys (PIK, MAK, optionally TDK) at every
 * sign-on and sends them in 0810 field 62 encrypted (ECB) under the terminal master key, each followed by its 4-byte
 * check value. The layout is chosen by 60.3 (KEY_DOWNLOAD_LAYOUTS in spec.ts). The `sm4` layout is our convention.
 */
import { randomBytes } from 'node:crypto';
import { type BlockAlgorithm, ecbDecrypt, ecbEncrypt, keyCheckValue, withOddParity } from './block-cipher';
import { err, ok, PosGatewayError, type Result } from './result';
import { KEY_DOWNLOAD_LAYOUTS, type KeyDownloadLayout, type KeyDownloadPart } from './spec';

export const KCV_BYTES = 4;

export interface WorkingKeys {
  readonly pik: Buffer;
  readonly mak: Buffer;
  readonly tdk?: Buffer;
}

export interface KeyDownloadError {
  readonly code: 'unknown_layout' | 'bad_length' | 'kcv_mismatch' | 'bad_filler';
  readonly part?: KeyDownloadPart;
  readonly detail: string;
}

export function keyDownloadLayout(networkManagementCode: string): KeyDownloadLayout | undefined {
  return KEY_DOWNLOAD_LAYOUTS[networkManagementCode];
}

function layoutLengthBytes(layout: KeyDownloadLayout): number {
  return layout.parts.reduce((sum, part) => sum + part.lengthBytes, 0);
}

/** Fresh random working keys sized for the layout (DES keys with odd parity). */
export function generateWorkingKeys(layout: KeyDownloadLayout): WorkingKeys {
  const size = (part: KeyDownloadPart) => layout.parts.find((p) => p.part === part)?.lengthBytes;
  const fresh = (bytes: number) =>
    layout.algorithm === 'des' ? withOddParity(randomBytes(bytes)) : randomBytes(bytes);
  const pikBytes = size('pik');
  const makBytes = size('mak');
  const tdkBytes = size('tdk');
  if (pikBytes === undefined || makBytes === undefined) throw new PosGatewayError('layout without PIK or MAK');
  return {
    pik: fresh(pikBytes),
    mak: fresh(makBytes),
    ...(tdkBytes === undefined ? {} : { tdk: fresh(tdkBytes) }),
  };
}

/** Builds field 62 for an 0810. */
export function encodeKeyDownload(layout: KeyDownloadLayout, tmk: Buffer, keys: WorkingKeys): Buffer {
  const algorithm = layout.algorithm;
  const parts = layout.parts.map(({ part, lengthBytes }) => {
    if (part === 'zeros') return Buffer.alloc(lengthBytes);
    const key = keyFor(keys, part);
    if (key === undefined) throw new PosGatewayError(`no ${part} for layout ${layout.networkManagementCode}`);
    if (part.endsWith('Kcv')) return keyCheckValue(algorithm, key, lengthBytes);
    if (key.length !== lengthBytes) throw new PosGatewayError(`${part} must be ${lengthBytes} bytes`);
    return ecbEncrypt(algorithm, tmk, key);
  });
  return Buffer.concat(parts);
}

/** Terminal side (and tests): decrypts field 62 under the TMK and checks every key against its check value. */
export function decodeKeyDownload(
  layout: KeyDownloadLayout,
  tmk: Buffer,
  field62: Buffer,
): Result<WorkingKeys, KeyDownloadError> {
  if (field62.length !== layoutLengthBytes(layout)) {
    return err({
      code: 'bad_length',
      detail: `field 62 is ${field62.length} bytes, layout needs ${layoutLengthBytes(layout)}`,
    });
  }
  const clear: Partial<Record<'pik' | 'mak' | 'tdk', Buffer>> = {};
  let offset = 0;
  for (const { part, lengthBytes } of layout.parts) {
    const slice = field62.subarray(offset, offset + lengthBytes);
    offset += lengthBytes;
    if (part === 'zeros') {
      if (slice.some((byte) => byte !== 0)) return err({ code: 'bad_filler', part, detail: 'filler is not zero' });
    } else if (part === 'pik' || part === 'mak' || part === 'tdk') {
      clear[part] = ecbDecrypt(layout.algorithm, tmk, slice);
    } else {
      const key = clear[part.slice(0, 3) as 'pik' | 'mak' | 'tdk'];
      if (key === undefined || !keyCheckValue(layout.algorithm, key, lengthBytes).equals(slice)) {
        return err({ code: 'kcv_mismatch', part, detail: `${part} does not match the decrypted key` });
      }
    }
  }
  const { pik, mak, tdk } = clear;
  if (pik === undefined || mak === undefined) return err({ code: 'unknown_layout', detail: 'layout lacks PIK or MAK' });
  return ok({ pik, mak, ...(tdk === undefined ? {} : { tdk }) });
}

function keyFor(keys: WorkingKeys, part: KeyDownloadPart): Buffer | undefined {
  const name = part.slice(0, 3);
  return name === 'pik' ? keys.pik : name === 'mak' ? keys.mak : name === 'tdk' ? keys.tdk : undefined;
}

/** A key sent encrypted under a key-encrypting key (TMK under the transport key, vector K2; TAK under TMK, K3). */
export function decryptKeyUnder(algorithm: BlockAlgorithm, kek: Buffer, encryptedKey: Buffer): Buffer {
  return ecbDecrypt(algorithm, kek, encryptedKey);
}

export function encryptKeyUnder(algorithm: BlockAlgorithm, kek: Buffer, clearKey: Buffer): Buffer {
  return ecbEncrypt(algorithm, kek, clearKey);
}
