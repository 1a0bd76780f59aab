/**
 * Blowfish (Schneier 1993), 64-bit blocks, keys of 4..56 bytes (kcptun gives it all 32 bytes of
 * `pass`), big-endian words.
 *
 * @module
 */

import type { BlockCipher } from "./block_cipher.ts";
import { blowfishPi } from "./blowfish_pi.ts";

/** Blowfish, forward direction. */
export class BlowfishCipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  readonly #p: Int32Array;
  readonly #s0: Int32Array;
  readonly #s1: Int32Array;
  readonly #s2: Int32Array;
  readonly #s3: Int32Array;

  /** `key` is 1..56 bytes (Go accepts any length in that range; the spec suggests >= 4). */
  constructor(key: Uint8Array) {
    if (key.length < 1 || key.length > 56) throw new RangeError("Blowfish key must be 1..56 bytes");
    const state = Int32Array.from(blowfishPi(), (w) => w | 0);
    this.#p = state.subarray(0, 18);
    this.#s0 = state.subarray(18, 274);
    this.#s1 = state.subarray(274, 530);
    this.#s2 = state.subarray(530, 786);
    this.#s3 = state.subarray(786, 1042);
    // The key, cycled, is XORed into P; then the cipher rewrites P and S with its own output.
    let j = 0;
    for (let i = 0; i < 18; i++) {
      let d = 0;
      for (let k = 0; k < 4; k++) {
        d = (d << 8) | key[j];
        j = (j + 1) % key.length;
      }
      this.#p[i] ^= d;
    }
    const block = new Int32Array(2);
    for (let i = 0; i < state.length; i += 2) {
      this.encryptWords(block);
      state[i] = block[0];
      state[i + 1] = block[1];
    }
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    const p = this.#p, s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    let l = state[0], r = state[1];
    for (let i = 0; i < 16; i += 2) {
      l ^= p[i];
      r ^= (((s0[l >>> 24] + s1[(l >>> 16) & 0xff]) ^ s2[(l >>> 8) & 0xff]) + s3[l & 0xff]) | 0;
      r ^= p[i + 1];
      l ^= (((s0[r >>> 24] + s1[(r >>> 16) & 0xff]) ^ s2[(r >>> 8) & 0xff]) + s3[r & 0xff]) | 0;
    }
    state[0] = r ^ p[17];
    state[1] = l ^ p[16];
  }
}
