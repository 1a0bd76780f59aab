/**
 * Side-by-side benchmark of the kcptun-ts pair (`deno run -A cli/client.ts` / `cli/server.ts`,
 * started exactly as a user would) and Debian's Go kcptun pair, on the same flags.
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

/**
 * With --tcp, a quick start of our server tells whether our CLI has fake TCP yet, so that the
 * bench fails with one clear line rather than with every run.
 */
async function checkOurTcp(o: BenchOptions): Promise<void> {
  if (!o.tcp || !o.pairs.includes("ours")) return;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/server.ts", "-l", "127.0.0.1:0", "-t", "127.0.0.1:9", "-tcp"],
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
  console.log(
    `runs ${o.runs} per pair (alternated ${o.pairs.join(", ")}), ${o.seconds} s writing per echo ` +
      `scenario, ${o.streams} parallel streams, ping ${o.pingSize} B x ${o.pings} or ${o.pingSeconds} s, ` +
      `warm-up ${o.warmup} s; lossy relay ${o.loss * 100}% loss${
        o.burst > 1 ? ` in runs of ${o.burst}` : ""
      }, ${o.delayMs} ms each way, seed ${o.seed}` +
      (o.denoFlags.length ? `; deno flags ${o.denoFlags.join(" ")}` : ""),
  );

  const block = randomBlock();
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
  const line = JSON.stringify(
    json,
    (_k, v) => typeof v === "number" && !Number.isFinite(v) ? null : v,
  );
  console.log(`\nTUNNEL_BENCH_JSON ${line}`);
  if (o.jsonPath !== null) Deno.writeTextFileSync(o.jsonPath, line + "\n");
  console.log(
    `\ndone in ${json.meta.seconds.toFixed(0)} s (numbers from a shared machine are provisional)`,
  );
  await stopAll();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}

if (import.meta.main) await main();
