import fc from "fast-check";
import { uncompress } from "snappyjs";
import { compressBlock, decodeBlock, maxCompressedLength } from "../../transforms/snappy/block.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { fromHex } from "../support/captures.ts";

function compress(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(maxCompressedLength(data.length));
  return out.slice(0, compressBlock(data, out));
}

Deno.test("block: decodes the block Go's compressor wrote (docs/protocol.md §7)", () => {
  // varint 108; literal 13 = PSH header + "hello"; copy 64 at offset 5; copy 31 at offset 5.
  const got = decodeBlock(fromHex("6c30020264000300000068656c6c6ffe05007a0500"))!;
  assertEquals(got.length, 108);
  assertEquals(Array.from(got.subarray(0, 8)), [2, 2, 100, 0, 3, 0, 0, 0]);
  assertEquals(new TextDecoder().decode(got.subarray(8)), "hello".repeat(20));
});

Deno.test("block: maxCompressedLength(65536) is Go's 76490", () => {
  assertEquals(maxCompressedLength(65536), 76490);
});

Deno.test("block: round-trips and agrees with snappyjs' decoder", () => {
  const data = fc.oneof(
    fc.uint8Array({ maxLength: 3000 }),
    fc.array(fc.constantFrom(0, 1, 2, 97, 98), { maxLength: 5000 }).map((a) => Uint8Array.from(a)),
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 3000 }))
      .map(([unit, n]) => Uint8Array.from({ length: n }, (_, i) => unit[i % unit.length])),
  );
  fc.assert(
    fc.property(data, (d) => {
      const c = compress(d);
      const ours = decodeBlock(c, 1 << 20)!;
      assertEquals(ours, d);
      assertEquals(new Uint8Array(uncompress(c)), d);
    }),
    { numRuns: 300, seed: 11 },
  );
});

Deno.test("block: rejects malformed blocks", () => {
  const bad = [
    "", // no length
    "80", // truncated varint
    "ffffffff1f", // length above 2^32-1
    "05", // declares 5, has no elements
    "030061", // declares 3, one literal byte
    "03086162", // literal of 3 bytes, 2 present
    "0300610101", // copy of 4 overflows the 3 declared bytes
    "0500610100", // copy offset 0
    "0500610102", // copy offset 2, 1 byte written
    "0500610e01", // copy-2 element truncated
    "0500610f010000", // copy-4 element truncated
    "0208616263", // literal longer than the declared output
    "64f0", // literal whose length byte is missing
    "64fc0000", // literal whose 4 length bytes are not all there
  ];
  for (const hex of bad) assertEquals(decodeBlock(fromHex(hex)), null, hex);
  // A declared length above the limit is refused before decoding.
  assertEquals(decodeBlock(compress(new Uint8Array(100)), 99), null);
});

Deno.test("block: arbitrary bytes never throw and never yield a wrong-length result", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      const r = decodeBlock(junk, 100000);
      if (r !== null) {
        let n = 0, shift = 1;
        for (const b of junk) {
          n += (b & 0x7f) * shift;
          if (b < 0x80) break;
          shift *= 128;
        }
        assert(r.length === n, "length matches the varint");
      }
    }),
    { numRuns: 2000, seed: 3 },
  );
});
