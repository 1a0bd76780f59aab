/**
 * Web Streams views of stages: every stage can be used as a `{ readable, writable }` pair, so any
 * two can be wired together, tested alone, or replaced (the contract of `docs/architecture.md`). The
 * tunnel's hot path calls stages directly (see `chain.ts`); these adapters are for composition,
 * plugins and tests.
 *
 * A batch written into one of these streams belongs to the stream from then on: the writer must
 * not reuse the batch object (packets and batches are handed along, not copied).
 *
 * @module
 */

import type { Duplex } from "./duplex.ts";
import type { PacketBatch } from "./packet.ts";
import type { ByteSink, PacketStage, StreamStage } from "./stage.ts";

/** A clock in milliseconds; defaults to `performance.now`. */
export type Clock = () => number;

const defaultClock: Clock = () => performance.now();

/** The two directions of a packet stage as transform streams. */
export interface PacketStageStreams {
  /** Towards the wire. */
  encoder: TransformStream<PacketBatch, PacketBatch>;
  /** Away from the wire. */
  decoder: TransformStream<PacketBatch, PacketBatch>;
}

/** The two directions of a stream stage as transform streams. */
export interface StreamStageStreams {
  /** Towards KCP. */
  encoder: TransformStream<Uint8Array, Uint8Array>;
  /** Away from KCP. */
  decoder: TransformStream<Uint8Array, Uint8Array>;
}

/** Wraps one direction of a packet stage. Empty batches that come out are not forwarded. */
export function packetTransform(
  stage: PacketStage,
  direction: "encode" | "decode",
  clock: Clock = defaultClock,
): TransformStream<PacketBatch, PacketBatch> {
  return new TransformStream<PacketBatch, PacketBatch>({
    // Not an async function: a synchronous stage then costs no promise of its own per batch.
    transform(batch, controller) {
      const r = direction === "encode"
        ? stage.encode(batch, clock())
        : stage.decode(batch, clock());
      if (r === undefined) {
        if (batch.length > 0) controller.enqueue(batch);
        return;
      }
      return r.then(() => {
        if (batch.length > 0) controller.enqueue(batch);
      });
    },
  });
}

/** Both directions of a packet stage as transform streams. */
export function packetStageStreams(stage: PacketStage, clock?: Clock): PacketStageStreams {
  return {
    encoder: packetTransform(stage, "encode", clock),
    decoder: packetTransform(stage, "decode", clock),
  };
}

/**
 * Wraps one direction of a stream stage; a `StageError` from `decode` errors the stream. When the
 * input ends, the stage's `finish` runs for that direction (what it still holds comes out, or a
 * truncated unit errors the stream).
 */
export function byteTransform(
  stage: StreamStage,
  direction: "encode" | "decode",
): TransformStream<Uint8Array, Uint8Array> {
  let sink: ByteSink | null = null;
  return new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      sink = (bytes) => controller.enqueue(bytes);
    },
    transform(chunk) {
      if (direction === "encode") stage.encode(chunk, sink!);
      else stage.decode(chunk, sink!);
    },
    flush() {
      stage.finish?.(direction, sink!);
    },
  });
}

/** Both directions of a stream stage as transform streams. */
export function streamStageStreams(stage: StreamStage): StreamStageStreams {
  return { encoder: byteTransform(stage, "encode"), decoder: byteTransform(stage, "decode") };
}

/**
 * Puts stream stages (application side first) over a byte stream: what the returned duplex's
 * writable takes is encoded by every stage towards `inner`; what `inner` delivers is decoded on
 * its way out of the returned readable. Closing the result closes `inner`. With no stages,
 * `inner` itself is returned.
 */
export function wrapByteStream(inner: Duplex, stages: readonly StreamStage[]): Duplex {
  if (stages.length === 0) return inner;
  let readable = inner.readable;
  for (let i = stages.length - 1; i >= 0; i--) {
    readable = readable.pipeThrough(byteTransform(stages[i], "decode"));
  }
  const encoders = stages.map((s) => byteTransform(s, "encode"));
  for (let i = 0; i < encoders.length - 1; i++) {
    encoders[i].readable.pipeTo(encoders[i + 1].writable).catch(() => {});
  }
  encoders[encoders.length - 1].readable.pipeTo(inner.writable).catch(() => {});
  return { readable, writable: encoders[0].writable, close: () => inner.close() };
}
