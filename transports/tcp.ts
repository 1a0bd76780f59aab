/**
 * The `tcp` application stage: TCP listening (client side) and dialling (server side) with
 * Deno's sockets. `""` or `0.0.0.0`-less `:port` listens on every interface, IPv6 and IPv4
 * (one dual-stack socket), as Go's `:port` does.
 *
 * @module
 */

import { LineLimiter } from "../pipeline/log_limit.ts";
import type { BoundaryStageDefinition, StageContext, StageOptions } from "../pipeline/stage.ts";
import type { AppConn, AppEndpoint, AppListener } from "../pipeline/app.ts";

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The bytes of `conn`. Unlike `conn.readable`, which closes the whole socket at EOF, this leaves
 * it open: a peer that half-closes (shuts down its sending side) may still wait for a reply, and
 * `-closewait` exists to deliver it. Only {@link AppConn.close} closes the socket.
 */
function halfCloseReadable(conn: Deno.Conn): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 65536,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const n = await conn.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      if (n === null) {
        controller.close();
        request.respond(0);
      } else {
        request.respond(n);
      }
    },
  });
}

/**
 * A Deno connection as an {@link AppConn}. The Web Streams view is made on first use only: the
 * runtime's relay reads and writes the socket directly.
 */
class DenoAppConn implements AppConn {
  readonly peer: string;
  readonly #conn: Deno.Conn;
  #closed = false;
  #readable: ReadableStream<Uint8Array> | null = null;

  constructor(conn: Deno.Conn, peer: string) {
    this.#conn = conn;
    this.peer = peer;
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= halfCloseReadable(this.#conn);
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#conn.writable;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    return this.#conn.read(buffer);
  }

  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed by a stream */ }
  }
}

/** Wraps a Deno connection. */
export function wrapConn(conn: Deno.Conn, peer: string): AppConn {
  return new DenoAppConn(conn, peer);
}

function addrText(a: Deno.Addr): string {
  if (a.transport === "tcp" || a.transport === "udp") return hostPort(a.hostname, a.port);
  return (a as Deno.UnixAddr).path ?? "";
}

/**
 * Accept errors that belong to one pending connection, not to the listener: the peer reset or
 * abandoned it before it was taken (Deno reads the peer address after `accept`, which fails with
 * `ENOTCONN` for a connection already reset), or a network error the kernel passes on through
 * `accept` (accept(2) says to treat those like `EAGAIN`). The next connection is unaffected.
 */
const CONNECTION_GONE = new Set([
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "EPROTO",
  "EPERM",
  "ENETDOWN",
  "ENOPROTOOPT",
  "EHOSTDOWN",
  "ENONET",
  "EHOSTUNREACH",
  "EOPNOTSUPP",
  "ENETUNREACH",
]);

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** True when `e`, thrown by `accept`, only lost that one connection. */
export function isConnectionGone(e: unknown): boolean {
  return e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.ConnectionAborted ||
    e instanceof Deno.errors.ConnectionReset || CONNECTION_GONE.has(errorCode(e));
}

/** First and longest pause after an accept error that is not about one connection (ms). */
const PAUSE_MIN_MS = 5, PAUSE_MAX_MS = 1000;

/** Options of {@link wrapListener}. */
export interface ListenerOptions {
  /** One-line diagnostics (accept errors that pause accepting), rate-limited. */
  log?: (line: string) => void;
}

/**
 * Wraps a Deno listener. `accept()` returns `null` only once the listener is closed: a
 * connection reset before it was accepted is skipped, and any other accept error (out of
 * descriptors: `EMFILE`, `ENFILE`; out of memory) pauses accepting, 5 ms doubling up to 1 s,
 * logged at most once per 10 s, and accepting goes on. The stats count both kinds.
 */
export function wrapListener(
  listener: Deno.Listener,
  address: string,
  port: number,
  options: ListenerOptions = {},
): AppListener {
  let closed = false;
  const limiter = new LineLimiter(options.log ?? (() => {}), { max: 1, windowMs: 10000 });
  const stats = { accepted: 0, connectionsGone: 0, errors: 0 };
  let pausing: { timer: ReturnType<typeof setTimeout>; wake: () => void } | null = null;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        pausing = null;
        resolve();
      }, ms);
      pausing = { timer, wake: resolve };
    });
  return {
    address,
    port,
    stats,
    async accept() {
      let wait = 0;
      while (!closed) {
        let c: Deno.Conn;
        try {
          c = await listener.accept();
        } catch (e) {
          if (closed || e instanceof Deno.errors.BadResource) return null;
          if (isConnectionGone(e)) {
            stats.connectionsGone++;
            continue;
          }
          stats.errors++;
          wait = Math.min(Math.max(PAUSE_MIN_MS, wait * 2), PAUSE_MAX_MS);
          const why = (e instanceof Error ? e.message : String(e)).replace(
            / \(os error \d+\)$/,
            "",
          );
          limiter.line("accept", `accept ${address}: ${why}; accepting again in ${wait} ms`);
          await pause(wait);
          continue;
        }
        stats.accepted++;
        if (c.remoteAddr.transport === "tcp") {
          try {
            (c as Deno.TcpConn).setNoDelay(true);
          } catch { /* reset meanwhile: reading it will say so */ }
        }
        return wrapConn(c, addrText(c.remoteAddr));
      }
      return null;
    },
    close() {
      if (closed) return;
      closed = true;
      limiter.close();
      if (pausing !== null) {
        clearTimeout(pausing.timer);
        pausing.wake();
        pausing = null;
      }
      try {
        listener.close();
      } catch { /* already closed */ }
    },
  };
}

/** TCP endpoints. */
export class TcpEndpoint implements AppEndpoint {
  readonly #options: ListenerOptions;

  /** `options.log` receives the listeners' accept diagnostics. */
  constructor(options: ListenerOptions = {}) {
    this.#options = options;
  }

  /** Listens on `host:port`; an empty host means every interface. */
  listen(host: string, port: number): Promise<AppListener> {
    let listener: Deno.Listener;
    if (host === "") {
      try {
        listener = Deno.listen({ hostname: "::", port });
      } catch {
        listener = Deno.listen({ hostname: "0.0.0.0", port });
      }
      const p = (listener.addr as Deno.NetAddr).port;
      return Promise.resolve(wrapListener(listener, `[::]:${p}`, p, this.#options));
    }
    listener = Deno.listen({ hostname: host, port });
    const a = listener.addr as Deno.NetAddr;
    return Promise.resolve(
      wrapListener(listener, hostPort(a.hostname, a.port), a.port, this.#options),
    );
  }

  /** Connects to `host:port`. */
  async dial(host: string, port: number): Promise<AppConn> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return wrapConn(conn, hostPort(host, port));
  }
}

/** The `tcp` boundary stage definition (role "app"). */
export const tcpStage: BoundaryStageDefinition = {
  name: "tcp",
  kind: "boundary",
  role: "app",
  description: "TCP sockets: the client's -l listener, the server's -t target",
  create: (_options: StageOptions, ctx: StageContext): AppEndpoint =>
    new TcpEndpoint({ log: ctx.log }),
};
