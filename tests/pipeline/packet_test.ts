import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

Deno.test("packet: prepend writes into headroom without copying", () => {
  const pool = new PacketPool(256, 32);
  const p = pool.from(new Uint8Array([1, 2, 3]));
  assertEquals(p.start, 32);
  const at = p.prepend(8);
  assertEquals(at, 24);
  assertEquals(p.length, 11);
  assertEquals(Array.from(p.bytes().subarray(8)), [1, 2, 3]);
});

Deno.test("packet: prepend beyond the headroom moves the payload back", () => {
  const pool = new PacketPool(64, 4);
  const p = pool.from(new Uint8Array([7, 8, 9]));
  p.prepend(10);
  assertEquals(p.start, 0);
  assertEquals(Array.from(p.bytes().subarray(10)), [7, 8, 9]);
  assertThrows(() => p.prepend(60), RangeError, "prepend");
  assertThrows(() => p.append(60), RangeError, "append");
});

Deno.test("pool: released packets are reused, reset and not double-counted", () => {
  const pool = new PacketPool();
  const a = pool.acquire();
  a.set(new Uint8Array([1]));
  a.flags = 1;
  a.release();
  const b = pool.acquire();
  assert(a === b, "the free list should hand the same packet back");
  assertEquals(b.length, 0);
  assertEquals(b.flags, 0);
  assertEquals(pool.created, 1);
});

Deno.test("batch: retain keeps order and releases the rest; steady state allocates nothing", () => {
  const pool = new PacketPool();
  const batch = new PacketBatch();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 10; i++) batch.push(pool.from(new Uint8Array([i])));
    batch.retain((p) => p.buffer[p.start] % 2 === 0);
    assertEquals(
      Array.from({ length: batch.length }, (_, i) => batch.at(i).buffer[batch.at(i).start]),
      [0, 2, 4, 6, 8],
    );
    batch.releaseAll();
  }
  assertEquals(pool.created, 10);
  assertEquals(pool.available, 10);
  assertEquals(batch.packets.length, 10);
});
