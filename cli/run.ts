/**
 * What `cli/client.ts` and `cli/server.ts` do, as functions tests and the demo can call in
 * process: parse kcptun's flags, log the startup lines, build the pipeline, start the end,
 * run the SNMP logger and signal handlers (SNMP dumps, `SIGHUP` reloads), and stop cleanly.
 *
 * @module
 */

import type { AppEndpoint } from "../pipeline/app.ts";
import { defaultPool } from "../pipeline/packet.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import { checkRoleInstance } from "../pipeline/roles.ts";
import { type Snmp, snmp as processSnmp } from "../pipeline/snmp.ts";
import { StageError } from "../pipeline/stage.ts";
import { KcptunClient } from "../runtime/client.ts";
import { startMemoryTrimmer } from "../runtime/memory.ts";
import { listenSessions } from "../runtime/listen.ts";
import { KcptunServer } from "../runtime/server.ts";
import type { TunnelSession } from "../runtime/session.ts";
import { Tunnel } from "../runtime/tunnel.ts";
import { listenUdp } from "../runtime/udp_relay.ts";
import { CLIENT_UDP, parseAddress, SERVER_UDP } from "./address.ts";
import {
  type ClientConfig,
  type CliOutcome,
  parseClientConfig,
  parseServerConfig,
  type ServerConfig,
} from "./config.ts";
import { sessionCloseLine } from "./diagnose.ts";
import { dialErrorText } from "./dial_error.ts";
import { goQuote } from "./flags.ts";
import {
  fileErrorText,
  type Logger,
  type LogSink,
  openLogger,
  openLogSink,
  startupLines,
} from "./logging.ts";
import { resolvePipeline } from "./pipeline.ts";
import { checkTransport, measurePacketRoom, packetRoomError } from "./preflight.ts";
import { type MetricsServer, parseMetricsAddress, serveMetrics } from "./metrics.ts";
import {
  type AnyConfig,
  compareConfigs,
  describeChange,
  newWarnings,
  type SettingChange,
} from "./reload.ts";
import { checkSnmpLogPath, installSnmpSignal, SNMP_DUMP_SIGNALS, SnmpLogger } from "./snmp_log.ts";
import { StatsReporter } from "./stats.ts";
import { exitWith } from "./usage.ts";

/** A running client or server with what it owns. */
export interface RunningEnd<A> {
  /** The client or server. */
  readonly app: A;
  /** The counters it increments. */
  readonly snmp: Snmp;
  /** Its logger. */
  readonly logger: Logger;
  /** Its live sessions now. */
  sessions(): TunnelSession[];
  /** The `-metrics` endpoint's bound address (`127.0.0.1:9101`), or null without one. */
  readonly metricsAddress: string | null;
  /**
   * What `SIGHUP` does: reopens the `-log` file, and re-reads the `-c` file when `reread` was
   * given, applying what can change without a restart (cli/reload.ts). Logs what it did.
   */
  hangup(): void;
  /** Stops everything: sockets closed, the last SNMP row written, the log file closed. */
  stop(): Promise<void>;
}

/** Options for starting an end in process. */
export interface StartOptions {
  /** Counters (default: the process-wide ones, as kcptun). */
  snmp?: Snmp;
  /** Logger (default: what `-log` / `-quiet` ask for). */
  logger?: Logger;
  /** Stage registry (default: the built-ins). */
  registry?: StageRegistry;
  /**
   * Install SIGUSR1 and SIGUSR2 for the SNMP dump and SIGHUP for {@link RunningEnd.hangup}
   * (default false in process, true from `main`).
   */
  signals?: boolean;
  /**
   * Resolves the configuration again (the same arguments, the `-c` file as it is now), for
   * {@link RunningEnd.hangup}. Without it a hangup only reopens the log file.
   */
  reread?: () => CliOutcome<AnyConfig>;
}

function fail(message: string): never {
  exitWith({ code: 1, stdout: "", stderr: message.endsWith("\n") ? message : message + "\n" });
}

/** A config outcome to a config, or exit as it says (help, version, one-line errors). */
function orExit<T>(outcome: CliOutcome<T>): T {
  if (outcome.kind === "exit") exitWith(outcome);
  return outcome.config;
}

/**
 * The `-metrics` endpoint, bound before anything is logged (a taken port is then the one line
 * the start ends with); it shows sessions once the end runs ({@link MetricsEndpoint.sessions}).
 */
class MetricsEndpoint {
  /** The end's live sessions, none until it runs. */
  sessions: () => TunnelSession[] = () => [];
  readonly server: MetricsServer;

  private constructor(config: ClientConfig | ServerConfig, snmp: Snmp) {
    this.server = serveMetrics(parseMetricsAddress(config.metrics), {
      role: config.role,
      snmp,
      sessions: () => this.sessions(),
    }, config.metrics);
  }

  /** Binds what `-metrics` asks for (nothing when empty); throws one line when it cannot. */
  static open(config: ClientConfig | ServerConfig, snmp: Snmp): MetricsEndpoint | null {
    return config.metrics === "" ? null : new MetricsEndpoint(config, snmp);
  }
}

/**
 * The operations side of a running end: the SNMP file, the signals, the memory trimmer, `-stats`
 * lines, the sessions the `-metrics` endpoint shows (it closes the endpoint on stop), and what a
 * `SIGHUP` changes. Holds the configuration as it runs now: the start's, with the reloadable
 * settings as the last reload left them.
 */
class Operations {
  #running: AnyConfig;
  readonly #logger: Logger;
  /** False when the caller gave the logger: its destination is not ours to change. */
  readonly #ownsLogger: boolean;
  readonly #reread: (() => CliOutcome<AnyConfig>) | undefined;
  readonly #snmpLogger: SnmpLogger;
  readonly #stats: StatsReporter;
  readonly #metrics: MetricsEndpoint | null;
  readonly #cleanups: Array<() => void> = [];
  #stopped = false;

  constructor(
    config: AnyConfig,
    snmp: Snmp,
    logger: Logger,
    options: StartOptions,
    sessions: () => TunnelSession[],
    metrics: MetricsEndpoint | null,
  ) {
    this.#running = config;
    this.#metrics = metrics;
    if (metrics !== null) {
      metrics.sessions = sessions;
      logger.log(`metrics: serving http://${metrics.server.address}/metrics and /healthz`);
    }
    this.#stats = new StatsReporter({
      periodSeconds: config.stats,
      snmp,
      sessions,
      log: logger.log,
    });
    this.#stats.start();
    this.#logger = logger;
    this.#ownsLogger = options.logger === undefined;
    this.#reread = options.reread;
    this.#snmpLogger = new SnmpLogger({
      path: config.snmplog,
      periodSeconds: config.snmpperiod,
      snmp,
      onError: logger.log,
      onRecovered: logger.log,
    });
    this.#snmpLogger.start();
    if (options.signals ?? false) {
      // Counters kcptun does not have get a line of their own, only when something counts them.
      const extras = config.replaywindow > 0 ? snmp : null;
      this.#cleanups.push(installSnmpSignal(logger.log, snmp, SNMP_DUMP_SIGNALS, extras));
      const onHangup = () => this.hangup();
      try {
        Deno.addSignalListener("SIGHUP", onHangup);
        this.#cleanups.push(() => Deno.removeSignalListener("SIGHUP", onHangup));
      } catch { /* no SIGHUP here (Windows) */ }
    }
    this.#cleanups.push(startMemoryTrimmer());
  }

  /** See {@link RunningEnd.hangup}. */
  hangup(): void {
    if (this.#stopped) return;
    const log = this.#logger.log;
    const running = this.#running;
    const file = running.configFile;
    const notes: string[] = [];
    let next = running;
    if (this.#reread !== undefined && file !== "") {
      const outcome = this.#reread();
      if (outcome.kind === "exit") {
        const why = (outcome.stderr || outcome.stdout).trim().split("\n")[0];
        notes.push(`SIGHUP: ${file}: not reloaded, the running settings stay: ${why}`);
      } else {
        next = outcome.config;
        notes.push(...newWarnings(running, next).map((w) => `SIGHUP: ${w}`));
      }
    }
    const diff = compareConfigs(running, next);
    const changed = new Map(diff.reloadable.map((c) => [c.key as string, c]));
    const applied: SettingChange[] = [];
    const refused: string[] = [];
    const restart = [...diff.restart];
    const settled: Record<string, unknown> = {};

    // The log first, so that what follows lands where the log now goes.
    const logChange = changed.get("log");
    if (logChange !== undefined && !this.#ownsLogger) {
      restart.unshift("log");
    } else if (logChange !== undefined) {
      let sink: LogSink | null = null;
      try {
        sink = openLogSink(next.log);
      } catch (e) {
        refused.push(`log ${goQuote(next.log)}: ${(e as Error).message}`);
      }
      if (sink !== null) {
        log(`SIGHUP: the log continues in ${next.log === "" ? "stderr" : next.log}`);
        this.#logger.replaceSink(sink);
        applied.push(logChange);
        settled.log = next.log;
      }
    } else if (running.log !== "" && this.#ownsLogger) {
      try {
        this.#logger.reopen();
        notes.unshift(`SIGHUP: reopened ${running.log}`);
      } catch (e) {
        notes.unshift(
          `SIGHUP: reopen ${running.log}: ${
            fileErrorText(e)
          }; still writing to the file it had open`,
        );
      }
    }

    const quietChange = changed.get("quiet");
    if (quietChange !== undefined) {
      this.#logger.quiet = next.quiet;
      applied.push(quietChange);
      settled.quiet = next.quiet;
    }

    const snmpChanges = ["snmplog", "snmpperiod"].flatMap((k) => changed.get(k) ?? []);
    if (snmpChanges.length > 0) {
      let ok = true;
      if (next.snmplog !== "" && next.snmpperiod > 0) {
        try {
          checkSnmpLogPath(next.snmplog);
        } catch (e) {
          ok = false;
          refused.push(`snmplog: ${(e as Error).message}`);
        }
      }
      if (ok) {
        this.#snmpLogger.reconfigure(next.snmplog, next.snmpperiod);
        applied.push(...snmpChanges);
        settled.snmplog = next.snmplog;
        settled.snmpperiod = next.snmpperiod;
      }
    }
    this.#running = { ...running, ...settled } as AnyConfig;
    applied.sort((x, y) => diff.reloadable.indexOf(x) - diff.reloadable.indexOf(y));

    for (const line of notes) log(line);
    if (file !== "" && this.#reread !== undefined) {
      if (applied.length > 0) {
        log(`SIGHUP: ${file}: applied ${applied.map(describeChange).join(", ")}`);
      }
      for (const why of refused) log(`SIGHUP: ${file}: not applied: ${why}`);
      if (restart.length > 0) {
        log(`SIGHUP: ${file}: not applied, a restart is needed to change: ${restart.join(", ")}`);
      }
      if (next !== running && applied.length + refused.length + restart.length === 0) {
        log(`SIGHUP: ${file}: no setting changed`);
      }
    } else if (notes.length === 0) {
      log("SIGHUP: no -log file to reopen and no -c file to re-read");
    }
  }

  /** Removes the signal handlers, stops the trimmer and stats, writes the last SNMP row. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const c of this.#cleanups) c();
    this.#stats.stop();
    this.#snmpLogger.stop();
    await this.#metrics?.server.close();
  }
}

/**
 * The checks made on the built pipeline before anything is logged or bound: the transport can be
 * made here, and `-mtu` leaves KCP room after the packet stages (one line otherwise).
 */
async function preflight(
  pipeline: Pipeline,
  config: ClientConfig | ServerConfig,
  snmp: Snmp,
  log: (l: string) => void,
): Promise<void> {
  const ctx = { role: config.role, pool: defaultPool, snmp, log };
  await checkTransport(pipeline, ctx);
  const room = await measurePacketRoom(pipeline, ctx);
  // JSON pipelineOptions may give kcp an mtu of its own.
  const name = room.mtu !== config.mtu
    ? `kcp option "mtu" ${room.mtu}`
    : `-mtu ${config.mtu}${
      config.sources.mtu === "json"
        ? ` (from ${config.configFile})`
        : config.sources.mtu === "plugin"
        ? " (from SS_PLUGIN_OPTIONS)"
        : ""
    }`;
  const error = packetRoomError(room, name);
  if (error !== null) throw new StageError(error);
}

/** Fails like a bad `-log` when `-snmplog` will be written and cannot be. */
function checkSnmpLog(config: ClientConfig | ServerConfig): void {
  if (config.snmplog !== "" && config.snmpperiod > 0) checkSnmpLogPath(config.snmplog);
}

/**
 * Checks and builds what both ends need before anything is logged: the `-snmplog` path, the
 * logger, the pipeline, its preflight, and the `-metrics` endpoint; then starts the end with
 * them, closing the endpoint again when that fails.
 */
async function startEnd<C extends ClientConfig | ServerConfig, A>(
  config: C,
  options: StartOptions,
  start: (c: C, o: StartOptions, prepared: Prepared) => Promise<RunningEnd<A>>,
): Promise<RunningEnd<A>> {
  checkSnmpLog(config);
  const snmp = options.snmp ?? processSnmp;
  const logger = options.logger ?? openLogger(config);
  const pipeline = await resolvePipeline(config, { registry: options.registry });
  await preflight(pipeline, config, snmp, logger.log);
  const metrics = MetricsEndpoint.open(config, snmp);
  try {
    return await start(config, options, { snmp, logger, pipeline, metrics });
  } catch (e) {
    await metrics?.server.close();
    throw e;
  }
}

/** What {@link startEnd} hands the start of an end. */
interface Prepared {
  readonly snmp: Snmp;
  readonly logger: Logger;
  readonly pipeline: Pipeline;
  readonly metrics: MetricsEndpoint | null;
}

/** Starts a client from a resolved config. */
export function startClientEnd(
  config: ClientConfig,
  options: StartOptions = {},
): Promise<RunningEnd<KcptunClient>> {
  return startEnd(config, options, runClient);
}

async function runClient(
  config: ClientConfig,
  options: StartOptions,
  { snmp, logger, pipeline, metrics }: Prepared,
): Promise<RunningEnd<KcptunClient>> {
  // kcptun listens first, then logs its settings (with the bound address), then derives the key.
  const appStage = pipeline.boundary("app")!;
  const app = checkRoleInstance(
    "app",
    appStage.spec,
    await appStage.definition.create(appStage.options, {
      role: "client",
      pool: defaultPool,
      snmp,
      log: logger.log,
    }),
  ) as AppEndpoint;
  const l = config.localAddress;
  let listener;
  try {
    listener = l.kind === "unix"
      ? await app.listen(l.path, 0)
      : await app.listen(l.host, l.minPort);
  } catch (e) {
    throw new StageError(`listen ${config.localaddr}: ${(e as Error).message}`);
  }
  let udpSocket = null;
  if (config.udp !== "") {
    const u = parseAddress(config.udp, CLIENT_UDP);
    try {
      udpSocket = await listenUdp(u.host, u.minPort, logger.log);
    } catch (e) {
      listener.close();
      throw new StageError(`listen udp ${config.udp}: ${(e as Error).message}`);
    }
  }
  for (
    const line of startupLines(config, {
      listeningOn: listener.address,
      udpListeningOn: udpSocket?.localAddr.key,
    })
  ) logger.log(line);
  logger.log("initiating key derivation");
  let tunnel;
  try {
    tunnel = await Tunnel.create(pipeline, { role: "client", snmp, log: logger.log });
  } catch (e) {
    listener.close();
    await udpSocket?.close();
    throw e;
  }
  logger.log("key derivation done");
  const r = config.remoteAddress;
  const client = new KcptunClient({
    tunnel,
    listener,
    remote: { host: r.host, minPort: r.minPort, maxPort: r.maxPort },
    conn: config.conn,
    autoExpire: config.autoexpire,
    scavengeTtl: config.scavengettl,
    closeWait: config.closewait,
    sockbuf: config.sockbuf,
    dscp: config.dscp,
    log: logger.log,
    // Through the logger, which drops them while -quiet is on: a reload may turn it on or off.
    streamLog: logger.stream,
    describeClose: (remote, reason) => sessionCloseLine("client", remote, reason),
    udp: udpSocket === null ? undefined : { socket: udpSocket, idleTimeout: config.udptimeout },
  });
  const sessions = () => client.sessions;
  const ops = new Operations(config, snmp, logger, options, sessions, metrics);
  return {
    app: client,
    snmp,
    logger,
    sessions,
    metricsAddress: metrics?.server.address ?? null,
    hangup: () => ops.hangup(),
    async stop() {
      await client.stop();
      tunnel.close();
      await ops.stop();
      if (!options.logger) logger.close();
    },
  };
}

/** Starts a server from a resolved config. */
export function startServerEnd(
  config: ServerConfig,
  options: StartOptions = {},
): Promise<RunningEnd<KcptunServer>> {
  return startEnd(config, options, runServer);
}

async function runServer(
  config: ServerConfig,
  options: StartOptions,
  { snmp, logger, pipeline, metrics }: Prepared,
): Promise<RunningEnd<KcptunServer>> {
  for (const line of startupLines(config)) logger.log(line);
  logger.log("initiating key derivation");
  const tunnel = await Tunnel.create(pipeline, { role: "server", snmp, log: logger.log });
  logger.log("key derivation done");
  const addr = config.listenAddress;
  let listener;
  try {
    listener = await listenSessions(tunnel, addr.host, addr.minPort, addr.maxPort, {
      sockbuf: config.sockbuf,
      dscp: config.dscp,
    });
  } catch (e) {
    tunnel.close();
    throw e;
  }
  const t = config.targetAddress;
  const server = new KcptunServer({
    tunnel,
    listener,
    target: t.kind === "unix"
      ? { host: t.path, port: 0, text: config.target }
      : { host: t.host, port: t.minPort, text: config.target },
    closeWait: config.closewait,
    log: logger.log,
    // Through the logger, which drops them while -quiet is on: a reload may turn it on or off.
    streamLog: logger.stream,
    describeDialError: (target, e) =>
      dialErrorText(t.kind === "unix" ? "unix" : "inet", target.text, e),
    describeClose: (remote, reason) => sessionCloseLine("server", remote, reason),
    udp: config.udp === "" ? undefined : {
      target: udpTarget(config.udp),
      idleTimeout: config.udptimeout,
    },
  });
  const sessions = () => [...server.listener.sessions];
  const ops = new Operations(config, snmp, logger, options, sessions, metrics);
  return {
    app: server,
    snmp,
    logger,
    sessions,
    metricsAddress: metrics?.server.address ?? null,
    hangup: () => ops.hangup(),
    async stop() {
      await server.stop();
      tunnel.close();
      await ops.stop();
      if (!options.logger) logger.close();
    },
  };
}

/** The server's `-udp` target (checked when the config was resolved). */
function udpTarget(text: string): { host: string; port: number; text: string } {
  const a = parseAddress(text, SERVER_UDP);
  return { host: a.host, port: a.minPort, text };
}

/** Stops `end` on SIGINT/SIGTERM and exits 0 (forced after 5 s). */
function exitOnSignals(end: { stop(): Promise<void> }): void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => Deno.exit(0), 5000);
    end.stop().finally(() => Deno.exit(0));
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(sig, onSignal);
    } catch { /* not supported here */ }
  }
}

function envLookup(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The environment variable naming the directory relative paths are resolved from. The
 * `client`/`server` tasks of deno.json set it to `$INIT_CWD`: `deno task` runs a task in the
 * repository, and relative `-c`, `-log`, `-snmplog`, unix socket and plugin paths must mean
 * what they mean where the user typed the command. A variable of our own rather than
 * `INIT_CWD` itself, which npm and outer tasks also set and which a plain `deno run` must ignore.
 */
export const CWD_ENV = "KCPTUN_TS_CWD";

/** Moves to {@link CWD_ENV} when it is set, or exits with one line. */
function enterUserDirectory(): void {
  // Not asked when not granted: a prompt for a variable the user never heard of would puzzle.
  const state = Deno.permissions.querySync({ name: "env", variable: CWD_ENV }).state;
  const dir = state === "granted" ? envLookup(CWD_ENV) : undefined;
  if (dir === undefined || dir === "") return;
  try {
    Deno.chdir(dir);
  } catch (e) {
    fail(`${CWD_ENV}=${dir}: ${fileErrorText(e)}`);
  }
}

async function main<C extends AnyConfig, A>(
  parse: () => CliOutcome<C>,
  start: (c: C, o: StartOptions) => Promise<RunningEnd<A>>,
  registry?: StageRegistry,
): Promise<RunningEnd<A>> {
  enterUserDirectory();
  const config = orExit(parse());
  // A SIGHUP while starting (a reload or logrotate right after a start) must not end the
  // process, as the default action would: it is kept and served once the end runs.
  let earlyHangup = false;
  const onEarlyHangup = () => earlyHangup = true;
  try {
    Deno.addSignalListener("SIGHUP", onEarlyHangup);
  } catch { /* no SIGHUP here */ }
  let end: RunningEnd<A>;
  try {
    end = await start(config, { signals: true, registry, reread: parse });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  try {
    Deno.removeSignalListener("SIGHUP", onEarlyHangup);
  } catch { /* never added */ }
  exitOnSignals(end);
  if (earlyHangup) end.hangup();
  return end;
}

/** `kcptun-client` with `args`: runs until SIGINT/SIGTERM; SIGHUP reloads (cli/reload.ts). */
export function clientMain(
  args: string[],
  registry?: StageRegistry,
): Promise<RunningEnd<KcptunClient>> {
  return main(() => parseClientConfig(args, envLookup, { registry }), startClientEnd, registry);
}

/** `kcptun-server` with `args`: runs until SIGINT/SIGTERM; SIGHUP reloads (cli/reload.ts). */
export function serverMain(
  args: string[],
  registry?: StageRegistry,
): Promise<RunningEnd<KcptunServer>> {
  return main(() => parseServerConfig(args, envLookup, { registry }), startServerEnd, registry);
}
