/**
 * End-to-end helpers: our client and server as real subprocesses (`deno run -A cli/client.ts`)
 * or in process (`startClientEnd` / `startServerEnd` with the real flag parser), echo targets on
 * TCP and unix sockets, and a parallel transfer whose bytes are checked with SHA-256.
 */

import { startClientEnd, startServerEnd } from "../../cli/run.ts";
import { BUNDLES } from "../../cli/bundle.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import type { KcptunClient } from "../../runtime/client.ts";
import type { KcptunServer } from "../../runtime/server.ts";
import { Logger } from "../../cli/logging.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { sleep } from "../support/net.ts";

/** The repository root (subprocesses run there, so `deno.json` and relative plugin paths apply). */
export const REPO = new URL("../../", import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// Subprocesses

/** A running `deno run … cli/….ts` (or `deno task …`) with its collected output. */
export interface Proc {
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout and stderr. */
  output(): string;
  /** Resolves with the exit status once the process ended and its output is read. */
  readonly done: Promise<Deno.CommandStatus>;
  /** Sends `sig` (ignored when the process is gone). */
  signal(sig: Deno.Signal): void;
  /** SIGKILL unless it has ended, then waits (for `finally`). */
  kill(): Promise<void>;
}

/**
 * Runs `deno run -A --quiet <script> args` in the repository root (`--quiet`: Deno's own
 * diagnostics, such as `Download …` on a cold cache, must not mix with what the tests compare).
 */
export function spawnDeno(script: string, args: string[], cwd = REPO): Proc {
  return spawnDenoWith(["-A", "--quiet"], script, args, { cwd });
}

/**
 * Runs `deno run <flags> <script> args` (flags exactly as given), with `env` added to the
 * environment.
 */
export function spawnDenoWith(
  flags: string[],
  script: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Proc {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, REPO + script, ...args],
    cwd: opts.cwd ?? REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  return wrap(child);
}

function wrap(child: Deno.ChildProcess): Proc {
  let out = "", err = "", all = "";
  const pump = async (s: ReadableStream<Uint8Array>, isErr: boolean) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const t = dec.decode(chunk, { stream: true });
      if (isErr) err += t;
      else out += t;
      all += t;
    }
  };
  const pumps = Promise.allSettled([pump(child.stdout, false), pump(child.stderr, true)]);
  let ended = false;
  const done = child.status.then(async (s) => {
    ended = true;
    await pumps;
    return s;
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    output: () => all,
    done,
    signal(sig) {
      if (ended) return;
      try {
        child.kill(sig);
      } catch { /* already gone */ }
    },
    async kill() {
      if (!ended) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await done;
    },
  };
}

/** A `deno task client|server …` run with its output, and the task's own `deno run` process. */
export interface TaskProc extends Proc {
  /** The pid of the `deno run` the task started (signals go there: the task does not relay them). */
  pid(): Promise<number>;
}

/**
 * Runs `deno task <task> args` from `cwd` with the repository's deno.json, as a user in `cwd`
 * types it. `INIT_CWD` is removed from the environment so that `deno task` sets it to `cwd`, as
 * it does in a fresh shell (under `deno task test` it would keep the outer task's value).
 */
export function spawnTask(task: "client" | "server", args: string[], cwd: string): TaskProc {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  env.NO_COLOR = "1";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", REPO + "deno.json", task, ...args],
    cwd,
    clearEnv: true,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const proc = wrap(child);
  let runPid: number | null = null;
  const pid = async () => {
    const script = BUNDLES[task].output;
    const deadline = performance.now() + 15000;
    while (runPid === null) {
      runPid = childWithArg(child.pid, script);
      if (runPid !== null) break;
      if (performance.now() > deadline) {
        throw new Error(`no deno run child of deno task ${task}; output:\n${proc.output()}`);
      }
      await sleep(25);
    }
    return runPid;
  };
  return {
    ...proc,
    pid,
    signal(sig) {
      const p = runPid ?? childWithArg(child.pid, BUNDLES[task].output);
      if (p === null) return;
      try {
        Deno.kill(p, sig);
      } catch { /* already gone */ }
    },
    async kill() {
      // The deno run child first: killing only the task would leave it running.
      const p = runPid ?? childWithArg(child.pid, BUNDLES[task].output);
      if (p !== null) {
        try {
          Deno.kill(p, "SIGKILL");
        } catch { /* already gone */ }
      }
      await proc.kill();
    },
  };
}

/** A child process of `parent` (any thread's) whose command line has `arg`, or null. */
function childWithArg(parent: number, arg: string): number | null {
  let threads: Deno.DirEntry[];
  try {
    threads = [...Deno.readDirSync(`/proc/${parent}/task`)];
  } catch {
    return null;
  }
  for (const t of threads) {
    let children: string;
    try {
      children = Deno.readTextFileSync(`/proc/${parent}/task/${t.name}/children`);
    } catch {
      continue;
    }
    for (const c of children.trim().split(/\s+/).filter((x) => x !== "")) {
      try {
        const cmd = Deno.readTextFileSync(`/proc/${c}/cmdline`).split("\0");
        if (cmd.some((a) => a.endsWith(arg))) return Number(c);
      } catch { /* gone */ }
    }
  }
  return null;
}

/**
 * True when process `pid` holds a listening TCP socket on 127.0.0.1:9229 (Deno's inspector).
 * Read from /proc, so that another process's inspector does not count.
 */
export function ownsInspectorPort(pid: number): boolean {
  const inodes = new Set<string>();
  for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address 127.0.0.1:9229 in /proc's hex, state 0A = LISTEN.
    if (f[1] === `0100007F:${(9229).toString(16).toUpperCase()}` && f[3] === "0A") inodes.add(f[9]);
  }
  if (inodes.size === 0) return false;
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`).match(/^socket:\[(\d+)\]$/);
      if (m && inodes.has(m[1])) return true;
    } catch { /* closed meanwhile */ }
  }
  return false;
}

/** Our server as a subprocess. */
export function spawnServer(args: string[], cwd?: string): Proc {
  return spawnDeno("cli/server.ts", args, cwd);
}

/** Our client as a subprocess. */
export function spawnClient(args: string[], cwd?: string): Proc {
  return spawnDeno("cli/client.ts", args, cwd);
}

/** Waits until `text()` matches (or fails after `timeoutMs`, showing `text()`). */
export async function waitFor(
  text: () => string,
  needle: string | RegExp,
  timeoutMs = 10000,
  what = "output",
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const t = text();
    const m = typeof needle === "string" ? (t.includes(needle) ? needle : null) : t.match(needle);
    if (m !== null) return typeof m === "string" ? m : m[0];
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${needle} in ${what}:\n${t}`);
    }
    await sleep(25);
  }
}

/** Resolves with `p`'s status, or SIGKILLs it and fails after `timeoutMs`. */
export async function exitWithin(p: Proc, timeoutMs: number): Promise<Deno.CommandStatus> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs));
  const r = await Promise.race([p.done, timeout]);
  clearTimeout(timer);
  if (r === "timeout") {
    await p.kill();
    throw new Error(`process did not exit within ${timeoutMs} ms; output:\n${p.output()}`);
  }
  return r;
}

/** The client's bound TCP port from its `listening on:` startup line. */
export async function listeningPort(p: { output(): string }, timeoutMs = 10000): Promise<number> {
  const m = await waitFor(p.output, /listening on: \S*:(\d+)\n/, timeoutMs, "client log");
  return Number(m.match(/:(\d+)\n$/)![1]);
}

// ---------------------------------------------------------------------------------------------
// In process

/** Log lines collected from one end. */
export class LogLines {
  /** Every line, without timestamps. */
  readonly lines: string[] = [];
  /** The logger writing here. */
  readonly logger: Logger;

  constructor(quiet = false) {
    this.logger = new Logger({
      quiet,
      sink: {
        // Drop Go's `2006/01/02 15:04:05 ` prefix.
        write: (text) => this.lines.push(text.slice(20).replace(/\n$/, "")),
      },
    });
  }

  /** The whole log as text. */
  text = (): string => this.lines.join("\n") + "\n";
}

/** A server and a client running in this process. */
export interface Pair {
  /** The server. */
  readonly server: KcptunServer;
  /** The client. */
  readonly client: KcptunClient;
  /** The server's log. */
  readonly serverLog: LogLines;
  /** The client's log. */
  readonly clientLog: LogLines;
  /** The server's counters. */
  readonly serverSnmp: Snmp;
  /** The client's counters. */
  readonly clientSnmp: Snmp;
  /** Where the client listens (TCP port, 0 for a unix socket). */
  readonly clientPort: number;
  /** Stops both. */
  stop(): Promise<void>;
}

function configOrThrow<T>(
  outcome: { kind: "run"; config: T } | { kind: "exit"; stderr: string },
): T {
  if (outcome.kind === "exit") throw new Error(`config refused: ${outcome.stderr}`);
  return outcome.config;
}

/**
 * Starts our server with `serverArgs` then our client with `clientArgs`, in process, through the
 * real flag parser. Give the server `-l 127.0.0.1:0` and the client `-r 127.0.0.1:SERVER` with
 * the literal `SERVER`: it is replaced by the server's bound port, or by what `route` returns
 * for it (a relay in between).
 */
export async function startPair(
  serverArgs: string[],
  clientArgs: string[],
  opts: { route?: (serverPort: number) => number } = {},
): Promise<Pair> {
  const serverLog = new LogLines(serverArgs.includes("-quiet"));
  const clientLog = new LogLines(clientArgs.includes("-quiet"));
  const serverSnmp = new Snmp();
  const clientSnmp = new Snmp();
  const sc = configOrThrow(parseServerConfig(serverArgs, {}));
  const server = await startServerEnd(sc, { snmp: serverSnmp, logger: serverLog.logger });
  try {
    const port = String(opts.route?.(server.app.ports[0]) ?? server.app.ports[0]);
    const args = clientArgs.map((a) => a.replace("SERVER", port));
    const cc = configOrThrow(parseClientConfig(args, {}));
    const client = await startClientEnd(cc, { snmp: clientSnmp, logger: clientLog.logger });
    return {
      server: server.app,
      client: client.app,
      serverLog,
      clientLog,
      serverSnmp,
      clientSnmp,
      clientPort: client.app.listener.port,
      async stop() {
        await client.stop();
        await server.stop();
      },
    };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Targets and traffic

/** A unix-socket echo server; `close()` stops it and removes the socket file. */
export function startUnixEcho(path: string): { close(): Promise<void>; accepted(): number } {
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        conns.add(conn);
        (async () => {
          try {
            await conn.readable.pipeTo(conn.writable);
          } catch { /* reset */ }
          conns.delete(conn);
        })();
      }
    } catch { /* closed */ }
  })();
  return {
    accepted: () => accepted,
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
      try {
        Deno.removeSync(path);
      } catch { /* gone */ }
    },
  };
}

/** Deterministic pseudo-random bytes (xorshift32), so that failures can be replayed. */
export function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = i & 0xff;
  return out;
}

/** Lowercase hex SHA-256. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where to connect for a transfer. */
export type Endpoint = { port: number; hostname?: string } | { path: string };

/** Connects to a TCP port or a unix socket. */
export function connect(ep: Endpoint): Promise<Deno.Conn> {
  return "path" in ep
    ? Deno.connect({ transport: "unix", path: ep.path })
    : Deno.connect({ hostname: ep.hostname ?? "127.0.0.1", port: ep.port });
}

/** Options of {@link echoTransfer}. */
export interface TransferOptions {
  /** Parallel connections. */
  streams: number;
  /** Bytes sent (and echoed back) per connection. */
  bytes: number;
  /** Seed of the payloads (stream i uses seed + i). */
  seed?: number;
  /** Fails after this long (ms). */
  timeoutMs?: number;
  /** Write chunk size. */
  chunk?: number;
  /** Pause between chunks (ms), to make a stream last. */
  pauseMs?: number;
  /** Delay before opening stream i (ms). */
  staggerMs?: number;
}

/**
 * Opens `streams` connections to `ep` (the client's listener, an echo target behind the tunnel),
 * sends `bytes` seeded bytes on each while reading the echo, and checks the SHA-256 of what came
 * back. Returns the total bytes echoed. Every connection is closed before it returns.
 */
export async function echoTransfer(ep: Endpoint, opts: TransferOptions): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? 30000;
  const chunk = opts.chunk ?? 65536;
  const conns: Deno.Conn[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const progress: number[] = new Array(opts.streams).fill(0);
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      rej(new Error(`transfer timed out after ${timeoutMs} ms; echoed per stream: ${progress}`));
    }, timeoutMs);
  });
  const one = async (i: number) => {
    if (opts.staggerMs) await sleep(opts.staggerMs * i);
    const data = seededBytes(opts.bytes, (opts.seed ?? 1) + i);
    const want = await sha256(data);
    const conn = await connect(ep);
    conns.push(conn);
    let writeError: unknown = null;
    const writer = (async () => {
      for (let off = 0; off < data.length; off += chunk) {
        const end = Math.min(off + chunk, data.length);
        let at = off;
        while (at < end) at += await conn.write(data.subarray(at, end));
        if (opts.pauseMs) await sleep(opts.pauseMs);
      }
    })().catch((e) => writeError = e);
    const got = new Uint8Array(opts.bytes);
    let n = 0;
    while (n < got.length) {
      const r = await conn.read(got.subarray(n));
      if (r === null) {
        const why = writeError ? ` (write: ${writeError})` : "";
        throw new Error(`stream ${i}: closed after ${n}/${opts.bytes} bytes${why}`);
      }
      n += r;
      progress[i] = n;
    }
    await writer;
    if (writeError) throw writeError;
    const have = await sha256(got);
    if (have !== want) throw new Error(`stream ${i}: sha256 ${have}, sent ${want}`);
    conn.close();
    return n;
  };
  try {
    const all = Promise.all(Array.from({ length: opts.streams }, (_, i) => one(i)));
    const sizes = await Promise.race([all, timeout]);
    return sizes.reduce((a, b) => a + b, 0);
  } finally {
    clearTimeout(timer);
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}

/** True when nothing listens on TCP `hostname:port` and UDP `hostname:port` can be bound. */
export function portsFree(
  port: number,
  hostname = "127.0.0.1",
  which: { tcp?: boolean; udp?: boolean } = { tcp: true, udp: true },
): boolean {
  try {
    if (which.tcp) Deno.listen({ hostname, port }).close();
    if (which.udp) Deno.listenDatagram({ transport: "udp", hostname, port }).close();
    return true;
  } catch {
    return false;
  }
}
