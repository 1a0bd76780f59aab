/**
 * Summaries and the printed table of the tunnel benchmark.
 *
 * Per pair, each metric is the median over the pair's successful runs, except ping-pong
 * percentiles (taken over the pooled round trips of all its runs) and drop counters (summed over
 * its runs). Ratios are ours / Go for every row.
 *
 * @module
 */

import type { BenchCase } from "./options.ts";
import type { EchoMetrics, Pair, PingMetrics, RunResult } from "./run.ts";
import { median, percentile, ratio, sum } from "./stats.ts";

const MIB = 1 << 20;

/** One pair's summary of one case. */
export interface PairSummary {
  /** Successful runs. */
  runs: number;
  /** Failed runs (their errors are in the run list). */
  failed: number;
  /** Median MiB/s of the bulk (one stream) scenario. */
  bulkMiBps: number;
  /** Median aggregate MiB/s of the parallel scenario. */
  parallelMiBps: number;
  /** Pings over all runs. */
  pings: number;
  /** p50 of all round trips, ms. */
  pingP50: number;
  /** p99 of all round trips, ms. */
  pingP99: number;
  /** Median CPU-s per MiB echoed, bulk scenario. */
  bulkCpuPerMiB: { client: number; server: number };
  /** Median CPU-s per MiB echoed, parallel scenario. */
  parallelCpuPerMiB: { client: number; server: number };
  /** Median peak RSS (VmHWM), MiB. */
  peakRssMiB: { client: number; server: number };
  /** Receive drops of each end's UDP sockets, summed over runs. */
  socketDrops: { client: number; server: number };
  /** Kernel UDP RcvbufErrors (system-wide), summed over runs. */
  rcvbufErrors: number;
  /** Median over runs of RetransSegs / OutSegs in % from each end's SNMP counters. */
  retransPercent: { client: number; server: number };
  /** Lossy path: median datagrams per MiB echoed in bulk, each direction (NaN on direct). */
  bulkDatagramsPerMiB: { c2s: number; s2c: number };
  /** Median per run of the echo target's plus the load generator's CPU share (of one core) during bulk. */
  loadCpuShare: number;
}

function echoMedian(runs: RunResult[], pick: (e: EchoMetrics) => number, key: "bulk" | "parallel") {
  return median(runs.map((r) => r[key]).filter((e) => e !== undefined).map((e) => pick(e!)));
}

function retrans(c: Record<string, number> | null | undefined): number {
  return c ? 100 * c.RetransSegs / c.OutSegs : NaN;
}

/** Summarises one pair's runs. */
export function summarise(runs: RunResult[]): PairSummary {
  const ok = runs.filter((r) => r.error === undefined);
  const rtts = ok.flatMap((r) => r.ping?.rttMs ?? []);
  return {
    runs: ok.length,
    failed: runs.length - ok.length,
    bulkMiBps: echoMedian(ok, (e) => e.mibPerSecond, "bulk"),
    parallelMiBps: echoMedian(ok, (e) => e.mibPerSecond, "parallel"),
    pings: rtts.length,
    pingP50: percentile(rtts, 50),
    pingP99: percentile(rtts, 99),
    bulkCpuPerMiB: {
      client: echoMedian(ok, (e) => e.cpuPerMiB.client, "bulk"),
      server: echoMedian(ok, (e) => e.cpuPerMiB.server, "bulk"),
    },
    parallelCpuPerMiB: {
      client: echoMedian(ok, (e) => e.cpuPerMiB.client, "parallel"),
      server: echoMedian(ok, (e) => e.cpuPerMiB.server, "parallel"),
    },
    peakRssMiB: {
      client: median(ok.map((r) => r.peakRss.client / MIB)),
      server: median(ok.map((r) => r.peakRss.server / MIB)),
    },
    socketDrops: {
      client: sum(runs.map((r) => r.socketDrops.client)),
      server: sum(runs.map((r) => r.socketDrops.server)),
    },
    rcvbufErrors: sum(runs.map((r) => r.kernel.rcvbufErrors)),
    retransPercent: {
      client: median(ok.map((r) => retrans(r.snmp?.client))),
      server: median(ok.map((r) => retrans(r.snmp?.server))),
    },
    bulkDatagramsPerMiB: {
      c2s: echoMedian(ok, (e) => e.datagramsPerMiB?.c2s ?? NaN, "bulk"),
      s2c: echoMedian(ok, (e) => e.datagramsPerMiB?.s2c ?? NaN, "bulk"),
    },
    loadCpuShare: echoMedian(ok, (e) => (e.cpu.target + e.cpu.loadgen) / e.seconds, "bulk"),
  };
}

/** How a row's numbers print: a measurement, a count, or (ratios) two decimals. */
export type Kind = "value" | "count";

/**
 * A number as the tables print it: `-` when not finite; counts whole; ratios with two decimals;
 * measurements with three significant-ish digits.
 */
export function fmt(v: number, kind: Kind | "ratio" = "value"): string {
  if (!Number.isFinite(v)) return "-";
  if (kind === "count") return v.toFixed(0);
  if (kind === "ratio") return v.toFixed(2);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.01 || a === 0) return v.toFixed(3);
  return v.toPrecision(2);
}

interface Row {
  label: string;
  kind: Kind;
  /** Whether ours/Go means something for this row. */
  ratio: boolean;
  value: (p: PairSummary) => number;
}

const ROWS: Row[] = [
  { label: "bulk echo, 1 stream, MiB/s", kind: "value", ratio: true, value: (p) => p.bulkMiBps },
  {
    label: "parallel echo, all streams, MiB/s",
    kind: "value",
    ratio: true,
    value: (p) => p.parallelMiBps,
  },
  { label: "ping-pong p50, ms", kind: "value", ratio: true, value: (p) => p.pingP50 },
  { label: "ping-pong p99, ms", kind: "value", ratio: true, value: (p) => p.pingP99 },
  { label: "pings (all runs)", kind: "count", ratio: false, value: (p) => p.pings },
  {
    label: "CPU-s/MiB client, bulk",
    kind: "value",
    ratio: true,
    value: (p) => p.bulkCpuPerMiB.client,
  },
  {
    label: "CPU-s/MiB server, bulk",
    kind: "value",
    ratio: true,
    value: (p) => p.bulkCpuPerMiB.server,
  },
  {
    label: "CPU-s/MiB client, parallel",
    kind: "value",
    ratio: true,
    value: (p) => p.parallelCpuPerMiB.client,
  },
  {
    label: "CPU-s/MiB server, parallel",
    kind: "value",
    ratio: true,
    value: (p) => p.parallelCpuPerMiB.server,
  },
  { label: "peak RSS client, MiB", kind: "value", ratio: true, value: (p) => p.peakRssMiB.client },
  { label: "peak RSS server, MiB", kind: "value", ratio: true, value: (p) => p.peakRssMiB.server },
  {
    label: "socket drops client (sum)",
    kind: "count",
    ratio: false,
    value: (p) => p.socketDrops.client,
  },
  {
    label: "socket drops server (sum)",
    kind: "count",
    ratio: false,
    value: (p) => p.socketDrops.server,
  },
  {
    label: "kernel RcvbufErrors (sum, system)",
    kind: "count",
    ratio: false,
    value: (p) => p.rcvbufErrors,
  },
  {
    label: "retransmitted % of segs, client",
    kind: "value",
    ratio: true,
    value: (p) => p.retransPercent.client,
  },
  {
    label: "retransmitted % of segs, server",
    kind: "value",
    ratio: true,
    value: (p) => p.retransPercent.server,
  },
  {
    label: "datagrams/MiB c2s, bulk (relay)",
    kind: "count",
    ratio: true,
    value: (p) => p.bulkDatagramsPerMiB.c2s,
  },
  {
    label: "datagrams/MiB s2c, bulk (relay)",
    kind: "count",
    ratio: true,
    value: (p) => p.bulkDatagramsPerMiB.s2c,
  },
  {
    label: "load gen + target CPU, bulk, cores",
    kind: "value",
    ratio: false,
    value: (p) => p.loadCpuShare,
  },
];

/** The printed table of one case. */
export function formatCase(
  c: BenchCase,
  flags: string[],
  runs: RunResult[],
  s: Record<Pair, PairSummary | undefined>,
): string {
  const out: string[] = [];
  out.push(
    `\n== ${c.path} / ${c.profile}: flags ${
      flags.length ? flags.join(" ") : "(none beyond -l -r -t -key)"
    }`,
  );
  const w = 36;
  out.push(
    `${"metric".padEnd(w)}${"ours".padStart(10)}${"Go".padStart(10)}${"ours/Go".padStart(9)}`,
  );
  for (const row of ROWS) {
    const a = s.ours ? row.value(s.ours) : NaN, b = s.go ? row.value(s.go) : NaN;
    if (row.label.endsWith("(relay)") && !Number.isFinite(a) && !Number.isFinite(b)) continue;
    out.push(
      `${row.label.padEnd(w)}${fmt(a, row.kind).padStart(10)}${fmt(b, row.kind).padStart(10)}${
        row.ratio ? fmt(ratio(a, b), "ratio").padStart(9) : ""
      }`,
    );
  }
  const okFailed = (p?: PairSummary) => p ? `${p.runs}/${p.failed}` : "-";
  out.push(
    `${"runs ok/failed".padEnd(w)}${okFailed(s.ours).padStart(10)}${okFailed(s.go).padStart(10)}`,
  );
  const perRun = (p: Pair, key: "bulk" | "parallel") =>
    runs.filter((r) => r.pair === p).map((r) => r[key] ? fmt(r[key]!.mibPerSecond) : "x").join(" ");
  out.push(
    `per run MiB/s: bulk ours [${perRun("ours", "bulk")}] Go [${perRun("go", "bulk")}]; ` +
      `parallel ours [${perRun("ours", "parallel")}] Go [${perRun("go", "parallel")}]`,
  );
  const relays = runs.filter((r) => r.relay);
  if (relays.length > 0) {
    const line = (p: Pair) => {
      const rs = relays.filter((r) => r.pair === p).map((r) => r.relay!);
      const c2s = sum(rs.map((x) => x.c2sDropped)), c2sIn = sum(rs.map((x) => x.c2sIn));
      const s2c = sum(rs.map((x) => x.s2cDropped)), s2cIn = sum(rs.map((x) => x.s2cIn));
      const relayDrops = sum(runs.filter((r) => r.pair === p).map((r) => r.socketDrops.relay));
      return `${p} c2s ${c2s}/${c2sIn}, s2c ${s2c}/${s2cIn} dropped; relay socket drops ${relayDrops}`;
    };
    const present = (["ours", "go"] as Pair[]).filter((p) => s[p] !== undefined);
    out.push(`lossy relay (all runs): ${present.map(line).join("; ")}`);
  }
  for (const r of runs.filter((r) => r.error !== undefined)) {
    out.push(`FAILED ${r.pair} run ${r.run + 1}: ${r.error}`);
  }
  return out.join("\n");
}

/** A ping result without its samples (for JSON). */
export function pingForJson(p: PingMetrics | undefined): Omit<PingMetrics, "rttMs"> | undefined {
  if (!p) return undefined;
  const { rttMs: _, ...rest } = p;
  return rest;
}
