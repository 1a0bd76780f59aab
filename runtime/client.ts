/**
 * The kcptun client: accepts local connections and carries each one as an smux stream over one
 * of `conn` tunnel sessions, taken round-robin.
 *
 * Every session is dialled at startup, as kcptun 2021 does (the first connection finds its
 * session ready), and re-dialled every second while dialling fails (`re-connecting: …`); a
 * session that closes (keepalive timeout, protocol error) or expires is replaced by the next
 * connection that needs its slot. With `autoExpire` a session takes no
 * new streams after that many seconds; a scavenger closes expired sessions `scavengeTtl`
 * seconds later. A remote port range dials a random port of it for each new session.
 *
 * When the transport reports that nobody answers at the server's address (ICMP port unreachable
 * on loopback or a LAN), the client logs `no server answers at ADDR` at once, then at most once
 * per {@link NO_SERVER_REPORT_MS} per address, and keeps sending: the server may come up.
 *
 * @module
 */

import type { AppConn, AppListener } from "../pipeline/app.ts";
import { LineLimiter } from "../pipeline/log_limit.ts";
import type { DatagramSocket } from "../pipeline/transport.ts";
import { dialSession } from "./dial.ts";
import { relay } from "./relay.ts";
import type { TunnelSession } from "./session.ts";
import type { Tunnel } from "./tunnel.ts";
import { UdpClientRelay, type UdpFlowStream } from "./udp_relay.ts";

/** How often `no server answers at ADDR` may be repeated while it stays true (ms). */
export const NO_SERVER_REPORT_MS = 10000;

/** Where the client dials: a host and a port range (one port when min = max). */
export interface RemoteAddress {
  /** Host name or address. */
  readonly host: string;
  /** First port. */
  readonly minPort: number;
  /** Last port. */
  readonly maxPort: number;
}

/** Options of a {@link KcptunClient}. */
export interface KcptunClientOptions {
  /** The built tunnel end (role client). */
  tunnel: Tunnel;
  /** The local listener connections arrive on (already listening). */
  listener: AppListener;
  /** The server. */
  remote: RemoteAddress;
  /** Sessions to spread connections over (kcptun `-conn`, default 1). */
  conn?: number;
  /** Seconds after which a session takes no new streams (`-autoexpire`, 0: never). */
  autoExpire?: number;
  /** Seconds an expired session lives on before it is closed (`-scavengettl`). */
  scavengeTtl?: number;
  /** Seconds to wait for the other direction after one ended (`-closewait`, 2026). */
  closeWait?: number;
  /** Socket buffer bytes (`-sockbuf`; 0: kernel default). */
  sockbuf?: number;
  /** DSCP (`-dscp`). */
  dscp?: number;
  /** Session lines: dialled, re-connecting, closed with a reason (default: silent). */
  log?: (line: string) => void;
  /** Per-stream lines: opened and closed (default: none, as kcptun `-quiet`). */
  streamLog?: (line: string) => void;
  /** Turns a session's close reason into the line to log (default: `session R: reason`). */
  describeClose?: (remote: string, reason: string) => string;
  /** Clock in ms (default `performance.now`). */
  clock?: () => number;
  /** Picks a port of the remote range (default: uniform from the CSPRNG). */
  pickPort?: (remote: RemoteAddress) => number;
  /**
   * UDP forwarding (kcptun-ts, `-udp`): datagrams arriving on this socket are carried, one
   * marked stream per sender, over the same sessions (`runtime/udp_relay.ts`). Absent: none.
   */
  udp?: KcptunClientUdp;
}

/** The client's UDP forwarding settings. */
export interface KcptunClientUdp {
  /** The bound local socket (`listenUdp`); the client closes it when it stops. */
  readonly socket: DatagramSocket;
  /** Seconds without a datagram after which a flow ends (`-udptimeout`). */
  readonly idleTimeout: number;
}

/** One session in a slot, with its expiry. */
interface Slot {
  readonly session: TunnelSession;
  /** Clock time (ms) after which it takes no new streams; Infinity without autoExpire. */
  readonly expiry: number;
}

function randomPort(r: RemoteAddress): number {
  const span = r.maxPort - r.minPort + 1;
  if (span <= 1) return r.minPort;
  const x = crypto.getRandomValues(new Uint32Array(1))[0];
  return r.minPort + (x % span);
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A running client. */
export class KcptunClient {
  /** The local listener. */
  readonly listener: AppListener;
  readonly #o: Required<Omit<KcptunClientOptions, "streamLog" | "udp">> & {
    streamLog: ((line: string) => void) | null;
  };
  /** UDP forwarding, when asked for. */
  readonly udp: UdpClientRelay | null;
  readonly #slots: Array<Slot | null>;
  readonly #dialing: Array<Promise<Slot> | null>;
  readonly #expired = new Set<Slot>();
  readonly #relays = new Set<Promise<void>>();
  readonly #scavenger: ReturnType<typeof setInterval> | undefined;
  /** `no server answers at …`: once per address per {@link NO_SERVER_REPORT_MS}. */
  readonly #noServer: LineLimiter;
  #rr = 0;
  #stopped = false;
  readonly #acceptLoop: Promise<void>;

  /** Starts accepting on `options.listener`. */
  constructor(options: KcptunClientOptions) {
    this.listener = options.listener;
    this.#o = {
      conn: 1,
      autoExpire: 0,
      scavengeTtl: 600,
      closeWait: 0,
      sockbuf: 0,
      dscp: 0,
      log: () => {},
      describeClose: (remote, reason) => `session ${remote}: ${reason}`,
      clock: () => performance.now(),
      pickPort: randomPort,
      ...options,
      streamLog: options.streamLog ?? null,
    };
    this.#noServer = new LineLimiter(this.#o.log, {
      max: 1,
      windowMs: NO_SERVER_REPORT_MS,
      summary: false,
      clock: this.#o.clock,
    });
    this.#slots = new Array(this.#o.conn).fill(null);
    this.#dialing = new Array(this.#o.conn).fill(null);
    if (this.#o.autoExpire > 0) this.#scavenger = setInterval(() => this.#scavenge(), 1000);
    for (let i = 0; i < this.#o.conn; i++) this.#sessionFor(i).catch(() => {});
    this.#acceptLoop = this.#accept();
    const udp = options.udp;
    this.udp = udp === undefined ? null : new UdpClientRelay({
      socket: udp.socket,
      idleTimeout: udp.idleTimeout,
      open: () => this.#udpStream(),
      log: this.#o.log,
      streamLog: this.#o.streamLog ?? undefined,
      clock: this.#o.clock,
    });
  }

  /** A marked stream for a new UDP flow, on the next session in turn. */
  async #udpStream(): Promise<UdpFlowStream> {
    const slot = await this.#sessionFor(this.#rr++ % this.#o.conn);
    if (this.#stopped) throw new Error("client stopped");
    return { stream: slot.session.openMarkedStream(), remote: slot.session.remote };
  }

  /** Live sessions (for stats and tests). */
  get sessions(): TunnelSession[] {
    const out: TunnelSession[] = [];
    for (const s of this.#slots) if (s && !s.session.isClosed) out.push(s.session);
    for (const s of this.#expired) if (!s.session.isClosed) out.push(s.session);
    return out;
  }

  async #accept(): Promise<void> {
    while (!this.#stopped) {
      let conn: AppConn | null;
      try {
        conn = await this.listener.accept();
      } catch (e) {
        // The built-in listeners never throw (see AppListener.accept); whatever another one
        // throws is not a reason to stop serving while its socket stays open.
        this.#o.log(`accept: ${e instanceof Error ? e.message : String(e)}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (conn === null) break;
      const idx = this.#rr++ % this.#o.conn;
      const task = this.#handle(conn, idx);
      this.#relays.add(task);
      task.finally(() => this.#relays.delete(task));
    }
  }

  async #handle(conn: AppConn, idx: number): Promise<void> {
    let slot: Slot;
    try {
      slot = await this.#sessionFor(idx);
    } catch {
      conn.close();
      return;
    }
    if (this.#stopped) {
      conn.close();
      return;
    }
    let stream;
    try {
      stream = slot.session.openStream();
    } catch (e) {
      this.#o.log(e instanceof Error ? e.message : String(e));
      conn.close();
      return;
    }
    const out = `${slot.session.remote}(${stream.id})`;
    const log = this.#o.streamLog;
    log?.(`stream opened in: ${conn.peer} out: ${out}`);
    await relay(conn, stream, this.#o.closeWait);
    log?.(`stream closed in: ${conn.peer} out: ${out}`);
  }

  /** The session in slot `idx`, dialling (or re-dialling) it when needed. */
  #sessionFor(idx: number): Promise<Slot> {
    const cur = this.#slots[idx];
    const now = this.#o.clock();
    if (cur && !cur.session.isClosed && now < cur.expiry) return Promise.resolve(cur);
    if (cur && !cur.session.isClosed) this.#expired.add(cur); // keeps its streams for now
    this.#slots[idx] = null;
    const pending = this.#dialing[idx];
    if (pending) return pending;
    const p = this.#dialUntilUp().then((s) => {
      this.#slots[idx] = s;
      return s;
    }).finally(() => this.#dialing[idx] = null);
    this.#dialing[idx] = p;
    return p;
  }

  async #dialUntilUp(): Promise<Slot> {
    while (true) {
      if (this.#stopped) throw new Error("client stopped");
      try {
        return await this.#dial();
      } catch (e) {
        this.#o.log(`re-connecting: ${e instanceof Error ? e.message : String(e)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async #dial(): Promise<Slot> {
    const o = this.#o;
    const host = o.remote.host;
    const port = o.pickPort(o.remote);
    const remote = hostPort(host, port);
    const session = await dialSession(o.tunnel, host, port, {
      sockbuf: o.sockbuf,
      dscp: o.dscp,
      clock: o.clock,
      onSocketEvent: (e) => {
        if (e.kind !== "unreachable" || this.#stopped) return;
        const what = `no server answers at ${remote}`;
        this.#noServer.line(what, `${what} (${e.reason}); still trying`);
      },
    });
    o.log(`smux version: ${o.tunnel.mux.version} on connection: ${session.local} -> ${remote}`);
    session.closed.then((info) => {
      if (info.error && !this.#stopped) o.log(o.describeClose(remote, info.reason));
    });
    return {
      session,
      expiry: o.autoExpire > 0 ? o.clock() + o.autoExpire * 1000 : Infinity,
    };
  }

  #scavenge(): void {
    const ttl = this.#o.scavengeTtl * 1000;
    const now = this.#o.clock();
    for (const s of this.#expired) {
      if (s.session.isClosed) {
        this.#expired.delete(s);
      } else if (now >= s.expiry + ttl) {
        this.#expired.delete(s);
        this.#o.log(`scavenger: session closed due to ttl: ${s.session.remote}`);
        void s.session.close();
      }
    }
  }

  /** Stops listening, closes every session and waits for the relays to end. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#scavenger !== undefined) clearInterval(this.#scavenger);
    this.#noServer.close();
    this.listener.close();
    await this.udp?.stop();
    const all = [...this.#slots, ...this.#expired];
    await Promise.all(all.map((s) => s?.session.close()));
    await this.#acceptLoop;
    await Promise.allSettled([...this.#relays]);
    // Sessions dialled while stopping.
    for (const p of this.#dialing) if (p) await p.then((s) => s.session.close(), () => {});
  }
}
