/**
 * kcp-go's `xor` method (docs/protocol.md §3.4): every datagram byte i is XORed with byte i of a
 * fixed 1500-byte pad derived from `pass`. Bytes past the pad (never sent by kcptun) are left
 * as they are, as kcp-go does.
 *
 * @module
 */

import type { DatagramCipher } from "./datagram_cipher.ts";
import { xorTable } from "./key.ts";

/** XOR with the pad derived from `pass`. */
export class XorCipher implements DatagramCipher {
  readonly #pad: Uint8Array;

  /** `pass` is the 32-byte derived key. */
  constructor(pass: Uint8Array) {
    this.#pad = xorTable(pass);
  }

  /** XORs `buf[start, end)` with the pad. */
  encrypt(buf: Uint8Array, start: number, end: number): void {
    const pad = this.#pad;
    const n = Math.min(end - start, pad.length);
    for (let i = 0; i < n; i++) buf[start + i] ^= pad[i];
  }

  /** Same as {@link XorCipher.encrypt}. */
  decrypt(buf: Uint8Array, start: number, end: number): void {
    this.encrypt(buf, start, end);
  }
}
