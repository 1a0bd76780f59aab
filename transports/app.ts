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
  /** Accepted connections; ends when the listener closes. */
  accept(): Promise<AppConn | null>;
  /** Stops listening. */
  close(): void;
}

/** What the `tcp`/`unix` stages give. */
export interface AppEndpoint {
  /** Listens at `host:port` (tcp) or at a path (unix, `host` is the path). */
  listen(host: string, port: number): Promise<AppListener>;
  /** Connects to `host:port` (tcp) or a path (unix). */
  dial(host: string, port: number): Promise<AppConn>;
}
