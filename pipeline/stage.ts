/**
 * The stage contract: what every layer of a kcptun-ts pipeline is.
 *
 * Three kinds of stage (`docs/architecture.md`, "Stage kinds and slots"):
 * - **packet** stages sit between the transport and KCP and transform batches of datagrams
 *   (crypt, FEC, obfuscation plugins). `encode` runs towards the wire, `decode` away from it.
 * - **stream** stages sit between KCP and smux and transform a reliable byte stream (snappy).
 * - **boundary** stages turn one kind into another and own state and timers: the app side
 *   (`tcp`, `unix`: sockets to streams), `smux` (bytes to many streams), `kcp` (datagrams to
 *   reliable bytes) and the transport (`udp`, `faketcp`: sockets to datagrams).
 *
 * A pipeline lists stages by name, outermost (application side) first; a stage in the list is a
 * {@link StageDefinition}, a factory instantiated once per session (the server runs one session
 * per remote address, the client `-conn` sessions).
 *
 * @module
 */

import type { PacketBatch, PacketPool } from "./packet.ts";
import type { Snmp } from "./snmp.ts";

/** The three kinds of stage. */
export type StageKind = "packet" | "stream" | "boundary";

/** Where a boundary stage sits; the slots are fixed, outermost first. */
export type BoundaryRole = "app" | "mux" | "arq" | "transport";

/** The order of boundary roles in a pipeline, outermost first. */
export const BOUNDARY_ORDER: readonly BoundaryRole[] = ["app", "mux", "arq", "transport"];

/** What a stage factory is given besides its options. */
export interface StageContext {
  /** Which end of the tunnel this session is. */
  readonly role: "client" | "server";
  /** Where packets come from and go back to. */
  readonly pool: PacketPool;
  /** The process-wide counters. */
  readonly snmp: Snmp;
  /** Logs one line (the CLI routes it to `-log` or stderr; silent by default). */
  readonly log: (line: string) => void;
}

/**
 * A packet stage instance. Both methods transform the batch in place: they may rewrite packets,
 * drop packets (remove them from the batch and release them) and add packets (acquired from the
 * context's pool). They must not throw on bad input: a datagram that fails a check is dropped and
 * counted. A synchronous stage returns `undefined`; an asynchronous one returns a promise, and the
 * runtime then awaits it before the next stage (synchronous neighbours are fused into one call
 * chain per batch).
 */
export interface PacketStage {
  /**
   * The most bytes `encode` adds to one packet (front and back together). KCP's MTU is the
   * configured MTU minus the sum over all packet stages.
   */
  readonly overhead: number;
  /** Towards the wire. `now` is the session clock in milliseconds. */
  encode(batch: PacketBatch, now: number): void | Promise<void>;
  /** Away from the wire. */
  decode(batch: PacketBatch, now: number): void | Promise<void>;
  /**
   * Finds, without decoding or changing any state, where the next layer's bytes lie in a datagram
   * this stage would decode: narrows `range` (which starts as the datagram) and returns true, or
   * returns false when the datagram carries nothing for the next layer (an FEC parity shard). A
   * server uses it to read the KCP conversation id before a datagram has a session; a stage
   * without it (one that must decode to tell) makes sessions keyed by address only.
   */
  peek?(buffer: Uint8Array, range: ByteRange): boolean;
  /** Releases what the stage holds (pooled shards, timers). */
  close?(): void;
}

/** A window `[start, end)` of a buffer, reused by {@link PacketStage.peek} callers. */
export interface ByteRange {
  /** First byte. */
  start: number;
  /** One past the last byte. */
  end: number;
}

/**
 * Receives bytes from a stream stage. Ownership of `bytes` passes to the sink: the producer never
 * writes to them again, so the sink may keep them without copying.
 */
export type ByteSink = (bytes: Uint8Array) => void;

/**
 * A stream stage instance: a sans-IO codec over a reliable byte stream, one direction each.
 * Input chunk boundaries carry no meaning (KCP stream mode). `decode` throws a {@link StageError}
 * when the stream is corrupt; the session carrying it then fails with that message.
 */
export interface StreamStage {
  /**
   * True when `encode` is done with its input when it returns: what it keeps it copies, and what
   * it passes on as a view of its input it passes on synchronously. The runtime may then reuse
   * the buffers it encodes from (one frame buffer per session instead of one per frame).
   */
  readonly releasesInput?: boolean;
  /** Towards KCP: consume `bytes` (which the stage may keep) and emit zero or more chunks. */
  encode(bytes: Uint8Array, out: ByteSink): void;
  /** Away from KCP. */
  decode(bytes: Uint8Array, out: ByteSink): void;
  /**
   * The stream ended in one direction: emit what is still held (an encoder's buffered block),
   * or throw a {@link StageError} when the input ended in the middle of a unit (a truncated
   * chunk). Per-stream stages get it at the stream's FIN (decode) and local close (encode).
   */
  finish?(direction: "encode" | "decode", out: ByteSink): void;
  /** Releases what the stage holds. */
  close?(): void;
}

/** Options given to a stage factory: the pipeline's per-stage options object, or `{}`. */
export type StageOptions = Record<string, unknown>;

/** The type an option must have. */
export type OptionType = "string" | "number" | "integer" | "boolean" | "object";

/**
 * The options a stage takes, by name, with their types and one line each for docs. An option
 * not listed here is an error when a pipeline gives it, as is one of the wrong type; checking
 * values further (ranges, names) is the factory's job.
 */
export type OptionSchema = Readonly<Record<string, { type: OptionType; description?: string }>>;

/** What every stage definition has, whatever its kind. */
export interface StageDefinitionBase<O extends StageOptions = StageOptions> {
  /** Name used in pipeline lists. */
  readonly name: string;
  /** One line for `-h` and docs. */
  readonly description?: string;
  /** The options it takes (none when absent). */
  readonly options?: OptionSchema;
  /**
   * Work done once per tunnel before any instance is made (key schedules, tables): may be
   * asynchronous, and returns the options every `create` of this tunnel then gets (or nothing
   * to keep them). Instances are made per session and per stream, on hot paths, so `create` of
   * a packet or stream stage must be synchronous and cheap; `create` of a boundary stage, made
   * once per tunnel, may return a promise.
   */
  prepare?(options: O, ctx: StageContext): O | void | Promise<O | void>;
}

/** Describes a packet stage: the default export of a packet-stage plugin module. */
export interface PacketStageDefinition<O extends StageOptions = StageOptions>
  extends StageDefinitionBase<O> {
  /** Always `"packet"`. */
  readonly kind: "packet";
  /**
   * True when one instance may serve every session (no per-session state, such as crypt). The
   * server runs the shared stages next to the transport before it routes by address.
   */
  readonly shared?: boolean;
  /** Makes one instance. */
  create(options: O, ctx: StageContext): PacketStage;
}

/** Describes a stream stage: the default export of a stream-stage plugin module. */
export interface StreamStageDefinition<O extends StageOptions = StageOptions>
  extends StageDefinitionBase<O> {
  /** Always `"stream"`. */
  readonly kind: "stream";
  /** Makes one instance. */
  create(options: O, ctx: StageContext): StreamStage;
}

/**
 * Describes a boundary stage. What `create` gives depends on the role: the runtime checks it
 * against the role's contract (`pipeline/roles.ts`: an `AppEndpoint`, `MuxSettings`,
 * `ArqSettings` or `DatagramTransport`). It is called once per tunnel and may be asynchronous.
 */
export interface BoundaryStageDefinition<O extends StageOptions = StageOptions>
  extends StageDefinitionBase<O> {
  /** Always `"boundary"`. */
  readonly kind: "boundary";
  /** Which slot it fills. */
  readonly role: BoundaryRole;
  /** Makes the tunnel's instance (role-specific type). */
  create(options: O, ctx: StageContext): unknown;
}

/** Any stage definition. */
export type StageDefinition =
  | PacketStageDefinition
  | StreamStageDefinition
  | BoundaryStageDefinition;

/** An error with a message meant for the user (bad config, corrupt stream). */
export class StageError extends Error {
  /** Names the error class in stack traces. */
  override name = "StageError";
}
