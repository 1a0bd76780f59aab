/**
 * The load generator of the tunnel benchmark: echo traffic through a TCP port (a kcptun client's
 * local port, or the echo target itself for the ceiling), checked byte for byte.
 *
 * Each stream sends a window of a shared random block starting at its own offset, and compares
 * every byte that comes back with what was sent at that position (native `Buffer.compare`, so
 * the check costs little next to the tunnel). Writers stop at the deadline; the run ends when
 * every byte written has come back, and the rate is the bytes echoed back divided by the time
 * from the first write to the last byte read.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Bytes written per `write` call. */
const WRITE_CHUNK = 64 * 1024;
/** Read buffer per stream. */
const READ_CHUNK = 256 * 1024;

/**
 * Bytes all streams together may have written but not yet read back. The load generator only
 * has to keep the tunnel busy; letting it queue much more than that only makes the drain at the
 * end long (and bounds nothing the tunnel does: it must stop reading itself when its buffers are
 * full). So the allowance is half a second of the rate seen so far, between these bounds, and
 * {@link IN_FLIGHT_START} until there is a rate to go by.
 */
const IN_FLIGHT_MAX = 4 << 20, IN_FLIGHT_MIN = 512 << 10, IN_FLIGHT_SECONDS = 0.5;
/** The allowance during the first {@link IN_FLIGHT_SECONDS}. */
const IN_FLIGHT_START = 1 << 20;
/** Per-stream floor of the allowance (many streams share {@link IN_FLIGHT_MAX}). */
const IN_FLIGHT_STREAM_MIN = 16 << 10;

/** Bytes all streams of a scenario wrote and read back so far (for a caller watching it run). */
export interface EchoCounters {
  /** Bytes written. */
  written: number;
  /** Bytes read back (and checked). */
  read: number;
}

/** What the streams of one scenario share: bytes read back so far and the start time. */
class Flow {
  readonly t0 = performance.now();
  /** Where the byte counts live (the caller's object when it watches them). */
  constructor(
    readonly streams: number,
    readonly bytes: EchoCounters = { written: 0, read: 0 },
  ) {}

  /** One stream's allowance of written-but-unread bytes now. */
  allowance(): number {
    const elapsed = (performance.now() - this.t0) / 1000;
    let total = IN_FLIGHT_START;
    if (elapsed > IN_FLIGHT_SECONDS) {
      const rate = this.bytes.read / elapsed;
      total = Math.min(IN_FLIGHT_MAX, Math.max(IN_FLIGHT_MIN, rate * IN_FLIGHT_SECONDS));
    }
    return Math.max(IN_FLIGHT_STREAM_MIN, Math.floor(total / this.streams));
  }
}

/**
 * A random block the streams send from. Its length is not a power of two, so that the repeats do
 * not line up with any buffer size on the way (and it is incompressible for snappy).
 */
export function randomBlock(bytes = (8 << 20) + 4099): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let off = 0; off < bytes; off += 65536) {
    crypto.getRandomValues(b.subarray(off, Math.min(bytes, off + 65536)));
  }
  return b;
}

/** The outcome of an echo scenario. */
export interface EchoResult {
  /** Streams used. */
  streams: number;
  /** Bytes echoed back and checked (all streams). */
  bytes: number;
  /** Seconds from the first write to the last byte read. */
  seconds: number;
  /** Bytes per second echoed back. */
  bytesPerSecond: number;
}

const WRITER_ENDED = -1;

/** Thrown when a stream's echo differs from what was sent. */
export class EchoMismatch extends Error {}

async function connect(port: number, timeoutMs: number): Promise<Deno.TcpConn> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.setNoDelay(true);
      return c;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Runs one stream: writes from `block` at `start` until `deadline` (performance.now() ms), reads
 * back and checks everything. Returns the bytes echoed. Fails when nothing comes back for
 * `stallMs`, or when the echo differs.
 */
async function echoStream(
  conn: Deno.TcpConn,
  block: Uint8Array,
  start: number,
  deadline: number,
  flow: Flow,
  stallMs: number,
  label: string,
): Promise<number> {
  const L = block.length;
  let written = 0, read = 0, writerDone = false;
  let failure: Error | null = null;
  const gate: { wake: (() => void) | null } = { wake: null }; // the writer waits here when full
  let writerState = "writing"; // for the stall message
  const writer = (async () => {
    try {
      while (performance.now() < deadline && failure === null) {
        const allowance = flow.allowance();
        if (written - read >= allowance) {
          writerState = `waiting for the echo (allowance ${allowance})`;
          await new Promise<void>((r) => gate.wake = r);
          continue;
        }
        const off = (start + written) % L;
        const len = Math.min(L - off, WRITE_CHUNK, allowance - (written - read));
        writerState = `in write(${len})`;
        const n = await conn.write(block.subarray(off, off + len));
        written += n;
        flow.bytes.written += n;
        writerState = "writing";
      }
    } catch (e) {
      failure ??= e as Error;
    }
    writerDone = true;
    writerState = "done";
  })();
  const buf = new Uint8Array(READ_CHUNK);
  let lastProgress = performance.now();
  let stallTimer: ReturnType<typeof setInterval> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    stallTimer = setInterval(() => {
      if (performance.now() - lastProgress > stallMs) {
        reject(
          new Error(
            `${label}: no echo for ${stallMs} ms after ${read}/${written} bytes (writer ${writerState})`,
          ),
        );
      }
    }, 250);
  });
  stalled.catch(() => {}); // raced below; this only keeps a late rejection from going unhandled
  try {
    // The reader may be waiting with everything echoed when the writer stops at the deadline:
    // the writer's end must wake it too (keeping its pending read for the bytes still due).
    const writerEnded = writer.then(() => WRITER_ENDED);
    let pending: Promise<number | null> | null = null;
    while (!(writerDone && read >= written)) {
      if (failure) throw failure;
      pending ??= conn.read(buf);
      const n = await Promise.race(
        writerDone ? [pending, stalled] : [pending, stalled, writerEnded],
      );
      if (n === WRITER_ENDED) continue;
      pending = null;
      if (n === null) throw new Error(`${label}: closed after ${read}/${written} bytes echoed`);
      lastProgress = performance.now();
      let off = (start + read) % L, done = 0;
      while (done < n) {
        const len = Math.min(n - done, L - off);
        if (Buffer.compare(buf.subarray(done, done + len), block.subarray(off, off + len)) !== 0) {
          throw new EchoMismatch(`${label}: echoed bytes differ at stream offset ${read + done}`);
        }
        done += len;
        off = 0;
      }
      read += n;
      flow.bytes.read += n;
      if (read > written) throw new EchoMismatch(`${label}: more bytes echoed than written`);
      if (gate.wake !== null) {
        const wake = gate.wake;
        gate.wake = null;
        wake();
      }
    }
    pending?.catch(() => {}); // nothing more is due; closing the connection ends this read
    if (failure) throw failure;
  } catch (e) {
    failure ??= e as Error;
    try {
      conn.close();
    } catch { /* already closed */ }
    gate.wake?.();
    await writer;
    throw e;
  } finally {
    clearInterval(stallTimer);
  }
  await writer;
  return read;
}

/**
 * `streams` parallel echo streams to `port` for `seconds` (plus the drain). Each stream starts at
 * a different offset of `block`; how far writers may run ahead of the echo is bounded as
 * {@link IN_FLIGHT_MAX} describes. `counters`, when given, follows the bytes written and read
 * back while it runs, and still holds them when it fails.
 */
export async function echoLoad(
  port: number,
  block: Uint8Array,
  streams: number,
  seconds: number,
  stallMs = 15000,
  counters?: EchoCounters,
): Promise<EchoResult> {
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < streams; i++) conns.push(await connect(port, 10000));
    const flow = new Flow(streams, counters);
    const t0 = flow.t0;
    const deadline = t0 + seconds * 1000;
    const step = Math.floor(block.length / streams);
    const results = await Promise.allSettled(
      conns.map((c, i) => echoStream(c, block, i * step, deadline, flow, stallMs, `stream ${i}`)),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const failed = results.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    if (failed) throw failed.reason;
    let bytes = 0;
    for (const r of results) bytes += (r as PromiseFulfilledResult<number>).value;
    return { streams, bytes, seconds: elapsed, bytesPerSecond: bytes / elapsed };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }
}

/** The outcome of a ping-pong scenario. */
export interface PingResult {
  /** Round-trip times in ms, in order. */
  rttMs: number[];
  /** Seconds the pings took. */
  seconds: number;
}

/**
 * `size`-byte ping-pong on one stream: send, wait for the whole echo, check it, repeat, until
 * `count` pings or `maxSeconds` (whichever first). Each ping carries its index, so a stale or
 * duplicated echo is caught.
 */
export async function pingPong(
  port: number,
  count: number,
  maxSeconds: number,
  size = 64,
  stallMs = 15000,
): Promise<PingResult> {
  const conn = await connect(port, 10000);
  const ping = new Uint8Array(size), pong = new Uint8Array(size);
  const view = new DataView(ping.buffer);
  crypto.getRandomValues(ping);
  const rtt: number[] = [];
  const t0 = performance.now(), end = t0 + maxSeconds * 1000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (let i = 0; i < count && performance.now() < end; i++) {
      view.setUint32(0, i);
      const sent = performance.now();
      let off = 0;
      while (off < size) off += await conn.write(ping.subarray(off));
      let got = 0;
      const stall = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`ping ${i}: no echo for ${stallMs} ms`)),
          stallMs,
        );
      });
      while (got < size) {
        const n = await Promise.race([conn.read(pong.subarray(got)), stall]);
        if (n === null) throw new Error(`ping ${i}: stream closed`);
        got += n;
      }
      clearTimeout(timer);
      rtt.push(performance.now() - sent);
      if (Buffer.compare(ping, pong) !== 0) throw new EchoMismatch(`ping ${i}: echo differs`);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  return { rttMs: rtt, seconds: (performance.now() - t0) / 1000 };
}
