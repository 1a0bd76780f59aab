/** Loopback helpers for tests and benchmarks: free ports, an echo target, timeouts, resets. */

import { C, loadLibc } from "../../transports/libc.ts";
import { parseIp, SOCKADDR_IN6_SIZE, writeSockaddr } from "../../transports/sockaddr.ts";

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

/**
 * Makes `count` TCP connections to `hostname:port` and resets each right after the handshake
 * (`SO_LINGER` 0, then close: the kernel sends an RST), as a port scanner does. Each connection
 * is complete (queued for `accept`) before its reset; connect waits at most 2 s. Uses libc
 * through FFI, synchronously, so the listener's process does not run in between.
 */
export function resetConnections(port: number, count: number, hostname = "127.0.0.1"): void {
  const libc = loadLibc();
  const sym = libc.symbols;
  const ip = parseIp(hostname);
  if (ip === null) throw new Error(`not an IP address: ${hostname}`);
  const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
  const salen = writeSockaddr(sa, 0, ip.family, ip, port);
  const linger = new Uint8Array(8);
  new DataView(linger.buffer).setInt32(0, 1, true); // l_onoff 1, l_linger 0
  const timeout = new Uint8Array(16);
  new DataView(timeout.buffer).setBigInt64(0, 2n, true); // struct timeval: 2 s
  for (let i = 0; i < count; i++) {
    const fd = sym.socket(ip.family === 4 ? C.AF_INET : C.AF_INET6, C.SOCK_STREAM, 0);
    if (fd < 0) throw new Error(libc.describe("socket"));
    try {
      sym.setsockopt(fd, C.SOL_SOCKET, C.SO_SNDTIMEO, timeout, 16);
      if (sym.connect(fd, sa, salen) < 0) throw new Error(libc.describe(`connect ${port}`));
      sym.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, linger, 8);
    } finally {
      sym.close(fd);
    }
  }
}
