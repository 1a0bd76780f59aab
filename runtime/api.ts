/**
 * Tunnels as a library: {@link dial} a server and open streams, {@link listen} for sessions and
 * accept streams. A pipeline is given as a list of stage names (or a built {@link Pipeline}, or
 * a {@link Tunnel} already made); each stage takes its options from the spec.
 *
 * @example
 * ```ts
 * import { dial, listen } from "./api.ts";
 * const stages = ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"];
 * const options = { crypt: { key: "secret" } };
 * const server = await listen({ stages, options }, "127.0.0.1:0");
 * const port = server.sockets[0].localAddr.port;
 * const client = await dial({ stages, options }, `127.0.0.1:${port}`);
 *
 * const out = client.openStream();
 * out.write(new TextEncoder().encode("hello"));
 * const session = (await server.accept())!;
 * const inbound = await session.acceptStream();
 * await inbound.waitReadable();
 * const got = new TextDecoder().decode(inbound.read()!);
 * if (got !== "hello") throw new Error(`got ${got}`);
 *
 * await client.close();
 * await server.close();
 * ```
 *
 * @module
 */

import {
  buildPipeline,
  Pipeline,
  type PipelineEntry,
  type PipelineSpec,
} from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import { StageError } from "../pipeline/stage.ts";
import { dialSession } from "./dial.ts";
import { listenSessions, type TunnelListener } from "./listen.ts";
import { builtinRegistry } from "./registry.ts";
import type { TunnelSession } from "./session.ts";
import { Tunnel } from "./tunnel.ts";

/** A pipeline as given to {@link dial} and {@link listen}. */
export type PipelineInput = PipelineSpec | readonly PipelineEntry[] | Pipeline | Tunnel;

/** Options of {@link buildTunnel}, {@link dial} and {@link listen}. */
export interface EndOptions {
  /** Counters (default: fresh ones per tunnel). */
  snmp?: Snmp;
  /** One-line diagnostics (default: silent). */
  log?: (line: string) => void;
  /** Where stage names come from (default: the built-ins). */
  registry?: StageRegistry;
  /** Base for relative plugin paths (default: the current directory). */
  base?: string | URL;
  /** SO_RCVBUF/SO_SNDBUF bytes (0: kernel default). */
  sockbuf?: number;
  /** DSCP value (0: unset). */
  dscp?: number;
}

/** Resolves a pipeline list or spec against the registry (the built-ins by default). */
export function resolvePipeline(
  input: PipelineSpec | readonly PipelineEntry[],
  options: Pick<EndOptions, "registry" | "base"> = {},
): Promise<Pipeline> {
  const spec: PipelineSpec = Array.isArray(input)
    ? { stages: input as readonly PipelineEntry[] }
    : input as PipelineSpec;
  return buildPipeline(spec, {
    registry: options.registry ?? builtinRegistry(),
    base: options.base,
  });
}

/** Makes one tunnel end from a pipeline (see {@link Tunnel.create}). */
export async function buildTunnel(
  input: PipelineInput,
  role: "client" | "server",
  options: EndOptions = {},
): Promise<Tunnel> {
  if (input instanceof Tunnel) return input;
  const pipeline = input instanceof Pipeline ? input : await resolvePipeline(input, options);
  return Tunnel.create(pipeline, { role, snmp: options.snmp, log: options.log });
}

/** `host:port` or `host:min-max` (IPv6 in brackets; an empty host means every interface). */
export function parseHostPorts(address: string): { host: string; min: number; max: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)(?:-(\d+))?$/.exec(address);
  if (m === null) throw new StageError(`address ${JSON.stringify(address)}: expected host:port`);
  const host = m[1] ?? m[2];
  const min = Number(m[3]), max = m[4] === undefined ? min : Number(m[4]);
  if (min > 65535 || max > 65535 || max < min) {
    throw new StageError(`address ${JSON.stringify(address)}: bad port or port range`);
  }
  return { host, min, max };
}

/**
 * Opens a tunnel session to a server at `address` (`host:port`). The session owns the tunnel
 * end made for it (unless a {@link Tunnel} was given): closing the session closes it.
 */
export async function dial(
  input: PipelineInput,
  address: string,
  options: EndOptions = {},
): Promise<TunnelSession> {
  const { host, min } = parseHostPorts(address);
  const tunnel = await buildTunnel(input, "client", options);
  const session = await dialSession(tunnel, host, min, options);
  if (!(input instanceof Tunnel)) session.closed.then(() => tunnel.close());
  return session;
}

/**
 * Listens for tunnel sessions at `address` (`host:port` or `host:min-max`; port 0 picks one).
 * The listener owns the tunnel end made for it (unless a {@link Tunnel} was given).
 */
export async function listen(
  input: PipelineInput,
  address: string,
  options: EndOptions = {},
): Promise<TunnelListener> {
  const { host, min, max } = parseHostPorts(address);
  const tunnel = await buildTunnel(input, "server", options);
  const listener = await listenSessions(tunnel, host, min, max, options);
  if (!(input instanceof Tunnel)) {
    const close = listener.close.bind(listener);
    listener.close = async () => {
      await close();
      tunnel.close();
    };
  }
  return listener;
}
