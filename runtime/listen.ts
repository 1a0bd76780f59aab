/**
 * The server side: sessions arriving on datagram sockets (one per port, plus whatever the
 * transport also serves on the same ports), one session per remote address, routed by a
 * sans-IO {@link ServerEndpoint}.
 *
 * @module
 */

import type { PacketBatch, PeerAddress } from "../pipeline/packet.ts";
import type { DatagramSocket, TransportOptions } from "../pipeline/transport.ts";
import { ConnectionDriver } from "./driver.ts";
import { ServerEndpoint } from "./endpoint.ts";
import { TunnelSession } from "./session.ts";
import type { Tunnel } from "./tunnel.ts";

/** Options of {@link listenSessions}. */
export interface ListenSessionsOptions extends TransportOptions {
  /** Sessions made but not yet accepted before new ones are refused (kcp-go: 128). */
  backlog?: number;
  /** Millisecond clock (default `performance.now`). */
  clock?: () => number;
}

/** Sessions arriving on one or more sockets. */
export class TunnelListener {
  /** The sockets listened on. */
  readonly sockets: readonly DatagramSocket[];
  readonly #endpoints: ServerEndpoint<TunnelSession>[];
  readonly #pending: TunnelSession[] = [];
  readonly #waiters: Array<(s: TunnelSession | null) => void> = [];
  readonly #live = new Set<TunnelSession>();
  #closed = false;

  /** Use {@link listenSessions}. */
  constructor(
    tunnel: Tunnel,
    sockets: DatagramSocket[],
    options: ListenSessionsOptions = {},
  ) {
    this.sockets = sockets;
    const clock = options.clock ?? (() => performance.now());
    const backlog = options.backlog ?? 128;
    const { shared, locate } = tunnel.serverRouting();
    const snmp = tunnel.snmp;
    this.#endpoints = sockets.map((socket) => {
      const endpoint: ServerEndpoint<TunnelSession> = new ServerEndpoint<TunnelSession>({
        shared,
        locate,
        snmp,
        hooks: {
          create: (peer, conv, now) => {
            if (this.#pending.length >= backlog) return null;
            return this.#open(tunnel, endpoint, socket, peer, conv, now, clock);
          },
          deliver: (session, batch) => session.driver.input(batch),
          replaced: (session) => void session.close(),
        },
      });
      socket.receive((batch: PacketBatch) => {
        if (this.#closed) return batch.releaseAll();
        const r = endpoint.handleDatagrams(batch, clock());
        if (r !== undefined) r.catch(() => {});
      });
      return endpoint;
    });
  }

  #open(
    tunnel: Tunnel,
    endpoint: ServerEndpoint<TunnelSession>,
    socket: DatagramSocket,
    peer: PeerAddress,
    conv: number,
    now: number,
    clock: () => number,
  ): TunnelSession {
    let driver: ConnectionDriver | null = null;
    const connection = tunnel.serverConnection({
      conv,
      now,
      onWake: () => driver?.kick(),
    });
    driver = new ConnectionDriver(connection, { send: (b) => socket.send(b, peer), clock });
    const session = new TunnelSession(driver, peer.key, socket.localAddr.key);
    const snmp = tunnel.snmp;
    snmp.PassiveOpens++;
    snmp.CurrEstab++;
    if (snmp.CurrEstab > snmp.MaxConn) snmp.MaxConn = snmp.CurrEstab;
    this.#live.add(session);
    session.closed.then(() => {
      snmp.CurrEstab--;
      this.#live.delete(session);
      endpoint.remove(peer.key, session);
      const at = this.#pending.indexOf(session);
      if (at >= 0) this.#pending.splice(at, 1);
    });
    const w = this.#waiters.shift();
    if (w) w(session);
    else this.#pending.push(session);
    return session;
  }

  /** Sessions alive now. */
  get sessions(): ReadonlySet<TunnelSession> {
    return this.#live;
  }

  /** The next new session, or null once the listener is closed. */
  accept(): Promise<TunnelSession | null> {
    const s = this.#pending.shift();
    if (s) return Promise.resolve(s);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Closes every session and socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#endpoints) e.close();
    await Promise.all([...this.#live].map((s) => s.close()));
    for (const w of this.#waiters.splice(0)) w(null);
    this.#pending.length = 0;
    await Promise.all(this.sockets.map((s) => s.close()));
  }
}

/**
 * Listens on `host` at every port of `[minPort, maxPort]` with the tunnel's transport and what
 * it also serves. If any socket cannot be bound, those already bound are closed and the error
 * says which address failed.
 */
export async function listenSessions(
  tunnel: Tunnel,
  host: string,
  minPort: number,
  maxPort: number = minPort,
  options: ListenSessionsOptions = {},
): Promise<TunnelListener> {
  const transports = [tunnel.transport, ...tunnel.transport.alsoServes ?? []];
  const sockets: DatagramSocket[] = [];
  const opts = { sockbuf: options.sockbuf, dscp: options.dscp };
  try {
    for (let port = minPort; port <= maxPort; port++) {
      for (const t of transports) sockets.push(await t.listen(host, port, opts));
    }
  } catch (e) {
    await Promise.all(sockets.map((s) => s.close()));
    const why = e instanceof Error ? e.message : String(e);
    // The transport's error may already say `listen udp <addr>: …`; say it once.
    if (why.startsWith("listen ")) throw new Error(why);
    const port = minPort + Math.floor(sockets.length / transports.length);
    const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    throw new Error(`listen ${where}: ${why}`);
  }
  return new TunnelListener(tunnel, sockets, options);
}
