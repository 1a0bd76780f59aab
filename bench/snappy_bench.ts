/**
 * Snappy framing throughput (provisional numbers: shared 2-core machine). Each iteration moves
 * 1 MiB as 32 writes of 32 KiB (kcptun 2021's frame size), so MB/s = 1.048576 × iter/s.
 *
 *   deno bench -A bench/snappy_bench.ts
 */

import { compressBlock, decodeBlock, maxCompressedLength } from "../transforms/snappy/block.ts";
import { crc32c } from "../transforms/snappy/crc32c.ts";
import { SnappyFrameDecoder, SnappyFrameEncoder } from "../transforms/snappy/framing.ts";

const FRAME = 32768;
const FRAMES = 32;

function textLike(n: number): Uint8Array {
  const words = "the quick brown fox jumps over a lazy dog while kcptun relays smux frames ".split(
    " ",
  );
  let s = "";
  let x = 7;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += words[x % words.length] + " ";
  }
  return new TextEncoder().encode(s.slice(0, n));
}

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

const DATA = { compressible: textLike(FRAME * FRAMES), random: random(FRAME * FRAMES) };

function encodeAll(data: Uint8Array): Uint8Array[] {
  const enc = new SnappyFrameEncoder();
  const out: Uint8Array[] = [];
  for (let i = 0; i < FRAMES; i++) {
    enc.encode(data.subarray(i * FRAME, (i + 1) * FRAME), (b) => out.push(b));
  }
  return out;
}

const WIRE = { compressible: encodeAll(DATA.compressible), random: encodeAll(DATA.random) };
let sink = 0;

for (const kind of ["compressible", "random"] as const) {
  Deno.bench(`snappy encode 1 MiB ${kind} (32 KiB writes)`, { group: `encode` }, () => {
    const enc = new SnappyFrameEncoder();
    const d = DATA[kind];
    for (let i = 0; i < FRAMES; i++) {
      enc.encode(d.subarray(i * FRAME, (i + 1) * FRAME), (b) => sink += b.length);
    }
  });
  Deno.bench(`snappy decode 1 MiB ${kind}`, { group: "decode" }, () => {
    const dec = new SnappyFrameDecoder();
    for (const c of WIRE[kind]) dec.decode(c, (b) => sink += b.length);
  });
}

const BLOCK = (() => {
  const src = DATA.compressible.subarray(0, 65536);
  const out = new Uint8Array(maxCompressedLength(src.length));
  return out.slice(0, compressBlock(src, out));
})();

const BLOCK_OUT = new Uint8Array(maxCompressedLength(65536));
for (const kind of ["compressible", "random"] as const) {
  const src = DATA[kind].subarray(0, 65536);
  Deno.bench(`block compress 64 KiB ${kind}`, { group: "block compress" }, () => {
    sink += compressBlock(src, BLOCK_OUT);
  });
}

Deno.bench("block decode 64 KiB text", () => {
  sink += decodeBlock(BLOCK)!.length;
});

Deno.bench("crc32c 1 MiB", () => {
  sink += crc32c(DATA.random);
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
