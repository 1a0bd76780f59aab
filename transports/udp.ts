/**
 * The UDP transport: kernel UDP sockets driven through libc (`transports/libc.ts`), with batched
 * `recvmmsg`/`sendmmsg` and the socket options kcptun sets (`-sockbuf`, `-dscp`).
 *
 * Receiving: when `Deno.listenDatagram` is there (`--unstable-net`, which `deno.json` turns on),
 * the socket is made by Deno and its descriptor found by its bound address; Deno's event loop
 * then watches it, and a pending `receive()` into a pooled packet is the wake-up. What else is
 * queued is read at once with `recvmmsg(MSG_DONTWAIT)` on the JS thread, up to `batchSize`
 * pooled packets per call, written by the kernel straight into the packets' buffers, and the
 * handler gets it all as one batch. Without it (or when the descriptor cannot be found) the
 * socket is ours and registered with one process-wide {@link Poller}, whose single `epoll_wait`
 * waits on a thread of Deno's blocking pool: that costs a thread hop per wake-up (the pool
 * thread wakes, then the event loop), a measurable part of the tunnel's ping latency
 * (docs/performance.md). `close()` stops receiving first.
 *
 * Sending: `sendmmsg(MSG_DONTWAIT)` on the calling thread, one call per `batchSize` packets,
 * straight from the packets' buffers. Where the kernel allows it, a run of equal-size datagrams to
 * one peer goes as one segmented message (UDP GSO, `gso.ts`): the same datagrams on the wire,
 * the kernel's per-datagram send work paid once per run. A full send buffer does not block: the
 * datagrams that did not fit are dropped and counted (KCP retransmits), where Go's kcp-go would
 * block the sender.
 *
 * Nothing is allocated per datagram: slots, `msghdr`s and `iovec`s are made once per socket,
 * packet buffer addresses are cached per buffer, and source addresses are interned per socket
 * ({@link PeerTable}).
 *
 * Socket setup (`-sockbuf`, `-dscp`, bind, connect) is shared with fake TCP in `sockopt.ts`, and
 * what a host means in `resolve.ts`. See `docs/transports.md` for the measurements behind this
 * design, the address semantics, and the fallback (`deno_udp.ts`, chosen in `udp_stage.ts`) used
 * when FFI is unavailable.
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
} from "../pipeline/transport.ts";
import { GSO_LIMITS, type GsoLimits, GsoSendRing, probeGso } from "./gso.ts";
import {
  bufferAddress,
  type GsoRefusal,
  IOVEC,
  MMSGHDR,
  OFF_FLAGS,
  OFF_IOV,
  OFF_IOVLEN,
  OFF_LEN,
  OFF_NAME,
  OFF_NAMELEN,
  PEER_ERRORS,
  putAddress,
  sendmmsgAll,
} from "./mmsg.ts";
import { DRAIN_ROUNDS, type Poller, sharedPoller } from "./poller.ts";
import { addressOf, C, Errno, type Libc, loadLibc, pointerOf } from "./libc.ts";
import { checkPort, dialHost, getaddrinfo, type Lookup, resolveHost } from "./resolve.ts";
import {
  anyAddress,
  formatIp,
  type IpAddress,
  joinHostPort,
  parseIp,
  PeerTable,
  SOCKADDR_SLOT,
  UdpPeer,
} from "./sockaddr.ts";
import {
  applySocketOptions,
  bindTo,
  connectTo,
  getIntOption,
  localAddress,
  openSocket,
  setIntOption,
  SyscallError,
} from "./sockopt.ts";
import { newUdpStats, type UdpStats, type UdpTransportConfig } from "./udp_common.ts";

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

/** The errno in a Deno I/O error's message (`... (os error 111)`), or 0. */
function errnoOf(e: unknown): number {
  const m = e instanceof Error ? /\(os error (\d+)\)/.exec(e.message) : null;
  return m === null ? 0 : Number(m[1]);
}

/** Descriptors tried when looking for the one Deno made (it takes the lowest free one). */
const FD_SCAN_LIMIT = 1 << 16;

/**
 * The descriptor of the UDP socket of this process bound to `family` and `port`, or -1. Deno does
 * not hand out descriptors; a port of a bound UDP socket is unique within a family unless
 * `SO_REUSEPORT` was set, which neither transport does.
 */
function findDatagramFd(libc: Libc, family: 4 | 6, port: number): number {
  const sym = libc.symbols;
  const name = new Uint8Array(SOCKADDR_SLOT), len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer), view = new DataView(name.buffer);
  const want = family === 4 ? C.AF_INET : C.AF_INET6;
  let misses = 0;
  for (let fd = 3; fd < FD_SCAN_LIMIT && misses < 4096; fd++) {
    len[0] = SOCKADDR_SLOT;
    if (sym.getsockname(fd, name, lenBytes) < 0) {
      // Past the highest open descriptor nothing more can match.
      if (libc.errno() === Errno.EBADF) misses++;
      continue;
    }
    misses = 0;
    if (view.getUint16(0, true) !== want || view.getUint16(2, false) !== port) continue;
    try {
      if (getIntOption(libc, fd, C.SOL_SOCKET, C.SO_TYPE) === C.SOCK_DGRAM) return fd;
    } catch { /* closed meanwhile */ }
  }
  return -1;
}

/** `mmsghdr`s, `iovec`s and `sockaddr` slots for one `recvmmsg` call, off-heap. */
class MsgRing {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly ptr: Deno.PointerObject;
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
    this.packets = new Array(size).fill(null);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR;
      putAddress(this.view, h + OFF_NAME, base + this.namesAt + i * SOCKADDR_SLOT);
      putAddress(this.view, h + OFF_IOV, base + iovAt + i * IOVEC);
      putAddress(this.view, h + OFF_IOVLEN, 1);
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
  readonly stats: UdpStats = newUdpStats();
  /** The interned addresses of this socket's peers. */
  readonly peers: PeerTable;

  readonly #libc: Libc;
  readonly #pool: PacketPool;
  readonly #maxDatagram: number;
  readonly #log: (line: string) => void;
  readonly #recv: MsgRing;
  readonly #poller: Poller;
  #token = 0;
  readonly #send: GsoSendRing;
  /** Segmentation limits while this socket sends runs as GSO messages, else `null`. */
  #gso: GsoLimits | null;
  readonly #refusal: GsoRefusal = { slot: -1, packet: 0, errno: 0 };
  readonly #batch = new PacketBatch();
  readonly #foreign = new WeakMap<PeerAddress, UdpPeer>();
  #handler: ReceiveHandler | null = null;
  /** Deno's view of the socket when Deno made it (then Deno owns and closes the descriptor). */
  readonly #conn: Deno.DatagramConn | null;
  #reactorLoop: Promise<void> | null = null;
  #watching = false;
  /** Deno's hostname text -> port -> peer, so that a known source costs no parsing. */
  readonly #byText = new Map<string, Map<number, UdpPeer>>();
  #byTextCount = 0;
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
    conn: Deno.DatagramConn | null = null,
  ) {
    this.#conn = conn;
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
    this.#send = new GsoSendRing(config.batchSize);
    this.#gso = config.gso && probeGso(libc, fd) ? GSO_LIMITS : null;
    this.localAddr = this.#sockname();
  }

  /** Why receiving stopped early (a kernel error other than a timeout), or `null`. */
  get error(): string | null {
    return this.#error;
  }

  /** True while the socket receives (between `receive()` and `close()`, unless it failed). */
  get receiving(): boolean {
    return this.#token !== 0 || (this.#watching && !this.#closing);
  }

  /** True when Deno's event loop watches this socket, false when the {@link Poller} does. */
  get onEventLoop(): boolean {
    return this.#conn !== null;
  }

  /** True once {@link UdpSocket.close} has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * True while runs of equal-size datagrams to one peer leave as one segmented message
   * (`UDP_SEGMENT`): asked for (the default), known to the kernel, and not refused by it yet.
   */
  get gso(): boolean {
    return this.#gso !== null;
  }

  /** Reads an integer socket option (`getsockopt`); throws with errno text on failure. */
  getOption(level: number, name: number): number {
    return getIntOption(this.#libc, this.fd, level, name);
  }

  /** Sets an integer socket option (`setsockopt`); returns the errno, 0 on success. */
  setOption(level: number, name: number, value: number): number {
    return setIntOption(this.#libc, this.fd, level, name, value);
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
        ring.put(k++, p, dest);
      }
      if (k > 0) this.#flush(k);
    }
    batch.clear();
  }

  /**
   * Sends the `k` staged packets, as segmented runs while GSO is on, releasing every packet
   * afterwards. A run the kernel refuses turns GSO off for this socket (logged once) and the
   * packets from it on go again one datagram per message, as without GSO.
   */
  #flush(k: number): void {
    const ring = this.#send, libc = this.#libc;
    const slots = ring.build(k, this.#gso);
    let e = sendmmsgAll(libc, this.fd, ring, slots, this.stats, this.#refusal);
    const refused = this.#refusal;
    if (refused.slot >= 0) {
      refused.slot = -1;
      this.#gso = null;
      this.stats.gsoRefusedErrno = refused.errno;
      this.#log(
        `udp ${this.localAddr.key}: ${
          libc.describe("segmentation offload (UDP_SEGMENT) refused", refused.errno)
        }; sending datagrams one per message from now on`,
      );
      const rest = ring.shift(refused.packet, k);
      const e2 = sendmmsgAll(libc, this.fd, ring, ring.build(rest, null), this.stats);
      if (e === 0 || !PEER_ERRORS.has(e)) e = e2;
    }
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
    if (this.#conn !== null) {
      this.#watching = true;
      this.#reactorLoop = this.#watch(this.#conn).finally(() => this.#watching = false);
    } else this.#token = this.#poller.add(this.fd, () => this.#readable(null));
  }

  /**
   * Deno's event loop as the poller: a pending `receive()` into a pooled packet wakes this
   * thread directly (no pool thread in between); the rest of what is queued follows through
   * `recvmmsg` in the same batch. Deno's readiness is edge-triggered and retries its read, so
   * reading the socket past it is safe: an empty socket only makes its next read wait again.
   */
  async #watch(conn: Deno.DatagramConn): Promise<void> {
    const max = this.#maxDatagram, stats = this.stats;
    while (!this.#closing) {
      const p = this.#pool.acquire();
      let data: Uint8Array, from: Deno.Addr;
      try {
        // One spare byte tells an oversize datagram (Deno truncates silently).
        [data, from] = await conn.receive(p.buffer.subarray(p.start, p.start + max + 1));
      } catch (e) {
        p.release();
        if (this.#closing || e instanceof Deno.errors.BadResource) return;
        const errno = errnoOf(e);
        if (errno === 0) {
          // No errno to judge it by: counted, and receiving goes on after a pause so that an
          // error that repeats cannot spin (as the portable transport does).
          stats.rxErrors++;
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        if (!this.#receiveFailed(errno)) return;
        continue;
      }
      if (this.#closing) {
        p.release();
        return;
      }
      if (data.length > max) {
        stats.dropped++;
        stats.rxOversize++;
        p.release();
        this.#readable(null);
        continue;
      }
      const peer = this.#peerOf(from as Deno.NetAddr);
      if (peer === null) {
        stats.dropped++;
        stats.rxForeign++;
        p.release();
        this.#readable(null);
        continue;
      }
      p.end = p.start + data.length;
      p.peer = peer;
      stats.rxPackets++;
      stats.rxBytes += data.length;
      this.#readable(p);
    }
  }

  /**
   * The peer of a datagram Deno read, as `recvmmsg`'s source address would give it: interned by
   * address, checked against the server for a dialled socket. Deno's text has no IPv6 zone: a
   * link-local source on a listener cannot be answered from it, and is dropped as foreign.
   */
  #peerOf(a: Deno.NetAddr): UdpPeer | null {
    let ports = this.#byText.get(a.hostname);
    const known = ports?.get(a.port);
    if (known !== undefined) return known;
    const ip = parseIp(a.hostname);
    if (ip === null || (ip.family === 6 && this.family === 4)) return null;
    if (ip.family === 6 && ip.bytes[0] === 0xfe && (ip.bytes[1] & 0xc0) === 0x80) return null;
    let peer: UdpPeer | null = this.peers.intern(ip, a.port);
    const remote = this.remoteAddr;
    if (remote !== null) peer = peer.key === remote.key ? remote : null;
    if (peer === null) return null;
    if (this.#byTextCount >= this.peers.maxPeers) {
      this.#byText.clear();
      this.#byTextCount = 0;
      ports = undefined;
    }
    if (ports === undefined) this.#byText.set(a.hostname, ports = new Map());
    ports.set(a.port, peer);
    this.#byTextCount++;
    return peer;
  }

  /**
   * A receive error: transient ones are counted (and reported when ICMP says the server is not
   * there) and receiving goes on; anything else stops receiving. Returns whether to go on.
   */
  #receiveFailed(e: number): boolean {
    if (e === Errno.EINTR) return true;
    if (RECV_TRANSIENT.has(e)) {
      // Reading it cleared it: the next call returns datagrams again.
      this.stats.rxErrors++;
      if (PEER_ERRORS.has(e)) this.#unreachable(e);
      return true;
    }
    if (e === Errno.EAGAIN) return true;
    this.#error = this.#libc.describe("recvmmsg", e);
    this.#log(`udp ${this.localAddr.key}: receiving stopped: ${this.#error}`);
    const token = this.#token;
    this.#token = 0;
    if (token !== 0) void this.#poller.remove(this.fd, token);
    return false;
  }

  /**
   * The socket has data: drain it with non-blocking `recvmmsg` calls on this thread, at most
   * {@link DRAIN_ROUNDS} batches, so that one busy socket cannot starve the others (what is left
   * makes the level-triggered poller, or Deno's next read, come back at once). `first` is a
   * datagram already read (by Deno), delivered at the head of the first batch.
   */
  #readable(first: Packet | null): void {
    const sym = this.#libc.symbols, ring = this.#recv, size = ring.size, batch = this.#batch;
    this.stats.rxWakeups++;
    if (first !== null) batch.push(first);
    for (let round = 0; round < DRAIN_ROUNDS && !this.#closing; round++) {
      this.#arm(ring);
      const n = sym.recvmmsg(this.fd, ring.ptr, size, C.MSG_DONTWAIT, null);
      if (n < 0) {
        const e = this.#libc.errno();
        if (e === Errno.EAGAIN) break;
        if (this.#receiveFailed(e)) continue;
        break;
      }
      if (n > 0) this.#deliver(ring, n);
      if (n < size) break;
    }
    if (batch.length > 0) this.#hand();
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
    const view = ring.view, batch = this.#batch, stats = this.stats, size = ring.size;
    const before = batch.length;
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
    stats.rxPackets += batch.length - before;
    if (batch.length >= size) this.#hand();
  }

  /** Gives the batch to the handler. */
  #hand(): void {
    const batch = this.#batch;
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
      if (this.#conn !== null) {
        // Deno owns the descriptor: closing it ends the pending receive.
        try {
          this.#conn.close();
        } catch { /* already closed */ }
        await this.#reactorLoop;
      } else this.#libc.symbols.close(this.fd);
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
    const sa = localAddress(this.#libc, this.fd);
    // The local address gets its own table so that it never counts against the peers.
    return new PeerTable(this.family, 1, addressOf).intern(sa.ip, sa.port);
  }
}

/**
 * UDP sockets through libc. Needs FFI (`--allow-ffi`) on Linux; `udpTransport()` (`udp_stage.ts`)
 * falls back to the Deno transport elsewhere.
 *
 * Addresses: `listen("")`, `listen(":port")`-style empty host, `"0.0.0.0"` and `"::"` bind every
 * interface, IPv4 and IPv6, on one dual-stack IPv6 socket (as Go's `net.ListenUDP("udp", ...)`),
 * with IPv4 peers reported as plain IPv4 (`127.0.0.1`, not `::ffff:127.0.0.1`); an IPv4 literal
 * binds an IPv4 socket; an IPv6 literal (with or without brackets, numeric `%zone` allowed) an
 * IPv6 one; a hostname is resolved with `getaddrinfo`, IPv4 preferred (as Go's resolver does for
 * `"udp"`; `resolve.ts`). `dial` opens an IPv4 socket for an IPv4 server and a dual-stack IPv6 one otherwise,
 * bound to an ephemeral port, and accepts datagrams only from the server's exact ip:port
 * (kcptun 2026 behaviour; others are counted in `stats.rxForeign`).
 */
export class UdpTransport implements DatagramTransport {
  readonly #libc: Libc;
  readonly #config: Required<UdpTransportConfig>;
  readonly #lookup: Lookup;

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
    this.#lookup = (name) => getaddrinfo(libc, name);
    this.#config = {
      pool,
      batchSize,
      maxDatagram,
      maxPeers: config.maxPeers ?? 65536,
      poller: config.poller ?? "auto",
      gso: config.gso ?? true,
      log: config.log ?? (() => {}),
    };
  }

  /** Binds `host:port` (see the class docs for what the host means). */
  async listen(host: string, port: number, options: TransportOptions = {}): Promise<UdpSocket> {
    checkPort(port);
    const ip = await resolveHost(host, this.#lookup);
    if (ip === null) {
      try {
        return this.#open(6, null, port, null, options);
      } catch (e) {
        if (!(e instanceof SyscallError && e.errno === Errno.EAFNOSUPPORT)) throw e;
        return this.#open(4, null, port, null, options); // no IPv6 in this kernel
      }
    }
    return this.#open(ip.family, ip, port, null, options);
  }

  /** A socket on an ephemeral port that talks to, and only hears from, `host:port`. */
  async dial(host: string, port: number, options: TransportOptions = {}): Promise<UdpSocket> {
    checkPort(port);
    if (port === 0) throw new RangeError("dial: port 0");
    const ip = await dialHost(host, this.#lookup);
    return this.#open(ip.family, null, 0, { ip, port }, options);
  }

  /**
   * Resolves a host to one IP address as `listen`/`dial` do: literals as they are, names through
   * `getaddrinfo` (so `/etc/hosts` counts), IPv4 first. `""` resolves to `null` (every interface).
   */
  resolve(host: string): Promise<IpAddress | null> {
    return resolveHost(host, this.#lookup);
  }

  #open(
    family: 4 | 6,
    bindIp: IpAddress | null,
    port: number,
    remote: { ip: IpAddress; port: number } | null,
    options: TransportOptions,
  ): UdpSocket {
    const libc = this.#libc, cfg = this.#config;
    const what = remote !== null
      ? `dial udp ${joinHostPort(formatIp(remote.ip), remote.port)}`
      : `listen udp ${joinHostPort(bindIp === null ? "" : formatIp(bindIp), port)}`;
    const made = this.#openOnEventLoop(family, bindIp, port, remote, options, what);
    if (made !== null) return made;
    const fd = openSocket(libc, family, C.SOCK_DGRAM, 0, what);
    try {
      if (family === 6) setIntOption(libc, fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY, 0);
      applySocketOptions(libc, fd, options, {
        family,
        dualStack: family === 6,
        report: (line) => cfg.log(`${what}: ${line}`),
      });
      bindTo(libc, fd, family, bindIp ?? anyAddress(family), port, what);
      const peers = new PeerTable(family, cfg.maxPeers, addressOf);
      const remotePeer = remote === null ? null : peers.intern(remote.ip, remote.port);
      // Made before connect(), so that localAddr is the wildcard Go's kcptun prints.
      const socket = new UdpSocket(libc, fd, family, peers, remotePeer, cfg, sharedPoller(libc));
      // Connected, the kernel passes on ICMP errors about the server (nobody listening there)
      // as ECONNREFUSED from the next receive or send, and drops datagrams from anyone else.
      if (remote !== null) connectTo(libc, fd, family, remote.ip, remote.port, what);
      return socket;
    } catch (e) {
      libc.symbols.close(fd);
      throw e;
    }
  }

  /**
   * The socket made by `Deno.listenDatagram`, so that Deno's event loop can watch it (see the
   * module docs), set up as {@link UdpTransport.#open} would. `null` when that API is missing
   * (no `--unstable-net`), for scoped IPv6 addresses, and whenever Deno's socket differs from
   * ours (a refused bind, a descriptor not found, an IPv6-only wildcard): the caller then makes
   * its own socket, which also reports errors with errno text.
   */
  #openOnEventLoop(
    family: 4 | 6,
    bindIp: IpAddress | null,
    port: number,
    remote: { ip: IpAddress; port: number } | null,
    options: TransportOptions,
    what: string,
  ): UdpSocket | null {
    const listen = (Deno as { listenDatagram?: typeof Deno.listenDatagram }).listenDatagram;
    if (typeof listen !== "function" || this.#config.poller !== "auto") return null;
    if (bindIp !== null && bindIp.scope !== 0) return null;
    if (remote !== null && remote.ip.scope !== 0) return null;
    const libc = this.#libc, cfg = this.#config;
    let conn: Deno.DatagramConn;
    try {
      const hostname = formatIp(bindIp ?? anyAddress(family));
      conn = listen({ transport: "udp", hostname, port });
    } catch {
      return null;
    }
    try {
      const bound = (conn.addr as Deno.NetAddr).port;
      const fd = findDatagramFd(libc, family, bound);
      if (fd < 0) throw new Error("not found");
      // A wildcard listener must hear IPv4 too, as ours does (only a wildcard bind can).
      const wildcard = remote === null && (bindIp === null || bindIp.bytes.every((b) => b === 0));
      if (
        family === 6 && wildcard &&
        getIntOption(libc, fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY) !== 0
      ) throw new Error("IPv6-only");
      applySocketOptions(libc, fd, options, {
        family,
        dualStack: family === 6,
        report: (line) => cfg.log(`${what}: ${line}`),
      });
      const peers = new PeerTable(family, cfg.maxPeers, addressOf);
      const remotePeer = remote === null ? null : peers.intern(remote.ip, remote.port);
      const poller = sharedPoller(libc);
      const socket = new UdpSocket(libc, fd, family, peers, remotePeer, cfg, poller, conn);
      if (remote !== null) connectTo(libc, fd, family, remote.ip, remote.port, what);
      return socket;
    } catch {
      try {
        conn.close();
      } catch { /* already closed */ }
      return null;
    }
  }
}
