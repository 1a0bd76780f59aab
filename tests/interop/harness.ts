/**
 * Interop harness: runs our client/server (`deno run -A cli/client.ts` / `cli/server.ts`) and
 * Debian's Go kcptun as subprocesses, an echo target (TCP or unix socket) in this process, and
 * pushes seeded random data through N parallel TCP connections, checking each echo by sha256.
 *
 * Every case takes its own free ports, so cases could run side by side; everything a case starts
 * is stopped in `finally`, whatever happened. Failures carry the tail of every process's output.
 *
 * @module
 */

import { GO_CLIENT, GO_SERVER } from "../support/kcptun.ts";
import { sleep } from "../support/net.ts";
import { missing } from "../support/requires.ts";

/** Which implementation runs an end. */
export type Impl = "ts" | "go";

const REPO = new URL("../../", import.meta.url);
const CONFIG = new URL("deno.json", REPO).pathname;
/**
 * How our ends run. `--quiet`: Deno's own lines (`Download …` on a cold cache) must not mix with
 * the log lines compared with Go's.
 */
const DENO_RUN = ["run", "-A", "--quiet", "--config", CONFIG];
const CLI = {
  client: new URL("cli/client.ts", REPO).pathname,
  server: new URL("cli/server.ts", REPO).pathname,
};

/**
 * A loopback port free for both UDP and TCP a moment ago, picked at random below the kernel's
 * ephemeral range (32768+): ports the kernel hands out (port 0, outgoing connections, dialled
 * UDP sockets of every test running in parallel) then never collide with it.
 */
export function freePort(hostname = "127.0.0.1"): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    // Never the same port twice from this process: two picks in a row are not yet bound.
    if (handedOut.has(port)) continue;
    try {
      Deno.listenDatagram({ transport: "udp", hostname, port }).close();
      Deno.listen({ hostname, port }).close();
      handedOut.add(port);
      return port;
    } catch { /* taken: try another */ }
  }
  throw new Error("no free port found");
}

const handedOut = new Set<number>();

/** `count` consecutive ports free for UDP and TCP, below the ephemeral range. */
export function freePortRange(count: number, hostname = "127.0.0.1"): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 10000 + Math.floor(Math.random() * 22000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) {
      if (handedOut.has(p)) ok = false;
      try {
        Deno.listenDatagram({ transport: "udp", hostname, port: p }).close();
        Deno.listen({ hostname, port: p }).close();
      } catch {
        ok = false;
      }
    }
    if (ok) {
      for (let p = base; p < base + count; p++) handedOut.add(p);
      return base;
    }
  }
  throw new Error("no free port range found");
}

/** Default shared key of the suite (explicit on both sides, never kcptun's default). */
export const KEY = "interop-suite-key";

// ---------------------------------------------------------------------------------------------
// Processes

/** A subprocess with its collected output (stdout and stderr interleaved). */
export class Proc {
  /** Short name used in failure messages, e.g. "ts server". */
  readonly label: string;
  /** The argument list it was started with (for failure messages). */
  readonly args: readonly string[];
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<unknown>;
  #text = "";
  #status: Deno.CommandStatus | null = null;
  #stopping: Promise<void> | null = null;

  constructor(label: string, cmd: string, args: string[]) {
    this.label = label;
    this.args = args;
    this.#child = new Deno.Command(cmd, {
      args,
      cwd: REPO.pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const dec = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) this.#text += dec.decode(chunk, { stream: true });
    };
    this.#pumps = Promise.allSettled([pump(this.#child.stdout), pump(this.#child.stderr)]);
    this.#child.status.then((s) => this.#status = s);
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Everything written so far. */
  output(): string {
    return this.#text;
  }

  /** True once the process has ended (on its own or stopped). */
  get exited(): boolean {
    return this.#status !== null;
  }

  /** Exit status once ended. */
  get status(): Deno.CommandStatus | null {
    return this.#status;
  }

  /** Occurrences of `needle` in the output. */
  count(needle: string): number {
    return this.#text.split(needle).length - 1;
  }

  /** Waits until the output contains `needle` `times` times; fails early if the process ends. */
  async waitFor(needle: string, timeoutMs = 10000, times = 1): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.count(needle) < times) {
      if (this.exited) {
        throw new Error(
          `${this.label} exited (${describeStatus(this.#status)}) before printing ` +
            `${JSON.stringify(needle)}\n${this.tail()}`,
        );
      }
      if (performance.now() > deadline) {
        throw new Error(
          `${this.label}: timed out waiting for ${JSON.stringify(needle)}` +
            ` (${times}x)\n${this.tail()}`,
        );
      }
      await sleep(20);
    }
  }

  /** The last `lines` lines of output, indented, for failure messages. */
  tail(lines = 40): string {
    const all = this.#text.trimEnd().split("\n");
    const shown = all.slice(-lines).map((l) => `    | ${l}`).join("\n");
    const state = this.exited ? `, exited: ${describeStatus(this.#status)}` : "";
    return `  --- ${this.label} (pid ${this.pid}${state}): ${this.args.join(" ")}\n` +
      (all.length > lines ? `    | … ${all.length - lines} earlier lines\n` : "") + shown;
  }

  /** SIGTERM, SIGKILL after `graceMs`; waits for the exit and the output. Idempotent. */
  stop(graceMs = 2000): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      if (!this.exited) {
        try {
          this.#child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      const t = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      await this.#child.status;
      clearTimeout(t);
      await this.#pumps;
    })();
    return this.#stopping;
  }

  /** SIGKILL at once (a crash, as far as the peer can tell); waits for the exit. */
  async kill(): Promise<void> {
    if (!this.exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.stop(0);
  }
}

function describeStatus(s: Deno.CommandStatus | null): string {
  if (s === null) return "running";
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}

/** Starts a client of `impl` with kcptun arguments `args`. */
export function startClient(impl: Impl, args: string[], label = `${impl} client`): Proc {
  return impl === "go"
    ? new Proc(label, GO_CLIENT, args)
    : new Proc(label, Deno.execPath(), [...DENO_RUN, CLI.client, ...args]);
}

/** Starts a server of `impl` with kcptun arguments `args`. */
export function startServer(impl: Impl, args: string[], label = `${impl} server`): Proc {
  return impl === "go"
    ? new Proc(label, GO_SERVER, args)
    : new Proc(label, Deno.execPath(), [...DENO_RUN, CLI.server, ...args]);
}

/** True when some socket holds UDP `port` on 127.0.0.1 (our bind attempt fails). */
export function udpPortTaken(port: number, hostname = "127.0.0.1"): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname, port }).close();
    return false;
  } catch {
    return true;
  }
}

/** Waits until `proc` has bound UDP `port` (a server is ready), failing if it exits. */
export async function waitUdpBound(
  proc: Proc,
  port: number,
  timeoutMs = 15000,
  hostname = "127.0.0.1",
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!udpPortTaken(port, hostname)) {
    if (proc.exited) {
      throw new Error(`${proc.label} exited before binding UDP ${port}\n${proc.tail()}`);
    }
    if (performance.now() > deadline) {
      throw new Error(`${proc.label}: UDP ${port} not bound after ${timeoutMs} ms\n${proc.tail()}`);
    }
    await sleep(25);
  }
}

/** Waits until a TCP listener accepts on `port` (a client is ready), failing if `proc` exits. */
export async function waitTcpListening(
  proc: Proc,
  port: number,
  timeoutMs = 15000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (proc.exited) {
        throw new Error(`${proc.label} exited before listening on TCP ${port}\n${proc.tail()}`);
      }
      if (performance.now() > deadline) {
        throw new Error(
          `${proc.label}: TCP ${port} not listening after ${timeoutMs} ms\n` +
            proc.tail(),
        );
      }
      await sleep(25);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Echo target

/** An echo server the tunnel's server end dials. */
export class EchoTarget {
  /** What to pass to `-t`: `127.0.0.1:port` or the socket path. */
  readonly address: string;
  /** Connections accepted so far. */
  accepted = 0;
  /** Connections that ended (peer EOF or error) so far. */
  ended = 0;
  readonly #kind: "tcp" | "unix";
  readonly #port: number;
  readonly #path: string;
  #listener: Deno.Listener | null = null;
  #loop: Promise<void> = Promise.resolve();
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();

  private constructor(kind: "tcp" | "unix", port: number, path: string) {
    this.#kind = kind;
    this.#port = port;
    this.#path = path;
    this.address = kind === "tcp" ? `127.0.0.1:${port}` : path;
    this.listen();
  }

  /** A TCP echo on a free loopback port. */
  static tcp(): EchoTarget {
    return new EchoTarget("tcp", freePort(), "");
  }

  /** A unix-socket echo at a fresh path in a temporary directory. */
  static unix(): EchoTarget {
    const dir = Deno.makeTempDirSync({ prefix: "kcptun-interop-" });
    return new EchoTarget("unix", 0, `${dir}/echo.sock`);
  }

  /** Connections open now. */
  get open(): number {
    return this.#conns.size;
  }

  /** Starts (or restarts) accepting. */
  listen(): void {
    if (this.#listener) return;
    const l = this.#kind === "tcp"
      ? Deno.listen({ hostname: "127.0.0.1", port: this.#port })
      : Deno.listen({ transport: "unix", path: this.#path });
    this.#listener = l;
    this.#loop = (async () => {
      try {
        for await (const conn of l) this.#serve(conn);
      } catch { /* listener closed */ }
    })();
  }

  /** Stops accepting (new connections are refused); open connections keep echoing. */
  async stopListening(): Promise<void> {
    const l = this.#listener;
    if (!l) return;
    this.#listener = null;
    try {
      l.close();
    } catch { /* already closed */ }
    await this.#loop;
    if (this.#kind === "unix") {
      try {
        Deno.removeSync(this.#path);
      } catch { /* gone */ }
    }
  }

  #serve(conn: Deno.Conn): void {
    this.accepted++;
    this.#conns.add(conn);
    const task = (async () => {
      const buf = new Uint8Array(65536);
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          let off = 0;
          while (off < n) off += await conn.write(buf.subarray(off, n));
        }
      } catch { /* reset or closed */ }
      this.ended++;
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    })();
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Stops listening, closes every connection, removes the socket file. */
  async close(): Promise<void> {
    await this.stopListening();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await Promise.allSettled([...this.#tasks]);
    if (this.#kind === "unix") {
      try {
        Deno.removeSync(this.#path.slice(0, this.#path.lastIndexOf("/")), { recursive: true });
      } catch { /* gone */ }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Data through the tunnel

/** Fills `out` with a deterministic stream of bytes from `seed` (xorshift32). */
export function seededBytes(seed: number, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

const WORDS = ("kcp smux snappy tunnel stream session window segment parity shard crypt " +
  "nonce packet datagram relay echo target client server loopback").split(" ")
  .map((w) => new TextEncoder().encode(w + " "));

/** Seeded random words: random, yet snappy compresses it to about half. */
export function seededText(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const pick = seededBytes(seed, Math.ceil(length / 3));
  let off = 0;
  for (let i = 0; off < length; i++) {
    const w = WORDS[pick[i % pick.length] % WORDS.length];
    const n = Math.min(w.length, length - off);
    out.set(w.subarray(0, n), off);
    off += n;
  }
  return out;
}

/** sha256 as hex. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where the tunnel's entry is. */
export type Entry = { port: number } | { path: string };

/** Options of {@link echoStreams}. */
export interface EchoStreamsOptions {
  /** Parallel connections. */
  streams: number;
  /** Bytes each connection sends (and expects back). */
  bytes: number;
  /** Seed of the data; stream i uses seed + i. */
  seed: number;
  /** Everything must be echoed within this. */
  timeoutMs: number;
  /** Write chunk size (default 32 KiB). */
  chunk?: number;
  /** Compressible data ({@link seededText}) instead of random bytes. */
  compressible?: boolean;
}

/** What one stream did. */
export interface StreamOutcome {
  /** Stream index. */
  index: number;
  /** Bytes written and read back. */
  written: number;
  read: number;
  /** Why it failed, or null. */
  error: string | null;
}

/** What {@link echoStreams} measured. */
export interface EchoReport {
  /** Per stream. */
  streams: StreamOutcome[];
  /** Wall time, ms. */
  ms: number;
  /** Bytes sent in total (one direction). */
  bytes: number;
}

async function dialEntry(entry: Entry): Promise<Deno.Conn> {
  return "port" in entry
    ? await Deno.connect({ hostname: "127.0.0.1", port: entry.port })
    : await Deno.connect({ transport: "unix", path: entry.path });
}

/**
 * Opens `streams` connections to `entry`; each writes `bytes` seeded random bytes while reading
 * the echo; each echo's sha256 must equal the data's. Resolves with the report (failed streams
 * have `error` set); never hangs past `timeoutMs` (every connection is closed then).
 */
export async function echoStreams(entry: Entry, o: EchoStreamsOptions): Promise<EchoReport> {
  const t0 = performance.now();
  const conns = new Set<Deno.Conn>();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }, o.timeoutMs);
  const chunk = o.chunk ?? 32768;
  const one = async (index: number): Promise<StreamOutcome> => {
    const res: StreamOutcome = { index, written: 0, read: 0, error: null };
    let conn: Deno.Conn | null = null;
    try {
      const data = (o.compressible ? seededText : seededBytes)(o.seed + index, o.bytes);
      const want = sha256(data);
      conn = await dialEntry(entry);
      conns.add(conn);
      if (timedOut) throw new Error("timed out before connecting");
      const c = conn;
      const writer = (async () => {
        while (res.written < data.length) {
          const end = Math.min(data.length, res.written + chunk);
          res.written += await c.write(data.subarray(res.written, end));
        }
      })();
      const got = new Uint8Array(o.bytes);
      // Read until the echo is complete; a concurrent writer keeps the pipe full.
      const reader = (async () => {
        while (res.read < o.bytes) {
          const n = await c.read(got.subarray(res.read));
          if (n === null) throw new Error("closed by the tunnel");
          res.read += n;
        }
      })();
      // A reader failing first must not leave the writer's rejection unobserved.
      await Promise.all([writer, reader]);
      const [a, b] = await Promise.all([want, sha256(got)]);
      if (a !== b) throw new Error(`sha256 mismatch: sent ${a}, echoed ${b}`);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      res.error = timedOut ? `timed out after ${o.timeoutMs} ms (${why})` : why;
    } finally {
      if (conn) {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      }
    }
    return res;
  };
  try {
    const streams = await Promise.all(Array.from({ length: o.streams }, (_, i) => one(i)));
    return { streams, ms: performance.now() - t0, bytes: o.streams * o.bytes };
  } finally {
    clearTimeout(timer);
  }
}

/** One line per failed stream, or "" when all passed. */
export function describeFailures(r: EchoReport): string {
  return r.streams.filter((s) => s.error !== null)
    .map((s) => `  stream ${s.index}: ${s.error} (written ${s.written}, echoed ${s.read})`)
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// Lossy path

/**
 * A UDP relay between a client and a server on loopback that drops datagrams at random (seeded),
 * independently each way. One upstream socket per client address, as a NAT would.
 */
export class UdpRelay {
  /** The port clients dial. */
  readonly port: number;
  /** Datagrams forwarded and dropped, per direction. */
  readonly stats = { up: 0, down: 0, droppedUp: 0, droppedDown: 0 };
  readonly #front: Deno.DatagramConn;
  readonly #server: Deno.NetAddr;
  readonly #loss: number;
  readonly #backs = new Map<string, Deno.DatagramConn>();
  readonly #tasks: Promise<void>[] = [];
  #x: number;
  #closed = false;

  /** Relays to `127.0.0.1:serverPort`, dropping each datagram with probability `loss`. */
  constructor(serverPort: number, loss: number, seed: number) {
    this.port = freePort();
    this.#front = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: this.port });
    this.#server = { transport: "udp", hostname: "127.0.0.1", port: serverPort };
    this.#loss = loss;
    this.#x = (seed * 2654435761) >>> 0 || 1;
    this.#tasks.push(this.#pumpUp());
  }

  #drop(): boolean {
    let x = this.#x;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#x = x;
    return x / 4294967296 < this.#loss;
  }

  async #pumpUp(): Promise<void> {
    try {
      while (!this.#closed) {
        const [data, from] = await this.#front.receive();
        const addr = from as Deno.NetAddr;
        const key = `${addr.hostname}:${addr.port}`;
        let back = this.#backs.get(key);
        if (!back) {
          back = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
          this.#backs.set(key, back);
          this.#tasks.push(this.#pumpDown(back, addr));
        }
        if (this.#drop()) {
          this.stats.droppedUp++;
          continue;
        }
        this.stats.up++;
        await back.send(data, this.#server);
      }
    } catch { /* closed */ }
  }

  async #pumpDown(back: Deno.DatagramConn, client: Deno.NetAddr): Promise<void> {
    try {
      while (!this.#closed) {
        const [data] = await back.receive();
        if (this.#drop()) {
          this.stats.droppedDown++;
          continue;
        }
        this.stats.down++;
        await this.#front.send(data, client);
      }
    } catch { /* closed */ }
  }

  /** Stops relaying and closes every socket. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const c of [this.#front, ...this.#backs.values()]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled(this.#tasks);
  }
}

/** The last row of a kcptun `-snmplog` CSV file, by column name (empty when there is none). */
export function lastSnmpRow(path: string): Record<string, number> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return {};
  }
  const lines = text.trim().split("\n");
  if (lines.length < 2) return {};
  const head = lines[0].split(","), row = lines[lines.length - 1].split(",");
  return Object.fromEntries(head.map((h, i) => [h, Number(row[i])]));
}

// ---------------------------------------------------------------------------------------------
// Matrix cases

/** One interop case: a client and a server of given implementations and flags. */
export interface CaseSpec {
  /** Test name (without the "interop" prefix). */
  name: string;
  /** What the case proves (for docs/interop.md). */
  proves: string;
  /** Client implementation. */
  client: Impl;
  /** Server implementation. */
  server: Impl;
  /** Flags for both ends (after the key). */
  flags?: string[];
  /** Client-only flags. */
  clientFlags?: string[];
  /** Server-only flags. */
  serverFlags?: string[];
  /** JSON config for the client (`-c`), written to a temporary file. */
  clientJson?: Record<string, unknown>;
  /** JSON config for the server (`-c`). */
  serverJson?: Record<string, unknown>;
  /** Target kind (default tcp). */
  target?: "tcp" | "unix";
  /** Parallel streams (default 8). */
  streams?: number;
  /** Bytes per stream (default 512 KiB: 4 MiB per case). */
  bytesPerStream?: number;
  /** Time limit for the data (default 60 s). */
  timeoutMs?: number;
  /** Compressible data instead of random bytes. */
  compressible?: boolean;
  /** The client listens on a unix socket instead of TCP (`-l /path`; ours only, as 2026). */
  unixEntry?: boolean;
  /** Datagrams lost at random (seeded), each way, by a relay between the ends (default none). */
  loss?: number;
  /** Both ends write `-snmplog` every second; `check` gets their last rows. */
  snmp?: boolean;
  /** Loopback address of the UDP side (default 127.0.0.1; "::1" for IPv6). */
  host?: "127.0.0.1" | "::1";
  /**
   * Several servers / custom layouts: returns the server processes and the `-r` value for the
   * client instead of the default single server.
   */
  servers?: (ctx: { target: EchoTarget; key: string }) => Promise<{
    procs: Proc[];
    remote: string;
  }>;
  /**
   * Startup-log lines each end must print (both implementations print kcptun's lines), proving
   * the flags or the JSON file took effect.
   */
  expect?: { client?: string[]; server?: string[] };
  /** Extra checks once the data went through (processes still running). */
  check?: (ctx: CaseContext) => void | Promise<void>;
}

/** What a case's `check` sees. */
export interface CaseContext {
  /** The client process. */
  client: Proc;
  /** The server processes. */
  servers: Proc[];
  /** The echo target. */
  target: EchoTarget;
  /** The data report. */
  report: EchoReport;
  /** The relay, in lossy cases. */
  relay: UdpRelay | null;
  /** Last `-snmplog` rows of the client and of the (first) server, when `snmp` was asked. */
  snmp: { client: Record<string, number>; server: Record<string, number> };
}

/** Fails unless `p` logged a line ending in (or containing, space-delimited) `line`. */
export function expectLine(p: Proc, line: string): void {
  if (!p.output().split("\n").some((l) => l.endsWith(" " + line) || l.includes(" " + line + " "))) {
    throw new Error(`${p.label} never logged ${JSON.stringify(line)}`);
  }
}

/** Default streams and bytes of a matrix case. */
export const STREAMS = 8;
/** 512 KiB per stream, 4 MiB per case. */
export const BYTES_PER_STREAM = 512 * 1024;

let caseSeed = 1;

function writeJson(obj: Record<string, unknown>, cleanup: string[]): string {
  const path = Deno.makeTempFileSync({ prefix: "kcptun-interop-", suffix: ".json" });
  Deno.writeTextFileSync(path, JSON.stringify(obj, null, 2));
  cleanup.push(path);
  return path;
}

/**
 * Runs one case; throws with every process's output tail on failure. A port taken between
 * picking it and binding it (other tests run in parallel) restarts the case on new ports.
 */
export async function runCase(spec: CaseSpec): Promise<CaseContext> {
  for (let attempt = 1;; attempt++) {
    try {
      return await runCaseOnce(spec);
    } catch (e) {
      const msg = (e as Error).message;
      if (attempt >= 3 || !/address already in use|Address in use|AddrInUse/i.test(msg)) throw e;
    }
  }
}

async function runCaseOnce(spec: CaseSpec): Promise<CaseContext> {
  const procs: Proc[] = [];
  const cleanup: string[] = [];
  const target = spec.target === "unix" ? EchoTarget.unix() : EchoTarget.tcp();
  const seed = caseSeed++ * 1000;
  let report: EchoReport | null = null;
  let relay: UdpRelay | null = null;
  const snmpDir = spec.snmp ? Deno.makeTempDirSync({ prefix: "kcptun-interop-snmp-" }) : "";
  // The file name is a Go time layout: "snmp.csv" has no layout token in it.
  const snmpFlags = (who: string) =>
    spec.snmp ? ["-snmplog", `${snmpDir}/${who}/snmp.csv`, "-snmpperiod", "1"] : [];
  if (spec.snmp) { for (const who of ["client", "server"]) Deno.mkdirSync(`${snmpDir}/${who}`); }
  const tails = () =>
    procs.map((p) => p.tail()).join("\n") +
    (relay ? `\n  --- relay: ${JSON.stringify(relay.stats)}` : "");
  try {
    let servers: Proc[];
    let remote: string;
    if (spec.servers) {
      const s = await spec.servers({ target, key: KEY });
      servers = s.procs;
      procs.push(...servers);
      remote = s.remote;
    } else {
      const host = spec.host ?? "127.0.0.1";
      const port = freePort(host);
      const hostPort = host === "::1" ? `[::1]:${port}` : `${host}:${port}`;
      const args = ["-l", hostPort, "-t", target.address, "-key", KEY];
      args.push(...spec.flags ?? [], ...spec.serverFlags ?? [], ...snmpFlags("server"));
      if (spec.serverJson) args.push("-c", writeJson(spec.serverJson, cleanup));
      const server = startServer(spec.server, args);
      procs.push(server);
      servers = [server];
      await waitUdpBound(server, port, 15000, host);
      remote = hostPort;
      if (spec.loss !== undefined) {
        relay = new UdpRelay(port, spec.loss, seed);
        remote = `127.0.0.1:${relay.port}`;
      }
    }
    const localPort = freePort();
    const entryPath = spec.unixEntry
      ? `${Deno.makeTempDirSync({ prefix: "kcptun-interop-" })}/c.sock`
      : "";
    if (entryPath) cleanup.push(entryPath.slice(0, entryPath.lastIndexOf("/")));
    const entry: Entry = entryPath ? { path: entryPath } : { port: localPort };
    const listen = entryPath || `127.0.0.1:${localPort}`;
    const cargs = ["-l", listen, "-r", remote, "-key", KEY];
    cargs.push(...spec.flags ?? [], ...spec.clientFlags ?? [], ...snmpFlags("client"));
    if (spec.clientJson) cargs.push("-c", writeJson(spec.clientJson, cleanup));
    const client = startClient(spec.client, cargs);
    procs.push(client);
    // Both kcptun and we log this line once the TCP listener is bound (no probe connection,
    // which would open a stream of its own).
    await client.waitFor("listening on:", 15000);
    report = await echoStreams(entry, {
      streams: spec.streams ?? STREAMS,
      bytes: spec.bytesPerStream ?? BYTES_PER_STREAM,
      seed,
      timeoutMs: spec.timeoutMs ?? 60000,
      compressible: spec.compressible,
    });
    const failed = describeFailures(report);
    if (failed) throw new Error(`${spec.name}: streams failed\n${failed}`);
    for (const p of procs) {
      if (p.exited) throw new Error(`${p.label} exited (${describeStatus(p.status)})`);
    }
    for (const line of spec.expect?.client ?? []) expectLine(client, line);
    for (const line of spec.expect?.server ?? []) for (const p of servers) expectLine(p, line);
    const snmp = { client: {}, server: {} };
    if (spec.snmp) {
      await sleep(1300); // one more -snmpperiod 1 row after the data
      snmp.client = lastSnmpRow(`${snmpDir}/client/snmp.csv`);
      snmp.server = lastSnmpRow(`${snmpDir}/server/snmp.csv`);
    }
    const ctx: CaseContext = { client, servers, target, report, relay, snmp };
    await spec.check?.(ctx);
    return ctx;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg}\n${tails()}`);
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await relay?.close();
    await target.close();
    if (snmpDir) Deno.removeSync(snmpDir, { recursive: true });
    for (const f of cleanup) {
      try {
        Deno.removeSync(f, { recursive: true });
      } catch { /* gone */ }
    }
  }
}

/** Registers `spec` as a `Deno.test` named "interop <name>" (skipped without kcptun, not in CI). */
export function interopTest(spec: CaseSpec): void {
  Deno.test({
    name: `interop ${spec.name}`,
    ignore: missing("kcptun"),
    fn: async () => {
      const ctx = await runCase(spec);
      const mib = ctx.report.bytes / 1048576;
      const secs = ctx.report.ms / 1000;
      if (Deno.env.get("INTEROP_VERBOSE")) {
        console.log(`  ${spec.name}: ${mib} MiB echoed in ${secs.toFixed(2)} s`);
      }
    },
  });
}
