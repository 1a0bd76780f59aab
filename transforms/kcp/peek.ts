/**
 * What a server may learn from one received datagram before any session sees it (after the
 * shared stages: crypt's check and open): whether it is KCP at all, and the conversation id and
 * sequence number of its first segment. The listener opens a session only for a datagram that
 * is well-formed KCP, so that junk from many source addresses (which passes `-crypt null`, or
 * `-crypt none` with a valid checksum) opens nothing.
 *
 * Well-formed, as kcp-go's input would take it whole (PROTOCOL.md §5.1, §5.2): one or more
 * 24-byte segment headers, each with a command 81..84 and a `len` that fits in what remains,
 * every segment with the first one's conv; fewer than 24 bytes left at the end are ignored, as
 * KCP ignores them. With FEC framing (PROTOCOL.md §4.1) a data shard must hold a sane `size`
 * (2 ≤ size, within the datagram) around well-formed KCP; a parity shard carries no KCP and no
 * conv, and is reported as such.
 *
 * Pure functions over `(buffer, start, end)`: no allocation, no state.
 *
 * @module
 */

import { isKcpCmd, KCP_OVERHEAD, readU16, readU32 } from "./wire.ts";

/** Where the KCP bytes are once the shared stages ran (see `KcpListenerOptions.locator`). */
export type ConvLocator = "kcp" | "fec" | "none";

/** What {@link peekDatagram} found. */
export const Peek = {
  /** Well-formed KCP: `conv` and `sn` of its first segment are set. */
  Kcp: 0,
  /** An FEC parity shard: no KCP inside, no conv. */
  Parity: 1,
  /** Neither: junk, truncated, or FEC with a broken data header. */
  Invalid: 2,
  /** The locator is `"none"`: a per-session stage hides the KCP bytes, nothing can be said. */
  Opaque: 3,
} as const;

/** One of the {@link Peek} values. */
export type PeekKind = typeof Peek[keyof typeof Peek];

/** The conv and sn of the first segment, filled in by {@link peekDatagram} for {@link Peek.Kcp}. */
export interface PeekedSegment {
  /** Conversation id. */
  conv: number;
  /** Sequence number (sn 0 from a known address means a restarted client). */
  sn: number;
}

const FEC_TYPE_DATA = 0xf1;
const FEC_TYPE_PARITY = 0xf2;
/** seqid + flag. */
const FEC_HEADER = 6;
/** seqid + flag + size: where KCP starts in a data shard. */
const FEC_DATA_HEADER = 8;

/**
 * The conv of the KCP datagram `b[start, end)` when every segment in it is well-formed and has
 * that conv, else -1.
 */
export function kcpDatagramConv(b: Uint8Array, start: number, end: number): number {
  if (end - start < KCP_OVERHEAD) return -1;
  const conv = readU32(b, start);
  let off = start;
  while (end - off >= KCP_OVERHEAD) {
    if (readU32(b, off) !== conv || !isKcpCmd(b[off + 4])) return -1;
    const len = readU32(b, off + 20);
    off += KCP_OVERHEAD;
    if (len > end - off) return -1;
    off += len;
  }
  return conv;
}

/**
 * Classifies the datagram `b[start, end)` as found after the shared stages with `locator`;
 * for {@link Peek.Kcp} writes the first segment's conv and sn into `into`.
 */
export function peekDatagram(
  b: Uint8Array,
  start: number,
  end: number,
  locator: ConvLocator,
  into: PeekedSegment,
): PeekKind {
  if (locator === "none") return Peek.Opaque;
  let k = start, kEnd = end;
  if (locator === "fec" && end - start >= FEC_HEADER && b[start + 5] === 0) {
    const flag = b[start + 4];
    if (flag === FEC_TYPE_PARITY) return Peek.Parity;
    if (flag === FEC_TYPE_DATA) {
      if (end - start < FEC_DATA_HEADER) return Peek.Invalid;
      const size = readU16(b, start + FEC_HEADER);
      if (size < 2 || size > end - start - FEC_HEADER) return Peek.Invalid;
      k = start + FEC_DATA_HEADER;
      kEnd = start + FEC_HEADER + size;
    }
  }
  const conv = kcpDatagramConv(b, k, kEnd);
  if (conv < 0) return Peek.Invalid;
  into.conv = conv;
  into.sn = readU32(b, k + 12);
  return Peek.Kcp;
}
