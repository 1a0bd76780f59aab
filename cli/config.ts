/**
 * kcptun's configuration resolved into one typed object per role: flags, the `-c` JSON file
 * (`config_file.ts`), the `-mode` presets and the checks of the settings table (`settings.ts`).
 *
 * Order, as kcptun: defaults → `KCPTUN_KEY` → command-line flags → JSON keys present in the file
 * (they override flags) → the shadowsocks plugin environment when there is one (`sip003.ts`:
 * `SS_*` addresses and `SS_PLUGIN_OPTIONS`, which override both, as in the shadowsocks fork of
 * kcptun) → the `-mode` preset (it overrides nodelay/interval/resend/nc) → checks.
 *
 * ```ts
 * import { parseClientConfig } from "./config.ts";
 * const r = parseClientConfig(["-r", "127.0.0.1:29900", "-mode", "fast3"], {});
 * if (r.kind !== "run" || r.config.interval !== 10) throw new Error("fast3 sets interval 10");
 * ```
 *
 * Defaults are kcptun 2021's (Debian 20210922). Options that 2021 lacks keep 2021 behaviour at
 * their defaults (`-framesize 32768`, `-closewait 0`, `-ratelimit 0`). See docs/cli.md and
 * docs/compat.md.
 *
 * @module
 */

import {
  AddressError,
  CLIENT_LISTEN,
  CLIENT_REMOTE,
  type InetAddress,
  parseAddress,
  SERVER_LISTEN,
  SERVER_TARGET,
  type UnixAddress,
} from "./address.ts";
import { readJsonSettings } from "./config_file.ts";
import { type PluginSettings, pluginSettings, readPluginEnvironment } from "./sip003.ts";
import { type EnvLookup, type FlagValue, goQuote, parseArgs, UsageError } from "./flags.ts";
import {
  type CheckContext,
  CLIENT_FLAGS,
  type ClientSettingKey,
  ConfigError,
  type RawValue,
  type Role,
  SERVER_FLAGS,
  type ServerSettingKey,
  type SettingKey,
  settingsOf,
} from "./settings.ts";
import { renderHelp, versionText } from "./usage.ts";
import type { PipelineSpec } from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import type { StageOptions } from "../pipeline/stage.ts";
import type { CryptMethod } from "../transforms/crypt/suite_types.ts";
import { KCP_MODES } from "../transforms/kcp/modes.ts";
import { checkQppParams } from "../transforms/qpp/params.ts";

export type { Role } from "./settings.ts";

/**
 * `-mode` presets: nodelay, interval, resend, nc (identical in 2021 and 2026; the KCP layer's
 * table).
 */
export const MODE_PRESETS: ReadonlyMap<string, readonly [number, number, number, number]> = new Map(
  Object.entries(KCP_MODES).map(([name, p]) => [name, [p.nodelay, p.interval, p.resend, p.nc]]),
);

/**
 * Where a resolved value came from; `plugin` is the shadowsocks plugin environment (`SS_*`
 * addresses and `SS_PLUGIN_OPTIONS`).
 */
export type ValueSource = "default" | "env" | "flag" | "json" | "plugin" | "mode";

/** Settings both roles have. Field names are kcptun's JSON keys (`qpp-count` is `qppcount`). */
export interface CommonConfig {
  /** Pre-shared secret (`-key`, `$KCPTUN_KEY`). */
  readonly key: string;
  /** Effective encryption method (an unknown `-crypt` falls back to `aes`, as kcptun). */
  readonly crypt: CryptMethod;
  /** `-mode` as given; see {@link MODE_PRESETS}; anything else means manual. */
  readonly mode: string;
  /** Maximum datagram size. */
  readonly mtu: number;
  /** Outgoing bytes per second per KCP session, 0 = unlimited (2026 option). */
  readonly ratelimit: number;
  /** KCP send window (packets). */
  readonly sndwnd: number;
  /** KCP receive window (packets). */
  readonly rcvwnd: number;
  /** Reed-Solomon data shards (0 = FEC encoder off). */
  readonly datashard: number;
  /** Reed-Solomon parity shards (0 = FEC encoder off). */
  readonly parityshard: number;
  /** kcptun-ts `-autofec`: parity shards per group from the measured loss (docs/fec.md). */
  readonly autofec: boolean;
  /** DSCP (6 bits) for outgoing datagrams. */
  readonly dscp: number;
  /** Disable snappy compression. */
  readonly nocomp: boolean;
  /** Flush ACKs immediately. */
  readonly acknodelay: boolean;
  /** KCP nodelay, after the mode preset. */
  readonly nodelay: number;
  /** KCP interval (ms), after the mode preset. */
  readonly interval: number;
  /** KCP fast resend, after the mode preset. */
  readonly resend: number;
  /** KCP no-congestion-control, after the mode preset. */
  readonly nc: number;
  /** Socket send/receive buffer in bytes. */
  readonly sockbuf: number;
  /** smux protocol version, 1 or 2; 0 (server only): each session answers in its client's. */
  readonly smuxver: 0 | 1 | 2;
  /** smux session receive buffer in bytes. */
  readonly smuxbuf: number;
  /** smux maximum frame size (2026 option; 32768 = 2021 behaviour). */
  readonly framesize: number;
  /** smux v2 per-stream receive window in bytes. */
  readonly streambuf: number;
  /** Seconds between smux keepalives (1..30). */
  readonly keepalive: number;
  /** Seconds to wait after one direction of a stream ends before closing both (2026 option). */
  readonly closewait: number;
  /** Log file (append), `""` for stderr. */
  readonly log: string;
  /** SNMP CSV file, its file name part a Go time layout; `""` for none. */
  readonly snmplog: string;
  /** Seconds between SNMP CSV rows (≤ 0 disables). */
  readonly snmpperiod: number;
  /** Suppress per-stream open/close log lines. */
  readonly quiet: boolean;
  /** Fake TCP transport (tcpraw). */
  readonly tcp: boolean;
  /** `-pprof` was given (kcptun-ts has no HTTP profiler; a warning says what to use). */
  readonly pprof: boolean;
  /** `-QPP`: every smux stream's bytes go through QPP (2026 option; see transforms/qpp). */
  readonly qpp: boolean;
  /** `-QPPCount`: number of QPP pads (1..65535 when `qpp`; unused otherwise). */
  readonly qppcount: number;
  /** kcptun-ts `-replaywindow`: `aes-128-gcm` nonces remembered to drop replays (0 = off). */
  readonly replaywindow: number;
  /**
   * Explicit pipeline (`-pipeline` or JSON `pipeline`, with JSON `pipelineOptions` as its
   * `options`), or null for the one the flags imply ({@link defaultPipeline}).
   */
  readonly pipeline: PipelineSpec | null;
  /** kcptun-ts `-udptimeout`: idle seconds after which a UDP flow ends. */
  readonly udptimeout: number;
  /** `-metrics` (kcptun-ts): address of the Prometheus endpoint, `""` for none. */
  readonly metrics: string;
  /** `-stats` (kcptun-ts): seconds between stats lines in the log, 0 for none. */
  readonly stats: number;
  /** JSON `pipelineOptions`: options per stage name (`{}` when absent). */
  readonly pipelineOptions: Readonly<Record<string, StageOptions>>;
  /** The `-c` file, or `""`. */
  readonly configFile: string;
  /** True when `mode` is one of the presets. */
  readonly modePreset: boolean;
  /** Non-fatal notes for the startup log, one line each. */
  readonly warnings: readonly string[];
}

/** Client settings. */
export interface ClientConfig extends CommonConfig {
  /** Always `"client"`. */
  readonly role: "client";
  /** `-l` as given. */
  readonly localaddr: string;
  /** `-r` as given. */
  readonly remoteaddr: string;
  /** `-l` parsed: TCP (port 0 = ephemeral) or a unix socket path (2026). */
  readonly localAddress: InetAddress | UnixAddress;
  /** `-r` parsed: one port or a port range (2026). */
  readonly remoteAddress: InetAddress;
  /** Number of KCP sessions to the server (1..65535). */
  readonly conn: number;
  /** Seconds after which a session takes no new streams (≤ 0 = never). */
  readonly autoexpire: number;
  /** Seconds an expired session may live on. */
  readonly scavengettl: number;
  /** `-V`: shadowsocks-android's VPN mode (accepted; nothing to do off Android). */
  readonly vpn: boolean;
  /** kcptun-ts `-udp`: local UDP `host:port` whose datagrams are forwarded, `""` for none. */
  readonly udp: string;
  /** Where each setting came from. */
  readonly sources: Readonly<Record<ClientSettingKey, ValueSource>>;
}

/** Server settings. */
export interface ServerConfig extends CommonConfig {
  /** Always `"server"`. */
  readonly role: "server";
  /** `-l` as given. */
  readonly listen: string;
  /** `-t` as given. */
  readonly target: string;
  /** `-l` parsed: one UDP port (0 = ephemeral) or a port range (2026). */
  readonly listenAddress: InetAddress;
  /** `-t` parsed: TCP or a unix socket path. */
  readonly targetAddress: InetAddress | UnixAddress;
  /** kcptun-ts `-udp`: the UDP target `host:port` of the clients' flows, `""` for none. */
  readonly udp: string;
  /** Where each setting came from. */
  readonly sources: Readonly<Record<ServerSettingKey, ValueSource>>;
}

/** Fields of the config objects that are not settings of the table but derived from them. */
type DerivedField =
  | "role"
  | "pipelineOptions"
  | "configFile"
  | "modePreset"
  | "warnings"
  | "sources"
  | "localAddress"
  | "remoteAddress"
  | "listenAddress"
  | "targetAddress";

/**
 * `true` when `Config` has exactly the settings `Keys` (the table's for that role, with
 * `pipelineoptions` spelled `pipelineOptions`) and the derived fields, else `false`.
 */
type ExactlyTheTable<Config, Keys extends string> = [Exclude<Keys, "pipelineoptions">] extends
  [keyof Config] ? [Exclude<keyof Config, Keys | DerivedField>] extends [never] ? true : false
  : false;
type Holds<T extends true> = T;
// A setting added to the table without its config field (or the reverse) fails type checking here.
type _ClientConfigIsTheTable = Holds<ExactlyTheTable<ClientConfig, ClientSettingKey>>;
type _ServerConfigIsTheTable = Holds<ExactlyTheTable<ServerConfig, ServerSettingKey>>;

/** How a parse ended when the program should not run: print and exit. */
export interface CliExit {
  /** Always `"exit"`. */
  readonly kind: "exit";
  /** Process exit code: 0 help/version, 1 bad configuration, 2 bad command line. */
  readonly code: number;
  /** Text for stdout (help, version). */
  readonly stdout: string;
  /** Text for stderr (one line for an error). */
  readonly stderr: string;
}

/** The resolved configuration, or how to exit. */
export type CliOutcome<T> = { readonly kind: "run"; readonly config: T } | CliExit;

/** I/O a parse may need, injectable for tests. */
export interface ParseOptions {
  /** Reads the `-c` file (default `Deno.readTextFileSync`). */
  readonly readFile?: (path: string) => string;
  /** Program name for the help's USAGE line. */
  readonly programName?: string;
  /**
   * The stages the file's `pipeline` and `pipelineOptions` options are checked against (default:
   * the built-ins); the registry the pipeline will be built with.
   */
  readonly registry?: StageRegistry;
}

function readError(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return e instanceof Error ? e.message : String(e);
}

/** Parses `-pipeline a,b,c`. */
export function pipelineFromFlag(text: string): PipelineSpec {
  const stages = text.split(",").map((x) => x.trim());
  if (stages.some((x) => x === "")) {
    throw new ConfigError(`invalid -pipeline ${goQuote(text)}: empty stage name`);
  }
  return { stages };
}

/** The values being resolved, where they came from, and the warnings so far. */
class Resolver {
  constructor(readonly role: Role) {}
  readonly raw = new Map<SettingKey, RawValue>();
  readonly sources = new Map<SettingKey, ValueSource>();
  readonly warnings: string[] = [];
  /** Where values that did not come from flags came from, for messages: a file, a variable. */
  readonly origins = new Map<SettingKey, string>();
  configFile = "";
  plugin: PluginSettings | null = null;

  int(k: SettingKey): number {
    return this.raw.get(k) as number;
  }
  str(k: SettingKey): string {
    return this.raw.get(k) as string;
  }
  bool(k: SettingKey): boolean {
    return this.raw.get(k) as boolean;
  }
  origin(k: SettingKey): string {
    const o = this.origins.get(k);
    return o === undefined ? "" : ` (from ${o})`;
  }
  /** A one-line fatal about setting `k`. */
  bad(k: SettingKey, why: string): never {
    const v = this.raw.get(k);
    const shown = typeof v === "string" ? goQuote(v) : String(v);
    throw new ConfigError(`invalid ${k} ${shown}${this.origin(k)}: ${why}`);
  }
  /** What the table's check of setting `k` sees. */
  context(k: SettingKey): CheckContext {
    return {
      role: this.role,
      int: (other) => this.int(other as SettingKey),
      str: (other) => this.str(other as SettingKey),
      origin: this.origin(k),
      bad: (why) => this.bad(k, why),
      fail: (message) => {
        throw new ConfigError(message);
      },
      warn: (line) => this.warnings.push(line),
    };
  }
}

function resolve(
  role: Role,
  argv: readonly string[],
  env: EnvLookup,
  opts: ParseOptions,
): CliOutcome<ClientConfig | ServerConfig> {
  const specs = role === "client" ? CLIENT_FLAGS : SERVER_FLAGS;
  const programName = opts.programName ?? `kcptun-ts-${role}`;
  let parsed;
  try {
    parsed = parseArgs(specs, argv, env);
  } catch (e) {
    if (e instanceof UsageError) {
      return { kind: "exit", code: 2, stdout: "", stderr: `Incorrect Usage. ${e.message}\n` };
    }
    throw e;
  }
  if (parsed.values.get("help") === true || parsed.args.length > 0) {
    return { kind: "exit", code: 0, stdout: renderHelp(role, specs, programName), stderr: "" };
  }
  if (parsed.values.get("version") === true) {
    return { kind: "exit", code: 0, stdout: versionText(), stderr: "" };
  }

  const r = new Resolver(role);
  try {
    const pe = readPluginEnvironment(env);
    if (pe !== null) r.plugin = pluginSettings(role, specs, pe);
  } catch (e) {
    if (e instanceof UsageError) {
      return { kind: "exit", code: 2, stdout: "", stderr: `Incorrect Usage. ${e.message}\n` };
    }
    if (e instanceof ConfigError) {
      return { kind: "exit", code: 1, stdout: "", stderr: e.message + "\n" };
    }
    throw e;
  }
  try {
    for (const s of settingsOf(role)) {
      if (s.defaults === null) {
        // JSON only: per-stage options.
        r.raw.set(s.key, {});
        r.sources.set(s.key, "default");
        continue;
      }
      const flag = s.flags[0];
      const v = parsed.values.get(flag)!;
      r.sources.set(s.key, parsed.sources.get(flag)!);
      if (s.kind === "pipeline") {
        if (v !== "") r.raw.set(s.key, pipelineFromFlag(v as string));
      } else {
        r.raw.set(s.key, v);
      }
    }

    r.configFile = (r.plugin?.values.get("c") ?? parsed.values.get("c")) as string;
    if (r.configFile !== "") {
      const readFile = opts.readFile ?? Deno.readTextFileSync;
      let text: string;
      try {
        text = readFile(r.configFile);
      } catch (e) {
        throw new ConfigError(`cannot read config file ${goQuote(r.configFile)}: ${readError(e)}`);
      }
      const json = readJsonSettings(text, r.configFile, role, { registry: opts.registry });
      for (const [k, v] of json.values) {
        r.raw.set(k, v);
        r.sources.set(k, "json");
        r.origins.set(k, r.configFile);
      }
      if (json.unknown.length > 0) {
        r.warnings.push(
          `config file ${r.configFile}: ignoring unknown keys: ${
            json.unknown.map(goQuote).join(", ")
          }`,
        );
      }
    }
    if (r.plugin !== null) applyPlugin(role, r, r.plugin);
    return { kind: "run", config: finish(role, r) };
  } catch (e) {
    if (e instanceof ConfigError) {
      return { kind: "exit", code: 1, stdout: "", stderr: e.message + "\n" };
    }
    throw e;
  }
}

/** The plugin environment's values over the flags' and the file's, as the shadowsocks fork. */
function applyPlugin(role: Role, r: Resolver, plugin: PluginSettings): void {
  for (const s of settingsOf(role)) {
    const flag = s.flags[0];
    const v = flag === undefined ? undefined : plugin.values.get(flag);
    if (v === undefined) continue;
    r.raw.set(s.key, s.kind === "pipeline" ? pipelineFromFlag(v as string) : v);
    r.sources.set(s.key, "plugin");
    r.origins.set(s.key, plugin.origins.get(flag)!);
  }
  r.warnings.push(plugin.note);
}

/** QPP's checks, as kcptun 2026 makes them (its warnings come first in the startup log). */
function checkQpp(r: Resolver): void {
  if (!r.bool("qpp")) return;
  const check = checkQppParams(r.int("qppcount"), new TextEncoder().encode(r.str("key")).length);
  if (check.error !== null) throw new ConfigError(check.error + r.origin("qppcount"));
  r.warnings.push(...check.warnings);
}

/** Applies the `-mode` preset after the file, as kcptun; returns whether `mode` is one. */
function applyMode(r: Resolver): boolean {
  const mode = r.str("mode");
  const preset = MODE_PRESETS.get(mode);
  const kcpKeys = ["nodelay", "interval", "resend", "nc"] as const;
  if (preset) {
    const overridden = kcpKeys.filter((k) => r.sources.get(k) !== "default");
    if (overridden.length > 0) {
      r.warnings.push(
        `-mode ${mode} sets nodelay ${preset[0]} interval ${preset[1]} resend ${preset[2]} nc ${
          preset[3]
        }; ` +
          `the ${overridden.map((k) => "-" + k).join(", ")} given is ignored (use -mode manual)`,
      );
    }
    kcpKeys.forEach((k, i) => {
      r.raw.set(k, preset[i]);
      r.sources.set(k, "mode");
      r.origins.delete(k);
    });
  } else if (mode !== "manual") {
    r.warnings.push(
      `unknown -mode ${goQuote(mode)}: using manual parameters nodelay ${
        r.int("nodelay")
      } interval ${r.int("interval")} resend ${r.int("resend")} nc ${r.int("nc")}, as kcptun does`,
    );
  }
  return preset !== undefined;
}

function finish(role: Role, r: Resolver): ClientConfig | ServerConfig {
  checkQpp(r);
  const modePreset = applyMode(r);
  for (const s of settingsOf(role)) {
    if (s.check === undefined) continue;
    const checked = s.check(r.raw.get(s.key) as FlagValue, r.context(s.key));
    if (checked !== undefined) r.raw.set(s.key, checked);
  }
  if (role === "client") {
    const autoexpire = r.int("autoexpire");
    const scavengettl = r.int("scavengettl");
    if (autoexpire > 0 && scavengettl > autoexpire) {
      r.warnings.push(
        `scavengettl ${scavengettl} is bigger than autoexpire ${autoexpire}: expired sessions overlap their successors for long`,
      );
    }
  }

  // The table's values, then what is derived from them.
  const settings: Record<string, unknown> = {};
  for (const s of settingsOf(role)) {
    if (s.kind !== "pipeline" && s.kind !== "stageOptions") settings[s.key] = r.raw.get(s.key);
  }
  const pipelineOptions = r.raw.get("pipelineoptions") as Record<string, StageOptions>;
  const stages = (r.raw.get("pipeline") as PipelineSpec | undefined)?.stages;
  settings.pipeline = stages === undefined
    ? null
    : Object.keys(pipelineOptions).length > 0
    ? { stages, options: pipelineOptions }
    : { stages };
  const common = {
    pipelineOptions,
    configFile: r.configFile,
    modePreset,
    warnings: r.warnings,
  };

  const address = <T>(k: SettingKey, rules: typeof CLIENT_LISTEN): T => {
    try {
      return parseAddress(r.str(k), rules) as T;
    } catch (e) {
      if (e instanceof AddressError) r.bad(k, e.message);
      throw e;
    }
  };
  const unixHint = (k: SettingKey, a: InetAddress | UnixAddress) => {
    if (a.kind === "unix" && !a.path.includes("/")) {
      r.warnings.push(`${k} ${goQuote(a.path)} is not host:port: using it as a unix socket path`);
    }
  };

  if (role === "client") {
    const localAddress = address<InetAddress | UnixAddress>("localaddr", CLIENT_LISTEN);
    unixHint("localaddr", localAddress);
    const remoteAddress = address<InetAddress>("remoteaddr", CLIENT_REMOTE);
    const derived: Pick<ClientConfig, DerivedField & keyof ClientConfig> = {
      ...common,
      role: "client",
      localAddress,
      remoteAddress,
      sources: sourcesOf(role, r) as Record<ClientSettingKey, ValueSource>,
    };
    return { ...settings, ...derived } as ClientConfig;
  }
  const listenAddress = address<InetAddress>("listen", SERVER_LISTEN);
  const targetAddress = address<InetAddress | UnixAddress>("target", SERVER_TARGET);
  unixHint("target", targetAddress);
  const derived: Pick<ServerConfig, DerivedField & keyof ServerConfig> = {
    ...common,
    role: "server",
    listenAddress,
    targetAddress,
    sources: sourcesOf(role, r) as Record<ServerSettingKey, ValueSource>,
  };
  return { ...settings, ...derived } as ServerConfig;
}

/** Where each setting came from: the settings both roles have first, then the role's own. */
function sourcesOf(role: Role, r: Resolver): Record<string, ValueSource> {
  const own = settingsOf(role);
  const ordered = [
    ...own.filter((s) => s.roles === "both"),
    ...own.filter((s) => s.roles !== "both"),
  ];
  return Object.fromEntries(ordered.map((s) => [s.key, r.sources.get(s.key)!]));
}

/**
 * Resolves the client's configuration from its arguments (without the program name) and
 * environment. Never exits and never throws for user mistakes: help, version and every error
 * come back as a {@link CliExit} to print.
 */
export function parseClientConfig(
  argv: readonly string[],
  env: EnvLookup = {},
  opts: ParseOptions = {},
): CliOutcome<ClientConfig> {
  return resolve("client", argv, env, opts) as CliOutcome<ClientConfig>;
}

/** Resolves the server's configuration; see {@link parseClientConfig}. */
export function parseServerConfig(
  argv: readonly string[],
  env: EnvLookup = {},
  opts: ParseOptions = {},
): CliOutcome<ServerConfig> {
  return resolve("server", argv, env, opts) as CliOutcome<ServerConfig>;
}

/**
 * The pipeline kcptun's flags describe (docs/architecture.md), for when no explicit `pipeline`
 * is configured: `-QPP` adds `qpp` above `smux`; `-nocomp` drops `snappy`; `-tcp` uses `faketcp` instead of `udp`; `-crypt null`
 * drops `crypt` (`none` keeps it: its header is still on the wire); `fec` stays even with
 * `-ds 0 -ps 0` because Go peers may still send FEC; a unix socket end uses `unix` for `tcp`.
 * JSON `pipelineOptions` become its `options`.
 */
export function defaultPipeline(config: ClientConfig | ServerConfig): PipelineSpec {
  const appEnd = config.role === "client" ? config.localAddress : config.targetAddress;
  const stages: string[] = [appEnd.kind === "unix" ? "unix" : "tcp"];
  if (config.qpp) stages.push("qpp");
  stages.push("smux");
  if (!config.nocomp) stages.push("snappy");
  stages.push("kcp", "fec");
  if (config.crypt !== "null") stages.push("crypt");
  stages.push(config.tcp ? "faketcp" : "udp");
  return Object.keys(config.pipelineOptions).length > 0
    ? { stages, options: config.pipelineOptions }
    : { stages };
}

/** The pipeline to build: the configured one, else {@link defaultPipeline}. */
export function effectivePipeline(config: ClientConfig | ServerConfig): PipelineSpec {
  return config.pipeline ?? defaultPipeline(config);
}
