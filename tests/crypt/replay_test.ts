/**
 * Replay protection (`replayWindow`, kcptun-ts): the nonce filter against a model, its window
 * bounds, and the `crypt` stage dropping and counting copies of `aes-128-gcm` datagrams whatever
 * address sends them, while forged datagrams take no place in the window.
 */

import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { PacketBatch, PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { Snmp, SNMP_CSV_FIELDS, SNMP_STRUCT_FIELDS } from "../../pipeline/snmp.ts";
import { type StageContext, StageError } from "../../pipeline/stage.ts";
import { GCM_NONCE_SIZE } from "../../transforms/crypt/gcm.ts";
import { REPLAY_WINDOW_MAX, ReplayFilter } from "../../transforms/crypt/replay.ts";
import { type CryptStage, cryptStage } from "../../transforms/crypt/stage.ts";

/** Nonce number `n` as 12 bytes (distinct numbers give distinct nonces). */
function nonce(n: number): Uint8Array {
  const b = new Uint8Array(GCM_NONCE_SIZE);
  new DataView(b.buffer).setUint32(0, n, true);
  new DataView(b.buffer).setUint32(8, Math.imul(n, 0x9e3779b1), true);
  return b;
}

Deno.test("replay filter: agrees with a model of two generations of sets, and keeps its bounds", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.oneof(fc.constant(-1), fc.nat(200)), { minLength: 1, maxLength: 600 }),
      (window, plan) => {
        const filter = new ReplayFilter(window);
        // The model: the same rotation rule over exact sets.
        let cur = new Set<number>(), prev = new Set<number>();
        // Accepted nonces in order, to measure how far back a copy reaches.
        const accepted: number[] = [];
        let next = 0;
        for (const step of plan) {
          // -1: a fresh nonce; k: a copy of the nonce accepted k datagrams before the last.
          const isCopy = step >= 0 && step < accepted.length;
          const n = isCopy ? accepted[accepted.length - 1 - step] : next++;
          const want = cur.has(n) || prev.has(n);
          const got = filter.seenBefore(nonce(n), 0);
          assertEquals(got, want, `nonce ${n}, window ${window}`);
          if (!want) {
            if (cur.size >= window) {
              prev = cur;
              cur = new Set();
            }
            cur.add(n);
            accepted.push(n);
          } else {
            // How many accepted since: a copy is always caught within the window and never
            // beyond twice the window.
            const age = accepted.length - 1 - accepted.lastIndexOf(n);
            assert(age < 2 * window, `caught at age ${age}, window ${window}`);
          }
          if (isCopy && step < window && !got) {
            throw new Error(`a copy ${step} back was missed, window ${window}`);
          }
          if (!isCopy && got) throw new Error(`fresh nonce ${n} taken for a copy`);
        }
      },
    ),
    { numRuns: 300, seed: 15 },
  );
});

Deno.test("replay filter: exact at scale; nothing fresh is ever taken for a copy", () => {
  const window = 5000;
  const filter = new ReplayFilter(window);
  const rand = new Uint8Array(GCM_NONCE_SIZE * 50_000);
  for (let off = 0; off < rand.length; off += 65536) {
    crypto.getRandomValues(rand.subarray(off, Math.min(rand.length, off + 65536)));
  }
  for (let i = 0; i < 50_000; i++) {
    assert(!filter.seenBefore(rand, i * GCM_NONCE_SIZE), `fresh nonce ${i} taken for a copy`);
    // The last `window` are all remembered.
    const back = i - 1 - (i * 7919) % Math.min(window, i + 1);
    if (back >= 0) {
      assert(filter.seenBefore(rand, back * GCM_NONCE_SIZE), `copy of ${back} at ${i}`);
    }
  }
  // Nonces differing in one bit of any of the 96 are different nonces.
  const f = new ReplayFilter(10);
  const base = nonce(7);
  assert(!f.seenBefore(base, 0));
  for (let bit = 0; bit < 96; bit++) {
    const v = base.slice();
    v[bit >> 3] ^= 1 << (bit & 7);
    assert(!f.seenBefore(v, 0), `bit ${bit}`);
  }
  assertEquals(f.memoryBytes, 2 * (Math.ceil(10 * 4 / 3) + 1) * 16);
  assertThrows(() => new ReplayFilter(0), RangeError);
  assertThrows(() => new ReplayFilter(REPLAY_WINDOW_MAX + 1), RangeError);
});

const PEERS: PeerAddress[] = [4000, 4001].map((port) => ({
  family: "ipv4",
  hostname: "127.0.0.1",
  port,
  key: `127.0.0.1:${port}`,
}));

function gcmEnd(replayWindow?: number) {
  const lines: string[] = [];
  const pool = new PacketPool();
  const ctx: StageContext = { role: "server", pool, snmp: new Snmp(), log: (l) => lines.push(l) };
  const stage = cryptStage.create(
    { crypt: "aes-128-gcm", key: "k", ...(replayWindow ? { replayWindow } : {}) },
    ctx,
  ) as CryptStage;
  return { lines, pool, snmp: ctx.snmp, stage };
}

/** Wire copies of `n` sealed datagrams (bytes, so that each can be delivered many times). */
function sealedWire(n: number): Uint8Array[] {
  const sender = gcmEnd();
  const batch = new PacketBatch();
  for (let i = 0; i < n; i++) batch.push(sender.pool.from(new Uint8Array(40 + i).fill(i)));
  sender.stage.encode(batch, 0);
  const out = batch.packets.slice(0, batch.length).map((p) => p.bytes().slice());
  batch.releaseAll();
  return out;
}

function deliver(
  end: ReturnType<typeof gcmEnd>,
  wire: Uint8Array[],
  peer: PeerAddress,
  now = 0,
): number[] {
  const batch = new PacketBatch();
  for (const w of wire) {
    const p = end.pool.from(w);
    p.peer = peer;
    batch.push(p);
  }
  end.stage.decode(batch, now);
  const lengths = batch.packets.slice(0, batch.length).map((p) => p.end - p.start);
  batch.releaseAll();
  return lengths;
}

Deno.test("crypt stage: copies are dropped and counted in InReplays, from any address", () => {
  const wire = sealedWire(20);
  const end = gcmEnd(1000);
  // The originals (and a copy inside the same batch) from the first address.
  assertEquals(deliver(end, [...wire, wire[3]], PEERS[0]).length, 20);
  assertEquals(end.snmp.InReplays, 1);
  // Copies of all of them, from the same and from another address.
  assertEquals(deliver(end, wire, PEERS[0], 1).length, 0);
  assertEquals(deliver(end, wire, PEERS[1], 2).length, 0);
  assertEquals([end.snmp.InReplays, end.snmp.InCsumErrors], [41, 0]);
  assertEquals(end.lines, [
    "crypt: 1 datagram dropped as a copy of one already received (a replay, or a duplicate made " +
    "by the network), latest from 127.0.0.1:4000 (InReplays 1)",
  ]);
  // Reported again at most once a minute, with the count since (the minute is over at the
  // first of these two).
  deliver(end, wire.slice(0, 2), PEERS[1], 60_000);
  assertEquals(end.lines.length, 2);
  assertEquals(
    end.lines[1],
    "crypt: 41 datagrams dropped as copies of one already received (a replay, or a duplicate " +
      "made by the network), latest from 127.0.0.1:4001 (InReplays 42)",
  );
  // Not one of kcptun's counters: its SIGUSR1 line and CSV keep their fields.
  assert(!(SNMP_STRUCT_FIELDS as readonly string[]).includes("InReplays"));
  assert(!(SNMP_CSV_FIELDS as readonly string[]).includes("InReplays"));
  assertEquals(end.pool.available, end.pool.created, "a packet was not released");
});

Deno.test("crypt stage: forged datagrams take no place in the window; without it copies pass", () => {
  const wire = sealedWire(3);
  const end = gcmEnd(2);
  // Forgeries: right nonces, broken tags. They fail the check and are not remembered...
  const forged = wire.map((w) => {
    const f = w.slice();
    f[f.length - 1] ^= 1;
    return f;
  });
  assertEquals(deliver(end, forged, PEERS[1]).length, 0);
  assertEquals([end.snmp.InCsumErrors, end.snmp.InReplays], [3, 0]);
  // ...so the genuine datagrams with those nonces still get through, once.
  assertEquals(deliver(end, wire, PEERS[0]).length, 3);
  assertEquals(deliver(end, wire.slice(1), PEERS[0]).length, 0);
  assertEquals(end.snmp.InReplays, 2);
  // A window of 2 remembers at least the last 2: the first of three may be forgotten or not,
  // the later two are caught (above). Without a window the stage accepts every copy.
  const plain = gcmEnd();
  assertEquals(deliver(plain, [...wire, ...wire], PEERS[0]).length, 6);
  assertEquals(plain.snmp.InReplays, 0);
  assertEquals(plain.stage.replayFilter, null);
  assertEquals(end.stage.replayFilter!.window, 2);
});

Deno.test("crypt stage: replayWindow only with aes-128-gcm, within bounds", () => {
  const ctx: StageContext = {
    role: "client",
    pool: new PacketPool(),
    snmp: new Snmp(),
    log: () => {},
  };
  for (const crypt of ["aes", "salsa20", "none", "null"]) {
    assertThrows(
      () => cryptStage.create({ crypt, key: "k", replayWindow: 10 }, ctx),
      StageError,
      "replay protection needs -crypt aes-128-gcm",
    );
  }
  for (const replayWindow of [-1, 1.5, REPLAY_WINDOW_MAX + 1]) {
    assertThrows(
      () => cryptStage.create({ crypt: "aes-128-gcm", key: "k", replayWindow }, ctx),
      StageError,
      "replayWindow must be 0 (off)",
    );
  }
  // 0 is off, for any method.
  assertEquals(
    (cryptStage.create({ crypt: "aes", replayWindow: 0 }, ctx) as CryptStage).replayFilter,
    null,
  );
});
