/**
 * What `cli/client.ts` and `cli/server.ts` do, as functions tests and the demo can call in
 * process: parse kcptun's flags, log the startup lines, build the pipeline, start the end,
 * run the SNMP logger and signal handlers, and stop cleanly.
 *
 * @module
 */

import { defaultPool } from "../pipeline/packet.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import { fakeTcpUnavailableReason } from "../transports/faketcp.ts";
import { type Snmp, snmp as processSnmp } from "../pipeline/snmp.ts";
import { StageError } from "../pipeline/stage.ts";
import { DEFAULT_KEY, deriveKeyAsync } from "../transforms/crypt/key.ts";
import { cryptStage, type CryptStageOptions } from "../transforms/crypt/stage.ts";
import type { AppEndpoint } from "../transports/app.ts";
import { ClientApp } from "./client_app.ts";
import {
  type ClientConfig,
  type CliOutcome,
  parseClientConfig,
  parseServerConfig,
  type ServerConfig,
} from "./config.ts";
import { fileErrorText, type Logger, openLogger, startupLines } from "./logging.ts";
import { type ServerApp, startServer } from "./server_app.ts";
import { checkSnmpLogPath, installSnmpSignal, SnmpLogger } from "./snmp_log.ts";
import { createTunnel, resolvePipeline } from "./tunnel.ts";
import { exitWith } from "./usage.ts";

/** A running client or server with what it owns. */
export interface RunningEnd<A> {
  /** The client or server. */
  readonly app: A;
  /** The counters it increments. */
  readonly snmp: Snmp;
  /** Its logger. */
  readonly logger: Logger;
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
  /** Install SIGUSR1 and SIGUSR2 for the SNMP dump (default false in process, true from `main`). */
  signals?: boolean;
}

function fail(message: string): never {
  exitWith({ code: 1, stdout: "", stderr: message.endsWith("\n") ? message : message + "\n" });
}

/** A config outcome to a config, or exit as it says (help, version, one-line errors). */
function orExit<T>(outcome: CliOutcome<T>): T {
  if (outcome.kind === "exit") exitWith(outcome);
  return outcome.config;
}

function ops(
  config: ClientConfig | ServerConfig,
  snmp: Snmp,
  logger: Logger,
  signals: boolean,
): () => void {
  const snmpLogger = new SnmpLogger({
    path: config.snmplog,
    periodSeconds: config.snmpperiod,
    snmp,
    onError: logger.log,
    onRecovered: logger.log,
  });
  snmpLogger.start();
  const removeSignal = signals ? installSnmpSignal(logger.log, snmp) : () => {};
  return () => {
    removeSignal();
    snmpLogger.stop();
  };
}

/** Fails with fake TCP's one-line reason when the pipeline needs it and it cannot run here. */
function checkTransport(pipeline: Pipeline): void {
  if (pipeline.boundary("transport")?.name !== "faketcp") return;
  const why = fakeTcpUnavailableReason();
  if (why !== null) throw new StageError(why);
}

/** Fails like a bad `-log` when `-snmplog` will be written and cannot be. */
function checkSnmpLog(config: ClientConfig | ServerConfig): void {
  if (config.snmplog !== "" && config.snmpperiod > 0) checkSnmpLogPath(config.snmplog);
}

/**
 * Derives the keys of the pipeline's `crypt` stages natively (WebCrypto) before the stages are
 * made, whose synchronous derivation then finds them cached: the same bytes without running
 * PBKDF2 in JavaScript at startup (`deriveKeyAsync` says why that matters).
 */
async function deriveKeys(pipeline: Pipeline): Promise<void> {
  for (const s of pipeline.stages) {
    if (s.definition !== cryptStage) continue;
    const o = s.options as CryptStageOptions;
    if (o.pass === undefined) await deriveKeyAsync(o.key ?? DEFAULT_KEY);
  }
}

/** Starts a client from a resolved config. */
export async function startClientEnd(
  config: ClientConfig,
  options: StartOptions = {},
): Promise<RunningEnd<ClientApp>> {
  checkSnmpLog(config);
  const snmp = options.snmp ?? processSnmp;
  const logger = options.logger ?? openLogger(config);
  const pipeline = await resolvePipeline(config, { registry: options.registry });
  checkTransport(pipeline);
  // kcptun listens first, then logs its settings (with the bound address), then derives the key.
  const appStage = pipeline.boundary("app")!;
  const app = appStage.definition.create(appStage.options, {
    role: "client",
    pool: defaultPool,
    snmp,
    log: logger.log,
  }) as AppEndpoint;
  const l = config.localAddress;
  let listener;
  try {
    listener = l.kind === "unix"
      ? await app.listen(l.path, 0)
      : await app.listen(l.host, l.minPort);
  } catch (e) {
    throw new StageError(`listen ${config.localaddr}: ${(e as Error).message}`);
  }
  for (const line of startupLines(config, { listeningOn: listener.address })) logger.log(line);
  logger.log("initiating key derivation");
  let tunnel;
  try {
    await deriveKeys(pipeline);
    tunnel = createTunnel(config, pipeline, { snmp, log: logger.log });
  } catch (e) {
    listener.close();
    throw e;
  }
  logger.log("key derivation done");
  const client = new ClientApp(config, listener, { tunnel, logger, snmp });
  const stopOps = ops(config, snmp, logger, options.signals ?? false);
  return {
    app: client,
    snmp,
    logger,
    async stop() {
      await client.stop();
      stopOps();
      if (!options.logger) logger.close();
    },
  };
}

/** Starts a server from a resolved config. */
export async function startServerEnd(
  config: ServerConfig,
  options: StartOptions = {},
): Promise<RunningEnd<ServerApp>> {
  checkSnmpLog(config);
  const snmp = options.snmp ?? processSnmp;
  const logger = options.logger ?? openLogger(config);
  const pipeline = await resolvePipeline(config, { registry: options.registry });
  checkTransport(pipeline);
  for (const line of startupLines(config)) logger.log(line);
  logger.log("initiating key derivation");
  await deriveKeys(pipeline);
  const tunnel = createTunnel(config, pipeline, { snmp, log: logger.log });
  logger.log("key derivation done");
  const server = await startServer(config, { tunnel, logger, snmp });
  const stopOps = ops(config, snmp, logger, options.signals ?? false);
  return {
    app: server,
    snmp,
    logger,
    async stop() {
      await server.stop();
      stopOps();
      if (!options.logger) logger.close();
    },
  };
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

async function main<C, A>(
  parse: () => CliOutcome<C>,
  start: (c: C, o: StartOptions) => Promise<RunningEnd<A>>,
  registry?: StageRegistry,
): Promise<RunningEnd<A>> {
  enterUserDirectory();
  const config = orExit(parse());
  let end: RunningEnd<A>;
  try {
    end = await start(config, { signals: true, registry });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  exitOnSignals(end);
  return end;
}

/** `kcptun-client` with `args`: runs until SIGINT/SIGTERM. */
export function clientMain(
  args: string[],
  registry?: StageRegistry,
): Promise<RunningEnd<ClientApp>> {
  return main(() => parseClientConfig(args, envLookup), startClientEnd, registry);
}

/** `kcptun-server` with `args`: runs until SIGINT/SIGTERM. */
export function serverMain(
  args: string[],
  registry?: StageRegistry,
): Promise<RunningEnd<ServerApp>> {
  return main(() => parseServerConfig(args, envLookup), startServerEnd, registry);
}
