/**
 * Short connections: `total` TCP connections through the tunnel, `parallel` at a time, each one
 * connect, write `size` bytes, read them back, close. Measures connections per second, the
 * connect-plus-echo time of each (p50, p99), failures, and the RSS and open descriptors of both
 * ends before the load, right after it, and `settleSeconds` later.
 *
 * @module
 */

import { percentile } from "../tunnel/stats.ts";
import { cpuSeconds } from "../tunnel/proc_stats.ts";
import {
  echoOnce,
  fmt,
  type Pair,
  type ProcReading,
  readProc,
  sleep,
  startTunnel,
  type TunnelOptions,
} from "./ends.ts";

/** Options of {@link shortConnections}. */
export interface ShortConnOptions extends TunnelOptions {
  /** Connections in all (default 10000). */
  total?: number;
  /** At a time (default 100). */
  parallel?: number;
  /** Bytes echoed per connection (default 64). */
  size?: number;
  /** A connection failing to echo within this long counts as failed (default 10000 ms). */
  timeoutMs?: number;
  /** Seconds to wait after the load for the last reading (default 30). */
  settleSeconds?: number;
}

/** What one run found. */
export interface ShortConnResult {
  /** Which implementation. */
  pair: Pair;
  /** Connections attempted. */
  total: number;
  /** Connections that did not echo (the first few reasons in `errors`). */
  failures: number;
  /** Up to 5 distinct failure reasons. */
  errors: string[];
  /** Connections per second over the whole load. */
  rate: number;
  /** Connect + echo + close time, ms. */
  p50: number;
  /** 99th percentile of the same, ms. */
  p99: number;
  /** Client and server readings: before, right after, and settled. */
  client: { before: ProcReading; after: ProcReading; settled: ProcReading };
  /** See {@link ShortConnResult.client}. */
  server: { before: ProcReading; after: ProcReading; settled: ProcReading };
  /** CPU seconds of each end, and of the load generator (this process), during the load. */
  cpu: { client: number; server: number; loadgen: number };
  /**
   * The load generator's own ceiling: connections per second straight to the target (no
   * tunnel), same parallelism, `min(total, 2000)` connections. The tunnel's rate must be well
   * below it to mean anything.
   */
  ceilingRate: number;
  /** Seconds between the load's end and the settled reading. */
  settleSeconds: number;
}

/** Runs the load against `port`: `total` connections, `parallel` at a time. */
export async function connectionLoad(
  port: number,
  total: number,
  parallel: number,
  size: number,
  timeoutMs: number,
): Promise<{ times: number[]; failures: number; errors: string[]; seconds: number }> {
  const times: number[] = [];
  const errors = new Set<string>();
  let failures = 0, next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      try {
        times.push(await echoOnce(port, size, timeoutMs));
      } catch (e) {
        failures++;
        if (errors.size < 5) errors.add((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, total) }, worker));
  return { times, failures, errors: [...errors], seconds: (performance.now() - t0) / 1000 };
}

/** One run against `pair`. */
export async function shortConnections(
  pair: Pair,
  o: ShortConnOptions = {},
): Promise<ShortConnResult> {
  const total = o.total ?? 10000, parallel = o.parallel ?? 100;
  const settleSeconds = o.settleSeconds ?? 30;
  const t = await startTunnel(pair, o);
  try {
    const targetPort = Number(/^listening (\d+)$/m.exec(t.target.output())![1]);
    const ceiling = await connectionLoad(targetPort, Math.min(total, 2000), parallel, 64, 10000);
    // The session exists before the load (the first connection makes it): not measured.
    await echoOnce(t.clientPort, 64, 15000);
    await sleep(500);
    const c = t.client.pid, s = t.server.pid;
    const before = { client: readProc(c), server: readProc(s) };
    const cpu0 = { client: cpuSeconds(c), server: cpuSeconds(s), loadgen: cpuSeconds("self") };
    const load = await connectionLoad(
      t.clientPort,
      total,
      parallel,
      o.size ?? 64,
      o.timeoutMs ?? 10000,
    );
    const after = { client: readProc(c), server: readProc(s) };
    const cpu = {
      client: cpuSeconds(c) - cpu0.client,
      server: cpuSeconds(s) - cpu0.server,
      loadgen: cpuSeconds("self") - cpu0.loadgen,
    };
    await sleep(settleSeconds * 1000);
    const settled = { client: readProc(c), server: readProc(s) };
    return {
      pair,
      total,
      failures: load.failures,
      errors: load.errors,
      rate: total / load.seconds,
      p50: percentile(load.times, 50),
      p99: percentile(load.times, 99),
      client: { before: before.client, after: after.client, settled: settled.client },
      server: { before: before.server, after: after.server, settled: settled.server },
      cpu,
      ceilingRate: Math.min(total, 2000) / ceiling.seconds,
      settleSeconds,
    };
  } finally {
    await t.stop();
  }
}

function readings(r: { before: ProcReading; after: ProcReading; settled: ProcReading }): string {
  return `RSS ${fmt(r.before.rss)}->${fmt(r.after.rss)}->${fmt(r.settled.rss)} MiB, ` +
    `fds ${r.before.fds}->${r.after.fds}->${r.settled.fds}`;
}

/** The result line part of one pair. */
export function describeShortConns(r: ShortConnResult): string {
  return `${r.pair}: ${r.total} conns ${fmt(r.rate, 0)}/s, p50 ${fmt(r.p50)} ms p99 ${
    fmt(r.p99)
  } ms, ${r.failures} failed; client ${readings(r.client)}; server ${
    readings(r.server)
  } (before/after/${r.settleSeconds}s); CPU ms/conn client ${
    fmt((r.cpu.client / r.total) * 1000, 2)
  }, server ${fmt((r.cpu.server / r.total) * 1000, 2)}, load gen ${
    fmt((r.cpu.loadgen / r.total) * 1000, 2)
  } (ceiling ${fmt(r.ceilingRate, 0)}/s)`;
}
