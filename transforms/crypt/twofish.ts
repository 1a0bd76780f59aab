/**
 * Twofish (Schneier et al., 1998), 128-bit blocks, 128/192/256-bit keys (kcptun: 256). Twofish
 * is little-endian inside; the CFB layer hands it big-endian words, which it byte-swaps.
 *
 * Everything is derived from the specification's small definitions at load: the q0/q1
 * permutations from their 4-bit tables, the MDS and RS matrices over GF(2^8); per key, the
 * key-dependent S-boxes are folded with the MDS matrix into four 256-entry tables so that the
 * g function costs four lookups.
 *
 * @module
 */

import type { BlockCipher } from "./block_cipher.ts";

// The 4-bit permutations t0..t3 that build q0 and q1 (Twofish paper §4.3.5).
const Q_T = [
  [
    "817d6f320b59eca4",
    "ecb81235f4a6709d",
    "ba5e6d90c8f32471",
    "d7f4126e9b3085ca",
  ],
  [
    "28bdf76e31940ac5",
    "1e2b4c376da5f908",
    "4c75169a0ed82b3f",
    "b951c3de647f208a",
  ],
].map((ts) => ts.map((t) => Array.from(t, (c) => parseInt(c, 16))));

function ror4(x: number, n: number): number {
  return ((x >>> n) | (x << (4 - n))) & 0xf;
}

function buildQ(q: Uint8Array, t: number[][]): void {
  for (let x = 0; x < 256; x++) {
    let a = x >>> 4, b = x & 0xf;
    const a1 = a ^ b, b1 = (a ^ ror4(b, 1) ^ (8 * a)) & 0xf;
    a = t[0][a1];
    b = t[1][b1];
    const a3 = a ^ b, b3 = (a ^ ror4(b, 1) ^ (8 * a)) & 0xf;
    q[x] = (t[3][b3] << 4) | t[2][a3];
  }
}

// The q permutations, filled when the first cipher is made (docs/performance.md, "Memory").
const Q0 = new Uint8Array(256);
const Q1 = new Uint8Array(256);
let ready = false;

/** Multiplication in GF(2^8) modulo the primitive polynomial `poly` (with its x^8 bit). */
function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= poly;
    b >>>= 1;
  }
  return r;
}

const MDS_POLY = 0x169;
const RS_POLY = 0x14d;
const MDS = [
  [0x01, 0xef, 0x5b, 0x5b],
  [0x5b, 0xef, 0xef, 0x01],
  [0xef, 0x5b, 0x01, 0xef],
  [0xef, 0x01, 0xef, 0x5b],
];
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
  [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
  [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

/** Column `col` of the MDS matrix times byte `y`, as a little-endian word. */
function mdsColumn(col: number, y: number): number {
  return gfMul(MDS[0][col], y, MDS_POLY) | (gfMul(MDS[1][col], y, MDS_POLY) << 8) |
    (gfMul(MDS[2][col], y, MDS_POLY) << 16) | (gfMul(MDS[3][col], y, MDS_POLY) << 24);
}

function readLE32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

function byte(w: number, i: number): number {
  return (w >>> (8 * i)) & 0xff;
}

/**
 * The byte chain of h (paper §4.3.2) for byte position `i` of input byte `y`, with the key words
 * `l` (k of them): alternating q permutations and key-byte XORs.
 */
function hByte(i: number, y: number, l: readonly number[]): number {
  const k = l.length;
  // Which q applies at each stage (from the k = 4 stage down to the last), per byte position.
  const Q4 = [Q1, Q0, Q0, Q1];
  const Q3 = [Q1, Q1, Q0, Q0];
  const Q2 = [Q0, Q1, Q0, Q1];
  const Q1s = [Q0, Q0, Q1, Q1];
  const Q0s = [Q1, Q0, Q1, Q0];
  if (k === 4) y = Q4[i][y] ^ byte(l[3], i);
  if (k >= 3) y = Q3[i][y] ^ byte(l[2], i);
  y = Q2[i][y] ^ byte(l[1], i);
  y = Q1s[i][y] ^ byte(l[0], i);
  return Q0s[i][y];
}

function h(x: number, l: readonly number[]): number {
  let z = 0;
  for (let i = 0; i < 4; i++) z ^= mdsColumn(i, hByte(i, byte(x, i), l));
  return z;
}

/** Twofish, forward direction. */
export class TwofishCipher implements BlockCipher {
  /** Always 16. */
  readonly blockSize = 16 as const;
  readonly #k = new Int32Array(40);
  readonly #s0 = new Int32Array(256);
  readonly #s1 = new Int32Array(256);
  readonly #s2 = new Int32Array(256);
  readonly #s3 = new Int32Array(256);

  /** `key` is 16, 24 or 32 bytes (kcptun: 32). */
  constructor(key: Uint8Array) {
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new RangeError("Twofish key must be 16, 24 or 32 bytes");
    }
    if (!ready) {
      buildQ(Q0, Q_T[0]);
      buildQ(Q1, Q_T[1]);
      ready = true;
    }
    const k = key.length / 8;
    const me: number[] = [], mo: number[] = [], s: number[] = [];
    for (let i = 0; i < k; i++) {
      me.push(readLE32(key, 8 * i));
      mo.push(readLE32(key, 8 * i + 4));
      let w = 0;
      for (let r = 0; r < 4; r++) {
        let v = 0;
        for (let c = 0; c < 8; c++) v ^= gfMul(RS[r][c], key[8 * i + c], RS_POLY);
        w |= v << (8 * r);
      }
      s.unshift(w); // S lists the words in reverse order (paper §4.3.1)
    }
    const rho = 0x01010101;
    for (let i = 0; i < 20; i++) {
      const a = h(Math.imul(2 * i, rho), me);
      let b = h(Math.imul(2 * i + 1, rho), mo);
      b = (b << 8) | (b >>> 24);
      this.#k[2 * i] = (a + b) | 0;
      const t = (a + 2 * b) | 0;
      this.#k[2 * i + 1] = (t << 9) | (t >>> 23);
    }
    const tables = [this.#s0, this.#s1, this.#s2, this.#s3];
    for (let i = 0; i < 4; i++) {
      for (let y = 0; y < 256; y++) tables[i][y] = mdsColumn(i, hByte(i, y, s));
    }
  }

  /** Encrypts the block `state[0..4)` in place (big-endian words, swapped to Twofish's order). */
  encryptWords(state: Int32Array): void {
    const k = this.#k, s0 = this.#s0, s1 = this.#s1, s2 = this.#s2, s3 = this.#s3;
    let r0 = swap(state[0]) ^ k[0];
    let r1 = swap(state[1]) ^ k[1];
    let r2 = swap(state[2]) ^ k[2];
    let r3 = swap(state[3]) ^ k[3];
    for (let i = 8; i < 40; i += 4) {
      let t0 = s0[r0 & 0xff] ^ s1[(r0 >>> 8) & 0xff] ^ s2[(r0 >>> 16) & 0xff] ^ s3[r0 >>> 24];
      let t1 = s0[r1 >>> 24] ^ s1[r1 & 0xff] ^ s2[(r1 >>> 8) & 0xff] ^ s3[(r1 >>> 16) & 0xff];
      r2 ^= (t0 + t1 + k[i]) | 0;
      r2 = (r2 >>> 1) | (r2 << 31);
      r3 = ((r3 << 1) | (r3 >>> 31)) ^ ((t0 + 2 * t1 + k[i + 1]) | 0);
      t0 = s0[r2 & 0xff] ^ s1[(r2 >>> 8) & 0xff] ^ s2[(r2 >>> 16) & 0xff] ^ s3[r2 >>> 24];
      t1 = s0[r3 >>> 24] ^ s1[r3 & 0xff] ^ s2[(r3 >>> 8) & 0xff] ^ s3[(r3 >>> 16) & 0xff];
      r0 ^= (t0 + t1 + k[i + 2]) | 0;
      r0 = (r0 >>> 1) | (r0 << 31);
      r1 = ((r1 << 1) | (r1 >>> 31)) ^ ((t0 + 2 * t1 + k[i + 3]) | 0);
    }
    state[0] = swap(r2 ^ k[4]);
    state[1] = swap(r3 ^ k[5]);
    state[2] = swap(r0 ^ k[6]);
    state[3] = swap(r1 ^ k[7]);
  }
}

function swap(w: number): number {
  return ((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24);
}
