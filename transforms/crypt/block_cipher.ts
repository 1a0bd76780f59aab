/**
 * What a block cipher supplies to the CFB layer: the forward permutation only (CFB never needs
 * the inverse), one block at a time, and optionally many blocks per call.
 *
 * @module
 */

/**
 * A keyed block cipher, forward direction only.
 *
 * The single-block form works on 32-bit words rather than bytes: CFB keeps the feedback block
 * in a small `Int32Array` and XORs whole words, and every cipher kcptun uses except Twofish
 * reads its block as big-endian words anyway, so no byte shuffling happens per block.
 */
export interface BlockCipher {
  /** Block size in bytes. */
  readonly blockSize: 8 | 16;
  /**
   * Encrypts in place the block held in `state[0, blockSize / 4)`, word i being block bytes
   * [4i, 4i+4) read big-endian.
   */
  encryptWords(state: Int32Array): void;
  /**
   * Optional bulk form: ECB-encrypts `count` consecutive blocks of bytes from `src` into `dst`
   * (same memory allowed). Worth having when one call costs much less than `count` single
   * blocks (a native ECB, for instance).
   */
  encryptBlocks?(
    src: Uint8Array,
    srcOff: number,
    dst: Uint8Array,
    dstOff: number,
    count: number,
  ): void;
  /**
   * With {@link BlockCipher.encryptBlocks}: the fewest blocks per call for which the bulk form
   * beats single blocks.
   */
  readonly bulkThreshold?: number;
}

/**
 * Encrypts one block of bytes, `src[srcOff, srcOff+blockSize)` into `dst[dstOff, ...)`, through
 * {@link BlockCipher.encryptWords} (for tests, key schedules and cold paths).
 */
export function encryptBlock(
  cipher: BlockCipher,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
): void {
  const words = cipher.blockSize >>> 2;
  const st = new Int32Array(words);
  for (let i = 0; i < words; i++) st[i] = readBE(src, srcOff + 4 * i);
  cipher.encryptWords(st);
  for (let i = 0; i < words; i++) writeBE(dst, dstOff + 4 * i, st[i]);
}

/** Reads a big-endian 32-bit word (as a signed int32). */
export function readBE(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** Writes a 32-bit word big-endian. */
export function writeBE(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Reads a little-endian 32-bit word (as a signed int32). */
export function readLE(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

/** Writes a 32-bit word little-endian. */
export function writeLE(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}
