/**
 * The settings table: every kcptun setting once, with its flag names, JSON key, type, default per
 * role, help text, place in the help and the check of its value. Everything else is derived from
 * it: each role's flag list in help order ({@link CLIENT_FLAGS}, {@link SERVER_FLAGS}), the JSON
 * keys a config file may use, the defaults ({@link CLIENT_DEFAULTS}, {@link SERVER_DEFAULTS}), the
 * setting key types that `config.ts` checks its config types against, and the per-value checks
 * that `config.ts` runs in table order.
 *
 * The table is in the client's help order (kcptun 2021's, with 2026 options where 2026 puts them
 * and ours at the end); the server's differs by the few entries that say `serverHelpAfter`.
 *
 * ```ts
 * import { CLIENT_DEFAULTS, settingsOf } from "./settings.ts";
 * if (CLIENT_DEFAULTS.sndwnd !== 128) throw new Error("client sndwnd");
 * const qpp = settingsOf("client").find((s) => s.key === "qppcount")!;
 * if (qpp.json !== "qpp-count" || qpp.flags[0] !== "QPPCount") throw new Error("qppcount");
 * ```
 *
 * @module
 */

import { AddressError, CLIENT_UDP, type InetRules, parseAddress, SERVER_UDP } from "./address.ts";
import type { FlagSpec, FlagValue } from "./flags.ts";
import { goQuote } from "./flags.ts";
import { parseMetricsAddress } from "./metrics.ts";
import type { PipelineSpec } from "../pipeline/pipeline.ts";
import type { StageOptions } from "../pipeline/stage.ts";
import { REPLAY_WINDOW_MAX } from "../transforms/crypt/replay.ts";
import { CRYPT_METHODS } from "../transforms/crypt/suite_types.ts";
import { MTU_MIN } from "../transforms/kcp/arq.ts";

/** Which end of the tunnel. */
export type Role = "client" | "server";

/** A fatal configuration problem: one line for stderr, exit code 1. */
export class ConfigError extends Error {
  /** Names the error class in stack traces. */
  override name = "ConfigError";
}

/**
 * How a setting is written: a flag type, or `pipeline` (a comma list on the command line, an
 * array in JSON) or `stageOptions` (JSON only, an object of objects).
 */
export type SettingKind = "string" | "int" | "bool" | "pipeline" | "stageOptions";

/** A setting's value before checks: a flag value, a pipeline, or per-stage options. */
export type RawValue = FlagValue | PipelineSpec | Record<string, StageOptions>;

/** What a setting's check can see and do. */
export interface CheckContext {
  /** Which end is being configured. */
  readonly role: Role;
  /** The value of a setting that comes earlier in the table, after its check. */
  int(key: string): number;
  /** The value of a string setting that comes earlier in the table, after its check. */
  str(key: string): string;
  /** ` (from <file>)` when this setting's value came from the config file, else `""`. */
  readonly origin: string;
  /** Fails with `invalid <key> <value>[ (from <file>)]: <why>`. */
  bad(why: string): never;
  /** Fails with `message` as it is. */
  fail(message: string): never;
  /** Adds a line to the startup warnings. */
  warn(line: string): void;
}

/** Checks a setting's value: fails, warns, or returns a corrected value (nothing keeps it). */
export type SettingCheck = (value: FlagValue, c: CheckContext) => FlagValue | void;

/** Which roles have a setting. */
export type SettingRoles = Role | "both";

/** One row of the table. */
export interface Setting<K extends string = string, R extends SettingRoles = SettingRoles> {
  /** Name in the config objects and in messages (`invalid <key> ...`). */
  readonly key: K;
  /** Which roles have it. */
  readonly roles: R;
  /** Value type. */
  readonly kind: SettingKind;
  /** kcptun's JSON key (matched case-insensitively). */
  readonly json: string;
  /** Flag names, canonical first (none: JSON only). */
  readonly flags: readonly string[];
  /** Defaults per role (`null`: JSON only, no flag). */
  readonly defaults: { readonly client: FlagValue; readonly server: FlagValue } | null;
  /** Help text. */
  readonly usage: string;
  /** Hidden from the help, as in kcptun. */
  readonly hidden: boolean;
  /** Environment variable that gives the flag its value. */
  readonly env?: string;
  /** In the server's help this flag comes right after that setting's. */
  readonly serverHelpAfter?: string;
  /** The value's own check (others read earlier settings through the context). */
  readonly check?: SettingCheck;
  /**
   * A new value from the `-c` file takes effect on `SIGHUP` without a restart (kcptun-ts;
   * cli/reload.ts). False for everything the running tunnel was built from.
   */
  readonly reload: boolean;
}

interface SettingExtra<R extends SettingRoles> {
  readonly roles?: R;
  readonly json?: string;
  readonly flags?: readonly string[];
  readonly serverDefault?: FlagValue;
  readonly hidden?: boolean;
  readonly env?: string;
  readonly serverHelpAfter?: string;
  readonly check?: SettingCheck;
  readonly reload?: boolean;
}

function setting<K extends string, R extends SettingRoles = "both">(
  key: K,
  kind: SettingKind,
  defaultValue: FlagValue | null,
  usage: string,
  extra: SettingExtra<R> = {},
): Setting<K, R> {
  return {
    key,
    roles: extra.roles ?? "both" as R,
    kind,
    json: extra.json ?? key,
    flags: extra.flags ?? [key],
    defaults: defaultValue === null
      ? null
      : { client: defaultValue, server: extra.serverDefault ?? defaultValue },
    usage,
    hidden: extra.hidden ?? false,
    env: extra.env,
    serverHelpAfter: extra.serverHelpAfter,
    check: extra.check,
    reload: extra.reload ?? false,
  };
}

// Checks shared by several settings.

function intCheck(f: (v: number, c: CheckContext) => number | void): SettingCheck {
  return (v, c) => f(v as number, c);
}

const between = (min: number, max: number, unit = ""): SettingCheck =>
  intCheck((v, c) => {
    if (v < min || v > max) c.bad(`must be between ${min} and ${max}${unit}`);
  });

const notNegative = (why: string): SettingCheck =>
  intCheck((v, c) => {
    if (v < 0) c.bad(why);
  });

const positive = (why: string): SettingCheck =>
  intCheck((v, c) => {
    if (v <= 0) c.bad(why);
  });

/** An unknown method falls back to aes, as kcptun; 2026's methods are flagged. */
const checkCrypt: SettingCheck = (v, c) => {
  const crypt = v as string;
  if (!(CRYPT_METHODS as readonly string[]).includes(crypt)) {
    c.warn(`unknown -crypt ${goQuote(crypt)}: using aes, as kcptun does`);
    return "aes";
  }
  if (crypt === "null" || crypt === "aes-128-gcm") {
    c.warn(
      `-crypt ${crypt} is a kcptun 2026 method: a kcptun 2021 peer does not know it and uses aes instead`,
    );
  }
};

// What the pipeline's packet stages leave KCP is checked once they are made (cli/preflight.ts).
const checkMtu = intCheck((mtu, c) => {
  if (mtu > 1500) c.bad("must be at most 1500 (the receive buffer size)");
  if (mtu < MTU_MIN) c.bad(`must be at least ${MTU_MIN}, KCP's smallest datagram`);
});

/** `-udp`: empty (off) or one `host:port` by `rules`. */
const udpAddress = (rules: InetRules): SettingCheck => (v, c) => {
  if (v === "") return;
  try {
    parseAddress(v as string, rules);
  } catch (e) {
    if (e instanceof AddressError) c.bad(e.message);
    throw e;
  }
};

/** `-metrics`: empty (off) or an address to bind, checked now so that a typo is one line. */
const checkMetrics: SettingCheck = (v, c) => {
  const text = v as string;
  if (text === "") return;
  try {
    parseMetricsAddress(text);
  } catch (e) {
    if (!(e instanceof AddressError)) throw e;
    c.fail(`invalid -metrics ${goQuote(text)}${c.origin}: ${e.message}`);
  }
};

const CRYPT_USAGE =
  "aes, aes-128, aes-128-gcm, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, null";

/** Every setting, in the client's help order. */
export const SETTINGS = [
  setting("localaddr", "string", ":12948", "local listen address", {
    roles: "client",
    flags: ["localaddr", "l"],
  }),
  setting(
    "remoteaddr",
    "string",
    "vps:29900",
    'kcp server address, eg: "IP:29900" a for single port, "IP:minport-maxport" for port range',
    { roles: "client", flags: ["remoteaddr", "r"] },
  ),
  setting(
    "listen",
    "string",
    ":29900",
    'kcp server listen address, eg: "IP:29900" for a single port, "IP:minport-maxport" for port range',
    { roles: "server", flags: ["listen", "l"] },
  ),
  setting(
    "target",
    "string",
    "127.0.0.1:12948",
    "target server address, or path/to/unix_socket",
    { roles: "server", flags: ["target", "t"] },
  ),
  setting("key", "string", "it's a secrect", "pre-shared secret between client and server", {
    env: "KCPTUN_KEY",
  }),
  setting("crypt", "string", "aes", CRYPT_USAGE, { check: checkCrypt }),
  setting("mode", "string", "fast", "profiles: fast3, fast2, fast, normal, manual"),
  setting("qpp", "bool", false, "enable Quantum Permutation Pads(QPP)", {
    flags: ["QPP"],
    serverHelpAfter: "crypt",
  }),
  setting(
    "qppcount",
    "int",
    61,
    "the prime number of pads to use for QPP: The more pads you use, the more secure the encryption. Each pad requires 256 bytes.",
    { json: "qpp-count", flags: ["QPPCount"], serverHelpAfter: "qpp" },
  ),
  setting("conn", "int", 1, "set num of UDP connections to server", {
    roles: "client",
    check: between(1, 65535),
  }),
  setting(
    "autoexpire",
    "int",
    0,
    "set auto expiration time(in seconds) for a single UDP connection, 0 to disable",
    { roles: "client" },
  ),
  setting("scavengettl", "int", 600, "set how long an expired connection can live (in seconds)", {
    roles: "client",
  }),
  setting("mtu", "int", 1350, "set maximum transmission unit for UDP packets", {
    check: checkMtu,
  }),
  setting(
    "ratelimit",
    "int",
    0,
    "set maximum outgoing speed (in bytes per second) for a single KCP connection, 0 to disable",
    {
      check: intCheck((v, c) => {
        if (v >= 0) return;
        c.warn(`ratelimit ${v} is negative, falling back to 0`);
        return 0;
      }),
    },
  ),
  setting("sndwnd", "int", 128, "set send window size(num of packets)", {
    serverDefault: 1024,
    check: between(1, 65535, " packets"),
  }),
  setting("rcvwnd", "int", 512, "set receive window size(num of packets)", {
    serverDefault: 1024,
    check: between(1, 65535, " packets"),
  }),
  setting("datashard", "int", 10, "set reed-solomon erasure coding - datashard", {
    flags: ["datashard", "ds"],
    check: notNegative("must be 0 (FEC off) or more"),
  }),
  setting("parityshard", "int", 3, "set reed-solomon erasure coding - parityshard", {
    flags: ["parityshard", "ps"],
    check: intCheck((ps, c) => {
      if (ps < 0) c.bad("must be 0 (FEC off) or more");
      const ds = c.int("datashard");
      if (ds > 0 && ps > 0 && ds + ps > 256) {
        c.bad(`datashard + parityshard must be at most 256 (datashard ${ds})`);
      }
    }),
  }),
  setting(
    "autofec",
    "bool",
    false,
    "kcptun-ts: send only the FEC parity the measured loss needs (-ds/-ps: the groups and the most parity)",
    {
      check: (v, c) => {
        if (v !== true) return;
        if (c.int("datashard") <= 0 || c.int("parityshard") <= 0) {
          c.warn("autofec: FEC is off (-ds or -ps is 0), so there is no parity to adapt");
        }
      },
    },
  ),
  setting("dscp", "int", 0, "set DSCP(6bit)", { check: between(0, 63) }),
  setting("nocomp", "bool", false, "disable compression"),
  setting("acknodelay", "bool", false, "flush ack immediately when a packet is received", {
    hidden: true,
  }),
  setting("nodelay", "int", 0, "", { hidden: true }),
  setting("interval", "int", 50, "", { hidden: true }),
  setting("resend", "int", 0, "", { hidden: true }),
  setting("nc", "int", 0, "", { hidden: true }),
  setting("sockbuf", "int", 4194304, "per-socket buffer in bytes", {
    check: notNegative("must not be negative"),
  }),
  setting("smuxver", "int", 1, "specify smux version, available 1,2", {
    check: intCheck((v, c) => {
      // 0 is ours: kcptun accepts it at startup and then fails every session (smux refuses it).
      if (v === 0 && c.role === "client") {
        c.fail(
          `-smuxver 0${c.origin} (answer each client in its own version) is for servers only: a client must choose 1 or 2`,
        );
      }
      if (v !== 0 && v !== 1 && v !== 2) {
        const available = c.role === "server" ? "1, 2, or 0: each client's" : "1, 2";
        c.fail(`unsupported smux version: ${v}${c.origin} (available: ${available})`);
      }
    }),
  }),
  setting("smuxbuf", "int", 4194304, "the overall de-mux buffer in bytes", {
    check: positive("max receive buffer must be positive"),
  }),
  setting("framesize", "int", 32768, "smux max frame size", { check: between(1, 65535) }),
  setting("streambuf", "int", 2097152, "per stream receive buffer in bytes, smux v2+", {
    check: intCheck((v, c) => {
      if (v <= 0) c.bad("max stream buffer must be positive");
      const smuxbuf = c.int("smuxbuf");
      if (v > smuxbuf) {
        c.bad(
          `max stream buffer must not be larger than max receive buffer (smuxbuf ${smuxbuf})`,
        );
      }
    }),
  }),
  setting("keepalive", "int", 10, "seconds between heartbeats", {
    check: between(1, 30, " seconds (smux closes a session after 30 s without traffic)"),
  }),
  setting("closewait", "int", 0, "the seconds to wait before tearing down a connection", {
    check: notNegative("must not be negative"),
  }),
  setting(
    "snmplog",
    "string",
    "",
    "collect snmp to file, aware of timeformat in golang, like: ./snmp-20060102.log",
    { reload: true },
  ),
  setting("snmpperiod", "int", 60, "snmp collect period, in seconds", {
    reload: true,
    check: intCheck((period, c) => {
      const path = c.str("snmplog");
      if (path !== "" && period <= 0) {
        c.warn(`snmplog ${path} is not written: snmpperiod ${period} is not positive`);
      }
    }),
  }),
  setting("log", "string", "", "specify a log file to output, default goes to stderr", {
    reload: true,
  }),
  setting("quiet", "bool", false, "to suppress the 'stream open/close' messages", {
    reload: true,
  }),
  setting("tcp", "bool", false, "to emulate a TCP connection(linux)"),
  setting(
    "pprof",
    "bool",
    false,
    "accepted for compatibility; kcptun-ts has no HTTP profiler (see docs/cli.md)",
    {
      serverHelpAfter: "snmpperiod",
      check: (v, c) => {
        if (v !== true) return;
        c.warn(
          "pprof: kcptun-ts has no profiling server on :6060; profile with deno run --inspect (Chrome DevTools) or --v8-flags=--prof",
        );
      },
    },
  ),
  setting(
    "pipeline",
    "pipeline",
    "",
    "kcptun-ts: stage list, outermost first, comma-separated, eg: tcp,smux,snappy,kcp,fec,crypt,udp",
  ),
  // shadowsocks-android starts its plugins with -V (or the option __android_vpn) in VPN mode, where
  // the plugin must hand its UDP socket to the app to keep it out of the VPN (cli/sip003.ts).
  setting(
    "vpn",
    "bool",
    false,
    "shadowsocks-android VPN mode (SIP003 plugin); no effect off Android",
    {
      roles: "client",
      flags: ["V"],
      check: (v, c) => {
        if (v !== true) return;
        c.warn(
          "-V (shadowsocks-android VPN mode): nothing to do here; only Android's VpnService needs the tunnel's own socket protected from the VPN",
        );
      },
    },
  ),
  setting(
    "replaywindow",
    "int",
    0,
    "kcptun-ts: with -crypt aes-128-gcm, drop datagrams whose nonce was among the last N received (replays), 0 to disable",
    {
      check: intCheck((v, c) => {
        if (v < 0 || v > REPLAY_WINDOW_MAX) {
          c.bad(`must be 0 (off) or a number of datagrams up to ${REPLAY_WINDOW_MAX}`);
        }
        const crypt = c.str("crypt");
        if (v > 0 && crypt !== "aes-128-gcm") {
          c.bad(
            `needs -crypt aes-128-gcm, the only method that authenticates its nonce (-crypt is ${crypt})`,
          );
        }
      }),
    },
  ),
  setting(
    "pipelineoptions",
    "stageOptions",
    null,
    "kcptun-ts: options per stage name (JSON only)",
    {
      json: "pipelineOptions",
      flags: [],
    },
  ),
  // UDP forwarding (kcptun-ts only; runtime/udp_relay.ts).
  setting(
    "udp",
    "string",
    "",
    'kcptun-ts: local UDP address whose datagrams go to the server\'s -udp target, eg: "127.0.0.1:5353"',
    { roles: "client", check: udpAddress(CLIENT_UDP) },
  ),
  setting(
    "udp",
    "string",
    "",
    'kcptun-ts: UDP target for the clients\' -udp datagrams, eg: "127.0.0.1:53"',
    { roles: "server", check: udpAddress(SERVER_UDP) },
  ),
  setting("udptimeout", "int", 60, "kcptun-ts: seconds after which an idle UDP flow ends", {
    check: between(1, 86400, " seconds"),
  }),
  setting(
    "metrics",
    "string",
    "",
    'kcptun-ts: serve Prometheus metrics on /metrics (and /healthz) at this address, eg: "127.0.0.1:9101"',
    { check: checkMetrics },
  ),
  setting(
    "stats",
    "int",
    0,
    "kcptun-ts: log a line of throughput, sessions, streams, srtt, retransmits and FEC recoveries every N seconds, 0 to disable",
    { check: notNegative("must be 0 (off) or a number of seconds") },
  ),
];

type AnySetting = typeof SETTINGS[number];

/** Any setting's key. */
export type SettingKey = AnySetting["key"];
/** A setting both roles have. */
export type CommonSettingKey = Extract<AnySetting, { roles: "both" }>["key"];
/** A client setting. */
export type ClientSettingKey = Extract<AnySetting, { roles: "both" | "client" }>["key"];
/** A server setting. */
export type ServerSettingKey = Extract<AnySetting, { roles: "both" | "server" }>["key"];
/** A setting that has a flag (and so a default). */
export type FlagSettingKey = Exclude<SettingKey, "pipelineoptions">;

/** A role's settings in table order. */
export function settingsOf(role: Role): readonly Setting<SettingKey>[] {
  return SETTINGS.filter((s) => s.roles === "both" || s.roles === role);
}

function defaultsOf(role: Role): Record<string, FlagValue> {
  const out: Record<string, FlagValue> = {};
  for (const s of settingsOf(role)) if (s.defaults !== null) out[s.key] = s.defaults[role];
  return out;
}

/** Client defaults (kcptun 2021), by setting key. */
export const CLIENT_DEFAULTS: Readonly<
  Record<Extract<ClientSettingKey, FlagSettingKey>, FlagValue>
> = defaultsOf("client") as Record<Extract<ClientSettingKey, FlagSettingKey>, FlagValue>;

/** Server defaults (kcptun 2021), by setting key. */
export const SERVER_DEFAULTS: Readonly<
  Record<Extract<ServerSettingKey, FlagSettingKey>, FlagValue>
> = defaultsOf("server") as Record<Extract<ServerSettingKey, FlagSettingKey>, FlagValue>;

// `-c` is not a setting but the file settings come from; kcptun lists it right after `-tcp`.
const CONFIG_FLAG: FlagSpec = {
  names: ["c"],
  kind: "string",
  defaultValue: "",
  usage: "config from json file, which will override the command from shell",
};
const CONFIG_FLAG_AFTER: SettingKey = "tcp";

const HELP_FLAG: FlagSpec = {
  names: ["help", "h"],
  kind: "bool",
  defaultValue: false,
  usage: "show help",
};
const VERSION_FLAG: FlagSpec = {
  names: ["version", "v"],
  kind: "bool",
  defaultValue: false,
  usage: "print the version",
};

/** A role's settings in its help order. */
function helpOrder(role: Role): Setting<SettingKey>[] {
  const own = settingsOf(role);
  if (role === "client") return [...own];
  const moved = own.filter((s) => s.serverHelpAfter !== undefined);
  const out: Setting<SettingKey>[] = [];
  const place = (s: Setting<SettingKey>) => {
    out.push(s);
    for (const m of moved) if (m.serverHelpAfter === s.key) place(m);
  };
  for (const s of own) if (s.serverHelpAfter === undefined) place(s);
  // A serverHelpAfter naming no server setting would drop the flag from the server's list.
  if (out.length !== own.length) throw new Error("settings: a serverHelpAfter names no setting");
  return out;
}

function flagSpecs(role: Role): FlagSpec[] {
  const out: FlagSpec[] = [];
  for (const s of helpOrder(role)) {
    if (s.defaults === null) continue;
    out.push({
      names: s.flags,
      kind: s.kind === "pipeline" || s.kind === "stageOptions" ? "string" : s.kind,
      defaultValue: s.defaults[role],
      usage: s.usage,
      env: s.env,
      hidden: s.hidden,
    });
    if (s.key === CONFIG_FLAG_AFTER) out.push(CONFIG_FLAG);
  }
  out.push(HELP_FLAG, VERSION_FLAG);
  return out;
}

/** The client's flags in help order (hidden ones included, `-h` and `-v` last). */
export const CLIENT_FLAGS: readonly FlagSpec[] = flagSpecs("client");
/** The server's flags in help order (hidden ones included, `-h` and `-v` last). */
export const SERVER_FLAGS: readonly FlagSpec[] = flagSpecs("server");
