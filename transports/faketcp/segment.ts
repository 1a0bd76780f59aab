/**
 * TCP segments as fake TCP writes and reads them: the 20-byte header it builds (no options), the
 * Internet checksum over the IPv4/IPv6 pseudo-header, and the reading of captured packets (an
 * IPv4 raw socket hands over the IP header too; an IPv6 one starts at the TCP header).
 *
 * Pure code: no FFI, no sockets, no allocation.
 *
 * @module
 */

/** TCP flag bits (byte 13 of the header). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
} as const;

/** Bytes in the header fake TCP sends (data offset 5, no options). */
export const TCP_HEADER = 20;

/** IANA protocol number of TCP (pseudo-header and raw sockets). */
export const IPPROTO_TCP = 6;

/**
 * Writes a 20-byte TCP header at `dst[at]`: ports, sequence and acknowledgement numbers, data
 * offset 5, `flags`, `window`, checksum 0 (fill it with {@link tcpChecksum}), urgent pointer 0.
 */
export function writeTcpHeader(
  dst: Uint8Array,
  at: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
): void {
  dst[at] = srcPort >>> 8;
  dst[at + 1] = srcPort & 0xff;
  dst[at + 2] = dstPort >>> 8;
  dst[at + 3] = dstPort & 0xff;
  dst[at + 4] = seq >>> 24;
  dst[at + 5] = (seq >>> 16) & 0xff;
  dst[at + 6] = (seq >>> 8) & 0xff;
  dst[at + 7] = seq & 0xff;
  dst[at + 8] = ack >>> 24;
  dst[at + 9] = (ack >>> 16) & 0xff;
  dst[at + 10] = (ack >>> 8) & 0xff;
  dst[at + 11] = ack & 0xff;
  dst[at + 12] = 5 << 4;
  dst[at + 13] = flags;
  dst[at + 14] = window >>> 8;
  dst[at + 15] = window & 0xff;
  dst[at + 16] = 0;
  dst[at + 17] = 0;
  dst[at + 18] = 0;
  dst[at + 19] = 0;
}

/**
 * Adds the bytes `buf[start, end)` as big-endian 16-bit words to `acc` (an odd last byte is
 * padded with a zero byte). The result is an unfolded sum; fold it with {@link foldChecksum}.
 * Safe for one datagram at a time: stays far below 2^31 for buffers under 32 KiB.
 */
export function sum16(buf: Uint8Array, start: number, end: number, acc: number): number {
  let s = acc;
  let i = start;
  const pairs = end - 3;
  for (; i < pairs; i += 4) {
    s += ((buf[i] << 8) | buf[i + 1]) + ((buf[i + 2] << 8) | buf[i + 3]);
  }
  for (; i < end - 1; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if (i < end) s += buf[i] << 8;
  return s;
}

/**
 * {@link sum16} over `view[start, end)`, reading big-endian 32-bit words (twice as fast as bytes
 * in V8). Summing 32-bit words and folding gives the same one's-complement sum as 16-bit words,
 * since 2^16 ≡ 1 (mod 2^16 − 1). The result can exceed 2^32 (still exact below 2^53): fold it
 * with {@link foldChecksum}.
 */
export function sum32(view: DataView, start: number, end: number, acc: number): number {
  let s = acc;
  let i = start;
  const words = end - 3;
  for (; i < words; i += 4) s += view.getUint32(i, false);
  if (i < end - 1) {
    s += view.getUint16(i, false);
    i += 2;
  }
  if (i < end) s += view.getUint8(i) << 8;
  return s;
}

/** Folds a sum from {@link sum16} to 16 bits and complements it: the checksum field's value. */
export function foldChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * The part of the pseudo-header sum that is the same for every segment of a flow: source and
 * destination addresses (4 or 16 bytes each, network order) and the protocol number. Add the
 * TCP length per segment ({@link tcpChecksum} does).
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array): number {
  return sum16(dst, 0, dst.length, sum16(src, 0, src.length, IPPROTO_TCP));
}

/**
 * The checksum of a segment made of the header `hdr[hAt, hAt + hLen)` and the payload bytes
 * `[pStart, pEnd)` of `payload` (a DataView, such as a packet's `view`), given the flow's
 * {@link pseudoHeaderSum}. Header and payload may live in different buffers (fake TCP sends
 * them as two iovecs); the header's own checksum field must be zero. An odd-length header is not
 * supported (TCP headers are multiples of 4).
 */
export function tcpChecksum(
  pseudo: number,
  hdr: Uint8Array,
  hAt: number,
  hLen: number,
  payload: DataView,
  pStart: number,
  pEnd: number,
): number {
  const len = hLen + pEnd - pStart;
  // The TCP length is 16 bits in the IPv4 pseudo-header and 32 in IPv6's; for lengths below
  // 65536 both add the same two words.
  let s = pseudo + (len & 0xffff) + (len >>> 16);
  s = sum16(hdr, hAt, hAt + hLen, s);
  s = sum32(payload, pStart, pEnd, s);
  return foldChecksum(s);
}

/** Stores a checksum at the header's checksum field (offset 16). */
export function putChecksum(hdr: Uint8Array, hAt: number, checksum: number): void {
  hdr[hAt + 16] = checksum >>> 8;
  hdr[hAt + 17] = checksum & 0xff;
}

/**
 * Where the TCP header starts in an IPv4 packet `buf[at, at + len)` as an IPv4 raw socket
 * delivers it (IP header first), or -1 when it is not a well-formed, unfragmented TCP packet.
 * The packet's real length (the IP total length, which may be shorter than `len`) is written to
 * `out[0]`.
 */
export function ipv4TcpOffset(buf: Uint8Array, at: number, len: number, out: Int32Array): number {
  if (len < 20 || buf[at] >>> 4 !== 4) return -1;
  const ihl = (buf[at] & 0x0f) * 4;
  if (ihl < 20 || buf[at + 9] !== IPPROTO_TCP) return -1;
  const total = (buf[at + 2] << 8) | buf[at + 3];
  if (total < ihl + TCP_HEADER || total > len) return -1;
  // A fragment (more-fragments bit or an offset) cannot be parsed; raw sockets see reassembled
  // packets, so this only rejects odd input.
  if ((((buf[at + 6] << 8) | buf[at + 7]) & 0x3fff) !== 0) return -1;
  out[0] = total;
  return at + ihl;
}

/** The TCP header length (data offset × 4) of the header at `buf[at]`. */
export function tcpHeaderLength(buf: Uint8Array, at: number): number {
  return (buf[at + 12] >>> 4) * 4;
}

/** The source port of the TCP header at `buf[at]`. */
export function tcpSrcPort(buf: Uint8Array, at: number): number {
  return (buf[at] << 8) | buf[at + 1];
}

/** The destination port of the TCP header at `buf[at]`. */
export function tcpDstPort(buf: Uint8Array, at: number): number {
  return (buf[at + 2] << 8) | buf[at + 3];
}

/** The sequence number of the TCP header at `buf[at]`. */
export function tcpSeq(buf: Uint8Array, at: number): number {
  return ((buf[at + 4] << 24) | (buf[at + 5] << 16) | (buf[at + 6] << 8) | buf[at + 7]) >>> 0;
}

/** The acknowledgement number of the TCP header at `buf[at]`. */
export function tcpAck(buf: Uint8Array, at: number): number {
  return ((buf[at + 8] << 24) | (buf[at + 9] << 16) | (buf[at + 10] << 8) | buf[at + 11]) >>> 0;
}

/** The flags byte of the TCP header at `buf[at]`. */
export function tcpFlags(buf: Uint8Array, at: number): number {
  return buf[at + 13];
}

/** The window field of the TCP header at `buf[at]`. */
export function tcpWindow(buf: Uint8Array, at: number): number {
  return (buf[at + 14] << 8) | buf[at + 15];
}
