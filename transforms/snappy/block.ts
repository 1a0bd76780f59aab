/**
 * The snappy *block* format (one compressed buffer: a varint length, then literal and copy
 * elements): our own compressor and our own strict decoder.
 *
 * The compressor is the classic snappy scheme: the input in fragments of 64 KiB, a hash table of
 * 4-byte sequences per fragment, a lookup stride that grows while nothing matches (so
 * incompressible input is skimmed quickly), matches extended byte by byte and emitted as copy
 * elements, everything else as literals. Go's reader accepts any valid block (docs/protocol.md §7);
 * the output is not byte-identical to Go's or to other encoders', nor needs to be. It allocates
 * nothing per call: the hash table is one module-level `Uint16Array`.
 *
 * The decoder must reject every malformed block the way Go's `snappy.Decode` does (never deliver
 * wrong bytes), and decodes into a buffer the caller chooses.
 *
 * @module
 */

/** Largest compressed size of `n` input bytes (Go's `MaxEncodedLen`: 76490 for 65536). */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

/** Input is compressed in fragments of this size; copies never reach across fragments. */
const FRAGMENT = 65536;

/** Largest hash table (entries): 16 KiB entries of 16-bit fragment offsets. */
const MAX_TABLE_BITS = 14;

/**
 * A match is only looked for while at least this many bytes remain, so that every 4-byte load of
 * the search stays inside the input; the tail goes out as a literal.
 */
const INPUT_MARGIN = 15;

/** Fragments shorter than this are one literal. */
const MIN_MATCH_FRAGMENT = 1 + 1 + INPUT_MARGIN;

const table = new Uint16Array(1 << MAX_TABLE_BITS);

function load32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

/** Writes the literal `src[from, to)` at `dst[d]`; returns the new end of `dst`. */
function emitLiteral(
  src: Uint8Array,
  from: number,
  to: number,
  dst: Uint8Array,
  d: number,
): number {
  const n = to - from - 1;
  if (n < 60) {
    dst[d++] = n << 2;
  } else if (n < 0x100) {
    dst[d++] = 60 << 2;
    dst[d++] = n;
  } else {
    // A literal lies within one fragment, so it has at most 65536 bytes: two length bytes.
    dst[d++] = 61 << 2;
    dst[d++] = n & 0xff;
    dst[d++] = n >>> 8;
  }
  if (n < 64) {
    for (let i = from; i < to; i++) dst[d++] = src[i];
    return d;
  }
  dst.set(src.subarray(from, to), d);
  return d + n + 1;
}

/** Writes copy elements for `length` bytes at `offset` (1..65535); returns the new end. */
function emitCopy(dst: Uint8Array, d: number, offset: number, length: number): number {
  // The longest element copies 64 bytes; a remainder under 4 cannot be a 1-byte-offset copy, so
  // 60 are taken first when 65..67 would be left.
  while (length >= 68) {
    dst[d] = (63 << 2) | 2;
    dst[d + 1] = offset & 0xff;
    dst[d + 2] = offset >>> 8;
    d += 3;
    length -= 64;
  }
  if (length > 64) {
    dst[d] = (59 << 2) | 2;
    dst[d + 1] = offset & 0xff;
    dst[d + 2] = offset >>> 8;
    d += 3;
    length -= 60;
  }
  if (length >= 12 || offset >= 2048) {
    dst[d] = ((length - 1) << 2) | 2;
    dst[d + 1] = offset & 0xff;
    dst[d + 2] = offset >>> 8;
    return d + 3;
  }
  dst[d] = ((offset >>> 8) << 5) | ((length - 4) << 2) | 1;
  dst[d + 1] = offset & 0xff;
  return d + 2;
}

/** Compresses the fragment `src[start, end)` (at most 64 KiB) to `dst[d]`; returns the new end. */
function compressFragment(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  d: number,
): number {
  const n = end - start;
  if (n < MIN_MATCH_FRAGMENT) return n === 0 ? d : emitLiteral(src, start, end, dst, d);
  let bits = 8;
  while (bits < MAX_TABLE_BITS && 1 << bits < n) bits++;
  const shift = 32 - bits;
  table.fill(0, 0, 1 << bits);
  const sLimit = end - INPUT_MARGIN;
  let nextEmit = start;
  let s = start + 1;
  let nextHash = Math.imul(load32(src, s), 0x1e35a7bd) >>> shift;
  for (;;) {
    // Search. The stride is 1 for the first 32 misses and then grows with every miss, so
    // incompressible input is skimmed rather than hashed byte by byte.
    let skip = 32;
    let next = s;
    let candidate: number;
    do {
      s = next;
      const stride = skip >>> 5;
      skip += stride;
      next = s + stride;
      if (next > sLimit) return nextEmit < end ? emitLiteral(src, nextEmit, end, dst, d) : d;
      candidate = start + table[nextHash];
      table[nextHash] = s - start;
      nextHash = Math.imul(load32(src, next), 0x1e35a7bd) >>> shift;
    } while (load32(src, s) !== load32(src, candidate));
    if (nextEmit < s) d = emitLiteral(src, nextEmit, s, dst, d);
    // Copies, as long as the bytes right after a copy start another one.
    for (;;) {
      const base = s;
      let i = candidate + 4;
      s += 4;
      while (s < end && src[s] === src[i]) {
        s++;
        i++;
      }
      d = emitCopy(dst, d, base - candidate, s - base);
      nextEmit = s;
      if (s >= sLimit) return nextEmit < end ? emitLiteral(src, nextEmit, end, dst, d) : d;
      // Index the position before s too (cheap, and it helps the next matches), then try s.
      table[Math.imul(load32(src, s - 1), 0x1e35a7bd) >>> shift] = s - 1 - start;
      const h = Math.imul(load32(src, s), 0x1e35a7bd) >>> shift;
      candidate = start + table[h];
      table[h] = s - start;
      if (load32(src, s) !== load32(src, candidate)) break;
    }
    s++;
    nextHash = Math.imul(load32(src, s), 0x1e35a7bd) >>> shift;
  }
}

/**
 * Compresses `src` into `dst` (at least {@link maxCompressedLength} bytes) from offset 0 and
 * returns the compressed length. Any valid block is fine for Go's reader (docs/protocol.md §10).
 */
export function compressBlock(src: Uint8Array, dst: Uint8Array): number {
  let d = 0;
  // The uncompressed length as a varint (inputs are below 2^32).
  let v = src.length;
  while (v >= 0x80) {
    dst[d++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  dst[d++] = v;
  for (let at = 0; at < src.length; at += FRAGMENT) {
    d = compressFragment(src, at, Math.min(src.length, at + FRAGMENT), dst, d);
  }
  return d;
}

/**
 * Reads the declared uncompressed length at the start of a block in `src[start, end)`. Returns
 * the length and sets {@link varintSize} to the bytes the varint took, or returns -1 when the
 * varint is truncated, over-long, or above 2^32-1 (Go: `ErrCorrupt`).
 */
export function decodedLength(src: Uint8Array, start = 0, end: number = src.length): number {
  let value = 0;
  let scale = 1;
  for (let i = start; i < end && i < start + 10; i++) {
    const b = src[i];
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (value > 0xffffffff) return -1;
      varintSize = i - start + 1;
      return value;
    }
    scale *= 128;
  }
  return -1;
}

/** Bytes taken by the varint of the last successful {@link decodedLength} call. */
export let varintSize = 0;

/**
 * Decodes the elements of a block (the bytes after its length varint) in `src[start, end)` into
 * exactly `dst` (whose length is the declared uncompressed length). Returns false when the block
 * is malformed: an element runs past the input, a copy reaches before the output start or past
 * its end, or the elements do not fill `dst` exactly.
 */
export function decodeBlockElements(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
): boolean {
  const dLen = dst.length;
  let s = start;
  let d = 0;
  while (s < end) {
    const tag = src[s];
    let length: number;
    if ((tag & 3) === 0) {
      let x = tag >>> 2;
      if (x < 60) {
        s += 1;
      } else {
        const extra = x - 59; // 1..4 little-endian length bytes follow
        if (s + 1 + extra > end) return false;
        x = src[s + 1];
        if (extra > 1) x |= src[s + 2] << 8;
        if (extra > 2) x |= src[s + 3] << 16;
        if (extra > 3) x = (x | (src[s + 4] << 24)) >>> 0;
        s += 1 + extra;
      }
      length = x + 1;
      if (length > dLen - d || length > end - s) return false;
      if (length > 64) {
        dst.set(src.subarray(s, s + length), d);
      } else {
        for (let k = 0; k < length; k++) dst[d + k] = src[s + k];
      }
      d += length;
      s += length;
      continue;
    }
    let offset: number;
    switch (tag & 3) {
      case 1:
        if (s + 2 > end) return false;
        length = 4 + ((tag >>> 2) & 7);
        offset = ((tag & 0xe0) << 3) | src[s + 1];
        s += 2;
        break;
      case 2:
        if (s + 3 > end) return false;
        length = 1 + (tag >>> 2);
        offset = src[s + 1] | (src[s + 2] << 8);
        s += 3;
        break;
      default:
        if (s + 5 > end) return false;
        length = 1 + (tag >>> 2);
        offset = (src[s + 1] | (src[s + 2] << 8) | (src[s + 3] << 16) | (src[s + 4] << 24)) >>> 0;
        s += 5;
    }
    if (offset <= 0 || offset > d || length > dLen - d) return false;
    // Copies are at most 64 bytes and may overlap (a repeating pattern), so a forward byte loop
    // is both correct and faster than a native call per element.
    for (let k = d - offset, end = d + length; d < end;) dst[d++] = dst[k++];
  }
  return d === dLen;
}

/**
 * Decodes a whole block. Returns the uncompressed bytes, or null when the block is malformed or
 * declares more than `maxLength` bytes.
 */
export function decodeBlock(src: Uint8Array, maxLength = 65536): Uint8Array | null {
  const n = decodedLength(src);
  if (n < 0 || n > maxLength) return null;
  const dst = new Uint8Array(n);
  return decodeBlockElements(src, varintSize, src.length, dst) ? dst : null;
}
