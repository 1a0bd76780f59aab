/**
 * DES and Triple DES (FIPS 46-3, NIST SP 800-67), 64-bit blocks, big-endian words. kcptun's
 * `3des` is TDEA in EDE form with a 24-byte key K1‖K2‖K3: E_K3(D_K2(E_K1(x))).
 *
 * Built from the standard's tables at load: the S-boxes merged with the P permutation into
 * eight 64-entry "SP" tables, and the initial/final permutations as byte-indexed tables (eight
 * lookups per 64-bit permutation). Between the three DES passes of TDEA the final permutation
 * and the next initial permutation cancel, so they are applied once each.
 *
 * @module
 */

import { type BlockCipher, readBE } from "./block_cipher.ts";

// FIPS 46-3 tables, bit positions counted from 1 = most significant.
// deno-fmt-ignore
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
  62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
  61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
// deno-fmt-ignore
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
  2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];
// deno-fmt-ignore
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
  10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
  14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
// deno-fmt-ignore
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
  23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
  44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const SBOXES = [
  "e4d12fb83a6c5907 0f74e2d1a6cb9538 41e8d62bfc973a50 fc8249175b3ea06d",
  "f18e6b34972dc05a 3d47f28ec01a69b5 0e7ba4d158c6932f d8a13f42b67c05e9",
  "a09e63f51dc7b428 d709346a285ecbf1 d6498f30b12c5ae7 1ad069874fe3b52c",
  "7de3069a1285bc4f d8b56f03472c1ae9 a690cb7df13e5284 3f06a1d8945bc72e",
  "2c417ab6853fd0e9 eb2c47d150fa3986 421bad78f9c5630e b8c71e2d6f09a453",
  "c1af92680d34e75b af427c9561de0b38 9ef528c3704a1db6 432c95fabe17608d",
  "4b2ef08d3c975a61 d0b7491ae35c2f86 14bdc37eaf680592 6bd814a7950fe23c",
  "d2846fb1a93e50c7 1fd8a374c56b0e92 7b419ce206adf358 21e74a8dfc90356b",
];

function bit(words: readonly number[], pos: number): number {
  const i = pos - 1;
  return (words[i >>> 5] >>> (31 - (i & 31))) & 1;
}

// SP[s][x]: S-box s (0..7) on the 6-bit input x, its 4-bit output placed at bits 4s+1..4s+4
// of a word, then sent through P.
const SP: Int32Array[] = [0, 1, 2, 3, 4, 5, 6, 7].map(() => new Int32Array(64));
// Byte-indexed permutation tables: for input byte b (0..7) with value v, the two output words.
const IP_T = new Int32Array(8 * 256 * 2);
const FP_T = new Int32Array(8 * 256 * 2);

// Filled when the first cipher is made: at module load these loops would be optimised by V8,
// whose compiler code then stays resident in processes that never use DES (docs/performance.md).
let ready = false;

function buildTables(): void {
  ready = true;
  for (let s = 0; s < 8; s++) {
    const rows = SBOXES[s].split(" ");
    const sp = SP[s];
    for (let x = 0; x < 64; x++) {
      const row = ((x >>> 4) & 2) | (x & 1);
      const col = (x >>> 1) & 0xf;
      const v = parseInt(rows[row][col], 16);
      const pre = v << (28 - 4 * s);
      let out = 0;
      for (let i = 0; i < 32; i++) out |= bit([pre], P[i]) << (31 - i);
      sp[x] = out;
    }
  }
  const FP = new Array<number>(64);
  for (let i = 0; i < 64; i++) FP[IP[i] - 1] = i + 1;
  for (const [perm, table] of [[IP, IP_T], [FP, FP_T]] as const) {
    for (let b = 0; b < 8; b++) {
      for (let v = 0; v < 256; v++) {
        const input = b < 4 ? [v << (24 - 8 * b), 0] : [0, v << (24 - 8 * (b - 4))];
        let hi = 0, lo = 0;
        for (let i = 0; i < 64; i++) {
          const x = bit(input, perm[i]);
          if (i < 32) hi |= x << (31 - i);
          else lo |= x << (63 - i);
        }
        table[(b * 256 + v) * 2] = hi;
        table[(b * 256 + v) * 2 + 1] = lo;
      }
    }
  }
}

const SP0 = SP[0], SP1 = SP[1], SP2 = SP[2], SP3 = SP[3];
const SP4 = SP[4], SP5 = SP[5], SP6 = SP[6], SP7 = SP[7];

/** The 16 round keys of one DES key, 8 six-bit groups each (128 entries). */
function desSubkeys(key: Uint8Array, off: number): Int32Array {
  const kw = [readBE(key, off), readBE(key, off + 4)];
  let c = 0, d = 0;
  for (let i = 0; i < 28; i++) {
    c |= bit(kw, PC1[i]) << (27 - i);
    d |= bit(kw, PC1[i + 28]) << (27 - i);
  }
  const out = new Int32Array(128);
  for (let r = 0; r < 16; r++) {
    for (let k = 0; k < SHIFTS[r]; k++) {
      c = ((c << 1) | (c >>> 27)) & 0x0fffffff;
      d = ((d << 1) | (d >>> 27)) & 0x0fffffff;
    }
    // CD as 56 bits, bit 1 = most significant of C.
    const cd = [(c << 4) | (d >>> 24), d << 8];
    for (let g = 0; g < 8; g++) {
      let v = 0;
      for (let j = 0; j < 6; j++) v = (v << 1) | bit(cd, PC2[6 * g + j]);
      out[8 * r + g] = v;
    }
  }
  return out;
}

function reversed(k: Int32Array): Int32Array {
  const out = new Int32Array(128);
  for (let r = 0; r < 16; r++) out.set(k.subarray(8 * (15 - r), 8 * (16 - r)), 8 * r);
  return out;
}

/** Sixteen Feistel rounds over (l, r) in `lr`, ending with the halves exchanged. */
function rounds(lr: Int32Array, k: Int32Array): void {
  let l = lr[0], r = lr[1];
  for (let i = 0; i < 128; i += 8) {
    // E(R) as eight 6-bit groups: group g is bits 4g..4g+5 of R taken circularly.
    const a = (r >>> 1) | (r << 31);
    const b = (r << 1) | (r >>> 31);
    const f = SP0[((a >>> 26) ^ k[i]) & 63] ^ SP1[((a >>> 22) ^ k[i + 1]) & 63] ^
      SP2[((a >>> 18) ^ k[i + 2]) & 63] ^ SP3[((a >>> 14) ^ k[i + 3]) & 63] ^
      SP4[((a >>> 10) ^ k[i + 4]) & 63] ^ SP5[((a >>> 6) ^ k[i + 5]) & 63] ^
      SP6[((a >>> 2) ^ k[i + 6]) & 63] ^ SP7[(b ^ k[i + 7]) & 63];
    const t = r;
    r = l ^ f;
    l = t;
  }
  lr[0] = r;
  lr[1] = l;
}

function permute(table: Int32Array, lr: Int32Array): void {
  const h = lr[0], l = lr[1];
  let oh = 0, ol = 0;
  for (let b = 0; b < 4; b++) {
    const i = (b * 256 + ((h >>> (24 - 8 * b)) & 0xff)) * 2;
    const j = ((b + 4) * 256 + ((l >>> (24 - 8 * b)) & 0xff)) * 2;
    oh ^= table[i] ^ table[j];
    ol ^= table[i + 1] ^ table[j + 1];
  }
  lr[0] = oh;
  lr[1] = ol;
}

/** Single DES (exposed for its test vectors; kcptun has no single-DES method). */
export class DesCipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  readonly #k: Int32Array;

  /** `key` is 8 bytes (parity bits ignored). */
  constructor(key: Uint8Array) {
    if (key.length !== 8) throw new RangeError("DES key must be 8 bytes");
    if (!ready) buildTables();
    this.#k = desSubkeys(key, 0);
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    permute(IP_T, state);
    rounds(state, this.#k);
    permute(FP_T, state);
  }
}

/** Triple DES, EDE, three independent keys. */
export class TripleDesCipher implements BlockCipher {
  /** Always 8. */
  readonly blockSize = 8 as const;
  readonly #k1: Int32Array;
  readonly #k2: Int32Array;
  readonly #k3: Int32Array;

  /** `key` is 24 bytes, K1‖K2‖K3 (parity bits ignored). */
  constructor(key: Uint8Array) {
    if (key.length !== 24) throw new RangeError("3DES key must be 24 bytes");
    if (!ready) buildTables();
    this.#k1 = desSubkeys(key, 0);
    this.#k2 = reversed(desSubkeys(key, 8));
    this.#k3 = desSubkeys(key, 16);
  }

  /** Encrypts the block `state[0..2)` in place. */
  encryptWords(state: Int32Array): void {
    permute(IP_T, state);
    rounds(state, this.#k1);
    rounds(state, this.#k2);
    rounds(state, this.#k3);
    permute(FP_T, state);
  }
}
