/**
 * Relaying one tunnel stream and one local connection, as kcptun 2021 does: bytes are copied
 * both ways; when either direction ends (EOF or error), both sides are closed — after
 * `closeWait` seconds when that 2026 option is set. What a finished direction had written is
 * delivered first: the stream sends its queued bytes before its FIN, and the socket's writes
 * have completed.
 *
 * The copy runs on the socket's own reads and writes and the stream's buffer interface: one
 * promise per socket operation, no stream object per chunk, and two pooled buffers per relay
 * (small until a direction carries more than a small buffer holds).
 *
 * @module
 */

import type { AppConn } from "../pipeline/app.ts";
import type { TunnelStream } from "./stream.ts";

/**
 * Bytes moved per socket read or write once a direction carries bulk data: smux's largest frame
 * (kcptun's default `-framesize`), so one read is one frame.
 */
export const RELAY_BUFFER = 32768;
/**
 * A direction starts with a buffer this small and takes a {@link RELAY_BUFFER} only when a read
 * fills it: most connections of a busy tunnel are short (a request and an answer), and a fresh
 * zeroed 32 KiB buffer per direction was 8–12 % of an end's CPU under 100 short connections at
 * a time, more than the pool could serve.
 */
export const RELAY_SMALL_BUFFER = 2048;

/**
 * Free buffers kept for reuse, per size: 64 large ones (2 MiB) serve 32 bulk relays coming and
 * going, 256 small ones (512 KiB) as many short connections at a time in both directions.
 */
const pools = new Map<number, { limit: number; free: Uint8Array[] }>([
  [RELAY_BUFFER, { limit: 64, free: [] }],
  [RELAY_SMALL_BUFFER, { limit: 256, free: [] }],
]);

function takeBuffer(size: number): Uint8Array {
  return pools.get(size)!.free.pop() ?? new Uint8Array(size);
}

function giveBuffer(b: Uint8Array): void {
  const pool = pools.get(b.length)!;
  if (pool.free.length < pool.limit) pool.free.push(b);
}

/**
 * A full read of a small buffer means more is coming: the large one from now on. The small one
 * goes back to its pool when `reusable` (no stream holds a view of it).
 */
function grown(buf: Uint8Array, n: number, reusable: boolean): Uint8Array {
  if (n < buf.length || buf.length === RELAY_BUFFER) return buf;
  if (reusable) giveBuffer(buf);
  return takeBuffer(RELAY_BUFFER);
}

/** Socket → stream until the socket ends or the relay stops. */
async function up(conn: AppConn, stream: TunnelStream, stop: { done: boolean }): Promise<void> {
  // Per-stream stages may keep what they are given: then they get a copy of each read.
  const reuse = stream.buffersReusable;
  let buf = takeBuffer(RELAY_SMALL_BUFFER);
  try {
    while (!stop.done) {
      const n = await conn.read(buf);
      if (n === null || stop.done) break;
      stream.write(reuse ? buf.subarray(0, n) : buf.slice(0, n));
      // Wait until the stream has taken the bytes into KCP: back-pressure, and buffer reuse.
      if (stream.queued > 0) await stream.waitDrained(0);
      buf = grown(buf, n, !reuse || stream.queued === 0);
    }
  } catch {
    /* the socket or the stream failed: the relay ends */
  } finally {
    // A view of the buffer may still sit in a stream that failed: do not reuse it then.
    if (!reuse || stream.queued === 0) giveBuffer(buf);
  }
}

/** Stream → socket until the stream's reads end or the relay stops. */
async function down(stream: TunnelStream, conn: AppConn, stop: { done: boolean }): Promise<void> {
  let buf = takeBuffer(RELAY_SMALL_BUFFER);
  try {
    while (!stop.done) {
      const n = stream.readInto(buf);
      if (n > 0) {
        let at = 0;
        while (at < n) at += await conn.write(buf.subarray(at, n));
        buf = grown(buf, n, true);
        continue;
      }
      if (stream.readEnded) break;
      await stream.waitReadable();
    }
  } catch {
    /* the socket or the stream failed: the relay ends */
  } finally {
    giveBuffer(buf);
  }
}

/** Copies `conn` ⇄ `stream` until either direction ends, then closes both. Never rejects. */
export async function relay(
  conn: AppConn,
  stream: TunnelStream,
  closeWaitSeconds = 0,
): Promise<void> {
  const stop = { done: false };
  const a = up(conn, stream, stop);
  const b = down(stream, conn, stop);
  await Promise.race([a, b]);
  if (closeWaitSeconds > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([a, b]),
      new Promise<void>((r) => timer = setTimeout(r, closeWaitSeconds * 1000)),
    ]);
    clearTimeout(timer);
  }
  stop.done = true;
  // Closing the stream sends what it queued, then FIN, and wakes a waiting reader; closing the
  // socket ends a pending read.
  stream.close();
  conn.close();
  await Promise.all([a, b]);
}
