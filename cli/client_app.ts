/**
 * The kcptun client: accepts local connections and carries each one as an smux stream over one
 * of `-conn` KCP sessions, taken round-robin.
 *
 * Sessions are created lazily, when a connection needs one, and re-dialled every second while
 * creation fails (`re-connecting: …`). With `-autoexpire N` a session takes no new streams after
 * N seconds; a scavenger closes expired sessions `-scavengettl` seconds later. `-r host:min-max`
 * dials a random port of the range for each new session.
 *
 * When the transport reports that nobody answers at the server's address (ICMP port unreachable
 * on loopback or a LAN: see `DatagramSocket.onEvent`), the client logs `no server answers at
 * ADDR` at once, then at most once per {@link NO_SERVER_REPORT_MS} per address, and keeps
 * sending: the server may come up.
 *
 * @module
 */

import { LineLimiter } from "../pipeline/log_limit.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import type { DatagramSocket } from "../pipeline/transport.ts";
import { clientSession } from "../transforms/kcp/dial.ts";
import type { KcpSession } from "../transforms/kcp/session.ts";
import type { SmuxDriver } from "../transforms/smux/driver.ts";
import { qppDuplex, type QppPads, qppPads } from "../transforms/qpp/mod.ts";
import type { AppConn, AppListener } from "../transports/app.ts";
import { joinHostPort, pickPort } from "./address.ts";
import type { ClientConfig } from "./config.ts";
import { sessionCloseLine } from "./diagnose.ts";
import type { Logger } from "./logging.ts";
import { relay } from "./relay.ts";
import type { Tunnel } from "./tunnel.ts";

/** How often `no server answers at ADDR` may be repeated while it stays true (ms). */
export const NO_SERVER_REPORT_MS = 10000;

/** One KCP session with its smux session. */
interface MuxSession {
  readonly kcp: KcpSession;
  readonly mux: SmuxDriver;
  /** Where it was dialled (for logs). */
  readonly remote: string;
  /** Clock time (ms) after which it takes no new streams; Infinity without -autoexpire. */
  readonly expiry: number;
  closed: boolean;
}

/** Options of {@link startClient}. */
export interface ClientAppOptions {
  /** The built tunnel (stages). */
  tunnel: Tunnel;
  /** Logger. */
  logger: Logger;
  /** Counters. */
  snmp: Snmp;
  /** Clock in ms (default `performance.now`). */
  clock?: () => number;
}

/** A running client. */
export class ClientApp {
  /** The local listener. */
  readonly listener: AppListener;
  readonly #config: ClientConfig;
  readonly #tunnel: Tunnel;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #slots: Array<MuxSession | null>;
  readonly #dialing: Array<Promise<MuxSession> | null>;
  readonly #expired = new Set<MuxSession>();
  readonly #relays = new Set<Promise<void>>();
  readonly #scavenger: ReturnType<typeof setInterval> | undefined;
  /** With -QPP: the pads, built once here rather than on the first connection. */
  readonly #qpp: QppPads | null;
  /** `no server answers at …`: once per address per {@link NO_SERVER_REPORT_MS}. */
  readonly #noServer: LineLimiter;
  #rr = 0;
  #stopped = false;
  readonly #acceptLoop: Promise<void>;

  /** Use {@link startClient}. */
  constructor(config: ClientConfig, listener: AppListener, opts: ClientAppOptions) {
    this.#config = config;
    this.listener = listener;
    this.#tunnel = opts.tunnel;
    this.#logger = opts.logger;
    this.#clock = opts.clock ?? (() => performance.now());
    this.#slots = new Array(config.conn).fill(null);
    this.#dialing = new Array(config.conn).fill(null);
    this.#qpp = config.qpp ? qppPads(config.key, config.qppcount) : null;
    this.#noServer = new LineLimiter(this.#logger.log, {
      max: 1,
      windowMs: NO_SERVER_REPORT_MS,
      summary: false,
      clock: this.#clock,
    });
    if (config.autoexpire > 0) {
      this.#scavenger = setInterval(() => this.#scavenge(), 1000);
    }
    this.#acceptLoop = this.#accept();
  }

  /** Live sessions (for stats and tests). */
  get sessions(): KcpSession[] {
    const out: KcpSession[] = [];
    for (const s of this.#slots) if (s && !s.closed) out.push(s.kcp);
    for (const s of this.#expired) if (!s.closed) out.push(s.kcp);
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
        this.#logger.println("accept:", e instanceof Error ? e.message : String(e));
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (conn === null) break;
      const idx = this.#rr++ % this.#config.conn;
      const task = this.#handle(conn, idx);
      this.#relays.add(task);
      task.finally(() => this.#relays.delete(task));
    }
  }

  async #handle(conn: AppConn, idx: number): Promise<void> {
    let session: MuxSession;
    try {
      session = await this.#sessionFor(idx);
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
      stream = session.mux.openStream();
    } catch (e) {
      this.#logger.println(e instanceof Error ? e.message : String(e));
      conn.close();
      return;
    }
    const out = `${session.remote}(${stream.id})`;
    this.#logger.stream("stream opened", "in:", conn.peer, "out:", out);
    const far = this.#qpp ? qppDuplex(stream, this.#qpp) : stream;
    await relay(conn, far, this.#config.closewait);
    this.#logger.stream("stream closed", "in:", conn.peer, "out:", out);
  }

  /** The session in slot `idx`, creating (or re-creating) it when needed. */
  #sessionFor(idx: number): Promise<MuxSession> {
    const cur = this.#slots[idx];
    const now = this.#clock();
    if (cur && !cur.closed && now < cur.expiry) return Promise.resolve(cur);
    if (cur && !cur.closed) this.#expired.add(cur); // expired: keeps its streams until the scavenger
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

  async #dialUntilUp(): Promise<MuxSession> {
    while (true) {
      if (this.#stopped) throw new Error("client stopped");
      try {
        return await this.#dial();
      } catch (e) {
        this.#logger.println("re-connecting:", e instanceof Error ? e.message : String(e));
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async #dial(): Promise<MuxSession> {
    const c = this.#config;
    const t = this.#tunnel;
    const host = c.remoteAddress.host;
    const port = pickPort(c.remoteAddress);
    const socket: DatagramSocket = await t.transport.dial(host, port, {
      sockbuf: c.sockbuf,
      dscp: c.dscp,
    });
    const kcp = clientSession(socket, t.clientChain(), {
      mtu: t.kcp.mtu,
      kcp: t.kcp.kcp,
      pool: t.ctx.pool,
      snmp: t.ctx.snmp,
      rateLimit: t.kcp.rateLimit,
    });
    const mux = t.smux.attach(t.wrap(kcp));
    const remote = joinHostPort(host, port);
    socket.onEvent?.((e) => {
      if (e.kind !== "unreachable" || this.#stopped) return;
      const what = `no server answers at ${remote}`;
      this.#noServer.line(what, `${what} (${e.reason}); still trying`);
    });
    const s: MuxSession = {
      kcp,
      mux,
      remote,
      expiry: c.autoexpire > 0 ? this.#clock() + c.autoexpire * 1000 : Infinity,
      closed: false,
    };
    this.#logger.println(
      "smux version:",
      c.smuxver,
      "on connection:",
      socket.localAddr.key,
      "->",
      remote,
    );
    mux.closed.then((info) => {
      s.closed = true;
      if (info.error) this.#logger.println(sessionCloseLine("client", remote, info.reason));
      kcp.close();
    });
    kcp.closed.then(() => {
      s.closed = true;
      mux.close().catch(() => {});
    });
    return s;
  }

  #scavenge(): void {
    const ttl = this.#config.scavengettl * 1000;
    const now = this.#clock();
    for (const s of this.#expired) {
      if (s.closed) {
        this.#expired.delete(s);
      } else if (now >= s.expiry + ttl) {
        this.#expired.delete(s);
        this.#logger.println("scavenger: session closed due to ttl:", s.remote);
        s.mux.close().catch(() => {});
        s.kcp.close();
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
    const all = [...this.#slots, ...this.#expired];
    for (const s of all) {
      if (!s) continue;
      await s.mux.close().catch(() => {});
      s.kcp.close();
    }
    await this.#acceptLoop;
    await Promise.allSettled([...this.#relays]);
    // Sessions dialled while we were stopping.
    for (const p of this.#dialing) if (p) await p.then((s) => s.kcp.close(), () => {});
  }
}

/** Starts listening on `-l` and returns the running client. */
export async function startClient(
  config: ClientConfig,
  opts: ClientAppOptions,
): Promise<ClientApp> {
  const l = config.localAddress;
  const listener = l.kind === "unix"
    ? await opts.tunnel.app.listen(l.path, 0)
    : await opts.tunnel.app.listen(l.host, l.minPort);
  return new ClientApp(config, listener, opts);
}
