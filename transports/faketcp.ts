/**
 * The fake-TCP transport (kcptun's `-tcp`, wire-compatible with tcpraw v1.2.25 as in Debian's
 * kcptun 20210922): every datagram travels as the payload of one hand-built TCP segment (PSH+ACK)
 * on a flow whose handshake was made by a real kernel TCP connection, so that middleboxes see an
 * ordinary TCP flow. Linux only, needs FFI and raw sockets (root or `CAP_NET_RAW`).
 *
 * - `dial(host, port)`: a kernel TCP connection to the server (non-blocking connect through the
 *   poller) and a raw TCP socket connected to the server's address that captures the flow's
 *   segments (a BPF filter keeps only its ports) and sends the datagrams.
 * - `listen(host, port)`: a kernel TCP listener, raw capture sockets (one per address family for
 *   a wildcard), one flow per accepted connection, keyed by the peer's `ip:port`.
 * - Per flow, the sequence number sent is the last acknowledgement number captured from the peer
 *   plus the bytes sent since, and the acknowledgement number follows the peer's in-order
 *   payloads (`transports/faketcp/flow.ts` has the rules). Window: random, ≥ 32768. No options.
 * - Only PSH segments of flows with a kernel connection are delivered; the rest only update the
 *   flow's numbers.
 * - Where tcpraw relies on an iptables rule to keep the kernel's own ACKs and RSTs for the flow
 *   off the wire, the kernel connection here is made deaf instead: once established, a
 *   drop-everything socket filter stops every inbound segment before TCP sees it, so the kernel
 *   has nothing to acknowledge or reset. Its TTL is set to 1 as tcpraw does. No rule is added, so
 *   there is nothing to remove on exit. Closing resets the kernel connection (TTL restored).
 *
 * The server side of kcptun `-tcp` also listens on UDP on the same port: run a second listener
 * on a UDP socket (see `docs/faketcp.md`).
 *
 * @module
 */

import { defaultPool, MAX_DATAGRAM, type PacketPool } from "../pipeline/packet.ts";
import type { BoundaryStageDefinition, StageContext, StageOptions } from "../pipeline/stage.ts";
import type { DatagramTransport, TransportOptions } from "../pipeline/transport.ts";
import { C, Errno, type Libc } from "./libc.ts";
import { type Poller, sharedPoller } from "./poller.ts";
import { checkPort, dialHost, getaddrinfo, type Lookup, resolveHost } from "./resolve.ts";
import { anyAddress, formatIp, joinHostPort } from "./sockaddr.ts";
import {
  applySocketOptions,
  bindTo,
  connectTo,
  localAddress,
  openSocket,
  setIntOption,
  SyscallError,
} from "./sockopt.ts";
import { udpTransport } from "./udp_stage.ts";
import {
  fakeTcpLibc,
  FakeTcpUnavailableError,
  fakeTcpUnavailableReason,
  rawSocketFailure,
} from "./faketcp/availability.ts";
import { attachFilter, captureFilter, noPayload } from "./faketcp/bpf.ts";
import { connectNonBlocking, drain } from "./faketcp/kernel_tcp.ts";
import {
  FakeTcpDialSocket,
  FakeTcpListenSocket,
  FakeTcpSocket,
  type FakeTcpStats,
  Flow,
  RawEndpoint,
  type SocketSettings,
} from "./faketcp/socket.ts";

export { FakeTcpUnavailableError, fakeTcpUnavailableReason };
export {
  FakeTcpDialSocket,
  FakeTcpListenSocket,
  FakeTcpSocket,
  type FakeTcpStats,
  Flow,
  RawEndpoint,
  type SocketSettings,
};
export { FlowState } from "./faketcp/flow.ts";
export { RecvRing, SendRing } from "./faketcp/rings.ts";

/** Settings of a {@link FakeTcpTransport} that apply to every socket it makes. */
export interface FakeTcpTransportConfig {
  /** Where received packets come from (default: the process-wide pool). */
  pool?: PacketPool;
  /** Segments per `recvmmsg`/`sendmmsg` call (default 64, at most 1024). */
  batchSize?: number;
  /** Largest payload delivered; longer ones are dropped and counted (default 1500). */
  maxDatagram?: number;
  /** Flows a listening socket tracks before it ignores new sources (default 65536). */
  maxFlows?: number;
  /** A listening socket forgets a flow after this long without a segment (ms, default 60000). */
  flowIdleMs?: number;
  /** How long `dial` waits for the TCP handshake (ms, default 30000). */
  connectTimeoutMs?: number;
  /** One-line diagnostics (option failures, receive errors). Silent by default. */
  log?: (line: string) => void;
  /** What a server also listens with on the same addresses (see `DatagramTransport`). */
  alsoServes?: readonly DatagramTransport[];
}

/** IP header (≤ 60) + TCP header (≤ 60) in front of a captured payload. */
const CAPTURE_HEADROOM = 120;

/**
 * Fake-TCP sockets (see the module docs). The constructor throws
 * {@link FakeTcpUnavailableError} when not on Linux or FFI is not permitted; `listen`/`dial`
 * throw it when raw sockets are refused (not root, no `CAP_NET_RAW`).
 *
 * Addresses as in `UdpTransport`: `listen("")`, `"0.0.0.0"` and `"::"` take every interface,
 * IPv4 and IPv6 (a dual-stack kernel listener, raw capture on both families); a literal binds
 * that address; names go through `getaddrinfo`, IPv4 first. `dial("")` means 127.0.0.1.
 */
export class FakeTcpTransport implements DatagramTransport {
  readonly #libc: Libc;
  readonly #lookup: Lookup;
  readonly #poller: Poller;
  readonly #settings: SocketSettings;
  readonly #connectTimeoutMs: number;
  /** Transports a server also listens with (plain UDP, as Go's kcptun). */
  readonly alsoServes: readonly DatagramTransport[];

  /** Checks the configuration and loads libc (throws {@link FakeTcpUnavailableError}). */
  constructor(config: FakeTcpTransportConfig = {}, libc: Libc = fakeTcpLibc()) {
    const pool = config.pool ?? defaultPool;
    const batchSize = config.batchSize ?? 64;
    const maxDatagram = config.maxDatagram ?? MAX_DATAGRAM;
    if (!(batchSize >= 1 && batchSize <= 1024)) throw new RangeError("batchSize must be 1..1024");
    if (!(maxDatagram >= 1 && maxDatagram <= 65000)) {
      throw new RangeError("maxDatagram must be 1..65000");
    }
    if (pool.capacity < maxDatagram + CAPTURE_HEADROOM) {
      throw new RangeError(
        `pool packets hold ${pool.capacity} bytes, less than maxDatagram ${maxDatagram} ` +
          `+ ${CAPTURE_HEADROOM} bytes of captured IP and TCP headers`,
      );
    }
    this.#libc = libc;
    this.#lookup = (name) => getaddrinfo(libc, name);
    this.alsoServes = config.alsoServes ?? [];
    this.#poller = sharedPoller(libc);
    this.#settings = {
      pool,
      batchSize,
      maxDatagram,
      maxFlows: config.maxFlows ?? 65536,
      flowIdleMs: config.flowIdleMs ?? 60000,
      log: config.log ?? (() => {}),
    };
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 30000;
  }

  /**
   * A kernel TCP listener on `host:port` plus raw capture. Datagrams from each accepted
   * connection arrive with `peer.key` = its `ip:port`; replies go out on that flow.
   */
  async listen(
    host: string,
    port: number,
    options: TransportOptions = {},
  ): Promise<FakeTcpListenSocket> {
    checkPort(port);
    const ip = await resolveHost(host, this.#lookup);
    const libc = this.#libc, settings = this.#settings;
    const what = `listen tcp ${joinHostPort(ip === null ? "" : formatIp(ip), port)}`;
    let listenFamily: 4 | 6 = ip === null ? 6 : ip.family;
    let fd: number;
    try {
      fd = openSocket(libc, listenFamily, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0, what);
    } catch (e) {
      if (!(ip === null && e instanceof SyscallError && e.errno === Errno.EAFNOSUPPORT)) throw e;
      listenFamily = 4; // no IPv6 in this kernel
      fd = openSocket(libc, listenFamily, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0, what);
    }
    const raws: RawEndpoint[] = [];
    try {
      if (listenFamily === 6 && ip === null) {
        setIntOption(libc, fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY, 0);
      }
      setIntOption(libc, fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
      bindTo(libc, fd, listenFamily, ip ?? anyAddress(listenFamily), port, what);
      const local = localAddress(libc, fd);
      const families: (4 | 6)[] = ip !== null ? [ip.family] : listenFamily === 6 ? [4, 6] : [4];
      for (const family of families) {
        const raw = this.#openRaw(family, what);
        raws.push(raw);
        if (ip !== null) bindTo(libc, raw.fd, family, ip, 0, what);
        this.#filterRaw(raw, captureFilter(family === 4, local.port), options, what);
      }
      // Children inherit this filter until accept replaces it: data arriving before then is
      // kept from the kernel, which would otherwise acknowledge it.
      attachFilter(libc, fd, noPayload());
      if (libc.symbols.listen(fd, C.SOMAXCONN) < 0) {
        const e = libc.errno();
        throw new SyscallError(libc.describe(what, e), e);
      }
      return new FakeTcpListenSocket(
        libc,
        this.#poller,
        settings,
        raws,
        fd,
        listenFamily,
        local,
      );
    } catch (e) {
      for (const raw of raws) libc.symbols.close(raw.fd);
      libc.symbols.close(fd);
      throw e;
    }
  }

  /**
   * A kernel TCP connection to `host:port` (the handshake completes before this resolves) with
   * raw capture of its flow. Datagrams go to the server; only the server's segments arrive.
   */
  async dial(
    host: string,
    port: number,
    options: TransportOptions = {},
  ): Promise<FakeTcpDialSocket> {
    checkPort(port);
    if (port === 0) throw new RangeError("dial: port 0");
    const ip = await dialHost(host, this.#lookup);
    const libc = this.#libc, family = ip.family;
    const what = `dial tcp ${joinHostPort(formatIp(ip), port)}`;
    const raw = this.#openRaw(family, what);
    let tcp = -1;
    let socket: FakeTcpDialSocket | null = null;
    try {
      // Connecting the raw socket picks the source address (as routing would for the TCP
      // connection) and restricts capture to packets from the server.
      // IPv6 raw sockets read the port field as a protocol: leave it 0.
      connectTo(libc, raw.fd, family, ip, 0, `${what}: connect raw socket`);
      const local = localAddress(libc, raw.fd);
      tcp = openSocket(libc, family, C.SOCK_STREAM | C.SOCK_NONBLOCK, 0, what);
      bindTo(libc, tcp, family, local.ip, 0, what);
      const bound = localAddress(libc, tcp);
      this.#filterRaw(raw, captureFilter(family === 4, bound.port, port), options, what);
      attachFilter(libc, tcp, noPayload());
      socket = new FakeTcpDialSocket(
        libc,
        this.#poller,
        this.#settings,
        raw,
        tcp,
        bound,
        { ip, port },
      );
      await connectNonBlocking(
        libc,
        this.#poller,
        tcp,
        family,
        ip,
        port,
        this.#connectTimeoutMs,
        what,
      );
      socket.established();
      return socket;
    } catch (e) {
      if (socket !== null) await socket.close();
      else {
        libc.symbols.close(raw.fd);
        if (tcp >= 0) libc.symbols.close(tcp);
      }
      throw e;
    }
  }

  #openRaw(family: 4 | 6, what: string): RawEndpoint {
    const libc = this.#libc;
    let fd: number;
    try {
      fd = openSocket(
        libc,
        family,
        C.SOCK_RAW | C.SOCK_NONBLOCK,
        C.IPPROTO_TCP,
        `${what}: raw socket`,
      );
    } catch (e) {
      if (e instanceof SyscallError && (e.errno === Errno.EPERM || e.errno === Errno.EACCES)) {
        throw new FakeTcpUnavailableError(rawSocketFailure(libc, e.errno));
      }
      throw e;
    }
    return new RawEndpoint(fd, family, this.#settings.batchSize, this.#settings.maxFlows);
  }

  /** Attaches the capture filter, empties what arrived unfiltered, applies sockbuf/dscp. */
  #filterRaw(
    raw: RawEndpoint,
    prog: ReturnType<typeof captureFilter>,
    options: TransportOptions,
    what: string,
  ): void {
    const libc = this.#libc, log = this.#settings.log;
    const e = attachFilter(libc, raw.fd, prog);
    if (e !== 0) throw new SyscallError(libc.describe(`${what}: attach capture filter`, e), e);
    drain(libc, raw.fd, new Uint8Array(new ArrayBuffer(65536)));
    applySocketOptions(libc, raw.fd, options, {
      family: raw.family,
      dualStack: false,
      report: (line) => log(`${what}: ${line}`),
    });
  }
}

/**
 * The fake-TCP transport, or a {@link FakeTcpUnavailableError} whose message is the one line to
 * show the user (not Linux, FFI not permitted, raw sockets refused).
 */
export function faketcpTransport(config: FakeTcpTransportConfig = {}): FakeTcpTransport {
  const reason = fakeTcpUnavailableReason();
  if (reason !== null) throw new FakeTcpUnavailableError(reason);
  return new FakeTcpTransport(config);
}

/**
 * The `faketcp` boundary stage definition (role "transport"): what kcptun's `-tcp` selects in
 * place of `udp`. `create` throws {@link FakeTcpUnavailableError} when fake TCP cannot run here.
 */
export const faketcpStage: BoundaryStageDefinition = {
  name: "faketcp",
  kind: "boundary",
  role: "transport",
  description: "TCP-looking segments on raw sockets (kcptun -tcp, tcpraw; Linux, root)",
  // As Go's kcptun, a fake-TCP server also serves plain UDP on the same ports.
  create: (_options: StageOptions, ctx: StageContext): DatagramTransport =>
    faketcpTransport({
      pool: ctx.pool,
      log: ctx.log,
      alsoServes: [udpTransport({ pool: ctx.pool, log: ctx.log })],
    }),
};
