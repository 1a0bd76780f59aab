/**
 * Relaying one tunnel stream and one local connection, as kcptun 2021 does: bytes are copied
 * both ways; when either direction ends (EOF or error), both sides are closed — after
 * `closeWait` seconds when that 2026 option is set. What a finished direction had written is
 * delivered first: the stream sends its queued bytes before its FIN, and the socket's writes
 * have completed.
 *
 * The copy runs on the socket's own reads and writes and the stream's buffer interface: one
 * promise per socket operation, no stream object per chunk, and two pooled buffers per relay.
 *
 * @module
 */

import type { AppConn } from "../pipeline/app.ts";
import type { TunnelStream } from "./stream.ts";

/**
 * Bytes moved per socket read or write: smux's largest frame (kcptun's default `-framesize`), so
 * one read is one frame.
 */
export const RELAY_BUFFER = 32768;

/**
 * Free relay buffers kept for reuse: two per relay, so 64 serve 32 connections coming and going
 * without a fresh (zeroed) buffer each, and bound idle memory at 2 MiB.
 */
const POOL_LIMIT = 64;
const pool: Uint8Array[] = [];

function takeBuffer(): Uint8Array {
  return pool.pop() ?? new Uint8Array(RELAY_BUFFER);
}

function giveBuffer(b: Uint8Array): void {
  if (pool.length < POOL_LIMIT) pool.push(b);
}

/** Socket → stream until the socket ends or the relay stops. */
async function up(conn: AppConn, stream: TunnelStream, stop: { done: boolean }): Promise<void> {
  // Per-stream stages may keep what they are given: then they get a copy of each read.
  const reuse = stream.buffersReusable;
  const buf = takeBuffer();
  try {
    while (!stop.done) {
      const n = await conn.read(buf);
      if (n === null || stop.done) break;
      stream.write(reuse ? buf.subarray(0, n) : buf.slice(0, n));
      // Wait until the stream has taken the bytes into KCP: back-pressure, and buffer reuse.
      if (stream.queued > 0) await stream.waitDrained(0);
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
  const buf = takeBuffer();
  try {
    while (!stop.done) {
      const n = stream.readInto(buf);
      if (n > 0) {
        let at = 0;
        while (at < n) at += await conn.write(buf.subarray(at, n));
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
