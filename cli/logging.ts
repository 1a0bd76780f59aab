/**
 * kcptun's log: Go's `log` package format (`2006/01/02 15:04:05 ` in local time, then the
 * message and a newline) to stderr or, with `-log`, appended to a file; and the startup lines
 * listing the effective settings in kcptun's order and wording.
 *
 * kcptun built as `SELFBUILD` (Debian's package, source builds) also prints `main.go:304: `
 * after the time; release builds do not, and neither do we: our file names and lines would not
 * mean anything to a kcptun user.
 *
 * Writes are synchronous and unbuffered, like Go's logger, so nothing is lost when the process
 * exits; `close()` only closes the `-log` file. `reopen()` opens the `-log` path again (after
 * logrotate renamed the file, on `SIGHUP`), and `replaceSink()` moves the log elsewhere.
 *
 * @module
 */

import type { ClientConfig, ServerConfig, ValueSource } from "./config.ts";
import { VERSION } from "./usage.ts";

/** Where log text goes. */
export interface LogSink {
  /** Writes the whole text. */
  write(text: string): void;
  /** Releases the destination. */
  close?(): void;
  /**
   * Opens the destination again by its name (a file renamed by logrotate is let go and a new
   * one made). Throws when that fails; the old destination is kept then.
   */
  reopen?(): void;
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** Go's `log.LstdFlags` prefix for `date` in local time: `2006/01/02 15:04:05 `. */
export function logTimestamp(date: Date): string {
  return `${date.getFullYear()}/${pad2(date.getMonth() + 1)}/${pad2(date.getDate())} ${
    pad2(date.getHours())
  }:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} `;
}

/** One operand as Go's `fmt` prints it with `%v` (strings bare, numbers decimal, booleans as words). */
export function goValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") {
    return Number.isInteger(v) && Math.abs(v) >= 1e21 ? BigInt(v).toString() : String(v);
  }
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v === null || v === undefined) return "<nil>";
  return String(v);
}

/** Go's `fmt.Sprintln` without the newline: operands joined by single spaces. */
export function goSprintln(...values: unknown[]): string {
  return values.map(goValue).join(" ");
}

const encoder = new TextEncoder();

function encodeAndWrite(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** Batches with text not yet written, flushed at exit too (`Deno.exit` dispatches `unload`). */
const unflushed = new Set<LineBatch>();
let unloadHooked = false;

/**
 * Lines logged in one turn of the event loop, written together at its end (a microtask): a
 * server's `stream opened`/`stream closed` lines cost one write system call each otherwise, and
 * under many short connections those were 8 % of its CPU. Nothing waits for I/O in between, so
 * the lines reach the destination before anything else happens; `flush` writes at once.
 */
class LineBatch {
  #text = "";
  readonly #write: (text: string) => void;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  add(text: string): void {
    if (this.#text === "") {
      unflushed.add(this);
      if (!unloadHooked) {
        unloadHooked = true;
        globalThis.addEventListener("unload", () => {
          for (const b of [...unflushed]) b.flush();
        });
      }
      queueMicrotask(() => this.flush());
    }
    this.#text += text;
  }

  flush(): void {
    const text = this.#text;
    if (text === "") return;
    this.#text = "";
    unflushed.delete(this);
    this.#write(text);
  }
}

/**
 * A sink writing to the process's stderr. A failed write is dropped, as Go's `log` drops it: a
 * closed terminal (which no longer ends the process, now that `SIGHUP` reloads) or a closed pipe
 * must not turn a log line into a crash.
 */
export function stderrSink(): LogSink {
  const batch = new LineBatch((text) => {
    try {
      encodeAndWrite(Deno.stderr, text);
    } catch { /* nowhere left to say it */ }
  });
  return {
    write: (text) => batch.add(text),
    close: () => batch.flush(),
  };
}

/**
 * A sink appending to `path` (created with mode 0666 less the umask, as kcptun opens it).
 * Throws the Deno error when the file cannot be opened.
 */
export function fileSink(path: string): LogSink {
  const openFile = () =>
    Deno.openSync(path, { append: true, create: true, write: true, mode: 0o666 });
  let file = openFile();
  let open = true;
  const batch = new LineBatch((text) => {
    if (open) encodeAndWrite(file, text);
  });
  return {
    write: (text) => {
      if (open) batch.add(text);
    },
    close: () => {
      if (open) {
        batch.flush();
        open = false;
        file.close();
      }
    },
    reopen: () => {
      if (!open) return;
      // The new file first: when it cannot be made, lines keep going to the old one.
      const next = openFile();
      batch.flush();
      file.close();
      file = next;
    },
  };
}

/** A file error in Go's words (`no such file or directory`), else the error's own message. */
export function fileErrorText(e: unknown): string {
  return e instanceof Deno.errors.NotFound
    ? "no such file or directory"
    : e instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : e instanceof Deno.errors.IsADirectory
    ? "is a directory"
    : e instanceof Deno.errors.NotADirectory
    ? "not a directory"
    : e instanceof Error
    ? e.message
    : String(e);
}

/** Options of {@link Logger}. */
export interface LoggerOptions {
  /** Destination (default stderr). */
  readonly sink?: LogSink;
  /** Suppress {@link Logger.stream} lines (`-quiet`). */
  readonly quiet?: boolean;
  /** Clock for the timestamps (default `new Date()`). */
  readonly now?: () => Date;
}

/** kcptun's logger. Its methods are bound, so they can be passed around as callbacks. */
export class Logger {
  #sink: LogSink;
  readonly #now: () => Date;
  #stampSecond = NaN;
  #stamp = "";
  /** True when per-stream lines are suppressed (`-quiet`; a `SIGHUP` reload may change it). */
  quiet: boolean;

  /** Makes a logger; see {@link openLogger} for the `-log` / stderr choice. */
  constructor(options: LoggerOptions = {}) {
    this.#sink = options.sink ?? stderrSink();
    this.#now = options.now ?? (() => new Date());
    this.quiet = options.quiet ?? false;
  }

  /** Logs one message (a newline is added unless it ends with one). Fits `StageContext.log`. */
  readonly log = (message: string): void => {
    // The prefix changes once a second; formatting local time is most of a line's cost.
    const date = this.#now();
    const second = Math.floor(date.getTime() / 1000);
    if (second !== this.#stampSecond) {
      this.#stampSecond = second;
      this.#stamp = logTimestamp(date);
    }
    const text = this.#stamp + message;
    this.#sink.write(text.endsWith("\n") ? text : text + "\n");
  };

  /** Go's `log.Println`: operands joined by spaces. */
  readonly println = (...values: unknown[]): void => {
    this.log(goSprintln(...values));
  };

  /** A per-stream line (`stream opened …`), dropped under `-quiet`. */
  readonly stream = (...values: unknown[]): void => {
    if (!this.quiet) this.log(goSprintln(...values));
  };

  /** Closes the `-log` file (stderr stays open). Later lines are dropped. */
  close(): void {
    this.#sink.close?.();
  }

  /**
   * Opens the `-log` file again by its path (logrotate's `postrotate`); nothing for stderr.
   * Throws when the file cannot be opened, and keeps writing to the old one then.
   */
  reopen(): void {
    this.#sink.reopen?.();
  }

  /** Sends later lines to `sink` and closes the old destination. */
  replaceSink(sink: LogSink): void {
    const old = this.#sink;
    this.#sink = sink;
    old.close?.();
  }
}

/**
 * The logger a resolved config asks for: appending to `config.log`, or stderr when it is empty.
 * Throws an Error with a one-line message when the file cannot be opened.
 */
export function openLogger(config: { readonly log: string; readonly quiet: boolean }): Logger {
  return new Logger({ sink: openLogSink(config.log), quiet: config.quiet });
}

/**
 * The sink `-log` asks for: appending to `path`, or stderr when it is empty. Throws an Error
 * with a one-line message (`open <path>: <why>`) when the file cannot be opened.
 */
export function openLogSink(path: string): LogSink {
  if (path === "") return stderrSink();
  try {
    return fileSink(path);
  } catch (e) {
    throw new Error(`open ${path}: ${fileErrorText(e)}`);
  }
}

/** Options of {@link startupLines}. */
export interface StartupOptions {
  /** The client's bound listen address as Go prints it (`127.0.0.1:12948`, `[::]:12948`); default `localaddr`. */
  readonly listeningOn?: string;
  /** The client's bound `-udp` address (default `udp` as given). */
  readonly udpListeningOn?: string;
  /** Version to print (default kcptun-ts's). */
  readonly version?: string;
  /** Append one line saying which settings came from flags, the environment, the file or the mode. */
  readonly sources?: boolean;
}

/**
 * The settings lines kcptun logs at startup, in its order and wording, then the warnings.
 * Options kcptun 2021 does not have (QPP, ratelimit, framesize, closewait, pprof on the client,
 * pipeline, autofec, and kcptun-ts's metrics and stats) get a line, where kcptun 2026 puts one,
 * only when they differ from their defaults; kcptun-ts's UDP forwarding gets `udp listening on:`
 * (client) or `udp target:` (server) and `udptimeout:` when `-udp` is given, then `metrics:` and
 * `stats:` last.
 * The caller logs `initiating key derivation` / `key derivation done` around its key work.
 */
export function startupLines(
  config: ClientConfig | ServerConfig,
  options: StartupOptions = {},
): string[] {
  const c = config;
  const out: string[] = [];
  const line = (...v: unknown[]) => out.push(goSprintln(...v));
  line("version:", options.version ?? VERSION);
  // 0 is ours (kcptun would print it and then fail every session): say what it means.
  if (c.smuxver === 0) line("smux version: 0 (each session answers in its client's version)");
  else line("smux version:", c.smuxver);
  if (c.role === "client") {
    line("listening on:", options.listeningOn ?? c.localaddr);
  } else {
    line("listening on:", c.listen);
    line("target:", c.target);
  }
  line("encryption:", c.crypt);
  if (c.qpp) {
    // kcptun 2026's client prints these two always (its server never); 2021 has no QPP.
    line("QPP:", c.qpp);
    line("QPP Count:", c.qppcount);
  }
  line("nodelay parameters:", c.nodelay, c.interval, c.resend, c.nc);
  if (c.role === "client") line("remote address:", c.remoteaddr);
  line("sndwnd:", c.sndwnd, "rcvwnd:", c.rcvwnd);
  line("compression:", !c.nocomp);
  line("mtu:", c.mtu);
  if (c.ratelimit !== 0) line("ratelimit:", c.ratelimit);
  line("datashard:", c.datashard, "parityshard:", c.parityshard);
  if (c.autofec) line("autofec:", c.autofec);
  line("acknodelay:", c.acknodelay);
  line("dscp:", c.dscp);
  line("sockbuf:", c.sockbuf);
  line("smuxbuf:", c.smuxbuf);
  if (c.framesize !== 32768) line("framesize:", c.framesize);
  line("streambuf:", c.streambuf);
  line("keepalive:", c.keepalive);
  if (c.closewait !== 0) line("closewait:", c.closewait);
  if (c.role === "client") {
    line("conn:", c.conn);
    line("autoexpire:", c.autoexpire);
    line("scavengettl:", c.scavengettl);
  }
  line("snmplog:", c.snmplog);
  line("snmpperiod:", c.snmpperiod);
  if (c.role === "server") line("pprof:", c.pprof);
  line("quiet:", c.quiet);
  line("tcp:", c.tcp);
  if (c.role === "client" && c.pprof) line("pprof:", c.pprof);
  if (c.replaywindow !== 0) line("replaywindow:", c.replaywindow);
  if (c.pipeline !== null) {
    line(
      "pipeline:",
      c.pipeline.stages.map((e) => (typeof e === "string" ? e : e.stage)).join(" > "),
    );
  }
  if (c.udp !== "") {
    if (c.role === "client") line("udp listening on:", options.udpListeningOn ?? c.udp);
    else line("udp target:", c.udp);
    line("udptimeout:", c.udptimeout);
  }
  if (c.metrics !== "") line("metrics:", c.metrics);
  if (c.stats !== 0) line("stats:", c.stats);
  if (options.sources) out.push(describeSources(c));
  out.push(...c.warnings);
  return out;
}

/** One line naming the settings that did not come from defaults, grouped by origin. */
export function describeSources(config: ClientConfig | ServerConfig): string {
  const groups = new Map<ValueSource, string[]>();
  for (const [key, src] of Object.entries(config.sources) as [string, ValueSource][]) {
    if (src === "default") continue;
    let g = groups.get(src);
    if (!g) groups.set(src, g = []);
    g.push(key);
  }
  const order: ValueSource[] = ["env", "flag", "json", "plugin", "mode"];
  const label = (s: ValueSource) =>
    s === "json"
      ? `file ${config.configFile}`
      : s === "env"
      ? "environment"
      : s === "plugin"
      ? "shadowsocks plugin environment"
      : s;
  const parts = order.filter((s) => groups.has(s)).map((s) =>
    `${label(s)}: ${groups.get(s)!.join(" ")}`
  );
  return "settings from " + (parts.length > 0 ? parts.join("; ") : "defaults only");
}
