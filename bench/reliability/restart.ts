/**
 * kill -9 and restart of one end: with a stream open (its target connection open too), the client
 * or the server is SIGKILLed and started again on the same ports. Measures the time from the kill
 * until a new connection echoes through the tunnel, and when each half of the old stream ended:
 * the application's connection to the client and the server's connection to the target (kcptun
 * has no goodbye message: the surviving end only learns from smux's keepalive timeout, 30 s).
 *
 * @module
 */

import {
  echoOnce,
  fmt,
  type Pair,
  sleep,
  startTunnel,
  type Tunnel,
  type TunnelOptions,
} from "./ends.ts";

/** Options of {@link killRestart}. */
export interface RestartOptions extends TunnelOptions {
  /** Which end is killed (default `server`). */
  end?: "client" | "server";
  /** Give up waiting for a new stream, or for the old one to end, after this long (default 75 s). */
  boundMs?: number;
  /**
   * Wait (up to the bound) for the target to see the old connection end (default true). After a
   * client kill that takes the server's keepalive timeout, 30-60 s.
   */
  watchTarget?: boolean;
}

/** What one run found. */
export interface RestartResult {
  /** Which implementation. */
  pair: Pair;
  /** Which end was killed. */
  end: "client" | "server";
  /** ms from the kill until the restarted end was ready. */
  restartMs: number;
  /** ms from the kill until a new connection echoed (NaN: not within the bound). */
  recoveryMs: number;
  /** ms from the kill until the application's old connection ended (NaN: not within the bound). */
  oldAppEndMs: number;
  /** How it ended (`EOF`, `reset`, ...), or `open`. */
  oldAppEnd: string;
  /** Bytes the old connection received after the kill (must be 0). */
  oldAppBytes: number;
  /** ms from the kill until the target saw its old connection end (NaN: not within the bound, or not watched). */
  oldTargetEndMs: number;
}

/** Reads from `conn` until it ends or `boundMs` pass. */
async function watchEnd(
  conn: Deno.Conn,
  t0: number,
  boundMs: number,
): Promise<{ ms: number; how: string; bytes: number }> {
  const buf = new Uint8Array(65536);
  let bytes = 0;
  const deadline = t0 + boundMs;
  let pending: Promise<number | null> | null = null;
  try {
    while (true) {
      const left = deadline - performance.now();
      if (left <= 0) return { ms: NaN, how: "open", bytes };
      let timer: ReturnType<typeof setTimeout> | undefined;
      pending ??= conn.read(buf);
      const r = await Promise.race([
        pending.then((n) => ({ n }), (e) => ({ e: e as Error })),
        new Promise<null>((res) => timer = setTimeout(() => res(null), left)),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      pending = null;
      if ("e" in r) {
        return {
          ms: performance.now() - t0,
          how: r.e.name === "ConnectionReset" ? "reset" : r.e.name,
          bytes,
        };
      }
      if (r.n === null) return { ms: performance.now() - t0, how: "EOF", bytes };
      bytes += r.n;
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    await pending?.catch(() => {});
  }
}

/** Polls the target until it has at most `open` connections; ms since `t0`, NaN at the bound. */
async function targetDownTo(t: Tunnel, open: number, t0: number, boundMs: number): Promise<number> {
  while (performance.now() - t0 < boundMs) {
    const c = await t.targetCounters();
    if (c && c.open <= open) return performance.now() - t0;
    await sleep(250);
  }
  return NaN;
}

/**
 * A new connection every {@link ATTEMPT_EVERY_MS}, each left to echo until the bound (an end may
 * hold a connection made too early until its session times out, and let a later one through):
 * ms from `t0` to the first echo, NaN when none came within the bound.
 */
async function firstEcho(port: number, t0: number, boundMs: number): Promise<number> {
  let first = NaN;
  const attempts: Promise<void>[] = [];
  const stop = new AbortController();
  while (Number.isNaN(first) && performance.now() - t0 < boundMs) {
    const left = boundMs - (performance.now() - t0);
    attempts.push(
      echoOnce(port, 64, Math.max(100, left), stop.signal).then(() => {
        if (Number.isNaN(first)) first = performance.now() - t0;
      }, () => {}),
    );
    await sleep(ATTEMPT_EVERY_MS);
  }
  stop.abort();
  await Promise.all(attempts);
  return first;
}

/** How often {@link firstEcho} makes a new connection. */
const ATTEMPT_EVERY_MS = 500;

/** One kill -9 and restart. */
export async function killRestart(pair: Pair, o: RestartOptions = {}): Promise<RestartResult> {
  const end = o.end ?? "server", boundMs = o.boundMs ?? 75000;
  const t = await startTunnel(pair, o);
  try {
    await echoOnce(t.clientPort, 64, 15000);
    const old = await Deno.connect({ hostname: "127.0.0.1", port: t.clientPort });
    const data = new Uint8Array(65536);
    await old.write(data.subarray(0, 1024));
    let got = 0;
    while (got < 1024) {
      const n = await old.read(data);
      if (n === null) throw new Error("the old stream closed before the kill");
      got += n;
    }
    const before = await t.targetCounters();
    if (!before || before.open < 1) throw new Error("the target does not see the old stream");
    const t0 = performance.now();
    await t.kill(end);
    const oldApp = watchEnd(old, t0, boundMs);
    const oldTarget = o.watchTarget === false
      ? Promise.resolve(NaN)
      : targetDownTo(t, before.open - 1, t0, boundMs);
    await t.restart(end);
    const restartMs = performance.now() - t0;
    const recoveryMs = await firstEcho(t.clientPort, t0, boundMs);
    const [app, targetMs] = await Promise.all([oldApp, oldTarget]);
    return {
      pair,
      end,
      restartMs,
      recoveryMs,
      oldAppEndMs: app.ms,
      oldAppEnd: app.how,
      oldAppBytes: app.bytes,
      oldTargetEndMs: targetMs,
    };
  } finally {
    await t.stop();
  }
}

const s = (ms: number) => Number.isFinite(ms) ? `${fmt(ms / 1000)} s` : "never";

/** The result line part of one run. */
export function describeRestart(r: RestartResult): string {
  return `${r.pair} ${r.end}: restarted ${s(r.restartMs)}, new stream ${s(r.recoveryMs)}, ` +
    `old app conn ${r.oldAppEnd} ${s(r.oldAppEndMs)}${
      r.oldAppBytes ? ` (${r.oldAppBytes} bytes!)` : ""
    }, ` +
    `old target conn closed ${s(r.oldTargetEndMs)}`;
}
