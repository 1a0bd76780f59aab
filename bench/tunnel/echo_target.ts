/**
 * The tunnel benchmark's target: a TCP echo server in its own process, so that its work is not
 * charged to the load generator or to either tunnel end.
 *
 *   deno run -A bench/tunnel/echo_target.ts [--port N]
 *
 * Prints `listening <port>` on stdout once it accepts connections; runs until killed.
 *
 * @module
 */

const CHUNK = 256 * 1024;

async function echo(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(CHUNK);
  try {
    conn.setNoDelay(true);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await conn.write(buf.subarray(off, n));
    }
  } catch { /* reset by peer: the stream is over either way */ }
  try {
    conn.close();
  } catch { /* already closed */ }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`listening ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) echo(conn);
}
