/**
 * Stalled reader: one stream whose reader never reads, while another stream of the same session
 * pings. Two directions:
 *
 * - `app`: the application on the client side stops reading while the target sends as fast as it
 *   can (target.ts FLOOD): the client's stream fills;
 * - `target`: the target stops reading while the application sends as fast as it can (target.ts
 *   STALL): the server's stream fills.
 *
 * smux v2 has per-stream flow control, so the side stream should not notice; smux v1 has none, so
 * a stalled stream may stop the whole session once the session's buffer (`-smuxbuf`) is full
 * (Go's kcptun does exactly that). Reports the side stream's round trips (p50, p99 of 64-byte
 * pings; a ping that takes longer than `pingTimeoutMs` ends the pinging and marks it stalled), the
 * bytes the stalled stream swallowed, each end's RSS growth, and whether a new stream echoes once
 * the stalled one is closed.
 *
 * @module
 */

import { percentile } from "../tunnel/stats.ts";
import {
  echoOnce,
  fmt,
  KEY,
  type Pair,
  rssMiB,
  sleep,
  startTunnel,
  type TunnelOptions,
} from "./ends.ts";
import { FLOOD, STALL } from "./target.ts";

/** Which side stops reading. */
export type StallDirection = "app" | "target";

/** Options of {@link stalledReader}. */
export interface StalledReaderOptions extends TunnelOptions {
  /** smux version of both ends (default 2). */
  smuxver?: 1 | 2;
  /** Which reader stalls (default `app`). */
  direction?: StallDirection;
  /** Seconds the side stream pings (default 5). */
  seconds?: number;
  /** Seconds the stalled stream is given to fill up first (default 1). */
  fillSeconds?: number;
  /** A ping slower than this ends the pinging (default 3000 ms). */
  pingTimeoutMs?: number;
}

/** What one run found. */
export interface StalledReaderResult {
  /** Which implementation. */
  pair: Pair;
  /** smux version. */
  smuxver: 1 | 2;
  /** Which reader stalled. */
  direction: StallDirection;
  /** Side-stream round trips before the stall (ms, p50). */
  baselineP50: number;
  /** Side-stream pings completed during the stall. */
  pings: number;
  /** p50 / p99 of those, ms. */
  p50: number;
  /** See {@link StalledReaderResult.p50}. */
  p99: number;
  /** Whether a ping took longer than the timeout (the side stream was stalled too). */
  sideStalled: boolean;
  /** Bytes the stalled stream took in before it stopped (written by the app, or by the target). */
  swallowed: number;
  /** RSS growth from before the stall to its end, MiB. */
  rssGrowth: { client: number; server: number };
  /** ms for a new stream to echo after the stalled stream is closed (NaN: none within 10 s). */
  recoverMs: number;
}

/** Pings on one connection until `seconds` pass or a ping exceeds `timeoutMs`. */
async function sidePings(
  port: number,
  seconds: number,
  timeoutMs: number,
): Promise<{ rtts: number[]; stalled: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const ping = new Uint8Array(64), pong = new Uint8Array(64);
  const rtts: number[] = [];
  const end = performance.now() + seconds * 1000;
  let stalled = false;
  let pending: Promise<number | null> | null = null;
  try {
    for (let i = 0; performance.now() < end; i++) {
      crypto.getRandomValues(ping);
      const t0 = performance.now();
      await conn.write(ping);
      let got = 0;
      while (got < 64) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        pending ??= conn.read(pong.subarray(got));
        const n = await Promise.race([
          pending,
          new Promise<"late">((r) => timer = setTimeout(() => r("late"), timeoutMs)),
        ]);
        clearTimeout(timer);
        if (n === "late") {
          stalled = true;
          return { rtts, stalled };
        }
        pending = null;
        if (n === null) throw new Error(`side stream closed at ping ${i}`);
        got += n;
      }
      for (let k = 0; k < 64; k++) {
        if (pong[k] !== ping[k]) throw new Error(`side stream echo differs at ping ${i}`);
      }
      rtts.push(performance.now() - t0);
      await sleep(5);
    }
    return { rtts, stalled };
  } finally {
    conn.close();
    await pending?.catch(() => {});
  }
}

/** One run. */
export async function stalledReader(
  pair: Pair,
  o: StalledReaderOptions = {},
): Promise<StalledReaderResult> {
  const smuxver = o.smuxver ?? 2, direction = o.direction ?? "app";
  const t = await startTunnel(pair, {
    ...o,
    flags: [...(o.flags ?? ["-key", KEY]), "-smuxver", String(smuxver)],
  });
  let stalledConn: Deno.TcpConn | null = null;
  let writer: Promise<void> | null = null;
  try {
    await echoOnce(t.clientPort, 64, 15000);
    const baseline = await sidePings(t.clientPort, 0.5, 5000);
    const c = t.client.pid, s = t.server.pid;
    const rss0 = { client: rssMiB(c), server: rssMiB(s) };
    const flooded0 = (await t.targetCounters())?.flooded ?? 0;
    stalledConn = await Deno.connect({ hostname: "127.0.0.1", port: t.clientPort });
    let written = 0;
    if (direction === "app") {
      await stalledConn.write(FLOOD); // and never read
    } else {
      await stalledConn.write(STALL);
      const chunk = new Uint8Array(64 * 1024);
      const conn = stalledConn;
      writer = (async () => {
        try {
          while (true) written += await conn.write(chunk);
        } catch { /* closed at the end */ }
      })();
    }
    await sleep((o.fillSeconds ?? 1) * 1000);
    const side = await sidePings(t.clientPort, o.seconds ?? 5, o.pingTimeoutMs ?? 3000);
    const swallowed = direction === "app"
      ? ((await t.targetCounters())?.flooded ?? NaN) - flooded0
      : written;
    const rssGrowth = { client: rssMiB(c) - rss0.client, server: rssMiB(s) - rss0.server };
    stalledConn.close();
    stalledConn = null;
    let recoverMs = NaN;
    const r0 = performance.now();
    const deadline = r0 + 10000;
    while (performance.now() < deadline) {
      try {
        await echoOnce(t.clientPort, 64, Math.max(100, deadline - performance.now()));
        recoverMs = performance.now() - r0;
        break;
      } catch { /* a new attempt until the deadline */ }
    }
    return {
      pair,
      smuxver,
      direction,
      baselineP50: percentile(baseline.rtts, 50),
      pings: side.rtts.length,
      p50: percentile(side.rtts, 50),
      p99: percentile(side.rtts, 99),
      sideStalled: side.stalled,
      swallowed,
      rssGrowth,
      recoverMs,
    };
  } finally {
    try {
      (stalledConn as Deno.TcpConn | null)?.close();
    } catch { /* closed */ }
    await writer;
    await t.stop();
  }
}

/** The result line part of one run. */
export function describeStalled(r: StalledReaderResult): string {
  const side = r.sideStalled
    ? `side STALLED after ${r.pings} pings${r.pings ? ` (p50 ${fmt(r.p50)} ms)` : ""}`
    : `side p50 ${fmt(r.p50)} p99 ${fmt(r.p99)} ms (${r.pings} pings, before ${
      fmt(r.baselineP50)
    })`;
  return `${r.pair} v${r.smuxver} ${r.direction}: ${side}, held ${
    fmt(r.swallowed / (1 << 20))
  } MiB, RSS +${fmt(r.rssGrowth.client)}/+${fmt(r.rssGrowth.server)} MiB (c/s), ${
    Number.isFinite(r.recoverMs)
      ? `new stream ${fmt(r.recoverMs, 0)} ms after close`
      : "NO new stream after close"
  }`;
}
