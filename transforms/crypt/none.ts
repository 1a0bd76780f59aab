/**
 * kcptun's `none` method: the crypt header (random nonce, CRC32) is kept and checked, the bytes
 * are not transformed. Not to be confused with `null` (2026), which removes the header too.
 *
 * @module
 */

import type { DatagramCipher } from "./datagram_cipher.ts";

/** kcptun's `none`: the header stays, the bytes are not transformed. */
export class IdentityCipher implements DatagramCipher {
  /** Leaves the bytes as they are. */
  encrypt(_buf: Uint8Array, _start: number, _end: number): void {}
  /** Leaves the bytes as they are. */
  decrypt(_buf: Uint8Array, _start: number, _end: number): void {}
}
