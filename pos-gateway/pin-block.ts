/**
 * ISO 9564-1 format 0 (= ANSI X9.8) PIN blocks, research §2.2 [V]:
 *   P = 0 | L | PIN digits | F…F (16 nibbles);  A = 0000 | the 12 rightmost PAN digits excluding the check digit;
 *   clear block = P XOR A, encrypted with the PIN key (DES/3DES ECB).
 */
import { type BlockAlgorithm, ecbDecrypt, ecbEncrypt, xorBytes } from './block-cipher';
import { err, ok, PosGatewayError, type Result } from './result';

export const PIN_BLOCK_BYTES = 8;
export const MIN_PIN_DIGITS = 4;
export const MAX_PIN_DIGITS = 12;
const PAN_PATTERN = /^[0-9]{13,19}$/;

export type PinBlockErrorCode = 'bad_pin_block_format' | 'bad_pin_length' | 'bad_pin_digit' | 'bad_pin_filler';

export interface PinBlockError {
  readonly code: PinBlockErrorCode;
  readonly detail: string;
}

/** The PAN part `0000` + 12 digits; PANs shorter than 13 digits are left-padded with zeros. */
function panBlock(pan: string): Buffer {
  if (!/^[0-9]{2,19}$/.test(pan)) throw new PosGatewayError('PAN must be 2–19 digits');
  const withoutCheckDigit = pan.slice(0, -1);
  return Buffer.from(`0000${withoutCheckDigit.slice(-12).padStart(12, '0')}`, 'hex');
}

/** The PAN as field 2 gives it, or track 2 data up to the separator (yogapay `setPin`, research §2.2). */
export function panFromTrack2(track2: string): string | undefined {
  const pan = track2.split('=')[0] ?? '';
  return PAN_PATTERN.test(pan) ? pan : undefined;
}

export function encodePinBlockFormat0(pin: string, pan: string): Buffer {
  if (!/^[0-9]+$/.test(pin) || pin.length < MIN_PIN_DIGITS || pin.length > MAX_PIN_DIGITS) {
    throw new PosGatewayError(`PIN must be ${MIN_PIN_DIGITS}–${MAX_PIN_DIGITS} digits`);
  }
  const pinField = Buffer.from(`0${pin.length.toString(16)}${pin}`.padEnd(16, 'F'), 'hex');
  return xorBytes(pinField, panBlock(pan));
}

/** Recovers the PIN from a clear block; wire data, so a typed error rather than an exception. */
export function decodePinBlockFormat0(clearBlock: Buffer, pan: string): Result<string, PinBlockError> {
  if (clearBlock.length !== PIN_BLOCK_BYTES) return err({ code: 'bad_pin_block_format', detail: 'not 8 bytes' });
  const nibbles = xorBytes(clearBlock, panBlock(pan)).toString('hex').toUpperCase();
  if (nibbles[0] !== '0') return err({ code: 'bad_pin_block_format', detail: 'format nibble is not 0' });
  const length = parseInt(nibbles[1] ?? 'X', 16);
  if (!(length >= MIN_PIN_DIGITS && length <= MAX_PIN_DIGITS)) {
    return err({ code: 'bad_pin_length', detail: `PIN length ${length}` });
  }
  const pin = nibbles.slice(2, 2 + length);
  if (!/^[0-9]+$/.test(pin)) return err({ code: 'bad_pin_digit', detail: 'PIN nibble above 9' });
  if (!/^F*$/.test(nibbles.slice(2 + length))) return err({ code: 'bad_pin_filler', detail: 'filler is not F' });
  return ok(pin);
}

export function encryptPinBlock(algorithm: BlockAlgorithm, pik: Buffer, clearBlock: Buffer): Buffer {
  return ecbEncrypt(algorithm, pik, clearBlock);
}

export function decryptPinBlock(algorithm: BlockAlgorithm, pik: Buffer, pinBlock: Buffer): Buffer {
  return ecbDecrypt(algorithm, pik, pinBlock);
}

/** Field 52 → PIN in one step, for the ledger wiring that checks the payment password. */
export function recoverPin(pik: Buffer, pinBlock: Buffer, pan: string): Result<string, PinBlockError> {
  if (pinBlock.length !== PIN_BLOCK_BYTES) return err({ code: 'bad_pin_block_format', detail: 'not 8 bytes' });
  return decodePinBlockFormat0(decryptPinBlock('des', pik, pinBlock), pan);
}
