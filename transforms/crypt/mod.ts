/**
 * Packet encryption compatible with kcptun (kcp-go v5.6.1, and the 2026 `null` and
 * `aes-128-gcm` methods): key derivation, the nonce + CRC32 header, CFB over every block cipher
 * kcptun offers, Salsa20, xor, and the `crypt` packet stage.
 *
 * @module
 */

export {
  DEFAULT_KEY,
  deriveKey,
  deriveKeyAsync,
  KEY_ITERATIONS,
  KEY_LENGTH,
  KEY_SALT,
  XOR_SALT,
  XOR_TABLE_LENGTH,
  xorTable,
} from "./key.ts";
export { crc32 } from "./crc32.ts";
export { defaultNonces, NONCE_POOL_SIZE, NonceSource, type RandomFill } from "./nonce.ts";
export { type BlockCipher, encryptBlock } from "./block_cipher.ts";
export { type DatagramCipher, DeferredCipher } from "./datagram_cipher.ts";
export { Cfb, KCP_IV } from "./cfb.ts";
export { AES_SBOX, AesCipher, AesNativeCipher, createAes, expandAesKey } from "./aes.ts";
export { BlowfishCipher } from "./blowfish.ts";
export { Cast5Cipher } from "./cast5.ts";
export { DesCipher, TripleDesCipher } from "./des.ts";
export { TeaCipher, XteaCipher } from "./tea.ts";
export { TwofishCipher } from "./twofish.ts";
export { Sm4Cipher } from "./sm4.ts";
export { Salsa20Cipher } from "./salsa20.ts";
export { XorCipher } from "./xor.ts";
export { IdentityCipher } from "./none.ts";
export {
  CRYPT_METHODS,
  CRYPT_METHODS_2021,
  type CryptMethod,
  type CryptSuite,
} from "./suite_types.ts";
export { CRYPT_HEADER_SIZE, HeaderCryptSuite, NONCE_SIZE } from "./header_suite.ts";
export { AesGcmSuite, GCM_NONCE_SIZE, GCM_TAG_SIZE } from "./gcm.ts";
export { REPLAY_NONCE_SIZE, REPLAY_WINDOW_MAX, ReplayFilter } from "./replay.ts";
export {
  type AesEngine,
  createBlockCipher,
  createCryptSuite,
  createDatagramCipher,
  type CryptGeneration,
  type CryptSuiteOptions,
  NullSuite,
  resolveCryptMethod,
} from "./suite.ts";
export {
  createCryptStage,
  CryptStage,
  cryptStage,
  type CryptStageOptions,
  MIN_PAYLOAD_2021,
} from "./stage.ts";
