/** Loopback helpers for tests and benchmarks: free ports, an echo target, timeouts. */

/** A UDP port on 127.0.0.1 that was free a moment ago (also free for TCP, checked). */
export function freePort(hostname = "127.0.0.1"): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const udp = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    const port = (udp.addr as Deno.NetAddr).port;
    try {
      const tcp = Deno.listen({ hostname, port });
      tcp.close();
      return port;
    } catch {
      // the TCP side is taken: try another
    } finally {
      udp.close();
    }
  }
  throw new Error("no free port found");
}

/** `count` consecutive free ports (for port-range tests). */
export function freePortRange(count: number, hostname = "127.0.0.1"): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const held: Array<{ close(): void }> = [];
    let ok = true;
    for (let p = base; p < base + count && ok; p++) {
      try {
        held.push(Deno.listenDatagram({ transport: "udp", hostname, port: p }));
        held.push(Deno.listen({ hostname, port: p }));
      } catch {
        ok = false;
      }
    }
    for (const h of held) h.close();
    if (ok) return base;
  }
  throw new Error("no free port range found");
}

/** A TCP echo server on loopback; `close()` stops it and every connection. */
export interface EchoServer {
  /** The port it listens on. */
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a TCP echo server (what kcptun's tests call the target). */
export function startEchoServer(hostname = "127.0.0.1", port = 0): EchoServer {
  const listener = Deno.listen({ hostname, port });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const server: EchoServer = {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: 0,
    async close() {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await Promise.allSettled(tasks);
      await loop;
    },
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        server.accepted++;
        conns.add(conn);
        tasks.push((async () => {
          const buf = new Uint8Array(65536);
          try {
            while (true) {
              const n = await conn.read(buf);
              if (n === null) break;
              let off = 0;
              while (off < n) off += await conn.write(buf.subarray(off, n));
            }
          } catch { /* reset by peer */ }
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        })());
      }
    } catch { /* listener closed */ }
  })();
  return server;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Connects to a TCP port, retrying until it accepts or `timeoutMs` passes. */
export async function connectWithRetry(
  port: number,
  hostname = "127.0.0.1",
  timeoutMs = 5000,
): Promise<Deno.TcpConn> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      return await Deno.connect({ hostname, port });
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** Writes all of `data` to `conn`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Reads exactly `n` bytes, or fails after `timeoutMs`. */
export async function readExactly(
  conn: Deno.Conn,
  n: number,
  timeoutMs = 10000,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`read timed out after ${off}/${n} bytes`)), timeoutMs);
  });
  try {
    while (off < n) {
      const got = await Promise.race([conn.read(out.subarray(off)), timeout]);
      if (got === null) throw new Error(`connection closed after ${off}/${n} bytes`);
      off += got;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}
