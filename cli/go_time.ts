/**
 * Go's `time.Time.Format` for the layouts kcptun's `-snmplog` file names use
 * (`./snmp-20060102.log` → `./snmp-20261124.log`): a broken-down {@link GoTime} in UTC, a fixed
 * zone or the local zone, and {@link formatGoTime}, which replaces every element of Go's
 * reference time `Mon Jan 2 15:04:05 MST 2006` found in a layout.
 *
 * ```ts
 * import { formatGoTime, goTimeUTC } from "./go_time.ts";
 * const name = formatGoTime("snmp-20060102.log", goTimeUTC(new Date(Date.UTC(2026, 10, 24))));
 * if (name !== "snmp-20261124.log") throw new Error(name);
 * ```
 *
 * @module
 */

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
