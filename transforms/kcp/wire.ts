/**
 * KCP segment wire format (docs/protocol.md §5.1): a 24-byte little-endian header followed by `len`
 * payload bytes; one datagram carries several segments back to back.
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | conv u32le |
 * | 4 | 1 | cmd (81 PUSH, 82 ACK, 83 WASK, 84 WINS) |
 * | 5 | 1 | frg (always 0 in stream mode) |
 * | 6 | 2 | wnd u16le (free receive window, in segments) |
 * | 8 | 4 | ts u32le |
 * | 12 | 4 | sn u32le |
 * | 16 | 4 | una u32le |
 * | 20 | 4 | len u32le |
 *
 * The accessors read and write fields in place over `(buffer, offset)`, so the hot path never
 * builds a segment object. {@link parseDatagram} is the allocating convenience for tests and tools.
 *
 * @module
 */

/** Header bytes in front of every segment (`IKCP_OVERHEAD`). */
export const KCP_OVERHEAD = 24;

/** Segment commands. */
export const KcpCmd = {
  /** Data. */
  Push: 81,
  /** Acknowledgement of one sn (with the echoed ts). */
  Ack: 82,
  /** Window probe: asks the peer to tell its window. */
  Wask: 83,
  /** Window tell: the answer to {@link KcpCmd.Wask}, or an unsolicited "room again". */
  Wins: 84,
} as const;

/** One of the four {@link KcpCmd} values. */
export type KcpCmdValue = typeof KcpCmd[keyof typeof KcpCmd];

/** True for the four commands KCP knows. */
export function isKcpCmd(cmd: number): cmd is KcpCmdValue {
  return cmd >= KcpCmd.Push && cmd <= KcpCmd.Wins;
}

/** Reads a u16le at `off`. */
export function readU16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

/** Reads a u32le at `off`. */
export function readU32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** Writes the low 16 bits of `v` little-endian at `off`. */
export function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
}

/** Writes the low 32 bits of `v` little-endian at `off`. */
export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

/** conv of the segment whose header starts at `off`. */
export function segConv(b: Uint8Array, off: number): number {
  return readU32(b, off);
}
/** cmd of the segment at `off`. */
export function segCmd(b: Uint8Array, off: number): number {
  return b[off + 4];
}
/** frg of the segment at `off`. */
export function segFrg(b: Uint8Array, off: number): number {
  return b[off + 5];
}
/** wnd of the segment at `off`. */
export function segWnd(b: Uint8Array, off: number): number {
  return readU16(b, off + 6);
}
/** ts of the segment at `off`. */
export function segTs(b: Uint8Array, off: number): number {
  return readU32(b, off + 8);
}
/** sn of the segment at `off`. */
export function segSn(b: Uint8Array, off: number): number {
  return readU32(b, off + 12);
}
/** una of the segment at `off`. */
export function segUna(b: Uint8Array, off: number): number {
  return readU32(b, off + 16);
}
/** len of the segment at `off` (payload bytes that follow the header). */
export function segLen(b: Uint8Array, off: number): number {
  return readU32(b, off + 20);
}

/**
 * Writes a 24-byte header at `off` and returns the offset just after it (where the payload goes).
 * Every number is truncated to its field width, as the Go encoder does.
 */
export function writeSegmentHeader(
  b: Uint8Array,
  off: number,
  conv: number,
  cmd: number,
  frg: number,
  wnd: number,
  ts: number,
  sn: number,
  una: number,
  len: number,
): number {
  writeU32(b, off, conv);
  b[off + 4] = cmd;
  b[off + 5] = frg;
  writeU16(b, off + 6, wnd);
  writeU32(b, off + 8, ts);
  writeU32(b, off + 12, sn);
  writeU32(b, off + 16, una);
  writeU32(b, off + 20, len);
  return off + KCP_OVERHEAD;
}

/** The header fields of one segment, as plain numbers. */
export interface SegmentHeader {
  /** Conversation id. */
  conv: number;
  /** {@link KcpCmd} value (or garbage, when read from garbage). */
  cmd: number;
  /** Fragment count (0 in stream mode). */
  frg: number;
  /** Sender's free receive window in segments. */
  wnd: number;
  /** Timestamp (PUSH: sender clock; ACK: echo). */
  ts: number;
  /** Sequence number. */
  sn: number;
  /** Cumulative acknowledgement. */
  una: number;
  /** Payload length. */
  len: number;
}

/** Reads the header at `off` into `into` (reuse one object to avoid allocation). */
export function readSegmentHeader(
  b: Uint8Array,
  off: number,
  into: SegmentHeader = { conv: 0, cmd: 0, frg: 0, wnd: 0, ts: 0, sn: 0, una: 0, len: 0 },
): SegmentHeader {
  into.conv = readU32(b, off);
  into.cmd = b[off + 4];
  into.frg = b[off + 5];
  into.wnd = readU16(b, off + 6);
  into.ts = readU32(b, off + 8);
  into.sn = readU32(b, off + 12);
  into.una = readU32(b, off + 16);
  into.len = readU32(b, off + 20);
  return into;
}

/** A parsed segment with a view of its payload (from {@link parseDatagram}). */
export interface ParsedSegment extends SegmentHeader {
  /** The payload (a view into the datagram, not a copy). */
  data: Uint8Array;
}

/** Result of {@link parseDatagram}. */
export interface ParsedDatagram {
  /** The well-formed segments before the first problem. */
  segments: ParsedSegment[];
  /** Why parsing stopped early, or null when every byte was consumed as whole segments. */
  error: null | "short" | "length" | "command" | "trailing";
}

/**
 * Splits a datagram into segments (allocates; for tests, tools and cold paths). Stops at a
 * header whose `len` exceeds what remains (`"length"`) or whose command is unknown
 * (`"command"`); fewer than 24 bytes in total is `"short"`, and 1..23 leftover bytes after the
 * last segment are `"trailing"` (KCP itself ignores such a tail).
 */
export function parseDatagram(
  b: Uint8Array,
  start = 0,
  end: number = b.length,
): ParsedDatagram {
  const segments: ParsedSegment[] = [];
  if (end - start < KCP_OVERHEAD) return { segments, error: "short" };
  let off = start;
  while (end - off >= KCP_OVERHEAD) {
    const h = readSegmentHeader(b, off) as ParsedSegment;
    off += KCP_OVERHEAD;
    if (h.len > end - off) return { segments, error: "length" };
    if (!isKcpCmd(h.cmd)) return { segments, error: "command" };
    h.data = b.subarray(off, off + h.len);
    segments.push(h);
    off += h.len;
  }
  return { segments, error: off === end ? null : "trailing" };
}

/**
 * The conversation of a whole datagram `b[start, end)` when every segment is well formed (the
 * same conv throughout, a known command, a length within the datagram), else -1; fewer than 24
 * bytes after the last segment are ignored, as KCP ignores them. `first.sn` receives the first
 * segment's sn. Allocates nothing: a server checks every datagram that would create a session
 * with it.
 */
export function datagramConv(
  b: Uint8Array,
  start: number,
  end: number,
  first: { sn: number },
): number {
  if (end - start < KCP_OVERHEAD) return -1;
  const conv = segConv(b, start);
  first.sn = segSn(b, start);
  let off = start;
  while (end - off >= KCP_OVERHEAD) {
    if (segConv(b, off) !== conv || !isKcpCmd(segCmd(b, off))) return -1;
    const len = segLen(b, off);
    off += KCP_OVERHEAD;
    if (len > end - off) return -1;
    off += len;
  }
  return conv;
}
