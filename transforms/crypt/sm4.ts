/**
 * SM4 (GB/T 32907-2016, formerly SMS4), 128-bit blocks and keys, big-endian words. The round
 * transform T (S-box on each byte, then the linear map L) is folded into four 256-entry tables.
 *
 * @module
 */

import { type BlockCipher, readBE } from "./block_cipher.ts";
import { SM4_SBOX } from "./sm4_sbox.ts";

const FK = [0xa3b1bac6 | 0, 0x56aa3350, 0x677d9197, 0xb27022dc | 0];

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

// The round tables, filled when the first cipher is made (docs/performance.md, "Memory": table
// loops at module load get optimised by V8, whose compiler code then stays resident).
const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);
let ready = false;

function buildTables(): void {
  ready = true;
  for (let x = 0; x < 256; x++) {
    const b = SM4_SBOX[x] << 24;
    const l = b ^ rotl(b, 2) ^ rotl(b, 10) ^ rotl(b, 18) ^ rotl(b, 24);
    T0[x] = l;
    T1[x] = rotl(l, 24);
    T2[x] = rotl(l, 16);
    T3[x] = rotl(l, 8);
  }
}

function tau(a: number): number {
  const S = SM4_SBOX;
  return (S[a >>> 24] << 24) | (S[(a >>> 16) & 0xff] << 16) | (S[(a >>> 8) & 0xff] << 8) |
    S[a & 0xff];
}

/** SM4, forward direction. */
export class Sm4Cipher implements BlockCipher {
  /** Always 16. */
  readonly blockSize = 16 as const;
  readonly #rk = new Int32Array(32);

  /** `key` is 16 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 16) throw new RangeError("SM4 key must be 16 bytes");
    if (!ready) buildTables();
    let k0 = readBE(key, 0) ^ FK[0];
    let k1 = readBE(key, 4) ^ FK[1];
    let k2 = readBE(key, 8) ^ FK[2];
    let k3 = readBE(key, 12) ^ FK[3];
    for (let i = 0; i < 32; i++) {
      // CK_i: bytes (4i + j) * 7 mod 256, j = 0..3.
      const ck = (((28 * i) & 0xff) << 24) | (((28 * i + 7) & 0xff) << 16) |
        (((28 * i + 14) & 0xff) << 8) | ((28 * i + 21) & 0xff);
      const t = tau(k1 ^ k2 ^ k3 ^ ck);
      const rk = k0 ^ t ^ rotl(t, 13) ^ rotl(t, 23);
      this.#rk[i] = rk;
      k0 = k1;
      k1 = k2;
      k2 = k3;
      k3 = rk;
    }
  }

  /** Encrypts the block `state[0..4)` in place. */
  encryptWords(state: Int32Array): void {
    const rk = this.#rk;
    let x0 = state[0], x1 = state[1], x2 = state[2], x3 = state[3];
    for (let i = 0; i < 32; i += 4) {
      let a = x1 ^ x2 ^ x3 ^ rk[i];
      x0 ^= T0[a >>> 24] ^ T1[(a >>> 16) & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T3[a & 0xff];
      a = x2 ^ x3 ^ x0 ^ rk[i + 1];
      x1 ^= T0[a >>> 24] ^ T1[(a >>> 16) & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T3[a & 0xff];
      a = x3 ^ x0 ^ x1 ^ rk[i + 2];
      x2 ^= T0[a >>> 24] ^ T1[(a >>> 16) & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T3[a & 0xff];
      a = x0 ^ x1 ^ x2 ^ rk[i + 3];
      x3 ^= T0[a >>> 24] ^ T1[(a >>> 16) & 0xff] ^ T2[(a >>> 8) & 0xff] ^ T3[a & 0xff];
    }
    state[0] = x3;
    state[1] = x2;
    state[2] = x1;
    state[3] = x0;
  }
}
