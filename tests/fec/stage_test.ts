import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { type Packet, PacketBatch, PacketFlags, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { type StageContext, StageError } from "../../pipeline/stage.ts";
import { assertPacketRoundTrip } from "../../testing.ts";
import { FEC_EXPIRE_MS } from "../../transforms/fec/decoder.ts";
import { FecStage, fecStage, type FecStageOptions } from "../../transforms/fec/stage.ts";
import { paws } from "../../transforms/fec/wire.ts";

function make(options: FecStageOptions, pool = new PacketPool()) {
  const ctx: StageContext = { role: "server", pool, snmp: new Snmp(), log: () => {} };
  return { s: new FecStage(options, ctx), pool, snmp: ctx.snmp };
}

function bytesOf(batch: PacketBatch): Uint8Array[] {
  const out = [];
  for (let i = 0; i < batch.length; i++) out.push(batch.at(i).bytes().slice());
  return out;
}

/** A small deterministic generator for test payloads. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => (x = (x * 1103515245 + 12345) >>> 0) >>> 8;
}

/** KCP-looking payloads (never starting like FEC), `count` of them, 24..maxLen bytes. */
function payloads(seed: number, count: number, maxLen = 300): Uint8Array[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const p = new Uint8Array(24 + (r() % (maxLen - 23)));
    for (let i = 0; i < p.length; i++) p[i] = r();
    p[0] = k;
    p[1] = k >> 8;
    p[4] = 81; // cmd PUSH
    return p;
  });
}

/** Encodes `data` one packet a batch and returns the wire datagrams in order. */
function encodeAll(s: FecStage, pool: PacketPool, data: Uint8Array[]): Uint8Array[] {
  const wire: Uint8Array[] = [];
  const batch = new PacketBatch();
  for (const d of data) {
    batch.push(pool.from(d));
    s.encode(batch, 0);
    wire.push(...bytesOf(batch));
    batch.releaseAll();
  }
  return wire;
}

Deno.test("fec stage: definition and option checks", () => {
  assertEquals(fecStage.name, "fec");
  assertEquals(fecStage.kind, "packet");
  assertEquals(fecStage.shared, false);
  const pool = new PacketPool();
  const ctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
  assertEquals(fecStage.create({ dataShards: 10, parityShards: 3 }, ctx).overhead, 8);
  assertEquals(fecStage.create({ dataShards: 0, parityShards: 3 }, ctx).overhead, 0);
  assertEquals(fecStage.create({ dataShards: 10, parityShards: 0 }, ctx).overhead, 0);
  assertThrows(() => fecStage.create({ dataShards: 200, parityShards: 57 }, ctx), StageError);
  assertThrows(() => fecStage.create({ dataShards: -1, parityShards: 3 }, ctx), StageError);
  assertThrows(() => fecStage.create({ dataShards: 1.5, parityShards: 3 }, ctx), StageError);
});

Deno.test("fec stage: encoder off passes packets through untouched", () => {
  for (const opts of [{ dataShards: 0, parityShards: 0 }, { dataShards: 10, parityShards: 0 }]) {
    const { s, pool } = make(opts);
    const batch = new PacketBatch();
    const data = payloads(1, 5);
    for (const d of data) batch.push(pool.from(d));
    const before = batch.packets.slice(0, batch.length);
    s.encode(batch, 0);
    assertEquals(batch.length, 5);
    for (let i = 0; i < 5; i++) {
      assert(batch.at(i) === before[i]);
      assertEquals(toHex(batch.at(i).bytes()), toHex(data[i]));
    }
  }
});

Deno.test("fec stage: headers, parity placement and the seqid wrap at paws", () => {
  const { s, pool } = make({ dataShards: 3, parityShards: 2 });
  s.encoder!.nextSeqid = paws(5) - 5; // 4294967290: the last group before the wrap
  const batch = new PacketBatch();
  for (const d of payloads(2, 4)) batch.push(pool.from(d));
  s.encode(batch, 0);
  const seqs = bytesOf(batch).map((b) =>
    `${b[4] === 0xf1 ? "d" : "p"}${(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) >>> 0}`
  );
  assertEquals(seqs, [
    "d4294967290",
    "d4294967291",
    "d4294967292",
    "p4294967293",
    "p4294967294",
    "d0",
  ]);
  const b0 = batch.at(0);
  assertEquals(b0.view.getUint16(b0.start + 6, true), b0.length - 6, "size = 2 + KCP bytes");
  const longest = Math.max(...[0, 1, 2].map((i) => batch.at(i).length));
  assertEquals(batch.at(3).length, longest, "parity as long as the longest data datagram");
  batch.releaseAll();
});

Deno.test("fec stage: non-FEC datagrams pass through decode unchanged", () => {
  const { s, pool, snmp } = make({ dataShards: 10, parityShards: 3 });
  const batch = new PacketBatch();
  const data = [...payloads(3, 3), new Uint8Array([1, 2, 3]), new Uint8Array(0)];
  for (const d of data) batch.push(pool.from(d));
  s.decode(batch, 0);
  assertEquals(bytesOf(batch).map(toHex), data.map(toHex));
  assertEquals(s.decoder, null, "no decoder until FEC arrives");
  assertEquals(snmp.InErrs + snmp.FECErrs, 0);
});

// ds > ps only: with ds ≤ ps a late parity shard alone "rebuilds" its group's data a second time
// (kcp-go does the same, KCP drops the duplicate), and the helper counts packets.
for (const [ds, ps] of [[10, 3], [3, 2], [2, 1]]) {
  Deno.test(`fec stage: ${ds}/${ps} round-trips arbitrary packets (testing.ts helper)`, async () => {
    await assertPacketRoundTrip(fecStage, {
      options: { dataShards: ds, parityShards: ps },
      seed: 41 + ds,
      numRuns: 60,
    });
  });
}

/** Decodes `wire` in `order` (indices, repeats allowed); returns direct and recovered payloads. */
function decodeOrder(s: FecStage, pool: PacketPool, wire: Uint8Array[], order: number[], now = 0) {
  const direct: string[] = [];
  const recovered: string[] = [];
  const batch = new PacketBatch();
  for (let i = 0; i < order.length; i += 3) {
    for (const k of order.slice(i, i + 3)) batch.push(pool.from(wire[k]));
    s.decode(batch, now);
    for (let j = 0; j < batch.length; j++) {
      const p: Packet = batch.at(j);
      const h = toHex(p.bytes());
      if (p.flags & PacketFlags.Recovered) recovered.push(h);
      else direct.push(h);
    }
    batch.releaseAll();
  }
  return { direct, recovered };
}

Deno.test("fec stage: ≤ ps losses per group, any order within groups, duplicates: all data arrives (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer(),
      (ds, ps, groups, seed) => {
        const n = ds + ps;
        const pool = new PacketPool();
        // The receiver runs FEC, so a real sender would have lifted its guard on its first datagram.
        const tx = make({ dataShards: ds, parityShards: ps, guardPlainPeer: false }, pool);
        const rx = make({ dataShards: ds, parityShards: ps }, pool);
        const data = payloads(seed, ds * groups);
        const wire = encodeAll(tx.s, pool, data);
        assertEquals(wire.length, n * groups);
        const r = rng(seed ^ 0x5eed);
        const order: number[] = [];
        for (let g = 0; g < groups; g++) {
          const idx = Array.from({ length: n }, (_, k) => g * n + k);
          for (let k = idx.length - 1; k > 0; k--) { // shuffle
            const j = r() % (k + 1);
            [idx[k], idx[j]] = [idx[j], idx[k]];
          }
          const lost = r() % (ps + 1);
          const kept = idx.slice(lost);
          const dups = kept.filter(() => r() % 4 === 0);
          order.push(...kept, ...dups);
        }
        const got = decodeOrder(rx.s, pool, wire, order);
        const want = new Set(data.map(toHex));
        const all = new Set([...got.direct, ...got.recovered]);
        assertEquals([...all].sort(), [...want].sort());
        assertEquals(rx.snmp.FECErrs, 0);
        rx.s.close();
        assertEquals(pool.available, pool.created, "no pooled packet leaked");
        return true;
      },
    ),
    { seed: 51, numRuns: 250 },
  );
});

Deno.test("fec stage: auto-tune finds the sender's ds/ps, then recovers losses (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom(0, 1, 4),
      fc.constantFrom(2021, 2026),
      (ds, ps, own, gen) => {
        const n = ds + ps;
        const pool = new PacketPool();
        // Our decoder never misreads parity while untuned, so this checks it with kcp-go's exact
        // parity; the guard against kcp-go 2021 receivers is tested in plain_peer_test.ts.
        const tx = make({ dataShards: ds, parityShards: ps, guardPlainPeer: false }, pool);
        // The receiver's own setting is off (0/0) or different (1/1, 4/4).
        const rx = make({ dataShards: own, parityShards: own, autoTune: gen as 2021 | 2026 }, pool);
        const groups = 4;
        const data = payloads(ds * 31 + ps, ds * groups);
        const wire = encodeAll(tx.s, pool, data);
        // Two clean groups teach the pattern; the last two each lose one data shard.
        const order = wire.map((_, i) => i).filter((i) => i !== 2 * n + 0 && i !== 3 * n + ds - 1);
        const got = decodeOrder(rx.s, pool, wire, order);
        assertEquals([rx.s.decoder!.dataShards, rx.s.decoder!.parityShards], [ds, ps]);
        for (const lost of [data[2 * ds], data[4 * ds - 1]]) {
          assert(got.recovered.includes(toHex(lost)), "lost data recovered");
        }
        for (const h of got.recovered) assert(data.some((d) => toHex(d) === h), "no garbage");
        return true;
      },
    ),
    { seed: 61, numRuns: 120 },
  );
});

Deno.test("fec stage: garbage never throws, leaks or grows the queue (fast-check)", () => {
  const datagram = fc.oneof(
    fc.uint8Array({ maxLength: 1500 }),
    // FEC-looking: random seqid near a small range, flag F1/F2, random size and body.
    fc.tuple(
      fc.integer({ min: 0, max: 600 }),
      fc.constantFrom(0xf1, 0xf2),
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 1400 }),
    ).map(([seq, flag, size, body]) => {
      const b = new Uint8Array(8 + body.length);
      new DataView(b.buffer).setUint32(0, seq, true);
      b[4] = flag;
      b[6] = size;
      b[7] = size >> 8;
      b.set(body, 8);
      return b.subarray(0, Math.min(b.length, (size & 1) ? b.length : 6 + (size % 64)));
    }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(0, 1, 3, 10),
      fc.array(fc.array(datagram, { maxLength: 20 }), { maxLength: 15 }),
      (own, batches) => {
        const pool = new PacketPool();
        const rx = make({ dataShards: own, parityShards: own ? 3 : 0 }, pool);
        let now = 0;
        for (const b of batches) {
          const batch = new PacketBatch();
          for (const d of b) batch.push(pool.from(d));
          rx.s.decode(batch, now);
          batch.releaseAll();
          now += 7000;
          const dec = rx.s.decoder;
          if (dec) assert(dec.queued <= 3 * (dec.dataShards + dec.parityShards) + 1);
        }
        rx.s.close();
        assertEquals(pool.available, pool.created);
        return true;
      },
    ),
    { seed: 71, numRuns: 300 },
  );
});

Deno.test("fec stage: counters for short, impossible and parity datagrams", () => {
  const { s, pool, snmp } = make({ dataShards: 3, parityShards: 2 });
  const batch = new PacketBatch();
  // FEC flag but only 7 bytes: InErrs.
  batch.push(pool.from(new Uint8Array([0, 0, 0, 0, 0xf1, 0, 9])));
  // Data shard whose size overruns the datagram, and one with size < 2: FECErrs.
  batch.push(pool.from(new Uint8Array([1, 0, 0, 0, 0xf1, 0, 200, 0, 1, 2])));
  batch.push(pool.from(new Uint8Array([2, 0, 0, 0, 0xf1, 0, 1, 0, 1, 2])));
  // A parity shard: counted and consumed.
  batch.push(pool.from(new Uint8Array([3, 0, 0, 0, 0xf2, 0, 5, 6, 7])));
  // A good data shard with trailing bytes beyond size: KCP gets exactly size−2 bytes.
  batch.push(pool.from(new Uint8Array([4, 0, 0, 0, 0xf1, 0, 4, 0, 0xaa, 0xbb, 0xcc])));
  s.decode(batch, 0);
  assertEquals(snmp.InErrs, 1);
  assertEquals(snmp.FECErrs, 2);
  assertEquals(snmp.FECParityShards, 1);
  assertEquals(bytesOf(batch).map(toHex), ["aabb"]);
  batch.releaseAll();
  s.close();
  assertEquals(pool.available, pool.created);
});

Deno.test("fec stage: queue limit evicts the oldest (FECShortShards) and 60 s expiry", () => {
  const { s, pool, snmp } = make({ dataShards: 3, parityShards: 2 });
  const tx = make({ dataShards: 3, parityShards: 2 }, pool);
  const wire = encodeAll(tx.s, pool, payloads(9, 30)); // 10 groups
  // Deliver only data shard 0 of each group: no group completes; the queue holds 3·5 = 15.
  const order = wire.map((_, i) => i).filter((i) => i % 5 === 0);
  decodeOrder(s, pool, wire, order, 0);
  assertEquals(s.decoder!.queued, 10);
  const more = encodeAll(tx.s, pool, payloads(10, 30)).filter((_, i) => i % 5 === 0);
  decodeOrder(s, pool, more, more.map((_, i) => i), 0);
  assertEquals(s.decoder!.queued, 15);
  assertEquals(snmp.FECShortShards, 5);
  // A shard arriving more than 60 s later flushes every older one.
  const late = encodeAll(tx.s, pool, payloads(11, 1));
  decodeOrder(s, pool, late, [0], FEC_EXPIRE_MS + 1);
  assertEquals(s.decoder!.queued, 1);
  s.close();
  assertEquals(s.decoder!.queued, 0);
});

Deno.test("fec stage: steady state allocates no packets (pool stays bounded)", () => {
  const pool = new PacketPool();
  const tx = make({ dataShards: 10, parityShards: 3 }, pool);
  const rx = make({ dataShards: 10, parityShards: 3 }, pool);
  const data = payloads(13, 10, 1300);
  const batch = new PacketBatch();
  let createdAfterWarmup = 0;
  for (let round = 0; round < 300; round++) {
    for (const d of data) batch.push(pool.from(d));
    tx.s.encode(batch, round);
    // Lose data shards 1, 5 and 8 of every group.
    batch.retain((p) => {
      const pos = p.view.getUint32(p.start, true) % 13;
      return pos !== 1 && pos !== 5 && pos !== 8;
    });
    rx.s.decode(batch, round);
    assertEquals(batch.length, 10);
    batch.releaseAll();
    if (round === 50) createdAfterWarmup = pool.created;
  }
  assertEquals(pool.created, createdAfterWarmup);
  assertEquals(rx.snmp.FECRecovered, 900);
});

Deno.test("fec stage: recovered packets carry the peer of the datagram that completed them", () => {
  const pool = new PacketPool();
  const tx = make({ dataShards: 2, parityShards: 1 }, pool);
  const rx = make({ dataShards: 2, parityShards: 1 }, pool);
  const wire = encodeAll(tx.s, pool, payloads(17, 2));
  const peer = { family: "ipv4", hostname: "127.0.0.1", port: 9, key: "127.0.0.1:9" } as const;
  const batch = new PacketBatch();
  for (const k of [1, 2]) {
    const p = pool.from(wire[k]);
    p.peer = peer;
    batch.push(p);
  }
  rx.s.decode(batch, 0);
  assertEquals(batch.length, 2);
  assert((batch.at(1).flags & PacketFlags.Recovered) !== 0);
  assert(batch.at(1).peer === peer);
  batch.releaseAll();
});
