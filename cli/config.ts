/**
 * kcptun's configuration: flags, the `-c` JSON file, the `-mode` presets and the startup checks,
 * resolved into one typed object per role.
 *
 * Order, as kcptun: defaults → `KCPTUN_KEY` → command-line flags → JSON keys present in the file
 * (they override flags) → the `-mode` preset (it overrides nodelay/interval/resend/nc) → checks.
 *
 * ```ts
 * import { parseClientConfig } from "./config.ts";
 * const r = parseClientConfig(["-r", "127.0.0.1:29900", "-mode", "fast3"], {});
 * if (r.kind === "run") console.log(r.config.interval); // 10
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
import {
  type EnvLookup,
  type FlagSpec,
  type FlagValue,
  goQuote,
  parseArgs,
  UsageError,
} from "./flags.ts";
import { renderHelp, versionText } from "./usage.ts";
import type { PipelineEntry, PipelineSpec } from "../pipeline/pipeline.ts";
import type { StageOptions } from "../pipeline/stage.ts";
import { CRYPT_METHODS, type CryptMethod } from "../transforms/crypt/suite_types.ts";
import { KCP_MODES } from "../transforms/kcp/modes.ts";
import { checkQppParams } from "../transforms/qpp/params.ts";

/** Which end of the tunnel. */
export type Role = "client" | "server";

/**
 * `-mode` presets: nodelay, interval, resend, nc (identical in 2021 and 2026; the KCP layer's
 * table).
 */
export const MODE_PRESETS: ReadonlyMap<string, readonly [number, number, number, number]> = new Map(
  Object.entries(KCP_MODES).map(([name, p]) => [name, [p.nodelay, p.interval, p.resend, p.nc]]),
);

/** Where a resolved value came from. */
export type ValueSource = "default" | "env" | "flag" | "json" | "mode";

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
  /** smux protocol version, 1 or 2. */
  readonly smuxver: 1 | 2;
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
  /**
   * Explicit pipeline (`-pipeline` or JSON `pipeline`, with JSON `pipelineOptions` as its
   * `options`), or null for the one the flags imply ({@link defaultPipeline}).
   */
  readonly pipeline: PipelineSpec | null;
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
  /** Where each setting came from. */
  readonly sources: Readonly<Record<ServerSettingKey, ValueSource>>;
}

/** Every setting both roles have, as named in the config objects. */
export const COMMON_KEYS = [
  "key",
  "crypt",
  "mode",
  "qpp",
  "qppcount",
  "mtu",
  "ratelimit",
  "sndwnd",
  "rcvwnd",
  "datashard",
  "parityshard",
  "dscp",
  "nocomp",
  "acknodelay",
  "nodelay",
  "interval",
  "resend",
  "nc",
  "sockbuf",
  "smuxver",
  "smuxbuf",
  "framesize",
  "streambuf",
  "keepalive",
  "closewait",
  "snmplog",
  "snmpperiod",
  "log",
  "quiet",
  "tcp",
  "pprof",
  "pipeline",
  "pipelineoptions",
] as const;

/** A setting both roles have. */
export type CommonSettingKey = typeof COMMON_KEYS[number];
/** A client setting. */
export type ClientSettingKey =
  | CommonSettingKey
  | "localaddr"
  | "remoteaddr"
  | "conn"
  | "autoexpire"
  | "scavengettl";
/** A server setting. */
export type ServerSettingKey = CommonSettingKey | "listen" | "target";
/** Any setting. */
export type SettingKey = ClientSettingKey | ServerSettingKey;

/** How a setting is written (see {@link SettingInfo.kind}). */
export type SettingKind = "string" | "int" | "bool" | "pipeline" | "stageOptions";

/** One setting: its flag names, JSON key, type and help text. */
export interface SettingInfo {
  /** Field name in the config objects. */
  readonly key: SettingKey;
  /** kcptun's JSON key (matched case-insensitively). */
  readonly json: string;
  /** Flag names, canonical first (none: JSON only). */
  readonly flags: readonly string[];
  /**
   * Value type (`pipeline`: a comma list on the command line, an array in JSON;
   * `stageOptions`: JSON only, an object of objects).
   */
  readonly kind: SettingKind;
  /** Help text. */
  readonly usage: string;
  /** Hidden from the help, as in kcptun. */
  readonly hidden?: boolean;
  /** Environment variable. */
  readonly env?: string;
}

const CRYPT_USAGE =
  "aes, aes-128, aes-128-gcm, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, none, null";

function s(
  key: SettingKey,
  kind: SettingKind,
  usage: string,
  extra: Partial<SettingInfo> = {},
): SettingInfo {
  return { key, json: key, flags: [key], kind, usage, ...extra };
}

/** Every setting, by key. */
export const SETTINGS: ReadonlyMap<SettingKey, SettingInfo> = new Map(
  [
    s("localaddr", "string", "local listen address", { flags: ["localaddr", "l"] }),
    s(
      "remoteaddr",
      "string",
      'kcp server address, eg: "IP:29900" a for single port, "IP:minport-maxport" for port range',
      { flags: ["remoteaddr", "r"] },
    ),
    s(
      "listen",
      "string",
      'kcp server listen address, eg: "IP:29900" for a single port, "IP:minport-maxport" for port range',
      { flags: ["listen", "l"] },
    ),
    s("target", "string", "target server address, or path/to/unix_socket", {
      flags: ["target", "t"],
    }),
    s("key", "string", "pre-shared secret between client and server", { env: "KCPTUN_KEY" }),
    s("crypt", "string", CRYPT_USAGE),
    s("mode", "string", "profiles: fast3, fast2, fast, normal, manual"),
    s("qpp", "bool", "enable Quantum Permutation Pads(QPP)", { flags: ["QPP"] }),
    s(
      "qppcount",
      "int",
      "the prime number of pads to use for QPP: The more pads you use, the more secure the encryption. Each pad requires 256 bytes.",
      { json: "qpp-count", flags: ["QPPCount"] },
    ),
    s("conn", "int", "set num of UDP connections to server"),
    s(
      "autoexpire",
      "int",
      "set auto expiration time(in seconds) for a single UDP connection, 0 to disable",
    ),
    s("scavengettl", "int", "set how long an expired connection can live (in seconds)"),
    s("mtu", "int", "set maximum transmission unit for UDP packets"),
    s(
      "ratelimit",
      "int",
      "set maximum outgoing speed (in bytes per second) for a single KCP connection, 0 to disable",
    ),
    s("sndwnd", "int", "set send window size(num of packets)"),
    s("rcvwnd", "int", "set receive window size(num of packets)"),
    s("datashard", "int", "set reed-solomon erasure coding - datashard", {
      flags: ["datashard", "ds"],
    }),
    s("parityshard", "int", "set reed-solomon erasure coding - parityshard", {
      flags: ["parityshard", "ps"],
    }),
    s("dscp", "int", "set DSCP(6bit)"),
    s("nocomp", "bool", "disable compression"),
    s("acknodelay", "bool", "flush ack immediately when a packet is received", { hidden: true }),
    s("nodelay", "int", "", { hidden: true }),
    s("interval", "int", "", { hidden: true }),
    s("resend", "int", "", { hidden: true }),
    s("nc", "int", "", { hidden: true }),
    s("sockbuf", "int", "per-socket buffer in bytes"),
    s("smuxver", "int", "specify smux version, available 1,2"),
    s("smuxbuf", "int", "the overall de-mux buffer in bytes"),
    s("framesize", "int", "smux max frame size"),
    s("streambuf", "int", "per stream receive buffer in bytes, smux v2+"),
    s("keepalive", "int", "seconds between heartbeats"),
    s("closewait", "int", "the seconds to wait before tearing down a connection"),
    s(
      "snmplog",
      "string",
      "collect snmp to file, aware of timeformat in golang, like: ./snmp-20060102.log",
    ),
    s("snmpperiod", "int", "snmp collect period, in seconds"),
    s("log", "string", "specify a log file to output, default goes to stderr"),
    s("quiet", "bool", "to suppress the 'stream open/close' messages"),
    s("tcp", "bool", "to emulate a TCP connection(linux)"),
    s(
      "pprof",
      "bool",
      "accepted for compatibility; kcptun-ts has no HTTP profiler (see docs/cli.md)",
    ),
    s(
      "pipeline",
      "pipeline",
      "kcptun-ts: stage list, outermost first, comma-separated, eg: tcp,smux,snappy,kcp,fec,crypt,udp",
    ),
    s("pipelineoptions", "stageOptions", "kcptun-ts: options per stage name (JSON only)", {
      json: "pipelineOptions",
      flags: [],
    }),
  ].map((i) => [i.key, i]),
);

/** A setting's value before checks: a flag value, a pipeline, or per-stage options. */
export type RawValue = FlagValue | PipelineSpec | Record<string, StageOptions>;

type FlagSettingKey = Exclude<CommonSettingKey, "pipelineoptions">;

const COMMON_DEFAULTS: Readonly<Record<FlagSettingKey, FlagValue>> = {
  key: "it's a secrect",
  crypt: "aes",
  mode: "fast",
  qpp: false,
  qppcount: 61,
  mtu: 1350,
  ratelimit: 0,
  sndwnd: 128,
  rcvwnd: 512,
  datashard: 10,
  parityshard: 3,
  dscp: 0,
  nocomp: false,
  acknodelay: false,
  nodelay: 0,
  interval: 50,
  resend: 0,
  nc: 0,
  sockbuf: 4194304,
  smuxver: 1,
  smuxbuf: 4194304,
  framesize: 32768,
  streambuf: 2097152,
  keepalive: 10,
  closewait: 0,
  snmplog: "",
  snmpperiod: 60,
  log: "",
  quiet: false,
  tcp: false,
  pprof: false,
  pipeline: "",
};

/** Client defaults (kcptun 2021). */
export const CLIENT_DEFAULTS: Readonly<
  Record<Exclude<ClientSettingKey, "pipelineoptions">, FlagValue>
> = {
  ...COMMON_DEFAULTS,
  localaddr: ":12948",
  remoteaddr: "vps:29900",
  conn: 1,
  autoexpire: 0,
  scavengettl: 600,
};

/** Server defaults (kcptun 2021). */
export const SERVER_DEFAULTS: Readonly<
  Record<Exclude<ServerSettingKey, "pipelineoptions">, FlagValue>
> = {
  ...COMMON_DEFAULTS,
  listen: ":29900",
  target: "127.0.0.1:12948",
  sndwnd: 1024,
  rcvwnd: 1024,
};

const CONFIG_FLAG: FlagSpec = {
  names: ["c"],
  kind: "string",
  defaultValue: "",
  usage: "config from json file, which will override the command from shell",
};
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

// Help order: kcptun 2021's, with 2026 options where 2026 puts them and ours at the end.
const CLIENT_ORDER = [
  "localaddr",
  "remoteaddr",
  "key",
  "crypt",
  "mode",
  "qpp",
  "qppcount",
  "conn",
  "autoexpire",
  "scavengettl",
  "mtu",
  "ratelimit",
  "sndwnd",
  "rcvwnd",
  "datashard",
  "parityshard",
  "dscp",
  "nocomp",
  "acknodelay",
  "nodelay",
  "interval",
  "resend",
  "nc",
  "sockbuf",
  "smuxver",
  "smuxbuf",
  "framesize",
  "streambuf",
  "keepalive",
  "closewait",
  "snmplog",
  "snmpperiod",
  "log",
  "quiet",
  "tcp",
  "c",
  "pprof",
  "pipeline",
] as const;

const SERVER_ORDER = [
  "listen",
  "target",
  "key",
  "crypt",
  "qpp",
  "qppcount",
  "mode",
  "mtu",
  "ratelimit",
  "sndwnd",
  "rcvwnd",
  "datashard",
  "parityshard",
  "dscp",
  "nocomp",
  "acknodelay",
  "nodelay",
  "interval",
  "resend",
  "nc",
  "sockbuf",
  "smuxver",
  "smuxbuf",
  "framesize",
  "streambuf",
  "keepalive",
  "closewait",
  "snmplog",
  "snmpperiod",
  "pprof",
  "log",
  "quiet",
  "tcp",
  "c",
  "pipeline",
] as const;

function flagSpecs(
  order: readonly string[],
  defaults: Readonly<Record<string, FlagValue>>,
): FlagSpec[] {
  const out: FlagSpec[] = [];
  for (const key of order) {
    if (key === "c") {
      out.push(CONFIG_FLAG);
      continue;
    }
    const info = SETTINGS.get(key as SettingKey)!;
    out.push({
      names: info.flags,
      kind: info.kind === "pipeline" || info.kind === "stageOptions" ? "string" : info.kind,
      defaultValue: defaults[key],
      usage: info.usage,
      env: info.env,
      hidden: info.hidden,
    });
  }
  out.push(HELP_FLAG, VERSION_FLAG);
  return out;
}

/** The client's flags in help order (hidden ones included, `-h` and `-v` last). */
export const CLIENT_FLAGS: readonly FlagSpec[] = flagSpecs(CLIENT_ORDER, CLIENT_DEFAULTS);
/** The server's flags in help order (hidden ones included, `-h` and `-v` last). */
export const SERVER_FLAGS: readonly FlagSpec[] = flagSpecs(SERVER_ORDER, SERVER_DEFAULTS);

// ---------------------------------------------------------------------------------------------
// JSON

/** Byte-exact JSON syntax error with its position (1-based line and column). */
export class JsonSyntaxError extends Error {
  /** Names the error class in stack traces. */
  override name = "JsonSyntaxError";
  /** Line of the offending character. */
  readonly line: number;
  /** Column of the offending character. */
  readonly column: number;
  /** Builds the error; the message gets the position appended. */
  constructor(message: string, line: number, column: number) {
    super(`${message} at line ${line}, column ${column}`);
    this.line = line;
    this.column = column;
  }
}

/** A parsed JSON value that remembers where it was and how a number was written. */
export type JsonNode =
  | { readonly t: "string"; readonly v: string; readonly at: number }
  | { readonly t: "number"; readonly raw: string; readonly at: number }
  | { readonly t: "bool"; readonly v: boolean; readonly at: number }
  | { readonly t: "null"; readonly at: number }
  | { readonly t: "array"; readonly items: readonly JsonNode[]; readonly at: number }
  | { readonly t: "object"; readonly members: readonly JsonMember[]; readonly at: number };

/** One `"key": value` pair, in document order (duplicates kept, the last one wins). */
export interface JsonMember {
  /** The decoded key. */
  readonly key: string;
  /** Offset of the key in the text. */
  readonly at: number;
  /** The value. */
  readonly value: JsonNode;
}

/** 1-based line and column of a text offset. */
export function positionOf(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < at && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: at - start + 1 };
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = goQuote(c);
  return "'" + q.slice(1, -1) + "'";
}

/**
 * Parses JSON text strictly (RFC 8259, as Go's encoding/json: no comments, no trailing commas),
 * keeping positions and number spellings. A leading byte order mark is skipped. Throws
 * {@link JsonSyntaxError} with Go's wording and the line and column.
 */
export function parseJsonText(text: string): JsonNode {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (msg: string, at = i): never => {
    const p = positionOf(text, at);
    throw new JsonSyntaxError(msg, p.line, p.column);
  };
  const eof = (): never => fail("unexpected end of JSON input", text.length);
  const ws = () => {
    for (;;) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") i++;
      else return;
    }
  };
  const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

  const literal = (word: string, node: JsonNode): JsonNode => {
    for (let k = 0; k < word.length; k++) {
      const c = text[i + k];
      if (c === undefined) return eof();
      if (c !== word[k]) {
        return fail(
          `invalid character ${quoteChar(c)} in literal ${word} (expecting ${quoteChar(word[k])})`,
          i + k,
        );
      }
    }
    i += word.length;
    return node;
  };

  const str = (): string => {
    i++; // opening quote
    let out = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) return eof();
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === undefined) return eof();
        const simple: Record<string, string> = {
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (e in simple) {
          out += simple[e];
          i += 2;
          continue;
        }
        if (e !== "u") {
          return fail(`invalid character ${quoteChar(e)} in string escape code`, i + 1);
        }
        const hex = (from: number): number => {
          for (let k = 0; k < 4; k++) {
            const h = text[from + k];
            if (h === undefined) return eof();
            if (!/[0-9a-fA-F]/.test(h)) {
              return fail(
                `invalid character ${quoteChar(h)} in \\u hexadecimal character escape`,
                from + k,
              );
            }
          }
          return parseInt(text.slice(from, from + 4), 16);
        };
        const u = hex(i + 2);
        i += 6;
        if (u >= 0xd800 && u < 0xdc00) {
          // A high surrogate pairs with a following \u low surrogate; alone it is U+FFFD (Go).
          if (text[i] === "\\" && text[i + 1] === "u") {
            const l = hex(i + 2);
            if (l >= 0xdc00 && l < 0xe000) {
              out += String.fromCharCode(u, l);
              i += 6;
              continue;
            }
          }
          out += "\ufffd";
        } else if (u >= 0xdc00 && u < 0xe000) {
          out += "\ufffd";
        } else {
          out += String.fromCharCode(u);
        }
        continue;
      }
      if (c.charCodeAt(0) < 0x20) {
        return fail(`invalid character ${quoteChar(c)} in string literal`);
      }
      out += c;
      i++;
    }
  };

  const num = (): JsonNode => {
    const at = i;
    if (text[i] === "-") i++;
    if (text[i] === undefined) return eof();
    if (text[i] === "0") i++;
    else if (isDigit(text[i])) { while (isDigit(text[i])) i++; }
    else return fail(`invalid character ${quoteChar(text[i])} in numeric literal`);
    if (text[i] === ".") {
      i++;
      if (text[i] === undefined) return eof();
      if (!isDigit(text[i])) {
        return fail(
          `invalid character ${quoteChar(text[i])} after decimal point in numeric literal`,
        );
      }
      while (isDigit(text[i])) i++;
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      if (text[i] === undefined) return eof();
      if (!isDigit(text[i])) {
        return fail(`invalid character ${quoteChar(text[i])} in exponent of numeric literal`);
      }
      while (isDigit(text[i])) i++;
    }
    return { t: "number", raw: text.slice(at, i), at };
  };

  const value = (): JsonNode => {
    ws();
    const c = text[i];
    const at = i;
    if (c === undefined) return eof();
    if (c === "{") {
      i++;
      const members: JsonMember[] = [];
      ws();
      if (text[i] === "}") {
        i++;
        return { t: "object", members, at };
      }
      for (;;) {
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] !== '"') {
          return fail(
            `invalid character ${quoteChar(text[i])} looking for beginning of object key string`,
          );
        }
        const keyAt = i;
        const key = str();
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] !== ":") {
          return fail(`invalid character ${quoteChar(text[i])} after object key`);
        }
        i++;
        members.push({ key, at: keyAt, value: value() });
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return { t: "object", members, at };
        }
        return fail(`invalid character ${quoteChar(text[i])} after object key:value pair`);
      }
    }
    if (c === "[") {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return { t: "array", items, at };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === undefined) return eof();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return { t: "array", items, at };
        }
        return fail(`invalid character ${quoteChar(text[i])} after array element`);
      }
    }
    if (c === '"') return { t: "string", v: str(), at };
    if (c === "t") return literal("true", { t: "bool", v: true, at });
    if (c === "f") return literal("false", { t: "bool", v: false, at });
    if (c === "n") return literal("null", { t: "null", at });
    if (c === "-" || isDigit(c)) return num();
    return fail(`invalid character ${quoteChar(c)} looking for beginning of value`);
  };

  const root = value();
  ws();
  if (i < text.length) fail(`invalid character ${quoteChar(text[i])} after top-level value`);
  return root;
}

/** Plain JavaScript value of a node (numbers as JavaScript numbers). */
export function jsonToPlain(node: JsonNode): unknown {
  switch (node.t) {
    case "string":
    case "bool":
      return node.v;
    case "number":
      return Number(node.raw);
    case "null":
      return null;
    case "array":
      return node.items.map(jsonToPlain);
    case "object": {
      const o: Record<string, unknown> = {};
      for (const m of node.members) o[m.key] = jsonToPlain(m.value);
      return o;
    }
  }
}

/** Folds a key as Go's encoding/json compares field names (case-insensitive, K/ſ included). */
export function foldKey(key: string): string {
  let out = "";
  for (const ch of key) {
    if (ch >= "A" && ch <= "Z") out += ch.toLowerCase();
    else if (ch === "\u212a") out += "k";
    else if (ch === "\u017f") out += "s";
    else out += ch;
  }
  return out;
}

function describeNode(node: JsonNode): string {
  switch (node.t) {
    case "string": {
      const q = goQuote(node.v);
      return `string ${q.length > 40 ? q.slice(0, 37) + '..."' : q}`;
    }
    case "number":
      return `number ${node.raw}`;
    case "bool":
      return `${node.v}`;
    case "null":
      return "null";
    case "array":
      return "an array";
    case "object":
      return "an object";
  }
}

/** A fatal configuration problem: one line for stderr, exit code 1. */
export class ConfigError extends Error {
  /** Names the error class in stack traces. */
  override name = "ConfigError";
}

/** What a JSON file contributes: values by setting key, and the keys that were ignored. */
export interface JsonSettings {
  /** Settings present (null values are skipped, as Go does). */
  readonly values: Map<SettingKey, RawValue>;
  /** Keys that name no setting of this role, as written. */
  readonly unknown: readonly string[];
}

function settingKeysOf(role: Role): readonly SettingKey[] {
  const keys: SettingKey[] = role === "client"
    ? Object.keys(CLIENT_DEFAULTS) as ClientSettingKey[]
    : Object.keys(SERVER_DEFAULTS) as ServerSettingKey[];
  return [...keys, "pipelineoptions"];
}

type Where = (n: JsonNode) => string;

function stageOptionsOf(n: JsonNode, where: Where, what: string): StageOptions {
  if (n.t !== "object") {
    throw new ConfigError(`${where(n)}: ${what} must be an object, got ${describeNode(n)}`);
  }
  return jsonToPlain(n) as StageOptions;
}

function pipelineFromJson(node: JsonNode, where: Where): PipelineSpec {
  const bad = (n: JsonNode, why: string): never => {
    throw new ConfigError(`${where(n)}: ${why}`);
  };
  const entry = (n: JsonNode): PipelineEntry => {
    if (n.t === "string") {
      if (n.v.trim() === "") return bad(n, "empty stage name in pipeline");
      return n.v.trim();
    }
    if (n.t !== "object") {
      return bad(
        n,
        `a pipeline entry is a stage name or { "stage", "options" }, got ${describeNode(n)}`,
      );
    }
    let stage: string | undefined;
    let options: StageOptions | undefined;
    for (const m of n.members) {
      if (m.key === "stage") {
        if (m.value.t !== "string" || m.value.v.trim() === "") {
          return bad(m.value, `"stage" must be a non-empty string, got ${describeNode(m.value)}`);
        }
        stage = m.value.v.trim();
      } else if (m.key === "options") {
        options = stageOptionsOf(m.value, where, "stage options");
      } else {
        return bad(
          m.value,
          `unknown key ${goQuote(m.key)} in a pipeline entry (expected "stage", "options")`,
        );
      }
    }
    if (stage === undefined) return bad(n, 'a pipeline entry object needs "stage"');
    return options === undefined ? { stage } : { stage, options };
  };
  if (node.t !== "array") {
    return bad(node, `pipeline must be an array of stages, got ${describeNode(node)}`);
  }
  if (node.items.length === 0) return bad(node, "pipeline is empty");
  return { stages: node.items.map(entry) };
}

function pipelineOptionsFromJson(node: JsonNode, where: Where): Record<string, StageOptions> {
  if (node.t !== "object") {
    throw new ConfigError(
      `${where(node)}: expected an object of per-stage option objects, got ${describeNode(node)}`,
    );
  }
  const out: Record<string, StageOptions> = {};
  for (const m of node.members) {
    out[m.key] = stageOptionsOf(m.value, where, `options of stage ${goQuote(m.key)}`);
  }
  return out;
}

/**
 * Reads a kcptun JSON config for `role`: keys matched case-insensitively (a later duplicate
 * wins), `null` values skipped, unknown keys collected. Throws {@link ConfigError} (one line,
 * naming `file`, the key and its line and column) for broken JSON or a value of the wrong type.
 */
export function readJsonSettings(text: string, file: string, role: Role): JsonSettings {
  let root: JsonNode;
  try {
    root = parseJsonText(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      if (text.replace(/^\ufeff/, "").trim() === "") {
        throw new ConfigError(`config file ${goQuote(file)}: the file is empty`);
      }
      throw new ConfigError(`config file ${goQuote(file)}: ${e.message}`);
    }
    throw e;
  }
  if (root.t !== "object") {
    throw new ConfigError(
      `config file ${goQuote(file)}: expected a JSON object, got ${describeNode(root)}`,
    );
  }
  const byJson = new Map<string, SettingInfo>();
  for (const key of settingKeysOf(role)) {
    const info = SETTINGS.get(key)!;
    byJson.set(foldKey(info.json), info);
  }
  const values = new Map<SettingKey, RawValue>();
  const unknown: string[] = [];
  for (const m of root.members) {
    const info = byJson.get(foldKey(m.key));
    if (!info) {
      if (!unknown.includes(m.key)) unknown.push(m.key);
      continue;
    }
    const v = m.value;
    if (v.t === "null") continue;
    const where = (n: JsonNode) => {
      const p = positionOf(text, n.at);
      return `config file ${goQuote(file)}: ${
        goQuote(m.key)
      } at line ${p.line}, column ${p.column}`;
    };
    const mismatch = (expected: string): never => {
      throw new ConfigError(`${where(v)}: expected ${expected}, got ${describeNode(v)}`);
    };
    switch (info.kind) {
      case "string":
        if (v.t !== "string") mismatch("a string");
        else values.set(info.key, v.v);
        break;
      case "bool":
        if (v.t !== "bool") mismatch("true or false");
        else values.set(info.key, v.v);
        break;
      case "int": {
        if (v.t !== "number" || !/^-?[0-9]+$/.test(v.raw)) mismatch("an integer");
        else {
          const n = BigInt(v.raw);
          if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
            mismatch("an integer in range");
          }
          values.set(info.key, Number(n));
        }
        break;
      }
      case "pipeline":
        values.set(info.key, pipelineFromJson(v, where));
        break;
      case "stageOptions":
        values.set(info.key, pipelineOptionsFromJson(v, where));
        break;
    }
  }
  return { values, unknown };
}

// ---------------------------------------------------------------------------------------------
// Resolution

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

class Resolver {
  readonly raw = new Map<SettingKey, RawValue>();
  readonly sources = new Map<SettingKey, ValueSource>();
  readonly warnings: string[] = [];
  configFile = "";

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
    return this.sources.get(k) === "json" ? ` (from ${this.configFile})` : "";
  }
  /** A one-line fatal about setting `k`. */
  bad(k: SettingKey, why: string): never {
    const v = this.raw.get(k);
    const shown = typeof v === "string" ? goQuote(v) : String(v);
    throw new ConfigError(`invalid ${k} ${shown}${this.origin(k)}: ${why}`);
  }
  range(k: SettingKey, min: number, max: number, unit = ""): number {
    const v = this.int(k);
    if (v < min || v > max) this.bad(k, `must be between ${min} and ${max}${unit}`);
    return v;
  }
}

function resolve(
  role: Role,
  argv: readonly string[],
  env: EnvLookup,
  opts: ParseOptions,
): CliOutcome<ClientConfig | ServerConfig> {
  const specs = role === "client" ? CLIENT_FLAGS : SERVER_FLAGS;
  const defaults: Readonly<Record<string, FlagValue>> = role === "client"
    ? CLIENT_DEFAULTS
    : SERVER_DEFAULTS;
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

  const r = new Resolver();
  try {
    r.raw.set("pipelineoptions", {});
    r.sources.set("pipelineoptions", "default");
    for (const key of Object.keys(defaults) as SettingKey[]) {
      const flag = SETTINGS.get(key)!.flags[0];
      const v = parsed.values.get(flag)!;
      r.sources.set(key, parsed.sources.get(flag)!);
      if (key === "pipeline") {
        if (v !== "") r.raw.set(key, pipelineFromFlag(v as string));
      } else {
        r.raw.set(key, v);
      }
    }

    r.configFile = parsed.values.get("c") as string;
    if (r.configFile !== "") {
      const readFile = opts.readFile ?? Deno.readTextFileSync;
      let text: string;
      try {
        text = readFile(r.configFile);
      } catch (e) {
        throw new ConfigError(`cannot read config file ${goQuote(r.configFile)}: ${readError(e)}`);
      }
      const json = readJsonSettings(text, r.configFile, role);
      for (const [k, v] of json.values) {
        r.raw.set(k, v);
        r.sources.set(k, "json");
      }
      if (json.unknown.length > 0) {
        r.warnings.push(
          `config file ${r.configFile}: ignoring unknown keys: ${
            json.unknown.map(goQuote).join(", ")
          }`,
        );
      }
    }
    return { kind: "run", config: finish(role, r) };
  } catch (e) {
    if (e instanceof ConfigError) {
      return { kind: "exit", code: 1, stdout: "", stderr: e.message + "\n" };
    }
    throw e;
  }
}

function finish(role: Role, r: Resolver): ClientConfig | ServerConfig {
  const qpp = r.bool("qpp");
  if (qpp) {
    const check = checkQppParams(r.int("qppcount"), new TextEncoder().encode(r.str("key")).length);
    if (check.error !== null) throw new ConfigError(check.error + r.origin("qppcount"));
    r.warnings.push(...check.warnings);
  }

  // Mode preset after the file, as kcptun.
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
    });
  } else if (mode !== "manual") {
    r.warnings.push(
      `unknown -mode ${goQuote(mode)}: using manual parameters nodelay ${
        r.int("nodelay")
      } interval ${r.int("interval")} resend ${r.int("resend")} nc ${r.int("nc")}, as kcptun does`,
    );
  }

  let crypt = r.str("crypt") as CryptMethod;
  if (!(CRYPT_METHODS as readonly string[]).includes(crypt)) {
    r.warnings.push(`unknown -crypt ${goQuote(crypt)}: using aes, as kcptun does`);
    crypt = "aes";
  } else if (crypt === "null" || crypt === "aes-128-gcm") {
    r.warnings.push(
      `-crypt ${crypt} is a kcptun 2026 method: a kcptun 2021 peer does not know it and uses aes instead`,
    );
  }

  let ratelimit = r.int("ratelimit");
  if (ratelimit < 0) {
    r.warnings.push(`ratelimit ${ratelimit} is negative, falling back to 0`);
    ratelimit = 0;
  }

  const smuxver = r.int("smuxver");
  if (smuxver !== 1 && smuxver !== 2) {
    throw new ConfigError(
      `unsupported smux version: ${smuxver}${r.origin("smuxver")} (available: 1, 2)`,
    );
  }
  const keepalive = r.range(
    "keepalive",
    1,
    30,
    " seconds (smux closes a session after 30 s without traffic)",
  );
  const smuxbuf = r.int("smuxbuf");
  if (smuxbuf <= 0) r.bad("smuxbuf", "max receive buffer must be positive");
  const streambuf = r.int("streambuf");
  if (streambuf <= 0) r.bad("streambuf", "max stream buffer must be positive");
  if (streambuf > smuxbuf) {
    r.bad(
      "streambuf",
      `max stream buffer must not be larger than max receive buffer (smuxbuf ${smuxbuf})`,
    );
  }
  const framesize = r.range("framesize", 1, 65535);

  const datashard = r.int("datashard");
  const parityshard = r.int("parityshard");
  if (datashard < 0) r.bad("datashard", "must be 0 (FEC off) or more");
  if (parityshard < 0) r.bad("parityshard", "must be 0 (FEC off) or more");
  if (datashard > 0 && parityshard > 0 && datashard + parityshard > 256) {
    r.bad("parityshard", `datashard + parityshard must be at most 256 (datashard ${datashard})`);
  }
  const fec = datashard > 0 && parityshard > 0;
  const cryptOverhead = crypt === "null" ? 0 : crypt === "aes-128-gcm" ? 28 : 20;
  const minMtu = 50 + cryptOverhead + (fec ? 8 : 0);
  const mtu = r.int("mtu");
  if (mtu > 1500) r.bad("mtu", "must be at most 1500 (the receive buffer size)");
  if (mtu < minMtu) {
    r.bad(
      "mtu",
      `must be at least ${minMtu} with -crypt ${crypt}${
        fec ? " and FEC" : ""
      } (KCP needs 50 bytes after ${minMtu - 50} bytes of headers)`,
    );
  }
  const sndwnd = r.range("sndwnd", 1, 65535, " packets");
  const rcvwnd = r.range("rcvwnd", 1, 65535, " packets");
  const dscp = r.range("dscp", 0, 63);
  const sockbuf = r.int("sockbuf");
  if (sockbuf < 0) r.bad("sockbuf", "must not be negative");
  const closewait = r.int("closewait");
  if (closewait < 0) r.bad("closewait", "must not be negative");
  const snmpperiod = r.int("snmpperiod");
  if (r.str("snmplog") !== "" && snmpperiod <= 0) {
    r.warnings.push(
      `snmplog ${r.str("snmplog")} is not written: snmpperiod ${snmpperiod} is not positive`,
    );
  }
  const pprof = r.bool("pprof");
  if (pprof) {
    r.warnings.push(
      "pprof: kcptun-ts has no profiling server on :6060; profile with deno run --inspect (Chrome DevTools) or --v8-flags=--prof",
    );
  }
  const pipelineOptions = r.raw.get("pipelineoptions") as Record<string, StageOptions>;
  const stages = (r.raw.get("pipeline") as PipelineSpec | undefined)?.stages;
  const pipeline: PipelineSpec | null = stages === undefined
    ? null
    : Object.keys(pipelineOptions).length > 0
    ? { stages, options: pipelineOptions }
    : { stages };

  const common: CommonConfig = {
    key: r.str("key"),
    crypt,
    mode,
    mtu,
    ratelimit,
    sndwnd,
    rcvwnd,
    datashard,
    parityshard,
    dscp,
    nocomp: r.bool("nocomp"),
    acknodelay: r.bool("acknodelay"),
    nodelay: r.int("nodelay"),
    interval: r.int("interval"),
    resend: r.int("resend"),
    nc: r.int("nc"),
    sockbuf,
    smuxver,
    smuxbuf,
    framesize,
    streambuf,
    keepalive,
    closewait,
    log: r.str("log"),
    snmplog: r.str("snmplog"),
    snmpperiod,
    quiet: r.bool("quiet"),
    tcp: r.bool("tcp"),
    pprof,
    qpp,
    qppcount: r.int("qppcount"),
    pipeline,
    pipelineOptions,
    configFile: r.configFile,
    modePreset: preset !== undefined,
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
    const conn = r.range("conn", 1, 65535);
    const autoexpire = r.int("autoexpire");
    const scavengettl = r.int("scavengettl");
    if (autoexpire > 0 && scavengettl > autoexpire) {
      r.warnings.push(
        `scavengettl ${scavengettl} is bigger than autoexpire ${autoexpire}: expired sessions overlap their successors for long`,
      );
    }
    const localAddress = address<InetAddress | UnixAddress>("localaddr", CLIENT_LISTEN);
    unixHint("localaddr", localAddress);
    const remoteAddress = address<InetAddress>("remoteaddr", CLIENT_REMOTE);
    return {
      ...common,
      role: "client",
      localaddr: r.str("localaddr"),
      remoteaddr: r.str("remoteaddr"),
      localAddress,
      remoteAddress,
      conn,
      autoexpire,
      scavengettl,
      sources: Object.fromEntries(r.sources) as Record<ClientSettingKey, ValueSource>,
    };
  }
  const listenAddress = address<InetAddress>("listen", SERVER_LISTEN);
  const targetAddress = address<InetAddress | UnixAddress>("target", SERVER_TARGET);
  unixHint("target", targetAddress);
  return {
    ...common,
    role: "server",
    listen: r.str("listen"),
    target: r.str("target"),
    listenAddress,
    targetAddress,
    sources: Object.fromEntries(r.sources) as Record<ServerSettingKey, ValueSource>,
  };
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
