/**
 * IP addresses as text and as Linux `sockaddr_in`/`sockaddr_in6` bytes, and the per-socket table
 * that interns peer addresses so that every received datagram can carry its source without
 * allocating.
 *
 * Pure code: no FFI, no sockets. `transports/udp.ts` reads source addresses straight out of the
 * kernel's `sockaddr` buffers with {@link PeerTable.lookup} and sends with the ready-made
 * `sockaddr` each {@link UdpPeer} carries.
 *
 * @module
 */

import type { PeerAddress } from "../pipeline/packet.ts";

/** `sizeof(struct sockaddr_in)`. */
export const SOCKADDR_IN_SIZE = 16;
/** `sizeof(struct sockaddr_in6)`. */
export const SOCKADDR_IN6_SIZE = 28;
/** Bytes reserved per address in the buffers handed to the kernel (a `sockaddr_in6`, rounded). */
export const SOCKADDR_SLOT = 32;

const AF_INET = 2;
const AF_INET6 = 10;

/** An IP address parsed from text. */
export interface IpAddress {
  /** 4 or 6. An IPv4-mapped IPv6 literal (`::ffff:1.2.3.4`) is reported as IPv4. */
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** IPv6 scope (interface index) from a numeric `%zone`, else 0. */
  scope: number;
}

/** Parses dotted-quad IPv4 (exactly four decimal parts, 0..255, no leading zeros) to a u32. */
export function parseIPv4(s: string): number | null {
  let value = 0, part = 0, digits = 0, parts = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || parts === 4) return null;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return null; // leading zero: Go rejects it too
      part = part * 10 + (c - 48);
      if (part > 255) return null;
      digits++;
    } else return null;
  }
  return parts === 4 ? value : null;
}

/** Parses IPv6 text (`::` compression, trailing dotted IPv4 allowed; no zone) to 16 bytes. */
export function parseIPv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let gap = -1; // index in `out` where `::` was
  let n = 0; // bytes written
  let i = 0;
  if (s.startsWith("::")) {
    gap = 0;
    i = 2;
    if (s.length === 2) return out;
  } else if (s.startsWith(":")) return null;
  while (i < s.length) {
    if (n === 16) return null;
    // A dotted IPv4 tail takes the last 4 bytes.
    let j = i;
    while (j < s.length && s[j] !== ":" && s[j] !== ".") j++;
    if (j < s.length && s[j] === ".") {
      if (n > 12) return null;
      const v4 = parseIPv4(s.slice(i));
      if (v4 === null) return null;
      out[n++] = v4 >>> 24;
      out[n++] = (v4 >>> 16) & 255;
      out[n++] = (v4 >>> 8) & 255;
      out[n++] = v4 & 255;
      i = s.length;
      break;
    }
    if (j === i || j - i > 4) return null;
    let word = 0;
    for (let k = i; k < j; k++) {
      const h = hexValue(s.charCodeAt(k));
      if (h < 0) return null;
      word = word * 16 + h;
    }
    out[n++] = word >>> 8;
    out[n++] = word & 255;
    i = j;
    if (i === s.length) break;
    // s[i] === ":"
    i++;
    if (i < s.length && s[i] === ":") {
      if (gap >= 0) return null;
      gap = n;
      i++;
      if (i === s.length) break;
    } else if (i === s.length) return null; // trailing single colon
  }
  if (gap < 0) return n === 16 ? out : null;
  if (n === 16) return null; // "::" must stand for at least one group
  const tail = n - gap;
  out.copyWithin(16 - tail, gap, n);
  out.fill(0, gap, 16 - tail);
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses an IP literal: IPv4, IPv6 (optionally in brackets, optionally with a numeric `%zone`).
 * IPv4-mapped IPv6 comes back as IPv4, as Go prints it. Returns `null` for anything else
 * (hostnames, named zones).
 */
export function parseIp(text: string): IpAddress | null {
  let s = text;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const v4 = parseIPv4(s);
  if (v4 !== null) return { family: 4, bytes: u32ToBytes(v4), scope: 0 };
  let scope = 0;
  const pct = s.indexOf("%");
  if (pct >= 0) {
    const zone = s.slice(pct + 1);
    if (!/^[0-9]{1,10}$/.test(zone)) return null;
    scope = Number(zone);
    if (scope > 0xffffffff) return null;
    s = s.slice(0, pct);
  }
  const v6 = parseIPv6(s);
  if (v6 === null) return null;
  if (isV4Mapped(v6, 0)) return { family: 4, bytes: v6.slice(12), scope: 0 };
  return { family: 6, bytes: v6, scope };
}

function u32ToBytes(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

function isV4Mapped(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return false;
  return b[at + 10] === 0xff && b[at + 11] === 0xff;
}

/** The text form of an IP address (`127.0.0.1`, `::1`, `fe80::1%2`). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const b = ip.bytes;
    return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  }
  return formatIPv6(ip.bytes) + (ip.scope !== 0 ? `%${ip.scope}` : "");
}

/** `a.b.c.d` for a u32 in network order. */
export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text for 16 IPv6 bytes (longest zero run of 2+ groups as `::`, lower-case hex). */
export function formatIPv6(b: Uint8Array, at = 0): string {
  if (isV4Mapped(b, at)) {
    return "::ffff:" + formatIPv4(
      ((b[at + 12] << 24) | (b[at + 13] << 16) | (b[at + 14] << 8) | b[at + 15]) >>> 0,
    );
  }
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (b[at + 2 * i] << 8) | b[at + 2 * i + 1];
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestAt < 0) return g.map((x) => x.toString(16)).join(":");
  const head = g.slice(0, bestAt).map((x) => x.toString(16)).join(":");
  const tail = g.slice(bestAt + bestLen).map((x) => x.toString(16)).join(":");
  return `${head}::${tail}`;
}

/** `0.0.0.0` or `::`: what a socket of `family` binds to take every interface. */
export function anyAddress(family: 4 | 6): IpAddress {
  return family === 4
    ? { family: 4, bytes: new Uint8Array(4), scope: 0 }
    : { family: 6, bytes: new Uint8Array(16), scope: 0 };
}

/** `host:port`, IPv6 in brackets, as Go's `net.JoinHostPort`. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Writes a `sockaddr_in` (family 4) or `sockaddr_in6` (family 6) for `ip` into `dst` at `at`.
 * An IPv4 `ip` written as family 6 becomes IPv4-mapped (`::ffff:a.b.c.d`), which is how a
 * dual-stack socket addresses IPv4 peers. Returns the sockaddr length.
 */
export function writeSockaddr(
  dst: Uint8Array,
  at: number,
  family: 4 | 6,
  ip: IpAddress,
  port: number,
): number {
  const v = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  if (family === 4) {
    if (ip.family !== 4) throw new TypeError("an IPv6 address cannot be written as sockaddr_in");
    dst.fill(0, at, at + SOCKADDR_IN_SIZE);
    v.setUint16(at, AF_INET, true);
    v.setUint16(at + 2, port, false);
    dst.set(ip.bytes, at + 4);
    return SOCKADDR_IN_SIZE;
  }
  dst.fill(0, at, at + SOCKADDR_IN6_SIZE);
  v.setUint16(at, AF_INET6, true);
  v.setUint16(at + 2, port, false);
  if (ip.family === 4) {
    dst[at + 18] = 0xff;
    dst[at + 19] = 0xff;
    dst.set(ip.bytes, at + 20);
  } else {
    dst.set(ip.bytes, at + 8);
    v.setUint32(at + 24, ip.scope, true);
  }
  return SOCKADDR_IN6_SIZE;
}

/**
 * Reads a `sockaddr_in`/`sockaddr_in6` (cold path: allocates). IPv4-mapped IPv6 comes back as
 * IPv4. Returns `null` for other families or short lengths.
 */
export function readSockaddr(
  src: Uint8Array,
  at: number,
  len: number,
): { ip: IpAddress; port: number } | null {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const fam = v.getUint16(at, true);
  const port = v.getUint16(at + 2, false);
  if (fam === AF_INET && len >= SOCKADDR_IN_SIZE) {
    return { ip: { family: 4, bytes: src.slice(at + 4, at + 8), scope: 0 }, port };
  }
  if (fam === AF_INET6 && len >= SOCKADDR_IN6_SIZE) {
    if (isV4Mapped(src, at + 8)) {
      return { ip: { family: 4, bytes: src.slice(at + 20, at + 24), scope: 0 }, port };
    }
    const scope = v.getUint32(at + 24, true);
    return { ip: { family: 6, bytes: src.slice(at + 8, at + 24), scope }, port };
  }
  return null;
}

/**
 * A peer address interned by a {@link PeerTable}: the {@link PeerAddress} fields plus the
 * ready-to-send `sockaddr` in its socket's family. Immutable once made.
 */
export class UdpPeer implements PeerAddress {
  /** `ipv4` for IPv4 and IPv4-mapped peers, `ipv6` otherwise. */
  readonly family: "ipv4" | "ipv6";
  /** `127.0.0.1`, `::1`, `fe80::1%2`. */
  readonly hostname: string;
  /** Port number. */
  readonly port: number;
  /** `host:port` (IPv6 in brackets), as Go's `UDPAddr.String()`. */
  readonly key: string;
  /** The table that made this peer (the socket it can be sent to through). */
  readonly table: PeerTable;
  /** The `sockaddr` bytes for `sendmmsg` (a view into the table's off-heap slab). */
  readonly sockaddr: Uint8Array;
  /** Length of {@link UdpPeer.sockaddr}'s content (16 or 28). */
  readonly socklen: number;
  /** Native address of {@link UdpPeer.sockaddr} (0 when the table has no address resolver). */
  readonly native: number;
  /** A DataView over {@link UdpPeer.sockaddr}, for allocation-free comparisons. */
  readonly sockaddrView: DataView;

  /** Made by {@link PeerTable} only. */
  constructor(
    table: PeerTable,
    ip: IpAddress,
    port: number,
    sockaddr: Uint8Array,
    socklen: number,
    native: number,
  ) {
    this.table = table;
    this.family = ip.family === 4 ? "ipv4" : "ipv6";
    this.hostname = formatIp(ip);
    this.port = port;
    this.key = joinHostPort(this.hostname, port);
    this.sockaddr = sockaddr;
    this.socklen = socklen;
    this.native = native;
    this.sockaddrView = new DataView(sockaddr.buffer, sockaddr.byteOffset, sockaddr.byteLength);
  }

  /** The key, for logs. */
  toString(): string {
    return this.key;
  }
}

const SLAB_PEERS = 256;
const KEY_WORDS = 6; // 4 address words, port, scope
const V4_MAPPED_W2 = 0x0000ffff;

/**
 * Interns peer addresses for one socket by (ip, port): each distinct source gets one
 * {@link UdpPeer}, made the first time it is seen; later datagrams from it reuse that object,
 * found with no allocation by an open-addressing table keyed on the raw address words.
 *
 * Memory is bounded: when `maxPeers` distinct peers have been interned the table forgets them
 * all and starts again (peers already handed out stay valid and sendable, but a peer seen again
 * afterwards gets a new object). So compare peers by {@link UdpPeer.key}, or by identity only as a
 * fast path.
 */
export class PeerTable {
  /** The socket's family: 4 writes `sockaddr_in`, 6 writes `sockaddr_in6` (IPv4 as mapped). */
  readonly family: 4 | 6;
  /** Interned peers before the table starts again. */
  readonly maxPeers: number;
  readonly #addressOf: ((slab: Uint8Array) => number) | null;
  #keys: Uint32Array;
  #vals: (UdpPeer | undefined)[];
  #mask: number;
  #size = 0;
  #resets = 0;
  #slab: Uint8Array;
  #slabNative = 0;
  #slabUsed = 0;
  readonly #probe = new Uint32Array(KEY_WORDS);

  /**
   * `addressOf` gives the native address of a slab (from `transports/libc.ts`) so that peers
   * carry a pointer for `sendmmsg`; omit it in pure code and tests.
   */
  constructor(
    family: 4 | 6,
    maxPeers = 65536,
    addressOf: ((slab: Uint8Array) => number) | null = null,
  ) {
    if (!(maxPeers >= 1)) throw new RangeError("maxPeers must be at least 1");
    this.family = family;
    this.maxPeers = maxPeers;
    this.#addressOf = addressOf;
    this.#keys = new Uint32Array(16 * KEY_WORDS);
    this.#vals = new Array(16).fill(undefined);
    this.#mask = 15;
    this.#slab = this.#newSlab();
  }

  /** Peers interned now. */
  get size(): number {
    return this.#size;
  }

  /** How often the table has started again after reaching `maxPeers`. */
  get resets(): number {
    return this.#resets;
  }

  /**
   * The peer for the `sockaddr` the kernel wrote at `view[at]` with length `len`; interns it on
   * first sight. Returns `null` for a family other than AF_INET/AF_INET6 or a short length.
   * Allocates nothing for a peer already known.
   */
  lookup(view: DataView, at: number, len: number): UdpPeer | null {
    const k = this.#probe;
    const fam = view.getUint16(at, true);
    if (fam === AF_INET && len >= SOCKADDR_IN_SIZE) {
      k[0] = 0;
      k[1] = 0;
      k[2] = V4_MAPPED_W2;
      k[3] = view.getUint32(at + 4, false);
      k[5] = 0;
    } else if (fam === AF_INET6 && len >= SOCKADDR_IN6_SIZE) {
      k[0] = view.getUint32(at + 8, false);
      k[1] = view.getUint32(at + 12, false);
      k[2] = view.getUint32(at + 16, false);
      k[3] = view.getUint32(at + 20, false);
      k[5] = k[0] === 0 && k[1] === 0 && k[2] === V4_MAPPED_W2 ? 0 : view.getUint32(at + 24, true);
    } else return null;
    k[4] = view.getUint16(at + 2, false);
    return this.#find() ?? this.#insertProbe();
  }

  /** The peer for an IP and port (cold path: parses nothing, may allocate). */
  intern(ip: IpAddress, port: number): UdpPeer {
    if (this.family === 4 && ip.family === 6) {
      throw new TypeError(`IPv6 address on an IPv4 socket: ${formatIPv6(ip.bytes)}`);
    }
    this.#probeFromIp(ip, port);
    return this.#find() ?? this.#insertProbe();
  }

  /**
   * True when the `sockaddr` at `view[at]` (length `len`) is exactly `peer`'s: same family,
   * address, port and scope (the flow label is ignored). Allocates nothing.
   */
  static matches(view: DataView, at: number, len: number, peer: UdpPeer): boolean {
    const sv = peer.sockaddrView;
    const fam = view.getUint16(at, true);
    if (fam !== sv.getUint16(0, true) || len < peer.socklen) return false;
    if (fam === AF_INET) {
      return view.getUint32(at, true) === sv.getUint32(0, true) &&
        view.getUint32(at + 4, true) === sv.getUint32(4, true);
    }
    return view.getUint16(at + 2, true) === sv.getUint16(2, true) &&
      view.getUint32(at + 8, true) === sv.getUint32(8, true) &&
      view.getUint32(at + 12, true) === sv.getUint32(12, true) &&
      view.getUint32(at + 16, true) === sv.getUint32(16, true) &&
      view.getUint32(at + 20, true) === sv.getUint32(20, true) &&
      view.getUint32(at + 24, true) === sv.getUint32(24, true);
  }

  /** Forgets every peer (they stay valid for sending). */
  clear(): void {
    this.#keys.fill(0);
    this.#vals.fill(undefined);
    this.#size = 0;
  }

  #probeFromIp(ip: IpAddress, port: number): void {
    const k = this.#probe;
    const b = ip.bytes;
    if (ip.family === 4) {
      k[0] = 0;
      k[1] = 0;
      k[2] = V4_MAPPED_W2;
      k[3] = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      k[5] = 0;
    } else {
      for (let w = 0; w < 4; w++) {
        k[w] = ((b[4 * w] << 24) | (b[4 * w + 1] << 16) | (b[4 * w + 2] << 8) | b[4 * w + 3]) >>>
          0;
      }
      k[5] = ip.scope >>> 0;
    }
    k[4] = port;
  }

  #hash(): number {
    const k = this.#probe;
    let h = 0x811c9dc5 ^ k[4];
    for (let w = 0; w < KEY_WORDS; w++) {
      h = Math.imul(h ^ k[w], 0x01000193);
      h ^= h >>> 15;
    }
    h = Math.imul(h, 0x2c1b3c6d);
    return (h ^ (h >>> 12)) >>> 0;
  }

  #find(): UdpPeer | undefined {
    const k = this.#probe, keys = this.#keys, vals = this.#vals, mask = this.#mask;
    for (let i = this.#hash() & mask;; i = (i + 1) & mask) {
      const v = vals[i];
      if (v === undefined) return undefined;
      const o = i * KEY_WORDS;
      if (
        keys[o] === k[0] && keys[o + 1] === k[1] && keys[o + 2] === k[2] &&
        keys[o + 3] === k[3] && keys[o + 4] === k[4] && keys[o + 5] === k[5]
      ) return v;
    }
  }

  #insertProbe(): UdpPeer {
    if (this.#size >= this.maxPeers) {
      this.clear();
      this.#resets++;
    }
    if ((this.#size + 1) * 2 > this.#vals.length) this.#grow();
    const k = this.#probe;
    const isV4 = k[0] === 0 && k[1] === 0 && k[2] === V4_MAPPED_W2;
    const bytes = new Uint8Array(isV4 ? 4 : 16);
    const bv = new DataView(bytes.buffer);
    if (isV4) bv.setUint32(0, k[3], false);
    else for (let w = 0; w < 4; w++) bv.setUint32(4 * w, k[w], false);
    const ip: IpAddress = { family: isV4 ? 4 : 6, bytes, scope: k[5] };
    if (this.#slabUsed === SLAB_PEERS) this.#slab = this.#newSlab();
    const off = this.#slabUsed++ * SOCKADDR_SLOT;
    const len = writeSockaddr(this.#slab, off, this.family, ip, k[4]);
    const peer = new UdpPeer(
      this,
      ip,
      k[4],
      this.#slab.subarray(off, off + SOCKADDR_SLOT),
      len,
      this.#slabNative === 0 ? 0 : this.#slabNative + off,
    );
    this.#place(peer);
    this.#size++;
    return peer;
  }

  /** Stores `peer` under the key in the probe words. */
  #place(peer: UdpPeer): void {
    const k = this.#probe, keys = this.#keys, vals = this.#vals, mask = this.#mask;
    let i = this.#hash() & mask;
    while (vals[i] !== undefined) i = (i + 1) & mask;
    const o = i * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) keys[o + w] = k[w];
    vals[i] = peer;
  }

  #grow(): void {
    const oldKeys = this.#keys, oldVals = this.#vals;
    const cap = oldVals.length * 2;
    this.#keys = new Uint32Array(cap * KEY_WORDS);
    this.#vals = new Array(cap).fill(undefined);
    this.#mask = cap - 1;
    const k = this.#probe;
    const saved = k.slice();
    for (let i = 0; i < oldVals.length; i++) {
      const v = oldVals[i];
      if (v === undefined) continue;
      for (let w = 0; w < KEY_WORDS; w++) k[w] = oldKeys[i * KEY_WORDS + w];
      this.#place(v);
    }
    k.set(saved);
  }

  #newSlab(): Uint8Array {
    // An explicit ArrayBuffer keeps the bytes off the V8 heap, so their address never moves.
    const slab = new Uint8Array(new ArrayBuffer(SLAB_PEERS * SOCKADDR_SLOT));
    this.#slabUsed = 0;
    this.#slabNative = this.#addressOf === null ? 0 : this.#addressOf(slab);
    return slab;
  }
}
