/**
 * `deno task demo`: a kcptun-ts tunnel over a simulated lossy link, all on loopback.
 *
 *   echo target ⇄ server ⇄ lossy link (loss, delay) ⇄ client ⇄ streams of checked traffic
 *
 * The server and the client are separate processes running the real entry points
 * (`serverMain` / `clientMain` of `cli/server.ts` / `cli/client.ts`: kcptun's flags, startup,
 * signals, exit) through `cli/demo/end.ts`, which also reports each end's SNMP counters and
 * KCP smoothed RTT on stdout every 250 ms. The echo target, the lossy link and the traffic run
 * in this process. It moves data for a few seconds with one status line refreshed in place,
 * stops both ends with SIGTERM, prints a summary and exits 0 when every byte came back intact
 * and both ends exited 0. Everything binds to 127.0.0.1.
 *
 *   deno run -A cli/demo.ts [--duration 8] [--loss 2] [--delay 20] [--streams 4] [--seed 1]
 *                           [--mode fast] [--verbose]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startEchoTarget } from "./demo/echo.ts";
import type { EndReport } from "./demo/end.ts";
import { LossyLink } from "./demo/lossy_link.ts";
import { EchoLoad, type StreamResult } from "./demo/load.ts";
import { formatMegabytes as mb, formatMs, formatRate as rate } from "./stats.ts";

/** Settings of one demo run. */
export interface DemoOptions {
  /** Seconds of traffic (default 8). */
  readonly duration: number;
  /** Loss per datagram and direction, in percent (default 2). */
  readonly lossPercent: number;
  /** One-way delay of the link in ms (default 20). */
  readonly delayMs: number;
  /** Parallel streams (default 4). */
  readonly streams: number;
  /** Seed of the link's losses and the payloads (default 1). */
  readonly seed: number;
  /** kcptun `-mode` for both ends (default `fast`, kcptun's default). */
  readonly mode: string;
  /** Print both ends' logs when they exit. */
  readonly verbose: boolean;
}

/** The defaults `deno task demo` runs with. */
export const DEMO_DEFAULTS: DemoOptions = {
  duration: 8,
  lossPercent: 2,
  delayMs: 20,
  streams: 4,
  seed: 1,
  mode: "fast",
  verbose: false,
};

/** What a run measured. */
export interface DemoSummary {
  /** Seconds of traffic, including the drain at the end. */
  readonly seconds: number;
  /** Bytes echoed (each went through the tunnel both ways). */
  readonly echoed: number;
  /** Each stream's result. */
  readonly streams: readonly StreamResult[];
  /** Datagrams that entered the link, both directions. */
  readonly linkPackets: number;
  /** Of which dropped. */
  readonly linkDropped: number;
  /** Segments KCP sent again, both ends (`RetransSegs`). */
  readonly retransmits: number;
  /** Of which fast, early and timeout retransmissions (`FastRetransSegs`, `EarlyRetransSegs`, `LostSegs`). */
  readonly retransmitKinds: readonly [number, number, number];
  /** Lost datagrams rebuilt by FEC, both ends (`FECRecovered`). */
  readonly fecRecovered: number;
  /** The client session's smoothed RTT at the end (ms). */
  readonly srttMs: number;
  /** Exit codes of the server and the client after SIGTERM. */
  readonly exitCodes: readonly [number, number];
  /** True when every stream came back intact and both ends exited 0. */
  readonly ok: boolean;
}

const KEY = "kcptun-ts demo";
const ROOT = new URL("../", import.meta.url);

/** `cli/demo/end.ts` running one end, with its latest report. */
class EndProcess {
  readonly role: "client" | "server";
  readonly #child: Deno.ChildProcess;
  #stderr = "";
  latest: EndReport | null = null;
  /** The end's port once it is up. */
  readonly ready: Promise<number>;
  readonly #done: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<unknown>;

  constructor(role: "client" | "server", args: string[]) {
    this.role = role;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", new URL("cli/demo/end.ts", ROOT).pathname, role, ...args],
      cwd: ROOT.pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#done = this.#child.status;
    let onReady: (port: number) => void = () => {};
    this.ready = new Promise<number>((resolve, reject) => {
      onReady = resolve;
      this.#done.then((s) =>
        reject(new Error(`${role} exited with code ${s.code}: ${this.#stderr.trim()}`))
      );
    });
    this.ready.catch(() => {});
    const readLines = async () => {
      let buf = "";
      for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const v = JSON.parse(line);
            if (v.ready) onReady(v.port);
            else this.latest = v as EndReport;
          } catch { /* not ours */ }
        }
      }
    };
    const readErr = async () => {
      for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    };
    this.#pumps = Promise.allSettled([readLines(), readErr()]);
  }

  /** What the end logged. */
  get log(): string {
    return this.#stderr;
  }

  /** SIGTERM (SIGKILL after `ms`); resolves with the exit code. */
  async stop(ms = 6000): Promise<number> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, ms);
    const status = await this.#done;
    clearTimeout(timer);
    await this.#pumps;
    return status.code;
  }
}

const counter = (r: EndReport | null, f: string) => r?.snmp[f] ?? 0;

/**
 * Runs the demo: starts the echo target, the server and the client (each its own process,
 * `cli/demo/end.ts`) and the lossy link between them, moves data for `duration` seconds showing
 * a status line through `out`, stops everything and returns the summary.
 */
export async function runDemo(
  options: DemoOptions,
  io: { out: (text: string) => void; live: boolean },
): Promise<DemoSummary> {
  const o = options;
  const echo = startEchoTarget("127.0.0.1");
  const mode = ["-mode", o.mode];
  let server: EndProcess | null = null;
  let client: EndProcess | null = null;
  let link: LossyLink | null = null;
  let load: EchoLoad | null = null;
  try {
    const serverArgs = ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", KEY, ...mode];
    server = new EndProcess("server", [...serverArgs, "-quiet"]);
    const serverPort = await server.ready;
    link = new LossyLink({
      hostname: "127.0.0.1",
      targetHostname: "127.0.0.1",
      targetPort: serverPort,
      loss: o.lossPercent / 100,
      delayMs: o.delayMs,
      seed: o.seed,
    });
    const clientArgs = ["-l", "127.0.0.1:0", "-r", `127.0.0.1:${link.port}`, "-key", KEY, ...mode];
    client = new EndProcess("client", [...clientArgs, "-quiet"]);
    const clientPort = await client.ready;
    const shown = (args: string[], port: number) =>
      args.map((a) => a === "127.0.0.1:0" ? `127.0.0.1:${port}` : a === KEY ? `"${KEY}"` : a)
        .join(" ");
    io.out(
      `kcptun-ts demo: ${o.streams} streams ⇄ client ⇄ lossy link (${o.lossPercent}% loss, ` +
        `${o.delayMs} ms each way, seed ${o.seed}) ⇄ server ⇄ echo, for ${o.duration} s\n` +
        `  server: deno run -A cli/server.ts ${shown(serverArgs, serverPort)}\n` +
        `  link:   127.0.0.1:${link.port} → 127.0.0.1:${serverPort}\n` +
        `  client: deno run -A cli/client.ts ${shown(clientArgs, clientPort)}\n`,
    );

    load = await EchoLoad.start({
      hostname: "127.0.0.1",
      port: clientPort,
      streams: o.streams,
      seed: o.seed,
      // Several times the link's bandwidth-delay product, yet a drain of well under a second.
      maxInFlight: 256 << 10,
    });
    const t0 = performance.now();
    const [linkRef, serverRef, clientRef, loadRef] = [link, server, client, load];
    const sum = (f: string) => counter(serverRef.latest, f) + counter(clientRef.latest, f);
    // Throughput over the last second.
    const samples: Array<[number, number]> = [[t0, 0]];
    const status = (label: string) => {
      const now = performance.now();
      const got = loadRef.received;
      samples.push([now, got]);
      while (samples.length > 2 && now - samples[1][0] >= 1000) samples.shift();
      const [ts, bs] = samples[0];
      const dropped = linkRef.up.dropped + linkRef.down.dropped;
      const packets = linkRef.up.packets + linkRef.down.packets;
      return `${((now - t0) / 1000).toFixed(1).padStart(5)} s │` +
        `${rate(got - bs, (now - ts) / 1000).padStart(11)} │` +
        `${mb(got).padStart(9)} │` +
        `${formatMs(clientRef.latest?.srtt ?? 0).padStart(8)} │` +
        `${String(sum("RetransSegs")).padStart(8)} │` +
        `${String(sum("FECRecovered")).padStart(8)} │` +
        ` ${dropped}/${packets}${label}`;
    };
    // In place: one line, cut to the terminal's width so that it never wraps.
    const columns = () => {
      try {
        const c = Deno.consoleSize().columns;
        return c >= 40 ? c - 1 : 100;
      } catch {
        return 100;
      }
    };
    const show = (label: string) => {
      if (io.live) io.out(`\r\x1b[2K${status(label).slice(0, columns())}`);
      else io.out(status(label) + "\n");
    };
    io.out(
      `${"time".padStart(7)} │${"throughput".padStart(11)} │${"echoed".padStart(9)} │` +
        `${"srtt".padStart(8)} │${"retrans".padStart(8)} │${"FEC".padStart(8)} │ link drops\n`,
    );
    const period = io.live ? 250 : 1000;
    const end = t0 + o.duration * 1000;
    while (performance.now() < end) {
      const wait = Math.min(period, Math.max(0, end - performance.now()));
      await new Promise((r) => setTimeout(r, wait));
      show("");
    }
    let lastShown = performance.now();
    const results = await load.stop(10000, () => {
      if (io.live && performance.now() - lastShown >= 250) {
        show("  draining");
        lastShown = performance.now();
      }
    });
    load = null;
    const seconds = (performance.now() - t0) / 1000;
    // One more report from each end, so the counters include the drain.
    await new Promise((r) => setTimeout(r, 300));
    if (io.live) io.out(`\r\x1b[2K${status("").slice(0, columns())}\n`);
    const srttMs = client.latest?.srtt ?? 0;
    const kinds = [sum("FastRetransSegs"), sum("EarlyRetransSegs"), sum("LostSegs")] as const;
    const retransmits = sum("RetransSegs");
    const fecRecovered = sum("FECRecovered");
    const clientCode = await client.stop();
    const serverCode = await server.stop();
    if (o.verbose) io.out(`--- server log\n${server.log}--- client log\n${client.log}`);
    client = server = null;
    const echoed = results.reduce((a, r) => a + r.received, 0);
    return {
      seconds,
      echoed,
      streams: results,
      linkPackets: link.up.packets + link.down.packets,
      linkDropped: link.up.dropped + link.down.dropped,
      retransmits,
      retransmitKinds: kinds,
      fecRecovered,
      srttMs,
      exitCodes: [serverCode, clientCode],
      ok: results.every((r) => r.intact) && echoed > 0 && serverCode === 0 && clientCode === 0,
    };
  } finally {
    if (load) await load.stop(0);
    await client?.stop(2000);
    await server?.stop(2000);
    await link?.close();
    await echo.close();
  }
}

/** The summary lines. */
export function summaryText(s: DemoSummary, o: DemoOptions): string {
  const intact = s.streams.filter((r) => r.intact).length;
  const lines = [
    `summary: ${s.seconds.toFixed(1)} s, ${mb(s.echoed)} echoed through the tunnel ` +
    `(${
      rate(s.echoed, s.seconds)
    } each way), ${intact}/${s.streams.length} streams intact (sha256)`,
    `  link: ${o.lossPercent}% loss and ${o.delayMs} ms each way: ${s.linkDropped} of ` +
    `${s.linkPackets} datagrams dropped`,
    `  kcp:  srtt ${formatMs(s.srttMs)}, ${s.retransmits} segments retransmitted ` +
    `(fast ${s.retransmitKinds[0]}, early ${s.retransmitKinds[1]}, timeout ${
      s.retransmitKinds[2]
    }), ${s.fecRecovered} lost datagrams rebuilt by FEC`,
  ];
  if (s.exitCodes[0] !== 0 || s.exitCodes[1] !== 0) {
    lines.push(`  exit codes after SIGTERM: server ${s.exitCodes[0]}, client ${s.exitCodes[1]}`);
  }
  for (const [i, r] of s.streams.entries()) {
    if (!r.intact) lines.push(`  stream ${i}: ${r.error}`);
  }
  return lines.join("\n") + "\n";
}

const USAGE = `kcptun-ts demo: a tunnel over a simulated lossy link, on loopback only.

usage: deno task demo [--duration S] [--loss PERCENT] [--delay MS] [--streams N]
                      [--seed N] [--mode normal|fast|fast2|fast3] [--verbose]

  --duration  seconds of traffic (default ${DEMO_DEFAULTS.duration})
  --loss      datagrams dropped per direction, percent (default ${DEMO_DEFAULTS.lossPercent})
  --delay     one-way delay in ms (default ${DEMO_DEFAULTS.delayMs})
  --streams   parallel streams (default ${DEMO_DEFAULTS.streams})
  --seed      seed of losses and payloads (default ${DEMO_DEFAULTS.seed})
  --mode      kcptun -mode of both ends (default ${DEMO_DEFAULTS.mode})
  --verbose   print both ends' logs at the end
`;

/** Parses the demo's flags; a string is an error message. */
export function parseDemoArgs(args: string[]): DemoOptions | "help" | string {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: "string" },
        loss: { type: "string" },
        delay: { type: "string" },
        streams: { type: "string" },
        seed: { type: "string" },
        mode: { type: "string" },
        verbose: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    return (e as Error).message;
  }
  if (parsed.help) return "help";
  const num = (name: string, v: string | undefined, def: number, min: number, max: number) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Error(`--${name} ${v}: expected a number from ${min} to ${max}`);
    }
    return n;
  };
  try {
    const mode = parsed.mode ?? DEMO_DEFAULTS.mode;
    if (!["normal", "fast", "fast2", "fast3"].includes(mode)) {
      throw new Error(`--mode ${mode}: expected normal, fast, fast2 or fast3`);
    }
    return {
      duration: num("duration", parsed.duration, DEMO_DEFAULTS.duration, 0.5, 3600),
      lossPercent: num("loss", parsed.loss, DEMO_DEFAULTS.lossPercent, 0, 90),
      delayMs: num("delay", parsed.delay, DEMO_DEFAULTS.delayMs, 0, 2000),
      streams: Math.floor(num("streams", parsed.streams, DEMO_DEFAULTS.streams, 1, 64)),
      seed: Math.floor(num("seed", parsed.seed, DEMO_DEFAULTS.seed, 0, 2 ** 32 - 1)),
      mode,
      verbose: parsed.verbose ?? false,
    };
  } catch (e) {
    return (e as Error).message;
  }
}

async function main(): Promise<number> {
  const enc = new TextEncoder();
  let stdoutOpen = true;
  const out = (text: string) => {
    if (!stdoutOpen) return;
    const bytes = enc.encode(text);
    try {
      let off = 0;
      while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
    } catch (e) {
      // `deno task demo | head`: keep going (and clean up), just stop printing.
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      stdoutOpen = false;
    }
  };
  const parsed = parseDemoArgs(Deno.args);
  if (parsed === "help") {
    out(USAGE);
    return 0;
  }
  if (typeof parsed === "string") {
    console.error(`demo: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  const summary = await runDemo(parsed, { out, live: Deno.stdout.isTerminal() });
  out(summaryText(summary, parsed));
  return summary.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
