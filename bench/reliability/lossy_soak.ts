/**
 * Soak: `streams` echo streams through the tunnel over the lossy relay (bench/tunnel/lossy_relay.ts,
 * default 10% loss in bursts averaging 4 datagrams, 20 ms each way) for `seconds`, every byte
 * checked. Reports the bytes lost (written and never echoed back, or echoed wrong: must be 0),
 * the bytes echoed, and each end's RSS at the mark (minute 1, or a third of a shorter run) and at
 * the end, with the growth between the two.
 *
 * @module
 */

import { echoLoad, randomBlock } from "../tunnel/load.ts";
import { cpuSeconds } from "../tunnel/proc_stats.ts";
import type { RelayStats } from "../tunnel/lossy_relay.ts";
import { waitForLine } from "../tunnel/child.ts";
import { fmt, type Pair, peakRssMiB, rssMiB, startTunnel, type TunnelOptions } from "./ends.ts";

/** Options of {@link lossySoak}. */
export interface SoakOptions extends TunnelOptions {
  /** Seconds of load (default 60). */
  seconds?: number;
  /** Streams (default 50). */
  streams?: number;
  /** Drop fraction each way (default 0.1). */
  loss?: number;
  /** Mean burst length in datagrams (default 4). */
  burst?: number;
  /** One-way delay, ms (default 20). */
  delayMs?: number;
  /** RSS sampling period, ms (default 5000). */
  sampleMs?: number;
}

/** What one run found. */
export interface SoakResult {
  /** Which implementation. */
  pair: Pair;
  /** Seconds of load. */
  seconds: number;
  /** Bytes echoed back and checked. */
  echoed: number;
  /** Bytes written and not echoed back (0 unless the run failed). */
  lost: number;
  /** Why the run failed (a stall, a mismatch), or null. */
  error: string | null;
  /** Seconds into the load of the mark reading. */
  markSeconds: number;
  /** RSS (MiB) at the mark and at the end, and the peak. */
  client: { mark: number; end: number; peak: number };
  /** See {@link SoakResult.client}. */
  server: { mark: number; end: number; peak: number };
  /** RSS samples (seconds into the load, client MiB, server MiB). */
  samples: Array<[number, number, number]>;
  /** CPU seconds of each end over the load. */
  cpu: { client: number; server: number };
  /** The relay's counters at the end. */
  relay: RelayStats | null;
}

/** RSS growth from the mark to the end, percent. */
export function growth(r: { mark: number; end: number }): number {
  return ((r.end - r.mark) / r.mark) * 100;
}

/** One soak run. */
export async function lossySoak(pair: Pair, o: SoakOptions = {}): Promise<SoakResult> {
  const seconds = o.seconds ?? 60, streams = o.streams ?? 50;
  const markSeconds = Math.min(60, seconds / 3);
  const t = await startTunnel(pair, {
    ...o,
    relay: { loss: o.loss ?? 0.1, delayMs: o.delayMs ?? 20, burst: o.burst ?? 4 },
  });
  const c = t.client.pid, s = t.server.pid;
  const samples: Array<[number, number, number]> = [];
  const result: SoakResult = {
    pair,
    seconds,
    echoed: 0,
    lost: 0,
    error: null,
    markSeconds,
    client: { mark: NaN, end: NaN, peak: NaN },
    server: { mark: NaN, end: NaN, peak: NaN },
    samples,
    cpu: { client: NaN, server: NaN },
    relay: null,
  };
  const t0 = performance.now();
  const sample = () => samples.push([(performance.now() - t0) / 1000, rssMiB(c), rssMiB(s)]);
  const sampler = setInterval(sample, o.sampleMs ?? 5000);
  const markTimer = setTimeout(() => {
    result.client.mark = rssMiB(c);
    result.server.mark = rssMiB(s);
  }, markSeconds * 1000);
  try {
    const cpu0 = { client: cpuSeconds(c), server: cpuSeconds(s) };
    const counters = { written: 0, read: 0 };
    try {
      const r = await echoLoad(
        t.clientPort,
        randomBlock(),
        streams,
        seconds,
        60000,
        counters,
      );
      result.echoed = r.bytes;
    } catch (e) {
      result.error = (e as Error).message;
      result.echoed = counters.read;
      result.lost = counters.written - counters.read;
    }
    sample();
    result.cpu = { client: cpuSeconds(c) - cpu0.client, server: cpuSeconds(s) - cpu0.server };
    result.client.end = rssMiB(c);
    result.server.end = rssMiB(s);
    result.client.peak = peakRssMiB(c);
    result.server.peak = peakRssMiB(s);
    if (t.relay) {
      Deno.kill(t.relay.pid, "SIGUSR2");
      const m = await waitForLine(t.relay, /^reset 1 (\{.*\})$/m, 5000).catch(() => null);
      if (m) result.relay = JSON.parse(m[1]) as RelayStats;
    }
  } finally {
    clearInterval(sampler);
    clearTimeout(markTimer);
    await t.stop();
  }
  return result;
}

/** The result line part of one run. */
export function describeSoak(r: SoakResult): string {
  const lost = r.error === null ? "0 bytes lost" : `${r.lost} bytes LOST (${r.error})`;
  const drops = r.relay
    ? `, relay dropped ${
      fmt(((r.relay.c2sDropped + r.relay.s2cDropped) / (r.relay.c2sIn + r.relay.s2cIn)) * 100)
    }%`
    : "";
  return `${r.pair}: ${lost}, ${fmt(r.echoed / (1 << 20))} MiB echoed in ${r.seconds} s${drops}; ` +
    `RSS at ${fmt(r.markSeconds, 0)} s / end: client ${fmt(r.client.mark)}/${
      fmt(r.client.end)
    } MiB (${fmt(growth(r.client))}%), server ${fmt(r.server.mark)}/${fmt(r.server.end)} MiB (${
      fmt(growth(r.server))
    }%)`;
}
