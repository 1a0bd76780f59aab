/**
 * kcptun's SNMP output: the `SIGUSR1` dump line, and the `-snmplog` CSV file written every
 * `-snmpperiod` seconds, whose file name (not its directory) is a Go time layout formatted at
 * each write (`./snmp-20060102.log` → `./snmp-20261124.log`).
 *
 * The formatting is pure ({@link snmpCsvRow}, {@link snmpLogPath}, …; Go layouts in
 * `go_time.ts`); {@link SnmpLogger} adds the timer and the file.
 *
 * @module
 */

import { fileErrorText } from "./logging.ts";
import { formatGoTime, type GoTime, goTimeLocal } from "./go_time.ts";
import {
  type Snmp,
  SNMP_CSV_FIELDS,
  SNMP_EXTRA_FIELDS,
  SNMP_STRUCT_FIELDS,
  type SnmpExtraField,
  type SnmpField,
} from "../pipeline/snmp.ts";

// ---------------------------------------------------------------------------------------------
// SNMP text

/** The counters: an {@link Snmp} or a snapshot of one. */
export type SnmpCounters = Pick<Snmp, SnmpField> | Readonly<Record<SnmpField, number>>;

function counter(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : BigInt(Math.trunc(n)).toString();
}

/** The `SIGUSR1` line (without the log timestamp): `KCP SNMP:&{BytesSent:0 BytesReceived:0 …}`. */
export function snmpDumpLine(snmp: SnmpCounters): string {
  return "KCP SNMP:&{" + SNMP_STRUCT_FIELDS.map((f) => `${f}:${counter(snmp[f])}`).join(" ") + "}";
}

/** The counters kcptun-ts adds, as one line: `kcptun-ts SNMP:&{InReplays:0}`. */
export function snmpExtrasLine(snmp: Pick<Snmp, SnmpExtraField>): string {
  return "kcptun-ts SNMP:&{" + SNMP_EXTRA_FIELDS.map((f) => `${f}:${counter(snmp[f])}`).join(" ") +
    "}";
}

/** The CSV header row, without the newline: `Unix,BytesSent,…,FECShortShards`. */
export function snmpCsvHeader(): string {
  return ["Unix", ...SNMP_CSV_FIELDS].join(",");
}

/** One CSV row, without the newline: `<unix seconds>,<counters in CSV order>`. */
export function snmpCsvRow(unixSeconds: number, snmp: SnmpCounters): string {
  return [String(Math.floor(unixSeconds)), ...SNMP_CSV_FIELDS.map((f) => counter(snmp[f]))].join(
    ",",
  );
}

/** The file to write at time `t`: the part after the last `/` formatted as a Go layout. */
export function snmpLogPath(path: string, t: GoTime): string {
  const slash = path.lastIndexOf("/");
  return path.slice(0, slash + 1) + formatGoTime(path.slice(slash + 1), t);
}

/** The text to append for one record: the header first when the file is empty. */
export function snmpRecordText(
  unixSeconds: number,
  snmp: SnmpCounters,
  fileIsEmpty: boolean,
): string {
  return (fileIsEmpty ? snmpCsvHeader() + "\n" : "") + snmpCsvRow(unixSeconds, snmp) + "\n";
}

// ---------------------------------------------------------------------------------------------
// The writer

/** File access of {@link SnmpLogger}, injectable for tests. */
export interface SnmpFiles {
  /** Current size of `path` in bytes, 0 when it does not exist. */
  size(path: string): number;
  /** Appends `text` to `path`, creating it. */
  append(path: string, text: string): void;
}

/** Real files (sync: one small write per period). */
export const denoSnmpFiles: SnmpFiles = {
  size(path) {
    try {
      return Deno.statSync(path).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      throw e;
    }
  },
  append(path, text) {
    const f = Deno.openSync(path, { append: true, create: true, write: true, mode: 0o666 });
    try {
      let bytes = new TextEncoder().encode(text);
      while (bytes.length > 0) bytes = bytes.subarray(f.writeSync(bytes));
    } finally {
      f.close();
    }
  },
};

/** Options of {@link SnmpLogger}. */
export interface SnmpLoggerOptions {
  /** `-snmplog` (empty: the logger does nothing). */
  readonly path: string;
  /** `-snmpperiod` in seconds (≤ 0: the logger does nothing). */
  readonly periodSeconds: number;
  /** The counters. */
  readonly snmp: SnmpCounters;
  /** Wall clock (default `new Date()`). */
  readonly now?: () => Date;
  /** Breaks a date into Go time fields for the file name (default local time). */
  readonly zone?: (date: Date) => GoTime;
  /** File access (default real files). */
  readonly files?: SnmpFiles;
  /**
   * Reports a failed write (default: ignored). Only the first failure of a run of failures is
   * reported: a missing directory would otherwise say the same thing every period.
   */
  readonly onError?: (message: string) => void;
  /** Reports the first successful write after a reported failure (default: ignored). */
  readonly onRecovered?: (message: string) => void;
}

/** Appends a CSV row of the counters every period; see the module doc. */
export class SnmpLogger {
  readonly #opts: SnmpLoggerOptions;
  #path: string;
  #periodSeconds: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Between start and stop, whether or not the settings enable the timer. */
  #started = false;
  #failing = false;

  /** Makes a logger; nothing happens before {@link SnmpLogger.start}. */
  constructor(options: SnmpLoggerOptions) {
    this.#opts = options;
    this.#path = options.path;
    this.#periodSeconds = options.periodSeconds;
  }

  /** True when `-snmplog` and `-snmpperiod` ask for a file. */
  get enabled(): boolean {
    return this.#path !== "" && this.#periodSeconds > 0;
  }

  /** The `-snmplog` path in use. */
  get path(): string {
    return this.#path;
  }

  /** The `-snmpperiod` in use, in seconds. */
  get periodSeconds(): number {
    return this.#periodSeconds;
  }

  /**
   * Takes a new `-snmplog` and `-snmpperiod` (a `SIGHUP` reload). Between start and stop, a
   * changed period counts from now, new values that disable the file stop the timer (without a
   * final row), and values that enable it start the timer.
   */
  reconfigure(path: string, periodSeconds: number): void {
    const samePeriod = periodSeconds === this.#periodSeconds;
    this.#path = path;
    this.#periodSeconds = periodSeconds;
    if (this.#timer !== null && (!samePeriod || !this.enabled)) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    if (this.#started) this.#startTimer();
  }

  /** True between start and stop. */
  get running(): boolean {
    return this.#timer !== null;
  }

  /** Starts the timer (the first row comes one period from now, as kcptun). */
  start(): void {
    this.#started = true;
    this.#startTimer();
  }

  #startTimer(): void {
    if (!this.enabled || this.#timer !== null) return;
    this.#timer = setInterval(() => this.writeRecord(), this.#periodSeconds * 1000);
  }

  /**
   * Stops the timer. Unless `finalRecord` is false, writes one last row first, so that a run
   * shorter than a period, or the part after the last tick, is not lost (kcptun writes none).
   */
  stop(options: { finalRecord?: boolean } = {}): void {
    this.#started = false;
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    if (options.finalRecord ?? true) this.writeRecord();
  }

  /** True after a failed write, until a write succeeds. */
  get failing(): boolean {
    return this.#failing;
  }

  /**
   * Writes one row now (the header too when the file is empty). Never throws: a failure is
   * reported through `onError` once, and the recovery through `onRecovered`.
   */
  writeRecord(): void {
    const o = this.#opts;
    if (this.#path === "") return;
    const date = (o.now ?? (() => new Date()))();
    const file = snmpLogPath(this.#path, (o.zone ?? goTimeLocal)(date));
    const files = o.files ?? denoSnmpFiles;
    try {
      const empty = files.size(file) === 0;
      files.append(file, snmpRecordText(date.getTime() / 1000, o.snmp, empty));
    } catch (e) {
      if (!this.#failing) {
        this.#failing = true;
        o.onError?.(
          `snmp logger: ${file}: ${fileErrorText(e)} (not logged again until a write succeeds)`,
        );
      }
      return;
    }
    if (this.#failing) {
      this.#failing = false;
      o.onRecovered?.(`snmp logger: writing ${file} again`);
    }
  }
}

/**
 * The startup check of `-snmplog`, as `-log` is checked: throws
 * `Error("-snmplog <path>: <file>: <why>")` when the file the logger would write now cannot be
 * opened for appending (a missing directory, no write permission). A file it had to create for
 * the check is removed again, so that nothing appears before the first row (as with kcptun).
 */
export function checkSnmpLogPath(
  path: string,
  now: Date = new Date(),
  zone: (date: Date) => GoTime = goTimeLocal,
): void {
  const file = snmpLogPath(path, zone(now));
  try {
    let existed = true;
    try {
      Deno.statSync(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      existed = false;
    }
    Deno.openSync(file, { append: true, create: true, write: true, mode: 0o666 }).close();
    if (!existed) Deno.removeSync(file);
  } catch (e) {
    throw new Error(`-snmplog ${path}: ${file}: ${fileErrorText(e)}`);
  }
}

/**
 * The signals that log {@link snmpDumpLine} by default: kcptun's `SIGUSR1`, and `SIGUSR2`, which
 * does the same without Deno's inspector getting involved (see {@link installSnmpSignal}).
 */
export const SNMP_DUMP_SIGNALS: readonly Deno.Signal[] = ["SIGUSR1", "SIGUSR2"];

/**
 * Logs {@link snmpDumpLine} through `log` on every signal of `signals` (default
 * {@link SNMP_DUMP_SIGNALS}), then {@link snmpExtrasLine} when `extras` are given (the CLI gives
 * them when a feature that counts them is on). Returns the function that removes the handlers.
 * Signals the platform does not support are skipped.
 *
 * Under `deno run` (not in compiled binaries), Deno ≥ 2.9.2 answers every `SIGUSR1` itself too,
 * whatever listeners the program has: it starts its V8 inspector on 127.0.0.1:9229 (printing
 * `Debugger listening on ws://…`, or `Failed to start inspector server` when the port is taken),
 * and any local user could attach to it. So after a `SIGUSR1` the handler closes that inspector
 * again, which needs no permission: it is open for a few milliseconds. An inspector asked for at
 * startup (`--inspect`) is left alone when the handler can see it, which takes
 * `--allow-sys=inspector` (or `-A`). The text cannot be stopped from inside the program; the
 * `deno task client`/`server` tasks set `DENO_LOG` to silence it.
 */
export function installSnmpSignal(
  log: (line: string) => void,
  snmp: SnmpCounters,
  signals: readonly Deno.Signal[] = SNMP_DUMP_SIGNALS,
  extras: Pick<Snmp, SnmpExtraField> | null = null,
): () => void {
  // Decided once, now: after a SIGUSR1 the inspector Deno opens for it would be seen too.
  const closeInspector = signals.includes("SIGUSR1")
    ? inspectorOpenAtStart().then((open) => !open)
    : null;
  const handler = (sig: Deno.Signal) => () => {
    log(snmpDumpLine(snmp));
    if (extras !== null) log(snmpExtrasLine(extras));
    if (sig === "SIGUSR1" && closeInspector !== null) {
      closeInspector.then((close) => {
        if (close) closeSignalInspector();
      });
    }
  };
  const installed: Array<[Deno.Signal, () => void]> = [];
  for (const sig of signals) {
    const h = handler(sig);
    try {
      Deno.addSignalListener(sig, h);
      installed.push([sig, h]);
    } catch {
      // Not available here (Windows, or a signal Deno reserves).
    }
  }
  return () => {
    for (const [sig, h] of installed) Deno.removeSignalListener(sig, h);
  };
}

/**
 * `node:inspector`, imported only when needed: loading it (and the Node compatibility code
 * behind it) costs every process memory, and most never see a `SIGUSR1`.
 */
function loadInspector(): Promise<typeof import("node:inspector")> {
  return import("node:inspector");
}

/**
 * False when `args` (a process's `/proc/self/cmdline`) shows that no inspector was asked for at
 * startup: a `deno` executable (as `argv[0]`) with no `--inspect*` argument. True when it may
 * have been: such an argument, or another executable (a compiled binary can have the flags
 * built in).
 */
export function commandLineMayInspect(args: readonly string[]): boolean {
  if (args.length === 0 || !/(^|\/)deno$/.test(args[0])) return true;
  return args.some((a) => a.startsWith("--inspect"));
}

/** {@link commandLineMayInspect} of this process; true when its command line cannot be read. */
function thisCommandLineMayInspect(): boolean {
  const path = "/proc/self/cmdline";
  try {
    // Asked first: reading without the permission could prompt.
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return true;
    return commandLineMayInspect(Deno.readTextFileSync(path).split("\0").slice(0, -1));
  } catch {
    return true;
  }
}

/**
 * True when an inspector is open now (`--inspect`, `--inspect-wait`, `--inspect-brk`). Only
 * asked when the answer comes without a prompt: `inspector.url()` needs the `sys` permission
 * `inspector`; without it the answer is false. `node:inspector` is only loaded when the command
 * line leaves the question open ({@link commandLineMayInspect}).
 */
async function inspectorOpenAtStart(): Promise<boolean> {
  // "inspector" is a sys permission kind Deno checks but its type does not list.
  const descriptor = { name: "sys", kind: "inspector" } as unknown as Deno.PermissionDescriptor;
  let state: Deno.PermissionState | "unknown";
  try {
    state = Deno.permissions.querySync(descriptor).state;
  } catch {
    // Deno 2.9 refuses to query this kind under a bare --allow-sys, which grants it.
    state = "unknown";
  }
  if (state === "denied" || state === "prompt") return false;
  if (!thisCommandLineMayInspect()) return false;
  try {
    return (await loadInspector()).url() !== undefined;
  } catch {
    return false;
  }
}

/**
 * Delays (ms, from the signal) at which {@link closeSignalInspector} closes Deno's inspector.
 * Deno's own SIGUSR1 task wakes on the same signal as our listener and opens the inspector one
 * or two event-loop turns later (2 to 8 ms measured); the later tries cover a loop busy with
 * traffic. Closing when nothing is open does nothing.
 */
const CLOSE_INSPECTOR_AT_MS = [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 125, 250, 500, 1000];

/** Closes the inspector SIGUSR1 is opening, whenever in the next second it shows up. */
async function closeSignalInspector(): Promise<void> {
  let inspector: typeof import("node:inspector");
  try {
    inspector = await loadInspector();
  } catch {
    return;
  }
  let i = 0;
  const step = () => {
    inspector.close();
    if (++i < CLOSE_INSPECTOR_AT_MS.length) {
      const id = setTimeout(step, CLOSE_INSPECTOR_AT_MS[i] - CLOSE_INSPECTOR_AT_MS[i - 1]);
      // Pending tries must not keep the process alive.
      Deno.unrefTimer(id);
    }
  };
  Deno.unrefTimer(setTimeout(step, 0));
}
