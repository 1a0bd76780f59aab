/**
 * Arithmetic in GF(2^8) as klauspost/reedsolomon (and so kcp-go) uses it: reducing polynomial
 * x^8 + x^4 + x^3 + x^2 + 1 (0x11D), generator 2. Addition is XOR.
 *
 * The exp/log tables are built at module load; the 64 KiB product table on first use (see
 * {@link GF_MUL}): 65536 products computed at load would have V8 optimise the loop, and its
 * optimising compilers' code would then stay resident in processes that never use FEC
 * (docs/performance.md, "Memory"). Bulk operations work on byte ranges given as (array, offset,
 * length) so callers never need a subarray per packet.
 *
 * @module
 */

/** The reducing polynomial, with the x^8 term. */
export const GF_POLYNOMIAL = 0x11d;

/**
 * `GF_EXP[i]` = 2^i for i in [0, 510): doubled so that `GF_EXP[log a + log b]` needs no modulo.
 */
export const GF_EXP: Uint8Array = new Uint8Array(510);

/** `GF_LOG[a]` = log base 2 of a, for a in [1, 256); `GF_LOG[0]` is unused (0). */
export const GF_LOG: Uint8Array = new Uint8Array(256);

/**
 * `GF_MUL[(a << 8) | b]` = a·b: one 64 KiB table, each 256-byte row is "multiply by a". Filled
 * by the first call of {@link gfMul}, {@link gfMulAdd}, {@link gfMulSet} or
 * {@link packMulTable} (every codec makes such calls when it is built), or by
 * {@link initGfMul}; all zeros before that.
 */
export const GF_MUL: Uint8Array = new Uint8Array(65536);

let mulReady = false;

/** Fills {@link GF_MUL} (once; later calls return at once). */
export function initGfMul(): void {
  if (mulReady) return;
  mulReady = true;
  for (let a = 1; a < 256; a++) {
    const la = GF_LOG[a];
    const row = a << 8;
    for (let b = 1; b < 256; b++) GF_MUL[row | b] = GF_EXP[la + GF_LOG[b]];
  }
}

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF_EXP[i] = x;
    GF_EXP[i + 255] = x;
    GF_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLYNOMIAL;
  }
}

/** a·b in GF(2^8). */
export function gfMul(a: number, b: number): number {
  if (!mulReady) initGfMul();
  return GF_MUL[((a & 255) << 8) | (b & 255)];
}

/** a/b in GF(2^8); throws on division by zero. */
export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError("GF(2^8) division by zero");
  if (a === 0) return 0;
  return GF_EXP[GF_LOG[a] + 255 - GF_LOG[b]];
}

/** The multiplicative inverse of a (a ≠ 0). */
export function gfInv(a: number): number {
  return gfDiv(1, a);
}

/**
 * a^n with klauspost's convention: a^0 = 1 for every a (0 included), 0^n = 0 for n > 0.
 * The Vandermonde matrix depends on exactly this convention.
 */
export function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return GF_EXP[(GF_LOG[a] * n) % 255];
}

/** dst[dOff + i] ^= c · src[sOff + i] for i in [0, len). */
export function gfMulAdd(
  dst: Uint8Array,
  dOff: number,
  src: Uint8Array,
  sOff: number,
  len: number,
  c: number,
): void {
  if (c === 0) return;
  if (c === 1) {
    xorInto(dst, dOff, src, sOff, len);
    return;
  }
  if (!mulReady) initGfMul();
  const row = c << 8;
  for (let i = 0; i < len; i++) dst[dOff + i] ^= GF_MUL[row | src[sOff + i]];
}

/** dst[dOff + i] = c · src[sOff + i] for i in [0, len). */
export function gfMulSet(
  dst: Uint8Array,
  dOff: number,
  src: Uint8Array,
  sOff: number,
  len: number,
  c: number,
): void {
  if (c === 0) {
    dst.fill(0, dOff, dOff + len);
    return;
  }
  if (c === 1) {
    for (let i = 0; i < len; i++) dst[dOff + i] = src[sOff + i];
    return;
  }
  if (!mulReady) initGfMul();
  const row = c << 8;
  for (let i = 0; i < len; i++) dst[dOff + i] = GF_MUL[row | src[sOff + i]];
}

/** dst[dOff + i] ^= src[sOff + i] for i in [0, len). */
export function xorInto(
  dst: Uint8Array,
  dOff: number,
  src: Uint8Array,
  sOff: number,
  len: number,
): void {
  for (let i = 0; i < len; i++) dst[dOff + i] ^= src[sOff + i];
}

/**
 * Fills `out[base + s]` (s in [0, 256)) with up to four products packed in one 32-bit word:
 * byte k holds `coeffs[k]·s`. XOR-ing such words into an accumulator computes four
 * multiply-adds with one table load, which is what makes the pure-JS codec fast.
 */
export function packMulTable(
  out: Uint32Array,
  base: number,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
): void {
  if (!mulReady) initGfMul();
  const r0 = (c0 & 255) << 8;
  const r1 = (c1 & 255) << 8;
  const r2 = (c2 & 255) << 8;
  const r3 = (c3 & 255) << 8;
  for (let s = 0; s < 256; s++) {
    out[base + s] = (GF_MUL[r0 | s] | (GF_MUL[r1 | s] << 8) | (GF_MUL[r2 | s] << 16) |
      (GF_MUL[r3 | s] << 24)) >>> 0;
  }
}

/** acc[i] ^= table[tOff + src[sOff + i]] for i in [0, len): four packed multiply-adds a byte. */
export function packedMulAdd(
  acc: Uint32Array,
  table: Uint32Array,
  tOff: number,
  src: Uint8Array,
  sOff: number,
  len: number,
): void {
  if (tOff === 0) {
    for (let i = 0; i < len; i++) acc[i] ^= table[src[sOff + i]];
  } else {
    for (let i = 0; i < len; i++) acc[i] ^= table[tOff + src[sOff + i]];
  }
}

/**
 * Writes lane `lane` (0..3) of the packed accumulator `acc[0, len)` to `dst[dOff, dOff + len)`.
 */
export function unpackLane(
  acc: Uint32Array,
  lane: number,
  dst: Uint8Array,
  dOff: number,
  len: number,
): void {
  const shift = lane * 8;
  for (let i = 0; i < len; i++) dst[dOff + i] = acc[i] >>> shift;
}
