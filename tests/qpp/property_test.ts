/** QPP round trips under arbitrary write splits (fast-check, seeded). */

import fc from "fast-check";
import { QppDecoder, QppEncoder, QppPads, qppPads } from "../../transforms/qpp/mod.ts";
import { assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";

// Pads are slow to build: a few (key, count) pairs, made once.
const PADS: QppPads[] = [
  qppPads("test", 61),
  qppPads("test", 7),
  new QppPads(new Uint8Array(0), 1),
  new QppPads(Uint8Array.from({ length: 300 }, (_, i) => i * 31), 2),
];

/** Cuts `n` bytes into pieces whose lengths come from `sizes` (cycled; 0 means an empty write). */
function pieces(n: number, sizes: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  for (let i = 0; at < n; i++) {
    const len = Math.min(sizes[i % sizes.length], n - at);
    out.push([at, at + len]);
    at += len;
    if (sizes.every((s) => s === 0)) break;
  }
  if (at < n) out.push([at, n]);
  return out;
}

function encryptSplit(pads: QppPads, data: Uint8Array, sizes: number[]): Uint8Array {
  const enc = new QppEncoder(pads);
  const out = data.slice();
  for (const [a, b] of pieces(data.length, sizes)) enc.process(out.subarray(a, b));
  assertEquals(enc.position, data.length);
  return out;
}

Deno.test("qpp property: any write split gives the same ciphertext, and decrypting under another split restores the data", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: PADS.length - 1 }),
      fc.uint8Array({ minLength: 0, maxLength: 600 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }),
      (which, data, encSizes, decSizes) => {
        const pads = PADS[which];
        const whole = encryptSplit(pads, data, [data.length]);
        const split = encryptSplit(pads, data, encSizes);
        assertEquals(toHex(split), toHex(whole));
        const dec = new QppDecoder(pads);
        const back = new Uint8Array(data.length);
        for (const [a, b] of pieces(data.length, decSizes)) {
          dec.process(split.subarray(a, b), back.subarray(a, b));
        }
        assertEquals(toHex(back), toHex(data));
      },
    ),
    { numRuns: 300, seed: 8061 },
  );
});

Deno.test("qpp property: encryption is a bijection per position (a changed byte changes only its own output)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (data, pos, delta) => {
        const pads = PADS[0];
        const i = pos % data.length;
        const other = data.slice();
        other[i] ^= delta;
        const a = encryptSplit(pads, data, [data.length]);
        const b = encryptSplit(pads, other, [data.length]);
        for (let j = 0; j < data.length; j++) {
          assertEquals(a[j] !== b[j], j === i, `byte ${j}`);
        }
      },
    ),
    { numRuns: 200, seed: 211 },
  );
});
