/**
 * Our FEC sender against a kcp-go v5.6.1 session whose own FEC is off (Debian's kcptun-server
 * 20210922 with `-ds 0 -ps 0`), modelled in kcpgo2021_receiver.ts.
 *
 * Such a receiver decodes with a guessed 1/1 until auto-tuning has seen two parity runs; a 1/1
 * group is a seqid pair (2i, 2i+1), so each parity shard at an odd seqid arrives alone and is
 * "rebuilt" into a data shard byte for byte. Parity rows all sum to 1, so when a group's data
 * shards agree in a field (same size, conv, cmd, ts, len: bulk traffic from one flush) the parity
 * carries that field unchanged: KCP takes it as a PUSH with a made-up sn and garbage data. That was
 * the interop failure `fec client 10/3 server 0/0 ts→go` (Go's server logged "snappy: corrupt
 * input"; in the capture it ACKed sn 217 right after seqid 23, long before our client sent sn 217).
 * Go's own client sends the same bytes for the same KCP datagrams, but its first groups mix small
 * datagrams (one smux SYN each, 4 KiB copy chunks), so the parity's size field comes out invalid.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { FecStage, type FecStageOptions } from "../../transforms/fec/stage.ts";
import { readU32 } from "../../transforms/fec/wire.ts";
import { kcpAccepts, KcpGo2021Receiver } from "./kcpgo2021_receiver.ts";
import { kcpSegment, rng } from "./kcp_bytes.ts";

const CONV = 0x82f87ab3;

/** One KCP segment of our conv. */
function segment(
  f: { cmd: number; wnd: number; ts: number; sn: number; una: number },
  data: Uint8Array,
): Uint8Array {
  return kcpSegment(CONV, f, data);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function randomBytes(r: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => r());
}

/**
 * The client→server KCP datagrams of the failing capture, in shape: a 42-byte and two 32-byte
 * PUSH datagrams (smux frames), then full 1322-byte PUSH datagrams of one flush (same ts, wnd,
 * una; sn counting up), `count` in all.
 */
function bulkLikeCapture(count: number, seed = 7): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  for (let sn = 0; sn < count; sn++) {
    const len = sn === 0 ? 18 : sn < 3 ? 8 : 1298;
    out.push(segment({ cmd: 81, wnd: 512, ts: 2228, sn, una: 0 }, randomBytes(r, len)));
  }
  return out;
}

function makeStage(options: FecStageOptions) {
  const pool = new PacketPool();
  const ctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
  return { s: new FecStage(options, ctx), pool };
}

/** Runs `kcp` through a fresh stage one datagram a batch; returns the wire datagrams. */
function send(options: FecStageOptions, kcp: Uint8Array[]): Uint8Array[] {
  const { s, pool } = makeStage(options);
  const batch = new PacketBatch();
  const wire: Uint8Array[] = [];
  for (const d of kcp) {
    batch.push(pool.from(d));
    s.encode(batch, 0);
    for (let i = 0; i < batch.length; i++) wire.push(batch.at(i).bytes().slice());
    batch.releaseAll();
  }
  return wire;
}

interface Delivery {
  receiver: KcpGo2021Receiver;
  /** KCP segments taken from rebuilt shards. */
  fromRebuilt: { sn: number; hex: string; seqid: number }[];
  /** Rebuilt shards the size check dropped. */
  rejected: number;
}

/** Feeds `wire` (minus the indexes in `lost`) to a kcp-go v5.6.1 receiver with FEC `ds`/`ps`. */
function deliver(wire: Uint8Array[], lost = new Set<number>(), ds = 0, ps = 0): Delivery {
  const receiver = new KcpGo2021Receiver(ds, ps);
  const d: Delivery = { receiver, fromRebuilt: [], rejected: 0 };
  wire.forEach((w, i) => {
    if (lost.has(i)) return;
    const out = receiver.input(w);
    d.rejected += out.rejected;
    for (const r of out.rebuilt) {
      for (const s of kcpAccepts(r, CONV)) d.fromRebuilt.push({ ...s, seqid: readU32(w, 0) });
    }
  });
  return d;
}

const segmentsOf = (kcp: Uint8Array[]) =>
  new Set(kcp.flatMap((d) => kcpAccepts(d, CONV).map((s) => s.hex)));

Deno.test("plain peer: kcp-go's exact 10/3 parity makes a kcp-go 2021 FEC-off receiver accept a PUSH never sent", () => {
  const kcp = bulkLikeCapture(60);
  const d = deliver(send({ dataShards: 10, parityShards: 3, guardPlainPeer: false }, kcp));
  const sent = segmentsOf(kcp);
  const madeUp = d.fromRebuilt.filter((s) => !sent.has(s.hex));
  // Group 1 (seqids 13..22) is ten full PUSH datagrams: its parity 0 at seqid 23 is the one.
  assertEquals(madeUp.map((s) => s.seqid), [23]);
  assertEquals(madeUp[0].hex.slice(8, 10), "51", "cmd PUSH");
  assert(madeUp[0].sn >= kcp.length || madeUp[0].sn < 3, `sn ${madeUp[0].sn} is garbage`);
  // Auto-tuning only gets there on seqid 24, after two parity runs.
  assertEquals(d.receiver.tunes, [{ seqid: 24, ds: 10, ps: 3 }]);
});

Deno.test("plain peer: with the guard (default) nothing made up reaches KCP, tuning is unchanged, even parity still rebuilds", () => {
  const kcp = bulkLikeCapture(80);
  const exact = send({ dataShards: 10, parityShards: 3, guardPlainPeer: false }, kcp);
  const wire = send({ dataShards: 10, parityShards: 3 }, kcp);
  // Only the size bytes of some odd-seqid parity differ from kcp-go's bytes.
  const differing: number[] = [];
  wire.forEach((w, i) => {
    assertEquals(w.length, exact[i].length);
    const diff = w.findIndex((b, k) => b !== exact[i][k]);
    if (diff === -1) return;
    differing.push(readU32(w, 0));
    assertEquals([w[4], w[6], w[7]], [0xf2, 0, 0]);
    assertEquals(w.subarray(8), exact[i].subarray(8));
  });
  assert(differing.length > 0 && differing.every((s) => s % 2 === 1), `zeroed: ${differing}`);

  // Lose data shard 3 of group 4 (parity 0 at even seqid 62) and of group 5 (at odd seqid 75).
  const lostSeqids = [55, 68];
  const lost = new Set(lostSeqids.map((s) => wire.findIndex((w) => readU32(w, 0) === s)));
  const d = deliver(wire, lost);
  const sent = segmentsOf(kcp);
  for (const s of d.fromRebuilt) assert(sent.has(s.hex), `made-up segment sn ${s.sn}`);
  assertEquals(d.receiver.tunes, [{ seqid: 24, ds: 10, ps: 3 }]);
  // Group 4's loss comes back whole; group 5's rebuild used a zeroed shard and is cut short.
  assertEquals(d.fromRebuilt.map((s) => s.sn), [4 * 10 + 3]);
  assert(d.rejected >= 1, "the 1/1 guess's rebuild of seqid 23 was refused by its size check");
});

Deno.test("plain peer: the guard lifts at the peer's first FEC datagram, not at plain ones", () => {
  const { s, pool } = makeStage({ dataShards: 10, parityShards: 3 });
  assert(s.encoder!.guardPlainPeer, "on by default");
  const batch = new PacketBatch();
  batch.push(pool.from(segment({ cmd: 82, wnd: 512, ts: 1, sn: 0, una: 0 }, new Uint8Array(0))));
  s.decode(batch, 0);
  batch.releaseAll();
  assert(s.encoder!.guardPlainPeer, "a peer sending bare KCP has its FEC off");
  const peer = send({ dataShards: 4, parityShards: 2 }, bulkLikeCapture(1))[0];
  batch.push(pool.from(peer));
  s.decode(batch, 0);
  batch.releaseAll();
  assert(!s.encoder!.guardPlainPeer, "a peer sending FEC never guesses");
  assert(
    !makeStage({ dataShards: 3, parityShards: 2, guardPlainPeer: false }).s.encoder!.guardPlainPeer,
  );
});

Deno.test("plain peer: any shard counts and traffic, losses once tuned: KCP never gets a segment we did not send (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 24 }),
      fc.integer({ min: 1, max: 8 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 3 }),
      fc.integer(),
      (ds, ps, uniform, segs, seed) => {
        const r = rng(seed);
        const n = ds + ps;
        const groups = 8;
        const lens = Array.from({ length: segs }, () => r() % 400);
        const kcp: Uint8Array[] = [];
        for (let i = 0; i < ds * groups; i++) {
          const parts = [];
          for (let k = 0; k < (uniform ? segs : 1 + (r() % segs)); k++) {
            const f = uniform
              ? { cmd: 81, wnd: 256, ts: 99, sn: i * segs + k, una: 7 }
              : { cmd: 81 + (r() % 4), wnd: r() % 1024, ts: r(), sn: r() % 4096, una: r() % 4096 };
            parts.push(segment(f, randomBytes(r, uniform ? lens[k] : r() % 400)));
          }
          kcp.push(concat(parts));
        }
        const wire = send({ dataShards: ds, parityShards: ps }, kcp);
        // The first three groups arrive whole (the receiver learns ds/ps), then ~1 in 8 is lost.
        const lost = new Set<number>();
        for (let i = 3 * n; i < wire.length; i++) if (r() % 8 === 0) lost.add(i);
        const d = deliver(wire, lost);
        const sent = segmentsOf(kcp);
        for (const s of d.fromRebuilt) assert(sent.has(s.hex), `made-up segment sn ${s.sn}`);
        assertEquals(d.receiver.params, [ds, ps]);
        return true;
      },
    ),
    { seed: 2021, numRuns: 150 },
  );
});

Deno.test("plain peer: kcp-go 2021 receivers that run FEC (other shard counts) need no guard in order", () => {
  // The guard lifts once such a peer is heard; its own (ds, ps) with ds > ps only rebuilds when a
  // data position is missing, which in-order loss-free delivery never leaves.
  const kcp = bulkLikeCapture(120);
  const wire = send({ dataShards: 10, parityShards: 3, guardPlainPeer: false }, kcp);
  const sent = segmentsOf(kcp);
  for (const [ds, ps] of [[4, 2], [3, 2], [7, 2], [20, 5], [10, 3]]) {
    const d = deliver(wire, new Set(), ds, ps);
    for (const s of d.fromRebuilt) assert(sent.has(s.hex), `${ds}/${ps}: made-up sn ${s.sn}`);
    assertEquals(d.receiver.params, [10, 3]);
  }
});
