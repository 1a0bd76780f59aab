/**
 * The portable UDP transport: `Deno.listenDatagram` (unstable `net`), used when the libc
 * transport (`transports/udp.ts`) cannot load: no `--allow-ffi`, not Linux, or no `libc.so.6`.
 *
 * It is several times slower (one promise and one address object per datagram, batches of one;
 * see `docs/transports.md`) and cannot set socket options: `sockbuf` and `dscp` are ignored with a
 * warning. Address semantics are the same as the libc transport's (`resolve.ts`), except that
 * hostnames are resolved with `Deno.resolveDns` (plus `localhost`), which does not read
 * `/etc/hosts`, and that
 * dual-stack listening relies on the system default (`bindv6only=0` on Linux and macOS).
 * Deno's UDP sockets cannot be connected, so the kernel never reports an unreachable server to
 * them: this transport has no `onEvent` (a client says nothing until its session times out).
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
  TransportOptions,
} from "../pipeline/transport.ts";
import { denoLookup, dialHost, resolveHost } from "./resolve.ts";
import { formatIp, type IpAddress, joinHostPort, parseIp } from "./sockaddr.ts";
import { newUdpStats, type UdpStats, type UdpTransportConfig } from "./udp_common.ts";

/** Datagrams waiting to be sent; more are dropped, as by a full kernel send buffer. */
const SEND_QUEUE = 4096;

/** A peer of a {@link DenoUdpSocket}, interned per (hostname, port). */
export class DenoPeer implements PeerAddress {
  /** `ipv4` for IPv4 and IPv4-mapped peers. */
  readonly family: "ipv4" | "ipv6";
  /** `127.0.0.1`, `::1`. */
  readonly hostname: string;
  /** Port number. */
  readonly port: number;
  /** `host:port`, IPv6 in brackets. */
  readonly key: string;
  /** What `DatagramConn.send` wants (IPv4-mapped on an IPv6 socket). */
  readonly addr: Deno.NetAddr;

  /** Made by {@link DenoUdpSocket} only. */
  constructor(ip: IpAddress, port: number, sendHost: string) {
    this.family = ip.family === 4 ? "ipv4" : "ipv6";
    this.hostname = formatIp(ip);
    this.port = port;
    this.key = joinHostPort(this.hostname, port);
    this.addr = { transport: "udp", hostname: sendHost, port };
  }
}

/** A socket of {@link DenoUdpTransport}. */
export class DenoUdpSocket implements DatagramSocket {
  /** The bound address. */
  readonly localAddr: PeerAddress;
  /** The server of a dialled socket, else `null`. */
  readonly remoteAddr: DenoPeer | null;
  /** Counters (same fields as the libc transport; `rxWakeups` counts receives). */
  readonly stats: UdpStats = newUdpStats();
  readonly #conn: Deno.DatagramConn;
  readonly #pool: PacketPool;
  readonly #max: number;
  readonly #maxPeers: number;
  readonly #v6: boolean;
  // hostname as Deno reports it -> port -> peer: two lookups, no string building per datagram.
  readonly #peers = new Map<string, Map<number, DenoPeer>>();
  readonly #foreign = new WeakMap<PeerAddress, DenoPeer>();
  #peerCount = 0;
  #handler: ReceiveHandler | null = null;
  #loop: Promise<void> | null = null;
  readonly #qPackets: (Packet | null)[] = new Array(SEND_QUEUE).fill(null);
  readonly #qPeers: (DenoPeer | null)[] = new Array(SEND_QUEUE).fill(null);
  #qHead = 0;
  #qLen = 0;
  #pump: Promise<void> | null = null;
  #closing = false;
  #closed: Promise<void> | null = null;

  /** Use {@link DenoUdpTransport}. */
  constructor(
    conn: Deno.DatagramConn,
    remote: { ip: IpAddress; port: number } | null,
    pool: PacketPool,
    maxDatagram: number,
    maxPeers: number,
  ) {
    this.#conn = conn;
    this.#pool = pool;
    this.#max = maxDatagram;
    this.#maxPeers = maxPeers;
    const local = conn.addr as Deno.NetAddr;
    this.#v6 = local.hostname.includes(":");
    this.localAddr = this.#intern(local.hostname, local.port);
    this.#peers.clear();
    this.#peerCount = 0;
    this.remoteAddr = remote === null ? null : this.#internIp(remote.ip, remote.port);
  }

  /** Sends each packet to `to`, else its `peer`, else the dialled server; releases them and empties the batch. */
  send(batch: PacketBatch, to?: PeerAddress): void {
    const stats = this.stats;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const target = to ?? p.peer ?? this.remoteAddr;
      const dest = this.#closing || target === null ? null : this.#own(target);
      if (dest === null || this.#qLen === SEND_QUEUE) {
        stats.dropped++;
        stats.txErrors++;
        p.release();
        continue;
      }
      const at = (this.#qHead + this.#qLen++) % SEND_QUEUE;
      this.#qPackets[at] = p;
      this.#qPeers[at] = dest;
    }
    batch.clear();
    if (this.#pump === null && this.#qLen > 0) this.#pump = this.#drain();
  }

  /** Sends the queue in order, one datagram at a time (concurrent sends get reordered). */
  async #drain(): Promise<void> {
    const stats = this.stats;
    while (this.#qLen > 0) {
      const at = this.#qHead;
      const p = this.#qPackets[at]!, dest = this.#qPeers[at]!;
      this.#qPackets[at] = null;
      this.#qPeers[at] = null;
      this.#qHead = (at + 1) % SEND_QUEUE;
      this.#qLen--;
      try {
        await this.#conn.send(p.bytes(), dest.addr);
        stats.txPackets++;
        stats.txBytes += p.length;
      } catch {
        stats.dropped++;
        stats.txErrors++;
      }
      p.release();
    }
    this.#pump = null;
  }

  /** Starts delivering received datagrams to `handler`, in batches (once per socket). */
  receive(handler: ReceiveHandler): void {
    if (this.#handler !== null) throw new Error("udp: receive() was already called on this socket");
    this.#handler = handler;
    if (!this.#closing) this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const batch = new PacketBatch(), stats = this.stats, remote = this.remoteAddr;
    for (;;) {
      const p = this.#pool.acquire();
      let got: [Uint8Array, Deno.Addr];
      try {
        // One spare byte tells an oversize datagram (Deno truncates silently).
        got = await this.#conn.receive(p.buffer.subarray(p.start, p.start + this.#max + 1));
      } catch (e) {
        p.release();
        if (this.#closing || e instanceof Deno.errors.BadResource) return; // closed
        // Anything else is about one datagram or a passing shortage: receiving goes on, after
        // a pause so that an error that repeats cannot spin.
        stats.rxErrors++;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      stats.rxWakeups++;
      const [data, from] = got;
      const addr = from as Deno.NetAddr;
      if (data.length > this.#max) {
        stats.dropped++;
        stats.rxOversize++;
        p.release();
        continue;
      }
      const peer = remote === null
        ? this.#intern(addr.hostname, addr.port)
        : addr.port === remote.port && addr.hostname === remote.addr.hostname
        ? remote
        : null;
      if (peer === null) {
        stats.dropped++;
        stats.rxForeign++;
        p.release();
        continue;
      }
      p.end = p.start + data.length;
      p.peer = peer;
      stats.rxPackets++;
      stats.rxBytes += data.length;
      batch.push(p);
      try {
        this.#handler!(batch);
      } catch {
        // the handler owns its errors; the socket keeps receiving
      }
      batch.clear();
    }
  }

  #intern(hostname: string, port: number): DenoPeer {
    const known = this.#peers.get(hostname)?.get(port);
    if (known !== undefined) return known;
    const ip = parseIp(hostname);
    if (ip === null) throw new Error(`udp: unexpected peer address ${hostname}`);
    const peer = this.#internIp(ip, port);
    if (peer.addr.hostname !== hostname) {
      // Deno spelled it differently from us: remember that spelling too.
      let m = this.#peers.get(hostname);
      if (m === undefined) this.#peers.set(hostname, m = new Map());
      m.set(port, peer);
    }
    return peer;
  }

  #internIp(ip: IpAddress, port: number): DenoPeer {
    const text = formatIp(ip);
    const sendHost = ip.family === 4 && this.#v6 ? `::ffff:${text}` : text;
    const byPort = this.#peers.get(sendHost);
    const known = byPort?.get(port);
    if (known !== undefined) return known;
    const peer = new DenoPeer(ip, port, sendHost);
    if (this.#peerCount >= this.#maxPeers) {
      this.#peers.clear();
      this.#peerCount = 0;
    }
    let m = this.#peers.get(sendHost);
    if (m === undefined) this.#peers.set(sendHost, m = new Map());
    m.set(port, peer);
    this.#peerCount++;
    return peer;
  }

  #own(addr: PeerAddress): DenoPeer | null {
    if (addr instanceof DenoPeer) return addr;
    let p = this.#foreign.get(addr);
    if (p !== undefined) return p;
    const ip = parseIp(addr.hostname);
    if (ip === null || (ip.family === 6 && !this.#v6)) return null;
    p = this.#internIp(ip, addr.port);
    this.#foreign.set(addr, p);
    return p;
  }

  /** Closes the socket; resolves once nothing is pending on it. Idempotent. */
  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closing = true;
    this.#closed = (async () => {
      if (this.#pump !== null) await this.#pump;
      this.#conn.close();
      if (this.#loop !== null) await this.#loop;
    })();
    return this.#closed;
  }
}

/**
 * UDP through `Deno.listenDatagram`: the fallback `udpTransport()` (`udp_stage.ts`) picks. Needs `--unstable-net`
 * (or `"unstable": ["net"]` in deno.json) and `--allow-net`.
 */
export class DenoUdpTransport implements DatagramTransport {
  readonly #pool: PacketPool;
  readonly #max: number;
  readonly #maxPeers: number;
  readonly #log: (line: string) => void;
  #warned = false;

  /** Takes the same settings as the libc transport; `batchSize` has no effect here. */
  constructor(config: UdpTransportConfig = {}) {
    this.#pool = config.pool ?? defaultPool;
    this.#max = config.maxDatagram ?? MAX_DATAGRAM;
    this.#maxPeers = config.maxPeers ?? 65536;
    this.#log = config.log ?? (() => {});
    if (this.#pool.capacity - this.#pool.headroom < this.#max + 1) {
      throw new RangeError("pool packets are too small for maxDatagram + 1 bytes");
    }
  }

  /** Binds `host:port` (see the class docs for what the host means). */
  async listen(host: string, port: number, options: TransportOptions = {}): Promise<DenoUdpSocket> {
    this.#warnOptions(options);
    const ip = await resolveHost(host, denoLookup);
    let conn: Deno.DatagramConn;
    if (ip === null) {
      try {
        conn = Deno.listenDatagram({ transport: "udp", hostname: "::", port });
      } catch {
        conn = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port });
      }
    } else conn = Deno.listenDatagram({ transport: "udp", hostname: formatIp(ip), port });
    return new DenoUdpSocket(conn, null, this.#pool, this.#max, this.#maxPeers);
  }

  /** A socket on an ephemeral port that talks to, and only hears from, `host:port`. */
  async dial(host: string, port: number, options: TransportOptions = {}): Promise<DenoUdpSocket> {
    this.#warnOptions(options);
    const ip = await dialHost(host, denoLookup);
    const conn = Deno.listenDatagram({
      transport: "udp",
      hostname: ip.family === 4 ? "0.0.0.0" : "::",
      port: 0,
    });
    return new DenoUdpSocket(conn, { ip, port }, this.#pool, this.#max, this.#maxPeers);
  }

  #warnOptions(options: TransportOptions): void {
    if (this.#warned || !((options.sockbuf ?? 0) > 0 || (options.dscp ?? 0) > 0)) return;
    this.#warned = true;
    this.#log("udp: socket options (sockbuf, dscp) need the libc transport; ignored");
  }
}
