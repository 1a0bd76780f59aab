import assert from "node:assert/strict";
import { PacketBatch, PacketPool } from "../plugin.ts";
import { assertPacketRoundTrip, fuzzPacketStage, testContext } from "../testing.ts";
import padding from "./padding.ts";

Deno.test("padding: decode(encode(x)) = x for arbitrary batches", async () => {
  await assertPacketRoundTrip(padding, { options: { max: 40 }, seed: 7 });
  await assertPacketRoundTrip(padding, { options: { max: 0 }, seed: 8, numRuns: 50 });
  await assertPacketRoundTrip(padding, { options: { max: 255 }, seed: 9, numRuns: 50 });
});

Deno.test("padding: loss, damage and garbage never make decode throw or leak", async () => {
  await fuzzPacketStage(padding, { options: { max: 40 }, seed: 10 });
});

Deno.test("padding: sizes vary and stay within the overhead", () => {
  const pool = new PacketPool();
  const stage = padding.create({ max: 64 }, testContext("client", pool));
  assert.equal(stage.overhead, 65);
  const sizes = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const batch = new PacketBatch();
    batch.push(pool.from(new Uint8Array(100)));
    stage.encode(batch, 0);
    const n = batch.at(0).length;
    assert.ok(n >= 101 && n <= 165, `padded size ${n} out of range`);
    sizes.add(n);
    batch.releaseAll();
  }
  assert.ok(sizes.size > 30, `only ${sizes.size} distinct sizes: padding does not hide sizes`);
});

Deno.test("padding: impossible length bytes are dropped and counted", () => {
  const pool = new PacketPool();
  const ctx = testContext("server", pool);
  const stage = padding.create({}, ctx);
  const batch = new PacketBatch();
  batch.push(pool.from(new Uint8Array([])));
  batch.push(pool.from(new Uint8Array([1, 2, 200])));
  batch.push(pool.from(new Uint8Array([9, 9, 7, 1])));
  stage.decode(batch, 0);
  assert.equal(batch.length, 1);
  assert.deepEqual(Array.from(batch.at(0).bytes()), [9, 9]);
  assert.equal(ctx.snmp.InErrs, 2);
  batch.releaseAll();
  assert.equal(pool.available, pool.created);
});

Deno.test("padding: bad options fail with a message naming the option", () => {
  assert.throws(() => padding.create({ max: 300 }, testContext()), /"max"/);
});
