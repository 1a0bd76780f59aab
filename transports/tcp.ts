/**
 * The `tcp` application stage: TCP listening (client side) and dialling (server side) with
 * Deno's sockets. `""` or `0.0.0.0`-less `:port` listens on every interface, IPv6 and IPv4
 * (one dual-stack socket), as Go's `:port` does.
 *
 * @module
 */

import type { BoundaryStageDefinition } from "../pipeline/stage.ts";
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

/** Wraps a Deno listener. */
export function wrapListener(listener: Deno.Listener, address: string, port: number): AppListener {
  let closed = false;
  return {
    address,
    port,
    async accept() {
      try {
        const c = await listener.accept();
        if (c.remoteAddr.transport === "tcp") (c as Deno.TcpConn).setNoDelay(true);
        return wrapConn(c, addrText(c.remoteAddr));
      } catch {
        return null;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
    },
  };
}

/** TCP endpoints. */
export class TcpEndpoint implements AppEndpoint {
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
      return Promise.resolve(wrapListener(listener, `[::]:${p}`, p));
    }
    listener = Deno.listen({ hostname: host, port });
    const a = listener.addr as Deno.NetAddr;
    return Promise.resolve(wrapListener(listener, hostPort(a.hostname, a.port), a.port));
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
  create: (): AppEndpoint => new TcpEndpoint(),
};
