/**
 * A command-line parser that accepts what kcptun's does (urfave/cli v1 on top of Go's `flag`
 * package) and fails more loudly where kcptun silently does the wrong thing.
 *
 * Accepted, as in kcptun:
 * - `-flag v`, `--flag v`, `-flag=v`, `--flag=v`; every alias takes one or two dashes;
 * - a boolean is set by its bare name and never consumes the next argument; `-nocomp=false`,
 *   `-nocomp=1`, `-nocomp=F` … (Go's `strconv.ParseBool` spellings);
 * - a flag that takes a value consumes the next argument whatever it looks like (`-key -x`
 *   sets the key to `-x`; `-mtu -5` is minus five);
 * - integers as Go reads them with base 0: `0x10` is 16, `010` and `0o10` are 8, `0b11` is 3,
 *   `1_000` is 1000, an optional sign;
 * - names are case-sensitive; a repeated flag keeps its last value; `--` ends the flags;
 * - an environment variable can give a flag its value when the command line does not
 *   (`KCPTUN_KEY` for `--key`); it is read even when empty, as urfave/cli does.
 *
 * Different from kcptun (which prints "Incorrect Usage." and the help, then exits 0, or runs
 * with the rest of the line ignored):
 * - any error is one line and exit code 2 (see {@link UsageError});
 * - a stray argument is an error: Go stops parsing at the first non-flag argument, so
 *   `-nocomp false -l :1234` would ignore `-l`. Only `help` / `h` (urfave's help command)
 *   are allowed as arguments.
 *
 * @module
 */

/** The value type of a flag. */
export type FlagKind = "string" | "int" | "bool";

/** A flag's value. */
export type FlagValue = string | number | boolean;

/** Describes one flag (all its aliases). */
export interface FlagSpec {
  /** Names without dashes, canonical (the long name) first: `["datashard", "ds"]`. */
  readonly names: readonly string[];
  /** Value type. */
  readonly kind: FlagKind;
  /** Value when neither the command line nor the environment gives one. */
  readonly defaultValue: FlagValue;
  /** One line for the help. */
  readonly usage: string;
  /** Environment variable that overrides the default (urfave's `EnvVar`). */
  readonly env?: string;
  /** Left out of the help (kcptun's hidden flags). */
  readonly hidden?: boolean;
}

/** Where a flag's value came from. */
export type FlagSource = "default" | "env" | "flag";

/** Environment access: a plain object (`Deno.env.toObject()`) or a lookup function. */
export type EnvLookup =
  | Readonly<Record<string, string | undefined>>
  | ((name: string) => string | undefined);

/** The result of {@link parseArgs}. */
export interface ParsedArgs {
  /** Every flag's value by canonical name (defaults included). */
  readonly values: ReadonlyMap<string, FlagValue>;
  /** Where each value came from, by canonical name. */
  readonly sources: ReadonlyMap<string, FlagSource>;
  /** The name each flag set on the command line was last written with, by canonical name. */
  readonly spelled: ReadonlyMap<string, string>;
  /** Arguments after the flags (only `help`/`h` get here without an error). */
  readonly args: readonly string[];
}

/** A command-line mistake; the message is one line naming the flag, as Go's `flag` words it. */
export class UsageError extends Error {
  /** Names the error class in stack traces. */
  override name = "UsageError";
}

/**
 * Go's `strconv.Quote` for the strings we echo back in messages: printable text kept,
 * quotes and backslashes escaped, control bytes as `\xNN`.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Why {@link parseGoInt} refused a string: Go's `flag` package calls these so. */
export type IntParseFailure = "parse error" | "value out of range";

function lower(c: string): string {
  return c >= "A" && c <= "Z" ? String.fromCharCode(c.charCodeAt(0) | 0x20) : c;
}

/** Go's rule for `_` in base-0 literals: only between digits (a base prefix counts as one). */
function underscoreOK(s: string): boolean {
  let saw = "^";
  let i = 0;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && "box".includes(lower(s[1]))) {
    i = 2;
    saw = "0";
    hex = lower(s[1]) === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i];
    if ((c >= "0" && c <= "9") || (hex && lower(c) >= "a" && lower(c) <= "f")) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

function parseUint0(s: string): bigint | IntParseFailure {
  if (s === "") return "parse error";
  const s0 = s;
  let base = 10n;
  if (s[0] === "0") {
    const p = s.length >= 3 ? lower(s[1]) : "";
    if (p === "b") [base, s] = [2n, s.slice(2)];
    else if (p === "o") [base, s] = [8n, s.slice(2)];
    else if (p === "x") [base, s] = [16n, s.slice(2)];
    else [base, s] = [8n, s.slice(1)];
  }
  let n = 0n;
  let underscores = false;
  for (const c of s) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const l = lower(c);
    let d: number;
    if (c >= "0" && c <= "9") d = c.charCodeAt(0) - 48;
    else if (l >= "a" && l <= "z") d = l.charCodeAt(0) - 87;
    else return "parse error";
    if (BigInt(d) >= base) return "parse error";
    n = n * base + BigInt(d);
    if (n > UINT64_MAX) return "value out of range";
  }
  if (underscores && !underscoreOK(s0)) return "parse error";
  return n;
}

/**
 * Parses an integer the way Go's `flag` package does (`strconv.ParseInt(s, 0, 64)`): optional
 * sign, `0x`/`0o`/`0`/`0b` prefixes, `_` between digits. Values outside JavaScript's safe
 * integer range are refused as out of range (Go would accept up to 2^63-1; no kcptun setting
 * means anything that large).
 */
export function parseGoInt(text: string): number | IntParseFailure {
  let s = text;
  let neg = false;
  if (s.length > 0 && (s[0] === "+" || s[0] === "-")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  const u = parseUint0(s);
  if (typeof u === "string") return u;
  if (neg ? u > INT64_MAX + 1n : u > INT64_MAX) return "value out of range";
  const v = neg ? -u : u;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    return "value out of range";
  }
  return Number(v);
}

/** Go's `strconv.ParseBool`; `undefined` for anything else. */
export function parseGoBool(text: string): boolean | undefined {
  switch (text) {
    case "1":
    case "t":
    case "T":
    case "TRUE":
    case "true":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "FALSE":
    case "false":
    case "False":
      return false;
  }
  return undefined;
}

function lookupEnv(env: EnvLookup, name: string): string | undefined {
  return typeof env === "function" ? env(name) : env[name];
}

function convert(spec: FlagSpec, name: string, value: string): FlagValue {
  switch (spec.kind) {
    case "string":
      return value;
    case "bool": {
      const b = parseGoBool(value);
      if (b === undefined) {
        throw new UsageError(`invalid boolean value ${goQuote(value)} for -${name}: parse error`);
      }
      return b;
    }
    case "int": {
      const n = parseGoInt(value);
      if (typeof n === "string") {
        throw new UsageError(`invalid value ${goQuote(value)} for flag -${name}: ${n}`);
      }
      return n;
    }
  }
}

const BOOL_WORDS = new Set([
  "1",
  "0",
  "t",
  "f",
  "T",
  "F",
  "true",
  "false",
  "TRUE",
  "FALSE",
  "True",
  "False",
]);

/**
 * Parses `argv` (without the program name) against `specs`. Throws {@link UsageError} with a
 * one-line message for: an unknown flag, bad flag syntax (`---x`, `-=x`), a missing value, a
 * value that is not a number or boolean, two aliases of one flag together (`-ds 1 -datashard 2`,
 * as urfave/cli refuses), and any argument left after the flags other than `help`/`h`.
 */
export function parseArgs(
  specs: readonly FlagSpec[],
  argv: readonly string[],
  env: EnvLookup = {},
): ParsedArgs {
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) for (const n of spec.names) byName.set(n, spec);

  const values = new Map<string, FlagValue>();
  const sources = new Map<string, FlagSource>();
  for (const spec of specs) {
    const key = spec.names[0];
    values.set(key, spec.defaultValue);
    sources.set(key, "default");
    if (spec.env === undefined) continue;
    const e = lookupEnv(env, spec.env);
    if (e === undefined) continue;
    let v: FlagValue;
    if (spec.kind === "string") v = e;
    else if (spec.kind === "bool") {
      // urfave/cli reads an empty variable as false.
      const b = e === "" ? false : parseGoBool(e);
      if (b === undefined) {
        throw new UsageError(
          `could not parse ${goQuote(e)} as bool value for flag ${key} ($${spec.env})`,
        );
      }
      v = b;
    } else {
      const n = parseGoInt(e);
      if (typeof n === "string") {
        throw new UsageError(
          `could not parse ${goQuote(e)} as int value for flag ${key} ($${spec.env}): ${n}`,
        );
      }
      v = n;
    }
    values.set(key, v);
    sources.set(key, "env");
  }

  const used = new Map<string, Set<string>>();
  const spelled = new Map<string, string>();
  let i = 0;
  let lastBareBool: string | null = null;
  for (; i < argv.length;) {
    const s = argv[i];
    if (s.length < 2 || s[0] !== "-") break;
    let dashes = 1;
    if (s[1] === "-") {
      dashes = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(dashes);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") {
      throw new UsageError(`bad flag syntax: ${s}`);
    }
    i++;
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq > 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`flag provided but not defined: -${name}`);
    lastBareBool = null;
    let v: FlagValue;
    if (spec.kind === "bool") {
      v = value === undefined ? true : convert(spec, name, value);
      if (value === undefined) lastBareBool = name;
    } else {
      if (value === undefined) {
        if (i >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
        value = argv[i++];
      }
      v = convert(spec, name, value);
    }
    const key = spec.names[0];
    values.set(key, v);
    sources.set(key, "flag");
    spelled.set(key, name);
    let set = used.get(key);
    if (!set) used.set(key, set = new Set());
    set.add(name);
  }

  for (const [key, names] of used) {
    if (names.size > 1) {
      const spec = byName.get(key)!;
      const forms = spec.names.filter((n) => names.has(n)).map((n) => "-" + n);
      throw new UsageError(`cannot use two forms of the same flag: ${forms.join(" and ")}`);
    }
  }

  const args = argv.slice(i);
  if (args.length > 0 && args[0] !== "help" && args[0] !== "h") {
    const a = args[0];
    if (lastBareBool !== null && argv[i - 1] !== "--" && BOOL_WORDS.has(a)) {
      throw new UsageError(
        `unexpected argument ${
          goQuote(a)
        } after -${lastBareBool}: a boolean flag takes no separate value, write -${lastBareBool}=${a}`,
      );
    }
    throw new UsageError(
      `unexpected argument ${
        goQuote(a)
      }: no arguments are taken, and flags after one would be ignored`,
    );
  }
  return { values, sources, spelled, args };
}
