import { assertPacketRoundTrip, testContext } from "../testing.ts";
import { PacketBatch, PacketPool } from "../pipeline/packet.ts";
import { assert, assertEquals, assertThrows } from "../tests/support/assert.ts";
import padding from "./padding.ts";

Deno.test("padding: decode(encode(x)) = x for arbitrary batches", async () => {
  await assertPacketRoundTrip(padding, { options: { max: 40 }, seed: 7 });
  await assertPacketRoundTrip(padding, { options: { max: 0 }, seed: 8, numRuns: 50 });
  await assertPacketRoundTrip(padding, { options: { max: 255 }, seed: 9, numRuns: 50 });
});

Deno.test("padding: sizes vary and stay within the overhead", () => {
  const pool = new PacketPool();
  const stage = padding.create({ max: 64 }, testContext("client", pool));
  assertEquals(stage.overhead, 65);
  const sizes = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const batch = new PacketBatch();
    batch.push(pool.from(new Uint8Array(100)));
    stage.encode(batch, 0);
    const n = batch.at(0).length;
    assert(n >= 101 && n <= 165, `padded size ${n} out of range`);
    sizes.add(n);
    batch.releaseAll();
  }
  assert(sizes.size > 30, `only ${sizes.size} distinct sizes: padding does not hide sizes`);
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
  assertEquals(batch.length, 1);
  assertEquals(Array.from(batch.at(0).bytes()), [9, 9]);
  assertEquals(ctx.snmp.InErrs, 2);
  batch.releaseAll();
  assertEquals(pool.available, pool.created);
});

Deno.test("padding: bad options fail with a message naming the option", () => {
  assertThrows(() => padding.create({ max: 300 }, testContext()), Error, '"max"');
});
