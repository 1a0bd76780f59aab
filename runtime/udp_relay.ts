/**
 * UDP forwarding (kcptun-ts only, both ends ours): the client listens on a UDP port, and every
 * local sender (source address) becomes a flow carried as one marked smux stream of the tunnel
 * session, next to the TCP streams; the server sends each flow's datagrams to its UDP target
 * from a socket of the flow's own and relays the replies back. The stream's format (length-
 * prefixed datagrams, the server's answer first) is in `udp_frame.ts`.
 *
 * Never blocking the TCP streams: a datagram goes into the stream only while the flow's stream
 * has fewer than {@link UDP_QUEUE_BYTES} queued, else it is dropped and counted (UDP is allowed to
 * lose it, and smux's round robin then gives the TCP streams their turns); the reading side
 * sends every datagram as it arrives, without waiting, so a flow's stream never holds smux's
 * shared receive buffer.
 *
 * A flow ends after `idleTimeout` seconds without a datagram either way (on either end: the
 * other sees the stream's FIN), when the peer closes it, or with its session. A server that does
 * not forward UDP is found out by the first flow: our server without `-udp` refuses in its
 * answer; a Go kcptun server or an older kcptun-ts takes the marked stream for an ordinary one
 * and dials its TCP target, which then sees a connection and no byte, and the client, having
 * no answer within {@link UDP_ANSWER_TIMEOUT_MS}, or EOF, or bytes that are no answer, logs one
 * line saying so. Either way the sender's datagrams are dropped (counted) for
 * {@link UDP_RETRY_AFTER_MS}, then a new flow tries again.
 *
 * @module
 */

import { LineLimiter } from "../pipeline/log_limit.ts";
import { PacketBatch, PacketPool, type PeerAddress } from "../pipeline/packet.ts";
import type { DatagramSocket, DatagramTransport } from "../pipeline/transport.ts";
import { udpTransport } from "../transports/udp_stage.ts";
import type { TunnelStream } from "./stream.ts";
import {
  ANSWER_MAX,
  answerOf,
  DatagramReader,
  encodeAnswer,
  encodeDatagram,
  FRAME_HEADER,
} from "./udp_frame.ts";

/** The longest datagram carried; longer ones are dropped and counted where they are received. */
export const UDP_MAX_DATAGRAM = 8192;

/** Bytes a flow may have waiting in its stream (or, before the answer, in its own queue). */
export const UDP_QUEUE_BYTES = 65536;

/** Flows a client (per listener) or a server (in all) runs at once; more are refused. */
export const UDP_MAX_FLOWS = 1024;

/** How long a client waits for the server's answer to a new flow. */
export const UDP_ANSWER_TIMEOUT_MS = 10000;

/** How long a sender whose flow failed is dropped before a new flow is tried. */
export const UDP_RETRY_AFTER_MS = 10000;

/** Default idle timeout of a flow in seconds (`-udptimeout`). */
export const UDP_IDLE_TIMEOUT = 60;

/** Datagrams per receive call on the client's listener and on a server flow's socket. */
const LISTENER_BATCH = 64;
const FLOW_BATCH = 4;

/**
 * Packets of the app-side UDP sockets: room for {@link UDP_MAX_DATAGRAM} and one byte more (the
 * Deno fallback detects a longer datagram by it), no headroom (nothing is prepended).
 */
const udpPool = new PacketPool(UDP_MAX_DATAGRAM + 1, 0);

/**
 * A UDP transport for the application side of the tunnel, over {@link UDP_MAX_DATAGRAM}-byte
 * packets. Without FFI it is Deno's, silently: the tunnel's own transport has said so.
 */
function appTransport(batchSize: number, log?: (line: string) => void): DatagramTransport {
  return udpTransport({ pool: udpPool, maxDatagram: UDP_MAX_DATAGRAM, batchSize, log }, {
    warnFallback: false,
  });
}

/**
 * Binds the client's local UDP socket (`-udp`): `""` as host means every interface. Throws the
 * transport's error when the address cannot be bound.
 */
export function listenUdp(
  host: string,
  port: number,
  log?: (line: string) => void,
): Promise<DatagramSocket> {
  return appTransport(LISTENER_BATCH, log).listen(host, port);
}

/** Counters of a UDP relay (live object). */
export interface UdpRelayStats {
  /** Flows the server accepted (on the server: flows it serves). */
  flowsOpened: number;
  /** Accepted flows that ended, expired ones included. */
  flowsClosed: number;
  /** Accepted flows ended by the idle timeout. */
  flowsExpired: number;
  /** Flows refused, or (client) that found no UDP forwarding at the server. */
  flowsFailed: number;
  /** Datagrams written into the tunnel. */
  tunnelled: number;
  /** Datagrams from the tunnel sent on a socket. */
  delivered: number;
  /** Datagrams dropped, all causes. */
  dropped: number;
  /** ... because the flow's queue was full (the tunnel is slower than the sender). */
  droppedQueueFull: number;
  /** ... because no flow could carry them (refused or failed flow, flow limit, stopping). */
  droppedNoFlow: number;
  /** ... because a datagram from the tunnel was longer than {@link UDP_MAX_DATAGRAM}. */
  droppedTooLong: number;
}

function newStats(): UdpRelayStats {
  return {
    flowsOpened: 0,
    flowsClosed: 0,
    flowsExpired: 0,
    flowsFailed: 0,
    tunnelled: 0,
    delivered: 0,
    dropped: 0,
    droppedQueueFull: 0,
    droppedNoFlow: 0,
    droppedTooLong: 0,
  };
}

/** Limits shared by both relays (defaults: the constants above). */
export interface UdpRelayLimits {
  /** Idle seconds after which a flow ends (default {@link UDP_IDLE_TIMEOUT}). */
  idleTimeout?: number;
  /** See {@link UDP_QUEUE_BYTES}. */
  queueBytes?: number;
  /** See {@link UDP_MAX_FLOWS}. */
  maxFlows?: number;
  /** Clock in ms (default `performance.now`). */
  clock?: () => number;
}

/** What both ends keep per flow: its counts (for its closing line) and its last activity. */
abstract class Flow {
  sent = 0;
  received = 0;
  dropped = 0;
  lastActive: number;
  /** Why the flow is being closed, for its closing line. */
  why = "";

  constructor(now: number) {
    this.lastActive = now;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The flow counts of a closing line. */
function counts(f: Flow): string {
  return `${f.sent} sent, ${f.received} received, ${f.dropped} dropped`;
}

/**
 * Hands the stream's datagrams to `send` in batches as they arrive, until the stream's reads end.
 * With `first`, the bytes go to it until it has the server's answer: it returns null while the
 * answer is incomplete, true once it accepted it (the datagrams after it follow), false to stop.
 * Returns why reading ended: null for a clean end (FIN, local close, `first` said stop), else
 * the failure.
 */
async function readFlow(
  stream: TunnelStream,
  f: Flow,
  stats: UdpRelayStats,
  send: (batch: PacketBatch) => void,
  clock: () => number,
  first: ((reader: DatagramReader) => boolean | null) | null,
): Promise<string | null> {
  const reader = new DatagramReader();
  const batch = new PacketBatch();
  const room = udpPool.capacity - 1;
  let waiting = first;
  try {
    for (;;) {
      const chunk = stream.read();
      if (chunk === null) {
        if (stream.readEnded) return stream.readFailure;
        await stream.waitReadable();
        continue;
      }
      reader.push(chunk);
      if (waiting !== null) {
        const r = waiting(reader);
        if (r === false) return null;
        // Incomplete: the reader has taken in everything pushed.
        if (r === null) continue;
        waiting = null;
      }
      for (let d = reader.next(); d !== null; d = reader.next()) {
        if (d.length > room) {
          f.dropped++;
          stats.dropped++;
          stats.droppedTooLong++;
          continue;
        }
        const p = udpPool.acquire();
        p.buffer.set(d, 0);
        p.end = d.length;
        batch.push(p);
      }
      if (batch.length > 0) {
        f.lastActive = clock();
        f.received += batch.length;
        stats.delivered += batch.length;
        send(batch);
      }
    }
  } catch (e) {
    batch.releaseAll();
    return message(e);
  }
}

// ------------------------------------------------------------------------------------ client

/** A stream for a new flow and the session's peer address, as the client's sessions give them. */
export interface UdpFlowStream {
  /** A marked stream (`TunnelSession.openMarkedStream`). */
  readonly stream: TunnelStream;
  /** The server (`host:port`), for log lines. */
  readonly remote: string;
}

/** Options of a {@link UdpClientRelay}. */
export interface UdpClientRelayOptions extends UdpRelayLimits {
  /** The local socket senders send to (from {@link listenUdp}); the relay closes it on stop. */
  readonly socket: DatagramSocket;
  /** Opens a marked stream on a tunnel session (waiting for one to be up); rejects when stopped. */
  open(): Promise<UdpFlowStream>;
  /** Lines about flows that failed (rate-limited here). */
  readonly log?: (line: string) => void;
  /** Per-flow lines: opened and closed (none under `-quiet`). */
  readonly streamLog?: (line: string) => void;
  /** See {@link UDP_ANSWER_TIMEOUT_MS}. */
  readonly answerTimeoutMs?: number;
  /** See {@link UDP_RETRY_AFTER_MS}. */
  readonly retryAfterMs?: number;
}

class ClientFlow extends Flow {
  state: "opening" | "open" | "failed" | "closed" = "opening";
  stream: TunnelStream | null = null;
  /** `server(stream id)`, once the stream is open. */
  out = "";
  server = "";
  pending: Uint8Array[] = [];
  pendingBytes = 0;
  failedAt = 0;
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly peer: PeerAddress, now: number) {
    super(now);
  }
}

const UNSUPPORTED = "the server does not forward UDP (kcptun-ts with -udp does; " +
  "Go kcptun and older kcptun-ts take the stream for their TCP target)";

/** The client's end of UDP forwarding: one local socket, one flow per sender. */
export class UdpClientRelay {
  /** Counters. */
  readonly stats: UdpRelayStats = newStats();
  /** The local socket. */
  readonly socket: DatagramSocket;
  readonly #o: UdpClientRelayOptions;
  readonly #flows = new Map<string, ClientFlow>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #lines: LineLimiter;
  readonly #clock: () => number;
  readonly #idleMs: number;
  readonly #queueBytes: number;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #stopped = false;

  /** Starts receiving on `options.socket`. */
  constructor(options: UdpClientRelayOptions) {
    this.#o = options;
    this.socket = options.socket;
    this.#clock = options.clock ?? (() => performance.now());
    this.#idleMs = (options.idleTimeout ?? UDP_IDLE_TIMEOUT) * 1000;
    this.#queueBytes = options.queueBytes ?? UDP_QUEUE_BYTES;
    this.#lines = new LineLimiter((line) => options.log?.(line), { max: 2, windowMs: 10000 });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, this.#idleMs / 2));
    this.socket.receive((batch) => this.#fromSenders(batch));
  }

  /** Flows open or opening now. */
  get flowCount(): number {
    let n = 0;
    for (const f of this.#flows.values()) if (f.state === "open" || f.state === "opening") n++;
    return n;
  }

  #drop(f: ClientFlow | null, queueFull: boolean): void {
    if (f !== null) f.dropped++;
    this.stats.dropped++;
    if (queueFull) this.stats.droppedQueueFull++;
    else this.stats.droppedNoFlow++;
  }

  #fromSenders(batch: PacketBatch): void {
    const now = this.#clock();
    const max = this.#o.maxFlows ?? UDP_MAX_FLOWS;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const peer = p.peer!;
      let f = this.#flows.get(peer.key) ?? null;
      if (f === null && !this.#stopped) {
        if (this.#flows.size >= max) {
          this.#lines.line(
            "udp flow limit",
            `udp: ${max} flows open, dropping datagrams from new senders such as ${peer.key}`,
          );
        } else {
          f = new ClientFlow(peer, now);
          this.#flows.set(peer.key, f);
          this.#track(this.#open(f));
        }
      }
      if (f === null || f.state === "failed" || f.state === "closed") {
        this.#drop(f, false);
      } else {
        f.lastActive = now;
        this.#forward(f, encodeDatagram(p.buffer, p.start, p.end));
      }
      p.release();
    }
  }

  #forward(f: ClientFlow, frame: Uint8Array): void {
    if (f.state === "opening") {
      if (f.pendingBytes + frame.length > this.#queueBytes) return this.#drop(f, true);
      f.pending.push(frame);
      f.pendingBytes += frame.length;
      return;
    }
    const stream = f.stream!;
    if (stream.queued + frame.length > this.#queueBytes) return this.#drop(f, true);
    try {
      stream.write(frame);
    } catch (e) {
      this.#drop(f, false);
      return this.#close(f, message(e));
    }
    f.sent++;
    this.stats.tunnelled++;
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  async #open(f: ClientFlow): Promise<void> {
    let opened: UdpFlowStream;
    try {
      opened = await this.#o.open();
    } catch (e) {
      if (f.state === "opening") {
        this.#fail(f, `udp: no tunnel session for ${f.peer.key}: ${message(e)}`);
      }
      return;
    }
    const { stream, remote } = opened;
    if (f.state !== "opening") {
      stream.close(); // expired or stopped meanwhile
      return;
    }
    f.stream = stream;
    f.server = remote;
    f.out = `${remote}(${stream.id})`;
    const flow = `the UDP flow from ${f.peer.key}`;
    f.timer = setTimeout(() => {
      f.timer = undefined;
      if (f.state !== "opening") return;
      const s = (this.#o.answerTimeoutMs ?? UDP_ANSWER_TIMEOUT_MS) / 1000;
      this.#fail(f, `udp: server ${remote} did not answer ${flow} within ${s}s: ${UNSUPPORTED}`);
    }, this.#o.answerTimeoutMs ?? UDP_ANSWER_TIMEOUT_MS);
    const notOurs = `udp: server ${remote} answered ${flow} with bytes that are not ` +
      `kcptun-ts UDP forwarding's: ${UNSUPPORTED}`;
    const answer = (reader: DatagramReader): boolean | null => {
      if (reader.peekLength() > ANSWER_MAX) {
        this.#fail(f, notOurs);
        return false;
      }
      const payload = reader.next();
      if (payload === null) return null;
      const a = answerOf(payload);
      if (a === null) this.#fail(f, notOurs);
      else if (!a.ok) this.#fail(f, `udp: server ${remote} refused ${flow}: ${a.reason}`);
      else this.#accepted(f);
      return a !== null && a.ok;
    };
    const failure = await readFlow(
      stream,
      f,
      this.stats,
      (batch) => this.socket.send(batch, f.peer),
      this.#clock,
      answer,
    );
    if (f.state === "opening") {
      this.#fail(
        f,
        failure !== null
          ? `udp: ${flow} failed before the server answered: ${failure}`
          : `udp: server ${remote} closed ${flow} without answering: ${UNSUPPORTED}`,
      );
    } else if (f.state === "open") {
      this.#close(f, failure ?? "closed by the server");
    }
  }

  #accepted(f: ClientFlow): void {
    clearTimeout(f.timer);
    f.timer = undefined;
    f.state = "open";
    this.stats.flowsOpened++;
    this.#o.streamLog?.(`udp flow opened in: ${f.peer.key} out: ${f.out}`);
    const pending = f.pending;
    f.pending = [];
    f.pendingBytes = 0;
    for (const frame of pending) if (f.state === "open") this.#forward(f, frame);
  }

  #dropPending(f: ClientFlow): void {
    for (let i = 0; i < f.pending.length; i++) this.#drop(f, false);
    f.pending = [];
    f.pendingBytes = 0;
  }

  #fail(f: ClientFlow, line: string): void {
    if (f.state !== "opening") return;
    f.state = "failed";
    f.failedAt = this.#clock();
    clearTimeout(f.timer);
    f.timer = undefined;
    this.stats.flowsFailed++;
    this.#dropPending(f);
    f.stream?.close();
    this.#lines.line("udp:", line);
  }

  #close(f: ClientFlow, why: string): void {
    if (f.state === "closed") return;
    const wasOpen = f.state === "open";
    f.state = "closed";
    clearTimeout(f.timer);
    f.timer = undefined;
    if (this.#flows.get(f.peer.key) === f) this.#flows.delete(f.peer.key);
    this.#dropPending(f);
    f.stream?.close();
    if (!wasOpen) return;
    this.stats.flowsClosed++;
    this.#o.streamLog?.(`udp flow closed in: ${f.peer.key} out: ${f.out} (${why}): ${counts(f)}`);
  }

  #sweep(): void {
    const now = this.#clock();
    const retry = this.#o.retryAfterMs ?? UDP_RETRY_AFTER_MS;
    for (const f of [...this.#flows.values()]) {
      if (f.state === "failed") {
        if (now - f.failedAt >= retry) this.#flows.delete(f.peer.key);
      } else if (now - f.lastActive >= this.#idleMs) {
        if (f.state === "open") this.stats.flowsExpired++;
        this.#close(f, `idle ${this.#idleMs / 1000}s`);
      }
    }
  }

  /** Ends every flow, closes the socket and waits for the flows' tasks. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweeper);
    for (const f of [...this.#flows.values()]) {
      if (f.state === "opening") {
        f.state = "closed"; // its open() sees this and closes what it gets
        clearTimeout(f.timer);
        this.#dropPending(f);
        f.stream?.close();
      } else {
        this.#close(f, "stopping");
      }
    }
    this.#flows.clear();
    await this.socket.close();
    await Promise.allSettled([...this.#tasks]);
    this.#lines.close();
  }
}

// ------------------------------------------------------------------------------------ server

/** Where a server sends its UDP flows. */
export interface UdpTarget {
  /** Host name or address. */
  readonly host: string;
  /** Port. */
  readonly port: number;
  /** As written, for logs. */
  readonly text: string;
}

/** Options of a {@link UdpServerRelay}. */
export interface UdpServerRelayOptions extends UdpRelayLimits {
  /** The UDP target (`-udp`), or null: every flow is refused, saying so. */
  readonly target: UdpTarget | null;
  /** Makes the flows' sockets (default: the UDP transport, made at the first flow). */
  readonly transport?: DatagramTransport;
  /** The server's rate-limited log: a kind, then the line. */
  readonly log?: (kind: string, line: string) => void;
  /** Per-flow lines: opened and closed (none under `-quiet`). */
  readonly streamLog?: (line: string) => void;
}

class ServerFlow extends Flow {
  closed = false;

  constructor(
    readonly stream: TunnelStream,
    readonly socket: DatagramSocket,
    readonly inText: string,
    now: number,
  ) {
    super(now);
  }
}

/**
 * The server's end of UDP forwarding: serves marked streams (`isMarkedStream`), each with a UDP
 * socket of its own dialled to the target, or refuses them when there is no target.
 */
export class UdpServerRelay {
  /** Counters. */
  readonly stats: UdpRelayStats = newStats();
  readonly #o: UdpServerRelayOptions;
  readonly #flows = new Set<ServerFlow>();
  readonly #clock: () => number;
  readonly #idleMs: number;
  readonly #queueBytes: number;
  #transport: DatagramTransport | null;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  /** A relay for `options.target` (nothing is opened before the first flow). */
  constructor(options: UdpServerRelayOptions) {
    this.#o = options;
    this.#clock = options.clock ?? (() => performance.now());
    this.#idleMs = (options.idleTimeout ?? UDP_IDLE_TIMEOUT) * 1000;
    this.#queueBytes = options.queueBytes ?? UDP_QUEUE_BYTES;
    this.#transport = options.transport ?? null;
  }

  /** Flows served now. */
  get flowCount(): number {
    return this.#flows.size;
  }

  #log(kind: string, line: string): void {
    this.#o.log?.(kind, line);
  }

  #refuse(stream: TunnelStream, reason: string): void {
    this.stats.flowsFailed++;
    try {
      stream.write(encodeAnswer(reason));
    } catch { /* the stream is gone already */ }
    stream.close();
  }

  /** Serves one marked stream the peer opened, until the flow ends. Never rejects. */
  async serve(stream: TunnelStream, remote: string): Promise<void> {
    const inText = `${remote}(${stream.id})`;
    const target = this.#o.target;
    if (target === null) {
      this.#log("udp: refused", `udp: refused a UDP flow from ${inText}: no -udp target`);
      return this.#refuse(stream, "this server forwards no UDP (start it with -udp host:port)");
    }
    const max = this.#o.maxFlows ?? UDP_MAX_FLOWS;
    if (this.#stopped) return this.#refuse(stream, "the server is stopping");
    if (this.#flows.size >= max) {
      this.#log("udp: refused", `udp: refused a UDP flow from ${inText}: ${max} flows open`);
      return this.#refuse(stream, `the server has ${max} UDP flows open`);
    }
    let socket: DatagramSocket;
    try {
      this.#transport ??= appTransport(FLOW_BATCH, (line) => this.#log("udp:", line));
      socket = await this.#transport.dial(target.host, target.port);
    } catch (e) {
      const why = `dial udp ${target.text}: ${message(e)}`;
      this.#log("udp: dial", `udp: ${why}`);
      return this.#refuse(stream, why);
    }
    if (this.#stopped) {
      await socket.close();
      return this.#refuse(stream, "the server is stopping");
    }
    const f = new ServerFlow(stream, socket, inText, this.#clock());
    this.#flows.add(f);
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.min(1000, this.#idleMs / 2));
    this.stats.flowsOpened++;
    try {
      stream.write(encodeAnswer(null));
    } catch (e) {
      return await this.#close(f, message(e));
    }
    socket.onEvent?.((e) => this.#log("udp target", `udp target ${target.text}: ${e.reason}`));
    socket.receive((batch) => this.#fromTarget(f, batch));
    this.#o.streamLog?.(`udp flow opened in: ${inText} out: ${target.text}`);
    const failure = await readFlow(
      stream,
      f,
      this.stats,
      (batch) => socket.send(batch),
      this.#clock,
      null,
    );
    await this.#close(f, f.why || (failure ?? "closed by the client"));
  }

  #fromTarget(f: ServerFlow, batch: PacketBatch): void {
    const stats = this.stats;
    if (!f.closed) f.lastActive = this.#clock();
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      if (f.closed) {
        stats.dropped++;
        stats.droppedNoFlow++;
      } else if (f.stream.queued + FRAME_HEADER + p.length > this.#queueBytes) {
        f.dropped++;
        stats.dropped++;
        stats.droppedQueueFull++;
      } else {
        try {
          f.stream.write(encodeDatagram(p.buffer, p.start, p.end));
          f.sent++;
          stats.tunnelled++;
        } catch {
          f.dropped++;
          stats.dropped++;
          stats.droppedNoFlow++;
        }
      }
      p.release();
    }
  }

  async #close(f: ServerFlow, why: string): Promise<void> {
    if (f.closed) return;
    f.closed = true;
    this.#flows.delete(f);
    f.stream.close();
    await f.socket.close();
    this.stats.flowsClosed++;
    const target = this.#o.target!;
    this.#o.streamLog?.(
      `udp flow closed in: ${f.inText} out: ${target.text} (${why}): ${counts(f)}`,
    );
  }

  #sweep(): void {
    const now = this.#clock();
    for (const f of this.#flows) {
      if (now - f.lastActive < this.#idleMs) continue;
      this.stats.flowsExpired++;
      f.why = `idle ${this.#idleMs / 1000}s`;
      // Its reads end now, and serve() closes the flow.
      f.stream.close();
    }
  }

  /** Ends every flow and waits for their sockets to close. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweeper);
    await Promise.all([...this.#flows].map((f) => this.#close(f, "stopping")));
  }
}
