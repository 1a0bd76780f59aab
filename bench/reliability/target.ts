/**
 * The reliability suite's target: a TCP server in its own process (so that its work is charged
 * neither to the load generator nor to a tunnel end) that echoes, unless a connection's first
 * read is one of two commands:
 *
 * - {@link STALL}: it never reads from that connection again (a target whose reader is stuck);
 * - {@link FLOOD}: it writes random bytes to that connection as fast as it is let, and never
 *   reads (the far end of a client whose reader is stuck).
 *
 *   deno run -A bench/reliability/target.ts [--port N]
 *
 * Prints `listening <port>` once it accepts. On SIGUSR2 it prints one line
 * `conns open=<n> accepted=<n> flooded=<bytes> stalled=<n>` ({@link TargetCounters}).
 * Runs until killed.
 *
 * @module
 */

/** A connection whose first read is exactly these bytes is never read again. */
export const STALL: Uint8Array = new TextEncoder().encode("\0STALL!\n");
/** A connection whose first read is exactly these bytes gets random bytes until it breaks. */
export const FLOOD: Uint8Array = new TextEncoder().encode("\0FLOOD!\n");

/** What the target reports on SIGUSR2. */
export interface TargetCounters {
  /** Connections open now. */
  open: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Bytes written to FLOOD connections so far. */
  flooded: number;
  /** STALL connections accepted so far. */
  stalled: number;
}

/** Parses the SIGUSR2 line (the last one in `text`), or null when there is none. */
export function parseCounters(text: string): TargetCounters | null {
  const all = [...text.matchAll(/^conns open=(\d+) accepted=(\d+) flooded=(\d+) stalled=(\d+)$/gm)];
  const m = all.at(-1);
  if (!m) return null;
  return { open: +m[1], accepted: +m[2], flooded: +m[3], stalled: +m[4] };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const counters: TargetCounters = { open: 0, accepted: 0, flooded: 0, stalled: 0 };
const held = new Set<Deno.Conn>();

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  counters.open++;
  counters.accepted++;
  const buf = new Uint8Array(64 * 1024);
  try {
    conn.setNoDelay(true);
    let n = await conn.read(buf);
    if (n !== null && equal(buf.subarray(0, n), STALL)) {
      counters.stalled++;
      held.add(conn); // never read again: only the peer's close (seen by a failed write) ends it
      return;
    }
    if (n !== null && equal(buf.subarray(0, n), FLOOD)) {
      crypto.getRandomValues(buf);
      while (true) counters.flooded += await conn.write(buf);
    }
    while (n !== null) {
      await writeAll(conn, buf.subarray(0, n));
      n = await conn.read(buf);
    }
  } catch { /* reset by the tunnel: that connection is over */ }
  counters.open--;
  try {
    conn.close();
  } catch { /* already closed */ }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  Deno.addSignalListener("SIGUSR2", () => {
    console.log(
      `conns open=${counters.open} accepted=${counters.accepted} flooded=${counters.flooded} ` +
        `stalled=${counters.stalled}`,
    );
  });
  console.log(`listening ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) serve(conn);
}
