/**
 * Packets per second through three no-op packet stages: the fused call chain against plain Web
 * Streams (one TransformStream per stage), at batch sizes 1, 16 and 64. Each iteration moves
 * 1024 packets. Run: `deno bench -A bench/pipeline_bench.ts`.
 */

import { PacketChain } from "../pipeline/chain.ts";
import { PacketBatch, PacketPool } from "../pipeline/packet.ts";
import type { PacketStage } from "../pipeline/stage.ts";
import { packetTransform } from "../pipeline/streams.ts";

const PACKETS = 1024;

/** A stage that touches each packet (reads one byte) and changes nothing. */
function noop(): PacketStage & { seen: number } {
  return {
    overhead: 0,
    seen: 0,
    encode(batch: PacketBatch) {
      let s = 0;
      for (let i = 0; i < batch.length; i++) s += batch.packets[i].buffer[batch.packets[i].start];
      this.seen += s;
    },
    decode() {},
  };
}

const pool = new PacketPool();

function makeBatches(size: number): PacketBatch[] {
  const out: PacketBatch[] = [];
  for (let i = 0; i < PACKETS / size; i++) {
    const b = new PacketBatch();
    for (let j = 0; j < size; j++) b.push(pool.from(new Uint8Array(1350)));
    out.push(b);
  }
  return out;
}

for (const size of [1, 16, 64]) {
  const batches = makeBatches(size);
  const chain = new PacketChain([noop(), noop(), noop()]);
  Deno.bench({
    name: `fused chain, 3 no-op stages, batch ${size} (${PACKETS} packets/iter)`,
    group: `batch ${size}`,
    baseline: true,
    fn() {
      for (let i = 0; i < batches.length; i++) chain.encode(batches[i], 0);
    },
  });

  // A long-lived pipe of three transform streams, as a naive staged design would wire it.
  const stages = [noop(), noop(), noop()];
  let readable: ReadableStream<PacketBatch>;
  let writer: WritableStreamDefaultWriter<PacketBatch>;
  {
    const first = packetTransform(stages[0], "encode", () => 0);
    readable = first.readable
      .pipeThrough(packetTransform(stages[1], "encode", () => 0))
      .pipeThrough(packetTransform(stages[2], "encode", () => 0));
    writer = first.writable.getWriter();
  }
  const reader = readable.getReader();
  Deno.bench({
    name: `Web Streams, 3 no-op stages, batch ${size} (${PACKETS} packets/iter)`,
    group: `batch ${size}`,
    async fn() {
      const reads: Promise<unknown>[] = [];
      for (let i = 0; i < batches.length; i++) {
        writer.write(batches[i]);
        reads.push(reader.read());
      }
      await Promise.all(reads);
    },
  });
}
