import { buildPipeline } from "../../pipeline/pipeline.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { StageError } from "../../pipeline/stage.ts";
import {
  byteTransform,
  packetStageStreams,
  streamStageStreams,
  wrapByteStream,
} from "../../pipeline/streams.ts";
import type { StreamStage } from "../../pipeline/stage.ts";
import { assertPacketRoundTrip, assertStreamRoundTrip, testContext } from "../../testing.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { cryptLike, fakeRegistry, fecLike, snappyLike } from "./fake_stages.ts";

const registry = fakeRegistry();
const base = new URL("../../", import.meta.url);

async function roundTrip(stages: string[], payloads: Uint8Array[]) {
  const pipeline = await buildPipeline({ stages }, { registry, base });
  const pool = new PacketPool();
  const tx = pipeline.createPacketChain(testContext("client", pool));
  const rx = pipeline.createPacketChain(testContext("server", pool));
  const batch = new PacketBatch();
  for (const p of payloads) batch.push(pool.from(p));
  await tx.encode(batch, 0);
  const wire = Array.from({ length: batch.length }, (_, i) => batch.at(i).bytes().slice());
  await rx.decode(batch, 0);
  const out = Array.from({ length: batch.length }, (_, i) => batch.at(i).bytes().slice());
  batch.releaseAll();
  return { pipeline, wire, out, tx, pool };
}

const payloads = [1, 2, 3, 4, 5].map((n) => new Uint8Array(n * 7).fill(n));

Deno.test("pipeline: crypt-like, a plugin by path and fec-like compose and round-trip", async () => {
  const r = await roundTrip(["crypt-like", "./examples/padding.ts", "fec-like"], payloads);
  assertEquals(r.pipeline.describe(), "crypt-like > ./examples/padding.ts > fec-like");
  assertEquals(r.out, payloads);
  // fec-like is outermost on the wire: 5 data packets + 1 marker, each starting with its u16
  assertEquals(r.wire.length, 6);
  assertEquals(r.wire[5], new Uint8Array([0xff, 0xff]));
  assertEquals(r.tx.overhead, 4 + 33 + 2);
  assertEquals(r.pool.available, r.pool.created);
});

Deno.test("pipeline: reordering stages within the packet kind changes the wire, not the data", async () => {
  const a = await roundTrip(["crypt-like", "fec-like"], payloads);
  const b = await roundTrip(["fec-like", "crypt-like"], payloads);
  assertEquals(a.out, payloads);
  assertEquals(b.out, payloads);
  // crypt-like outermost: the first 4 bytes are the checksum, not a u16 sequence number
  assertEquals(Array.from(a.wire[0].subarray(0, 2)), [0, 0]);
  assert(b.wire[0][0] !== 0 || b.wire[0][1] !== 0 || b.wire[0].length !== a.wire[0].length);
  assertEquals(b.wire.length, 6);
});

Deno.test("pipeline: removing stages leaves a working chain", async () => {
  assertEquals((await roundTrip(["crypt-like"], payloads)).out, payloads);
  assertEquals((await roundTrip([], payloads)).out, payloads);
});

Deno.test("pipeline: synchronous stages are fused (no promise), async ones are awaited in place", async () => {
  const pool = new PacketPool();
  const sync = (await buildPipeline({ stages: ["crypt-like", "fec-like"] }, { registry }))
    .createPacketChain(testContext("client", pool));
  const batch = new PacketBatch();
  batch.push(pool.from(new Uint8Array([1, 2, 3])));
  assertEquals(sync.encode(batch, 0), undefined);
  batch.releaseAll();
  const r = await roundTrip(["crypt-like", "async-like", "fec-like"], payloads);
  assertEquals(r.out, payloads);
  // async-like's 0xAA sits between fec-like's u16 (outside) and crypt-like's checksum (inside)
  assertEquals(r.wire[0][2], 0xaa);
});

Deno.test("pipeline: a full kcptun-shaped list is accepted and split by slot", async () => {
  const p = await buildPipeline({
    stages: [
      "tcp-like",
      "smux-like",
      "snappy-like",
      "kcp-like",
      { stage: "fec-like", options: { group: 10 } },
      "crypt-like",
      "udp-like",
    ],
    options: { "fec-like": { group: 3, other: true } },
  }, { registry });
  assertEquals(p.boundary("arq")?.name, "kcp-like");
  assertEquals(p.boundary("transport")?.name, "udp-like");
  assertEquals(p.streamStages.map((s) => s.name), ["snappy-like"]);
  assertEquals(p.packetStages.map((s) => s.name), ["fec-like", "crypt-like"]);
  assertEquals(p.packetStages[0].options, { group: 10, other: true });
  assertEquals(p.sharedPacketStageCount, 1);
});

Deno.test("pipeline: an unknown stage name is a clear error listing the known ones", async () => {
  const e = await assertRejects(
    () => buildPipeline({ stages: ["kcp-like", "cryptt"] }, { registry }),
    StageError,
    'unknown stage "cryptt"',
  );
  assert(e.message.includes("crypt-like"), e.message);
});

Deno.test("pipeline: a plugin module without a valid stage is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string, text: string) => Deno.writeTextFile(`${dir}/${name}`, text);
    await write("none.js", "export const x = 1;\n");
    await write("nocreate.js", 'export default { name: "x", kind: "packet" };\n');
    await write("badkind.js", 'export default { name: "x", kind: "blob", create() {} };\n');
    await write("broken.js", "export default {{;\n");
    const b = new URL(`file://${dir}/`);
    const cases: Array<[string, string]> = [
      ["./none.js", "no default export describing a stage"],
      ["./nocreate.js", "no create(options, context) function"],
      ["./badkind.js", 'kind "blob"'],
      ["./broken.js", "cannot load"],
      ["./missing.js", "cannot load"],
    ];
    for (const [spec, text] of cases) {
      const e = await assertRejects(
        () => buildPipeline({ stages: [spec] }, { registry, base: b }),
        StageError,
        text,
      );
      assert(e.message.startsWith(`plugin ${spec}`), e.message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline: a stage in a slot of the wrong kind is a clear error", async () => {
  const cases: Array<[string[], string]> = [
    [
      ["kcp-like", "snappy-like"],
      '"snappy-like" is a session stream stage and cannot come after "kcp-like"',
    ],
    [["crypt-like", "kcp-like"], '"kcp-like" is a ARQ boundary (kcp) and cannot come after'],
    [["udp-like", "crypt-like"], '"crypt-like" is a packet stage and cannot come after "udp-like"'],
    [["kcp-like", "smux-like"], "cannot come after"],
    [["kcp-like", "kcp-like"], "second ARQ boundary"],
    [["snappy-like", "crypt-like"], "need an ARQ boundary"],
  ];
  for (const [stages, text] of cases) {
    await assertRejects(() => buildPipeline({ stages }, { registry }), StageError, text);
  }
  await assertRejects(
    () => buildPipeline({ stages: [{ stage: "" }] }, { registry }),
    StageError,
    "neither a stage name",
  );
});

Deno.test("pipeline: Web Streams views give the same bytes as the fused chain", async () => {
  const pool = new PacketPool();
  const ctx = testContext("client", pool);
  const stages = [fecLike.create({}, ctx), cryptLike.create({}, ctx)];
  const rxStages = [fecLike.create({}, ctx), cryptLike.create({}, ctx)];
  const enc = stages.map((s) => packetStageStreams(s).encoder);
  const dec = rxStages.map((s) => packetStageStreams(s).decoder).reverse();
  let readable: ReadableStream<PacketBatch> = ReadableStream.from(
    payloads.map((p) => {
      const b = new PacketBatch();
      b.push(pool.from(p));
      return b;
    }),
  );
  for (const t of [...enc, ...dec]) readable = readable.pipeThrough(t);
  const out: Uint8Array[] = [];
  for await (const b of readable) {
    for (let i = 0; i < b.length; i++) out.push(b.at(i).bytes().slice());
    b.releaseAll();
  }
  assertEquals(out, payloads);
});

Deno.test("pipeline: stream stage views round-trip through TransformStreams", async () => {
  const { encoder } = streamStageStreams(snappyLike.create({}, testContext()));
  const { decoder } = streamStageStreams(snappyLike.create({}, testContext()));
  const input = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])];
  const out: number[] = [];
  for await (const c of ReadableStream.from(input).pipeThrough(encoder).pipeThrough(decoder)) {
    out.push(...c);
  }
  assertEquals(out, [1, 2, 3, 4, 5]);
});

/** Holds what it encodes until finish; its decode finish fails when told to. */
function finishing(failDecode: boolean): StreamStage {
  const held: Uint8Array[] = [];
  return {
    encode: (b) => void held.push(b),
    decode: (b, out) => out(b),
    finish(direction, out) {
      if (direction === "encode") { for (const b of held.splice(0)) out(b); }
      else if (failDecode) throw new StageError("truncated");
    },
  };
}

Deno.test("pipeline: a stream stage's view runs finish when its input ends", async () => {
  const encoded: number[] = [];
  const input = ReadableStream.from([new Uint8Array([1, 2]), new Uint8Array([3])]);
  for await (const c of input.pipeThrough(byteTransform(finishing(false), "encode"))) {
    encoded.push(...c);
  }
  assertEquals(encoded, [1, 2, 3]);
  const failing = ReadableStream.from([new Uint8Array([1])])
    .pipeThrough(byteTransform(finishing(true), "decode"));
  await assertRejects(
    async () => {
      for await (const _ of failing) { /* drain */ }
    },
    StageError,
    "truncated",
  );
});

Deno.test("pipeline: wrapByteStream puts stages over a duplex and closes it", async () => {
  const sent: number[] = [];
  let closes = 0;
  const inner = {
    readable: ReadableStream.from([new Uint8Array([7, 8])]),
    writable: new WritableStream<Uint8Array>({ write: (c) => void sent.push(...c) }),
    close: () => void closes++,
  };
  const outer = wrapByteStream(inner, [finishing(false)]);
  const w = outer.writable.getWriter();
  await w.write(new Uint8Array([1, 2]));
  await w.close();
  const got: number[] = [];
  for await (const c of outer.readable) got.push(...c);
  assertEquals(got, [7, 8]);
  // The encoder's finish hands on what it held once the writable closes.
  for (let i = 0; i < 10 && sent.length < 2; i++) await new Promise((r) => setTimeout(r, 1));
  assertEquals(sent, [1, 2]);
  outer.close();
  assertEquals(closes, 1);
});

Deno.test("testing.ts: round-trip helpers accept good stages", async () => {
  await assertPacketRoundTrip(cryptLike, { seed: 1, numRuns: 50 });
  await assertPacketRoundTrip(fecLike, { seed: 2, numRuns: 50 });
  await assertStreamRoundTrip(snappyLike, { seed: 3, numRuns: 20 });
});

Deno.test("pipeline: options a stage does not declare, or of the wrong type, are errors naming both", async () => {
  await assertRejects(
    () => buildPipeline({ stages: [{ stage: "fec-like", options: { grup: 3 } }] }, { registry }),
    StageError,
    'stage "fec-like" takes no option "grup" (it takes: group, other)',
  );
  await assertRejects(
    () =>
      buildPipeline({ stages: ["fec-like"], options: { "fec-like": { group: "3" } } }, {
        registry,
      }),
    StageError,
    'option "group" of stage "fec-like" must be an integer, got "3"',
  );
  await assertRejects(
    () => buildPipeline({ stages: [{ stage: "crypt-like", options: { key: "k" } }] }, { registry }),
    StageError,
    'stage "crypt-like" takes no option "key" (it takes none)',
  );
});

Deno.test("pipeline: a stream stage above the multiplexer is a per-stream stage", async () => {
  const p = await buildPipeline({
    stages: ["tcp-like", "snappy-like", "smux-like", "snappy-like", "kcp-like", "udp-like"],
  }, { registry });
  assertEquals(p.stages.map((s) => s.slot), [
    "app",
    "perstream",
    "mux",
    "stream",
    "arq",
    "transport",
  ]);
  assertEquals(p.perStreamStages.length, 1);
  assertEquals(p.streamStages.length, 1);
});
