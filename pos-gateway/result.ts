/** A typed outcome: refusals and malformed input are values, never exceptions (style.md: keep the two apart). */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });
export const err = <E>(error: E): { readonly ok: false; readonly error: E } => ({ ok: false, error });

/**
 * The one error class this folder throws: only for programming or configuration errors (a key of the wrong length, a
 * bound that is not a positive integer). Bytes from the network never cause it; they give a Result.
 */
export class PosGatewayError extends Error {
  override readonly name = 'PosGatewayError';
}
