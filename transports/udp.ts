/**
 * The UDP transport: kernel UDP sockets driven through libc (`transports/libc.ts`), with batched
 * `recvmmsg`/`sendmmsg` and the socket options kcptun sets (`-sockbuf`, `-dscp`).
 *
 * Receiving: every socket is registered with one process-wide {@link Poller}, whose single
 * `epoll_wait` call waits on a thread of Deno's blocking pool, so the event loop never waits in
 * the kernel and the pool (shared with file-system ops) loses one thread whatever the number of
 * sockets. When a socket is readable, `recvmmsg(MSG_DONTWAIT)` runs on the JS thread and fills up
 * to `batchSize` pooled packets at once, written by the kernel straight into the packets'
 * buffers; the handler gets them as one batch. `close()` takes the socket out of the poller first.
 *
 * Sending: `sendmmsg(MSG_DONTWAIT)` on the calling thread, one call per `batchSize` packets,
 * straight from the packets' buffers. A full send buffer does not block: the datagrams that did not
 * fit are dropped and counted (KCP retransmits), where Go's kcp-go would block the sender.
 *
 * Nothing is allocated per datagram: slots, `msghdr`s and `iovec`s are made once per socket,
 * packet buffer addresses are cached per buffer, and source addresses are interned per socket
 * ({@link PeerTable}).
 *
 * See `docs/transports.md` for the measurements behind this design, the address semantics, and
 * the fallback ({@link DenoUdpTransport}) used when FFI is unavailable.
 *
 * @module
 */

import {
  defaultPool,
  MAX_DATAGRAM,
  type Packet,
  PacketBatch,
  type PacketPool,
  type PeerAddress,
} from "../pipeline/packet.ts";
import type {
  DatagramSocket,
  DatagramTransport,
  ReceiveHandler,
  TransportEventHandler,
  TransportOptions,
  TransportStats,
} from "../pipeline/transport.ts";
import type { BoundaryStageDefinition, StageContext, StageOptions } from "../pipeline/stage.ts";
import { DenoUdpTransport } from "./deno_udp.ts";
import { PEER_ERRORS, sendmmsgAll } from "./mmsg.ts";
import { type Poller, sharedPoller } from "./poller.ts";
import {
  addressOf,
  C,
  Errno,
  type Libc,
  libcUnavailableReason,
  loadLibc,
  pointerOf,
  tryLoadLibc,
} from "./libc.ts";
import {
  formatIp,
  type IpAddress,
  joinHostPort,
  parseIp,
  PeerTable,
  readSockaddr,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_SLOT,
  UdpPeer,
  writeSockaddr,
} from "./sockaddr.ts";

/** Settings of a {@link UdpTransport} that apply to every socket it makes. */
export interface UdpTransportConfig {
  /** Where received packets come from (default: the process-wide pool). */
  pool?: PacketPool;
  /** Datagrams per `recvmmsg`/`sendmmsg` call (default 64, at most 1024). */
  batchSize?: number;
  /** Largest datagram accepted; longer ones are dropped and counted (default 1500). */
  maxDatagram?: number;
  /** Distinct peers a socket interns before its table starts again (default 65536). */
  maxPeers?: number;
  /** One-line diagnostics (option failures, receive errors). Silent by default. */
  log?: (line: string) => void;
}

/** {@link TransportStats} plus the details behind `dropped`. */
export interface UdpStats extends TransportStats {
  /** Payload bytes received (delivered datagrams only). */
  rxBytes: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Received datagrams longer than `maxDatagram` (part of `dropped`). */
  rxOversize: number;
  /** Datagrams a dialled socket got from someone other than its server (part of `dropped`). */
  rxForeign: number;
  /** Datagrams not sent: full send buffer, kernel errors, no destination (part of `dropped`). */
  txErrors: number;
  /** errno of the last failed send, 0 if none. */
  txLastErrno: number;
  /** Completed receive calls (datagrams per wakeup = rxPackets / rxWakeups, roughly). */
  rxWakeups: number;
  /** ICMP errors about the server a dialled socket reported (each an `unreachable` event). */
  unreachable: number;
  /** Receive calls that failed with a transient error and were tried again. */
  rxErrors: number;
}

/** Batches one readiness callback may read before yielding to other sockets. */
const DRAIN_ROUNDS = 4;

/**
 * `recvmmsg` errors that leave the socket usable: the {@link PEER_ERRORS} a connected socket
 * reports once per ICMP error, and passing shortages. Reading again goes on with the next
 * datagram; anything else (a bad descriptor…) stops receiving.
 */
const RECV_TRANSIENT: ReadonlySet<number> = new Set([
  ...PEER_ERRORS,
  Errno.ENOMEM,
  Errno.ENOBUFS,
  Errno.EPROTO,
  Errno.ECONNRESET,
  Errno.ETIMEDOUT,
  Errno.EMSGSIZE,
]);

const MMSGHDR = 64; // sizeof(struct mmsghdr) on LP64: msghdr 56 + msg_len 4 + padding
const IOVEC = 16;
const OFF_NAME = 0, OFF_NAMELEN = 8, OFF_IOV = 16, OFF_IOVLEN = 24, OFF_FLAGS = 48, OFF_LEN = 56;

/** Writes a native address (below 2^53) as two little-endian u32 halves. */
function putAddress(v: DataView, at: number, addr: number): void {
  v.setUint32(at, addr % 0x100000000, true);
  v.setUint32(at + 4, Math.floor(addr / 0x100000000), true);
}

const bufferAddresses = new WeakMap<Uint8Array, number>();

/** The native address of a pooled packet buffer, computed once per buffer. */
function bufferAddress(buf: Uint8Array): number {
  let a = bufferAddresses.get(buf);
  if (a === undefined) {
    a = addressOf(buf);
    bufferAddresses.set(buf, a);
  }
  return a;
}

/** `mmsghdr`s, `iovec`s and `sockaddr` slots for one `recvmmsg`/`sendmmsg` call, off-heap. */
class MsgRing {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly ptr: Deno.PointerObject;
  /** Pointer to slot i, for resuming a partial `sendmmsg`. */
  readonly slotPtr: Deno.PointerObject[];
  /** Offset of the first `sockaddr` slot. */
  readonly namesAt: number;
  /** The packet each slot is attached to. */
  readonly packets: (Packet | null)[];

  constructor(size: number) {
    this.size = size;
    const iovAt = size * MMSGHDR;
    this.namesAt = iovAt + size * IOVEC;
    this.bytes = new Uint8Array(new ArrayBuffer(this.namesAt + size * SOCKADDR_SLOT));
    this.view = new DataView(this.bytes.buffer);
    this.ptr = pointerOf(this.bytes);
    const base = addressOf(this.bytes);
    this.slotPtr = [];
    this.packets = new Array(size).fill(null);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR;
      putAddress(this.view, h + OFF_NAME, base + this.namesAt + i * SOCKADDR_SLOT);
      putAddress(this.view, h + OFF_IOV, base + iovAt + i * IOVEC);
      putAddress(this.view, h + OFF_IOVLEN, 1);
      this.slotPtr.push(Deno.UnsafePointer.offset(this.ptr, h) as Deno.PointerObject);
    }
  }

  /** Points slot i's single iovec at `len` bytes at native address `addr`. */
  setIov(i: number, addr: number, len: number): void {
    const at = this.size * MMSGHDR + i * IOVEC;
    putAddress(this.view, at, addr);
    putAddress(this.view, at + 8, len);
  }
}

/** A bound UDP socket; made by {@link UdpTransport.listen} and {@link UdpTransport.dial}. */
export class UdpSocket implements DatagramSocket {
  /** The bound address (for a wildcard listener `[::]:port` or `0.0.0.0:port`). */
  readonly localAddr: UdpPeer;
  /** The server a dialled socket talks to (the only source it accepts), else `null`. */
  readonly remoteAddr: UdpPeer | null;
  /** The file descriptor (for socket options; do not close it). */
  readonly fd: number;
  /** 4 for an AF_INET socket, 6 for AF_INET6 (dual-stack when bound to the wildcard). */
  readonly family: 4 | 6;
  /** Counters. */
  readonly stats: UdpStats = {
    rxPackets: 0,
    txPackets: 0,
    dropped: 0,
    rxBytes: 0,
    txBytes: 0,
    rxOversize: 0,
    rxForeign: 0,
    txErrors: 0,
    txLastErrno: 0,
    rxWakeups: 0,
    unreachable: 0,
    rxErrors: 0,
  };
  /** The interned addresses of this socket's peers. */
  readonly peers: PeerTable;

  readonly #libc: Libc;
  readonly #pool: PacketPool;
  readonly #maxDatagram: number;
  readonly #log: (line: string) => void;
  readonly #recv: MsgRing;
  readonly #poller: Poller;
  #token = 0;
  readonly #send: MsgRing;
  readonly #batch = new PacketBatch();
  readonly #foreign = new WeakMap<PeerAddress, UdpPeer>();
  #handler: ReceiveHandler | null = null;
  readonly #events = new Set<TransportEventHandler>();
  #closing = false;
  #closed: Promise<void> | null = null;
  #error: string | null = null;

  /** Use {@link UdpTransport}; this wraps an already bound descriptor. */
  constructor(
    libc: Libc,
    fd: number,
    family: 4 | 6,
    peers: PeerTable,
    remote: UdpPeer | null,
    config: Required<Omit<UdpTransportConfig, "maxPeers">>,
    poller: Poller,
  ) {
    this.#libc = libc;
    this.fd = fd;
    this.family = family;
    this.peers = peers;
    this.remoteAddr = remote;
    this.#pool = config.pool;
    this.#maxDatagram = config.maxDatagram;
    this.#log = config.log;
    this.#recv = new MsgRing(config.batchSize);
    this.#poller = poller;
    this.#send = new MsgRing(config.batchSize);
    this.localAddr = this.#sockname();
  }

  /** Why receiving stopped early (a kernel error other than a timeout), or `null`. */
  get error(): string | null {
    return this.#error;
  }

  /** True while the socket is registered with the poller (between `receive()` and `close()`). */
  get receiving(): boolean {
    return this.#token !== 0;
  }

  /** True once {@link UdpSocket.close} has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /** Reads an integer socket option (`getsockopt`); throws with errno text on failure. */
  getOption(level: number, name: number): number {
    const val = new Uint8Array(4), len = new Uint32Array([4]);
    if (this.#libc.symbols.getsockopt(this.fd, level, name, val, new Uint8Array(len.buffer)) < 0) {
      throw new Error(this.#libc.describe(`getsockopt(${level}, ${name})`));
    }
    return new DataView(val.buffer).getInt32(0, true);
  }

  /** Sets an integer socket option (`setsockopt`); returns the errno, 0 on success. */
  setOption(level: number, name: number, value: number): number {
    const val = new Uint8Array(4);
    new DataView(val.buffer).setInt32(0, value, true);
    return this.#libc.symbols.setsockopt(this.fd, level, name, val, 4) < 0 ? this.#libc.errno() : 0;
  }

  /** Sends each packet to `to`, else its `peer`, else the dialled server; releases them and empties the batch. */
  send(batch: PacketBatch, to?: PeerAddress): void {
    const n = batch.length;
    if (n === 0) return;
    const stats = this.stats;
    if (this.#closing) {
      stats.dropped += n;
      stats.txErrors += n;
      batch.releaseAll();
      return;
    }
    const fixed = to === undefined ? null : this.#own(to);
    const ring = this.#send;
    const view = ring.view;
    const remote = this.remoteAddr;
    const packets = batch.packets;
    let i = 0;
    while (i < n) {
      let k = 0;
      for (; i < n && k < ring.size; i++) {
        const p = packets[i];
        const dest = to !== undefined ? fixed : p.peer !== null ? this.#own(p.peer) : remote;
        if (dest === null) {
          stats.dropped++;
          stats.txErrors++;
          p.release();
          continue;
        }
        const h = k * MMSGHDR;
        putAddress(view, h + OFF_NAME, dest.native);
        view.setUint32(h + OFF_NAMELEN, dest.socklen, true);
        ring.setIov(k, bufferAddress(p.buffer) + p.start, p.end - p.start);
        ring.packets[k++] = p;
      }
      if (k > 0) this.#flush(k);
    }
    batch.clear();
  }

  /** Sends slots [0, k) of the send ring, releasing every packet afterwards. */
  #flush(k: number): void {
    const e = sendmmsgAll(this.#libc, this.fd, this.#send, k, this.stats);
    if (e !== 0 && PEER_ERRORS.has(e)) this.#unreachable(e);
  }

  /**
   * Subscribes to this socket's events: a dialled socket (connected to its server) reports an
   * `unreachable` event for every ICMP error the kernel passes on about the server.
   */
  onEvent(handler: TransportEventHandler): () => void {
    this.#events.add(handler);
    return () => this.#events.delete(handler);
  }

  #unreachable(errno: number): void {
    const remote = this.remoteAddr;
    if (remote === null) return;
    this.stats.unreachable++;
    if (this.#events.size === 0) return;
    const text = this.#libc.strerror(errno);
    const event = {
      kind: "unreachable" as const,
      peer: remote,
      reason: text.charAt(0).toLowerCase() + text.slice(1),
      errno,
    };
    for (const h of [...this.#events]) {
      try {
        h(event);
      } catch (e) {
        this.#log(`udp ${this.localAddr.key}: event handler threw: ${e}`);
      }
    }
  }

  /** This socket's interned form of `addr`, or `null` if it cannot be sent to from here. */
  #own(addr: PeerAddress): UdpPeer | null {
    if (addr instanceof UdpPeer && addr.native !== 0) {
      if (addr.table === this.peers || addr.table.family === this.family) return addr;
    }
    let p = this.#foreign.get(addr);
    if (p !== undefined) return p;
    const ip = parseIp(addr.hostname);
    if (ip === null || (ip.family === 6 && this.family === 4)) return null;
    p = this.peers.intern(ip, addr.port);
    this.#foreign.set(addr, p);
    return p;
  }

  /** Starts delivering received datagrams to `handler`, in batches (once per socket). */
  receive(handler: ReceiveHandler): void {
    if (this.#handler !== null) throw new Error("udp: receive() was already called on this socket");
    this.#handler = handler;
    if (this.#closing) return;
    this.#token = this.#poller.add(this.fd, () => this.#readable());
  }

  /**
   * The poller saw data: drain it with non-blocking `recvmmsg` calls on this thread, at most
   * {@link DRAIN_ROUNDS} batches, so that one busy socket cannot starve the others (what is left
   * makes the level-triggered poller call again).
   */
  #readable(): void {
    const sym = this.#libc.symbols, ring = this.#recv, size = ring.size;
    for (let round = 0; round < DRAIN_ROUNDS && !this.#closing; round++) {
      this.#arm(ring);
      const n = sym.recvmmsg(this.fd, ring.ptr, size, C.MSG_DONTWAIT, null);
      if (n < 0) {
        const e = this.#libc.errno();
        if (e === Errno.EINTR) continue;
        if (RECV_TRANSIENT.has(e)) {
          // Reading it cleared it: the next call returns datagrams again.
          this.stats.rxErrors++;
          if (PEER_ERRORS.has(e)) this.#unreachable(e);
          continue;
        }
        if (e !== Errno.EAGAIN) {
          this.#error = this.#libc.describe("recvmmsg", e);
          this.#log(`udp ${this.localAddr.key}: receiving stopped: ${this.#error}`);
          const token = this.#token;
          this.#token = 0;
          void this.#poller.remove(this.fd, token);
        }
        return;
      }
      this.stats.rxWakeups++;
      if (n > 0) this.#deliver(ring, n);
      if (n < size) return;
    }
  }

  /** Attaches an empty packet to every free slot and resets the address lengths. */
  #arm(ring: MsgRing): void {
    const view = ring.view, pool = this.#pool, max = this.#maxDatagram;
    for (let i = 0; i < ring.size; i++) {
      view.setUint32(i * MMSGHDR + OFF_NAMELEN, SOCKADDR_SLOT, true);
      if (ring.packets[i] === null) {
        const p = pool.acquire();
        ring.packets[i] = p;
        ring.setIov(i, bufferAddress(p.buffer) + p.start, max);
      }
    }
  }

  /** Hands the first `n` slots' datagrams to the handler as one batch. */
  #deliver(ring: MsgRing, n: number): void {
    const view = ring.view, batch = this.#batch, stats = this.stats;
    const remote = this.remoteAddr, peers = this.peers;
    for (let i = 0; i < n; i++) {
      const h = i * MMSGHDR;
      const len = view.getUint32(h + OFF_LEN, true);
      if ((view.getInt32(h + OFF_FLAGS, true) & C.MSG_TRUNC) !== 0) {
        stats.dropped++;
        stats.rxOversize++;
        continue; // the slot keeps its packet
      }
      const at = ring.namesAt + i * SOCKADDR_SLOT;
      const nlen = view.getUint32(h + OFF_NAMELEN, true);
      let peer: UdpPeer | null;
      if (remote !== null) peer = PeerTable.matches(view, at, nlen, remote) ? remote : null;
      else peer = peers.lookup(view, at, nlen);
      if (peer === null) {
        stats.dropped++;
        stats.rxForeign++;
        continue;
      }
      const p = ring.packets[i]!;
      ring.packets[i] = null;
      p.end = p.start + len;
      p.peer = peer;
      batch.push(p);
      stats.rxBytes += len;
    }
    stats.rxPackets += batch.length;
    if (batch.length === 0) return;
    try {
      this.#handler!(batch);
    } catch (e) {
      this.#log(`udp ${this.localAddr.key}: receive handler threw: ${e}`);
    }
    batch.clear();
  }

  /** Closes the socket; resolves once nothing is pending on it. Idempotent. */
  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closing = true;
    this.#events.clear();
    this.#closed = (async () => {
      const token = this.#token;
      this.#token = 0;
      // Out of the epoll set before the descriptor closes; resolves at once unless this was the
      // poller's last socket, then once its pending epoll_wait has returned.
      const removed = token !== 0 ? this.#poller.remove(this.fd, token) : Promise.resolve();
      this.#libc.symbols.close(this.fd);
      await removed;
      const ring = this.#recv;
      for (let i = 0; i < ring.size; i++) {
        ring.packets[i]?.release();
        ring.packets[i] = null;
      }
    })();
    return this.#closed;
  }

  #sockname(): UdpPeer {
    const buf = new Uint8Array(SOCKADDR_SLOT), len = new Uint32Array([SOCKADDR_SLOT]);
    if (this.#libc.symbols.getsockname(this.fd, buf, new Uint8Array(len.buffer)) < 0) {
      throw new Error(this.#libc.describe("getsockname"));
    }
    const sa = readSockaddr(buf, 0, len[0]);
    if (sa === null) throw new Error("getsockname: unexpected address family");
    // The local address gets its own table so that it never counts against the peers.
    return new PeerTable(this.family, 1, addressOf).intern(sa.ip, sa.port);
  }
}

/** What a host string means to {@link UdpTransport}. */
type Target = { kind: "wildcard" } | { kind: "ip"; ip: IpAddress };

/**
 * UDP sockets through libc. Needs FFI (`--allow-ffi`) on Linux; see {@link udpTransport} for the
 * version that falls back to {@link DenoUdpTransport} elsewhere.
 *
 * Addresses: `listen("")`, `listen(":port")`-style empty host, `"0.0.0.0"` and `"::"` bind every
 * interface, IPv4 and IPv6, on one dual-stack IPv6 socket (as Go's `net.ListenUDP("udp", ...)`),
 * with IPv4 peers reported as plain IPv4 (`127.0.0.1`, not `::ffff:127.0.0.1`); an IPv4 literal
 * binds an IPv4 socket; an IPv6 literal (with or without brackets, numeric `%zone` allowed) an
 * IPv6 one; a hostname is resolved with `getaddrinfo`, IPv4 preferred (as Go's resolver does for
 * `"udp"`). `dial` opens an IPv4 socket for an IPv4 server and a dual-stack IPv6 one otherwise,
 * bound to an ephemeral port, and accepts datagrams only from the server's exact ip:port
 * (kcptun 2026 behaviour; others are counted in `stats.rxForeign`).
 */
export class UdpTransport implements DatagramTransport {
  readonly #libc: Libc;
  readonly #config: Required<UdpTransportConfig>;

  /** Throws `LibcUnavailableError` when FFI or libc is unavailable. */
  constructor(config: UdpTransportConfig = {}, libc: Libc = loadLibc()) {
    const pool = config.pool ?? defaultPool;
    const maxDatagram = config.maxDatagram ?? MAX_DATAGRAM;
    const batchSize = config.batchSize ?? 64;
    if (!(batchSize >= 1 && batchSize <= 1024)) throw new RangeError("batchSize must be 1..1024");
    if (!(maxDatagram >= 1 && maxDatagram <= 65507)) {
      throw new RangeError("maxDatagram must be 1..65507");
    }
    if (pool.capacity - pool.headroom < maxDatagram) {
      throw new RangeError(
        `pool packets hold ${pool.capacity - pool.headroom} bytes after headroom, ` +
          `less than maxDatagram ${maxDatagram}`,
      );
    }
    this.#libc = libc;
    this.#config = {
      pool,
      batchSize,
      maxDatagram,
      maxPeers: config.maxPeers ?? 65536,
      log: config.log ?? (() => {}),
    };
  }

  /** Binds `host:port` (see the class docs for what the host means). */
  async listen(host: string, port: number, options: TransportOptions = {}): Promise<UdpSocket> {
    checkPort(port);
    const target = await this.#target(host);
    if (target.kind === "wildcard") {
      try {
        return this.#open(6, null, port, null, options);
      } catch (e) {
        if (!(e instanceof AddressFamilyError)) throw e;
        return this.#open(4, null, port, null, options); // no IPv6 in this kernel
      }
    }
    return this.#open(target.ip.family, target.ip, port, null, options);
  }

  /** A socket on an ephemeral port that talks to, and only hears from, `host:port`. */
  async dial(host: string, port: number, options: TransportOptions = {}): Promise<UdpSocket> {
    checkPort(port);
    if (port === 0) throw new RangeError("dial: port 0");
    const target = await this.#target(host);
    // Go dials an empty host as the local system; loopback is what that reaches.
    const ip = target.kind === "ip" ? target.ip : parseIp("127.0.0.1")!;
    return this.#open(ip.family, null, 0, { ip, port }, options);
  }

  /**
   * Resolves a host to one IP address as `listen`/`dial` do: literals as they are, names through
   * `getaddrinfo` (so `/etc/hosts` counts), IPv4 first. `""` resolves to `null` (every interface).
   */
  async resolve(host: string): Promise<IpAddress | null> {
    const t = await this.#target(host);
    return t.kind === "wildcard" ? null : t.ip;
  }

  async #target(host: string): Promise<Target> {
    let h = host;
    if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
    if (h === "" || h === "0.0.0.0" || h === "::") return { kind: "wildcard" };
    const ip = parseIp(h);
    if (ip !== null) return { kind: "ip", ip };
    const all = await getaddrinfo(this.#libc, h);
    const pick = all.find((a) => a.family === 4) ?? all[0];
    if (pick === undefined) throw new Error(`lookup ${host}: no address`);
    return { kind: "ip", ip: pick };
  }

  #open(
    family: 4 | 6,
    bindIp: IpAddress | null,
    port: number,
    remote: { ip: IpAddress; port: number } | null,
    options: TransportOptions,
  ): UdpSocket {
    const libc = this.#libc, sym = libc.symbols, log = this.#config.log;
    const what = remote !== null
      ? `dial udp ${joinHostPort(formatIp(remote.ip), remote.port)}`
      : `listen udp ${joinHostPort(bindIp === null ? "" : formatIp(bindIp), port)}`;
    const fd = sym.socket(family === 4 ? C.AF_INET : C.AF_INET6, C.SOCK_DGRAM | C.SOCK_CLOEXEC, 0);
    if (fd < 0) {
      const e = libc.errno();
      if (e === Errno.EAFNOSUPPORT) throw new AddressFamilyError(libc.describe(what, e));
      throw new Error(libc.describe(what, e));
    }
    try {
      const setInt = (level: number, name: number, value: number): number => {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setInt32(0, value, true);
        return sym.setsockopt(fd, level, name, b, 4) < 0 ? libc.errno() : 0;
      };
      const getInt = (level: number, name: number): number => {
        const b = new Uint8Array(4), l = new Uint32Array([4]);
        sym.getsockopt(fd, level, name, b, new Uint8Array(l.buffer));
        return new DataView(b.buffer).getInt32(0, true);
      };
      if (family === 6) setInt(C.IPPROTO_IPV6, C.IPV6_V6ONLY, 0);
      const sockbuf = options.sockbuf ?? 0;
      if (sockbuf > 0) {
        for (
          const [plain, force, name] of [
            [C.SO_RCVBUF, C.SO_RCVBUFFORCE, "SO_RCVBUF"],
            [C.SO_SNDBUF, C.SO_SNDBUFFORCE, "SO_SNDBUF"],
          ] as const
        ) {
          const e = setInt(C.SOL_SOCKET, plain, sockbuf);
          if (e !== 0) log(`${what}: ${libc.describe(`setsockopt ${name}`, e)}`);
          // The kernel doubles what it grants; less than double means rmem/wmem_max capped it.
          if (getInt(C.SOL_SOCKET, plain) < 2 * sockbuf) setInt(C.SOL_SOCKET, force, sockbuf);
        }
      }
      const dscp = options.dscp ?? 0;
      if (dscp > 0) {
        if (family === 4) {
          const e = setInt(C.IPPROTO_IP, C.IP_TOS, (dscp << 2) & 0xff);
          if (e !== 0) log(`${what}: ${libc.describe("set DSCP (IP_TOS)", e)}`);
        } else {
          const e = setInt(C.IPPROTO_IPV6, C.IPV6_TCLASS, dscp & 0xff);
          if (e !== 0) log(`${what}: ${libc.describe("set DSCP (IPV6_TCLASS)", e)}`);
          // IPv4 peers of a dual-stack socket take their TOS from the IPv4 option.
          setInt(C.IPPROTO_IP, C.IP_TOS, (dscp << 2) & 0xff);
        }
      }
      const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
      const wildcard: IpAddress = family === 4
        ? { family: 4, bytes: new Uint8Array(4), scope: 0 }
        : { family: 6, bytes: new Uint8Array(16), scope: 0 };
      const salen = writeSockaddr(sa, 0, family, bindIp ?? wildcard, port);
      if (sym.bind(fd, sa, salen) < 0) throw new Error(libc.describe(what));
      const cfg = this.#config;
      const peers = new PeerTable(family, cfg.maxPeers, addressOf);
      const remotePeer = remote === null ? null : peers.intern(remote.ip, remote.port);
      // Made before connect(), so that localAddr is the wildcard Go's kcptun prints.
      const socket = new UdpSocket(libc, fd, family, peers, remotePeer, cfg, sharedPoller(libc));
      if (remote !== null) {
        // Connected, the kernel passes on ICMP errors about the server (nobody listening there)
        // as ECONNREFUSED from the next receive or send, and drops datagrams from anyone else.
        const rl = writeSockaddr(sa, 0, family, remote.ip, remote.port);
        if (sym.connect(fd, sa, rl) < 0) throw new Error(libc.describe(what));
      }
      return socket;
    } catch (e) {
      sym.close(fd);
      throw e;
    }
  }
}

/**
 * The UDP transport to use: {@link UdpTransport} when libc can be loaded through FFI, otherwise
 * {@link DenoUdpTransport} after one warning line (to `config.log`, or stderr when no log is given)
 * saying why and what is lost (speed, `-sockbuf`, `-dscp`).
 */
export function udpTransport(config: UdpTransportConfig = {}): DatagramTransport {
  const libc = tryLoadLibc();
  if (libc !== null) return new UdpTransport(config, libc);
  const warn = config.log ?? ((line: string) => console.error(line));
  warn(
    `udp: ${libcUnavailableReason()}; falling back to Deno.listenDatagram ` +
      `(slower, -sockbuf and -dscp ignored)`,
  );
  return new DenoUdpTransport(config);
}

class AddressFamilyError extends Error {}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`bad port ${port}`);
  }
}

/**
 * `getaddrinfo(host)` for UDP, on a blocking-pool thread. Returns the addresses in resolver
 * order, de-duplicated; throws with the resolver's message when the name does not resolve.
 */
export async function getaddrinfo(libc: Libc, host: string): Promise<IpAddress[]> {
  const sym = libc.symbols;
  const node = new Uint8Array(new ArrayBuffer(host.length * 3 + 1));
  const { written } = new TextEncoder().encodeInto(host, node);
  node[written] = 0;
  const hints = new Uint8Array(new ArrayBuffer(48)); // struct addrinfo
  new DataView(hints.buffer).setInt32(8, C.SOCK_DGRAM, true); // ai_socktype
  const out = new BigUint64Array(new ArrayBuffer(8));
  const rc = await sym.getaddrinfoAsync(pointerOf(node), null, pointerOf(hints), pointerOf(out));
  // The thread read these buffers; keep them reachable until the call is over.
  void node.byteLength, void hints.byteLength;
  if (rc !== 0) {
    const msg = sym.gai_strerror(rc);
    throw new Error(`lookup ${host}: ${msg ? Deno.UnsafePointerView.getCString(msg) : rc}`);
  }
  const result: IpAddress[] = [];
  const seen = new Set<string>();
  let ai = Deno.UnsafePointer.create(out[0]);
  const head = ai;
  try {
    while (ai !== null) {
      const v = new Deno.UnsafePointerView(ai);
      const addrlen = v.getUint32(16);
      const addr = v.getPointer(24);
      if (addr !== null && addrlen <= SOCKADDR_SLOT) {
        const bytes = new Uint8Array(SOCKADDR_SLOT);
        Deno.UnsafePointerView.copyInto(addr, bytes.subarray(0, addrlen));
        const sa = readSockaddr(bytes, 0, addrlen);
        if (sa !== null) {
          const k = sa.ip.bytes.join(".") + "%" + sa.ip.scope;
          if (!seen.has(k)) {
            seen.add(k);
            result.push(sa.ip);
          }
        }
      }
      ai = v.getPointer(40);
    }
  } finally {
    if (head !== null) sym.freeaddrinfo(head);
  }
  return result;
}

/** The `udp` boundary stage definition (role "transport"): the libc transport, pooled packets. */
export const udpStage: BoundaryStageDefinition = {
  name: "udp",
  kind: "boundary",
  role: "transport",
  description: "UDP datagrams (recvmmsg/sendmmsg through libc; Deno.listenDatagram without FFI)",
  create: (_options: StageOptions, ctx: StageContext): DatagramTransport =>
    udpTransport({ pool: ctx.pool, log: ctx.log }),
};
