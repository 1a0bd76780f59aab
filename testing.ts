/**
 * Property-test helpers for stage authors, built on fast-check. Kept out of `mod.ts` so that
 * fast-check stays out of the runtime and compiled binaries.
 *
 * ```ts
 * import { assertPacketRoundTrip } from "./testing.ts";
 * import padding from "./examples/padding.ts";
 *
 * Deno.test("padding round-trips", () => assertPacketRoundTrip(padding, { options: { max: 40 } }));
 * ```
 *
 * @module
 */

import fc from "fast-check";
import { PacketBatch, PacketPool } from "./pipeline/packet.ts";
import { Snmp } from "./pipeline/snmp.ts";
import type {
  PacketStage,
  PacketStageDefinition,
  StageContext,
  StageOptions,
  StreamStageDefinition,
} from "./pipeline/stage.ts";

/** A stage context for tests: its own pool and counters, silent log. */
export function testContext(
  role: "client" | "server" = "client",
  pool: PacketPool = new PacketPool(),
): StageContext {
  return { role, pool, snmp: new Snmp(), log: () => {} };
}

/** Options of {@link assertPacketRoundTrip}. */
export interface PacketRoundTripOptions {
  /** Options given to both instances. */
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
      const sender: PacketStage = def.create(opts.options ?? {}, testContext("client", pool));
      const receiver: PacketStage = def.create(opts.options ?? {}, testContext("server", pool));
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
    { numRuns: opts.numRuns ?? 200, seed: opts.seed },
  );
}

/** Options of {@link assertStreamRoundTrip}. */
export interface StreamRoundTripOptions {
  /** Options given to both instances. */
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

/**
 * Checks that a stream stage round-trips: arbitrary writes are encoded by one instance, the
 * encoded bytes are re-split at arbitrary points (stream boundaries carry no meaning), decoded by
 * another instance, and the result equals the concatenated input.
 */
export function assertStreamRoundTrip(
  def: StreamStageDefinition,
  opts: StreamRoundTripOptions = {},
): void {
  const arb = fc.record({
    writes: fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: opts.maxWriteSize ?? 70000, size: "max" }),
        // compressible data, so codecs take their compressed path too
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 20000 })).map((
          [b, n],
        ) => new Uint8Array(n).fill(b)),
      ),
      { maxLength: opts.maxWrites ?? 8 },
    ),
    cuts: fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 40 }),
  });
  fc.assert(
    fc.property(arb, ({ writes, cuts }) => {
      const sender = def.create(opts.options ?? {}, testContext("client"));
      const receiver = def.create(opts.options ?? {}, testContext("server"));
      const encoded: Uint8Array[] = [];
      for (const w of writes) sender.encode(w.slice(), (b) => encoded.push(b));
      const wire = concat(encoded);
      const decoded: Uint8Array[] = [];
      let at = 0;
      for (const c of cuts) {
        if (at >= wire.length) break;
        const end = Math.min(wire.length, at + c);
        receiver.decode(wire.slice(at, end), (b) => decoded.push(b));
        at = end;
      }
      if (at < wire.length) receiver.decode(wire.slice(at), (b) => decoded.push(b));
      const want = concat(writes);
      const got = concat(decoded);
      if (!sameBytes(got, want)) {
        throw new Error(`${def.name}: decoded ${got.length} bytes, wanted ${want.length}`);
      }
    }),
    { numRuns: opts.numRuns ?? 100, seed: opts.seed },
  );
}

function concat(parts: Uint8Array[]): Uint8Array {
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
