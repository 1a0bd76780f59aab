import fc from "fast-check";
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

/** The elements of a block, as (kind, length, offset) triples: kind 0 literal, 1..2 copies. */
function elements(block: Uint8Array): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  let s = 0;
  while (block[s++] >= 0x80);
  while (s < block.length) {
    const tag = block[s];
    if ((tag & 3) === 0) {
      let n = tag >>> 2, extra = 0;
      if (n >= 60) {
        extra = n - 59;
        n = 0;
        for (let k = 0; k < extra; k++) n |= block[s + 1 + k] << (8 * k);
      }
      out.push([0, n + 1, extra]);
      s += 1 + extra + n + 1;
    } else if ((tag & 3) === 1) {
      out.push([1, 4 + ((tag >>> 2) & 7), ((tag & 0xe0) << 3) | block[s + 1]]);
      s += 2;
    } else if ((tag & 3) === 2) {
      out.push([2, 1 + (tag >>> 2), block[s + 1] | (block[s + 2] << 8)]);
      s += 3;
    } else {
      throw new Error("our compressor never writes 4-byte offsets");
    }
  }
  return out;
}

/** Text-like bytes (seeded words), what snappy is for. */
function words(n: number, seed: number): Uint8Array {
  const vocab = "kcp smux snappy tunnel stream session window segment parity shard crypt the of"
    .split(" ");
  let x = seed, s = "";
  while (s.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += vocab[x % vocab.length] + (x & 0x100 ? " " : ", ");
  }
  return new TextEncoder().encode(s.slice(0, n));
}

Deno.test("block: our compressor uses every element form and round-trips at the edges", () => {
  let x = 1;
  const noise = (n: number) =>
    Uint8Array.from({ length: n }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x;
    });
  const cases: Uint8Array[] = [
    noise(100), // a literal with a 1-byte length
    noise(5000), // a literal with a 2-byte length
    new Uint8Array(0),
    new Uint8Array(1),
    ...[15, 16, 17, 18, 31].map((n) => new Uint8Array(n).fill(7)),
    new Uint8Array(65536), // one fragment of zeros: 64-byte copies
    new Uint8Array(65537).fill(1), // two fragments
    words(65536, 1),
    words(200000, 2), // four fragments; copies must not reach into an earlier fragment
  ];
  // Copy lengths around 64 and 68 (the split points), at short and long offsets.
  for (const len of [60, 63, 64, 65, 66, 67, 68, 69, 127, 128, 131, 132]) {
    for (const gap of [1000, 5000]) {
      const b = noise(gap + len + 40);
      b.copyWithin(gap, 0, len);
      cases.push(b);
    }
  }
  const seen = new Set<string>();
  for (const d of cases) {
    const c = compress(d);
    assert(c.length <= maxCompressedLength(d.length), `${d.length}: within the bound`);
    assertEquals(decodeBlock(c, 1 << 20), d, `${d.length} bytes`);
    for (const [kind, len, x] of elements(c)) {
      if (kind === 0) seen.add(`literal, ${x} length bytes`);
      else {
        seen.add(kind === 1 ? "copy, 1-byte offset" : "copy, 2-byte offset");
        assert(kind === 1 ? len >= 4 && len <= 11 && x < 2048 : len >= 1 && len <= 64, "lengths");
        assert(x >= 1 && x <= 65535, "offset");
      }
    }
  }
  assertEquals([...seen].sort(), [
    "copy, 1-byte offset",
    "copy, 2-byte offset",
    "literal, 0 length bytes",
    "literal, 1 length bytes",
    "literal, 2 length bytes",
  ]);
});

Deno.test("block: compresses text and repeats well, random data not at all", () => {
  const text = compress(words(65536, 3)).length;
  assert(text < 65536 * 0.4, `text: ${text} bytes of 65536`);
  assert(compress(new Uint8Array(65536)).length < 3200, "zeros");
  const random = crypto.getRandomValues(new Uint8Array(65536));
  // Stored as one literal: varint (3) + tag (3) + the bytes.
  assertEquals(compress(random).length, 65536 + 6);
});

Deno.test("block: round-trips (fast-check)", () => {
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
