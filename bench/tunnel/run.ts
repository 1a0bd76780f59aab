/**
 * One measured run of the tunnel benchmark: fresh processes (echo target, server, optional lossy
 * relay, client) for one pair, a warm-up, the ping-pong, bulk and parallel scenarios, the
 * per-process readings, and a clean stop.
 *
 * @module
 */

import { diffKernelUdpCounters, readKernelUdpCounters } from "../../transports/kernel_counters.ts";
import { freePort } from "../../tests/support/net.ts";
import { V8_FLAGS_ARG } from "../../cli/v8_flags.ts";
import { BUNDLES } from "../../cli/bundle.ts";
import { type Child, spawnChild, waitForLine } from "./child.ts";
import { echoLoad, type EchoResult, pingPong } from "./load.ts";
import type { RelayStats } from "./lossy_relay.ts";
import type { BenchCase, BenchOptions } from "./options.ts";
import { cpuSeconds, residentBytes, udpSocketDrops } from "./proc_stats.ts";
import { percentile } from "./stats.ts";

/** Which implementation a run measures. */
export type Pair = "ours" | "go";

/** The repository root (our CLI is started from here, as a user would). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

const MIB = 1 << 20;

/** CPU seconds of each process over one scenario. */
export interface CpuSeconds {
  /** The kcptun client. */
  client: number;
  /** The kcptun server. */
  server: number;
  /** The echo target. */
  target: number;
  /** The load generator (this process). */
  loadgen: number;
  /** The lossy relay (NaN on the direct path). */
  relay: number;
}

/** An echo scenario's numbers. */
export interface EchoMetrics extends EchoResult {
  /** MiB echoed back per second. */
  mibPerSecond: number;
  /** CPU seconds per process during the scenario. */
  cpu: CpuSeconds;
  /** CPU seconds per MiB echoed, per process. */
  cpuPerMiB: CpuSeconds;
  /** Kernel UDP RcvbufErrors during the scenario (system-wide). */
  rcvbufErrors: number;
  /** Lossy path: datagrams the relay received per MiB echoed, each direction. */
  datagramsPerMiB?: { c2s: number; s2c: number };
}

/** The ping-pong scenario's numbers. */
export interface PingMetrics {
  /** Pings completed. */
  count: number;
  /** Seconds taken. */
  seconds: number;
  /** Median round trip, ms. */
  p50: number;
  /** 99th percentile round trip, ms. */
  p99: number;
  /** Largest round trip, ms. */
  max: number;
  /** Every round trip, ms (for pooling across runs). */
  rttMs: number[];
}

/** Everything one run measured. */
export interface RunResult {
  /** The pair measured. */
  pair: Pair;
  /** Run index within the case (0-based). */
  run: number;
  /** Set when the run failed; the metrics taken before the failure are kept. */
  error?: string;
  /** Ping-pong. */
  ping?: PingMetrics;
  /** Bulk echo through one stream. */
  bulk?: EchoMetrics;
  /** Parallel echo through many streams. */
  parallel?: EchoMetrics;
  /** Peak resident memory (VmHWM) of the client and server over the run, bytes. */
  peakRss: { client: number; server: number };
  /** Kernel receive drops of each process's UDP sockets over the run (/proc/net/udp drops). */
  socketDrops: { client: number; server: number; relay: number };
  /** Kernel UDP counters over the run (system-wide): RcvbufErrors and InErrors. */
  kernel: { rcvbufErrors: number; inErrors: number };
  /** What the lossy relay did (lossy path only). */
  relay?: RelayStats;
  /** Each end's kcptun SNMP counters at the end of the run (from its SIGUSR1 dump). */
  snmp?: { client: Record<string, number> | null; server: Record<string, number> | null };
  /** Seconds the run took, start to stop. */
  wallSeconds: number;
  /** Seconds each phase took (start, warmup, ping, bulk, parallel, stop). */
  phases: Record<string, number>;
  /** The command lines of the client and server. */
  commands: { client: string; server: string };
}

/** The flags of one case, beyond -l/-r/-t/-key. */
export function caseFlags(c: BenchCase, o: BenchOptions): string[] {
  return [...o.profiles[c.profile], ...o.extraFlags, ...(o.tcp ? ["-tcp"] : [])];
}

function startEnd(
  pair: Pair,
  role: "client" | "server",
  args: string[],
  o: BenchOptions,
  tag: string,
): Child {
  if (pair === "go") {
    return spawnChild(`Go ${role}`, role === "client" ? o.goClient : o.goServer, args);
  }
  // As the client/server tasks run them (a later --v8-flags in denoFlags wins).
  const deno = [V8_FLAGS_ARG, ...o.denoFlags];
  if (o.cpuProfDir !== null) {
    deno.push(
      "--cpu-prof",
      `--cpu-prof-dir=${o.cpuProfDir}`,
      `--cpu-prof-name=${tag}-${role}.cpuprofile`,
    );
  }
  return spawnChild(
    `our ${role}`,
    Deno.execPath(),
    ["run", "-A", "--quiet", ...deno, o.sources ? `cli/${role}.ts` : BUNDLES[role].output, ...args],
    REPO_ROOT,
  );
}

function denoScript(name: string, file: string, args: string[]): Child {
  return spawnChild(
    name,
    Deno.execPath(),
    ["run", "-A", "--quiet", `bench/tunnel/${file}`, ...args],
    REPO_ROOT,
  );
}

/** Starts the echo target; resolves with it and its port. */
export async function startEchoTarget(): Promise<{ child: Child; port: number }> {
  const child = denoScript("echo target", "echo_target.ts", []);
  const m = await waitForLine(child, /^listening (\d+)$/m);
  return { child, port: Number(m[1]) };
}

/** Process ids of one run (-1 for a process that does not exist, e.g. the relay on the direct path). */
export type Pids = { client: number; server: number; target: number; relay: number };

/** CPU seconds used so far by each process of `p`. */
export function cpuNow(p: Pids): CpuSeconds {
  return {
    client: cpuSeconds(p.client),
    server: cpuSeconds(p.server),
    target: cpuSeconds(p.target),
    loadgen: cpuSeconds("self"),
    relay: p.relay > 0 ? cpuSeconds(p.relay) : NaN,
  };
}

/** CPU seconds each process used between readings `a` and `b`. */
export function cpuDelta(a: CpuSeconds, b: CpuSeconds): CpuSeconds {
  return {
    client: b.client - a.client,
    server: b.server - a.server,
    target: b.target - a.target,
    loadgen: b.loadgen - a.loadgen,
    relay: b.relay - a.relay,
  };
}

function rcvbufErrorsSince(before: ReturnType<typeof readKernelUdpCounters>): number {
  const after = readKernelUdpCounters();
  return before && after ? diffKernelUdpCounters(before, after).RcvbufErrors : NaN;
}

/** Runs an echo scenario with CPU and kernel readings around it. */
export async function measuredEcho(
  port: number,
  block: Uint8Array,
  streams: number,
  seconds: number,
  pids: Pids,
): Promise<EchoMetrics> {
  const k0 = readKernelUdpCounters();
  const c0 = cpuNow(pids);
  const r = await echoLoad(port, block, streams, seconds);
  const cpu = cpuDelta(c0, cpuNow(pids));
  const mib = r.bytes / MIB;
  return {
    ...r,
    mibPerSecond: r.bytesPerSecond / MIB,
    cpu,
    cpuPerMiB: {
      client: cpu.client / mib,
      server: cpu.server / mib,
      target: cpu.target / mib,
      loadgen: cpu.loadgen / mib,
      relay: cpu.relay / mib,
    },
    rcvbufErrors: rcvbufErrorsSince(k0),
  };
}

/** Ping-pong with the percentiles worked out. */
export async function measuredPing(port: number, o: BenchOptions): Promise<PingMetrics> {
  const r = await pingPong(port, o.pings, o.pingSeconds, o.pingSize);
  return {
    count: r.rttMs.length,
    seconds: r.seconds,
    p50: percentile(r.rttMs, 50),
    p99: percentile(r.rttMs, 99),
    max: Math.max(...r.rttMs),
    rttMs: r.rttMs,
  };
}

/** The load generator alone against the echo target: the most any tunnel could show. */
export async function measureCeiling(
  block: Uint8Array,
  o: BenchOptions,
): Promise<{ bulk: EchoMetrics; parallel: EchoMetrics; ping: PingMetrics }> {
  const target = await startEchoTarget();
  const pids: Pids = { client: -1, server: -1, target: target.child.pid, relay: -1 };
  try {
    await echoLoad(target.port, block, 1, Math.min(0.5, o.seconds));
    const ping = await measuredPing(target.port, { ...o, pingSeconds: Math.min(5, o.pingSeconds) });
    const bulk = await measuredEcho(target.port, block, 1, o.seconds, pids);
    const parallel = await measuredEcho(target.port, block, o.streams, o.seconds, pids);
    return { bulk, parallel, ping };
  } finally {
    await target.child.stop();
  }
}

/**
 * The end's SNMP counters: SIGUSR1 makes kcptun (Go's and ours) log one line
 * `KCP SNMP:&{BytesSent:1 BytesReceived:2 ...}`; ours gets SIGUSR2, which logs the same line
 * without Deno opening its inspector (Go's kcptun would die of it). Null when it does not answer
 * within 3 s.
 */
export async function snmpDump(child: Child, pair: Pair): Promise<Record<string, number> | null> {
  const count = (child.output().match(/KCP SNMP:&\{/g) ?? []).length;
  try {
    Deno.kill(child.pid, pair === "ours" ? "SIGUSR2" : "SIGUSR1");
    const pattern = new RegExp(`(?:KCP SNMP:&\\{[^}]*\\}[^]*?){${count}}KCP SNMP:&\\{([^}]*)\\}`);
    const m = await waitForLine(child, pattern, 3000);
    const out: Record<string, number> = {};
    for (const kv of m[1].trim().split(/\s+/)) {
      const i = kv.indexOf(":");
      if (i > 0) out[kv.slice(0, i)] = Number(kv.slice(i + 1));
    }
    return out;
  } catch {
    return null;
  }
}

/** Every child of the current run, for the signal handler. */
export const liveChildren: Set<Child> = new Set();

function track(c: Child): Child {
  liveChildren.add(c);
  c.exited.finally(() => liveChildren.delete(c));
  return c;
}

/** How {@link startPair} places the lossy relay between client and server. */
export interface RelaySpec {
  /** Drop probability per datagram and direction. */
  loss: number;
  /** One-way delay, ms. */
  delayMs: number;
  /** Mean burst length in datagrams (1: independent drops). */
  burst: number;
  /** Seed of the loss pattern. */
  seed: number;
}

/** The processes of one run, started by {@link startPair}. */
export interface PairProcesses {
  /** The echo target. */
  target: Child;
  /** The kcptun server. */
  server: Child;
  /** The kcptun client. */
  client: Child;
  /** The lossy relay, when asked for. */
  relay: Child | null;
  /** The port the client listens on (the load generator connects here). */
  clientPort: number;
  /** Process ids, for CPU readings (relay -1 when there is none). */
  pids: Pids;
  /** Every child started, in start order. */
  children: Child[];
}

/**
 * Starts the echo target, the server, the relay (when `relay` is given) and the client of `pair`
 * with `flags`, and waits until both ends logged `key derivation done`. `started` receives each
 * child as soon as it runs, so that a caller can stop them when a later one fails to start.
 */
export async function startPair(
  pair: Pair,
  flags: string[],
  relaySpec: RelaySpec | null,
  o: BenchOptions,
  tag: string,
  started: Child[],
): Promise<PairProcesses> {
  const target = await startEchoTarget();
  started.push(track(target.child));
  const serverPort = freePort();
  const server = track(startEnd(
    pair,
    "server",
    ["-l", `127.0.0.1:${serverPort}`, "-t", `127.0.0.1:${target.port}`, "-key", o.key, ...flags],
    o,
    tag,
  ));
  started.push(server);
  let remotePort = serverPort;
  let relay: Child | null = null;
  if (relaySpec !== null) {
    relay = track(denoScript("lossy relay", "lossy_relay.ts", [
      "--server-port",
      String(serverPort),
      "--loss",
      String(relaySpec.loss),
      "--delay-ms",
      String(relaySpec.delayMs),
      "--burst",
      String(relaySpec.burst),
      "--seed",
      String(relaySpec.seed),
    ]));
    started.push(relay);
    remotePort = Number((await waitForLine(relay, /^listening (\d+)$/m))[1]);
  }
  const clientPort = freePort();
  const client = track(startEnd(
    pair,
    "client",
    ["-l", `127.0.0.1:${clientPort}`, "-r", `127.0.0.1:${remotePort}`, "-key", o.key, ...flags],
    o,
    tag,
  ));
  started.push(client);
  await Promise.all([
    waitForLine(server, /key derivation done/),
    waitForLine(client, /key derivation done/),
  ]);
  return {
    target: target.child,
    server,
    client,
    relay,
    clientPort,
    pids: {
      client: client.pid,
      server: server.pid,
      target: target.child.pid,
      relay: relay?.pid ?? -1,
    },
    children: started,
  };
}

/**
 * Asks the lossy relay to restart its loss pattern at index 0 (once `settleMs` has let the
 * previous phase's last datagrams cross) and returns its counters at that moment. `resets` is the
 * number of resets asked of this relay before, which the relay's answer line carries.
 */
export async function resetRelayPattern(
  relay: Child,
  resets: number,
  settleMs = 200,
): Promise<RelayStats> {
  await new Promise((r) => setTimeout(r, settleMs));
  Deno.kill(relay.pid, "SIGUSR2");
  const m = await waitForLine(relay, new RegExp(`^reset ${resets + 1} (\\{.*\\})$`, "m"), 5000);
  return JSON.parse(m[1]) as RelayStats;
}

/** One run of `pair` on case `c`. Never throws for a failing tunnel: see `error`. */
export async function runOnce(
  pair: Pair,
  c: BenchCase,
  run: number,
  o: BenchOptions,
  block: Uint8Array,
): Promise<RunResult> {
  const t0 = performance.now();
  const flags = caseFlags(c, o);
  const tag = `${c.path}-${c.profile}-${pair}-${run}`;
  const result: RunResult = {
    pair,
    run,
    peakRss: { client: NaN, server: NaN },
    socketDrops: { client: NaN, server: NaN, relay: NaN },
    kernel: { rcvbufErrors: NaN, inErrors: NaN },
    wallSeconds: NaN,
    phases: {},
    commands: { client: "", server: "" },
  };
  let mark = t0;
  const phase = (name: string) => {
    const now = performance.now();
    result.phases[name] = (now - mark) / 1000;
    mark = now;
  };
  let resets = 0;
  // Each measured phase starts the relay's loss pattern afresh, once the previous phase's
  // stream closes have crossed, so both pairs meet the same drops from the same point. The
  // relay's counters at each reset give the datagrams of the phase between two resets.
  const resetLoss = async (): Promise<RelayStats | null> => {
    if (relay === null) return null;
    return await resetRelayPattern(relay, resets++);
  };
  const datagrams = (e: EchoMetrics, a: RelayStats | null, b: RelayStats | null) => {
    if (a === null || b === null) return;
    const mib = e.bytes / MIB;
    e.datagramsPerMiB = { c2s: (b.c2sIn - a.c2sIn) / mib, s2c: (b.s2cIn - a.s2cIn) / mib };
  };
  const children: Child[] = [];
  let relay: Child | null = null;
  let client: Child | null = null, server: Child | null = null;
  let k0: ReturnType<typeof readKernelUdpCounters> = null;
  try {
    const relaySpec = c.path === "lossy"
      ? { loss: o.loss, delayMs: o.delayMs, burst: o.burst, seed: o.seed }
      : null;
    const procs = await startPair(pair, flags, relaySpec, o, tag, children);
    ({ client, server, relay } = procs);
    const clientPort = procs.clientPort;
    result.commands = { client: client.commandLine, server: server.commandLine };
    const pids = procs.pids;
    k0 = readKernelUdpCounters();
    phase("start");
    if (o.warmup > 0) {
      await echoLoad(clientPort, block, 1, o.warmup);
      await pingPong(clientPort, 5, 5, o.pingSize);
    }
    await new Promise((r) => setTimeout(r, 100)); // let the warm-up's streams close
    phase("warmup");
    let relayMark = await resetLoss();
    if (o.scenarios.includes("ping")) {
      result.ping = await measuredPing(clientPort, o);
      relayMark = await resetLoss();
      phase("ping");
    }
    if (o.scenarios.includes("bulk")) {
      result.bulk = await measuredEcho(clientPort, block, 1, o.seconds, pids);
      const before = relayMark;
      relayMark = await resetLoss();
      datagrams(result.bulk, before, relayMark);
      phase("bulk");
    }
    if (o.scenarios.includes("parallel")) {
      result.parallel = await measuredEcho(clientPort, block, o.streams, o.seconds, pids);
      const before = relayMark;
      relayMark = await resetLoss();
      datagrams(result.parallel, before, relayMark);
      phase("parallel");
    }
    for (const ch of [client, server]) {
      if (ch.done) throw new Error(`${ch.name} exited during the run`);
    }
    const [cs, ss] = await Promise.all([snmpDump(client, pair), snmpDump(server, pair)]);
    result.snmp = { client: cs, server: ss };
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (client && server && !client.done && !server.done) {
      result.peakRss = {
        client: residentBytes(client.pid).peak,
        server: residentBytes(server.pid).peak,
      };
    }
    result.socketDrops = {
      client: client && !client.done ? udpSocketDrops(client.pid) : NaN,
      server: server && !server.done ? udpSocketDrops(server.pid) : NaN,
      relay: relay && !relay.done ? udpSocketDrops(relay.pid) : NaN,
    };
    const k1 = readKernelUdpCounters();
    if (k0 && k1) {
      const d = diffKernelUdpCounters(k0, k1);
      result.kernel = { rcvbufErrors: d.RcvbufErrors, inErrors: d.InErrors };
    }
    // Client first (as a user would stop it), then the relay (it prints its stats), server, target.
    for (const ch of [client, relay, server, ...children]) if (ch) await ch.stop();
    if (relay) {
      const m = /^stats (\{.*\})$/m.exec(relay.output());
      if (m) result.relay = JSON.parse(m[1]) as RelayStats;
    }
    phase("stop");
    result.wallSeconds = (performance.now() - t0) / 1000;
  }
  return result;
}
