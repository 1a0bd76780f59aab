/**
 * `-metrics ADDR` (kcptun-ts): an HTTP endpoint for Prometheus. `GET /metrics` answers with every
 * SNMP counter, the per-session state of KCP and smux, the process's memory and CPU, and a build
 * info gauge, in the OpenMetrics 1.0 text format when the scraper asks for it (Prometheus does)
 * and in Prometheus' text format 0.0.4 otherwise; `GET /healthz` answers `ok` while the end runs.
 *
 * The text is made by {@link renderMetrics} (pure, given a {@link MetricsSource});
 * {@link serveMetrics} adds the HTTP server (`Deno.serve`, bound to the given address only).
 * The names are listed in docs/cli.md (Metrics).
 *
 * ```ts
 * import { Snmp } from "../pipeline/snmp.ts";
 * import { renderMetrics } from "./metrics.ts";
 *
 * const snmp = new Snmp();
 * snmp.InPkts = 42;
 * const text = renderMetrics({ role: "server", snmp, sessions: () => [] }, "prometheus", {
 *   process: null,
 * });
 * if (!text.includes("\n# TYPE kcptun_in_datagrams_total counter\nkcptun_in_datagrams_total 42\n")) {
 *   throw new Error(text);
 * }
 * ```
 *
 * @module
 */

import type { SnmpField } from "../pipeline/snmp.ts";
import { AddressError, joinHostPort, parseAddress } from "./address.ts";
import { VERSION } from "./usage.ts";

/** The two text formats: OpenMetrics 1.0, or Prometheus' text format 0.0.4. */
export type MetricsFormat = "openmetrics" | "prometheus";

/** Content type of each format. */
export const METRICS_CONTENT_TYPES: Readonly<Record<MetricsFormat, string>> = {
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
};

/**
 * The most sessions given series of their own. A server may carry thousands: past this, the
 * sessions with the most streams are itemized (ties by address) and the rest only counted
 * (`kcptun_sessions_unlisted`), so that a scrape stays small and its series bounded.
 */
export const METRICS_SESSION_LIMIT = 64;

/** What the per-session series read of a session (a runtime `TunnelSession` has it). */
export interface MetricsSession {
  /** The peer's address. */
  readonly remote: string;
  /** The local socket's address. */
  readonly local: string;
  /** Streams open now. */
  readonly streamCount: number;
  /** The session's state. */
  readonly connection: {
    /** Datagrams FEC rebuilt for it. */
    readonly fecRecovered: number;
    /** Its KCP core (times in ms, windows and queues in segments). */
    readonly kcp: {
      readonly srtt: number;
      readonly rttvar: number;
      readonly rto: number;
      readonly cwnd: number;
      readonly sndWnd: number;
      readonly rcvWnd: number;
      readonly rmtWnd: number;
      readonly sndQueueCount: number;
      readonly sndBufCount: number;
      readonly rcvQueueCount: number;
      readonly reorderCount: number;
      readonly retransmits: number;
    };
    /** Its smux session (bytes). */
    readonly smux: {
      readonly queuedSendBytes: number;
      readonly bufferedBytes: number;
    };
  };
}

/** What a scrape shows of an end. */
export interface MetricsSource {
  /** Which end. */
  readonly role: "client" | "server";
  /** Its counters. */
  readonly snmp: Readonly<Record<SnmpField, number>>;
  /** Its live sessions now. */
  sessions(): Iterable<MetricsSession>;
}

/** The process figures, read from `/proc/self` (Linux). */
export interface ProcessFigures {
  /** User and system CPU time (s). */
  readonly cpuSeconds: number;
  /** Resident set size (bytes). */
  readonly residentBytes: number;
  /** Virtual memory size (bytes). */
  readonly virtualBytes: number;
  /** Start time (s since the Unix epoch), null when `/proc/stat` cannot be read. */
  readonly startTimeSeconds: number | null;
  /** Open file descriptors, null when `/proc/self/fd` cannot be read. */
  readonly openFds: number | null;
}

// ---------------------------------------------------------------------------------------------
// Names

type MetricType = "counter" | "gauge";
type Unit = "bytes" | "seconds";

/** One SNMP field as a metric. */
interface SnmpMetric {
  readonly field: SnmpField;
  /** Family name (counters: without `_total`). */
  readonly name: string;
  readonly type: MetricType;
  readonly unit?: Unit;
  readonly help: string;
}

const snmpMetric = (
  field: SnmpField,
  name: string,
  type: MetricType,
  help: string,
  unit?: Unit,
): SnmpMetric => ({ field, name, type, help, unit });

/**
 * Every SNMP field (`pipeline/snmp.ts`, what `SIGUSR1` prints) as a metric: counters as
 * `kcptun_…_total`, the two that go down or are maxima as gauges. The help text starts with the
 * SNMP name.
 */
export const SNMP_METRICS: readonly SnmpMetric[] = [
  snmpMetric(
    "BytesSent",
    "kcptun_sent_bytes",
    "counter",
    "bytes the sessions handed KCP (smux frames, after compression)",
    "bytes",
  ),
  snmpMetric(
    "BytesReceived",
    "kcptun_received_bytes",
    "counter",
    "bytes KCP delivered to the sessions",
    "bytes",
  ),
  snmpMetric("MaxConn", "kcptun_sessions_max", "gauge", "most sessions open at once"),
  snmpMetric("ActiveOpens", "kcptun_active_opens", "counter", "sessions dialled (client)"),
  snmpMetric("PassiveOpens", "kcptun_passive_opens", "counter", "sessions accepted (server)"),
  snmpMetric("CurrEstab", "kcptun_sessions", "gauge", "sessions open now"),
  snmpMetric(
    "InErrs",
    "kcptun_in_errors",
    "counter",
    "datagrams from an unexpected source or malformed at the FEC level",
  ),
  snmpMetric(
    "InCsumErrors",
    "kcptun_in_checksum_errors",
    "counter",
    "datagrams failing their checksum or AEAD check",
  ),
  snmpMetric(
    "KCPInErrors",
    "kcptun_kcp_in_errors",
    "counter",
    "datagrams KCP could not parse (conv, length or command)",
  ),
  snmpMetric("InPkts", "kcptun_in_datagrams", "counter", "datagrams received"),
  snmpMetric("OutPkts", "kcptun_out_datagrams", "counter", "datagrams sent"),
  snmpMetric("InSegs", "kcptun_in_segments", "counter", "KCP segments received"),
  snmpMetric("OutSegs", "kcptun_out_segments", "counter", "KCP segments sent"),
  snmpMetric("InBytes", "kcptun_in_datagram_bytes", "counter", "datagram bytes received", "bytes"),
  snmpMetric("OutBytes", "kcptun_out_datagram_bytes", "counter", "datagram bytes sent", "bytes"),
  snmpMetric(
    "RetransSegs",
    "kcptun_retransmitted_segments",
    "counter",
    "KCP segments sent again, for any reason",
  ),
  snmpMetric(
    "FastRetransSegs",
    "kcptun_fast_retransmitted_segments",
    "counter",
    "KCP segments sent again after duplicate ACKs",
  ),
  snmpMetric(
    "EarlyRetransSegs",
    "kcptun_early_retransmitted_segments",
    "counter",
    "KCP segments sent again early",
  ),
  snmpMetric(
    "LostSegs",
    "kcptun_lost_segments",
    "counter",
    "KCP segments sent again after their RTO",
  ),
  snmpMetric(
    "RepeatSegs",
    "kcptun_repeated_segments",
    "counter",
    "duplicate KCP segments received",
  ),
  snmpMetric(
    "FECRecovered",
    "kcptun_fec_recovered_shards",
    "counter",
    "lost datagrams rebuilt from FEC parity",
  ),
  snmpMetric("FECErrs", "kcptun_fec_errors", "counter", "FEC decode errors and malformed shards"),
  snmpMetric(
    "FECParityShards",
    "kcptun_fec_parity_shards",
    "counter",
    "FEC parity shards received",
  ),
  snmpMetric(
    "FECShortShards",
    "kcptun_fec_short_shards",
    "counter",
    "FEC data shards evicted before their group could be used",
  ),
];

// ---------------------------------------------------------------------------------------------
// The text

type Labels = ReadonlyArray<readonly [string, string]>;

interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly unit?: Unit;
  readonly help: string;
  readonly samples: Array<readonly [Labels, number]>;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string, format: MetricsFormat): string {
  const s = v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
  return format === "openmetrics" ? s.replace(/"/g, '\\"') : s;
}

function number(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function renderFamily(f: Family, format: MetricsFormat): string {
  const sample = f.type === "counter" ? f.name + "_total" : f.name;
  // Prometheus 0.0.4 names a counter's family by its sample name; OpenMetrics without `_total`.
  const family = format === "openmetrics" ? f.name : sample;
  let out = `# HELP ${family} ${escapeHelp(f.help, format)}\n# TYPE ${family} ${f.type}\n`;
  if (format === "openmetrics" && f.unit !== undefined) out += `# UNIT ${family} ${f.unit}\n`;
  for (const [labels, value] of f.samples) {
    const l = labels.length === 0
      ? ""
      : "{" + labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",") + "}";
    out += `${sample}${l} ${number(value)}\n`;
  }
  return out;
}

/** Per-session series: name, type, unit, help, and how to read the value. */
const SESSION_METRICS: ReadonlyArray<
  readonly [string, MetricType, Unit | undefined, string, (s: MetricsSession) => number]
> = [
  ["kcptun_session_streams", "gauge", undefined, "streams open", (s) => s.streamCount],
  [
    "kcptun_session_srtt_seconds",
    "gauge",
    "seconds",
    "KCP smoothed round-trip time",
    (s) => s.connection.kcp.srtt / 1000,
  ],
  [
    "kcptun_session_rttvar_seconds",
    "gauge",
    "seconds",
    "KCP round-trip time variation",
    (s) => s.connection.kcp.rttvar / 1000,
  ],
  [
    "kcptun_session_rto_seconds",
    "gauge",
    "seconds",
    "KCP retransmission timeout",
    (s) => s.connection.kcp.rto / 1000,
  ],
  [
    "kcptun_session_cwnd_segments",
    "gauge",
    undefined,
    "KCP congestion window (used when nc is 0)",
    (s) => s.connection.kcp.cwnd,
  ],
  [
    "kcptun_session_send_window_segments",
    "gauge",
    undefined,
    "KCP send window (sndwnd)",
    (s) => s.connection.kcp.sndWnd,
  ],
  [
    "kcptun_session_receive_window_segments",
    "gauge",
    undefined,
    "KCP receive window (rcvwnd)",
    (s) => s.connection.kcp.rcvWnd,
  ],
  [
    "kcptun_session_remote_window_segments",
    "gauge",
    undefined,
    "free receive window the peer last advertised",
    (s) => s.connection.kcp.rmtWnd,
  ],
  [
    "kcptun_session_send_queue_segments",
    "gauge",
    undefined,
    "KCP segments waiting to enter the send window",
    (s) => s.connection.kcp.sndQueueCount,
  ],
  [
    "kcptun_session_in_flight_segments",
    "gauge",
    undefined,
    "KCP segments sent and not yet acknowledged",
    (s) => s.connection.kcp.sndBufCount,
  ],
  [
    "kcptun_session_receive_queue_segments",
    "gauge",
    undefined,
    "KCP segments delivered in order and not yet read by smux",
    (s) => s.connection.kcp.rcvQueueCount,
  ],
  [
    "kcptun_session_reorder_segments",
    "gauge",
    undefined,
    "KCP segments received out of order, waiting for a gap to fill",
    (s) => s.connection.kcp.reorderCount,
  ],
  [
    "kcptun_session_smux_send_queue_bytes",
    "gauge",
    "bytes",
    "stream bytes written and not yet framed into KCP",
    (s) => s.connection.smux.queuedSendBytes,
  ],
  [
    "kcptun_session_smux_receive_buffer_bytes",
    "gauge",
    "bytes",
    "stream bytes received and not yet read",
    (s) => s.connection.smux.bufferedBytes,
  ],
  [
    "kcptun_session_retransmitted_segments",
    "counter",
    undefined,
    "KCP segments this session sent again",
    (s) => s.connection.kcp.retransmits,
  ],
  [
    "kcptun_session_fec_recovered_shards",
    "counter",
    undefined,
    "lost datagrams FEC rebuilt for this session",
    (s) => s.connection.fecRecovered,
  ],
];

/** The sessions given series of their own, and how many are left out. */
function itemized(sessions: Iterable<MetricsSession>): [MetricsSession[], number] {
  const all = [...sessions];
  // Two sessions never share both addresses; the check keeps the series unique regardless.
  const seen = new Set<string>();
  const unique = all.filter((s) => {
    const key = `${s.local}\n${s.remote}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort((a, b) =>
    b.streamCount - a.streamCount || (a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : 0) ||
    (a.local < b.local ? -1 : a.local > b.local ? 1 : 0)
  );
  const shown = unique.slice(0, METRICS_SESSION_LIMIT);
  return [shown, all.length - shown.length];
}

/** Options of {@link renderMetrics}. */
export interface RenderOptions {
  /** Process figures (default: read from `/proc/self`; null: none shown). */
  readonly process?: ProcessFigures | null;
}

/** The text of a scrape of `source` in `format`. */
export function renderMetrics(
  source: MetricsSource,
  format: MetricsFormat,
  options: RenderOptions = {},
): string {
  const families: Family[] = [];
  const add = (
    name: string,
    type: MetricType,
    help: string,
    samples: Array<readonly [Labels, number]>,
    unit?: Unit,
  ) => families.push({ name, type, help, samples, unit });

  const snmp = source.snmp;
  for (const m of SNMP_METRICS) {
    add(m.name, m.type, `SNMP ${m.field}: ${m.help}`, [[[], snmp[m.field]]], m.unit);
  }

  const sessions = [...source.sessions()];
  let streams = 0;
  for (const s of sessions) streams += s.streamCount;
  add("kcptun_streams", "gauge", "streams open over all sessions", [[[], streams]]);
  const [shown, unlisted] = itemized(sessions);
  add(
    "kcptun_sessions_unlisted",
    "gauge",
    `live sessions without series of their own (beyond the ${METRICS_SESSION_LIMIT} with most streams)`,
    [[[], unlisted]],
  );
  for (const [name, type, unit, help, read] of SESSION_METRICS) {
    add(
      name,
      type,
      help,
      shown.map((s) => [[["local", s.local], ["remote", s.remote]], read(s)] as const),
      unit,
    );
  }

  const proc = options.process === undefined ? readProcessFigures() : options.process;
  if (proc !== null) {
    add(
      "process_cpu_seconds",
      "counter",
      "user and system CPU time",
      [[[], proc.cpuSeconds]],
      "seconds",
    );
    add(
      "process_resident_memory_bytes",
      "gauge",
      "resident set size",
      [[[], proc.residentBytes]],
      "bytes",
    );
    add(
      "process_virtual_memory_bytes",
      "gauge",
      "virtual memory size",
      [[[], proc.virtualBytes]],
      "bytes",
    );
    if (proc.startTimeSeconds !== null) {
      add(
        "process_start_time_seconds",
        "gauge",
        "start time of the process since the Unix epoch",
        [[[], proc.startTimeSeconds]],
        "seconds",
      );
    }
    if (proc.openFds !== null) {
      add("process_open_fds", "gauge", "open file descriptors", [[[], proc.openFds]]);
    }
  }
  const heap = Deno.memoryUsage();
  add("kcptun_deno_heap_used_bytes", "gauge", "V8 heap in use", [[[], heap.heapUsed]], "bytes");
  add("kcptun_deno_heap_total_bytes", "gauge", "V8 heap reserved", [[[], heap.heapTotal]], "bytes");
  add(
    "kcptun_deno_external_bytes",
    "gauge",
    "memory of objects outside the V8 heap (buffers)",
    [[[], heap.external]],
    "bytes",
  );
  add("kcptun_build_info", "gauge", "kcptun-ts build: always 1", [[
    [
      ["version", VERSION],
      ["deno", Deno.version.deno],
      ["v8", Deno.version.v8],
      ["typescript", Deno.version.typescript],
      ["role", source.role],
    ],
    1,
  ]]);

  let out = "";
  for (const f of families) out += renderFamily(f, format);
  if (format === "openmetrics") out += "# EOF\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/self

/** Linux reports CPU times in `/proc` in USER_HZ ticks, 100 a second on every architecture. */
const USER_HZ = 100;

let bootTime: number | null | undefined;

function readBootTime(): number | null {
  if (bootTime !== undefined) return bootTime;
  try {
    const m = Deno.readTextFileSync("/proc/stat").match(/^btime (\d+)$/m);
    bootTime = m ? Number(m[1]) : null;
  } catch {
    bootTime = null;
  }
  return bootTime;
}

function countFds(): number | null {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    // Reading the directory opens one descriptor of its own.
    return n - 1;
  } catch {
    return null;
  }
}

/**
 * {@link ProcessFigures} of this process, or null when `/proc/self` cannot be read (not Linux, or
 * reading is not granted: asked without a prompt).
 */
export function readProcessFigures(): ProcessFigures | null {
  try {
    if (Deno.permissions.querySync({ name: "read", path: "/proc" }).state !== "granted") {
      return null;
    }
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[0] is field 3 (state): field n is f[n - 3].
    const cpuSeconds = (Number(f[14 - 3]) + Number(f[15 - 3])) / USER_HZ;
    const startTicks = Number(f[22 - 3]);
    const virtualBytes = Number(f[23 - 3]);
    const rss = Deno.readTextFileSync("/proc/self/status").match(/^VmRSS:\s+(\d+) kB$/m);
    if (rss === null || !Number.isFinite(cpuSeconds) || !Number.isFinite(virtualBytes)) {
      return null;
    }
    const boot = readBootTime();
    return {
      cpuSeconds,
      residentBytes: Number(rss[1]) * 1024,
      virtualBytes,
      startTimeSeconds: boot === null ? null : boot + startTicks / USER_HZ,
      openFds: countFds(),
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The server

/** Where `-metrics` binds: a host (never empty) and a port (0: any free one). */
export interface MetricsAddress {
  /** Host name or IP literal, without brackets. */
  readonly host: string;
  /** Port. */
  readonly port: number;
}

/**
 * Parses `-metrics host:port` (`[::1]:9101` for IPv6; port 0 for any free port). The host must be
 * given: `:9101` would serve every interface, which must be asked for (`0.0.0.0:9101`). Throws
 * an {@link AddressError} with the reason.
 */
export function parseMetricsAddress(text: string): MetricsAddress {
  const a = parseAddress(text, { ranges: false, unix: false, portZero: true });
  if (a.host === "") {
    throw new AddressError(
      `no host: give the address to serve on, e.g. 127.0.0.1:9101 (0.0.0.0:9101 for every interface)`,
    );
  }
  return { host: a.host, port: a.minPort };
}

/** Which format an `Accept` header asks for: OpenMetrics when it prefers it to plain text. */
export function negotiateFormat(accept: string | null): MetricsFormat {
  if (accept === null) return "prometheus";
  let om = 0, text = 0;
  for (const range of accept.split(",")) {
    const [type, ...params] = range.split(";").map((p) => p.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) continue;
    if (type === "application/openmetrics-text") om = Math.max(om, q);
    else if (type === "text/plain" || type === "text/*" || type === "*/*") text = Math.max(text, q);
  }
  return om > 0 && om >= text ? "openmetrics" : "prometheus";
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address (`127.0.0.1:9101`, `[::1]:9101`). */
  readonly address: string;
  /** Stops serving (`/healthz` stops answering) and waits for requests in progress. */
  close(): Promise<void>;
}

function errorText(e: unknown): string {
  const m = (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\)$/, "");
  return m.charAt(0).toLowerCase() + m.slice(1);
}

/**
 * Serves `source` on `address` (see the module doc). Binding happens before it returns: a taken
 * port or an address this host does not have throws `Error("-metrics <text>: <why>")`.
 */
export function serveMetrics(
  address: MetricsAddress,
  source: MetricsSource,
  text: string = joinHostPort(address.host, address.port),
): MetricsServer {
  const handler = (req: Request): Response => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics" && path !== "/healthz") {
      return new Response("not found: try /metrics or /healthz\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/healthz") {
      return new Response(req.method === "HEAD" ? null : "ok\n", {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    const format = negotiateFormat(req.headers.get("accept"));
    return new Response(req.method === "HEAD" ? null : renderMetrics(source, format), {
      headers: { "content-type": METRICS_CONTENT_TYPES[format] },
    });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: address.host, port: address.port, onListen: () => {} },
      handler,
    );
  } catch (e) {
    throw new Error(`-metrics ${text}: ${errorText(e)}`);
  }
  let closing: Promise<void> | null = null;
  return {
    address: joinHostPort(server.addr.hostname, server.addr.port),
    close() {
      closing ??= server.shutdown();
      return closing;
    },
  };
}
