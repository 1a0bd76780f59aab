/**
 * Command-line options of `bench/soak.ts` (`deno task soak`).
 *
 * @module
 */

import type { Pair } from "./ends.ts";

/** The checks, in the order they run. */
export const CHECKS = ["cli", "rst", "flood", "conns", "stalled", "restart", "soak"] as const;
/** One check. */
export type Check = typeof CHECKS[number];

/** Everything the suite is told. */
export interface SuiteOptions {
  /** Checks to run, in {@link CHECKS} order. */
  checks: Check[];
  /** Implementations, ours first. */
  pairs: Pair[];
  /** Also write every result as JSON here. */
  jsonPath: string | null;
  /** Print the CLI table as Markdown too. */
  table: boolean;
  /** Extra `deno run` flags for our ends. */
  denoFlags: string[];
  /** Write CPU profiles of our ends here. */
  cpuProfDir: string | null;
  /** Write every end's output here. */
  logDir: string | null;
  /** flood: seconds per kind of datagram. */
  floodSeconds: number;
  /** flood: datagrams per second. */
  floodRate: number;
  /** conns: connections in all. */
  conns: number;
  /** conns: at a time. */
  connsParallel: number;
  /** conns: seconds after the load for the last reading. */
  settleSeconds: number;
  /** stalled: seconds the side stream pings. */
  stalledSeconds: number;
  /** restart: which ends are killed. */
  restartEnds: Array<"client" | "server">;
  /** soak: seconds. */
  soakSeconds: number;
  /** soak: streams. */
  soakStreams: number;
  /** soak: loss fraction each way. */
  soakLoss: number;
  /** soak: mean burst length of the loss. */
  soakBurst: number;
}

/** The usage text. */
export const USAGE = `deno task soak [options]   (= deno run -A bench/soak.ts)

The reliability suite: loopback-only checks of our client and server side by side with Debian's
Go kcptun (/usr/bin/kcptun-client, kcptun-server), same flags; one result line per check.

  --only LIST        checks to run, comma-separated (default all, in this order):
                       cli      the CLI bad-input table (exit code and first line, ours vs Go)
                       rst      200 connections reset right after connect, then a new echo
                       flood    garbage/truncated/wrong-key/replayed datagrams at the server
                                during a transfer
                       conns    10,000 short connections, 100 at a time, RSS/fds after 30 s
                       stalled  a stream whose reader never reads, another stream's latency
                                (smux v1 and v2, both directions)
                       restart  kill -9 and restart of the client and of the server
                       soak     50 streams over the lossy relay (10% bursty loss), 1 min
  --quick            short versions (about 4 minutes for everything)
  --long             long versions (soak 5 min, conns 30 s settle, longer floods)
  --pairs LIST       ours,go (default both; Go is left out when it is not installed)
  --json PATH        also write every result as JSON
  --table            also print the CLI table as Markdown
  --deno-flags STR   extra deno run flags for our ends, e.g. '--v8-flags=--trace-gc'
  --cpu-prof DIR     a V8 CPU profile of each of our ends per run, into DIR
  --logs DIR         each end's output (ours and Go's) per run, into DIR
  --conns N          conns: connections (default 10000; --quick 2000)
  --parallel N       conns: at a time (default 100)
  --settle S         conns: seconds before the last reading (default 30; --quick 5)
  --soak-seconds S   soak: seconds (default 60; --quick 20; --long 300)
  --streams N        soak: streams (default 50)
  --loss F           soak: loss each way (default 0.1)
  --burst L          soak: mean burst length in datagrams (default 4)
  -h, --help         this text
`;

/** Parses `args`; returns "help" for -h, throws with one line for a mistake. */
export function parseSuiteOptions(args: string[]): SuiteOptions | "help" {
  const quick = args.includes("--quick"), long = args.includes("--long");
  if (quick && long) throw new Error("--quick and --long exclude each other");
  const o: SuiteOptions = {
    checks: [...CHECKS],
    pairs: ["ours", "go"],
    jsonPath: null,
    table: false,
    denoFlags: [],
    cpuProfDir: null,
    logDir: null,
    floodSeconds: quick ? 1 : long ? 5 : 2,
    floodRate: quick ? 10000 : 20000,
    conns: quick ? 2000 : 10000,
    connsParallel: 100,
    settleSeconds: quick ? 5 : 30,
    stalledSeconds: quick ? 2 : long ? 10 : 5,
    restartEnds: quick ? ["client"] : ["client", "server"],
    soakSeconds: quick ? 20 : long ? 300 : 60,
    soakStreams: 50,
    soakLoss: 0.1,
    soakBurst: 4,
  };
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) {
      throw new Error(`${name}: expected a number >= ${min}, got ${v ?? "nothing"}`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = () => {
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      return args[++i];
    };
    switch (a) {
      case "-h":
      case "--help":
        return "help";
      case "--quick":
      case "--long":
        break;
      case "--only": {
        const want = v().split(",").map((s) => s.trim()).filter(Boolean);
        for (const w of want) {
          if (!(CHECKS as readonly string[]).includes(w)) {
            throw new Error(`--only: unknown check ${w} (one of ${CHECKS.join(", ")})`);
          }
        }
        o.checks = CHECKS.filter((c) => want.includes(c));
        break;
      }
      case "--pairs": {
        const want = v().split(",").map((s) => s.trim());
        for (const w of want) {
          if (w !== "ours" && w !== "go") throw new Error(`--pairs: unknown ${w} (ours, go)`);
        }
        o.pairs = (["ours", "go"] as const).filter((p) => want.includes(p));
        break;
      }
      case "--json":
        o.jsonPath = v();
        break;
      case "--table":
        o.table = true;
        break;
      case "--deno-flags":
        o.denoFlags = v().split(/\s+/).filter(Boolean);
        break;
      case "--cpu-prof":
        o.cpuProfDir = v();
        break;
      case "--logs":
        o.logDir = v();
        break;
      case "--conns":
        o.conns = num(a, v(), 1);
        break;
      case "--parallel":
        o.connsParallel = num(a, v(), 1);
        break;
      case "--settle":
        o.settleSeconds = num(a, v(), 0);
        break;
      case "--soak-seconds":
        o.soakSeconds = num(a, v(), 1);
        break;
      case "--streams":
        o.soakStreams = num(a, v(), 1);
        break;
      case "--loss":
        o.soakLoss = num(a, v(), 0);
        if (o.soakLoss >= 1) throw new Error("--loss: must be below 1");
        break;
      case "--burst":
        o.soakBurst = num(a, v(), 1);
        break;
      default:
        throw new Error(`unknown option ${a} (--help lists them)`);
    }
  }
  if (o.checks.length === 0) throw new Error("--only: no check given");
  if (o.pairs.length === 0) throw new Error("--pairs: no pair given");
  return o;
}
