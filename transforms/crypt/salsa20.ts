/**
 * Salsa20/20 (Bernstein) as kcp-go uses it (docs/protocol.md §3.3): 32-byte key, the datagram's first
 * 8 bytes are the nonce and stay in clear, the keystream (block counter from 0) is XORed over
 * bytes [8, end).
 *
 * Our own implementation rather than @noble/ciphers' `salsa20()`: that function validates and
 * copies its arguments and wants subarray views per call, which costs more than the cipher on
 * 1.3 KB datagrams; here the state lives in preallocated arrays and nothing is allocated per
 * datagram. @noble/ciphers stays the reference in the tests.
 *
 * @module
 */

import type { DatagramCipher } from "./datagram_cipher.ts";
import { readLE } from "./block_cipher.ts";

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Salsa20/20 keystream over datagrams, nonce taken from the datagram itself. */
export class Salsa20Cipher implements DatagramCipher {
  readonly #input = new Int32Array(16);
  readonly #out = new Int32Array(16);
  readonly #out8 = new Uint8Array(this.#out.buffer);

  /** `key` is 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("salsa20 key must be 32 bytes");
    const s = this.#input;
    // "expand 32-byte k"
    s[0] = 0x61707865;
    s[5] = 0x3320646e;
    s[10] = 0x79622d32;
    s[15] = 0x6b206574;
    for (let i = 0; i < 4; i++) {
      s[1 + i] = readLE(key, 4 * i);
      s[11 + i] = readLE(key, 16 + 4 * i);
    }
  }

  /** XORs the keystream for nonce `buf[start, start+8)` over `buf[start+8, end)`. */
  encrypt(buf: Uint8Array, start: number, end: number): void {
    if (end - start <= 8) return;
    const s = this.#input;
    s[6] = readLE(buf, start);
    s[7] = readLE(buf, start + 4);
    s[8] = 0;
    s[9] = 0;
    const out8 = this.#out8;
    const out = this.#out;
    for (let off = start + 8; off < end; off += 64) {
      this.#block();
      const n = Math.min(64, end - off);
      if (LITTLE_ENDIAN) {
        for (let j = 0; j < n; j++) buf[off + j] ^= out8[j];
      } else {
        for (let j = 0; j < n; j++) buf[off + j] ^= out[j >>> 2] >>> ((j & 3) << 3);
      }
      s[8] = (s[8] + 1) | 0;
      if (s[8] === 0) s[9] = (s[9] + 1) | 0;
    }
  }

  /** Same as {@link Salsa20Cipher.encrypt} (a stream cipher). */
  decrypt(buf: Uint8Array, start: number, end: number): void {
    this.encrypt(buf, start, end);
  }

  /** One 64-byte keystream block of the current input into `#out`. */
  #block(): void {
    const s = this.#input;
    let x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
    let x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14];
    let x15 = s[15];
    let t: number;
    for (let i = 0; i < 10; i++) {
      // column round
      t = (x0 + x12) | 0;
      x4 ^= (t << 7) | (t >>> 25);
      t = (x4 + x0) | 0;
      x8 ^= (t << 9) | (t >>> 23);
      t = (x8 + x4) | 0;
      x12 ^= (t << 13) | (t >>> 19);
      t = (x12 + x8) | 0;
      x0 ^= (t << 18) | (t >>> 14);
      t = (x5 + x1) | 0;
      x9 ^= (t << 7) | (t >>> 25);
      t = (x9 + x5) | 0;
      x13 ^= (t << 9) | (t >>> 23);
      t = (x13 + x9) | 0;
      x1 ^= (t << 13) | (t >>> 19);
      t = (x1 + x13) | 0;
      x5 ^= (t << 18) | (t >>> 14);
      t = (x10 + x6) | 0;
      x14 ^= (t << 7) | (t >>> 25);
      t = (x14 + x10) | 0;
      x2 ^= (t << 9) | (t >>> 23);
      t = (x2 + x14) | 0;
      x6 ^= (t << 13) | (t >>> 19);
      t = (x6 + x2) | 0;
      x10 ^= (t << 18) | (t >>> 14);
      t = (x15 + x11) | 0;
      x3 ^= (t << 7) | (t >>> 25);
      t = (x3 + x15) | 0;
      x7 ^= (t << 9) | (t >>> 23);
      t = (x7 + x3) | 0;
      x11 ^= (t << 13) | (t >>> 19);
      t = (x11 + x7) | 0;
      x15 ^= (t << 18) | (t >>> 14);
      // row round
      t = (x0 + x3) | 0;
      x1 ^= (t << 7) | (t >>> 25);
      t = (x1 + x0) | 0;
      x2 ^= (t << 9) | (t >>> 23);
      t = (x2 + x1) | 0;
      x3 ^= (t << 13) | (t >>> 19);
      t = (x3 + x2) | 0;
      x0 ^= (t << 18) | (t >>> 14);
      t = (x5 + x4) | 0;
      x6 ^= (t << 7) | (t >>> 25);
      t = (x6 + x5) | 0;
      x7 ^= (t << 9) | (t >>> 23);
      t = (x7 + x6) | 0;
      x4 ^= (t << 13) | (t >>> 19);
      t = (x4 + x7) | 0;
      x5 ^= (t << 18) | (t >>> 14);
      t = (x10 + x9) | 0;
      x11 ^= (t << 7) | (t >>> 25);
      t = (x11 + x10) | 0;
      x8 ^= (t << 9) | (t >>> 23);
      t = (x8 + x11) | 0;
      x9 ^= (t << 13) | (t >>> 19);
      t = (x9 + x8) | 0;
      x10 ^= (t << 18) | (t >>> 14);
      t = (x15 + x14) | 0;
      x12 ^= (t << 7) | (t >>> 25);
      t = (x12 + x15) | 0;
      x13 ^= (t << 9) | (t >>> 23);
      t = (x13 + x12) | 0;
      x14 ^= (t << 13) | (t >>> 19);
      t = (x14 + x13) | 0;
      x15 ^= (t << 18) | (t >>> 14);
    }
    const o = this.#out;
    o[0] = x0 + s[0];
    o[1] = x1 + s[1];
    o[2] = x2 + s[2];
    o[3] = x3 + s[3];
    o[4] = x4 + s[4];
    o[5] = x5 + s[5];
    o[6] = x6 + s[6];
    o[7] = x7 + s[7];
    o[8] = x8 + s[8];
    o[9] = x9 + s[9];
    o[10] = x10 + s[10];
    o[11] = x11 + s[11];
    o[12] = x12 + s[12];
    o[13] = x13 + s[13];
    o[14] = x14 + s[14];
    o[15] = x15 + s[15];
  }
}
