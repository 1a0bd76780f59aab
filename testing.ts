/**
 * Test helpers for stage authors, built on fast-check: property tests that a stage round-trips
 * ({@link assertPacketRoundTrip}, {@link assertStreamRoundTrip}), fuzzers that a stage survives
 * loss and garbage ({@link fuzzPacketStage}, {@link fuzzStreamStage}), and an in-memory network
 * ({@link MemoryNetwork}) that runs whole tunnels in one process without sockets. Kept out of
 * `mod.ts` so that fast-check stays out of the runtime and compiled binaries.
 *
 * Every helper throws (with fast-check's counterexample and seed) when the stage breaks the
 * contract; call them from `Deno.test`.
 *
 * @example Property-test and fuzz a packet stage
 * ```ts
 * import { assertPacketRoundTrip, fuzzPacketStage } from "@kcptun-ts/kcptun-ts/testing";
 * import type { PacketStageDefinition } from "@kcptun-ts/kcptun-ts/plugin";
 *
 * // Appends one check byte (the XOR of the payload); drops a datagram whose check fails.
 * const check: PacketStageDefinition = {
 *   name: "check",
 *   kind: "packet",
 *   create: () => ({
 *     overhead: 1,
 *     encode(batch) {
 *       for (let i = 0; i < batch.length; i++) {
 *         const p = batch.packets[i];
 *         let x = 0;
 *         for (let j = p.start; j < p.end; j++) x ^= p.buffer[j];
 *         p.buffer[p.append(1)] = x;
 *       }
 *     },
 *     decode(batch) {
 *       // XOR over payload and check byte is 0 when they match; the rest is released.
 *       batch.retain((p) => {
 *         let x = 0;
 *         for (let j = p.start; j < p.end; j++) x ^= p.buffer[j];
 *         p.end--;
 *         return p.end >= p.start && x === 0;
 *       });
 *     },
 *   }),
 * };
 *
 * await assertPacketRoundTrip(check, { numRuns: 50, seed: 1 });
 * await fuzzPacketStage(check, { numRuns: 50, seed: 1 });
 * ```
 *
 * @module
 */

import fc from "fast-check";
import { type Packet, PacketBatch, PacketPool, type PeerAddress } from "./pipeline/packet.ts";
import { MAX_DATAGRAM } from "./pipeline/packet.ts";
import { Snmp } from "./pipeline/snmp.ts";
import {
  type BoundaryStageDefinition,
  type ByteRange,
  type PacketStage,
  type PacketStageDefinition,
  type StageContext,
  StageError,
  type StageOptions,
  type StreamStage,
  type StreamStageDefinition,
} from "./pipeline/stage.ts";
import type {
  DatagramSocket,
  DatagramTransport,
  ReceiveHandler,
  TransportEvent,
  TransportEventHandler,
  TransportOptions,
  TransportStats,
} from "./pipeline/transport.ts";

/** A stage context for tests: its own pool and counters, silent log. */
export function testContext(
  role: "client" | "server" = "client",
  pool: PacketPool = new PacketPool(),
): StageContext {
  return { role, pool, snmp: new Snmp(), log: () => {} };
}

/** Runs the definition's `prepare` (once, as a tunnel would) and returns the options to use. */
async function prepared(
  def: PacketStageDefinition | StreamStageDefinition,
  options: StageOptions | undefined,
): Promise<StageOptions> {
  const given = options ?? {};
  return (await def.prepare?.(given, testContext())) ?? given;
}

// ------------------------------------------------------------------------------ round trips

/** Options of {@link assertPacketRoundTrip}. */
export interface PacketRoundTripOptions {
  /** Options given to both instances (after the stage's `prepare`). */
  options?: StageOptions;
  /** Largest payload generated (default 1200). */
  maxPacketSize?: number;
  /** Most packets in one batch (default 32). */
  maxBatchSize?: number;
  /** Most batches sent one after another through the same instances (default 4). */
  maxBatches?: number;
  /** fast-check runs (default 200). */
  numRuns?: number;
  /** fast-check seed, for a reproducible run. */
  seed?: number;
  /** Check that every pooled packet came back once the stages are closed (default true). */
  checkLeaks?: boolean;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Array.from(b.subarray(0, 32), (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks that `decode(encode(x)) = x` for arbitrary sequences of batches of arbitrary packets:
 * a sender instance encodes, a separate receiver instance decodes, and the receiver must deliver
 * exactly the payloads that were sent, in order, with nothing extra. Throws (with fast-check's
 * counterexample) when it does not.
 */
export async function assertPacketRoundTrip(
  def: PacketStageDefinition,
  opts: PacketRoundTripOptions = {},
): Promise<void> {
  const options = await prepared(def, opts.options);
  const maxLength = opts.maxPacketSize ?? 1200;
  const arb = fc.array(
    // size "max": without it fast-check keeps arrays to about ten elements, so large packets
    // and full batches would never be tried.
    fc.array(fc.uint8Array({ maxLength, size: "max" }), {
      maxLength: opts.maxBatchSize ?? 32,
      size: "max",
    }),
    { minLength: 1, maxLength: opts.maxBatches ?? 4 },
  );
  await fc.assert(
    fc.asyncProperty(arb, async (batches) => {
      const pool = new PacketPool();
      const sender: PacketStage = def.create(options, testContext("client", pool));
      const receiver: PacketStage = def.create(options, testContext("server", pool));
      const sent: Uint8Array[] = [];
      const got: Uint8Array[] = [];
      let now = 1000;
      for (const payloads of batches) {
        const batch = new PacketBatch();
        for (const p of payloads) {
          batch.push(pool.from(p));
          sent.push(p);
        }
        await sender.encode(batch, now);
        await receiver.decode(batch, now);
        for (let i = 0; i < batch.length; i++) got.push(batch.at(i).bytes().slice());
        batch.releaseAll();
        now += 10;
      }
      sender.close?.();
      receiver.close?.();
      if (got.length !== sent.length) {
        throw new Error(`${def.name}: sent ${sent.length} packets, received ${got.length}`);
      }
      for (let i = 0; i < sent.length; i++) {
        if (!sameBytes(got[i], sent[i])) {
          throw new Error(
            `${def.name}: packet ${i} differs: sent ${hex(sent[i])}…, got ${hex(got[i])}…`,
          );
        }
      }
      if ((opts.checkLeaks ?? true) && pool.available !== pool.created) {
        throw new Error(
          `${def.name}: ${pool.created - pool.available} pooled packets were not released`,
        );
      }
    }),
    { numRuns: opts.numRuns ?? 200, seed: opts.seed, includeErrorInReport: true },
  );
}

/** Options of {@link assertStreamRoundTrip}. */
export interface StreamRoundTripOptions {
  /** Options given to both instances (after the stage's `prepare`). */
  options?: StageOptions;
  /** Largest single write (default 70000, over snappy's 65536-byte chunk limit). */
  maxWriteSize?: number;
  /** Most writes (default 8). */
  maxWrites?: number;
  /** fast-check runs (default 100). */
  numRuns?: number;
  /** fast-check seed. */
  seed?: number;
}

/** Arbitrary writes: random bytes, and runs of one byte so that codecs take their compressed path. */
function writesArb(maxWriteSize: number, maxWrites: number): fc.Arbitrary<Uint8Array[]> {
  return fc.array(
    fc.oneof(
      fc.uint8Array({ maxLength: maxWriteSize, size: "max" }),
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 20000 })).map((
        [b, n],
      ) => new Uint8Array(Math.min(n, maxWriteSize)).fill(b)),
    ),
    { maxLength: maxWrites },
  );
}

/** Encodes `writes` with a fresh sender (then `finish("encode")`): the bytes on the wire. */
function encodeAll(stage: StreamStage, writes: readonly Uint8Array[]): Uint8Array {
  const encoded: Uint8Array[] = [];
  const out = (b: Uint8Array) => encoded.push(b);
  // The stage may keep and change what it is given: it gets copies.
  for (const w of writes) stage.encode(w.slice(), out);
  stage.finish?.("encode", out);
  return concat(encoded);
}

/**
 * Checks that a stream stage round-trips: arbitrary writes are encoded by one instance (which
 * then finishes its encode direction), the encoded bytes are re-split at arbitrary points
 * (stream boundaries carry no meaning), decoded by another instance (which then finishes its
 * decode direction, and must not complain), and the result equals the concatenated input.
 */
export async function assertStreamRoundTrip(
  def: StreamStageDefinition,
  opts: StreamRoundTripOptions = {},
): Promise<void> {
  const options = await prepared(def, opts.options);
  const arb = fc.record({
    writes: writesArb(opts.maxWriteSize ?? 70000, opts.maxWrites ?? 8),
    cuts: fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 40 }),
  });
  fc.assert(
    fc.property(arb, ({ writes, cuts }) => {
      const sender = def.create(options, testContext("client"));
      const receiver = def.create(options, testContext("server"));
      const wire = encodeAll(sender, writes);
      const decoded: Uint8Array[] = [];
      const out = (b: Uint8Array) => decoded.push(b.slice());
      for (const piece of split(wire, cuts)) receiver.decode(piece, out);
      receiver.finish?.("decode", out);
      sender.close?.();
      receiver.close?.();
      const want = concat(writes);
      const got = concat(decoded);
      if (!sameBytes(got, want)) {
        throw new Error(`${def.name}: decoded ${got.length} bytes, wanted ${want.length}`);
      }
    }),
    { numRuns: opts.numRuns ?? 100, seed: opts.seed, includeErrorInReport: true },
  );
}

/** `bytes` cut after each length of `cuts` in turn (copies), the rest as the last piece. */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const c of cuts) {
    if (at >= bytes.length) break;
    const end = Math.min(bytes.length, at + c);
    pieces.push(bytes.slice(at, end));
    at = end;
  }
  if (at < bytes.length) pieces.push(bytes.slice(at));
  return pieces;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
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

// ------------------------------------------------------------------------------ fuzzing

/** A pool that notices a packet released twice (the second release is not honoured). */
class CheckedPool extends PacketPool {
  readonly #free = new Set<Packet>();
  /** Releases of a packet that was already free. */
  doubleReleases = 0;

  override acquire(): Packet {
    const p = super.acquire();
    this.#free.delete(p);
    return p;
  }

  override release(p: Packet): void {
    if (p.pool !== this) return;
    if (this.#free.has(p)) {
      this.doubleReleases++;
      return;
    }
    this.#free.add(p);
    super.release(p);
  }

  /** Packets out of the pool now. */
  get outstanding(): number {
    return this.created - this.available;
  }
}

/** What happens to one datagram on its way: lost, duplicated, and how it is damaged. */
interface Fate {
  lost: boolean;
  duplicated: boolean;
  /** XOR masks at positions (taken modulo the length). */
  flips: Array<[number, number]>;
  /** Keep only this many bytes (modulo length + 1), or no truncation. */
  truncate: number | null;
  /** Bytes appended. */
  extra: Uint8Array;
}

const fateArb: fc.Arbitrary<Fate> = fc.record({
  lost: fc.boolean(),
  duplicated: fc.boolean(),
  flips: fc.oneof(
    { weight: 2, arbitrary: fc.constant([] as Array<[number, number]>) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
    },
  ),
  truncate: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, {
    weight: 1,
    arbitrary: fc.nat(),
  }),
  extra: fc.oneof({ weight: 4, arbitrary: fc.constant(new Uint8Array()) }, {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
});

function applyFate(bytes: Uint8Array, fate: Fate): Uint8Array {
  let b: Uint8Array = bytes.slice();
  if (b.length > 0) { for (const [at, mask] of fate.flips) b[at % b.length] ^= mask; }
  if (fate.truncate !== null) b = b.subarray(0, fate.truncate % (b.length + 1));
  if (fate.extra.length > 0) b = concat([b, fate.extra]);
  return b.subarray(0, MAX_DATAGRAM);
}

/** Options of {@link fuzzPacketStage}. */
export interface PacketFuzzOptions {
  /** Options given to both instances (after the stage's `prepare`). */
  options?: StageOptions;
  /** Largest payload given to the sender (default 1200). */
  maxPacketSize?: number;
  /** Most payloads the sender encodes per batch (default 16). */
  maxBatchSize?: number;
  /** Batches per run (default 1..24). */
  maxBatches?: number;
  /**
   * Most packets the receiver may hold between two batches (shards kept for recovery, say);
   * more means something grows without bound (default 128).
   */
  maxHeld?: number;
  /** fast-check runs (default 100). */
  numRuns?: number;
  /** fast-check seed. */
  seed?: number;
}

/**
 * Checks that a packet stage's `decode` survives what a network and an attacker send: batches
 * of the sender's real datagrams lost, duplicated, reordered, bit-flipped, truncated or
 * extended, mixed with random garbage and empty datagrams, at clock values that jump ahead.
 * Throws when `decode` throws or rejects, when it returns a packet whose window lies outside
 * its buffer, when `peek` throws, changes a byte or narrows the range outside the datagram,
 * when the receiver holds more than `maxHeld` packets between batches, when a packet is
 * released twice, or when any pooled packet is still out once both instances are closed.
 */
export async function fuzzPacketStage(
  def: PacketStageDefinition,
  opts: PacketFuzzOptions = {},
): Promise<void> {
  const options = await prepared(def, opts.options);
  const maxHeld = opts.maxHeld ?? 128;
  const batchArb = fc.record({
    payloads: fc.array(
      fc.oneof(
        { weight: 3, arbitrary: fc.uint8Array({ maxLength: opts.maxPacketSize ?? 1200 }) },
        {
          weight: 1,
          arbitrary: fc.uint8Array({ maxLength: opts.maxPacketSize ?? 1200, size: "max" }),
        },
      ),
      { maxLength: opts.maxBatchSize ?? 16 },
    ),
    fates: fc.array(fateArb, { minLength: 1, maxLength: 8 }),
    garbage: fc.array(fc.uint8Array({ maxLength: MAX_DATAGRAM }), { maxLength: 4 }),
    /** Sort keys: the order datagrams arrive in. */
    order: fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
    /** Clock step before this batch (ms): none, a tick, or a long silence. */
    step: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1000, max: 120000 }),
    ),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(batchArb, { minLength: 1, maxLength: opts.maxBatches ?? 24 }),
      async (batches) => {
        const txPool = new CheckedPool(), rxPool = new CheckedPool();
        const sender = def.create(options, testContext("client", txPool));
        const receiver = def.create(options, testContext("server", rxPool));
        const range: ByteRange = { start: 0, end: 0 };
        let now = 1000;
        let late: Uint8Array[] = [];
        try {
          for (const [n, b] of batches.entries()) {
            now += b.step;
            const tx = new PacketBatch();
            for (const p of b.payloads) tx.push(txPool.from(p));
            await sender.encode(tx, now);
            const wire: Uint8Array[] = [], copies: Uint8Array[] = [];
            for (let i = 0; i < tx.length; i++) {
              const fate = b.fates[i % b.fates.length];
              if (fate.lost) continue;
              const bytes = applyFate(tx.at(i).bytes(), fate);
              wire.push(bytes);
              if (fate.duplicated) copies.push(bytes);
            }
            tx.releaseAll();
            // What an earlier batch held back, this batch's garbage, and its datagrams except
            // those held back for the next batch (every copy of a duplicate arrives later).
            const arriving = [...late, ...b.garbage];
            late = [];
            wire.forEach((bytes, i) => {
              (b.order[i % b.order.length] % 4 === 0 ? late : arriving).push(bytes);
            });
            late.push(...copies);
            const keyed = arriving.map((bytes, i) => ({ bytes, key: b.order[i % b.order.length] }));
            keyed.sort((x, y) => x.key - y.key);
            const rx = new PacketBatch();
            for (const { bytes } of keyed) {
              const p = rxPool.from(bytes);
              if (receiver.peek !== undefined) {
                range.start = p.start;
                range.end = p.end;
                const before = p.bytes().slice();
                receiver.peek(p.buffer, range);
                if (!sameBytes(before, p.bytes())) {
                  throw new Error(`${def.name}: peek changed the datagram (batch ${n})`);
                }
                if (range.start < p.start || range.end > p.end || range.start > range.end) {
                  throw new Error(
                    `${def.name}: peek gave [${range.start}, ${range.end}) outside the ` +
                      `datagram [${p.start}, ${p.end}) (batch ${n})`,
                  );
                }
              }
              rx.push(p);
            }
            try {
              await receiver.decode(rx, now);
            } catch (e) {
              throw new Error(`${def.name}: decode threw on batch ${n}: ${e}`);
            }
            const seen = new Set<Packet>();
            for (let i = 0; i < rx.length; i++) {
              const p = rx.at(i);
              if (seen.has(p)) throw new Error(`${def.name}: decode put one packet in twice`);
              seen.add(p);
              if (p.start < 0 || p.start > p.end || p.end > p.buffer.length) {
                throw new Error(
                  `${def.name}: decode gave a packet [${p.start}, ${p.end}) outside its ` +
                    `${p.buffer.length}-byte buffer`,
                );
              }
            }
            rx.releaseAll();
            if (rxPool.outstanding > maxHeld) {
              throw new Error(
                `${def.name}: the receiver holds ${rxPool.outstanding} packets after batch ` +
                  `${n} (maxHeld ${maxHeld}): something grows without bound`,
              );
            }
          }
        } finally {
          sender.close?.();
          receiver.close?.();
        }
        for (const [side, pool] of [["sender", txPool], ["receiver", rxPool]] as const) {
          if (pool.doubleReleases > 0) {
            throw new Error(`${def.name}: the ${side} released a packet twice`);
          }
          if (pool.outstanding !== 0) {
            throw new Error(
              `${def.name}: the ${side} leaked ${pool.outstanding} pooled packets (closed)`,
            );
          }
        }
      },
    ),
    { numRuns: opts.numRuns ?? 100, seed: opts.seed, includeErrorInReport: true },
  );
}

/** Options of {@link fuzzStreamStage}. */
export interface StreamFuzzOptions {
  /** Options given to both instances (after the stage's `prepare`). */
  options?: StageOptions;
  /** Largest single write (default 20000). */
  maxWriteSize?: number;
  /** Most writes (default 6). */
  maxWrites?: number;
  /** fast-check runs (default 100). */
  numRuns?: number;
  /** fast-check seed. */
  seed?: number;
}

/** How the encoded stream is damaged before the receiver sees it. */
type Damage =
  | { kind: "none" }
  | { kind: "flips"; flips: Array<[number, number]> }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "garbage"; bytes: Uint8Array };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({
    kind: fc.constant("flips" as const),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
      minLength: 1,
      maxLength: 6,
    }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  }),
  fc.record({
    kind: fc.constant("garbage" as const),
    bytes: fc.uint8Array({ maxLength: 20000, size: "max" }),
  }),
);

function damage(wire: Uint8Array, d: Damage): Uint8Array {
  switch (d.kind) {
    case "none":
      return wire;
    case "flips": {
      const b = wire.slice();
      if (b.length > 0) { for (const [at, mask] of d.flips) b[at % b.length] ^= mask; }
      return b;
    }
    case "truncate":
      return wire.subarray(0, d.at % (wire.length + 1));
    case "insert": {
      const at = d.at % (wire.length + 1);
      return concat([wire.subarray(0, at), d.bytes, wire.subarray(at)]);
    }
    case "garbage":
      return d.bytes;
  }
}

/**
 * Checks that a stream stage's decode direction fails only the way the contract allows: the
 * sender's real stream, damaged (bits flipped, truncated, garbage inserted) or replaced by
 * garbage, is fed to a receiver in random pieces, then the receiver finishes its decode
 * direction. `decode` and `finish` may throw a {@link StageError} (the runtime then ends the
 * session or stream with its message) and nothing else; after one, nothing more is fed. Every
 * chunk given to the sink must be a `Uint8Array`.
 */
export async function fuzzStreamStage(
  def: StreamStageDefinition,
  opts: StreamFuzzOptions = {},
): Promise<void> {
  const options = await prepared(def, opts.options);
  const arb = fc.record({
    writes: writesArb(opts.maxWriteSize ?? 20000, opts.maxWrites ?? 6),
    damage: damageArb,
    cuts: fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 40 }),
  });
  fc.assert(
    fc.property(arb, ({ writes, damage: d, cuts }) => {
      const sender = def.create(options, testContext("client"));
      const receiver = def.create(options, testContext("server"));
      const wire = damage(encodeAll(sender, writes), d);
      const out = (b: Uint8Array) => {
        if (!(b instanceof Uint8Array)) {
          throw new Error(`${def.name}: the sink got ${Object.prototype.toString.call(b)}`);
        }
      };
      const step = (what: string, f: () => void): boolean => {
        try {
          f();
          return true;
        } catch (e) {
          if (e instanceof StageError) return false;
          throw new Error(`${def.name}: ${what} threw ${e} (only a StageError is allowed)`);
        }
      };
      let alive = true;
      for (const piece of split(wire, cuts)) {
        alive = step("decode", () => receiver.decode(piece, out));
        if (!alive) break;
      }
      if (alive) step("finish", () => receiver.finish?.("decode", out));
      sender.close?.();
      receiver.close?.();
    }),
    { numRuns: opts.numRuns ?? 100, seed: opts.seed, includeErrorInReport: true },
  );
}

// ------------------------------------------------------------------------------ network

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the network's PRNG: the same seed drops, duplicates and delays the same way. */
  seed?: number;
  /** Fraction of datagrams lost (0..1, default 0). */
  loss?: number;
  /** Fraction of datagrams held back by `reorderDelay`, so later ones overtake them (default 0). */
  reorder?: number;
  /** Fraction of datagrams delivered twice (default 0). */
  duplicate?: number;
  /** One-way delay in ms (default 0: the next turn of the event loop). */
  delay?: number;
  /** Extra delay of a reordered datagram in ms (default 2 × delay + 10). */
  reorderDelay?: number;
  /** Where received datagrams are copied to (default: a pool of the network's own). */
  pool?: PacketPool;
}

/** What a {@link MemoryNetwork} did so far. */
export interface MemoryNetworkStats {
  /** Datagrams offered by senders. */
  sent: number;
  /** Datagrams handed to receivers (duplicates included). */
  delivered: number;
  /** Datagrams lost on purpose. */
  lost: number;
  /** Extra copies made. */
  duplicated: number;
  /** Datagrams held back. */
  reordered: number;
  /** Datagrams with nowhere to go (no socket on that port, too large, not from the dialled peer). */
  undeliverable: number;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function address(host: string, port: number): PeerAddress {
  const hostname = host === "" || host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const v6 = hostname.includes(":");
  return {
    family: v6 ? "ipv6" : "ipv4",
    hostname,
    port,
    key: v6 ? `[${hostname}]:${port}` : `${hostname}:${port}`,
  };
}

/** The network as its sockets see it. */
interface Link {
  send(from: MemorySocket, batch: PacketBatch, to: PeerAddress | undefined): void;
  delivered(n: number): void;
  undeliverable(): void;
  unbind(s: MemorySocket): void;
}

interface InFlight {
  due: number;
  packet: Packet;
}

/**
 * An in-memory datagram network: a {@link DatagramTransport} whose sockets reach each other by
 * port inside this process, with seeded loss, reordering, duplication and delay. Datagrams are
 * delivered on the event loop's timers, so tunnel ends built on it run exactly as on UDP, only
 * without sockets. Put it in a pipeline with {@link MemoryNetwork.stage}:
 *
 * ```ts
 * import { builtinRegistry, dial, listen } from "@kcptun-ts/kcptun-ts";
 * import { MemoryNetwork } from "@kcptun-ts/kcptun-ts/testing";
 *
 * const net = new MemoryNetwork({ seed: 1, loss: 0.1, reorder: 0.1, duplicate: 0.05 });
 * const registry = builtinRegistry().register(net.stage());
 * const spec = {
 *   stages: ["tcp", "smux", "kcp", "fec", "memory"],
 *   options: { kcp: { mode: "fast3" }, fec: { dataShards: 10, parityShards: 3 } },
 * };
 * const server = await listen(spec, "127.0.0.1:4000", { registry });
 * const client = await dial(spec, "127.0.0.1:4000", { registry });
 *
 * const stream = client.openStream();
 * stream.write(new Uint8Array(100_000).fill(7));
 * const inbound = await (await server.accept())!.acceptStream();
 * let got = 0;
 * while (got < 100_000) {
 *   await inbound.waitReadable();
 *   got += inbound.read()?.length ?? 0;
 * }
 * if (net.stats.lost === 0) throw new Error("nothing was lost");
 * await client.close();
 * await server.close();
 * ```
 *
 * Every socket lives at the host it was given (`127.0.0.1` for a wildcard); only the port
 * routes. A dialled socket gets a fresh port and accepts datagrams from its peer only; sending
 * to a port nobody listens on, it reports an `unreachable` event (connection refused), as a
 * connected UDP socket does.
 */
export class MemoryNetwork implements DatagramTransport {
  /** Counters. */
  readonly stats: MemoryNetworkStats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    undeliverable: 0,
  };
  /** Where received datagrams are copied to. */
  readonly pool: PacketPool;
  /** Fraction of datagrams lost; may be changed while running (a link going down: 1). */
  loss: number;
  /** Fraction of datagrams held back. */
  reorder: number;
  /** Fraction of datagrams delivered twice. */
  duplicate: number;
  readonly #delay: number;
  readonly #reorderDelay: number;
  readonly #random: () => number;
  readonly #sockets = new Map<number, MemorySocket>();
  #nextPort = 40000;

  /** A network with `options` (a perfect one by default). */
  constructor(options: MemoryNetworkOptions = {}) {
    this.loss = options.loss ?? 0;
    this.reorder = options.reorder ?? 0;
    this.duplicate = options.duplicate ?? 0;
    this.#delay = options.delay ?? 0;
    this.#reorderDelay = options.reorderDelay ?? 2 * this.#delay + 10;
    this.#random = seeded(options.seed ?? 1);
    this.pool = options.pool ?? new PacketPool();
  }

  /**
   * A transport stage (role `transport`) named `name` that puts every tunnel end on this
   * network: register it and list it last in a pipeline.
   */
  stage(name = "memory"): BoundaryStageDefinition {
    return {
      name,
      kind: "boundary",
      role: "transport",
      description: "an in-memory datagram network (testing.ts)",
      create: () => this,
    };
  }

  /** Sockets bound now. */
  get socketCount(): number {
    return this.#sockets.size;
  }

  /** Binds `host:port` (port 0: a free one); fails when the port is taken. */
  listen(host: string, port: number, _options?: TransportOptions): Promise<DatagramSocket> {
    try {
      return Promise.resolve(this.#bind(host, port, null));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A socket on a fresh port that talks to `host:port` only. */
  dial(host: string, port: number, _options?: TransportOptions): Promise<DatagramSocket> {
    return Promise.resolve(this.#bind("127.0.0.1", 0, address(host, port)));
  }

  #bind(host: string, port: number, remote: PeerAddress | null): MemorySocket {
    if (port === 0) {
      while (this.#sockets.has(this.#nextPort)) this.#nextPort++;
      port = this.#nextPort++;
    } else if (this.#sockets.has(port)) {
      throw new Error(`listen memory ${address(host, port).key}: address already in use`);
    }
    const s = new MemorySocket(this.#link, address(host, port), remote);
    this.#sockets.set(port, s);
    return s;
  }

  /** What its sockets may ask of the network. */
  readonly #link: Link = {
    send: (from, batch, to) => this.#send(from, batch, to),
    delivered: (n) => void (this.stats.delivered += n),
    undeliverable: () => void this.stats.undeliverable++,
    unbind: (s) => {
      if (this.#sockets.get(s.localAddr.port) === s) this.#sockets.delete(s.localAddr.port);
    },
  };

  /** Routes a batch from `from`; takes the packets over and empties the batch. */
  #send(from: MemorySocket, batch: PacketBatch, to: PeerAddress | undefined): void {
    const now = performance.now();
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      this.stats.sent++;
      from.stats.txPackets++;
      const dest = to ?? p.peer ?? from.remote;
      const target = dest === null ? undefined : this.#sockets.get(dest.port);
      if (target === undefined || p.end - p.start > MAX_DATAGRAM) {
        this.stats.undeliverable++;
        from.stats.dropped++;
        // A connected UDP socket hears of a closed port (ICMP): so does a dialled one here.
        if (target === undefined && dest !== null && from.remote !== null) from.unreachable(dest);
      } else if (this.#random() < this.loss) {
        this.stats.lost++;
      } else {
        const copies = this.#random() < this.duplicate ? 2 : 1;
        if (copies === 2) this.stats.duplicated++;
        for (let c = 0; c < copies; c++) {
          let due = now + this.#delay;
          if (this.#random() < this.reorder) {
            this.stats.reordered++;
            due += this.#reorderDelay;
          }
          const copy = this.pool.from(p.bytes());
          copy.peer = from.localAddr;
          target.enqueue({ due, packet: copy });
        }
      }
      p.release();
    }
    batch.length = 0;
  }
}

/** One socket of a {@link MemoryNetwork}. */
class MemorySocket implements DatagramSocket {
  readonly localAddr: PeerAddress;
  /** The dialled peer, or null for a listening socket. */
  readonly remote: PeerAddress | null;
  readonly stats: TransportStats = { rxPackets: 0, txPackets: 0, dropped: 0 };
  readonly #net: Link;
  #handler: ReceiveHandler | null = null;
  readonly #events = new Set<TransportEventHandler>();
  /** Datagrams on their way here, by due time, then in sending order. */
  #inFlight: InFlight[] = [];
  readonly #batch = new PacketBatch();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(net: Link, addr: PeerAddress, remote: PeerAddress | null) {
    this.#net = net;
    this.localAddr = addr;
    this.remote = remote;
  }

  send(batch: PacketBatch, to?: PeerAddress): void {
    if (this.#closed) {
      this.stats.dropped += batch.length;
      batch.releaseAll();
      return;
    }
    this.#net.send(this, batch, to);
  }

  onEvent(handler: TransportEventHandler): () => void {
    this.#events.add(handler);
    return () => void this.#events.delete(handler);
  }

  /** Tells the event handlers that nobody listens at `peer`. */
  unreachable(peer: PeerAddress): void {
    const event: TransportEvent = {
      kind: "unreachable",
      peer,
      reason: "connection refused",
      errno: 111,
    };
    for (const h of this.#events) h(event);
  }

  receive(handler: ReceiveHandler): void {
    if (this.#handler !== null) throw new Error("memory: receive() was already called");
    this.#handler = handler;
    this.#arm();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const f of this.#inFlight) f.packet.release();
    this.#inFlight = [];
    this.#net.unbind(this);
    return Promise.resolve();
  }

  /** A datagram on its way here. */
  enqueue(f: InFlight): void {
    if (this.remote !== null && f.packet.peer?.port !== this.remote.port) {
      this.#net.undeliverable();
      this.stats.dropped++;
      f.packet.release();
      return;
    }
    const q = this.#inFlight;
    let i = q.length;
    while (i > 0 && q[i - 1].due > f.due) i--;
    q.splice(i, 0, f);
    this.#arm();
  }

  #arm(): void {
    if (this.#closed || this.#handler === null || this.#inFlight.length === 0) return;
    const due = this.#inFlight[0].due;
    if (this.#timer !== undefined && this.#timerAt <= due) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = due;
    this.#timer = setTimeout(this.#fire, Math.max(0, due - performance.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    const q = this.#inFlight, batch = this.#batch;
    let n = 0;
    while (n < q.length && q[n].due <= now) batch.push(q[n++].packet);
    this.#inFlight = q.slice(n);
    if (batch.length > 0) {
      this.stats.rxPackets += batch.length;
      this.#net.delivered(batch.length);
      try {
        this.#handler!(batch);
      } finally {
        batch.clear(); // the packets are the handler's now
      }
    }
    this.#arm();
  };
}
