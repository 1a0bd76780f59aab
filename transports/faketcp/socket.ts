/**
 * Fake-TCP datagram sockets: the dialled one (one flow, to a server) and the listening one (a
 * flow per accepted connection). Both capture inbound segments on raw sockets registered with
 * the process-wide poller, track each flow's numbers ({@link trackSegment}), deliver PSH payloads
 * of connected flows as datagrams, and send datagrams as hand-built PSH+ACK segments with
 * `sendmmsg` on the raw sockets.
 *
 * @module
 */

import { MMSGHDR, OFF_FLAGS, OFF_LEN, OFF_NAMELEN, sendmmsgAll } from "../mmsg.ts";
import { LineLimiter } from "../../pipeline/log_limit.ts";
import { PacketBatch, type PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import type { DatagramSocket, ReceiveHandler, TransportStats } from "../../pipeline/transport.ts";
import { addressOf, C, Errno, type Libc } from "../libc.ts";
import { DRAIN_ROUNDS, type Poller } from "../poller.ts";
import {
  type IpAddress,
  PeerTable,
  SOCKADDR_SLOT,
  type UdpPeer,
  writeSockaddr,
} from "../sockaddr.ts";
import { localAddress, remoteAddress, SyscallError } from "../sockopt.ts";
import { attachFilter, dropAll } from "./bpf.ts";
import { FlowState, takeSequence, trackSegment, WindowSource } from "./flow.ts";
import { abortiveClose, acceptOne, drain, setTtl } from "./kernel_tcp.ts";
import { RecvRing, SendRing } from "./rings.ts";
import {
  ipv4TcpOffset,
  pseudoHeaderSum,
  putChecksum,
  TCP_HEADER,
  tcpAck,
  tcpChecksum,
  tcpDstPort,
  TcpFlags,
  tcpHeaderLength,
  tcpSeq,
  tcpSrcPort,
  writeTcpHeader,
} from "./segment.ts";

/** {@link TransportStats} plus what fake TCP sees. */
export interface FakeTcpStats extends TransportStats {
  /** Payload bytes delivered. */
  rxBytes: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Segments captured for this socket's flows (any flags; `rxPackets` counts the delivered ones). */
  rxSegments: number;
  /** PSH segments of flows without a kernel connection, dropped as tcpraw does (part of `dropped`). */
  rxOrphan: number;
  /** Payloads longer than `maxDatagram` (part of `dropped`). */
  rxOversize: number;
  /** Captured packets that were not TCP to this socket's port, or too short to parse. */
  rxMalformed: number;
  /** Payloads that arrived before `receive()` was called (part of `dropped`). */
  rxNoHandler: number;
  /** Datagrams not sent: full send buffer, kernel errors (part of `dropped`). */
  txErrors: number;
  /** Datagrams for an address without a connected flow (part of `dropped`). */
  txNoFlow: number;
  /** errno of the last failed send, 0 if none. */
  txLastErrno: number;
  /** Completed raw receive calls. */
  rxWakeups: number;
  /** Kernel TCP connections accepted (listening sockets). */
  accepted: number;
  /** Accepted connections already reset when attached to their flow (listening sockets). */
  acceptGone: number;
  /** Failed accepts other than a gone connection (out of descriptors…): each pauses accepting. */
  acceptErrors: number;
  /** Flows forgotten after `flowIdleMs` without a segment (listening sockets). */
  flowsExpired: number;
}

/** Settings every fake-TCP socket takes from its transport. */
export interface SocketSettings {
  /** Where received packets come from. */
  pool: PacketPool;
  /** Slots per `recvmmsg`/`sendmmsg` call. */
  batchSize: number;
  /** Largest payload delivered. */
  maxDatagram: number;
  /** Flows a listening socket keeps (connected and orphan) before ignoring new sources. */
  maxFlows: number;
  /** A listening socket forgets a flow after this long without a captured segment (ms). */
  flowIdleMs: number;
  /** One-line diagnostics. */
  log: (line: string) => void;
}

/** One raw IP socket (protocol TCP) with its rings. */
export class RawEndpoint {
  /** Descriptor. */
  readonly fd: number;
  /** 4: AF_INET (packets start with the IPv4 header); 6: AF_INET6 (they start with TCP). */
  readonly family: 4 | 6;
  /** Receive slots. */
  readonly recv: RecvRing;
  /** Send slots. */
  readonly send: SendRing;
  /** Source addresses seen on this socket, interned. */
  readonly peers: PeerTable;
  /** Send slots filled and not yet flushed. */
  pending = 0;
  /** Poller token, 0 when not registered. */
  token = 0;

  /** Wraps a bound, filtered raw socket. */
  constructor(fd: number, family: 4 | 6, batchSize: number, maxPeers: number) {
    this.fd = fd;
    this.family = family;
    this.recv = new RecvRing(batchSize);
    this.send = new SendRing(batchSize);
    this.peers = new PeerTable(family, maxPeers);
  }
}

/** One fake-TCP flow: a remote ip:port, its numbers, its kernel connection and how to reach it. */
export class Flow extends FlowState {
  /** The address packets carry (`key` is `ip:port`, as Go's `TCPAddr.String()`). */
  readonly peer: UdpPeer;
  /** The remote TCP port. */
  readonly remotePort: number;
  /** The kernel TCP socket backing the flow, -1 for an orphan. */
  fd: number = -1;
  /** Family of {@link Flow.fd} (an IPv6 listener accepts IPv4 peers on IPv6 sockets). */
  fdFamily: 4 | 6 = 4;
  /** The raw socket its segments leave through. */
  raw: RawEndpoint | null = null;
  /** Pseudo-header sum (addresses and protocol). */
  pseudo = 0;
  /**
   * The per-message fields of `sendmmsg` for this flow, as u32 words: destination `sockaddr`
   * address (low, high) and length, control message address (low, high) and length; all 0 for
   * a connected raw socket. Kept as words so that the send loop never handles the 48-bit native
   * addresses as JS numbers.
   */
  readonly msg: Uint32Array = new Uint32Array(6);
  #slab: Uint8Array | null = null;

  /** A flow for `peer` (remote port `remotePort`), created by capture or by accept. */
  constructor(peer: UdpPeer, remotePort: number) {
    super();
    this.peer = peer;
    this.remotePort = remotePort;
  }

  /**
   * Prepares sending: the pseudo-header from `local` and `remote`, and, unless the raw socket is
   * connected, the destination `sockaddr` (port 0, which IPv6 raw sockets require) and a
   * `*_PKTINFO` control message fixing the source address to `local`.
   */
  route(raw: RawEndpoint, local: IpAddress, remote: IpAddress, connected: boolean): void {
    this.raw = raw;
    this.pseudo = pseudoHeaderSum(local.bytes, remote.bytes);
    if (connected) return;
    // An explicit ArrayBuffer keeps the bytes off the V8 heap, so their address never moves.
    const slab = new Uint8Array(new ArrayBuffer(SOCKADDR_SLOT + 40));
    this.#slab = slab;
    const base = addressOf(slab);
    const msg = this.msg;
    msg[0] = base % 0x100000000;
    msg[1] = Math.floor(base / 0x100000000);
    msg[2] = writeSockaddr(slab, 0, raw.family, remote, 0);
    const v = new DataView(slab.buffer);
    const at = SOCKADDR_SLOT;
    if (raw.family === 4) {
      // struct cmsghdr { size_t len; int level; int type; } + struct in_pktinfo (12 bytes)
      v.setUint32(at, 16 + 12, true);
      v.setInt32(at + 8, C.IPPROTO_IP, true);
      v.setInt32(at + 12, C.IP_PKTINFO, true);
      slab.set(local.bytes, at + 16 + 4); // ipi_spec_dst: the source address
      msg[5] = 32;
    } else {
      // + struct in6_pktinfo { in6_addr addr; unsigned ifindex; } (20 bytes)
      v.setUint32(at, 16 + 20, true);
      v.setInt32(at + 8, C.IPPROTO_IPV6, true);
      v.setInt32(at + 12, C.IPV6_PKTINFO, true);
      slab.set(local.bytes, at + 16);
      v.setUint32(at + 32, local.scope, true);
      msg[5] = 40;
    }
    msg[3] = (base + at) % 0x100000000;
    msg[4] = Math.floor((base + at) / 0x100000000);
  }
}

/** What both kinds of fake-TCP socket share: capture, tracking, delivery, sending, closing. */
export abstract class FakeTcpSocket implements DatagramSocket {
  /** The kernel TCP socket's address (`[::]:port` for a wildcard listener). */
  readonly localAddr: UdpPeer;
  /** The local TCP port (the source port of every segment sent). */
  readonly localPort: number;
  /** Counters. */
  readonly stats: FakeTcpStats = {
    rxPackets: 0,
    txPackets: 0,
    dropped: 0,
    rxBytes: 0,
    txBytes: 0,
    rxSegments: 0,
    rxOrphan: 0,
    rxOversize: 0,
    rxMalformed: 0,
    rxNoHandler: 0,
    txErrors: 0,
    txNoFlow: 0,
    txLastErrno: 0,
    rxWakeups: 0,
    accepted: 0,
    acceptGone: 0,
    acceptErrors: 0,
    flowsExpired: 0,
  };

  readonly #libc: Libc;
  readonly #poller: Poller;
  /** Settings. */
  protected readonly settings: SocketSettings;
  /** The raw sockets (one, or one per family for a wildcard listener). */
  protected readonly raws: RawEndpoint[];
  readonly #batch = new PacketBatch();
  readonly #ipTotal = new Int32Array(1);
  readonly #windows = new WindowSource();
  #handler: ReceiveHandler | null = null;
  #closing = false;
  #closed: Promise<void> | null = null;
  #error: string | null = null;
  #now = 0;

  /** Registers the raw sockets with the poller: capture starts at once (the handshake counts). */
  constructor(
    libc: Libc,
    poller: Poller,
    settings: SocketSettings,
    raws: RawEndpoint[],
    localAddr: UdpPeer,
  ) {
    this.#libc = libc;
    this.#poller = poller;
    this.settings = settings;
    this.raws = raws;
    this.localAddr = localAddr;
    this.localPort = localAddr.port;
    for (const raw of raws) {
      for (let i = 0; i < raw.recv.size; i++) raw.recv.attach(i, settings.pool.acquire());
      raw.token = poller.add(raw.fd, () => this.readable(raw));
    }
  }

  /**
   * Every descriptor this socket owns now: raw sockets, the kernel TCP socket(s) and listener
   * (for diagnostics and leak checks; do not close them).
   */
  descriptors(): number[] {
    if (this.#closing) return [];
    return [...this.raws.map((r) => r.fd), ...this.kernelDescriptors()];
  }

  /** The kernel TCP descriptors (listener, connections) open now. */
  protected abstract kernelDescriptors(): number[];

  /** Why receiving stopped early (a kernel error), or `null`. */
  get error(): string | null {
    return this.#error;
  }

  /** True once {@link FakeTcpSocket.close} has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /** Starts delivering received datagrams to `handler` (once per socket). */
  receive(handler: ReceiveHandler): void {
    if (this.#handler !== null) {
      throw new Error("faketcp: receive() was already called on this socket");
    }
    this.#handler = handler;
  }

  /** The flow a captured segment from `view[nameAt]` (port already patched) belongs to. */
  protected abstract flowFor(
    raw: RawEndpoint,
    view: DataView,
    nameAt: number,
    nameLen: number,
    srcPort: number,
    now: number,
  ): Flow | null;

  /** The flow datagrams for `peer` (or the default destination when `null`) go to. */
  protected abstract flowTo(peer: PeerAddress | null): Flow | null;

  /** Gives an orphan flow its kernel connection if one is waiting; true when it now has one. */
  protected adopt(_flow: Flow): boolean {
    return false;
  }

  /**
   * Closes what the subclass owns (kernel TCP sockets, timers), adding any poller removal to
   * `removals` so that `close()` waits for it.
   */
  protected abstract closeOwned(removals: Promise<void>[]): void;

  /** The clock of the current receive call (ms). */
  protected get now(): number {
    return this.#now;
  }

  /**
   * The poller saw data on `raw`: read it with non-blocking `recvmmsg` calls on this thread, at
   * most {@link DRAIN_ROUNDS} batches, handle every segment, deliver the payloads as one batch.
   */
  protected readable(raw: RawEndpoint): void {
    const sym = this.#libc.symbols, ring = raw.recv, size = ring.size, pool = this.settings.pool;
    this.#now = performance.now();
    for (let round = 0; round < DRAIN_ROUNDS && !this.#closing; round++) {
      for (let i = 0; i < size; i++) {
        ring.resetName(i);
        if (ring.packets[i] === null) ring.attach(i, pool.acquire());
      }
      const n = sym.recvmmsg(raw.fd, ring.ptr, size, C.MSG_DONTWAIT, null);
      if (n < 0) {
        const e = this.#libc.errno();
        if (e === Errno.EINTR) continue;
        if (e !== Errno.EAGAIN) {
          this.#error = this.#libc.describe("recvmmsg (raw)", e);
          this.settings.log(`faketcp ${this.localAddr.key}: receiving stopped: ${this.#error}`);
          const token = raw.token;
          raw.token = 0;
          if (token !== 0) void this.#poller.remove(raw.fd, token);
        }
        break;
      }
      this.stats.rxWakeups++;
      for (let i = 0; i < n; i++) this.#segment(raw, i);
      if (n < size) break;
    }
    this.#deliver();
  }

  /** Handles the packet in receive slot i of `raw`. */
  #segment(raw: RawEndpoint, i: number): void {
    const ring = raw.recv, view = ring.view, h = i * MMSGHDR, stats = this.stats;
    const p = ring.packets[i]!;
    const buf = p.buffer;
    const len = view.getUint32(h + OFF_LEN, true);
    if ((view.getInt32(h + OFF_FLAGS, true) & C.MSG_TRUNC) !== 0) {
      stats.rxMalformed++;
      return;
    }
    let t: number, end: number;
    if (raw.family === 4) {
      t = ipv4TcpOffset(buf, 0, len, this.#ipTotal);
      if (t < 0) {
        stats.rxMalformed++;
        return;
      }
      end = this.#ipTotal[0];
    } else {
      if (len < TCP_HEADER) {
        stats.rxMalformed++;
        return;
      }
      t = 0;
      end = len;
    }
    const doff = tcpHeaderLength(buf, t);
    if (doff < TCP_HEADER || t + doff > end || tcpDstPort(buf, t) !== this.localPort) {
      stats.rxMalformed++;
      return;
    }
    const srcPort = tcpSrcPort(buf, t);
    const nameAt = ring.namesAt + i * SOCKADDR_SLOT;
    view.setUint16(nameAt + 2, srcPort, false);
    const now = this.#now;
    const flow = this.flowFor(
      raw,
      view,
      nameAt,
      view.getUint32(h + OFF_NAMELEN, true),
      srcPort,
      now,
    );
    if (flow === null) {
      stats.rxMalformed++;
      return;
    }
    stats.rxSegments++;
    const flags = buf[t + 13];
    const payload = end - t - doff;
    let deliver = trackSegment(flow, flags, tcpSeq(buf, t), tcpAck(buf, t), payload, now);
    if (!deliver && (flags & TcpFlags.PSH) !== 0 && !flow.connected) deliver = this.adopt(flow);
    if (!deliver) {
      if ((flags & TcpFlags.PSH) !== 0) {
        stats.rxOrphan++;
        stats.dropped++;
      }
      return;
    }
    if (payload > this.settings.maxDatagram) {
      stats.rxOversize++;
      stats.dropped++;
      return;
    }
    if (this.#handler === null) {
      stats.rxNoHandler++;
      stats.dropped++;
      return;
    }
    ring.packets[i] = null;
    p.start = t + doff;
    p.end = end;
    p.peer = flow.peer;
    this.#batch.push(p);
    stats.rxBytes += payload;
  }

  #deliver(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.stats.rxPackets += batch.length;
    try {
      this.#handler!(batch);
    } catch (e) {
      this.settings.log(`faketcp ${this.localAddr.key}: receive handler threw: ${e}`);
    }
    batch.clear();
  }

  /**
   * Sends each packet as one PSH+ACK segment to `to`, else its `peer`, else the dialled server;
   * releases them and empties the batch. A packet for an address without a connected flow is
   * dropped and counted (`txNoFlow`), as tcpraw drops writes to flows it has not seen.
   */
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
    const fixed = to === undefined ? null : this.flowTo(to);
    const packets = batch.packets, windows = this.#windows, localPort = this.localPort;
    for (let i = 0; i < n; i++) {
      const p = packets[i];
      const flow = to !== undefined ? fixed : this.flowTo(p.peer);
      if (flow === null || !flow.connected || !flow.seen || flow.raw === null) {
        stats.dropped++;
        stats.txNoFlow++;
        p.release();
        continue;
      }
      const raw = flow.raw, ring = raw.send, k = raw.pending;
      const len = p.end - p.start;
      const hdr = ring.bytes, at = ring.headersAt + k * TCP_HEADER;
      writeTcpHeader(
        hdr,
        at,
        localPort,
        flow.remotePort,
        takeSequence(flow, len),
        flow.ack,
        TcpFlags.PSH | TcpFlags.ACK,
        windows.next(),
      );
      putChecksum(hdr, at, tcpChecksum(flow.pseudo, hdr, at, TCP_HEADER, p.view, p.start, p.end));
      ring.fill(k, flow.msg, p);
      raw.pending = k + 1;
      if (raw.pending === ring.size) this.#flush(raw);
    }
    const raws = this.raws;
    for (let r = 0; r < raws.length; r++) if (raws[r].pending > 0) this.#flush(raws[r]);
    batch.clear();
  }

  /** Sends the pending slots of `raw`, releasing every packet afterwards. */
  #flush(raw: RawEndpoint): void {
    const k = raw.pending;
    raw.pending = 0;
    sendmmsgAll(this.#libc, raw.fd, raw.send, k, this.stats);
  }

  /**
   * Closes the socket: out of the poller, raw sockets closed, kernel TCP connections reset
   * (TTL restored first, as tcpraw does), packets returned. Resolves once nothing is pending.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closing = true;
    this.#closed = (async () => {
      const removals: Promise<void>[] = [];
      for (const raw of this.raws) {
        const token = raw.token;
        raw.token = 0;
        if (token !== 0) removals.push(this.#poller.remove(raw.fd, token));
      }
      this.closeOwned(removals);
      for (const raw of this.raws) this.#libc.symbols.close(raw.fd);
      await Promise.all(removals);
      for (const raw of this.raws) {
        const ring = raw.recv;
        for (let i = 0; i < ring.size; i++) {
          ring.packets[i]?.release();
          ring.packets[i] = null;
        }
      }
    })();
    return this.#closed;
  }

  /** Makes `fd` (an established kernel connection) deaf and quiet: TTL 1, drop-all filter. */
  protected silence(fd: number, family: 4 | 6): void {
    const libc = this.#libc;
    const e1 = setTtl(libc, fd, family, 1);
    if (e1 !== 0) this.settings.log(`faketcp: ${libc.describe("set TTL 1", e1)}`);
    const e2 = attachFilter(libc, fd, dropAll());
    if (e2 !== 0) this.settings.log(`faketcp: ${libc.describe("attach drop filter", e2)}`);
    scratch ??= new Uint8Array(new ArrayBuffer(65536));
    drain(libc, fd, scratch);
  }
}

/** Where drained bytes go (made on first use, so importing this module allocates nothing). */
let scratch: Uint8Array | null = null;

/** A socket dialled to one server: one flow, one raw socket connected to the server's address. */
export class FakeTcpDialSocket extends FakeTcpSocket {
  /** The server (the only source accepted). */
  readonly remoteAddr: UdpPeer;
  /** The flow to the server. */
  readonly flow: Flow;
  /** The kernel TCP socket (do not close it). */
  readonly tcpFd: number;
  readonly #family: 4 | 6;
  readonly #libc: Libc;
  #tcpOpen = true;

  /** Use `FakeTcpTransport.dial`: wraps a connecting TCP socket and its raw socket. */
  constructor(
    libc: Libc,
    poller: Poller,
    settings: SocketSettings,
    raw: RawEndpoint,
    tcpFd: number,
    local: { ip: IpAddress; port: number },
    remote: { ip: IpAddress; port: number },
  ) {
    const family = raw.family;
    super(
      libc,
      poller,
      settings,
      [raw],
      new PeerTable(family, 1).intern(local.ip, local.port),
    );
    this.#family = family;
    this.#libc = libc;
    this.tcpFd = tcpFd;
    this.remoteAddr = raw.peers.intern(remote.ip, remote.port);
    this.flow = new Flow(this.remoteAddr, remote.port);
    this.flow.route(raw, local.ip, remote.ip, true);
  }

  /**
   * The handshake completed: silence the kernel connection, take in the captured SYN-ACK, and
   * let the flow's data through.
   */
  established(): void {
    this.silence(this.tcpFd, this.#family);
    this.flow.connected = true;
    this.readable(this.raws[0]);
  }

  /** The flow a captured segment belongs to (see the base class). */
  protected flowFor(
    _raw: RawEndpoint,
    _view: DataView,
    _nameAt: number,
    _nameLen: number,
    srcPort: number,
  ): Flow | null {
    // The raw socket is connected to the server's address and filtered on both ports.
    return srcPort === this.flow.remotePort ? this.flow : null;
  }

  /** The flow datagrams for `peer` go to (see the base class). */
  protected flowTo(peer: PeerAddress | null): Flow | null {
    if (peer === null || peer === this.remoteAddr || peer.key === this.remoteAddr.key) {
      return this.flow;
    }
    return null;
  }

  /** The kernel TCP descriptors open now. */
  protected kernelDescriptors(): number[] {
    return this.#tcpOpen ? [this.tcpFd] : [];
  }

  /** Closes the kernel TCP socket(s) and timers this socket owns. */
  protected closeOwned(_removals: Promise<void>[]): void {
    if (!this.#tcpOpen) return;
    this.#tcpOpen = false;
    abortiveClose(this.#libc, this.tcpFd, this.#family);
  }
}

/** A listening socket: a kernel TCP listener, raw capture per family, one flow per peer. */
export class FakeTcpListenSocket extends FakeTcpSocket {
  /** Flows by `ip:port` (connected and orphan). */
  readonly flows: Map<string, Flow> = new Map();
  /** The kernel listening socket (do not close it). */
  readonly listenFd: number;
  readonly #listenFamily: 4 | 6;
  readonly #libc: Libc;
  readonly #poller: Poller;
  readonly #byFamily: (RawEndpoint | null)[] = [null, null];
  #listenToken = 0;
  /** While accepting is paused (see #pauseAccepting). */
  #acceptPause: ReturnType<typeof setTimeout> | undefined;
  #acceptBackoff = 0;
  readonly #limiter: LineLimiter;
  #lastPeer: PeerAddress | null = null;
  #lastFlow: Flow | null = null;
  #sweep: ReturnType<typeof setInterval>;

  /** Use `FakeTcpTransport.listen`: wraps a listening TCP socket and its raw sockets. */
  constructor(
    libc: Libc,
    poller: Poller,
    settings: SocketSettings,
    raws: RawEndpoint[],
    listenFd: number,
    listenFamily: 4 | 6,
    local: { ip: IpAddress; port: number },
  ) {
    super(
      libc,
      poller,
      settings,
      raws,
      new PeerTable(listenFamily, 1).intern(local.ip, local.port),
    );
    this.listenFd = listenFd;
    this.#listenFamily = listenFamily;
    this.#libc = libc;
    this.#poller = poller;
    for (const r of raws) this.#byFamily[r.family === 4 ? 0 : 1] = r;
    this.#limiter = new LineLimiter(settings.log, { max: 1, windowMs: 10000 });
    this.#listenToken = poller.add(listenFd, () => this.#acceptAll());
    const every = Math.max(1000, Math.min(15000, settings.flowIdleMs / 4));
    this.#sweep = setInterval(() => this.#expire(performance.now()), every);
    Deno.unrefTimer(this.#sweep);
  }

  /** The flow a captured segment belongs to (see the base class). */
  protected flowFor(
    raw: RawEndpoint,
    view: DataView,
    nameAt: number,
    nameLen: number,
    srcPort: number,
    now: number,
  ): Flow | null {
    const peer = raw.peers.lookup(view, nameAt, nameLen);
    if (peer === null) return null;
    let flow = this.flows.get(peer.key);
    if (flow !== undefined) return flow;
    if (this.flows.size >= this.settings.maxFlows) return null;
    flow = new Flow(peer, srcPort);
    flow.lastSeen = now;
    this.flows.set(peer.key, flow);
    return flow;
  }

  /** The flow datagrams for `peer` go to (see the base class). */
  protected flowTo(peer: PeerAddress | null): Flow | null {
    if (peer === null) return null;
    if (peer === this.#lastPeer) return this.#lastFlow;
    const flow = this.flows.get(peer.key) ?? null;
    this.#lastPeer = peer;
    this.#lastFlow = flow;
    return flow;
  }

  /** Accepts pending connections; true when `flow` now has one. */
  protected override adopt(flow: Flow): boolean {
    // The data may have been captured before the poller got round to the listener.
    this.#acceptAll();
    return flow.connected;
  }

  /** Accepts every pending connection and attaches each to its flow. */
  #acceptAll(): void {
    const libc = this.#libc;
    if (this.#acceptPause !== undefined) return;
    for (let i = 0; i < 256 && !this.closed; i++) {
      let fd: number;
      try {
        fd = acceptOne(libc, this.listenFd);
      } catch (e) {
        this.#pauseAccepting((e as Error).message);
        return;
      }
      if (fd < 0) {
        this.#acceptBackoff = 0;
        return;
      }
      try {
        this.#attach(fd);
      } catch (e) {
        abortiveClose(libc, fd, this.#listenFamily);
        if (e instanceof SyscallError && e.errno === Errno.ENOTCONN) {
          this.stats.acceptGone++; // reset before we got to it, as a port scanner does
        } else {
          this.#limiter.line(
            "dropped",
            `faketcp ${this.localAddr.key}: accepted connection dropped: ${e}`,
          );
        }
      }
    }
  }

  /**
   * Out of descriptors (or memory): the pending connection stays queued and the listener stays
   * readable, so the level-triggered poller would call straight back. Stop watching it for a
   * while (5 ms doubling up to 1 s), then look again.
   */
  #pauseAccepting(why: string): void {
    this.stats.acceptErrors++;
    this.#acceptBackoff = Math.min(Math.max(5, this.#acceptBackoff * 2), 1000);
    const wait = this.#acceptBackoff;
    this.#limiter.line(
      "accept",
      `faketcp ${this.localAddr.key}: ${why}; accepting again in ${wait} ms`,
    );
    const token = this.#listenToken;
    this.#listenToken = 0;
    if (token !== 0) void this.#poller.remove(this.listenFd, token);
    this.#acceptPause = setTimeout(() => {
      this.#acceptPause = undefined;
      if (this.closed) return;
      this.#listenToken = this.#poller.add(this.listenFd, () => this.#acceptAll());
      this.#acceptAll();
    }, wait);
  }

  #attach(fd: number): void {
    const remote = remoteAddress(this.#libc, fd);
    const local = localAddress(this.#libc, fd);
    const raw = this.#byFamily[remote.ip.family === 4 ? 0 : 1];
    if (raw === null) throw new SyscallError("no raw socket for this address family", 0);
    this.silence(fd, this.#listenFamily);
    const peer = raw.peers.intern(remote.ip, remote.port);
    let flow = this.flows.get(peer.key);
    if (flow === undefined) {
      flow = new Flow(peer, remote.port);
      flow.lastSeen = performance.now();
      this.flows.set(peer.key, flow);
    } else if (flow.fd >= 0) {
      abortiveClose(this.#libc, flow.fd, flow.fdFamily);
    }
    flow.fd = fd;
    flow.fdFamily = this.#listenFamily;
    flow.connected = true;
    flow.route(raw, local.ip, remote.ip, false);
    this.#lastPeer = null;
    this.stats.accepted++;
  }

  /** Forgets flows idle for longer than `flowIdleMs`, resetting their kernel connections. */
  #expire(now: number): void {
    const idle = this.settings.flowIdleMs;
    for (const [key, flow] of this.flows) {
      if (now - flow.lastSeen <= idle) continue;
      if (flow.fd >= 0) abortiveClose(this.#libc, flow.fd, flow.fdFamily);
      flow.fd = -1;
      flow.connected = false;
      this.flows.delete(key);
      this.stats.flowsExpired++;
    }
    this.#lastPeer = null;
  }

  /** Runs the idle sweep now as if the clock read `now` (tests). */
  expireIdle(now: number = performance.now()): void {
    this.#expire(now);
  }

  /** The kernel TCP descriptors open now. */
  protected kernelDescriptors(): number[] {
    const fds = [this.listenFd];
    for (const f of this.flows.values()) if (f.fd >= 0) fds.push(f.fd);
    return fds;
  }

  /** Closes the kernel TCP socket(s) and timers this socket owns. */
  protected closeOwned(removals: Promise<void>[]): void {
    clearInterval(this.#sweep);
    clearTimeout(this.#acceptPause);
    this.#acceptPause = undefined;
    this.#limiter.close();
    const token = this.#listenToken;
    this.#listenToken = 0;
    if (token !== 0) removals.push(this.#poller.remove(this.listenFd, token));
    this.#libc.symbols.close(this.listenFd);
    for (const flow of this.flows.values()) {
      if (flow.fd >= 0) abortiveClose(this.#libc, flow.fd, flow.fdFamily);
      flow.fd = -1;
      flow.connected = false;
    }
    this.flows.clear();
  }
}
