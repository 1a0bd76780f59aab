import fc from "fast-check";
import { StageError } from "../../pipeline/stage.ts";
import {
  MAX_CHUNK_LENGTH,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  STREAM_IDENTIFIER,
} from "../../transforms/snappy/framing.ts";
import { snappyChecksum } from "../../transforms/snappy/crc32c.ts";
import snappyStage, { SnappyStreamStage } from "../../transforms/snappy/stage.ts";
import { assertStreamRoundTrip } from "../../testing.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { fromHex, toHex } from "../support/captures.ts";
import { concat } from "../smux/capture_streams.ts";

const ID = "ff060000734e61507059";

function encodeAll(writes: Uint8Array[]): Uint8Array[] {
  const enc = new SnappyFrameEncoder();
  const out: Uint8Array[] = [];
  for (const w of writes) enc.encode(w, (b) => out.push(b));
  return out;
}

/** Decodes `wire` fed in the given pieces; returns the output and the error, if any. */
function decodeAll(pieces: Uint8Array[]): { out: Uint8Array; error: Error | null } {
  const dec = new SnappyFrameDecoder();
  const parts: Uint8Array[] = [];
  try {
    for (const p of pieces) dec.decode(p, (b) => parts.push(b));
    dec.finish();
    return { out: concat(parts), error: null };
  } catch (e) {
    return { out: concat(parts), error: e as Error };
  }
}

function chunk(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = type;
  out[1] = body.length & 0xff;
  out[2] = (body.length >> 8) & 0xff;
  out[3] = body.length >> 16;
  out.set(body, 4);
  return out;
}

function withCrc(data: Uint8Array, crc = snappyChecksum(data)): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, crc, true);
  out.set(data, 4);
  return out;
}

Deno.test("framing: the stream identifier chunk is ff 06 00 00 sNaPpY", () => {
  assertEquals(toHex(STREAM_IDENTIFIER), ID);
  assertEquals(MAX_CHUNK_LENGTH, 76494);
});

Deno.test("framing: an 8-byte smux SYN encodes byte for byte as Go's writer did", () => {
  // old_comp.jsonl, first C2S payload: identifier + uncompressed chunk header, then the frame.
  const out = encodeAll([fromHex("0100000003000000"), fromHex("0200000003000000")]);
  assertEquals(out.map(toHex), [
    ID + "010c00004439ac2f",
    "0100000003000000",
    "010c0000bde37d26",
    "0200000003000000",
  ]);
});

Deno.test("framing: decodes the captured compressed chunk (docs/protocol.md §7)", () => {
  const wire = fromHex(ID + "001900008e2f22e76c30020264000300000068656c6c6ffe05007a0500");
  const { out, error } = decodeAll([wire]);
  assertEquals(error, null);
  assertEquals(toHex(out.subarray(0, 8)), "0202640003000000");
  assertEquals(new TextDecoder().decode(out.subarray(8)), "hello".repeat(20));
});

Deno.test("framing: compressed only when it saves at least n/8; chunks of at most 65536", () => {
  const [first] = encodeAll([new Uint8Array(1000).fill(7)]);
  assertEquals(first[10], 0x00); // compressed
  const random = Uint8Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 24);
  const r = encodeAll([random]);
  assertEquals(r[0][10], 0x01); // uncompressed: header, then the input itself
  assert(r[1] === random, "the uncompressed payload is handed on, not copied");
  const big = concat(encodeAll([new Uint8Array(65536 * 2 + 5).fill(1)]));
  const sizes: number[] = [];
  for (let at = 10; at < big.length;) {
    const len = big[at + 1] | (big[at + 2] << 8) | (big[at + 3] << 16);
    const one = decodeAll([STREAM_IDENTIFIER, big.subarray(at, at + 4 + len)]);
    sizes.push(one.out.length);
    at += 4 + len;
  }
  assertEquals(sizes, [65536, 65536, 5]);
  assertEquals(encodeAll([new Uint8Array(0)]).length, 0);
});

Deno.test("framing: skips padding and reserved skippable chunks, accepts a repeated identifier", () => {
  const data = new TextEncoder().encode("payload");
  const wire = concat([
    STREAM_IDENTIFIER,
    chunk(0xfe, new Uint8Array(300)),
    chunk(0x80, new Uint8Array(0)),
    chunk(0x01, withCrc(data)),
    STREAM_IDENTIFIER,
    chunk(0xfd, new Uint8Array(70000)),
    chunk(0x01, withCrc(data)),
  ]);
  for (const split of [1, 3, 7, 100, wire.length]) {
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i += split) pieces.push(wire.slice(i, i + split));
    const { out, error } = decodeAll(pieces);
    assertEquals(error, null);
    assertEquals(new TextDecoder().decode(out), "payloadpayload");
  }
});

Deno.test("framing: corrupt streams throw a StageError and deliver nothing of the bad chunk", () => {
  const good = chunk(0x01, withCrc(new TextEncoder().encode("good")));
  const data = new TextEncoder().encode("hello");
  const cases: [string, Uint8Array, string][] = [
    ["no identifier", chunk(0x01, withCrc(data)), "stream identifier"],
    ["bad identifier", chunk(0xff, new TextEncoder().encode("SnAppy")), "bad stream identifier"],
    ["identifier length", chunk(0xff, new TextEncoder().encode("sNaPpY!")), "length 7"],
    ["bad crc, uncompressed", chunk(0x01, withCrc(data, 1234)), "checksum mismatch"],
    [
      "bad crc, compressed",
      chunk(0x00, withCrc(fromHex("6c30020264000300000068656c6c6ffe05007a0500"), 99)),
      "checksum mismatch",
    ],
    ["corrupt block", chunk(0x00, withCrc(fromHex("0a0061"), 0)), "corrupt compressed chunk"],
    ["block over 65536", chunk(0x00, withCrc(fromHex("818008"), 0)), "more than 65536"],
    ["no checksum", chunk(0x00, new Uint8Array(3)), "no checksum"],
    ["reserved unskippable 0x02", chunk(0x02, new Uint8Array(4)), "unsupported chunk type 0x02"],
    ["reserved unskippable 0x7f", chunk(0x7f, new Uint8Array(0)), "unsupported chunk type 0x7f"],
    ["uncompressed over 65536", chunk(0x01, new Uint8Array(65541)), "exceeds 65536"],
  ];
  for (const [name, bad, msg] of cases) {
    const prefix = name === "no identifier" ? [] : [STREAM_IDENTIFIER, good];
    const dec = new SnappyFrameDecoder();
    const got: Uint8Array[] = [];
    const wire = concat([...prefix, bad, good]);
    assertThrows(() => dec.decode(wire, (b) => got.push(b)), StageError, msg);
    assertEquals(
      new TextDecoder().decode(concat(got)),
      prefix.length ? "good" : "",
      `${name}: only the chunks before the corruption`,
    );
    // The failure is sticky.
    assertThrows(() => dec.decode(good, () => {}), StageError, msg);
  }
  // A chunk length over 76494 is refused from the header alone.
  const long = Uint8Array.of(0x00, 0xcf, 0x2a, 0x01); // 76495
  assertThrows(
    () => new SnappyFrameDecoder().decode(concat([STREAM_IDENTIFIER, long]), () => {}),
    StageError,
    "exceeds 76494",
  );
});

Deno.test("framing: the end of input inside a chunk is an error, between chunks it is not", () => {
  const wire = concat(encodeAll([new TextEncoder().encode("some bytes")]));
  for (let cut = 1; cut < wire.length; cut++) {
    const { error } = decodeAll([wire.slice(0, cut)]);
    if (cut === 10) assertEquals(error, null);
    else assert(error instanceof StageError && /ends inside a chunk/.test(error.message), `${cut}`);
  }
  assertEquals(decodeAll([]).error, null);
});

Deno.test("framing: round-trips arbitrary writes split into arbitrary reads", () => {
  const write = fc.oneof(
    fc.uint8Array({ maxLength: 70000 }),
    fc.tuple(fc.nat(255), fc.integer({ min: 0, max: 140000 })).map(([b, n]) =>
      new Uint8Array(n).fill(b)
    ),
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.nat(20000)).map(([u, n]) =>
      Uint8Array.from({ length: n }, (_, i) => u[i % u.length])
    ),
  );
  fc.assert(
    fc.property(
      fc.array(write, { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 30 }),
      (writes, cuts) => {
        const want = concat(writes);
        const wire = concat(encodeAll(writes.map((w) => w.slice())));
        const pieces: Uint8Array[] = [];
        for (let at = 0, k = 0; at < wire.length; k++) {
          const end = Math.min(wire.length, at + cuts[k % cuts.length]);
          pieces.push(wire.slice(at, end));
          at = end;
        }
        const { out, error } = decodeAll(pieces);
        assertEquals(error, null);
        assertEquals(out.length, want.length);
        assert(toHex(out) === toHex(want), "decoded bytes differ");
      },
    ),
    { numRuns: 60, seed: 42 },
  );
});

Deno.test("framing: the snappy stage passes the shared stream-stage round-trip property", async () => {
  await assertStreamRoundTrip(snappyStage, { numRuns: 40, seed: 5 });
});

Deno.test("framing: a corrupted byte inside any chunk body is caught; earlier chunks survive", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (writes, pick, flip) => {
        // Encode write by write so chunk boundaries are known.
        const enc = new SnappyFrameEncoder();
        const chunks: Uint8Array[] = [];
        for (const w of writes) {
          const parts: Uint8Array[] = [];
          enc.encode(w.slice(), (b) => parts.push(b));
          chunks.push(concat(parts));
        }
        const k = pick % chunks.length;
        const c = chunks[k];
        const bodyStart = (k === 0 ? 10 : 0) + 4; // past identifier and chunk header
        const at = bodyStart + (pick % (c.length - bodyStart));
        c[at] ^= flip;
        const { out, error } = decodeAll([concat(chunks)]);
        assert(error instanceof StageError, "corruption detected");
        assertEquals(toHex(out), toHex(concat(writes.slice(0, k))));
      },
    ),
    { numRuns: 300, seed: 9 },
  );
});

Deno.test("snappy stage: a stream that ends inside a chunk fails at finish, a whole one does not", () => {
  const enc = new SnappyStreamStage(), dec = new SnappyStreamStage();
  const chunks: Uint8Array[] = [];
  enc.encode(new TextEncoder().encode("hello hello hello hello"), (b) => chunks.push(b));
  const wire = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    wire.set(c, at);
    at += c.length;
  }
  const sink = () => {};
  dec.decode(wire.subarray(0, wire.length - 3), sink);
  assertThrows(() => dec.finish("decode"), StageError, "stream ended inside a chunk");
  const whole = new SnappyStreamStage();
  whole.decode(wire, sink);
  whole.finish("decode");
});
