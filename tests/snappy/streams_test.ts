import { StageError } from "../../pipeline/stage.ts";
import {
  SnappyDecoderStream,
  SnappyEncoderStream,
  snappyStreams,
} from "../../transforms/snappy/streams.ts";
import { STREAM_IDENTIFIER } from "../../transforms/snappy/framing.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "../smux/capture_streams.ts";

async function collect(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of r) parts.push(c);
  return concat(parts);
}

function rechunk(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.slice(i, i + size));
  return ReadableStream.from(parts);
}

Deno.test("snappy streams: encoder then decoder round-trip, one chunk per write", async () => {
  const writes = [
    new TextEncoder().encode("hello"),
    new Uint8Array(100000).fill(3),
    Uint8Array.from({ length: 5000 }, (_, i) => (i * 2654435761) >>> 24),
  ];
  const wire = await collect(
    ReadableStream.from(writes.map((w) => w.slice())).pipeThrough(new SnappyEncoderStream()),
  );
  assertEquals(toHex(wire.subarray(0, 10)), toHex(STREAM_IDENTIFIER));
  for (const size of [1, 13, 4096, wire.length]) {
    const back = await collect(rechunk(wire, size).pipeThrough(new SnappyDecoderStream()));
    assertEquals(toHex(back), toHex(concat(writes)));
  }
});

Deno.test("snappy streams: a corrupt or truncated stream errors the readable with a StageError", async () => {
  const wire = await collect(
    ReadableStream.from([new TextEncoder().encode("abcdefgh")]).pipeThrough(
      new SnappyEncoderStream(),
    ),
  );
  const bad = wire.slice();
  bad[bad.length - 1] ^= 1;
  await assertRejects(
    () => collect(ReadableStream.from([bad]).pipeThrough(new SnappyDecoderStream())),
    StageError,
    "checksum mismatch",
  );
  await assertRejects(
    () => collect(ReadableStream.from([wire.slice(0, 15)]).pipeThrough(new SnappyDecoderStream())),
    StageError,
    "ends inside a chunk",
  );
});

Deno.test("snappy streams: snappyStreams() pairs an encoder and a decoder", async () => {
  const { encoder, decoder } = snappyStreams();
  const raw: Uint8Array[] = [];
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(c, ctl) {
      raw.push(c);
      ctl.enqueue(c);
    },
  });
  encoder.readable.pipeThrough(tap).pipeTo(decoder.writable);
  const w = encoder.writable.getWriter();
  w.write(new TextEncoder().encode("one"));
  w.write(new TextEncoder().encode("two"));
  w.close();
  assertEquals(new TextDecoder().decode(await collect(decoder.readable)), "onetwo");
  assert(toHex(concat(raw)).startsWith(toHex(STREAM_IDENTIFIER)), "framed on the wire");
});
