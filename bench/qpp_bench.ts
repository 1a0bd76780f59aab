/**
 * QPP throughput and setup cost (provisional numbers: shared 2-core machine). Each
 * encrypt/decrypt iteration moves 1 MiB as 128 writes of 8 KiB (kcptun 2026's smux frame size),
 * in place, so MB/s = 1.048576 × iter/s. "unaligned" writes 8191-byte pieces, so most writes
 * start and end inside a PRNG output. Setup builds the 61 pads of the default count for a new
 * key each time (no cache).
 *
 *   deno bench -A bench/qpp_bench.ts
 */

import { QppDecoder, QppEncoder } from "../transforms/qpp/codec.ts";
import { QppPads, qppPads } from "../transforms/qpp/pads.ts";

const MIB = 1 << 20;
const WRITE = 8192;
const pads = qppPads("bench key", 61);

const data = new Uint8Array(MIB);
for (let i = 0, x = 1; i < MIB; i++) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  data[i] = x;
}

function run(codec: { process(b: Uint8Array): void }, piece: number): void {
  for (let at = 0; at < MIB; at += piece) {
    codec.process(data.subarray(at, Math.min(at + piece, MIB)));
  }
}

Deno.bench("qpp encrypt 1 MiB (8 KiB writes)", { group: "stream", baseline: true }, () => {
  run(new QppEncoder(pads), WRITE);
});

Deno.bench("qpp decrypt 1 MiB (8 KiB writes)", { group: "stream" }, () => {
  run(new QppDecoder(pads), WRITE);
});

Deno.bench("qpp encrypt 1 MiB (8191-byte writes, unaligned)", { group: "stream" }, () => {
  run(new QppEncoder(pads), WRITE - 1);
});

Deno.bench("qpp encrypt 1 MiB (100-byte writes)", { group: "stream" }, () => {
  run(new QppEncoder(pads), 100);
});

let seedNo = 0;
Deno.bench("qpp setup: 61 pads for a new key", { group: "setup", n: 20 }, () => {
  new QppPads(new TextEncoder().encode(`setup key ${seedNo++}`), 61);
});

Deno.bench("qpp per-stream start (encoder + decoder from cached pads)", { group: "setup" }, () => {
  new QppEncoder(pads);
  new QppDecoder(pads);
});
