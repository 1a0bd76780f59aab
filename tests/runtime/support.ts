/**
 * Helpers for the runtime tests: connections on the simulator's fake clock, two drivers over the
 * in-memory network, an in-memory transport stage (so `Tunnel`, `dialSession`, `listenSessions`,
 * `dial` and `listen` run without sockets), test-only stages, and small stream utilities.
 *
 * @module
 */

import { PacketChain } from "../../pipeline/chain.ts";
import { type Packet, PacketBatch, type PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type {
  BoundaryStageDefinition,
  ByteSink,
  PacketStage,
  PacketStageDefinition,
  StageContext,
  StageDefinition,
  StageOptions,
  StreamStage,
  StreamStageDefinition,
} from "../../pipeline/stage.ts";
import { StageError } from "../../pipeline/stage.ts";
import type { DatagramSocket, DatagramTransport } from "../../pipeline/transport.ts";
import { Connection, type KcpSettings } from "../../runtime/connection.ts";
import { ConnectionDriver } from "../../runtime/driver.ts";
import { builtinRegistry } from "../../runtime/registry.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import type { Kcp } from "../../transforms/kcp/arq.ts";
import type { SmuxConfig } from "../../transforms/smux/config.ts";
import { SnappyStreamStage } from "../../transforms/snappy/stage.ts";
import type { StageRegistry } from "../../pipeline/registry.ts";
import type { SimEndpoint } from "../sim/link.ts";
import { MemoryNetwork, peer } from "../support/memory_socket.ts";

export { MemoryNetwork, peer };

/** kcptun's fast mode with windows large enough not to be the bottleneck of a test. */
export const FAST_KCP = {
  sndWnd: 256,
  rcvWnd: 256,
  nodelay: 1,
  interval: 10,
  resend: 2,
  nc: 1,
} satisfies KcpSettings;

/** What {@link makeConnection} builds. */
export interface ConnectionSpec {
  /** Conversation id (default 0x1234). */
  conv?: number;
  /** smux settings. */
  smux?: Partial<SmuxConfig>;
  /** A snappy session stage between KCP and smux. */
  snappy?: boolean;
  /** Packet stages, KCP side first. */
  packets?: PacketStage[];
  /** Per-stream stages, application side first, made for each stream. */
  streamStages?: () => StreamStage[];
  /** KCP settings (default {@link FAST_KCP}). */
  kcp?: KcpSettings;
  /** Clock at creation (default 0). */
  now?: number;
  /** Pool (default the process-wide one). */
  pool: PacketPool;
  /** Counters (default fresh ones). */
  snmp?: Snmp;
  /** Async stage wake-up. */
  onWake?: () => void;
}

/** A connection as `spec` says: every packet stage is owned by it. */
export function makeConnection(role: "client" | "server", spec: ConnectionSpec): Connection {
  const chain = new PacketChain(spec.packets ?? []);
  return new Connection({
    role,
    conv: spec.conv ?? 0x1234,
    mtu: 1350,
    kcp: spec.kcp ?? FAST_KCP,
    packets: chain,
    ownedPackets: chain,
    sessionStages: spec.snappy ? [new SnappyStreamStage()] : [],
    streamStages: spec.streamStages,
    smux: spec.smux,
    pool: spec.pool,
    snmp: spec.snmp ?? new Snmp(),
    now: spec.now ?? 0,
    onWake: spec.onWake,
  });
}

/**
 * A {@link Connection} as a simulator endpoint. `deaf` drops what arrives (a dead link one
 * way); `beforeTransmit` runs the test's application step on every poll.
 */
export class ConnEnd implements SimEndpoint {
  /** Drop every arriving datagram. */
  deaf = false;
  /** Runs before each transmit (application actions). */
  beforeTransmit: ((now: number) => void) | null = null;
  readonly #rx = new PacketBatch();

  /** Wraps `conn`. */
  constructor(readonly conn: Connection) {}

  receive(p: Packet, now: number): void {
    if (this.deaf) return p.release();
    this.#rx.push(p);
    const r = this.conn.handleDatagrams(this.#rx, now);
    if (r !== undefined) throw new Error("the simulator runs synchronous stages only");
  }

  poll(now: number, out: PacketBatch): void {
    const c = this.conn;
    if (now >= c.pollTimeout()) c.handleTimeout(now);
    this.beforeTransmit?.(now);
    c.pollTransmit(now, out);
  }

  deadline(): number {
    return this.conn.pollTimeout();
  }
}

/** A raw KCP core as a simulator endpoint: what a peer sends below smux, byte for byte. */
export class RawKcpEnd implements SimEndpoint {
  readonly #rx: Uint8Array[] = [];

  /** Wraps `kcp`, taking packets from `pool`. */
  constructor(
    readonly kcp: Kcp,
    readonly pool: PacketPool,
  ) {}

  /** Bytes KCP delivered so far. */
  get received(): Uint8Array[] {
    return this.#rx;
  }

  receive(p: Packet, now: number): void {
    this.kcp.input(p.buffer, p.start, p.end, now);
    p.release();
    for (let c; (c = this.kcp.read()) !== null;) this.#rx.push(c);
  }

  poll(now: number, out: PacketBatch): void {
    this.kcp.update(now, out, this.pool);
  }

  deadline(now: number): number {
    return this.kcp.check(now);
  }
}

// ------------------------------------------------------------------ drivers over memory sockets

/** Two drivers joined through two sockets of a {@link MemoryNetwork}. */
export interface DriverPair {
  /** The client side (odd stream ids). */
  client: ConnectionDriver;
  /** The server side. */
  server: ConnectionDriver;
  /** The network (loss, counters). */
  net: MemoryNetwork;
  /** Counters of each side. */
  clientSnmp: Snmp;
  /** Counters of each side. */
  serverSnmp: Snmp;
  /** Closes both drivers and sockets. */
  close(): Promise<void>;
}

let nextPairPort = 20000;

/**
 * A client and a server driver over in-memory sockets (real timers, delivery on the next
 * macrotask), built from `spec` for both ends.
 */
export function driverPair(
  spec: Omit<ConnectionSpec, "pool" | "snmp" | "packets"> & {
    /** Packet stages of each end (fresh instances per call), KCP side first. */
    packetsFor?: (role: "client" | "server") => PacketStage[];
    /** Fraction of datagrams the network drops. */
    loss?: number;
    /** Seed of the loss. */
    seed?: number;
  },
  pool: PacketPool,
): DriverPair {
  const net = new MemoryNetwork(spec.loss ?? 0, spec.seed ?? 1, pool);
  const pa = nextPairPort++, pb = nextPairPort++;
  const sa = net.bind(pa, peer("127.0.0.1", pb));
  const sb = net.bind(pb, peer("127.0.0.1", pa));
  const clientSnmp = new Snmp(), serverSnmp = new Snmp();
  const end = (role: "client" | "server", socket: DatagramSocket, snmp: Snmp) => {
    let d: ConnectionDriver | null = null;
    const conn = makeConnection(role, {
      ...spec,
      packets: spec.packetsFor?.(role),
      now: performance.now(), // the driver's clock
      pool,
      snmp,
      onWake: () => d?.kick(),
    });
    d = new ConnectionDriver(conn, { send: (b) => socket.send(b) });
    const driver = d;
    socket.receive((b) => driver.input(b));
    return driver;
  };
  const client = end("client", sa, clientSnmp);
  const server = end("server", sb, serverSnmp);
  return {
    client,
    server,
    net,
    clientSnmp,
    serverSnmp,
    async close() {
      await client.close();
      await server.close();
      await sa.close();
      await sb.close();
    },
  };
}

// ------------------------------------------------------------------ in-memory transport stage

/** A datagram transport over a {@link MemoryNetwork}. */
export class MemoryTransport implements DatagramTransport {
  /** Sockets made so far. */
  readonly sockets: DatagramSocket[] = [];

  /** Binds on `net`. */
  constructor(readonly net: MemoryNetwork) {}

  listen(_host: string, port: number): Promise<DatagramSocket> {
    const s = this.net.bind(port === 0 ? undefined : port);
    this.sockets.push(s);
    return Promise.resolve(s);
  }

  dial(host: string, port: number): Promise<DatagramSocket> {
    const s = this.net.bind(undefined, peer(host, port));
    this.sockets.push(s);
    return Promise.resolve(s);
  }
}

/** The transport role over `net`, named `mem`. */
export function memoryTransportStage(net: MemoryNetwork): BoundaryStageDefinition {
  return {
    name: "mem",
    kind: "boundary",
    role: "transport",
    description: "in-memory datagrams (tests)",
    create: () => new MemoryTransport(net),
  };
}

/** The built-in stages plus `mem` over `net` and whatever test stages are given. */
export function testRegistry(net: MemoryNetwork, ...extra: StageDefinition[]): StageRegistry {
  const r = builtinRegistry().register(memoryTransportStage(net));
  for (const d of extra) r.register(d);
  return r;
}

// ------------------------------------------------------------------ test-only stages

/** Calls counted by the counting stages. */
export interface StageCalls {
  prepare: number;
  create: number;
  close: number;
  /** Options each `create` got. */
  options: StageOptions[];
}

/** Fresh counters. */
export function stageCalls(): StageCalls {
  return { prepare: 0, create: 0, close: 0, options: [] };
}

/**
 * A shared packet stage that XORs every byte with `mask` and counts its calls. Once closed it
 * drops everything it is given: a closed shared stage breaks every session still using it.
 */
export function sharedXorStage(calls: StageCalls, name = "sharedxor"): PacketStageDefinition {
  return {
    name,
    kind: "packet",
    shared: true,
    options: { mask: { type: "integer" } },
    prepare(options) {
      calls.prepare++;
      return { ...options, prepared: true };
    },
    create(options) {
      calls.create++;
      calls.options.push(options);
      const mask = (options.mask as number | undefined) ?? 0x5a;
      let closed = false;
      const xor = (batch: PacketBatch) => {
        if (closed) return batch.releaseAll();
        for (let i = 0; i < batch.length; i++) {
          const p = batch.packets[i];
          for (let j = p.start; j < p.end; j++) p.buffer[j] ^= mask;
        }
      };
      return {
        overhead: 0,
        encode: xor,
        decode: xor,
        peek: () => true,
        close() {
          closed = true;
          calls.close++;
        },
      };
    },
  };
}

/** A per-session packet stage without `peek`: a server cannot read the conv under it. */
export const blindStage: PacketStageDefinition = {
  name: "blind",
  kind: "packet",
  create: () => ({ overhead: 0, encode() {}, decode() {} }),
};

/**
 * A per-stream stage framing each write as `u32 length + bytes`. The decoder reassembles frames
 * across chunks; at the end of the stream ({@link StreamStage.finish} "decode") it throws a
 * {@link StageError} when a frame is incomplete. A write starting with the byte 0xEE claims 10
 * bytes more than it carries, so a test can make the peer's stream end inside a frame.
 */
export function framedStage(calls: StageCalls & { finishes: string[] }): StreamStageDefinition {
  return {
    name: "framed",
    kind: "stream",
    // Asynchronous, as a stage deriving keys or loading tables may be.
    async prepare(options) {
      calls.prepare++;
      await Promise.resolve();
      return { ...options, preparedBy: "framed" };
    },
    create(options) {
      calls.create++;
      calls.options.push(options);
      return new Framed(calls);
    },
  };
}

class Framed implements StreamStage {
  #held = new Uint8Array(0);
  constructor(readonly calls: StageCalls & { finishes: string[] }) {}

  encode(bytes: Uint8Array, out: ByteSink): void {
    const f = new Uint8Array(4 + bytes.length);
    const claim = bytes.length + (bytes[0] === 0xee ? 10 : 0);
    new DataView(f.buffer).setUint32(0, claim);
    f.set(bytes, 4);
    out(f);
  }

  decode(bytes: Uint8Array, out: ByteSink): void {
    const all = new Uint8Array(this.#held.length + bytes.length);
    all.set(this.#held);
    all.set(bytes, this.#held.length);
    let at = 0;
    while (all.length - at >= 4) {
      const n = new DataView(all.buffer, at).getUint32(0);
      if (all.length - at - 4 < n) break;
      out(all.slice(at + 4, at + 4 + n));
      at += 4 + n;
    }
    this.#held = all.slice(at);
  }

  finish(direction: "encode" | "decode"): void {
    this.calls.finishes.push(direction);
    if (direction === "decode" && this.#held.length > 0) {
      throw new StageError(`framed: stream ended inside a frame (${this.#held.length} bytes held)`);
    }
  }

  close(): void {
    this.calls.close++;
  }
}

/** A context for stages made by hand. */
export function ctxFor(
  role: "client" | "server",
  pool: PacketPool,
  snmp = new Snmp(),
): StageContext {
  return { role, pool, snmp, log: () => {} };
}

// ------------------------------------------------------------------ bytes and streams

/** Deterministic bytes: stream `k`'s pattern from offset `at`. */
export function pattern(k: number, at: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = at + i;
    out[i] = (k * 131 + x * 7 + (x >>> 8) + (x >>> 16) * 13) & 0xff;
  }
  return out;
}

/** Concatenates chunks. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** True when `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Everything a readable gives until it ends. */
export async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of r) parts.push(c);
  return concat(parts);
}

/** `n` bytes from a readable (fewer if it ends first); releases the reader lock. */
export async function readExactly(r: ReadableStream<Uint8Array>, n: number): Promise<Uint8Array> {
  const reader = r.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  try {
    while (got < n) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
    }
  } finally {
    reader.releaseLock();
  }
  return concat(parts);
}

/** Reads a stream through its fast interface until its reads end. */
export async function drain(s: TunnelStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const c = s.read();
    if (c !== null) {
      parts.push(c);
      continue;
    }
    if (s.readEnded) return concat(parts);
    await s.waitReadable();
  }
}

/** Lets queued tasks and microtasks run (a few event-loop turns). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 10 ms until true or `ms` pass; returns whether it became true. */
export async function eventually(cond: () => boolean, ms = 10000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Tracks whether a promise has settled. */
export function tracked<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  p.then(() => t.done = true, () => t.done = true);
  return t;
}
