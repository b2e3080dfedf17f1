// SM2, SM3 and SM4 behind one byte-oriented API: every wire format and option is chosen by the caller, by name.
export {
  CryptoDecryptionError,
  CryptoInputError,
  HMAC_SM3_KEY_MIN_BYTES,
  hmacSm3,
  hmacSm3Verify,
  SM3_DIGEST_BYTES,
  sm3Digest,
} from './sm3';
export type { BytesOrHex, CryptoDecryptionErrorCode, CryptoInputErrorCode } from './sm3';
export {
  SM4_BLOCK_BYTES,
  SM4_CBC_IV_BYTES,
  SM4_GCM_IV_BYTES,
  SM4_GCM_TAG_BYTES,
  SM4_KEY_BYTES,
  sm4CbcDecrypt,
  sm4CbcEncrypt,
  sm4EcbDecrypt,
  sm4EcbEncrypt,
  sm4GcmDecrypt,
  sm4GcmEncrypt,
} from './sm4';
export type {
  Sm4CbcParams,
  Sm4EcbParams,
  Sm4GcmDecryptParams,
  Sm4GcmEncryptParams,
  Sm4GcmSealed,
  Sm4Padding,
} from './sm4';
export {
  SM2_DEFAULT_USER_ID,
  SM2_PLAINTEXT_MAX_BYTES,
  SM2_USER_ID_MAX_BYTES,
  Sm2PrivateKey,
  Sm2PublicKey,
  sm2ComputeDigest,
  sm2ComputeZ,
  sm2ConvertCiphertext,
  sm2ConvertSignature,
  sm2Decrypt,
  sm2Encrypt,
  sm2Sign,
  sm2Verify,
} from './sm2';
export type {
  Sm2CiphertextEncoding,
  Sm2CiphertextOptions,
  Sm2PublicKeyOptions,
  Sm2SignatureEncoding,
  Sm2SignatureOptions,
  Sm2UserIdOptions,
} from './sm2';
