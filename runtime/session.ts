/**
 * A running tunnel session: one KCP conversation with its smux session, over a datagram socket,
 * driven on the event loop. What {@link dial} gives a client and what a listener hands a server
 * for each new peer.
 *
 * @module
 */

import type { Connection, ConnectionCloseInfo } from "./connection.ts";
import type { ConnectionDriver } from "./driver.ts";
import type { TunnelStream } from "./stream.ts";

/** One tunnel session. */
export class TunnelSession {
  /** The peer's address (`host:port`). */
  readonly remote: string;
  /** The local socket's address (`host:port`). */
  readonly local: string;
  /** Resolves once the session has closed (keepalive timeout, protocol error, local close). */
  readonly closed: Promise<ConnectionCloseInfo>;
  readonly #driver: ConnectionDriver;

  /** Wraps a running driver; made by `dial` and listeners. */
  constructor(driver: ConnectionDriver, remote: string, local: string) {
    this.#driver = driver;
    this.remote = remote;
    this.local = local;
    this.closed = driver.closed;
  }

  /** The sans-IO connection (read its KCP and smux state for stats). */
  get connection(): Connection {
    return this.#driver.connection;
  }

  /** True once the session has closed. */
  get isClosed(): boolean {
    return this.#driver.connection.closed;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#driver.streamCount;
  }

  /** Opens a stream to the peer; throws a `StageError` when the session is closed. */
  openStream(): TunnelStream {
    return this.#driver.openStream();
  }

  /**
   * Opens a marked stream: one the peer can tell apart from ordinary streams the moment it
   * arrives (kcptun-ts's UDP flows, `runtime/udp_relay.ts`); any kcptun takes it as ordinary.
   * Throws a `StageError` when the session is closed.
   */
  openMarkedStream(): TunnelStream {
    return this.#driver.openMarkedStream();
  }

  /** The next stream the peer opens; rejects once the session has closed. */
  acceptStream(): Promise<TunnelStream> {
    return this.#driver.acceptStream();
  }

  /** The driver (for the runtime's own use). */
  get driver(): ConnectionDriver {
    return this.#driver;
  }

  /** Closes the session: streams end, a last flush goes out, the socket is released. */
  async close(reason = "session closed", error = false): Promise<void> {
    await this.#driver.close(reason, error);
  }
}
