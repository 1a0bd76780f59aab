/**
 * The QPP byte-stream cipher, sans-IO: one {@link QppEncoder} or {@link QppDecoder} per stream
 * and direction, each with its own PRNG starting at the pads' seed (kcptun 2026 makes two per
 * smux stream). Byte p of the stream uses the PRNG's output r = r[⌊p/8⌋]: pad number
 * (r mod 2^16) mod count, XOR mask = byte (p mod 8) of r, little-endian. The position carries
 * over from call to call, so any split of a stream into chunks gives the same bytes.
 *
 * Encrypt: c = pad[x ^ mask]. Decrypt: x = inverse[c] ^ mask. The per-byte work is one XOR
 * and one table lookup; the PRNG runs once per 8 bytes.
 *
 * The two loops are written out twice, not shared through a callback, so that each stays a
 * straight run of typed-array operations.
 *
 * @module
 */

import type { QppPads } from "./pads.ts";
import { Xoshiro256ss } from "./prng.ts";

/** Where one direction of one stream is: its PRNG and the position within the current output. */
class Cursor {
  /** Bytes processed so far. */
  position = 0;
  /** Which byte of the current output comes next (0..7). */
  k = 0;
  /** Offset of the current pad in the table. */
  base: number;
  readonly prng: Xoshiro256ss;
  readonly count: number;

  constructor(pads: QppPads) {
    this.count = pads.count;
    this.prng = new Xoshiro256ss(pads.prngState);
    this.prng.next();
    this.base = (this.prng.lo & 0xffff) % this.count << 8;
  }
}

function checkLengths(src: Uint8Array, dst: Uint8Array): void {
  if (dst.length < src.length) throw new RangeError("qpp: destination shorter than source");
}

/** Encrypts one direction of one stream. */
export class QppEncoder {
  readonly #c: Cursor;
  readonly #pads: Uint8Array;

  /** A fresh stream: the PRNG starts at the pads' seed. */
  constructor(pads: QppPads) {
    this.#c = new Cursor(pads);
    this.#pads = pads.forward;
  }

  /** Bytes encrypted so far. */
  get position(): number {
    return this.#c.position;
  }

  /**
   * Encrypts `src` into `dst` (at least as long; by default `src` itself, in place). Never
   * allocates.
   */
  process(src: Uint8Array, dst: Uint8Array = src): void {
    checkLengths(src, dst);
    const c = this.#c;
    const t = this.#pads;
    const prng = c.prng;
    const count = c.count;
    const n = src.length;
    let base = c.base;
    let k = c.k;
    let lo = prng.lo | 0;
    let hi = prng.hi | 0;
    let i = 0;
    // Finish the output a previous call started.
    while (k !== 0 && i < n) {
      const mask = k < 4 ? lo >>> (k << 3) : hi >>> ((k - 4) << 3);
      dst[i] = t[base + ((src[i] ^ mask) & 0xff)];
      i++;
      if (++k === 8) {
        prng.next();
        lo = prng.lo | 0;
        hi = prng.hi | 0;
        base = (lo & 0xffff) % count << 8;
        k = 0;
      }
    }
    // Whole outputs, 8 bytes each.
    const whole = i + ((n - i) & ~7);
    for (; i < whole; i += 8) {
      dst[i] = t[base + ((src[i] ^ lo) & 0xff)];
      dst[i + 1] = t[base + ((src[i + 1] ^ (lo >>> 8)) & 0xff)];
      dst[i + 2] = t[base + ((src[i + 2] ^ (lo >>> 16)) & 0xff)];
      dst[i + 3] = t[base + (src[i + 3] ^ (lo >>> 24))];
      dst[i + 4] = t[base + ((src[i + 4] ^ hi) & 0xff)];
      dst[i + 5] = t[base + ((src[i + 5] ^ (hi >>> 8)) & 0xff)];
      dst[i + 6] = t[base + ((src[i + 6] ^ (hi >>> 16)) & 0xff)];
      dst[i + 7] = t[base + (src[i + 7] ^ (hi >>> 24))];
      prng.next();
      lo = prng.lo | 0;
      hi = prng.hi | 0;
      base = (lo & 0xffff) % count << 8;
    }
    // The start of the next output.
    for (; i < n; i++, k++) {
      const mask = k < 4 ? lo >>> (k << 3) : hi >>> ((k - 4) << 3);
      dst[i] = t[base + ((src[i] ^ mask) & 0xff)];
    }
    c.k = k;
    c.base = base;
    c.position += n;
  }
}

/** Decrypts one direction of one stream. */
export class QppDecoder {
  readonly #c: Cursor;
  readonly #inverse: Uint8Array;

  /** A fresh stream: the PRNG starts at the pads' seed. */
  constructor(pads: QppPads) {
    this.#c = new Cursor(pads);
    this.#inverse = pads.inverse;
  }

  /** Bytes decrypted so far. */
  get position(): number {
    return this.#c.position;
  }

  /**
   * Decrypts `src` into `dst` (at least as long; by default `src` itself, in place). Never
   * allocates.
   */
  process(src: Uint8Array, dst: Uint8Array = src): void {
    checkLengths(src, dst);
    const c = this.#c;
    const t = this.#inverse;
    const prng = c.prng;
    const count = c.count;
    const n = src.length;
    let base = c.base;
    let k = c.k;
    let lo = prng.lo | 0;
    let hi = prng.hi | 0;
    let i = 0;
    while (k !== 0 && i < n) {
      const mask = k < 4 ? lo >>> (k << 3) : hi >>> ((k - 4) << 3);
      dst[i] = t[base + src[i]] ^ (mask & 0xff);
      i++;
      if (++k === 8) {
        prng.next();
        lo = prng.lo | 0;
        hi = prng.hi | 0;
        base = (lo & 0xffff) % count << 8;
        k = 0;
      }
    }
    const whole = i + ((n - i) & ~7);
    for (; i < whole; i += 8) {
      dst[i] = t[base + src[i]] ^ (lo & 0xff);
      dst[i + 1] = t[base + src[i + 1]] ^ ((lo >>> 8) & 0xff);
      dst[i + 2] = t[base + src[i + 2]] ^ ((lo >>> 16) & 0xff);
      dst[i + 3] = t[base + src[i + 3]] ^ (lo >>> 24);
      dst[i + 4] = t[base + src[i + 4]] ^ (hi & 0xff);
      dst[i + 5] = t[base + src[i + 5]] ^ ((hi >>> 8) & 0xff);
      dst[i + 6] = t[base + src[i + 6]] ^ ((hi >>> 16) & 0xff);
      dst[i + 7] = t[base + src[i + 7]] ^ (hi >>> 24);
      prng.next();
      lo = prng.lo | 0;
      hi = prng.hi | 0;
      base = (lo & 0xffff) % count << 8;
    }
    for (; i < n; i++, k++) {
      const mask = k < 4 ? lo >>> (k << 3) : hi >>> ((k - 4) << 3);
      dst[i] = t[base + src[i]] ^ (mask & 0xff);
    }
    c.k = k;
    c.base = base;
    c.position += n;
  }
}
