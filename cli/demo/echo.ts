/**
 * The demo's target: a TCP echo server on loopback.
 *
 * @module
 */

/** A running echo server. */
export interface EchoTarget {
  /** The TCP port it listens on. */
  readonly port: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a TCP echo server on `hostname` (default 127.0.0.1), any free port. */
export function startEchoTarget(hostname = "127.0.0.1"): EchoTarget {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    try {
      await conn.readable.pipeTo(conn.writable);
    } catch {
      // reset or closed by close()
    }
    conns.delete(conn);
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const t = serve(conn);
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
      await Promise.allSettled([...tasks]);
    },
  };
}
