/**
 * The names of kcptun's `-crypt` methods and the interface every method's implementation has.
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";

/** The methods Go kcptun 2021 (v20210922, kcp-go v5.6.1) accepts, in its `-h` order. */
export const CRYPT_METHODS_2021 = [
  "aes",
  "aes-128",
  "aes-192",
  "salsa20",
  "blowfish",
  "twofish",
  "cast5",
  "3des",
  "tea",
  "xtea",
  "xor",
  "sm4",
  "none",
] as const;

/** Every method we implement: the 2021 ones plus 2026's `null` and `aes-128-gcm`. */
export const CRYPT_METHODS = [...CRYPT_METHODS_2021, "null", "aes-128-gcm"] as const;

/** One `-crypt` method name. */
export type CryptMethod = typeof CRYPT_METHODS[number];

/** A method bound to a key: frames, encrypts and checks single datagrams or batches. */
export interface CryptSuite {
  /** The method actually in use (after kcptun's fallback of unknown names to `aes`). */
  readonly method: CryptMethod;
  /** Bytes {@link CryptSuite.seal} adds to a datagram: 20, 28 (`aes-128-gcm`) or 0 (`null`). */
  readonly overhead: number;
  /** Turns a payload into a wire datagram in place (header into the headroom, tag behind). */
  seal(packet: Packet): void;
  /** {@link CryptSuite.seal} over `packets[0, count)`, batched where the cipher can. */
  sealBatch(packets: readonly Packet[], count: number): void;
  /**
   * Checks and decrypts a wire datagram in place. True: the packet now holds the payload.
   * False: the datagram failed (too short, CRC or tag mismatch); its bytes are unspecified and
   * the caller drops it and counts `InCsumErrors`. Never throws on bad input.
   */
  open(packet: Packet): boolean;
  /**
   * {@link CryptSuite.open} over `packets[0, count)`, batched where the cipher can; writes 1
   * (opened) or 0 (failed) to `ok[i]` for each packet.
   */
  openBatch(packets: readonly Packet[], count: number, ok: Uint8Array): void;
}
