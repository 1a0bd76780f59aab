/**
 * CAST-128 (CAST5, RFC 2144), 64-bit blocks, big-endian words. kcptun gives it a 16-byte key,
 * so it always runs the full 16 rounds; shorter keys (40..80 bits: 12 rounds) are supported
 * for completeness and for the RFC's test vectors.
 *
 * @module
 */

import { type BlockCipher, readBE } from "./block_cipher.ts";
import { cast5Sboxes } from "./cast5_sboxes.ts";

/** The S-boxes as signed words, filled when the first cipher is made. */
const SB = new Int32Array(2048);
let ready = false;
const S1 = SB.subarray(0, 256);
const S2 = SB.subarray(256, 512);
const S3 = SB.subarray(512, 768);
const S4 = SB.subarray(768, 1024);
const S5 = SB.subarray(1024, 1280);
const S6 = SB.subarray(1280, 1536);
const S7 = SB.subarray(1536, 1792);
const S8 = SB.subarray(1792, 2048);

/**
 * The key schedule of RFC 2144 §2.4 as data. Each of four steps rewrites one 16-byte buffer
 * from the other (x→z, z→x, x→z, z→x), one word at a time, then emits four subkeys from the
 * new buffer; the sequence runs twice (K1..K16 masking keys, K17..K32 rotation keys). A word
 * row is: destination word, source word, the S5..S8 indexes, an extra source index and its box.
 */
const WORD_STEPS: ReadonlyArray<
  ReadonlyArray<readonly [number, number, number, number, number, number, number, number]>
> = [
  // z from x
  [
    [0, 0, 0xd, 0xf, 0xc, 0xe, 0x8, 7],
    [1, 2, 0x0, 0x2, 0x1, 0x3, 0xa, 8],
    [2, 3, 0x7, 0x6, 0x5, 0x4, 0x9, 5],
    [3, 1, 0xa, 0x9, 0xb, 0x8, 0xb, 6],
  ],
  // x from z
  [
    [0, 2, 0x5, 0x7, 0x4, 0x6, 0x0, 7],
    [1, 0, 0x0, 0x2, 0x1, 0x3, 0x2, 8],
    [2, 1, 0x7, 0x6, 0x5, 0x4, 0x1, 5],
    [3, 3, 0xa, 0x9, 0xb, 0x8, 0x3, 6],
  ],
];

/**
 * Subkey formulas after each of the four steps: indexes into the buffer just written for S5,
 * S6, S7, S8, then an extra index whose box is S5, S6, S7, S8 for the four subkeys in turn.
 */
const KEY_STEPS: ReadonlyArray<ReadonlyArray<readonly [number, number, number, number, number]>> = [
  [[8, 9, 7, 6, 2], [10, 11, 5, 4, 6], [12, 13, 3, 2, 9], [14, 15, 1, 0, 12]],
  [[3, 2, 12, 13, 8], [1, 0, 14, 15, 13], [7, 6, 8, 9, 3], [5, 4, 10, 11, 7]],
  [[3, 2, 12, 13, 9], [1, 0, 14, 15, 12], [7, 6, 8, 9, 2], [5, 4, 10, 11, 6]],
  [[8, 9, 7, 6, 3], [10, 11, 5, 4, 7], [12, 13, 3, 2, 8], [14, 15, 1, 0, 13]],
];

const BOXES = [S5, S6, S7, S8];

function schedule(key: Uint8Array): Int32Array {
  const x = new Uint8Array(16);
  x.set(key);
  const z = new Uint8Array(16);
  const k = new Int32Array(32);
  let n = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let step = 0; step < 4; step++) {
      const toZ = step % 2 === 0;
      const dst = toZ ? z : x;
      const src = toZ ? x : z;
      for (const [dw, sw, a, b, c, d, e, box] of WORD_STEPS[step % 2]) {
        // The first word's S-box indexes read the source buffer; the others read the word
        // written just before them (RFC 2144 §2.4).
        const from = dw === 0 ? src : dst;
        const t = S5[from[a]] ^ S6[from[b]] ^ S7[from[c]] ^ S8[from[d]] ^
          BOXES[box - 5][src[e]];
        const base = readBE(src, 4 * sw) ^ t;
        dst[4 * dw] = base >>> 24;
        dst[4 * dw + 1] = base >>> 16;
        dst[4 * dw + 2] = base >>> 8;
        dst[4 * dw + 3] = base;
      }
      for (let i = 0; i < 4; i++) {
        const [a, b, c, d, e] = KEY_STEPS[step][i];
        k[n++] = S5[dst[a]] ^ S6[dst[b]] ^ S7[dst[c]] ^ S8[dst[d]] ^ BOXES[i][dst[e]];
      }
    }
  }
  return k;
}

/** CAST-128, forward direction. */
export class Cast5Cipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  readonly #km: Int32Array;
  readonly #kr: Int32Array;
  readonly #rounds: number;

  /** `key` is 5..16 bytes (kcptun: 16). */
  constructor(key: Uint8Array) {
    if (key.length < 5 || key.length > 16) throw new RangeError("CAST5 key must be 5..16 bytes");
    if (!ready) {
      SB.set(cast5Sboxes());
      ready = true;
    }
    const k = schedule(key);
    this.#km = k.subarray(0, 16);
    this.#kr = k.subarray(16, 32).map((v) => v & 31);
    this.#rounds = key.length <= 10 ? 12 : 16;
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    const km = this.#km, kr = this.#kr;
    let l = state[0], r = state[1];
    for (let i = 0; i < this.#rounds; i++) {
      let f: number;
      const type = i % 3;
      if (type === 0) {
        const t = (km[i] + r) | 0;
        const s = kr[i];
        const v = s === 0 ? t : (t << s) | (t >>> (32 - s));
        f = (((S1[v >>> 24] ^ S2[(v >>> 16) & 0xff]) - S3[(v >>> 8) & 0xff]) | 0) +
          S4[v & 0xff];
      } else if (type === 1) {
        const t = km[i] ^ r;
        const s = kr[i];
        const v = s === 0 ? t : (t << s) | (t >>> (32 - s));
        f = (((S1[v >>> 24] - S2[(v >>> 16) & 0xff]) | 0) + S3[(v >>> 8) & 0xff]) ^
          S4[v & 0xff];
      } else {
        const t = (km[i] - r) | 0;
        const s = kr[i];
        const v = s === 0 ? t : (t << s) | (t >>> (32 - s));
        f = (((S1[v >>> 24] + S2[(v >>> 16) & 0xff]) | 0) ^ S3[(v >>> 8) & 0xff]) -
          S4[v & 0xff];
      }
      const nl = r;
      r = l ^ f;
      l = nl;
    }
    state[0] = r;
    state[1] = l;
  }
}
