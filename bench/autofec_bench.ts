/**
 * `-autofec` against fixed FEC settings through the tunnel bench's lossy relay (loopback, our
 * client and server started as a user would, `bench/tunnel/run.ts`'s `startPair`).
 *
 *   deno run -A bench/autofec_bench.ts [--seconds 4] [--warmup 4] [--ping-seconds 5]
 *     [--delay-ms 20] [--burst 3] [--profiles 0,0.02,0.1] [--configs auto3,auto6,off,1,3,6]
 *     [--json PATH]
 *
 * For every loss profile (drop rate per direction; drops in runs averaging `--burst` datagrams
 * once the rate is above 0) and every FEC setting it starts fresh processes, echoes bulk data for
 * `--warmup` seconds (long enough for `-autofec` to leave its starting level: it starts at the
 * most parity and lowers only after a 3 s hold), then measures 64-byte ping-pong (p50, p99) and
 * then bulk echo through one stream (MiB/s echoed back, every byte checked). The bytes on the
 * wire are both ends' SNMP `OutBytes` over the bulk phase (SIGUSR2 dumps before and after: every
 * UDP byte sent, FEC headers and parity included, before the relay drops any) per MiB carried
 * (each echoed MiB crosses the tunnel twice). `RetransSegs` per MiB carried and, for `-autofec`,
 * the last parity level each end logged are shown too.
 *
 * Every setting uses `-crypt none -nocomp` so that CPU (two cores, shared) weighs as little as
 * possible against what FEC changes. Prints one table and one `AUTOFEC_BENCH_JSON {...}` line.
 *
 * @module
 */

import { type BenchOptions, parseBenchOptions } from "./tunnel/options.ts";
import {
  measuredEcho,
  measuredPing,
  resetRelayPattern,
  snmpDump,
  startPair,
} from "./tunnel/run.ts";
import type { Child } from "./tunnel/child.ts";
import { echoLoad, randomBlock } from "./tunnel/load.ts";

const MIB = 1 << 20;

/** The FEC settings compared, by name. */
const CONFIGS: Record<string, { label: string; flags: string[] }> = {
  auto3: { label: "auto (10/≤3)", flags: ["-ds", "10", "-ps", "3", "-autofec"] },
  auto6: { label: "auto (10/≤6)", flags: ["-ds", "10", "-ps", "6", "-autofec"] },
  off: { label: "FEC off (0/0)", flags: ["-ds", "0", "-ps", "0"] },
  "1": { label: "fixed 10/1", flags: ["-ds", "10", "-ps", "1"] },
  "3": { label: "fixed 10/3", flags: ["-ds", "10", "-ps", "3"] },
  "6": { label: "fixed 10/6", flags: ["-ds", "10", "-ps", "6"] },
};

interface Row {
  loss: number;
  config: string;
  label: string;
  mibPerSecond: number;
  p50: number;
  p99: number;
  wireKiBPerMiB: number;
  retransPerMiB: number;
  levels: string;
  error?: string;
}

interface Args {
  seconds: number;
  warmup: number;
  pingSeconds: number;
  delayMs: number;
  burst: number;
  profiles: number[];
  configs: string[];
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    seconds: 4,
    warmup: 4,
    pingSeconds: 5,
    delayMs: 20,
    burst: 3,
    profiles: [0, 0.02, 0.1],
    configs: ["auto3", "auto6", "off", "1", "3", "6"],
    json: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case "--seconds":
        a.seconds = Number(v());
        break;
      case "--warmup":
        a.warmup = Number(v());
        break;
      case "--ping-seconds":
        a.pingSeconds = Number(v());
        break;
      case "--delay-ms":
        a.delayMs = Number(v());
        break;
      case "--burst":
        a.burst = Number(v());
        break;
      case "--profiles":
        a.profiles = v().split(",").map(Number);
        break;
      case "--configs":
        a.configs = v().split(",");
        for (const c of a.configs) if (!(c in CONFIGS)) throw new Error(`unknown config ${c}`);
        break;
      case "--json":
        a.json = v();
        break;
      default:
        throw new Error(`unknown option ${argv[i]} (see the module doc)`);
    }
  }
  return a;
}

/**
 * The last parity level an end logged (`fec: 2 of 6 ...`, `fec: no parity ...`), or `start`, the
 * most parity it starts with, when it never logged one.
 */
function lastLevel(c: Child, start: string): string {
  const ms = [...c.output().matchAll(/fec: (no parity|(\d+) of (\d+) parity shards)/g)];
  if (ms.length === 0) return start;
  const m = ms[ms.length - 1];
  return m[2] === undefined ? "0" : m[2];
}

async function runOne(a: Args, o: BenchOptions, loss: number, config: string): Promise<Row> {
  const { label, flags } = CONFIGS[config];
  const row: Row = {
    loss,
    config,
    label,
    mibPerSecond: NaN,
    p50: NaN,
    p99: NaN,
    wireKiBPerMiB: NaN,
    retransPerMiB: NaN,
    levels: "",
  };
  const started: Child[] = [];
  const block = randomBlock();
  try {
    const relay = {
      loss,
      delayMs: a.delayMs,
      burst: loss > 0 ? a.burst : 1,
      seed: 1 + Math.round(loss * 1000),
    };
    const p = await startPair(
      "ours",
      ["-crypt", "none", "-nocomp", ...flags],
      relay,
      o,
      `autofec-${loss}-${config}`,
      started,
    );
    if (a.warmup > 0) await echoLoad(p.clientPort, block, 1, a.warmup);
    await new Promise((r) => setTimeout(r, 100));
    let resets = 0;
    await resetRelayPattern(p.relay!, resets++);
    const ping = await measuredPing(p.clientPort, {
      ...o,
      pings: 100000,
      pingSeconds: a.pingSeconds,
    });
    row.p50 = ping.p50;
    row.p99 = ping.p99;
    await resetRelayPattern(p.relay!, resets++);
    const before = await Promise.all([snmpDump(p.client, "ours"), snmpDump(p.server, "ours")]);
    const bulk = await measuredEcho(p.clientPort, block, 1, a.seconds, p.pids);
    const after = await Promise.all([snmpDump(p.client, "ours"), snmpDump(p.server, "ours")]);
    row.mibPerSecond = bulk.mibPerSecond;
    const carried = (2 * bulk.bytes) / MIB;
    const delta = (field: string) => {
      let sum = 0;
      for (let k = 0; k < 2; k++) {
        const x = before[k]?.[field], y = after[k]?.[field];
        if (x === undefined || y === undefined) return NaN;
        sum += y - x;
      }
      return sum;
    };
    row.wireKiBPerMiB = delta("OutBytes") / 1024 / carried;
    row.retransPerMiB = delta("RetransSegs") / carried;
    if (config.startsWith("auto")) {
      const start = flags[flags.indexOf("-ps") + 1];
      row.levels = `${lastLevel(p.client, start)}/${lastLevel(p.server, start)}`;
    }
  } catch (e) {
    row.error = e instanceof Error ? e.message.split("\n")[0] : String(e);
  } finally {
    for (const c of started.reverse()) await c.stop();
  }
  return row;
}

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "–";
}

function table(rows: Row[]): string {
  const head =
    "| loss (runs of ~L) | FEC | echo MiB/s | ping p50 ms | ping p99 ms | wire KiB per MiB | retrans per MiB | auto level (client/server) |\n" +
    "|---|---|--:|--:|--:|--:|--:|---|";
  const lines = rows.map((r) =>
    `| ${r.loss * 100}% | ${r.label} | ${fmt(r.mibPerSecond, 2)} | ${fmt(r.p50, 1)} | ${
      fmt(r.p99, 1)
    } | ${fmt(r.wireKiBPerMiB, 0)} | ${fmt(r.retransPerMiB, 1)} | ${
      r.error ? `error: ${r.error}` : r.levels
    } |`
  );
  return [head, ...lines].join("\n");
}

if (import.meta.main) {
  const a = parseArgs(Deno.args);
  const parsed = parseBenchOptions([]);
  if (parsed === "help") throw new Error("unreachable");
  const o: BenchOptions = parsed;
  const t0 = performance.now();
  const rows: Row[] = [];
  for (const loss of a.profiles) {
    for (const config of a.configs) {
      const r = await runOne(a, o, loss, config);
      rows.push(r);
      console.error(
        `${(r.loss * 100).toFixed(0)}% ${r.label}: ${fmt(r.mibPerSecond, 2)} MiB/s, p99 ${
          fmt(r.p99, 1)
        } ms, ${fmt(r.wireKiBPerMiB, 0)} KiB/MiB${r.levels ? `, levels ${r.levels}` : ""}${
          r.error ? `, error ${r.error}` : ""
        }`,
      );
    }
  }
  console.log(
    `relay: one-way delay ${a.delayMs} ms, lossy profiles drop in runs of ~${a.burst}; ` +
      `${a.warmup} s warm-up, ${a.pingSeconds} s ping-pong, ${a.seconds} s bulk echo; ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s in all`,
  );
  console.log(table(rows));
  const json = JSON.stringify({ args: a, rows });
  console.log(`AUTOFEC_BENCH_JSON ${json}`);
  if (a.json) Deno.writeTextFileSync(a.json, json + "\n");
  if (rows.some((r) => r.error)) Deno.exit(1);
}
