/**
 * The original `sm-crypto` (JuneAndGreen, ≥ 0.5.8) ships no types; these cover only what the interop tests call,
 * with every option the tests pass required, so a call cannot rely on a default by accident. Hex strings are
 * lower-case on output; `cipherMode` 1 is C1C3C2 and ciphertexts carry no 04 prefix.
 */
declare module 'sm-crypto' {
  /** A string is taken as UTF-8 text, anything else as bytes. */
  type SmCryptoInput = string | ArrayLike<number>;

  interface SmCryptoSm2SignatureOptions {
    readonly hash: boolean;
    readonly der: boolean;
    /** 04 ‖ x ‖ y; saves deriving it from the private key. */
    readonly publicKey: string;
    /** Hashed as UTF-8; the library uses 1234567812345678 when it is absent. */
    readonly userId?: string;
  }

  interface SmCryptoSm2VerifyOptions {
    readonly hash: boolean;
    readonly der: boolean;
    readonly userId?: string;
  }

  interface SmCryptoSm4Options {
    /** Anything but 'cbc' runs ECB. */
    readonly mode: 'ecb' | 'cbc';
    /** CBC only: 16 bytes, as hex or bytes. */
    readonly iv?: SmCryptoInput;
    /** 'pkcs#7' (or 'pkcs#5', the same) pads; anything else does not. */
    readonly padding: 'pkcs#7' | 'none';
    readonly output: 'array';
  }

  export const sm2: {
    generateKeyPairHex(): { privateKey: string; publicKey: string };
    doSignature(message: SmCryptoInput, privateKeyHex: string, options: SmCryptoSm2SignatureOptions): string;
    doVerifySignature(
      message: SmCryptoInput,
      signatureHex: string,
      publicKeyHex: string,
      options: SmCryptoSm2VerifyOptions,
    ): boolean;
    doEncrypt(message: SmCryptoInput, publicKeyHex: string, cipherMode: 0 | 1): string;
    /** An empty array when C3 does not match. */
    doDecrypt(ciphertextHex: string, privateKeyHex: string, cipherMode: 0 | 1, options: { output: 'array' }): number[];
  };

  /** The digest as hex; with `{ mode: 'hmac', key }` HMAC-SM3 (a hex key string or bytes). */
  export function sm3(input: SmCryptoInput, options?: { mode: 'hmac'; key: SmCryptoInput }): string;

  export const sm4: {
    /** Text input is UTF-8 when encrypting. */
    encrypt(input: SmCryptoInput, key: SmCryptoInput, options: SmCryptoSm4Options): number[];
    /** Text input is hex when decrypting; throws on bad padding. */
    decrypt(input: SmCryptoInput, key: SmCryptoInput, options: SmCryptoSm4Options): number[];
  };
}
