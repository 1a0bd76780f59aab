/**
 * One end of a tunnel, assembled from a checked pipeline: the boundary stages made once (the
 * application endpoint, the transport, the KCP and smux settings, each checked against its role's
 * contract), the shared packet stages made once and owned here, and factories for what is made
 * per connection (the other packet stages, the session stream stages) and per smux stream (the
 * per-stream stages).
 *
 * Shared stages (crypt) live as long as the tunnel: closing a connection closes only what that
 * connection owns; {@link Tunnel.close} closes the rest.
 *
 * @module
 */

import type { AppEndpoint } from "../pipeline/app.ts";
import { PacketChain } from "../pipeline/chain.ts";
import { defaultPool, type PacketPool } from "../pipeline/packet.ts";
import type { Pipeline, ResolvedStage } from "../pipeline/pipeline.ts";
import { type ArqSettings, checkRoleInstance, type MuxSettings } from "../pipeline/roles.ts";
import { Snmp } from "../pipeline/snmp.ts";
import {
  type BoundaryRole,
  type PacketStage,
  type PacketStageDefinition,
  type StageContext,
  StageError,
  type StageOptions,
  type StreamStage,
  type StreamStageDefinition,
} from "../pipeline/stage.ts";
import type { DatagramTransport } from "../pipeline/transport.ts";
import { MTU_MIN } from "../transforms/kcp/arq.ts";
import { Connection, type KcpSettings } from "./connection.ts";
import { type KcpLocator, locatorFor } from "./endpoint.ts";

/** What a tunnel end is given besides its pipeline. */
export interface TunnelOptions {
  /** Which end. */
  role: "client" | "server";
  /** Counters (default: fresh ones for this tunnel). */
  snmp?: Snmp;
  /** Logs one line (default: silent). */
  log?: (line: string) => void;
  /** Packet pool (default: the process-wide one). */
  pool?: PacketPool;
}

/** How a connection is made: its conversation, start time and wake-up for async stages. */
export interface ConnectionParams {
  /** The KCP conversation id. */
  conv: number;
  /** Clock value (ms). */
  now: number;
  /** Called when an asynchronous packet stage finished (poll the connection again). */
  onWake?: () => void;
}

/** A stage with the options its `prepare` settled on. */
interface Prepared {
  readonly stage: ResolvedStage;
  readonly options: StageOptions;
}

/** One tunnel end's stages. Make it with {@link Tunnel.create}. */
export class Tunnel {
  /** The checked pipeline. */
  readonly pipeline: Pipeline;
  /** Context every stage of this end gets. */
  readonly ctx: StageContext;
  /** The application boundary (listen/dial local byte streams). */
  readonly app: AppEndpoint;
  /** The datagram transport. */
  readonly transport: DatagramTransport;
  /** smux settings. */
  readonly mux: MuxSettings;
  /** KCP settings. */
  readonly arq: ArqSettings;
  readonly #packets: Prepared[];
  readonly #sessionStages: Prepared[];
  readonly #perStream: Prepared[];
  /** Shared packet stage instances, by index in the packet stages (KCP side first). */
  readonly #shared: Map<number, PacketStage>;
  /** How many packet stages next to the transport are shared (run before routing). */
  readonly #sharedSuffix: number;
  readonly #kcp: KcpSettings;
  readonly #probes = new Map<number, PacketStage>();
  #closed = false;

  private constructor(
    pipeline: Pipeline,
    ctx: StageContext,
    boundary: {
      app: AppEndpoint;
      transport: DatagramTransport;
      mux: MuxSettings;
      arq: ArqSettings;
    },
    prepared: { packets: Prepared[]; session: Prepared[]; perStream: Prepared[] },
    shared: Map<number, PacketStage>,
  ) {
    this.pipeline = pipeline;
    this.ctx = ctx;
    this.app = boundary.app;
    this.transport = boundary.transport;
    this.mux = boundary.mux;
    this.arq = boundary.arq;
    this.#packets = prepared.packets;
    this.#sessionStages = prepared.session;
    this.#perStream = prepared.perStream;
    this.#shared = shared;
    this.#sharedSuffix = pipeline.sharedPacketStageCount;
    const a = boundary.arq;
    this.#kcp = {
      sndWnd: a.sndWnd,
      rcvWnd: a.rcvWnd,
      nodelay: a.nodelay,
      interval: a.interval,
      resend: a.resend,
      nc: a.nc,
      ackNoDelay: a.ackNoDelay,
    };
  }

  /**
   * Makes a tunnel end from `pipeline`: every stage's `prepare` runs (once), the boundary
   * stages are made and checked against their roles, the shared packet stages are made. Throws
   * a {@link StageError} naming the stage when anything does not fit.
   */
  static async create(pipeline: Pipeline, options: TunnelOptions): Promise<Tunnel> {
    const ctx: StageContext = {
      role: options.role,
      pool: options.pool ?? defaultPool,
      snmp: options.snmp ?? new Snmp(),
      log: options.log ?? (() => {}),
    };
    const prepare = async (s: ResolvedStage): Promise<Prepared> => {
      const p = await s.definition.prepare?.(s.options, ctx);
      return { stage: s, options: p ?? s.options };
    };
    const boundary = async <R extends BoundaryRole>(role: R, what: string) => {
      const s = pipeline.boundary(role);
      if (s === undefined) throw new StageError(`pipeline: no ${role} stage (${what})`);
      const p = await prepare(s);
      const instance = await s.definition.create(p.options, ctx);
      return checkRoleInstance(role, s.spec, instance);
    };
    const app = await boundary("app", "tcp or unix");
    const mux = await boundary("mux", "smux");
    if (mux.version === 0 && options.role === "client") {
      throw new StageError(
        `${
          pipeline.boundary("mux")!.spec
        }: version 0 (the peer's) is for servers; a client must choose 1 or 2`,
      );
    }
    const arq = await boundary("arq", "kcp");
    const transport = await boundary("transport", "udp or faketcp");
    const packets = await Promise.all(pipeline.packetStages.map(prepare));
    const session = await Promise.all(pipeline.streamStages.map(prepare));
    const perStream = await Promise.all(pipeline.perStreamStages.map(prepare));
    const shared = new Map<number, PacketStage>();
    packets.forEach((p, i) => {
      const def = p.stage.definition as PacketStageDefinition;
      if (def.shared) shared.set(i, makePacketStage(p, ctx));
    });
    const tunnel = new Tunnel(
      pipeline,
      ctx,
      { app, mux, arq, transport },
      { packets, session, perStream },
      shared,
    );
    // Made once now, so that a stage that cannot be made fails at startup, not per session.
    const overhead = tunnel.packetOverhead;
    const kcpMtu = Math.min(arq.mtu, 1500) - overhead;
    if (kcpMtu < MTU_MIN) {
      throw new StageError(
        `kcp: mtu ${arq.mtu} leaves KCP ${kcpMtu} bytes after the packet stages' ${overhead} ` +
          `(it needs at least ${MTU_MIN}, so an mtu of at least ${MTU_MIN + overhead})`,
      );
    }
    for (const p of [...session, ...perStream]) makeStreamStage(p, ctx).close?.();
    return tunnel;
  }

  /** The counters of this end. */
  get snmp(): Snmp {
    return this.ctx.snmp;
  }

  /** Bytes the packet stages add to each datagram (KCP's MTU is the configured one minus this). */
  get packetOverhead(): number {
    let n = 0;
    for (const s of this.#perConnectionStages(true)) n += s.overhead;
    return n;
  }

  /** Packet stage instances for one connection, KCP side first (shared ones included). */
  #perConnectionStages(probeOnly = false): PacketStage[] {
    return this.#packets.map((p, i) =>
      this.#shared.get(i) ?? (probeOnly ? this.#probe(i) : makePacketStage(p, this.ctx))
    );
  }

  /**
   * One instance of per-connection packet stage `i`, made once and used only for what needs no
   * state: its overhead and `peek`.
   */
  #probe(i: number): PacketStage {
    let s = this.#probes.get(i);
    if (s === undefined) {
      s = makePacketStage(this.#packets[i], this.ctx);
      this.#probes.set(i, s);
    }
    return s;
  }

  /** A client connection: every packet stage runs per datagram in both directions. */
  clientConnection(params: ConnectionParams): Connection {
    return this.#connection(params, false);
  }

  /** A server connection: the shared stages already ran at the endpoint for its input. */
  serverConnection(params: ConnectionParams): Connection {
    return this.#connection(params, true);
  }

  #connection(params: ConnectionParams, server: boolean): Connection {
    if (this.#closed) throw new StageError("tunnel closed");
    const stages = this.#perConnectionStages();
    const owned = stages.filter((_, i) => !this.#shared.has(i));
    const packets = new PacketChain(stages);
    const decodePackets = server
      ? new PacketChain(stages.slice(0, stages.length - this.#sharedSuffix))
      : packets;
    const perStream = this.#perStream;
    return new Connection({
      role: server ? "server" : "client",
      conv: params.conv,
      now: params.now,
      onWake: params.onWake,
      mtu: this.arq.mtu,
      kcp: this.#kcp,
      rateLimit: this.arq.rateLimit,
      smux: this.mux,
      packets,
      decodePackets,
      ownedPackets: new PacketChain(owned),
      sessionStages: this.#sessionStages.map((p) => makeStreamStage(p, this.ctx)),
      streamStages: perStream.length === 0
        ? undefined
        : () => perStream.map((p) => makeStreamStage(p, this.ctx)),
      pool: this.ctx.pool,
      snmp: this.ctx.snmp,
    });
  }

  /**
   * For a server endpoint: the shared stages next to the transport (run once per received batch,
   * before routing) and where KCP lies under the rest. Throws a {@link StageError} when a stage
   * between them has no `peek` (the server could not read a new peer's conversation id).
   */
  serverRouting(): { shared: PacketStage; locate: KcpLocator } {
    const n = this.#packets.length, k = this.#sharedSuffix;
    const shared: PacketStage[] = [];
    for (let i = n - k; i < n; i++) shared.push(this.#shared.get(i)!);
    const rest: PacketStage[] = [];
    for (let i = 0; i < n - k; i++) rest.push(this.#shared.get(i) ?? this.#probe(i));
    const locate = locatorFor(rest);
    if (locate === null) {
      const blind = this.#packets.find((_, i) => i < n - k && rest[i].peek === undefined)!;
      throw new StageError(
        `pipeline: a server cannot read the KCP conversation under stage "${blind.stage.spec}" ` +
          `(it is per session and has no peek()); give it a peek() or make it shared`,
      );
    }
    return { shared: new PacketChain(shared), locate };
  }

  /** Closes the shared stages. Connections already made keep working until they close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#shared.values()) s.close?.();
    for (const s of this.#probes.values()) s.close?.();
  }
}

function makePacketStage(p: Prepared, ctx: StageContext): PacketStage {
  const r = (p.stage.definition as PacketStageDefinition).create(p.options, ctx);
  if (r === null || typeof r !== "object" || typeof (r as PacketStage).encode !== "function") {
    throw new StageError(
      `stage "${p.stage.spec}": create must return a packet stage ({ overhead, encode, decode }) ` +
        `synchronously; do asynchronous setup in prepare()`,
    );
  }
  return r;
}

function makeStreamStage(p: Prepared, ctx: StageContext): StreamStage {
  const r = (p.stage.definition as StreamStageDefinition).create(p.options, ctx);
  if (r === null || typeof r !== "object" || typeof (r as StreamStage).encode !== "function") {
    throw new StageError(
      `stage "${p.stage.spec}": create must return a stream stage ({ encode, decode }) ` +
        `synchronously; do asynchronous setup in prepare()`,
    );
  }
  return r;
}
