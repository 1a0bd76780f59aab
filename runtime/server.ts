/**
 * The kcptun server: accepts tunnel sessions on every port of its listen range (one session per
 * remote address), and for every stream a session carries dials the target (host:port or a unix
 * socket path) and relays. A target that refuses closes only that stream.
 *
 * The lines logged per session or per stream (`remote address:`, `smux version:`, a session's
 * close, a failed target dial) are rate-limited per kind: at most {@link SERVER_LINES_PER_SECOND}
 * a second, then one `(… N similar "remote address:" lines suppressed)` line, so that a flood of
 * sessions cannot flood the log.
 *
 * @module
 */

import type { AppConn } from "../pipeline/app.ts";
import { LineLimiter } from "../pipeline/log_limit.ts";
import { isMarkedStream } from "../transforms/smux/session.ts";
import type { TunnelListener } from "./listen.ts";
import { relay } from "./relay.ts";
import type { TunnelSession } from "./session.ts";
import type { TunnelStream } from "./stream.ts";
import type { Tunnel } from "./tunnel.ts";
import { UdpServerRelay, type UdpTarget } from "./udp_relay.ts";

/** Lines of one kind (see the module docs) the server logs per second before it summarises. */
export const SERVER_LINES_PER_SECOND = 20;

/** Where the server sends each stream: `host:port` (tcp) or a socket path (unix, port 0). */
export interface TargetAddress {
  /** Host, or the socket path. */
  readonly host: string;
  /** Port (0 for unix). */
  readonly port: number;
  /** How the target is written in logs (`127.0.0.1:8388`, a path). */
  readonly text: string;
}

/** Options of a {@link KcptunServer}. */
export interface KcptunServerOptions {
  /** The built tunnel end (role server). */
  tunnel: Tunnel;
  /** Sessions arrive here (already listening). */
  listener: TunnelListener;
  /** Where streams go. */
  target: TargetAddress;
  /** Seconds to wait for the other direction after one ended (`-closewait`, 2026). */
  closeWait?: number;
  /** Session lines: new remote, closed with a reason, failed target dials (default: silent). */
  log?: (line: string) => void;
  /** Per-stream lines: opened and closed (default: none, as kcptun `-quiet`). */
  streamLog?: (line: string) => void;
  /** The line for a failed target dial (default: `dial <target>: <error>`). */
  describeDialError?: (target: TargetAddress, e: unknown) => string;
  /** The line for a session that failed (default: `session R: reason`). */
  describeClose?: (remote: string, reason: string) => string;
  /**
   * UDP forwarding (kcptun-ts, `-udp`): where the clients' UDP flows go. Absent: flows are
   * refused with an answer that says so (ordinary streams are served as always).
   */
  udp?: KcptunServerUdp;
}

/** The server's UDP forwarding settings. */
export interface KcptunServerUdp {
  /** The UDP target. */
  readonly target: UdpTarget;
  /** Seconds without a datagram after which a flow ends (`-udptimeout`). */
  readonly idleTimeout: number;
}

/** A running server. */
export class KcptunServer {
  /** The sessions' listener. */
  readonly listener: TunnelListener;
  readonly #o: KcptunServerOptions;
  readonly #tasks = new Set<Promise<void>>();
  readonly #lines: LineLimiter;
  /** UDP flows (marked streams): served with `-udp`, refused without. */
  readonly udp: UdpServerRelay;
  #stopped = false;

  /** Starts accepting sessions. */
  constructor(options: KcptunServerOptions) {
    this.#o = options;
    this.#lines = new LineLimiter((line) => options.log?.(line), {
      max: SERVER_LINES_PER_SECOND,
    });
    this.listener = options.listener;
    this.udp = new UdpServerRelay({
      target: options.udp?.target ?? null,
      idleTimeout: options.udp?.idleTimeout,
      log: (kind, line) => this.#log(kind, line),
      streamLog: options.streamLog,
    });
    this.#track(this.#acceptSessions());
  }

  /** The datagram ports listened on. */
  get ports(): number[] {
    return this.listener.sockets.map((s) => s.localAddr.port);
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  /** Logs a line of `kind`, rate-limited per kind. */
  #log(kind: string, line: string): void {
    this.#lines.line(kind, line);
  }

  async #acceptSessions(): Promise<void> {
    while (true) {
      const session = await this.listener.accept();
      if (session === null) return;
      this.#track(this.#serve(session));
    }
  }

  async #serve(session: TunnelSession): Promise<void> {
    const remote = session.remote;
    this.#log("remote address:", `remote address: ${remote}`);
    // With -smuxver 0 the version is the client's first frame's: known once a stream arrives.
    let versionUnlogged = true;
    const logVersion = (version: number) => {
      versionUnlogged = false;
      this.#log(
        "smux version:",
        `smux version: ${version} on connection: ${session.local} -> ${remote}`,
      );
    };
    if (this.#o.tunnel.mux.version !== 0) logVersion(this.#o.tunnel.mux.version);
    const streams = new Set<Promise<void>>();
    while (true) {
      let stream: TunnelStream;
      try {
        stream = await session.acceptStream();
      } catch {
        break;
      }
      if (versionUnlogged) logVersion(session.connection.smux.version);
      // A marked stream is a UDP flow of a kcptun-ts client; no kcptun opens one.
      const task = isMarkedStream("server", stream.id)
        ? this.udp.serve(stream, remote)
        : this.#relayStream(stream, remote);
      streams.add(task);
      task.finally(() => streams.delete(task));
    }
    const info = await session.closed;
    if (info.error && !this.#stopped) {
      const describe = this.#o.describeClose ?? ((r, why) => `session ${r}: ${why}`);
      this.#log("session", describe(remote, info.reason));
    }
    await Promise.allSettled([...streams]);
  }

  async #relayStream(stream: TunnelStream, remote: string): Promise<void> {
    const target = this.#o.target;
    let conn: AppConn;
    try {
      conn = await this.#o.tunnel.app.dial(target.host, target.port);
    } catch (e) {
      const describe = this.#o.describeDialError ??
        ((t, err) => `dial ${t.text}: ${err instanceof Error ? err.message : String(err)}`);
      this.#log("dial", describe(target, e));
      stream.close();
      return;
    }
    const inText = `${remote}(${stream.id})`;
    const log = this.#o.streamLog;
    log?.(`stream opened in: ${inText} out: ${target.text}`);
    await relay(conn, stream, this.#o.closeWait ?? 0);
    log?.(`stream closed in: ${inText} out: ${target.text}`);
  }

  /** Closes every session and socket, and waits for the relays to end. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.listener.close();
    await this.udp.stop();
    await Promise.allSettled([...this.#tasks]);
    this.#lines.close();
  }
}
