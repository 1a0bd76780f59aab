/**
 * Command-line options of `bench/tunnel_bench.ts`.
 *
 * @module
 */

/** One measured combination: a path (direct or lossy relay) and a flag profile. */
export interface BenchCase {
  /** `direct` (client and server talk over loopback) or `lossy` (through the seeded relay). */
  path: "direct" | "lossy";
  /** Profile name (a key of {@link BenchOptions.profiles}). */
  profile: string;
}

/** What the `--goals` run measures (issue 12's table); see docs/tunnel-bench.md. */
export interface GoalOptions {
  /** Pings measured right after start, before any other traffic (the first stream's first). */
  coldPings: number;
  /** Pings measured on warm processes, after the echo scenarios. */
  warmPings: number;
  /** Seconds the fresh ends sit idle before the first idle RSS reading. */
  idleSeconds: number;
  /** Seconds after the last echo scenario before the second idle RSS reading. */
  afterSeconds: number;
  /** `bad` link: pings measured ... */
  badPings: number;
  /** ... or this many seconds, whichever first. */
  badSeconds: number;
  /** `bad` link: drop probability per datagram and direction. */
  badLoss: number;
  /** `bad` link: mean length of a run of drops, in datagrams. */
  badBurst: number;
  /** `bad` link: one-way delay, ms. */
  badDelayMs: number;
  /** Short connections in all ... */
  shortConns: number;
  /** ... this many at a time. */
  shortParallel: number;
}

/** The defaults of {@link GoalOptions}: issue 12's table. */
export const GOAL_DEFAULTS: GoalOptions = {
  coldPings: 300,
  warmPings: 5000,
  idleSeconds: 2,
  afterSeconds: 5,
  badPings: 300,
  badSeconds: 180,
  badLoss: 0.1,
  badBurst: 4,
  badDelayMs: 50,
  shortConns: 10000,
  shortParallel: 100,
};

/** `--goals --quick` (with --quick's runs 2, seconds 1, warmup 0.5): a smoke test, ~2 min. */
export const GOAL_QUICK: Partial<GoalOptions> = {
  warmPings: 500,
  idleSeconds: 1,
  afterSeconds: 1,
  badPings: 30,
  badSeconds: 20,
  shortConns: 1000,
};

/** Everything the benchmark is told. */
export interface BenchOptions {
  /** Run the goals table of issue 12 instead of the per-case comparison. */
  goals: boolean;
  /** What the goals run measures (used with {@link BenchOptions.goals}). */
  goal: GoalOptions;
  /** Measured runs per pair and case (alternated ours, Go, ours, Go, ...). */
  runs: number;
  /** Cases, in order. */
  cases: BenchCase[];
  /** Named flag sets given to both pairs (beyond -l/-r/-t/-key). */
  profiles: Record<string, string[]>;
  /** Extra flags given to both pairs in every case. */
  extraFlags: string[];
  /** The -key both pairs use. */
  key: string;
  /** Seconds of writing in the bulk and parallel echo scenarios (the drain comes on top). */
  seconds: number;
  /** Parallel streams in the parallel scenario. */
  streams: number;
  /** Ping-pong stops after this many pings ... */
  pings: number;
  /** ... or after this many seconds, whichever comes first. */
  pingSeconds: number;
  /** Ping payload size in bytes. */
  pingSize: number;
  /** Warm-up seconds of bulk echo before the measured scenarios of each run. */
  warmup: number;
  /** Lossy relay: drop probability per datagram and direction. */
  loss: number;
  /** Lossy relay: one-way delay in ms per direction. */
  delayMs: number;
  /** Lossy relay: PRNG seed of the loss pattern. */
  seed: number;
  /** Lossy relay: mean length of a run of drops (1 = independent drops). */
  burst: number;
  /** Flags for `deno run` when starting our client and server (e.g. --v8-flags=...). */
  denoFlags: string[];
  /** Write a V8 CPU profile of our client and server per run into this directory. */
  cpuProfDir: string | null;
  /** Run our ends from `cli/<end>.ts` instead of the bundles the tasks run (`dist/*.js`). */
  sources: boolean;
  /** Add -tcp to both pairs (fake TCP; needs root). */
  tcp: boolean;
  /** Measured scenarios, in this order when present: ping, bulk, parallel. */
  scenarios: Array<"ping" | "bulk" | "parallel">;
  /** Which pairs to run (both unless told; one alone gives no ratios). */
  pairs: Array<"ours" | "go">;
  /** Skip the load generator's own ceiling measurement. */
  noCeiling: boolean;
  /** Also write the JSON result here. */
  jsonPath: string | null;
  /** Paths of the Go binaries. */
  goClient: string;
  /** See {@link BenchOptions.goClient}. */
  goServer: string;
}

/** The built-in profiles. */
export const PROFILES: Record<string, string[]> = {
  default: [],
  none: ["-crypt", "none", "-nocomp", "-ds", "0", "-ps", "0"],
};

/** The usage text. */
export const USAGE = `deno run -A bench/tunnel_bench.ts [options]   (deno task bench:tunnel)

Our kcptun-ts pair (as the client/server tasks run it: dist/kcptun-ts-*.js) against Debian's Go kcptun, same
flags, fresh processes per run, runs alternated ours, Go, ours, Go, ...

  --runs N            measured runs per pair and case (default 3)
  --cases LIST        path/profile pairs, comma-separated
                      (default direct/default,direct/none,lossy/default)
                      paths: direct, lossy; profiles: default (kcptun defaults),
                      none (-crypt none -nocomp -ds 0 -ps 0), or one given by --profile
  --profile NAME=FLAGS  define a profile, e.g. --profile 'fast3=-mode fast3 -nocomp'
  --flags FLAGS       extra kcptun flags for both pairs in every case (repeatable)
  --key KEY           the -key of both pairs (default kcptun-ts-bench)
  --seconds S         writing time of the bulk and parallel scenarios (default 3)
  --streams N         streams of the parallel scenario (default 100)
  --pings N           ping-pong: stop after N pings ... (default 1000)
  --ping-seconds S    ... or S seconds (default 20)
  --ping-size B       ping payload bytes (default 64)
  --warmup S          warm-up bulk echo per run, not measured (default 1)
  --loss P            lossy relay drop probability each way (default 0.02)
  --delay-ms MS       lossy relay one-way delay (default 30)
  --seed N            lossy relay loss pattern seed (default 1)
  --burst L           lossy relay drops in runs averaging L datagrams, same rate (default 1)
  --deno-flags FLAGS  flags for 'deno run' of our ends, e.g.
                      '--v8-flags=--no-concurrent-array-buffer-sweeping'
  --cpu-prof DIR      write a V8 CPU profile of our client and server per run into DIR
                      (summarise with: deno run -A bench/tunnel/cpuprofile_top.ts FILE)
  --sources           run our ends from cli/client.ts and cli/server.ts instead of the
                      bundles the client/server tasks run (dist/kcptun-ts-*.js, built when stale)
  --tcp               add -tcp to both pairs (fake TCP; needs root; direct path only)
  --only ours|go      run one pair only (no ratios)
  --scenarios LIST    measured scenarios, of ping,bulk,parallel (default all three;
                      one alone makes a CPU profile of just that load)
  --no-ceiling        skip measuring the load generator alone
  --quick             runs 2, seconds 1, warmup 0.5, pings 200 / 5 s (a smoke test, ~1 min)
                      (with --goals: also warm pings 500, idle 1 s, after 1 s, bad pings 30,
                      short connections 1000; ~2 min)
  --json PATH         also write the JSON result to PATH
  --go-client PATH, --go-server PATH   Go binaries (default /usr/bin/kcptun-client, -server)
  -h, --help          this text

The goals run (issue 12's table: every row, ours, Go, ours:Go, goal, met):

  --goals             per round, alternated ours, Go on fresh processes: kcptun defaults
                      (idle RSS, cold pings, bulk, parallel, idle RSS again, warm pings,
                      short connections), then bulk with -crypt none -nocomp -ds 0 -ps 0,
                      then pings over the 'bad' link; --runs rounds (default 3); ~13 min.
                      Takes --runs --seconds --streams --warmup --ping-size --seed --flags
                      --key --deno-flags --cpu-prof --only --no-ceiling --json --go-*.
  --cold-pings N      pings right after start, nothing before them (default 300)
  --warm-pings N      pings after the echo scenarios (default 5000)
  --idle-seconds S    idle after start before the first idle RSS reading (default 2)
  --after-seconds S   idle after the load before the second idle RSS reading (default 5)
  --bad-pings N       'bad' link pings ... (default 300)
  --bad-seconds S     ... or S seconds (default 180)
  --bad-loss P        'bad' link drop probability each way (default 0.1)
  --bad-burst L       'bad' link mean drop run length in datagrams (default 4)
  --bad-delay-ms MS   'bad' link one-way delay (default 50)
  --short-conns N     short connections (connect, echo 64 B, close) (default 10000)
  --short-parallel N  ... at a time (default 100)
`;

function words(s: string): string[] {
  return s.trim() === "" ? [] : s.trim().split(/\s+/);
}

/** Parses `args`; throws an Error with a one-line message on a mistake. */
export function parseBenchOptions(args: string[]): BenchOptions | "help" {
  const o: BenchOptions = {
    goals: false,
    goal: { ...GOAL_DEFAULTS },
    runs: 3,
    cases: [],
    profiles: { ...PROFILES },
    extraFlags: [],
    key: "kcptun-ts-bench",
    seconds: 3,
    streams: 100,
    pings: 1000,
    pingSeconds: 20,
    pingSize: 64,
    warmup: 1,
    loss: 0.02,
    delayMs: 30,
    seed: 1,
    burst: 1,
    denoFlags: [],
    cpuProfDir: null,
    sources: false,
    tcp: false,
    pairs: ["ours", "go"],
    scenarios: ["ping", "bulk", "parallel"],
    noCeiling: false,
    jsonPath: null,
    goClient: "/usr/bin/kcptun-client",
    goServer: "/usr/bin/kcptun-server",
  };
  let cases = "direct/default,direct/none,lossy/default";
  let casesGiven = false;
  const quick = args.includes("--quick");
  if (quick) Object.assign(o, { runs: 2, seconds: 1, warmup: 0.5, pings: 200, pingSeconds: 5 });
  if (quick) Object.assign(o.goal, GOAL_QUICK);
  /** Options of the per-case comparison only, given in this call (refused with --goals). */
  const casesOnly: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      return args[++i];
    };
    const num = (min: number) => {
      const s = value();
      const n = Number(s);
      if (!Number.isFinite(n) || n < min) throw new Error(`${a}: expected a number ≥ ${min}: ${s}`);
      return n;
    };
    switch (a) {
      case "-h":
      case "--help":
        return "help";
      case "--quick":
        break;
      case "--runs":
        o.runs = Math.floor(num(1));
        break;
      case "--cases":
        casesOnly.push("--cases");
        cases = value();
        casesGiven = true;
        break;
      case "--profile": {
        casesOnly.push("--profile");
        const v = value(), eq = v.indexOf("=");
        if (eq <= 0) throw new Error(`--profile: expected NAME=FLAGS: ${v}`);
        o.profiles[v.slice(0, eq)] = words(v.slice(eq + 1));
        break;
      }
      case "--flags":
        o.extraFlags.push(...words(value()));
        break;
      case "--key":
        o.key = value();
        break;
      case "--seconds":
        o.seconds = num(0.1);
        break;
      case "--streams":
        o.streams = Math.floor(num(1));
        break;
      case "--pings":
        casesOnly.push("--pings");
        o.pings = Math.floor(num(1));
        break;
      case "--ping-seconds":
        casesOnly.push("--ping-seconds");
        o.pingSeconds = num(0.1);
        break;
      case "--ping-size":
        o.pingSize = Math.floor(num(4));
        break;
      case "--warmup":
        o.warmup = num(0);
        break;
      case "--loss":
        casesOnly.push("--loss");
        o.loss = num(0);
        if (o.loss >= 1) throw new Error("--loss: expected a probability below 1");
        break;
      case "--delay-ms":
        casesOnly.push("--delay-ms");
        o.delayMs = num(0);
        break;
      case "--seed":
        o.seed = Math.floor(num(0));
        break;
      case "--burst":
        o.burst = num(1);
        break;
      case "--deno-flags":
        o.denoFlags.push(...words(value()));
        break;
      case "--cpu-prof":
        o.cpuProfDir = value();
        break;
      case "--sources":
        o.sources = true;
        break;
      case "--tcp":
        casesOnly.push("--tcp");
        o.tcp = true;
        break;
      case "--only": {
        const v = value();
        if (v !== "ours" && v !== "go") throw new Error(`--only: expected ours or go: ${v}`);
        o.pairs = [v];
        break;
      }
      case "--scenarios": {
        casesOnly.push("--scenarios");
        const list = value().split(",").map((x) => x.trim());
        for (const x of list) {
          if (x !== "ping" && x !== "bulk" && x !== "parallel") {
            throw new Error(`--scenarios: expected ping, bulk or parallel: ${x}`);
          }
        }
        o.scenarios = (["ping", "bulk", "parallel"] as const).filter((x) => list.includes(x));
        break;
      }
      case "--goals":
        o.goals = true;
        break;
      case "--cold-pings":
        o.goal.coldPings = Math.floor(num(1));
        break;
      case "--warm-pings":
        o.goal.warmPings = Math.floor(num(1));
        break;
      case "--idle-seconds":
        o.goal.idleSeconds = num(0);
        break;
      case "--after-seconds":
        o.goal.afterSeconds = num(0);
        break;
      case "--bad-pings":
        o.goal.badPings = Math.floor(num(1));
        break;
      case "--bad-seconds":
        o.goal.badSeconds = num(1);
        break;
      case "--bad-loss":
        o.goal.badLoss = num(0);
        if (o.goal.badLoss >= 1) throw new Error("--bad-loss: expected a probability below 1");
        break;
      case "--bad-burst":
        o.goal.badBurst = num(1);
        break;
      case "--bad-delay-ms":
        o.goal.badDelayMs = num(0);
        break;
      case "--short-conns":
        o.goal.shortConns = Math.floor(num(1));
        break;
      case "--short-parallel":
        o.goal.shortParallel = Math.floor(num(1));
        break;
      case "--no-ceiling":
        o.noCeiling = true;
        break;
      case "--json":
        o.jsonPath = value();
        break;
      case "--go-client":
        o.goClient = value();
        break;
      case "--go-server":
        o.goServer = value();
        break;
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (o.goals && casesOnly.length > 0) {
    throw new Error(`--goals measures fixed scenarios: ${casesOnly.join(", ")} do not apply`);
  }
  if (o.tcp && !casesGiven) cases = "direct/default,direct/none";
  for (const c of cases.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const [path, profile = "default", ...rest] = c.split("/");
    if (rest.length > 0 || (path !== "direct" && path !== "lossy")) {
      throw new Error(`--cases: expected direct/PROFILE or lossy/PROFILE: ${c}`);
    }
    if (!(profile in o.profiles)) {
      throw new Error(`--cases: unknown profile ${profile} (define it with --profile)`);
    }
    o.cases.push({ path, profile });
  }
  if (o.cases.length === 0) throw new Error("--cases: nothing to run");
  if (o.tcp && o.cases.some((c) => c.path === "lossy")) {
    throw new Error("--tcp: the lossy relay carries UDP only; use --cases direct/...");
  }
  return o;
}
