/**
 * AES (FIPS-197), forward direction, 128/192/256-bit keys.
 *
 * Two engines behind one {@link BlockCipher}:
 * - single blocks run a table-driven JavaScript AES (four 256-entry round tables), because one
 *   native call per 16-byte block costs more than computing it here (~0.9 µs per call measured);
 * - bulk calls ({@link BlockCipher.encryptBlocks}) go to `node:crypto`'s native `aes-*-ecb`,
 *   whose per-call overhead pays off from a handful of blocks on. `node:crypto` is loaded the
 *   first time such a cipher is made (`node_crypto.ts`): with OpenSSL's libcrypto through FFI
 *   (`openssl.ts`), the datagram path never makes one.
 *
 * CFB decryption and batch-parallel CFB encryption (see `cfb.ts`) use the bulk form.
 *
 * @module
 */

import type { Cipheriv } from "node:crypto";
import { type BlockCipher, readBE } from "./block_cipher.ts";
import { nodeCrypto } from "./node_crypto.ts";

const SBOX = new Uint8Array(256);
const TE0 = new Int32Array(256);
const TE1 = new Int32Array(256);
const TE2 = new Int32Array(256);
const TE3 = new Int32Array(256);

// The S-box is built at load (it is exported, and cheap); the four round tables when the first
// cipher is made: together at load, the loops would be optimised by V8, whose compiler code then
// stays resident in processes whose AES runs in OpenSSL (docs/performance.md, "Memory").
{
  // exp/log tables of GF(2^8) with generator 3 give the multiplicative inverses.
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0);
  }
  for (let a = 0; a < 256; a++) {
    const inv = a === 0 ? 0 : exp[(255 - log[a]) % 255];
    let s = inv;
    for (let r = 1; r <= 4; r++) s ^= ((inv << r) | (inv >>> (8 - r))) & 0xff;
    SBOX[a] = s ^ 0x63;
  }
}

let ready = false;

function buildRoundTables(): void {
  ready = true;
  for (let a = 0; a < 256; a++) {
    const s = SBOX[a];
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x11b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = (s2 << 24) | (s << 16) | (s << 8) | s3;
    TE0[a] = t;
    TE1[a] = (t >>> 8) | (t << 24);
    TE2[a] = (t >>> 16) | (t << 16);
    TE3[a] = (t >>> 24) | (t << 8);
  }
}

/** The AES S-box (exposed for tests and SM4-style comparisons). */
export const AES_SBOX: Readonly<Uint8Array> = SBOX;

function subWord(w: number): number {
  return (SBOX[w >>> 24] << 24) | (SBOX[(w >>> 16) & 0xff] << 16) |
    (SBOX[(w >>> 8) & 0xff] << 8) | SBOX[w & 0xff];
}

/** The expanded encryption key: `4 * (rounds + 1)` words. */
export function expandAesKey(key: Uint8Array): Int32Array {
  const nk = key.length >>> 2;
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw new RangeError(`AES key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  const rounds = nk + 6;
  const w = new Int32Array(4 * (rounds + 1));
  for (let i = 0; i < nk; i++) w[i] = readBE(key, 4 * i);
  let rcon = 1;
  for (let i = nk; i < w.length; i++) {
    let t = w[i - 1];
    if (i % nk === 0) {
      t = subWord((t << 8) | (t >>> 24)) ^ (rcon << 24);
      rcon = (rcon << 1) ^ (rcon & 0x80 ? 0x11b : 0);
    } else if (nk > 6 && i % nk === 4) {
      t = subWord(t);
    }
    w[i] = w[i - nk] ^ t;
  }
  return w;
}

/** AES in JavaScript: single blocks, no bulk form. */
export class AesCipher implements BlockCipher {
  /** Always 16. */
  readonly blockSize = 16 as const;
  readonly #rk: Int32Array;
  readonly #rounds: number;

  /** `key` is 16, 24 or 32 bytes (AES-128, -192, -256). */
  constructor(key: Uint8Array) {
    if (!ready) buildRoundTables();
    this.#rk = expandAesKey(key);
    this.#rounds = key.length / 4 + 6;
  }

  /** One block through the JavaScript engine. */
  encryptWords(st: Int32Array): void {
    const rk = this.#rk;
    let s0 = st[0] ^ rk[0];
    let s1 = st[1] ^ rk[1];
    let s2 = st[2] ^ rk[2];
    let s3 = st[3] ^ rk[3];
    const last = this.#rounds * 4;
    let k = 4;
    for (; k < last; k += 4) {
      const t0 = TE0[s0 >>> 24] ^ TE1[(s1 >>> 16) & 0xff] ^ TE2[(s2 >>> 8) & 0xff] ^
        TE3[s3 & 0xff] ^ rk[k];
      const t1 = TE0[s1 >>> 24] ^ TE1[(s2 >>> 16) & 0xff] ^ TE2[(s3 >>> 8) & 0xff] ^
        TE3[s0 & 0xff] ^ rk[k + 1];
      const t2 = TE0[s2 >>> 24] ^ TE1[(s3 >>> 16) & 0xff] ^ TE2[(s0 >>> 8) & 0xff] ^
        TE3[s1 & 0xff] ^ rk[k + 2];
      const t3 = TE0[s3 >>> 24] ^ TE1[(s0 >>> 16) & 0xff] ^ TE2[(s1 >>> 8) & 0xff] ^
        TE3[s2 & 0xff] ^ rk[k + 3];
      s0 = t0;
      s1 = t1;
      s2 = t2;
      s3 = t3;
    }
    const S = SBOX;
    st[0] = ((S[s0 >>> 24] << 24) | (S[(s1 >>> 16) & 0xff] << 16) | (S[(s2 >>> 8) & 0xff] << 8) |
      S[s3 & 0xff]) ^ rk[k];
    st[1] = ((S[s1 >>> 24] << 24) | (S[(s2 >>> 16) & 0xff] << 16) | (S[(s3 >>> 8) & 0xff] << 8) |
      S[s0 & 0xff]) ^ rk[k + 1];
    st[2] = ((S[s2 >>> 24] << 24) | (S[(s3 >>> 16) & 0xff] << 16) | (S[(s0 >>> 8) & 0xff] << 8) |
      S[s1 & 0xff]) ^ rk[k + 2];
    st[3] = ((S[s3 >>> 24] << 24) | (S[(s0 >>> 16) & 0xff] << 16) | (S[(s1 >>> 8) & 0xff] << 8) |
      S[s2 & 0xff]) ^ rk[k + 3];
  }
}

/**
 * AES with the JavaScript engine for single blocks and `node:crypto`'s native ECB for bulk
 * calls.
 */
export class AesNativeCipher extends AesCipher {
  /**
   * Fewest blocks per native call: below this, JavaScript single blocks are cheaper than the
   * ~1 µs fixed cost of a `node:crypto` call (measured, see docs/crypt.md).
   */
  readonly bulkThreshold: number = 8;
  readonly #ecb: Cipheriv;

  /** `key` is 16, 24 or 32 bytes; throws when `node:crypto` or its ECB cipher is missing. */
  constructor(key: Uint8Array) {
    super(key);
    const nc = nodeCrypto();
    if (nc === null) throw new Error("node:crypto is not available");
    this.#ecb = nc.createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
    this.#ecb.setAutoPadding(false);
  }

  /** Many blocks through native ECB. */
  encryptBlocks(src: Uint8Array, so: number, dst: Uint8Array, d: number, count: number): void {
    const out = this.#ecb.update(src.subarray(so, so + count * 16));
    dst.set(out, d);
  }
}

/** The fastest AES available: native bulk when `node:crypto` has it, else JavaScript only. */
export function createAes(key: Uint8Array): AesCipher {
  try {
    return new AesNativeCipher(key);
  } catch {
    return new AesCipher(key);
  }
}
