/**
 * The application boundary (role "app"): where the tunnel meets local sockets. The client
 * listens and takes connections in; the server dials its target per stream. `tcp` and `unix`
 * implement it.
 *
 * @module
 */

import type { Duplex } from "./duplex.ts";

/**
 * A connected byte stream (a TCP or unix socket): the {@link Duplex} view, plus the socket's own
 * reads and writes, which the runtime's relay uses to move bytes without a stream per chunk.
 */
export interface AppConn extends Duplex {
  /** The peer, as text for logs (`127.0.0.1:51234`, a socket path). */
  readonly peer: string;
  /** Reads into `buffer`: the byte count, or null at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes` (at least one byte): the count written. */
  write(bytes: Uint8Array): Promise<number>;
  /** Shuts the sending side down (the peer reads end of stream). */
  closeWrite(): Promise<void>;
}

/** A listening socket. */
export interface AppListener {
  /** The bound address as text (Go style: `[::]:12948`, `127.0.0.1:12948`, a path). */
  readonly address: string;
  /** The bound port (0 for unix). */
  readonly port: number;
  /**
   * The next connection, or `null` once the listener is closed (and only then): errors about
   * one connection (reset before it was taken) or about resources (out of descriptors) never
   * end accepting.
   */
  accept(): Promise<AppConn | null>;
  /** What accepting has met so far (the built-in listeners keep it). */
  readonly stats?: AcceptStats;
  /** Stops listening. */
  close(): void;
}

/** Counters of an {@link AppListener}. */
export interface AcceptStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections gone (reset, aborted) before they could be accepted: skipped. */
  connectionsGone: number;
  /** Other accept errors (out of descriptors, ...): each paused accepting briefly. */
  errors: number;
}

/** What the `tcp`/`unix` stages give. */
export interface AppEndpoint {
  /** Listens at `host:port` (tcp) or at a path (unix, `host` is the path). */
  listen(host: string, port: number): Promise<AppListener>;
  /** Connects to `host:port` (tcp) or a path (unix). */
  dial(host: string, port: number): Promise<AppConn>;
}
