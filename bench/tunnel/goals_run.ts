/**
 * The goals run of the tunnel benchmark (`--goals`): every row of issue 12's table, measured in
 * rounds, each round alternating ours and Go on fresh processes for each of three process sets:
 *
 * - `defaults` (kcptun's default flags, direct loopback): idle RSS after start, the first pings
 *   (nothing before them), a bulk warm-up, bulk echo and parallel echo with each end's peak RSS
 *   during each, idle RSS again after a pause, warm pings, and short connections;
 * - `bare` (`-crypt none -nocomp -ds 0 -ps 0`): a bulk warm-up, then bulk echo;
 * - `bad` (kcptun's defaults through the lossy relay with bursty loss and delay): a few pings
 *   to open the session, the relay's pattern reset, then the measured pings.
 *
 * What each number means: docs/tunnel-bench.md; the judging: `goals.ts`.
 *
 * @module
 */

import { connectionLoad } from "../reliability/short_conns.ts";
import type { Child } from "./child.ts";
import { type GoalResult, goalRows, type MetricId, summariseGoals } from "./goals.ts";
import { echoLoad, pingPong } from "./load.ts";
import type { RelayStats } from "./lossy_relay.ts";
import { type BenchOptions, PROFILES } from "./options.ts";
import { peakRssMonitor, residentBytes, udpSocketDrops } from "./proc_stats.ts";
import {
  cpuDelta,
  cpuNow,
  measuredEcho,
  type Pair,
  type PairProcesses,
  type RelaySpec,
  resetRelayPattern,
  startEchoTarget,
  startPair,
} from "./run.ts";
import { percentile } from "./stats.ts";

const MIB = 1 << 20;

/** The process sets of a round, in the order they run. */
export const GOAL_SETS = ["defaults", "bare", "bad"] as const;
/** One process set. */
export type GoalSet = typeof GOAL_SETS[number];

/** What one set of one pair in one round measured. */
export interface SetResult {
  /** The set. */
  set: GoalSet;
  /** Which implementation. */
  pair: Pair;
  /** Round (0-based). */
  round: number;
  /** The metrics measured (those measured before a failure are kept). */
  values: Partial<Record<MetricId, number>>;
  /** Set when the set failed. */
  error?: string;
  /** Raw details for the JSON: echo results, relay counters, socket drops, CPU. */
  detail: Record<string, unknown>;
  /** Seconds per phase. */
  phases: Record<string, number>;
  /** Seconds start to stop. */
  wallSeconds: number;
  /** Command lines of the client and server. */
  commands: { client: string; server: string };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function mib(bytes: number): number {
  return bytes / MIB;
}

/** The flags of `set`, beyond -l/-r/-t/-key. */
export function setFlags(set: GoalSet, o: BenchOptions): string[] {
  return [...(set === "bare" ? PROFILES.none : []), ...o.extraFlags];
}

/** The lossy relay of the `bad` set. */
export function badRelay(o: BenchOptions): RelaySpec {
  return {
    loss: o.goal.badLoss,
    delayMs: o.goal.badDelayMs,
    burst: o.goal.badBurst,
    seed: o.seed,
  };
}

/** Runs one set of one pair; never throws for a failing tunnel (see `error`). */
export async function runSet(
  set: GoalSet,
  pair: Pair,
  round: number,
  o: BenchOptions,
  block: Uint8Array,
): Promise<SetResult> {
  const t0 = performance.now();
  const result: SetResult = {
    set,
    pair,
    round,
    values: {},
    detail: {},
    phases: {},
    wallSeconds: NaN,
    commands: { client: "", server: "" },
  };
  let mark = t0;
  const phase = (name: string) => {
    const now = performance.now();
    result.phases[name] = (now - mark) / 1000;
    mark = now;
  };
  const started: Child[] = [];
  let p: PairProcesses | null = null;
  try {
    p = await startPair(
      pair,
      setFlags(set, o),
      set === "bad" ? badRelay(o) : null,
      o,
      `goals-${set}-${pair}-${round}`,
      started,
    );
    result.commands = { client: p.client.commandLine, server: p.server.commandLine };
    phase("start");
    if (set === "defaults") await defaultsSet(p, o, block, result, phase);
    else if (set === "bare") await bareSet(p, o, block, result, phase);
    else await badSet(p, o, result, phase);
    for (const ch of [p.client, p.server]) {
      if (ch.done) throw new Error(`${ch.name} exited during the run`);
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (p !== null) {
      result.detail.socketDrops = {
        client: p.client.done ? NaN : udpSocketDrops(p.client.pid),
        server: p.server.done ? NaN : udpSocketDrops(p.server.pid),
        relay: p.relay && !p.relay.done ? udpSocketDrops(p.relay.pid) : NaN,
      };
    }
    // Client first (as a user would stop it), then the relay (it prints its stats), the rest.
    for (const ch of [p?.client, p?.relay, p?.server, ...started]) if (ch) await ch.stop();
    if (p?.relay) {
      const m = /^stats (\{.*\})$/m.exec(p.relay.output());
      if (m) result.detail.relay = JSON.parse(m[1]) as RelayStats;
    }
    phase("stop");
    result.wallSeconds = (performance.now() - t0) / 1000;
  }
  return result;
}

/** Round trips in ms summarised: p50, p99, max, first. */
function pingSummary(rttMs: number[]) {
  return {
    count: rttMs.length,
    p50: percentile(rttMs, 50),
    p99: percentile(rttMs, 99),
    max: rttMs.length ? Math.max(...rttMs) : NaN,
    first: rttMs.length ? rttMs[0] : NaN,
  };
}

function rssNow(p: PairProcesses): { client: number; server: number } {
  return {
    client: mib(residentBytes(p.client.pid).now),
    server: mib(residentBytes(p.server.pid).now),
  };
}

async function defaultsSet(
  p: PairProcesses,
  o: BenchOptions,
  block: Uint8Array,
  result: SetResult,
  phase: (name: string) => void,
): Promise<void> {
  const g = o.goal, v = result.values, d = result.detail;
  // Idle: both ends started and nothing has crossed yet.
  await sleep(g.idleSeconds * 1000);
  const idle0 = rssNow(p);
  v.idleStartClient = idle0.client;
  v.idleStartServer = idle0.server;
  phase("idle");
  // The first pings of the first stream: no warm-up of any kind before them.
  const cold = await pingPong(p.clientPort, g.coldPings, 120, o.pingSize, 30000);
  const cs = pingSummary(cold.rttMs);
  if (cs.count < g.coldPings) throw new Error(`cold pings: ${cs.count} of ${g.coldPings} in 120 s`);
  Object.assign(v, { coldP50: cs.p50, coldP99: cs.p99, coldFirst: cs.first, coldMax: cs.max });
  d.coldPings = { ...cs, rttMs: cold.rttMs.map((x) => +x.toFixed(3)) };
  phase("cold pings");
  if (o.warmup > 0) await echoLoad(p.clientPort, block, 1, o.warmup);
  await sleep(100); // let the warm-up's stream close
  phase("warmup");
  let mon = peakRssMonitor([p.client.pid, p.server.pid]);
  const bulk = await measuredEcho(p.clientPort, block, 1, o.seconds, p.pids);
  let peak = mon.stop();
  Object.assign(v, {
    bulkDefault: bulk.mibPerSecond,
    rssBulkClient: mib(peak.peak[0]),
    rssBulkServer: mib(peak.peak[1]),
  });
  d.bulk = { ...bulk, peakRss: peak };
  phase("bulk");
  mon = peakRssMonitor([p.client.pid, p.server.pid]);
  const par = await measuredEcho(p.clientPort, block, o.streams, o.seconds, p.pids);
  peak = mon.stop();
  Object.assign(v, {
    parallel: par.mibPerSecond,
    parallelCpu: par.cpuPerMiB.client + par.cpuPerMiB.server,
    parallelCpuClient: par.cpuPerMiB.client,
    parallelCpuServer: par.cpuPerMiB.server,
    rssParallelClient: mib(peak.peak[0]),
    rssParallelServer: mib(peak.peak[1]),
  });
  d.parallel = { ...par, peakRss: peak };
  phase("parallel");
  await sleep(g.afterSeconds * 1000);
  const idle1 = rssNow(p);
  v.idleAfterClient = idle1.client;
  v.idleAfterServer = idle1.server;
  phase("idle after");
  const warm = await pingPong(p.clientPort, g.warmPings, 300, o.pingSize, 30000);
  const ws = pingSummary(warm.rttMs);
  if (ws.count < g.warmPings) throw new Error(`warm pings: ${ws.count} of ${g.warmPings} in 300 s`);
  v.warmP50 = ws.p50;
  v.warmP99 = ws.p99;
  d.warmPings = { ...ws, seconds: warm.seconds };
  phase("warm pings");
  const c0 = cpuNow(p.pids);
  const sc = await connectionLoad(p.clientPort, g.shortConns, g.shortParallel, 64, 10000);
  const cpu = cpuDelta(c0, cpuNow(p.pids));
  // Only connections that echoed count: a failing tunnel must not look fast.
  v.shortConns = sc.times.length / sc.seconds;
  v.shortConnFailures = sc.failures;
  v.shortConnP99 = percentile(sc.times, 99);
  d.shortConns = {
    total: g.shortConns,
    ok: sc.times.length,
    failures: sc.failures,
    errors: sc.errors,
    seconds: sc.seconds,
    p50: percentile(sc.times, 50),
    p99: v.shortConnP99,
    cpu,
  };
  phase("short conns");
}

async function bareSet(
  p: PairProcesses,
  o: BenchOptions,
  block: Uint8Array,
  result: SetResult,
  phase: (name: string) => void,
): Promise<void> {
  if (o.warmup > 0) await echoLoad(p.clientPort, block, 1, o.warmup);
  await sleep(100);
  phase("warmup");
  const mon = peakRssMonitor([p.client.pid, p.server.pid]);
  const bulk = await measuredEcho(p.clientPort, block, 1, o.seconds, p.pids);
  const peak = mon.stop();
  Object.assign(result.values, {
    bulkNone: bulk.mibPerSecond,
    rssBulkNoneClient: mib(peak.peak[0]),
    rssBulkNoneServer: mib(peak.peak[1]),
  });
  result.detail.bulk = { ...bulk, peakRss: peak };
  phase("bulk");
}

/** Pings that open the `bad` set's session before the measured ones (not measured). */
const BAD_OPENING_PINGS = 10;

async function badSet(
  p: PairProcesses,
  o: BenchOptions,
  result: SetResult,
  phase: (name: string) => void,
): Promise<void> {
  const g = o.goal;
  // The session's handshake and first stream go through the lossy link too; they are not what
  // the row measures, so they come first and the loss pattern starts afresh after them.
  await pingPong(p.clientPort, BAD_OPENING_PINGS, 60, o.pingSize, 60000);
  const before = await resetRelayPattern(p.relay!, 0);
  phase("opening pings");
  const r = await pingPong(p.clientPort, g.badPings, g.badSeconds, o.pingSize, 60000);
  const after = await resetRelayPattern(p.relay!, 1);
  const s = pingSummary(r.rttMs);
  Object.assign(result.values, { badP99: s.p99, badP50: s.p50, badMax: s.max });
  result.detail.badPings = {
    ...s,
    seconds: r.seconds,
    rttMs: r.rttMs.map((x) => +x.toFixed(1)),
    relay: {
      c2sIn: after.c2sIn - before.c2sIn,
      c2sDropped: after.c2sDropped - before.c2sDropped,
      s2cIn: after.s2cIn - before.s2cIn,
      s2cDropped: after.s2cDropped - before.s2cDropped,
    },
  };
  phase("pings");
}

/** The load generator alone: bulk, parallel, ping and short connections straight to the target. */
export async function goalsCeiling(block: Uint8Array, o: BenchOptions) {
  const target = await startEchoTarget();
  const pids = { client: -1, server: -1, target: target.child.pid, relay: -1 };
  try {
    await echoLoad(target.port, block, 1, Math.min(0.5, o.seconds));
    const cold = await pingPong(target.port, o.goal.coldPings, 30, o.pingSize);
    const bulk = await measuredEcho(target.port, block, 1, o.seconds, pids);
    const parallel = await measuredEcho(target.port, block, o.streams, o.seconds, pids);
    const n = Math.min(o.goal.shortConns, 2000);
    const sc = await connectionLoad(target.port, n, o.goal.shortParallel, 64, 10000);
    return {
      bulkMiBps: bulk.mibPerSecond,
      parallelMiBps: parallel.mibPerSecond,
      ping: pingSummary(cold.rttMs),
      shortConnsPerSecond: sc.times.length / sc.seconds,
      loadgenCoresBulk: bulk.cpu.loadgen / bulk.seconds,
    };
  } finally {
    await target.child.stop();
  }
}

/** The round values of each pair, merged over its sets. */
export function roundValues(sets: readonly SetResult[]) {
  const out = new Map<string, { pair: Pair; values: Partial<Record<MetricId, number>> }>();
  for (const s of sets) {
    const key = `${s.pair}/${s.round}`;
    const r = out.get(key) ?? { pair: s.pair, values: {} };
    Object.assign(r.values, s.values);
    out.set(key, r);
  }
  return [...out.values()];
}

/** One console line for a finished set. */
export function describeSet(s: SetResult, rounds: number): string {
  const v = s.values, f = (x: number | undefined, d = 1) => x === undefined ? "-" : x.toFixed(d);
  let bits: string;
  if (s.set === "defaults") {
    bits = `idle ${f(v.idleStartClient, 0)}/${f(v.idleStartServer, 0)} MiB, cold ping p50 ` +
      `${f(v.coldP50, 2)} p99 ${f(v.coldP99, 2)} ms, bulk ${f(v.bulkDefault)} MiB/s ` +
      `(peak ${f(v.rssBulkClient, 0)}/${f(v.rssBulkServer, 0)} MiB), parallel ${f(v.parallel)} ` +
      `MiB/s ${f(v.parallelCpu, 3)} CPU-s/MiB (peak ${f(v.rssParallelClient, 0)}/` +
      `${f(v.rssParallelServer, 0)}), idle after ${f(v.idleAfterClient, 0)}/` +
      `${f(v.idleAfterServer, 0)} MiB, warm ping p50 ${f(v.warmP50, 2)} p99 ${f(v.warmP99, 2)} ` +
      `ms, short ${f(v.shortConns, 0)} conn/s (${f(v.shortConnFailures, 0)} failed)`;
  } else if (s.set === "bare") {
    bits = `bulk ${f(v.bulkNone)} MiB/s`;
  } else {
    bits = `ping p50 ${f(v.badP50)} p99 ${f(v.badP99)} max ${f(v.badMax)} ms`;
  }
  if (s.error !== undefined) bits += `; FAILED: ${s.error.split("\n")[0]}`;
  const phases = Object.entries(s.phases).map(([k, x]) => `${k} ${x.toFixed(1)}`).join(", ");
  return `  round ${s.round + 1}/${rounds} ${s.set.padEnd(8)} ${s.pair.padEnd(4)}: ${bits} ` +
    `[${s.wallSeconds.toFixed(1)} s: ${phases}]`;
}

/** Runs every round (sets in order, pairs alternated within each set); logs each set's line. */
export async function runGoals(
  o: BenchOptions,
  block: Uint8Array,
  log: (line: string) => void,
): Promise<{ sets: SetResult[]; results: GoalResult[]; loadavg: number[][] }> {
  const sets: SetResult[] = [];
  const loadavg: number[][] = [];
  for (let round = 0; round < o.runs; round++) {
    for (const set of GOAL_SETS) {
      for (const pair of o.pairs) {
        const s = await runSet(set, pair, round, o, block);
        sets.push(s);
        log(describeSet(s, o.runs));
      }
    }
    loadavg.push(Deno.loadavg());
  }
  const results = summariseGoals(goalRows(o.goal, o.streams), roundValues(sets), o.runs);
  return { sets, results, loadavg };
}
