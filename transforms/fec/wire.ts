/**
 * The FEC header kcp-go puts in front of every datagram when FEC is on (docs/protocol.md §4.1):
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | seqid, u32le |
 * | 4 | 2 | flag, u16le: 0x00F1 data shard, 0x00F2 parity shard |
 * | 6 | 2 | data only: size u16le = 2 + KCP bytes (counts itself) |
 * | 8 | … | data: the KCP datagram; parity: parity bytes start at 6 |
 *
 * A bare KCP datagram has cmd (81..84) and frg at offset 4, so the u16le there can never read
 * 0x00F1/0x00F2: that is how a receiver tells FEC from plain KCP per datagram.
 *
 * @module
 */

/** Bytes of seqid + flag. */
export const FEC_HEADER_SIZE = 6;
/** Bytes of seqid + flag + size: what a data shard adds in front of the KCP datagram. */
export const FEC_DATA_HEADER_SIZE = 8;
/** Flag of a data shard. */
export const FEC_TYPE_DATA = 0xf1;
/** Flag of a parity shard. */
export const FEC_TYPE_PARITY = 0xf2;

/** What {@link classifyDatagram} found. */
export const DatagramKind = {
  /** Not FEC (a bare KCP datagram, or too short to say): pass it on unchanged. */
  Plain: 0,
  /** An FEC data shard. */
  Data: 1,
  /** An FEC parity shard. */
  Parity: 2,
} as const;

/** One of the {@link DatagramKind} values. */
export type DatagramKind = typeof DatagramKind[keyof typeof DatagramKind];

/** Tells a data shard, a parity shard and anything else apart by the u16le at offset 4. */
export function classifyDatagram(buf: Uint8Array, start: number, end: number): DatagramKind {
  if (end - start < FEC_HEADER_SIZE) return DatagramKind.Plain;
  if (buf[start + 5] !== 0) return DatagramKind.Plain;
  const f = buf[start + 4];
  if (f === FEC_TYPE_DATA) return DatagramKind.Data;
  if (f === FEC_TYPE_PARITY) return DatagramKind.Parity;
  return DatagramKind.Plain;
}

/**
 * Where seqids wrap: the largest multiple of ds+ps not above 0xFFFFFFFF, so that no group
 * straddles the wrap (10+3 → 4294967287, 3+2 → 4294967295).
 */
export function paws(shardSize: number): number {
  return Math.floor(0xffffffff / shardSize) * shardSize;
}

/** The signed 32-bit distance a − b between two wrapping sequence numbers (kcp-go's _itimediff). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Reads a u32le. */
export function readU32(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

/** Reads a u16le. */
export function readU16(buf: Uint8Array, at: number): number {
  return buf[at] | (buf[at + 1] << 8);
}

/** Writes a u32le. */
export function writeU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

/** Writes a u16le. */
export function writeU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
}

/** Writes a data shard header (seqid, 0xF1, size) at `at`; `kcpLength` is the KCP bytes after. */
export function writeDataHeader(
  buf: Uint8Array,
  at: number,
  seqid: number,
  kcpLength: number,
): void {
  writeU32(buf, at, seqid);
  writeU16(buf, at + 4, FEC_TYPE_DATA);
  writeU16(buf, at + 6, kcpLength + 2);
}

/** Writes a parity shard header (seqid, 0xF2) at `at`; parity bytes follow at `at + 6`. */
export function writeParityHeader(buf: Uint8Array, at: number, seqid: number): void {
  writeU32(buf, at, seqid);
  writeU16(buf, at + 4, FEC_TYPE_PARITY);
}
