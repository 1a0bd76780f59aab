/**
 * Resident memory of our client and server: idle (fresh processes, nothing connected), then after
 * they carried some traffic. Fresh processes per run; medians over the runs.
 *
 *   deno run -A bench/memory_bench.ts [--runs 5] [--idle-ms 2000] [--seconds 3] [--streams 20]
 *                                     [--deno-flags "--v8-flags=..."] [--sources]
 *                                     [-- kcptun flags...]
 *
 * Per run: an echo target, then our server and client as the `client`/`server` tasks run them
 * (`deno run -A --quiet <V8 flags> dist/kcptun-ts-<end>.js`, bundles built when stale; with
 * `--sources`, `cli/<end>.ts` instead; a later `--v8-flags` in `--deno-flags` wins). `--idle-ms` after each was spawned (and after it printed
 * `key derivation done`), VmRSS is read with its anonymous and file-backed parts (RssAnon,
 * RssFile: mostly pages of the deno executable's code and of shared libraries, shared with other
 * processes but counted in every one's RSS). Then one bulk echo stream and `--streams` parallel
 * ones for `--seconds` each, a pause of `--idle-ms`, and VmRSS and VmHWM (peak) again.
 *
 * MiB throughout (1 MiB = 1048576 bytes). docs/performance.md ("Memory") has the readings.
 *
 * @module
 */

import { BUNDLES, ensureBundles } from "../cli/bundle.ts";
import { V8_FLAGS_ARG } from "../cli/v8_flags.ts";
import { freePort } from "../tests/support/net.ts";
import { type Child, spawnChild, waitForLine } from "./tunnel/child.ts";
import { echoLoad, randomBlock } from "./tunnel/load.ts";
import { REPO_ROOT, startEchoTarget } from "./tunnel/run.ts";
import { median } from "./tunnel/stats.ts";

const MIB = 1 << 20;

/** Memory readings of one process, MiB (NaN once it is gone). */
export interface MemoryReading {
  /** VmRSS. */
  rss: number;
  /** RssAnon: heap, stacks, everything not backed by a file. */
  anon: number;
  /** RssFile: mapped files (the deno executable, libc, libcrypto). */
  file: number;
  /** VmHWM: the peak of VmRSS so far. */
  peak: number;
}

/** Reads {@link MemoryReading} of `pid` from /proc. */
export function readMemory(pid: number | "self"): MemoryReading {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const mib = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
      return m ? Number(m[1]) * 1024 / MIB : NaN;
    };
    return { rss: mib("VmRSS"), anon: mib("RssAnon"), file: mib("RssFile"), peak: mib("VmHWM") };
  } catch {
    return { rss: NaN, anon: NaN, file: NaN, peak: NaN };
  }
}

interface Options {
  runs: number;
  idleMs: number;
  seconds: number;
  streams: number;
  denoFlags: string[];
  kcptunFlags: string[];
  sources: boolean;
}

function parseOptions(args: string[]): Options {
  const o: Options = {
    runs: 5,
    idleMs: 2000,
    seconds: 3,
    streams: 20,
    denoFlags: [],
    kcptunFlags: [],
    sources: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      return args[++i];
    };
    if (a === "--") {
      o.kcptunFlags = args.slice(i + 1);
      break;
    } else if (a === "--runs") o.runs = Number(value());
    else if (a === "--idle-ms") o.idleMs = Number(value());
    else if (a === "--seconds") o.seconds = Number(value());
    else if (a === "--streams") o.streams = Number(value());
    else if (a === "--deno-flags") o.denoFlags = value().split(/\s+/).filter((s) => s !== "");
    else if (a === "--sources") o.sources = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

interface RunReadings {
  idle: { client: MemoryReading; server: MemoryReading };
  loaded: { client: MemoryReading; server: MemoryReading };
  mibPerSecond: { bulk: number; parallel: number };
}

function startEnd(role: "client" | "server", args: string[], o: Options): Child {
  return spawnChild(
    `our ${role}`,
    Deno.execPath(),
    [
      "run",
      "-A",
      "--quiet",
      V8_FLAGS_ARG,
      ...o.denoFlags,
      o.sources ? `cli/${role}.ts` : BUNDLES[role].output,
      ...args,
      ...o.kcptunFlags,
    ],
    REPO_ROOT,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runOnce(o: Options, block: Uint8Array): Promise<RunReadings> {
  const children: Child[] = [];
  try {
    const target = await startEchoTarget();
    children.push(target.child);
    const serverPort = freePort();
    const clientPort = freePort();
    const t0 = performance.now();
    const server = startEnd("server", [
      "-l",
      `127.0.0.1:${serverPort}`,
      "-t",
      `127.0.0.1:${target.port}`,
      "-key",
      "memory-bench",
    ], o);
    children.push(server);
    const client = startEnd("client", [
      "-l",
      `127.0.0.1:${clientPort}`,
      "-r",
      `127.0.0.1:${serverPort}`,
      "-key",
      "memory-bench",
    ], o);
    children.push(client);
    await Promise.all([
      waitForLine(server, /key derivation done/),
      waitForLine(client, /key derivation done/),
    ]);
    await sleep(Math.max(0, o.idleMs - (performance.now() - t0)));
    const idle = { client: readMemory(client.pid), server: readMemory(server.pid) };
    const bulk = await echoLoad(clientPort, block, 1, o.seconds);
    const parallel = await echoLoad(clientPort, block, o.streams, o.seconds);
    await sleep(o.idleMs);
    for (const ch of [client, server]) {
      if (ch.done) throw new Error(`${ch.name} exited during the run\n${ch.output()}`);
    }
    return {
      idle,
      loaded: { client: readMemory(client.pid), server: readMemory(server.pid) },
      mibPerSecond: { bulk: bulk.bytesPerSecond / MIB, parallel: parallel.bytesPerSecond / MIB },
    };
  } finally {
    await Promise.all(children.reverse().map((c) => c.stop()));
  }
}

if (import.meta.main) {
  const o = parseOptions(Deno.args);
  if (!o.sources) await ensureBundles();
  const block = randomBlock();
  const runs: RunReadings[] = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await runOnce(o, block);
    runs.push(r);
    const f = (m: MemoryReading) => m.rss.toFixed(1);
    console.error(
      `run ${i + 1}: idle client ${f(r.idle.client)} server ${
        f(r.idle.server)
      } MiB; after traffic ` +
        `client ${f(r.loaded.client)} server ${f(r.loaded.server)}, peak ` +
        `${r.loaded.client.peak.toFixed(1)} / ${r.loaded.server.peak.toFixed(1)}; ` +
        `${r.mibPerSecond.bulk.toFixed(1)} / ${r.mibPerSecond.parallel.toFixed(1)} MiB/s`,
    );
  }
  const m = (pick: (r: RunReadings) => number) => median(runs.map(pick)).toFixed(1);
  const row = (label: string, pick: (r: RunReadings, end: "client" | "server") => number) =>
    `| ${label} | ${m((r) => pick(r, "client"))} | ${m((r) => pick(r, "server"))} |`;
  console.log(
    `medians of ${o.runs} runs, MiB (deno ${Deno.version.deno}; ` +
      `${o.sources ? "cli/<end>.ts" : "dist/kcptun-ts-<end>.js"}; flags: ` +
      `${[V8_FLAGS_ARG, ...o.denoFlags, ...o.kcptunFlags].join(" ")})`,
  );
  console.log("| reading | client | server |\n| --- | --- | --- |");
  console.log(row("idle VmRSS", (r, e) => r.idle[e].rss));
  console.log(row("idle RssAnon", (r, e) => r.idle[e].anon));
  console.log(row("idle RssFile", (r, e) => r.idle[e].file));
  console.log(row("after traffic VmRSS", (r, e) => r.loaded[e].rss));
  console.log(row("peak VmHWM", (r, e) => r.loaded[e].peak));
  console.log(
    `echo: bulk ${m((r) => r.mibPerSecond.bulk)} MiB/s, ${o.streams} streams ` +
      `${m((r) => r.mibPerSecond.parallel)} MiB/s`,
  );
}
