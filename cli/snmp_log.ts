/**
 * kcptun's SNMP output: the `SIGUSR1` dump line, and the `-snmplog` CSV file written every
 * `-snmpperiod` seconds, whose file name (not its directory) is a Go time layout formatted at
 * each write (`./snmp-20060102.log` → `./snmp-20261124.log`).
 *
 * The formatting is pure ({@link formatGoTime}, {@link snmpCsvRow}, …); {@link SnmpLogger} adds
 * the timer and the file.
 *
 * @module
 */

import { fileErrorText } from "./logging.ts";
import {
  type Snmp,
  SNMP_CSV_FIELDS,
  SNMP_STRUCT_FIELDS,
  type SnmpField,
} from "../pipeline/snmp.ts";

// ---------------------------------------------------------------------------------------------
// Go time layouts

/** A broken-down time, as Go's formatter needs it. */
export interface GoTime {
  /** Full year (2026). */
  readonly year: number;
  /** 1..12. */
  readonly month: number;
  /** 1..31. */
  readonly day: number;
  /** 0..23. */
  readonly hour: number;
  /** 0..59. */
  readonly minute: number;
  /** 0..59. */
  readonly second: number;
  /** 0..999999999. */
  readonly nanosecond: number;
  /** 0 = Sunday. */
  readonly weekday: number;
  /** Day of the year, 1..366. */
  readonly yearDay: number;
  /** Seconds east of UTC. */
  readonly offsetSeconds: number;
  /** Zone abbreviation for `MST` (`""` prints the numeric offset, as Go does). */
  readonly zoneName: string;
}

function dayOfYear(y: number, m: number, d: number): number {
  return (Date.UTC(y, m - 1, d) - Date.UTC(y, 0, 1)) / 86400000 + 1;
}

/** `date` in UTC, zone name `UTC`. */
export function goTimeUTC(date: Date): GoTime {
  const y = date.getUTCFullYear(), m = date.getUTCMonth() + 1, d = date.getUTCDate();
  return {
    year: y,
    month: m,
    day: d,
    hour: date.getUTCHours(),
    minute: date.getUTCMinutes(),
    second: date.getUTCSeconds(),
    nanosecond: date.getUTCMilliseconds() * 1e6,
    weekday: date.getUTCDay(),
    yearDay: dayOfYear(y, m, d),
    offsetSeconds: 0,
    zoneName: "UTC",
  };
}

/** `date` at a fixed offset east of UTC with the given zone name. */
export function goTimeFixed(date: Date, offsetSeconds: number, zoneName: string): GoTime {
  const t = goTimeUTC(new Date(date.getTime() + offsetSeconds * 1000));
  return { ...t, offsetSeconds, zoneName };
}

/**
 * `date` in the process's local zone. The zone abbreviation comes from `Intl` (best effort: it
 * may say `GMT+1` where Go's tzdata says `CET`); everything else is exact.
 */
export function goTimeLocal(date: Date): GoTime {
  const offsetSeconds = -date.getTimezoneOffset() * 60;
  let zoneName = "";
  try {
    const part = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
      .formatToParts(date)
      .find((p) => p.type === "timeZoneName");
    zoneName = part?.value ?? "";
  } catch {
    zoneName = "";
  }
  if (offsetSeconds === 0 && (zoneName === "GMT" || zoneName === "")) zoneName = "UTC";
  const y = date.getFullYear(), m = date.getMonth() + 1, d = date.getDate();
  return {
    year: y,
    month: m,
    day: d,
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds(),
    nanosecond: date.getMilliseconds() * 1e6,
    weekday: date.getDay(),
    yearDay: dayOfYear(y, m, d),
    offsetSeconds,
    zoneName,
  };
}

const LONG_MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const LONG_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

function zeroPad(n: number, width: number): string {
  const s = String(Math.abs(n)).padStart(width, "0");
  return n < 0 ? "-" + s : s;
}

type Token =
  | "January"
  | "Jan"
  | "1"
  | "01"
  | "Monday"
  | "Mon"
  | "2"
  | "_2"
  | "02"
  | "__2"
  | "002"
  | "15"
  | "3"
  | "03"
  | "4"
  | "04"
  | "5"
  | "05"
  | "2006"
  | "06"
  | "PM"
  | "pm"
  | "MST"
  | "Z0700"
  | "Z070000"
  | "Z07"
  | "Z07:00"
  | "Z07:00:00"
  | "-0700"
  | "-070000"
  | "-07"
  | "-07:00"
  | "-07:00:00"
  | { frac: "0" | "9"; digits: number; sep: string };

const ZERO_TOKENS = ["01", "02", "03", "04", "05", "06"] as const;
const TZ_TOKENS = ["070000", "07:00:00", "0700", "07:00", "07"] as const;

function isLower(c: string | undefined): boolean {
  return c !== undefined && c >= "a" && c <= "z";
}

/** Finds the next layout element at or after `from`: its start, length and kind. */
function nextToken(layout: string, from: number): { at: number; len: number; token: Token } | null {
  for (let i = from; i < layout.length; i++) {
    const rest = layout.slice(i);
    switch (layout[i]) {
      case "J":
        if (rest.startsWith("January")) return { at: i, len: 7, token: "January" };
        if (rest.startsWith("Jan") && !isLower(layout[i + 3])) {
          return { at: i, len: 3, token: "Jan" };
        }
        break;
      case "M":
        if (rest.startsWith("Monday")) return { at: i, len: 6, token: "Monday" };
        if (rest.startsWith("Mon") && !isLower(layout[i + 3])) {
          return { at: i, len: 3, token: "Mon" };
        }
        if (rest.startsWith("MST")) return { at: i, len: 3, token: "MST" };
        break;
      case "0":
        if (layout[i + 1] >= "1" && layout[i + 1] <= "6") {
          return { at: i, len: 2, token: ZERO_TOKENS[layout.charCodeAt(i + 1) - 49] };
        }
        if (rest.startsWith("002")) return { at: i, len: 3, token: "002" };
        break;
      case "1":
        if (layout[i + 1] === "5") return { at: i, len: 2, token: "15" };
        return { at: i, len: 1, token: "1" };
      case "2":
        if (rest.startsWith("2006")) return { at: i, len: 4, token: "2006" };
        return { at: i, len: 1, token: "2" };
      case "_":
        if (layout[i + 1] === "2") {
          // "_2006" is a literal underscore followed by the year.
          if (rest.startsWith("_2006")) return { at: i + 1, len: 4, token: "2006" };
          return { at: i, len: 2, token: "_2" };
        }
        if (rest.startsWith("__2")) return { at: i, len: 3, token: "__2" };
        break;
      case "3":
        return { at: i, len: 1, token: "3" };
      case "4":
        return { at: i, len: 1, token: "4" };
      case "5":
        return { at: i, len: 1, token: "5" };
      case "P":
        if (layout[i + 1] === "M") return { at: i, len: 2, token: "PM" };
        break;
      case "p":
        if (layout[i + 1] === "m") return { at: i, len: 2, token: "pm" };
        break;
      case "-":
      case "Z":
        for (const t of TZ_TOKENS) {
          if (rest.startsWith(layout[i] + t)) {
            return { at: i, len: t.length + 1, token: (layout[i] + t) as Token };
          }
        }
        break;
      case ".":
      case ",": {
        const ch = layout[i + 1];
        if (ch === "0" || ch === "9") {
          let j = i + 1;
          while (layout[j] === ch) j++;
          // Only a fractional second if the digits end here.
          if (!(layout[j] >= "0" && layout[j] <= "9")) {
            return { at: i, len: j - i, token: { frac: ch, digits: j - i - 1, sep: layout[i] } };
          }
        }
        break;
      }
    }
  }
  return null;
}

function formatZone(token: string, t: GoTime): string {
  const iso = token[0] === "Z";
  if (iso && t.offsetSeconds === 0) return "Z";
  const body = token.slice(1);
  let zone = Math.trunc(t.offsetSeconds / 60);
  let abs = t.offsetSeconds;
  let out = "+";
  if (zone < 0) {
    out = "-";
    zone = -zone;
    abs = -abs;
  }
  out += zeroPad(Math.trunc(zone / 60), 2);
  const colon = body.includes(":");
  if (colon) out += ":";
  if (body !== "07") out += zeroPad(zone % 60, 2);
  if (body === "070000" || body === "07:00:00") {
    if (colon) out += ":";
    out += zeroPad(abs % 60, 2);
  }
  return out;
}

function formatToken(token: Token, t: GoTime): string {
  if (typeof token === "object") {
    if (token.frac === "9" && (token.digits === 0 || t.nanosecond === 0)) return "";
    let digits = String(t.nanosecond).padStart(9, "0").slice(0, Math.min(token.digits, 9));
    if (token.frac === "9") {
      digits = digits.replace(/0+$/, "");
      if (digits === "") return "";
    }
    return token.sep + digits;
  }
  const h12 = t.hour % 12 === 0 ? 12 : t.hour % 12;
  switch (token) {
    case "2006":
      return zeroPad(t.year, 4);
    case "06":
      return zeroPad(Math.abs(t.year) % 100, 2);
    case "January":
      return LONG_MONTHS[t.month - 1];
    case "Jan":
      return LONG_MONTHS[t.month - 1].slice(0, 3);
    case "1":
      return String(t.month);
    case "01":
      return zeroPad(t.month, 2);
    case "Monday":
      return LONG_DAYS[t.weekday];
    case "Mon":
      return LONG_DAYS[t.weekday].slice(0, 3);
    case "2":
      return String(t.day);
    case "_2":
      return (t.day < 10 ? " " : "") + t.day;
    case "02":
      return zeroPad(t.day, 2);
    case "__2":
      return String(t.yearDay).padStart(3, " ");
    case "002":
      return zeroPad(t.yearDay, 3);
    case "15":
      return zeroPad(t.hour, 2);
    case "3":
      return String(h12);
    case "03":
      return zeroPad(h12, 2);
    case "4":
      return String(t.minute);
    case "04":
      return zeroPad(t.minute, 2);
    case "5":
      return String(t.second);
    case "05":
      return zeroPad(t.second, 2);
    case "PM":
      return t.hour >= 12 ? "PM" : "AM";
    case "pm":
      return t.hour >= 12 ? "pm" : "am";
    case "MST": {
      if (t.zoneName !== "") return t.zoneName;
      const zone = Math.trunc(t.offsetSeconds / 60);
      const a = Math.abs(zone);
      return (zone < 0 ? "-" : "+") + zeroPad(Math.trunc(a / 60), 2) + zeroPad(a % 60, 2);
    }
    default:
      return formatZone(token, t);
  }
}

/**
 * Go's `time.Time.Format(layout)`: every element of the reference time
 * `Mon Jan 2 15:04:05 MST 2006` in the layout is replaced by `t`'s value, everything else is
 * copied. Elements: `2006 06 January Jan 01 1 Monday Mon 02 _2 2 002 __2 15 03 3 04 4 05 5 PM pm
 * MST -0700 -07:00 -07 -070000 -07:00:00 Z0700 Z07:00 Z07 Z070000 Z07:00:00`, and `.000`/`,000`
 * (fixed) or `.999`/`,999` (trailing zeros trimmed) fractional seconds.
 */
export function formatGoTime(layout: string, t: GoTime): string {
  let out = "";
  let i = 0;
  for (;;) {
    const next = nextToken(layout, i);
    if (next === null) return out + layout.slice(i);
    out += layout.slice(i, next.at) + formatToken(next.token, t);
    i = next.at + next.len;
  }
}

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
  #timer: ReturnType<typeof setInterval> | null = null;
  #failing = false;

  /** Makes a logger; nothing happens before {@link SnmpLogger.start}. */
  constructor(options: SnmpLoggerOptions) {
    this.#opts = options;
  }

  /** True when `-snmplog` and `-snmpperiod` ask for a file. */
  get enabled(): boolean {
    return this.#opts.path !== "" && this.#opts.periodSeconds > 0;
  }

  /** True between start and stop. */
  get running(): boolean {
    return this.#timer !== null;
  }

  /** Starts the timer (the first row comes one period from now, as kcptun). */
  start(): void {
    if (!this.enabled || this.#timer !== null) return;
    this.#timer = setInterval(() => this.writeRecord(), this.#opts.periodSeconds * 1000);
  }

  /**
   * Stops the timer. Unless `finalRecord` is false, writes one last row first, so that a run
   * shorter than a period, or the part after the last tick, is not lost (kcptun writes none).
   */
  stop(options: { finalRecord?: boolean } = {}): void {
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
    if (o.path === "") return;
    const date = (o.now ?? (() => new Date()))();
    const file = snmpLogPath(o.path, (o.zone ?? goTimeLocal)(date));
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
 * {@link SNMP_DUMP_SIGNALS}). Returns the function that removes the handlers. Signals the
 * platform does not support are skipped.
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
): () => void {
  // Decided once, now: after a SIGUSR1 the inspector Deno opens for it would be seen too.
  const closeInspector = signals.includes("SIGUSR1")
    ? inspectorOpenAtStart().then((open) => !open)
    : null;
  const handler = (sig: Deno.Signal) => () => {
    log(snmpDumpLine(snmp));
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
