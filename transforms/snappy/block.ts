/**
 * The snappy *block* format (one compressed buffer: a varint length, then literal and copy
 * elements).
 *
 * Compression is `snappyjs`'s. Decompression is our own strict decoder: snappyjs' decoder does not
 * check that the output length matches the declared length, nor that a copy element's bytes are
 * present, and it allocates its output; the framing layer must reject every malformed block the
 * way Go's `snappy.Decode` does (never deliver wrong bytes) and decodes into a buffer it chooses.
 *
 * @module
 */

import { SnappyCompressor } from "snappyjs/snappy_compressor.js";

/** Largest compressed size of `n` input bytes (snappyjs' bound; 76490 for 65536, as Go's). */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

/**
 * Compresses `src` into `dst` (at least {@link maxCompressedLength} bytes) from offset 0 and
 * returns the compressed length. Any valid block is fine for Go's reader (docs/protocol.md §10).
 */
export function compressBlock(src: Uint8Array, dst: Uint8Array): number {
  return new SnappyCompressor(src).compressToBuffer(dst);
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
