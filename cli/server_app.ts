/**
 * The kcptun server: accepts KCP sessions on every port of `-l` (one session per remote
 * address), runs an smux server on each, and for every stream dials `-t` (host:port or a unix
 * socket path) and relays. A target that refuses closes only that stream.
 *
 * The lines logged per session or per stream (`remote address:`, `smux version:`, a session's
 * close, a failed target dial) are rate-limited per kind: at most {@link SERVER_LINES_PER_SECOND}
 * a second, then one `(… N similar "remote address:" lines suppressed)` line, so that a flood of
 * sessions cannot flood the log.
 *
 * @module
 */

import { LineLimiter } from "../pipeline/log_limit.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import { KcpListener, type KcpListenerOptions } from "../transforms/kcp/listener.ts";
import { udpTransport } from "../transports/udp.ts";
import { KcpSession } from "../transforms/kcp/session.ts";
import type { SmuxStream } from "../transforms/smux/driver.ts";
import { qppDuplex, type QppPads, qppPads } from "../transforms/qpp/mod.ts";
import { joinHostPort } from "./address.ts";
import type { ServerConfig } from "./config.ts";
import { sessionCloseLine } from "./diagnose.ts";
import { goSprintln, type Logger } from "./logging.ts";
import { relay } from "./relay.ts";
import type { Tunnel } from "./tunnel.ts";

/**
 * A failed target dial as Go's `net.OpError` prints it, the line kcptun logs
 * (`dial tcp 127.0.0.1:12948: connect: connection refused`), so that the log says what was
 * dialled and a log watcher matching Go's text keeps working.
 */
export function dialErrorText(kind: "inet" | "unix", target: string, e: unknown): string {
  const network = kind === "unix" ? "unix" : "tcp";
  let why: string;
  if (e instanceof Deno.errors.ConnectionRefused) why = "connect: connection refused";
  else if (e instanceof Deno.errors.NotFound) why = "connect: no such file or directory";
  else if (e instanceof Deno.errors.PermissionDenied) why = "connect: permission denied";
  else if (e instanceof Deno.errors.TimedOut) why = "i/o timeout";
  else {
    const m = (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\)$/, "");
    why = m.charAt(0).toLowerCase() + m.slice(1);
  }
  return `dial ${network} ${target}: ${why}`;
}

/** Lines of one kind (see the module docs) the server logs per second before it summarises. */
export const SERVER_LINES_PER_SECOND = 20;

/** Options of {@link startServer}. */
export interface ServerAppOptions {
  /** The built tunnel (stages). */
  tunnel: Tunnel;
  /** Logger. */
  logger: Logger;
  /** Counters. */
  snmp: Snmp;
}

/** A running server. */
export class ServerApp {
  /** One listener per port of `-l`. */
  readonly listeners: readonly KcpListener[];
  readonly #config: ServerConfig;
  readonly #tunnel: Tunnel;
  readonly #logger: Logger;
  readonly #lines: LineLimiter;
  readonly #tasks = new Set<Promise<void>>();
  /** With -QPP: the pads, built once here rather than on the first stream. */
  readonly #qpp: QppPads | null;
  #stopped = false;

  /** Use {@link startServer}. */
  constructor(config: ServerConfig, listeners: KcpListener[], opts: ServerAppOptions) {
    this.#config = config;
    this.listeners = listeners;
    this.#tunnel = opts.tunnel;
    this.#logger = opts.logger;
    this.#lines = new LineLimiter(opts.logger.log, { max: SERVER_LINES_PER_SECOND });
    this.#qpp = config.qpp ? qppPads(config.key, config.qppcount) : null;
    for (const l of listeners) this.#track(this.#acceptSessions(l));
  }

  /** The UDP ports listened on. */
  get ports(): number[] {
    return this.listeners.map((l) => l.socket.localAddr.port);
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  async #acceptSessions(listener: KcpListener): Promise<void> {
    while (true) {
      const session = await listener.accept();
      if (session === null) return;
      this.#track(this.#serve(session, listener));
    }
  }

  async #serve(session: KcpSession, listener: KcpListener): Promise<void> {
    const t = this.#tunnel;
    const remote = session.remote?.key ?? "?";
    this.#line("remote address:", remote);
    const mux = t.smux.attach(t.wrap(session));
    this.#line(
      "smux version:",
      this.#config.smuxver,
      "on connection:",
      listener.socket.localAddr.key,
      "->",
      remote,
    );
    session.closed.then(() => mux.close().catch(() => {}));
    const streams = new Set<Promise<void>>();
    while (true) {
      let stream: SmuxStream;
      try {
        stream = await mux.acceptStream();
      } catch {
        break;
      }
      const task = this.#relayStream(stream, remote);
      streams.add(task);
      task.finally(() => streams.delete(task));
    }
    const info = await mux.closed;
    if (info.error && !this.#stopped) {
      this.#lines.line("session", sessionCloseLine("server", remote, info.reason));
    }
    session.close();
    await Promise.allSettled([...streams]);
  }

  async #relayStream(stream: SmuxStream, remote: string): Promise<void> {
    const target = this.#config.targetAddress;
    const targetText = this.#config.target;
    let conn;
    try {
      conn = target.kind === "unix"
        ? await this.#tunnel.app.dial(target.path, 0)
        : await this.#tunnel.app.dial(target.host, target.minPort);
    } catch (e) {
      this.#lines.line("dial", dialErrorText(target.kind, targetText, e));
      stream.close();
      return;
    }
    const inText = `${remote}(${stream.id})`;
    this.#logger.stream("stream opened", "in:", inText, "out:", targetText);
    const near = this.#qpp ? qppDuplex(stream, this.#qpp) : stream;
    await relay(near, conn, this.#config.closewait);
    this.#logger.stream("stream closed", "in:", inText, "out:", targetText);
  }

  /** Logs Go's `log.Println` line whose first operand names its kind, rate-limited. */
  #line(kind: string, ...rest: unknown[]): void {
    this.#lines.line(kind, goSprintln(kind, ...rest));
  }

  /** Closes every listener and session, and waits for the relays to end. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.listeners.map((l) => l.close()));
    await Promise.allSettled([...this.#tasks]);
    this.#lines.close();
  }
}

/** Listens on every port of `-l` and returns the running server. */
export async function startServer(
  config: ServerConfig,
  opts: ServerAppOptions,
): Promise<ServerApp> {
  const t = opts.tunnel;
  const { shared, locator } = t.serverRouting();
  const addr = config.listenAddress;
  const listeners: KcpListener[] = [];
  const listenerOptions: KcpListenerOptions = {
    shared,
    locator,
    snmp: opts.snmp,
    createSession: (sock, peer, conv) => {
      const { chain, decodeChain } = t.serverChains();
      return new KcpSession(sock, peer, chain, {
        conv,
        mtu: t.kcp.mtu,
        kcp: t.kcp.kcp,
        pool: t.ctx.pool,
        snmp: opts.snmp,
        decodeChain,
        rateLimit: t.kcp.rateLimit,
      });
    },
  };
  // As Go's kcptun, a fake-TCP server also serves plain UDP on the same ports.
  const transports = [t.transport];
  if (t.pipeline.boundary("transport")?.name === "faketcp") {
    transports.push(udpTransport({ pool: t.ctx.pool, log: t.ctx.log }));
  }
  const options = { sockbuf: config.sockbuf, dscp: config.dscp };
  try {
    for (let port = addr.minPort; port <= addr.maxPort; port++) {
      for (const transport of transports) {
        const socket = await transport.listen(addr.host, port, options);
        listeners.push(new KcpListener(socket, listenerOptions));
      }
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    const why = e instanceof Error ? e.message : String(e);
    // The transport's error may already say `listen udp <addr>: …`; say it once.
    if (why.startsWith("listen ")) throw new Error(why);
    const where = joinHostPort(
      addr.host,
      addr.minPort + Math.floor(listeners.length / transports.length),
    );
    throw new Error(`listen ${where}: ${why}`);
  }
  return new ServerApp(config, listeners, opts);
}
