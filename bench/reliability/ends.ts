/**
 * The processes of a reliability check: the target (`target.ts`), a kcptun server and client of
 * one implementation (ours, started as a user starts it, or Debian's Go kcptun) with the same
 * flags, and optionally the lossy relay between them; readings of their memory, descriptors and
 * SNMP counters; restarts of either end on the same ports.
 *
 * @module
 */

import { V8_FLAGS_ARG } from "../../cli/v8_flags.ts";
import { freePort } from "../../tests/interop/harness.ts";
import { type Child, spawnChild, waitForLine } from "../tunnel/child.ts";
import { openFds, residentBytes } from "../tunnel/proc_stats.ts";
import { REPO_ROOT, snmpDump } from "../tunnel/run.ts";
import { parseCounters, type TargetCounters } from "./target.ts";

/** Which implementation a check runs. */
export type Pair = "ours" | "go";

/** Debian's Go kcptun. */
export const GO_BINARIES = { client: "/usr/bin/kcptun-client", server: "/usr/bin/kcptun-server" };

/** The key every check uses (explicit on both ends). */
export const KEY = "reliability-suite-key";

const MIB = 1 << 20;

/** How our processes are started (Go's are unaffected). */
export interface DenoOptions {
  /** Extra `deno run` flags (e.g. `--v8-flags=--trace-gc`). */
  denoFlags?: string[];
  /** Write a V8 CPU profile of each of our ends into this directory. */
  cpuProfDir?: string | null;
  /** Names the profile and log files: `<tag>-client.cpuprofile`, `<tag>-client.log`. */
  tag?: string;
  /** Write each end's output (both pairs) here when the tunnel stops. */
  logDir?: string | null;
}

/** What {@link startTunnel} is told. */
export interface TunnelOptions extends DenoOptions {
  /** Flags for both ends beyond -l/-r/-t (default `-key KEY`). */
  flags?: string[];
  /** Server only. */
  serverFlags?: string[];
  /** Client only. */
  clientFlags?: string[];
  /** The lossy relay (its own process) between client and server. */
  relay?: { loss: number; delayMs: number; burst?: number; seed?: number };
  /**
   * Where the client sends instead of the server, given the server's port (a relay or tap in
   * this process). Ignored with `relay`.
   */
  route?: (serverPort: number) => number | Promise<number>;
}

/** One end's command, for restarts. */
interface EndSpec {
  role: "client" | "server";
  args: string[];
}

/** A running tunnel. */
export interface Tunnel {
  /** Which implementation. */
  readonly pair: Pair;
  /** The target. */
  readonly target: Child;
  /** The port the client listens on (connect here). */
  readonly clientPort: number;
  /** The server's UDP port. */
  readonly serverPort: number;
  /** The lossy relay, when asked for. */
  readonly relay: Child | null;
  /** The server now (a restart replaces it). */
  readonly server: Child;
  /** The client now (a restart replaces it). */
  readonly client: Child;
  /** SIGKILLs `role` and waits until it is gone. */
  kill(role: "client" | "server"): Promise<void>;
  /** Starts `role` again with the same command line; resolves once it is ready. */
  restart(role: "client" | "server"): Promise<void>;
  /** The target's counters (via SIGUSR2), or null when it does not answer. */
  targetCounters(): Promise<TargetCounters | null>;
  /** Stops everything it started. */
  stop(): Promise<void>;
}

/** Every child the suite started and not yet stopped, for the SIGINT handler. */
export const liveChildren: Set<Child> = new Set();

function track(c: Child): Child {
  liveChildren.add(c);
  c.exited.finally(() => liveChildren.delete(c));
  return c;
}

/** Starts one end of `pair`. */
export function spawnEnd(
  pair: Pair,
  role: "client" | "server",
  args: string[],
  o: DenoOptions = {},
): Child {
  if (pair === "go") return track(spawnChild(`Go ${role}`, GO_BINARIES[role], args));
  // As the client/server tasks run them (a later --v8-flags in denoFlags wins).
  const deno = [V8_FLAGS_ARG, ...o.denoFlags ?? []];
  if (o.cpuProfDir) {
    deno.push(
      "--cpu-prof",
      `--cpu-prof-dir=${o.cpuProfDir}`,
      `--cpu-prof-name=${o.tag ?? "ours"}-${role}.cpuprofile`,
    );
  }
  return track(spawnChild(
    `our ${role}`,
    Deno.execPath(),
    ["run", "-A", ...deno, `cli/${role}.ts`, ...args],
    REPO_ROOT,
  ));
}

/** Starts a script of this folder (or bench/tunnel) and waits for its `listening <port>`. */
export async function startScript(
  name: string,
  path: string,
  args: string[] = [],
): Promise<{ child: Child; port: number }> {
  const child = track(spawnChild(name, Deno.execPath(), ["run", "-A", path, ...args], REPO_ROOT));
  const m = await waitForLine(child, /^listening (\d+)$/m, 30000);
  return { child, port: Number(m[1]) };
}

function udpBound(port: number): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port }).close();
    return false;
  } catch {
    return true;
  }
}

/** Waits until `child` logged `key derivation done` and, for a server, bound its UDP port. */
async function ready(child: Child, role: "client" | "server", udpPort: number): Promise<void> {
  await waitForLine(child, /key derivation done/, 30000);
  if (role === "client") return;
  const deadline = performance.now() + 30000;
  while (!udpBound(udpPort)) {
    if (child.done || performance.now() > deadline) {
      throw new Error(`${child.name} did not bind UDP ${udpPort}\n${child.output().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts target, server, optional relay and client of `pair`; resolves once all are ready. */
export async function startTunnel(pair: Pair, o: TunnelOptions = {}): Promise<Tunnel> {
  const started: Child[] = [];
  try {
    const target = await startScript("target", "bench/reliability/target.ts");
    started.push(target.child);
    const serverPort = freePort(), clientPort = freePort();
    const common = o.flags ?? ["-key", KEY];
    const specs: Record<"client" | "server", EndSpec> = {
      server: {
        role: "server",
        args: [
          "-l",
          `127.0.0.1:${serverPort}`,
          "-t",
          `127.0.0.1:${target.port}`,
          ...common,
          ...o.serverFlags ?? [],
        ],
      },
      client: { role: "client", args: [] },
    };
    const ends: Record<"client" | "server", Child> = {} as Record<"client" | "server", Child>;
    const launch = async (role: "client" | "server") => {
      const c = spawnEnd(pair, role, specs[role].args, o);
      started.push(c);
      ends[role] = c;
      await ready(c, role, serverPort);
    };
    await launch("server");
    let remotePort = serverPort;
    let relay: Child | null = null;
    if (o.relay) {
      const r = await startScript("lossy relay", "bench/tunnel/lossy_relay.ts", [
        "--server-port",
        String(serverPort),
        "--loss",
        String(o.relay.loss),
        "--delay-ms",
        String(o.relay.delayMs),
        "--burst",
        String(o.relay.burst ?? 1),
        "--seed",
        String(o.relay.seed ?? 1),
      ]);
      relay = r.child;
      started.push(relay);
      remotePort = r.port;
    } else if (o.route) {
      remotePort = await o.route(serverPort);
    }
    specs.client.args = [
      "-l",
      `127.0.0.1:${clientPort}`,
      "-r",
      `127.0.0.1:${remotePort}`,
      ...common,
      ...o.clientFlags ?? [],
    ];
    await launch("client");
    return {
      pair,
      target: target.child,
      clientPort,
      serverPort,
      relay,
      get server() {
        return ends.server;
      },
      get client() {
        return ends.client;
      },
      async kill(role) {
        const c = ends[role];
        try {
          Deno.kill(c.pid, "SIGKILL");
        } catch { /* already gone */ }
        await c.exited;
      },
      restart: (role) => launch(role),
      async targetCounters() {
        const t = target.child;
        const lines = () => (t.output().match(/^conns .*\n/gm) ?? []).length;
        const before = lines();
        try {
          Deno.kill(t.pid, "SIGUSR2");
        } catch {
          return null;
        }
        const deadline = performance.now() + 3000;
        while (lines() === before) {
          if (t.done || performance.now() > deadline) return null;
          await sleep(10);
        }
        return parseCounters(t.output());
      },
      async stop() {
        // Client first, as a user would stop it.
        for (const c of [ends.client, relay, ends.server, ...started]) if (c) await c.stop();
        if (o.logDir) {
          for (const role of ["client", "server"] as const) {
            const name = `${o.logDir}/${o.tag ?? pair}-${role}.log`;
            await Deno.writeTextFile(name, ends[role].output());
          }
        }
      },
    };
  } catch (e) {
    for (const c of started.reverse()) await c.stop();
    throw e;
  }
}

/** Resident memory (VmRSS) of `pid` in MiB (NaN when it is gone). */
export function rssMiB(pid: number): number {
  return residentBytes(pid).now / MIB;
}

/** Peak resident memory (VmHWM) of `pid` in MiB. */
export function peakRssMiB(pid: number): number {
  return residentBytes(pid).peak / MIB;
}

/** RSS (MiB) and open descriptors of one process at one moment. */
export interface ProcReading {
  /** VmRSS, MiB. */
  rss: number;
  /** Open file descriptors. */
  fds: number;
}

/** Reads {@link ProcReading} of `pid`. */
export function readProc(pid: number): ProcReading {
  return { rss: rssMiB(pid), fds: openFds(pid) };
}

/** The end's kcptun SNMP counters (SIGUSR1 dump, same format in both implementations). */
export function snmpOf(child: Child, pair: Pair): Promise<Record<string, number> | null> {
  return snmpDump(child, pair);
}

/** Lines `child` has printed so far. */
export function lineCount(child: Child): number {
  return child.output().split("\n").length - 1;
}

/** Occurrences of `needle` in `child`'s output so far. */
export function countIn(child: Child, needle: string): number {
  return child.output().split(needle).length - 1;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when Debian's kcptun is installed. */
export function haveGo(): boolean {
  try {
    return Deno.statSync(GO_BINARIES.client).isFile && Deno.statSync(GO_BINARIES.server).isFile;
  } catch {
    return false;
  }
}

/**
 * Connects to the tunnel and echoes `size` bytes once; resolves with ms, or throws (also when
 * `signal` aborts it).
 */
export async function echoOnce(
  port: number,
  size = 64,
  timeoutMs = 5000,
  signal?: AbortSignal,
): Promise<number> {
  const t0 = performance.now();
  const data = new Uint8Array(size);
  crypto.getRandomValues(data);
  let conn: Deno.TcpConn | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort = () => {};
  const timeout = new Promise<never>((_, rej) => {
    const fail = (why: string) => {
      try {
        conn?.close();
      } catch { /* closed */ }
      rej(new Error(why));
    };
    timer = setTimeout(() => fail(`no echo within ${timeoutMs} ms`), timeoutMs);
    onAbort = () => fail("aborted");
    signal?.addEventListener("abort", onAbort);
  });
  try {
    return await Promise.race([
      (async () => {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.setNoDelay(true);
        let off = 0;
        while (off < size) off += await conn.write(data.subarray(off));
        const got = new Uint8Array(size);
        let n = 0;
        while (n < size) {
          const r = await conn.read(got.subarray(n));
          if (r === null) throw new Error(`closed after ${n}/${size} bytes`);
          n += r;
        }
        for (let i = 0; i < size; i++) {
          if (got[i] !== data[i]) throw new Error(`echo differs at ${i}`);
        }
        return performance.now() - t0;
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    try {
      (conn as Deno.TcpConn | null)?.close();
    } catch { /* closed */ }
  }
}

/** Formats a number for a result line: NaN as `-`, else `digits` significant-ish decimals. */
export function fmt(v: number, digits = 1): string {
  if (!Number.isFinite(v)) return "-";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
}
