/**
 * Shadowsocks plugin mode (SIP003): when ss-local or ss-server starts us as its `--plugin`, the
 * addresses come from `SS_REMOTE_HOST`, `SS_REMOTE_PORT`, `SS_LOCAL_HOST`, `SS_LOCAL_PORT` and the
 * settings from `SS_PLUGIN_OPTIONS` (`key=secret;crypt=aes;mode=fast3;nocomp`).
 *
 * The mapping is the one the shadowsocks fork of kcptun (shadowsocks-android's kcptun plugin)
 * uses; upstream kcptun has none:
 * - client: `-l` = `SS_LOCAL_HOST:SS_LOCAL_PORT` (where ss-local connects), `-r` =
 *   `SS_REMOTE_HOST:SS_REMOTE_PORT` (the kcptun server);
 * - server: `-l` = `SS_REMOTE_HOST:SS_REMOTE_PORT` (UDP, where clients send), `-t` =
 *   `SS_LOCAL_HOST:SS_LOCAL_PORT` (where ss-server listens);
 * - each option is a flag of that role by any of its names, a bare name meaning true;
 *   `__android_vpn` is the client's `-V` (shadowsocks-android's VPN mode).
 *
 * Stricter than the fork, which ignores what it does not understand: an unknown option, a value
 * of the wrong type, an option given twice, or the address ss itself dictates given as an option
 * is an error of one line naming the option.
 *
 * ```ts
 * import { parsePluginOptions } from "./sip003.ts";
 * const opts = parsePluginOptions("key=a\\;b;nocomp");
 * if (opts[0].value !== "a;b" || opts[1].value !== null) throw new Error("escapes");
 * ```
 *
 * @module
 */

import {
  type EnvLookup,
  type FlagSpec,
  type FlagValue,
  goQuote,
  parseGoBool,
  parseGoInt,
  UsageError,
} from "./flags.ts";
import { ConfigError, type Role } from "./settings.ts";

/** The variables that say where to listen and where to connect, in SIP003's order. */
export const SIP003_ADDRESS_VARIABLES = [
  "SS_REMOTE_HOST",
  "SS_REMOTE_PORT",
  "SS_LOCAL_HOST",
  "SS_LOCAL_PORT",
] as const;

/** The variable carrying the plugin options. */
export const SIP003_OPTIONS_VARIABLE = "SS_PLUGIN_OPTIONS";

/** The option shadowsocks-android adds in VPN mode; the client's `-V`. */
export const ANDROID_VPN_OPTION = "__android_vpn";

/** One `key[=value]` of `SS_PLUGIN_OPTIONS`, unescaped; `value` is null for a bare key. */
export interface PluginOption {
  /** The option's name. */
  readonly key: string;
  /** Its value, or null when the key stood alone (a boolean set to true). */
  readonly value: string | null;
}

/**
 * Splits `SS_PLUGIN_OPTIONS` into options: `;` separates them, the first `=` splits name from
 * value, and a backslash makes the next character literal (`\;`, `\=`, `\\`). Empty entries
 * (`a=1;;b=2`, a trailing `;`) are skipped. Throws {@link UsageError} for an empty name or a
 * backslash with nothing after it.
 */
export function parsePluginOptions(text: string): PluginOption[] {
  const out: PluginOption[] = [];
  let i = 0;
  // Reads up to an unescaped character of `stops`; returns the unescaped text.
  const read = (stops: string): string => {
    let s = "";
    for (; i < text.length && !stops.includes(text[i]); i++) {
      if (text[i] === "\\") {
        i++;
        if (i === text.length) {
          throw new UsageError(
            `${SIP003_OPTIONS_VARIABLE}: nothing follows the last backslash in ${goQuote(text)}`,
          );
        }
      }
      s += text[i];
    }
    return s;
  };
  while (i < text.length) {
    const start = i;
    const key = read("=;");
    if (i < text.length && text[i] === "=") {
      i++;
      const value = read(";");
      if (key === "") {
        throw new UsageError(
          `${SIP003_OPTIONS_VARIABLE}: empty option name in ${goQuote(text.slice(start, i))}`,
        );
      }
      out.push({ key, value });
    } else if (key !== "") {
      out.push({ key, value: null });
    }
    i++; // the `;`
  }
  return out;
}

/** What a shadowsocks parent gave us. */
export interface PluginEnvironment {
  /** `SS_REMOTE_HOST:SS_REMOTE_PORT` (an IPv6 host in brackets). */
  readonly remote: string;
  /** `SS_LOCAL_HOST:SS_LOCAL_PORT` (an IPv6 host in brackets). */
  readonly local: string;
  /** `SS_PLUGIN_OPTIONS`, parsed. */
  readonly options: readonly PluginOption[];
}

function lookup(env: EnvLookup, name: string): string | undefined {
  return typeof env === "function" ? env(name) : env[name];
}

/** `host:port` with an IPv6 literal in brackets; the port is checked later, with the address. */
function hostPort(host: string, port: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The plugin environment, or null when we were not started as a plugin (none of the four
 * address variables set). Throws {@link ConfigError} when only some of them are set, or when
 * `SS_PLUGIN_OPTIONS` is set without them, and {@link UsageError} for options that do not parse.
 */
export function readPluginEnvironment(env: EnvLookup): PluginEnvironment | null {
  const values = SIP003_ADDRESS_VARIABLES.map((name) => lookup(env, name) ?? "");
  const options = lookup(env, SIP003_OPTIONS_VARIABLE) ?? "";
  const missing = SIP003_ADDRESS_VARIABLES.filter((_, i) => values[i] === "");
  if (missing.length === SIP003_ADDRESS_VARIABLES.length) {
    if (options === "") return null;
    throw new ConfigError(
      `${SIP003_OPTIONS_VARIABLE} is set but not ${
        SIP003_ADDRESS_VARIABLES.join(", ")
      }: shadowsocks sets all five when it starts a plugin`,
    );
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `shadowsocks plugin mode (SIP003): ${missing.join(", ")} ${
        missing.length === 1 ? "is" : "are"
      } not set; a plugin is started with ${SIP003_ADDRESS_VARIABLES.join(", ")}`,
    );
  }
  const [remoteHost, remotePort, localHost, localPort] = values;
  return {
    remote: hostPort(remoteHost, remotePort),
    local: hostPort(localHost, localPort),
    options: parsePluginOptions(options),
  };
}

/** The plugin environment as flag values. */
export interface PluginSettings {
  /** Values by the flag's canonical (first) name. */
  readonly values: ReadonlyMap<string, FlagValue>;
  /** For each value, where it came from, for messages (`SS_PLUGIN_OPTIONS`, ...). */
  readonly origins: ReadonlyMap<string, string>;
  /** One line for the startup log: the addresses and the names of the options (no values). */
  readonly note: string;
}

interface AddressRole {
  /** Canonical flag of the address ss dictates (it listens or connects there). */
  readonly ssFacing: string;
  /** Canonical flag of the other end's address. */
  readonly farSide: string;
  /** The parent, for messages. */
  readonly parent: string;
}

const ADDRESSES: Record<Role, AddressRole> = {
  client: { ssFacing: "localaddr", farSide: "remoteaddr", parent: "ss-local" },
  server: { ssFacing: "target", farSide: "listen", parent: "ss-server" },
};

/** Flags that are actions, not settings: never an option. */
const NOT_OPTIONS = new Set(["help", "version"]);

function optionValue(spec: FlagSpec, o: PluginOption): FlagValue {
  const where = SIP003_OPTIONS_VARIABLE;
  if (spec.kind === "bool") {
    if (o.value === null) return true;
    const b = parseGoBool(o.value);
    if (b === undefined) {
      throw new UsageError(
        `${where}: invalid boolean value ${goQuote(o.value)} for option ${o.key}: parse error`,
      );
    }
    return b;
  }
  if (o.value === null) {
    throw new UsageError(`${where}: option ${o.key} needs a value (${o.key}=...)`);
  }
  if (spec.kind === "string") return o.value;
  const n = parseGoInt(o.value);
  if (typeof n === "string") {
    throw new UsageError(`${where}: invalid value ${goQuote(o.value)} for option ${o.key}: ${n}`);
  }
  return n;
}

/**
 * Maps a plugin environment onto the flags `specs` of `role`: the two addresses, then each
 * option by flag name (any alias; `__android_vpn` for `-V` where the role has it). Throws
 * {@link UsageError} (one line naming the option) for an unknown option, a bad value, an option
 * given twice, or an option for the address ss dictates (client `-l`, server `-t`).
 */
export function pluginSettings(
  role: Role,
  specs: readonly FlagSpec[],
  pe: PluginEnvironment,
): PluginSettings {
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) {
    if (NOT_OPTIONS.has(spec.names[0])) continue;
    for (const n of spec.names) byName.set(n, spec);
  }
  if (byName.has("V")) byName.set(ANDROID_VPN_OPTION, byName.get("V")!);

  const a = ADDRESSES[role];
  const values = new Map<string, FlagValue>();
  const origins = new Map<string, string>();
  const local = "SS_LOCAL_HOST and SS_LOCAL_PORT";
  const remote = "SS_REMOTE_HOST and SS_REMOTE_PORT";
  values.set(a.ssFacing, pe.local);
  origins.set(a.ssFacing, local);
  values.set(a.farSide, pe.remote);
  origins.set(a.farSide, remote);

  const given = new Map<string, string>();
  for (const o of pe.options) {
    const spec = byName.get(o.key);
    if (spec === undefined) {
      throw new UsageError(
        `${SIP003_OPTIONS_VARIABLE}: option provided but not defined: ${goQuote(o.key)}`,
      );
    }
    const canonical = spec.names[0];
    if (canonical === a.ssFacing) {
      throw new UsageError(
        `${SIP003_OPTIONS_VARIABLE}: option ${o.key} cannot be set: ${a.parent} gives that address in ${local}`,
      );
    }
    const before = given.get(canonical);
    if (before !== undefined) {
      throw new UsageError(
        before === o.key
          ? `${SIP003_OPTIONS_VARIABLE}: option ${o.key} given twice`
          : `${SIP003_OPTIONS_VARIABLE}: option ${canonical} given twice (as ${before} and ${o.key})`,
      );
    }
    given.set(canonical, o.key);
    values.set(canonical, optionValue(spec, o));
    origins.set(canonical, SIP003_OPTIONS_VARIABLE);
  }

  const short = (canonical: string) => {
    const n = byName.get(canonical)!.names.at(-1)!;
    return (n.length === 1 ? "-" : "--") + n;
  };
  const order = role === "client" ? [a.ssFacing, a.farSide] : [a.farSide, a.ssFacing];
  const addresses = order.map((k) => `${short(k)} ${values.get(k)}`);
  const names = [...given.values()];
  const note = `shadowsocks plugin (SIP003) for ${a.parent}: ${addresses.join(", ")}` +
    (names.length > 0 ? `; from ${SIP003_OPTIONS_VARIABLE}: ${names.join(" ")}` : "");
  return { values, origins, note };
}
