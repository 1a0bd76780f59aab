/**
 * Side-by-side benchmark of the kcptun-ts pair (the bundles `dist/kcptun-ts-client.js` /
 * `-server.js`, started as the client/server tasks start them) and Debian's Go kcptun pair, on the same flags.
 *
 *   deno task bench:tunnel [options]      (= deno run -A bench/tunnel_bench.ts [options])
 *   deno run -A bench/tunnel_bench.ts --help
 *
 * For every case (path × flag profile) it runs each pair `--runs` times, alternated ours, Go,
 * ours, Go, ..., each run on fresh processes: an echo target, the server, the lossy relay (lossy
 * path only) and the client, with this process as the load generator. A run is a short warm-up,
 * then 64-byte ping-pong, bulk echo through one stream and echo through 100 parallel streams,
 * every byte checked. It reads each process's CPU time and peak RSS from /proc, the kernel's UDP
 * RcvbufErrors and the drops of each end's UDP sockets. It first measures the load generator
 * alone against the echo target (no tunnel): the ceiling any tunnel result is bounded by.
 *
 * Prints one table per case (ours, Go, ours/Go) and one line `TUNNEL_BENCH_JSON {...}` with
 * everything (also written to `--json PATH`). What each number means: docs/tunnel-bench.md.
 *
 * With `--goals` it measures issue 12's table instead (`tunnel/goals_run.ts`): per round, three
 * process sets (kcptun defaults, `-crypt none -nocomp -ds 0 -ps 0`, the bursty `bad` link), each
 * alternated ours then Go on fresh processes, and prints every row with ours, Go, ours:Go, the goal
 * and met / not met (medians and min–max over the rounds).
 *
 * @module
 */

import { type BenchOptions, parseBenchOptions, USAGE } from "./tunnel/options.ts";
import { formatCase, type PairSummary, pingForJson, summarise } from "./tunnel/report.ts";
import {
  caseFlags,
  liveChildren,
  measureCeiling,
  type Pair,
  REPO_ROOT,
  runOnce,
  type RunResult,
} from "./tunnel/run.ts";
import { randomBlock } from "./tunnel/load.ts";
import { formatGoalsTable, tally } from "./tunnel/goals.ts";
import { ensureBundles } from "../cli/bundle.ts";
import { badRelay, goalsCeiling, runGoals, setFlags } from "./tunnel/goals_run.ts";

function fail(message: string): never {
  console.error(`tunnel_bench: ${message}`);
  Deno.exit(2);
}

async function goVersion(path: string): Promise<string> {
  try {
    const out = await new Deno.Command(path, { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    return new TextDecoder().decode(out.stdout).trim() || "?";
  } catch {
    return "?";
  }
}

function checkSetup(o: BenchOptions): void {
  if (o.pairs.includes("go")) {
    for (const p of [o.goClient, o.goServer]) {
      try {
        Deno.statSync(p);
      } catch {
        fail(`${p} not found (Debian package kcptun), or run --only ours`);
      }
    }
  }
  if (o.tcp) {
    if (Deno.uid() !== 0) fail("--tcp needs root (raw sockets for fake TCP)");
  }
  if (o.cpuProfDir !== null) Deno.mkdirSync(o.cpuProfDir, { recursive: true });
}

/** Our server's flags for the fake-TCP probe below. */
const TCP_PROBE_ARGS = ["-l", "127.0.0.1:0", "-t", "127.0.0.1:9", "-tcp"];

/**
 * With --tcp, a quick start of our server tells whether our CLI has fake TCP yet, so that the
 * bench fails with one clear line rather than with every run.
 */
async function checkOurTcp(o: BenchOptions): Promise<void> {
  if (!o.tcp || !o.pairs.includes("ours")) return;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "cli/server.ts", ...TCP_PROBE_ARGS],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), 4000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (/unknown stage "faketcp"|faketcp/.test(text) && out.code !== 0 && out.signal === null) {
    fail(`--tcp: our CLI does not support -tcp yet: ${text.trim().split("\n").pop()}`);
  }
}

function mibps(v: number): string {
  return Number.isFinite(v) ? v.toFixed(1) : "-";
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseBenchOptions(Deno.args);
  } catch (e) {
    fail((e as Error).message);
  }
  if (parsed === "help") {
    console.log(USAGE);
    return;
  }
  const o = parsed;
  checkSetup(o);
  await checkOurTcp(o);
  if (o.pairs.includes("ours") && !o.sources) await ensureBundles();

  const stopAll = async () => {
    await Promise.allSettled([...liveChildren].map((c) => c.stop(1000)));
  };
  const onSignal = () => {
    console.error("\ntunnel_bench: interrupted, stopping children");
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const started = new Date();
  const meta = {
    date: started.toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    go: o.pairs.includes("go") ? await goVersion(o.goClient) : null,
    cpus: navigator.hardwareConcurrency,
    loadavgAtStart: Deno.loadavg(),
    args: Deno.args,
    options: { ...o },
  };
  console.log(
    `tunnel bench: deno ${meta.deno}, Go kcptun ${meta.go ?? "-"}, ${meta.cpus} CPUs, ` +
      `load ${meta.loadavgAtStart.map((x) => x.toFixed(2)).join(" ")}`,
  );

  const block = randomBlock();
  if (o.goals) {
    await goals(o, meta, block, started);
  } else {
    await perCase(o, meta, block, started);
  }
  await stopAll();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}

type Meta = Record<string, unknown>;

function writeJson(o: BenchOptions, json: unknown): void {
  const line = JSON.stringify(
    json,
    (_k, v) => typeof v === "number" && !Number.isFinite(v) ? null : v,
  );
  console.log(`\nTUNNEL_BENCH_JSON ${line}`);
  if (o.jsonPath !== null) Deno.writeTextFileSync(o.jsonPath, line + "\n");
}

/** `--goals`: issue 12's table, every row over `o.runs` alternated rounds. */
async function goals(o: BenchOptions, meta: Meta, block: Uint8Array, started: Date): Promise<void> {
  const g = o.goal;
  const relay = badRelay(o);
  console.log(
    `goals: ${o.runs} rounds; each round runs three process sets, ours then Go, fresh processes ` +
      `each: defaults${o.extraFlags.length ? ` + ${o.extraFlags.join(" ")}` : ""} (idle ` +
      `${g.idleSeconds} s, ${g.coldPings} cold pings, warm-up ${o.warmup} s, bulk and ` +
      `${o.streams} streams ${o.seconds} s each, idle ${g.afterSeconds} s, ${g.warmPings} warm ` +
      `pings, ${g.shortConns} short connections ${g.shortParallel} at a time); bare ` +
      `${setFlags("bare", o).join(" ")} (bulk); bad link ${relay.loss * 100}% loss in bursts of ` +
      `${relay.burst}, ${relay.delayMs} ms each way, seed ${relay.seed} (${g.badPings} pings or ` +
      `${g.badSeconds} s)` + (o.denoFlags.length ? `; deno flags ${o.denoFlags.join(" ")}` : ""),
  );
  // The ceiling also warms the load generator itself (its JIT), so that the first measured run's
  // pings are not slowed by this process; --no-ceiling keeps a short warm-up for that reason.
  const ceiling = await goalsCeiling(
    block,
    o.noCeiling
      ? { ...o, seconds: 0.3, goal: { ...o.goal, shortConns: Math.min(200, g.shortConns) } }
      : o,
  );
  if (!o.noCeiling) {
    console.log(
      `\nload generator ceiling (direct TCP echo, no tunnel): bulk ${mibps(ceiling.bulkMiBps)} ` +
        `MiB/s (load gen ${ceiling.loadgenCoresBulk.toFixed(2)} cores), ${o.streams} streams ` +
        `${mibps(ceiling.parallelMiBps)} MiB/s, first pings p50 ${ceiling.ping.p50.toFixed(3)} ` +
        `p99 ${ceiling.ping.p99.toFixed(3)} ms, short connections ` +
        `${ceiling.shortConnsPerSecond.toFixed(0)}/s\n`,
    );
  }
  const out = await runGoals(o, block, (line) => console.log(line));
  const t = tally(out.results);
  const loads = [meta.loadavgAtStart as number[], ...out.loadavg];
  console.log(
    `\n== goals (issue 12): median (min–max) of ${o.runs} rounds per pair; ours:Go of the medians`,
  );
  console.log(formatGoalsTable(out.results));
  console.log(
    `\n${t.met} met, ${t["not met"]} not met, ${t.incomplete} incomplete. Load average ` +
      `(1 min) at start and after each round: ${loads.map((l) => l[0].toFixed(2)).join(", ")}`,
  );
  for (const s of out.sets.filter((s) => s.error !== undefined)) {
    console.log(`FAILED round ${s.round + 1} ${s.set} ${s.pair}: ${s.error}`);
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  writeJson(o, {
    meta: { ...meta, seconds, loadavgAfterRounds: out.loadavg },
    ceiling: o.noCeiling ? null : ceiling,
    goals: out.results,
    commands: Object.fromEntries(
      out.sets.filter((s) => s.round === 0).map((s) => [`${s.set}/${s.pair}`, s.commands]),
    ),
    sets: out.sets,
  });
  console.log(`\ndone in ${seconds.toFixed(0)} s (numbers from a shared machine are provisional)`);
}

/** The per-case comparison (the default): one table per path and flag profile. */
async function perCase(
  o: BenchOptions,
  meta: Meta,
  block: Uint8Array,
  started: Date,
): Promise<void> {
  console.log(
    `runs ${o.runs} per pair (alternated ${o.pairs.join(", ")}), ${o.seconds} s writing per echo ` +
      `scenario, ${o.streams} parallel streams, ping ${o.pingSize} B x ${o.pings} or ${o.pingSeconds} s, ` +
      `warm-up ${o.warmup} s; lossy relay ${o.loss * 100}% loss${
        o.burst > 1 ? ` in runs of ${o.burst}` : ""
      }, ${o.delayMs} ms each way, seed ${o.seed}` +
      (o.denoFlags.length ? `; deno flags ${o.denoFlags.join(" ")}` : ""),
  );
  let ceiling: Awaited<ReturnType<typeof measureCeiling>> | null = null;
  if (!o.noCeiling) {
    ceiling = await measureCeiling(block, o);
    const cpu = (c: { target: number; loadgen: number }, s: number) =>
      `load gen ${(c.loadgen / s).toFixed(2)} + target ${(c.target / s).toFixed(2)} cores`;
    console.log(
      `\nload generator ceiling (direct TCP echo, no tunnel): bulk ${
        mibps(ceiling.bulk.mibPerSecond)
      } MiB/s ` +
        `(${cpu(ceiling.bulk.cpu, ceiling.bulk.seconds)}), ${o.streams} streams ` +
        `${mibps(ceiling.parallel.mibPerSecond)} MiB/s, ping p50 ${
          ceiling.ping.p50.toFixed(3)
        } ms ` +
        `p99 ${ceiling.ping.p99.toFixed(3)} ms`,
    );
  }

  const cases = [];
  for (const c of o.cases) {
    const flags = caseFlags(c, o);
    const runs: RunResult[] = [];
    for (let run = 0; run < o.runs; run++) {
      for (const pair of o.pairs) {
        const r = await runOnce(pair, c, run, o, block);
        runs.push(r);
        const parts = [];
        if (r.bulk) parts.push(`bulk ${mibps(r.bulk.mibPerSecond)} MiB/s`);
        if (r.parallel) parts.push(`parallel ${mibps(r.parallel.mibPerSecond)} MiB/s`);
        if (r.ping) {
          parts.push(
            `ping p50 ${r.ping.p50.toFixed(2)} p99 ${r.ping.p99.toFixed(2)} ms (${r.ping.count})`,
          );
        }
        const bits = r.error !== undefined ? `FAILED: ${r.error.split("\n")[0]}` : parts.join(", ");
        const phases = Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
        console.log(
          `  ${c.path}/${c.profile} run ${run + 1}/${o.runs} ${pair.padEnd(4)}: ${bits} ` +
            `[${r.wallSeconds.toFixed(1)} s: ${phases}]`,
        );
      }
    }
    const summary: Record<Pair, PairSummary | undefined> = {
      ours: o.pairs.includes("ours") ? summarise(runs.filter((r) => r.pair === "ours")) : undefined,
      go: o.pairs.includes("go") ? summarise(runs.filter((r) => r.pair === "go")) : undefined,
    };
    console.log(formatCase(c, flags, runs, summary));
    cases.push({
      path: c.path,
      profile: c.profile,
      flags,
      summary,
      ratio: summary.ours && summary.go
        ? {
          bulk: summary.ours.bulkMiBps / summary.go.bulkMiBps,
          parallel: summary.ours.parallelMiBps / summary.go.parallelMiBps,
          pingP50: summary.ours.pingP50 / summary.go.pingP50,
          pingP99: summary.ours.pingP99 / summary.go.pingP99,
        }
        : null,
      commands: {
        ours: runs.find((r) => r.pair === "ours")?.commands ?? null,
        go: runs.find((r) => r.pair === "go")?.commands ?? null,
      },
      runs: runs.map((r) => ({ ...r, ping: pingForJson(r.ping) })),
    });
  }

  const json = {
    meta: { ...meta, seconds: (Date.now() - started.getTime()) / 1000 },
    ceiling: ceiling
      ? { bulk: ceiling.bulk, parallel: ceiling.parallel, ping: pingForJson(ceiling.ping) }
      : null,
    cases,
  };
  writeJson(o, json);
  console.log(
    `\ndone in ${json.meta.seconds.toFixed(0)} s (numbers from a shared machine are provisional)`,
  );
}

if (import.meta.main) await main();
