/**
 * Builds a tunnel end from a resolved config: the pipeline (kcptun's flags expand to
 * `tcp > smux > snappy > kcp > fec > crypt > udp`, or the configured list), each stage's
 * options from the flags, and per-session instantiation (shared packet stages once, the rest per
 * session).
 *
 * Boundary stages must be the built-in ones (`tcp`/`unix`, `smux`, `kcp`, `udp`/`faketcp`);
 * packet and stream stages can be anything, plugins included.
 *
 * @module
 */

import { builtinRegistry } from "../pipeline/builtins.ts";
import { PacketChain } from "../pipeline/chain.ts";
import { defaultPool, type PacketPool } from "../pipeline/packet.ts";
import { buildPipeline, type Pipeline, type PipelineSpec } from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import {
  type PacketStage,
  type PacketStageDefinition,
  type StageContext,
  StageError,
  type StageOptions,
  type StreamStage,
} from "../pipeline/stage.ts";
import type { DatagramTransport } from "../pipeline/transport.ts";
import { wrapByteStream } from "../pipeline/streams.ts";
import type { ConvLocator } from "../transforms/kcp/listener.ts";
import type { KcpStageInstance } from "../transforms/kcp/stage.ts";
import type { SmuxStageInstance } from "../transforms/smux/stage.ts";
import type { ByteStreamPair } from "../transforms/smux/driver.ts";
import type { AppEndpoint } from "../transports/app.ts";
import { effectivePipeline } from "./config.ts";
import type { ClientConfig, ServerConfig } from "./config.ts";

/** The stage options kcptun's flags give, by stage name. */
export function flagStageOptions(
  config: ClientConfig | ServerConfig,
): Record<string, StageOptions> {
  return {
    crypt: { crypt: config.crypt, key: config.key },
    fec: { dataShards: config.datashard, parityShards: config.parityshard },
    kcp: {
      mtu: config.mtu,
      sndwnd: config.sndwnd,
      rcvwnd: config.rcvwnd,
      nodelay: config.nodelay,
      interval: config.interval,
      resend: config.resend,
      nc: config.nc,
      acknodelay: config.acknodelay,
      ratelimit: config.ratelimit,
    },
    smux: {
      smuxver: config.smuxver,
      smuxbuf: config.smuxbuf,
      streambuf: config.streambuf,
      framesize: config.framesize,
      keepalive: config.keepalive,
    },
  };
}

/** Options of {@link buildTunnel}. */
export interface TunnelOptions {
  /** Counters. */
  snmp: Snmp;
  /** One-line log. */
  log: (line: string) => void;
  /** Stage registry (default: the built-ins; add plugins or `faketcp` to it). */
  registry?: StageRegistry;
  /** Packet pool (default: the process-wide one). */
  pool?: PacketPool;
  /** Base for relative plugin paths (default: the current directory). */
  base?: string | URL;
}

/** One tunnel end's stages, ready to instantiate per session. */
export class Tunnel {
  /** The checked pipeline. */
  readonly pipeline: Pipeline;
  /** Stage context shared by this end's sessions. */
  readonly ctx: StageContext;
  /** The application boundary. */
  readonly app: AppEndpoint;
  /** The datagram transport. */
  readonly transport: DatagramTransport;
  /** KCP settings. */
  readonly kcp: KcpStageInstance;
  /** smux settings and driver factory. */
  readonly smux: SmuxStageInstance;
  /** Shared packet stage instances, by index in `pipeline.packetStages`. */
  readonly #shared = new Map<number, PacketStage>();

  /** Instantiates the boundary stages; use {@link buildTunnel}. */
  constructor(pipeline: Pipeline, ctx: StageContext) {
    this.pipeline = pipeline;
    this.ctx = ctx;
    const need = (role: "app" | "mux" | "arq" | "transport", names: string[]) => {
      const s = pipeline.boundary(role);
      if (!s) throw new StageError(`pipeline: no ${role} stage (one of ${names.join(", ")})`);
      if (!names.includes(s.name)) {
        throw new StageError(
          `pipeline: "${s.spec}" cannot be the ${role} stage here; use one of ${names.join(", ")}`,
        );
      }
      return s;
    };
    const app = need("app", ["tcp", "unix"]);
    const mux = need("mux", ["smux"]);
    const arq = need("arq", ["kcp"]);
    const transport = need("transport", ["udp", "faketcp"]);
    this.app = app.definition.create(app.options, ctx) as AppEndpoint;
    this.smux = mux.definition.create(mux.options, ctx) as SmuxStageInstance;
    this.kcp = arq.definition.create(arq.options, ctx) as KcpStageInstance;
    this.transport = transport.definition.create(transport.options, ctx) as DatagramTransport;
    pipeline.packetStages.forEach((s, i) => {
      const def = s.definition as PacketStageDefinition;
      if (def.shared) this.#shared.set(i, def.create(s.options, ctx));
    });
  }

  /** The packet stage instances for one new session, KCP side first. */
  #packetStages(): PacketStage[] {
    return this.pipeline.packetStages.map((s, i) =>
      this.#shared.get(i) ?? (s.definition as PacketStageDefinition).create(s.options, this.ctx)
    );
  }

  /** Every packet stage of one client session, fused. */
  clientChain(): PacketChain {
    return new PacketChain(this.#packetStages());
  }

  /**
   * For a server: the shared stages next to the transport, which run before routing (crypt's
   * check and open), and how the conv is found after them.
   */
  serverRouting(): { shared: PacketChain; locator: ConvLocator } {
    const n = this.pipeline.sharedPacketStageCount;
    const all = this.pipeline.packetStages;
    const sharedStages: PacketStage[] = [];
    for (let i = all.length - n; i < all.length; i++) sharedStages.push(this.#shared.get(i)!);
    const rest = all.length - n;
    const locator: ConvLocator = rest === 0
      ? "kcp"
      : rest === 1 && all[0].name === "fec"
      ? "fec"
      : "none";
    return { shared: new PacketChain(sharedStages), locator };
  }

  /** For a server session: the full sending chain and the per-session decode chain. */
  serverChains(): { chain: PacketChain; decodeChain: PacketChain } {
    const stages = this.#packetStages();
    const rest = stages.length - this.pipeline.sharedPacketStageCount;
    return {
      chain: new PacketChain(stages),
      decodeChain: new PacketChain(stages.slice(0, rest)),
    };
  }

  /** New stream stage instances, application side first. */
  streamStages(): StreamStage[] {
    return this.pipeline.createStreamStages(this.ctx);
  }

  /** Puts this end's stream stages over a session's byte stream. */
  wrap(session: ByteStreamPair): ByteStreamPair {
    return wrapByteStream(session, this.streamStages());
  }
}

/** Resolves the config's pipeline (names, plugins, order) with each stage's options from the flags. */
export function resolvePipeline(
  config: ClientConfig | ServerConfig,
  opts: Pick<TunnelOptions, "registry" | "base"> = {},
): Promise<Pipeline> {
  const spec = effectivePipeline(config);
  const fromFlags = flagStageOptions(config);
  const options: Record<string, StageOptions> = { ...fromFlags };
  for (const [name, o] of Object.entries(spec.options ?? {})) {
    options[name] = { ...(fromFlags[name] ?? {}), ...o };
  }
  const merged: PipelineSpec = { stages: spec.stages, options };
  return buildPipeline(merged, { registry: opts.registry ?? builtinRegistry(), base: opts.base });
}

/** Instantiates a resolved pipeline's stages for this end (key derivation happens here). */
export function createTunnel(
  config: ClientConfig | ServerConfig,
  pipeline: Pipeline,
  opts: TunnelOptions,
): Tunnel {
  const ctx: StageContext = {
    role: config.role,
    pool: opts.pool ?? defaultPool,
    snmp: opts.snmp,
    log: opts.log,
  };
  return new Tunnel(pipeline, ctx);
}

/** {@link resolvePipeline} then {@link createTunnel}. */
export async function buildTunnel(
  config: ClientConfig | ServerConfig,
  opts: TunnelOptions,
): Promise<Tunnel> {
  return createTunnel(config, await resolvePipeline(config, opts), opts);
}
