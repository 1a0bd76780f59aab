/**
 * xoshiro256** (Blackman and Vigna), the generator that picks QPP's pad and XOR mask for every
 * 8 bytes of a stream, on 32-bit halves so that no BigInt runs per output.
 *
 * The state is four 64-bit words, kept as eight 32-bit halves, low half first: `[s0lo, s0hi,
 * s1lo, s1hi, s2lo, s2hi, s3lo, s3hi]`. An output is 64 bits too, handed out as two halves.
 * Everything lives in one Int32Array: 32-bit values in object fields would be boxed as soon as
 * they leave V8's small-integer range, which most of them do.
 *
 * @module
 */

/**
 * The carry out of the 32-bit addition a + b, without an unsigned comparison (V8 compares
 * values above 2^31 as doubles, which made the generator three times slower).
 */
function carry(a: number, b: number): number {
  return ((a >>> 1) + (b >>> 1) + (a & b & 1)) >>> 31;
}

/**
 * A xoshiro256** generator. After {@link Xoshiro256ss.next} the output is in
 * {@link Xoshiro256ss.lo} and {@link Xoshiro256ss.hi}.
 */
export class Xoshiro256ss {
  /** State halves [0, 8), then the latest output's low and high halves. */
  readonly #s = new Int32Array(10);

  /** `state`: the eight u32 halves described in the module documentation (copied). */
  constructor(state: Uint32Array) {
    if (state.length !== 8) throw new RangeError("xoshiro256** state is 8 u32 halves");
    this.#s.set(state);
  }

  /** Reads the four state words little-endian from 32 bytes, as qpp reads its PBKDF2 output. */
  static fromBytes(bytes: Uint8Array): Xoshiro256ss {
    return new Xoshiro256ss(stateFromBytes(bytes));
  }

  /** Low 32 bits of the latest output (unsigned). */
  get lo(): number {
    return this.#s[8] >>> 0;
  }

  /** High 32 bits of the latest output (unsigned). */
  get hi(): number {
    return this.#s[9] >>> 0;
  }

  /** Advances once; the output lands in `lo` / `hi`. */
  next(): void {
    const s = this.#s;
    const s0l = s[0], s0h = s[1], s1l = s[2], s1h = s[3];
    const s2l = s[4], s2h = s[5], s3l = s[6], s3h = s[7];
    // x = s1 * 5 = (s1 << 2) + s1 over 64 bits; the high half gains the two bits shifted out
    // of the low half plus the carry of the low addition.
    const l4 = s1l << 2;
    const xl = (l4 + s1l) | 0;
    const xh = (Math.imul(s1h, 5) + (s1l >>> 30) + carry(l4, s1l)) | 0;
    // r = rotl(x, 7)
    const rl = (xl << 7) | (xh >>> 25);
    const rh = (xh << 7) | (xl >>> 25);
    // output = r * 9 = (r << 3) + r
    const l8 = rl << 3;
    const ol = (l8 + rl) | 0;
    s[8] = ol;
    s[9] = Math.imul(rh, 9) + (rl >>> 29) + carry(l8, rl);

    const n2l = s2l ^ s0l, n2h = s2h ^ s0h;
    const n3l = s3l ^ s1l, n3h = s3h ^ s1h;
    s[2] = s1l ^ n2l;
    s[3] = s1h ^ n2h;
    s[0] = s0l ^ n3l;
    s[1] = s0h ^ n3h;
    // s2 ^= s1 << 17
    s[4] = n2l ^ (s1l << 17);
    s[5] = n2h ^ ((s1h << 17) | (s1l >>> 15));
    // s3 = rotl(s3, 45): swap the halves (32), then rotate left by 13.
    s[7] = (n3l << 13) | (n3h >>> 19);
    s[6] = (n3h << 13) | (n3l >>> 19);
  }

  /** Advances once and returns the output as a BigInt (tests, tools; not for hot paths). */
  nextBigInt(): bigint {
    this.next();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** The current state as eight u32 halves (a copy). */
  state(): Uint32Array {
    return new Uint32Array(this.#s.buffer.slice(0, 32));
  }
}

/** Four little-endian u64 words from 32 bytes, as eight u32 halves, low half first. */
export function stateFromBytes(bytes: Uint8Array): Uint32Array {
  if (bytes.length !== 32) throw new RangeError("xoshiro256** seed is 32 bytes");
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) {
    const o = i * 4;
    out[i] = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
  }
  return out;
}
