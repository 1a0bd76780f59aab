/**
 * The application boundary (role "app"): where the tunnel meets local sockets. The client
 * listens and takes connections in; the server dials its target per stream. `tcp` and `unix`
 * implement it.
 *
 * @module
 */

/** A connected byte stream (a TCP or unix socket). */
export interface AppConn {
  /** Bytes from the socket. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the socket. */
  readonly writable: WritableStream<Uint8Array>;
  /** The peer, as text for logs (`127.0.0.1:51234`, a socket path). */
  readonly peer: string;
  /** Closes the socket (idempotent). */
  close(): void;
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
