/**
 * `-autofec` (transforms/fec/auto.ts): the loss model, the controller and its meters, the
 * encoder's per-group parity count and bare-KCP bypass, and what a kcp-go v5.6.1 receiver
 * (kcpgo2021_receiver.ts) makes of the result: with our ds/ps it never re-tunes and never gets a
 * segment we did not send; with other numbers or its FEC off it sees a fixed sender's FEC stream.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import {
  AUTO_PEER_QUIET_MS,
  FecAutoController,
  LayoutCheck,
  parityFor,
  PushMeter,
  residualLoss,
  ShardGapMeter,
} from "../../transforms/fec/auto.ts";
import { FecEncoder } from "../../transforms/fec/encoder.ts";
import { FecStage, type FecStageOptions } from "../../transforms/fec/stage.ts";
import { readU16, readU32 } from "../../transforms/fec/wire.ts";
import { Rng } from "../sim/link.ts";
import { kcpAccepts, KcpGo2021Receiver } from "./kcpgo2021_receiver.ts";
import { kcpSegment, rng } from "./kcp_bytes.ts";

const CONV = 0x5eed0fec;

/** One KCP segment of our conv. */
function segment(
  f: { cmd: number; wnd: number; ts: number; sn: number; una: number },
  data: Uint8Array,
): Uint8Array {
  return kcpSegment(CONV, f, data);
}

function randomBytes(r: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => r());
}

/**
 * Bulk PUSH datagrams as one flush writes them: every header field but sn equal, full payloads.
 * The hardest traffic for a wrong decode: a rebuild from unrelated shards keeps those fields.
 */
function bulk(count: number, seed: number, len = 300): Uint8Array[] {
  const r = rng(seed);
  return Array.from(
    { length: count },
    (_, sn) => segment({ cmd: 81, wnd: 512, ts: 777, sn, una: 0 }, randomBytes(r, len)),
  );
}

const isFec = (d: Uint8Array) =>
  d.length >= 6 && (readU16(d, 4) === 0xf1 || readU16(d, 4) === 0xf2);
const isParity = (d: Uint8Array) => isFec(d) && readU16(d, 4) === 0xf2;

const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const segmentsOf = (kcp: Uint8Array[]) =>
  new Set(kcp.flatMap((d) => kcpAccepts(d, CONV).map((s) => s.hex)));

function binomialResidual(loss: number, ds: number, p: number): number {
  const n = ds + p;
  let c = 1, sum = 0;
  for (let k = 0; k <= n; k++) {
    if (k > p) sum += c * loss ** k * (1 - loss) ** (n - k) * k * ds / n;
    c = c * (n - k) / (k + 1);
  }
  return sum / ds;
}

Deno.test("fec auto: residual loss is the binomial tail for independent loss and grows with runs", () => {
  for (const [loss, ds, p] of [[0.02, 10, 2], [0.05, 10, 3], [0.1, 20, 5], [0.3, 4, 2]]) {
    const got = residualLoss(loss, 1, ds, p), want = binomialResidual(loss, ds, p);
    assert(Math.abs(got - want) <= 1e-12 + 1e-9 * want, `${loss} ${ds}/${p}: ${got} vs ${want}`);
  }
  assertEquals(residualLoss(0, 3, 10, 0), 0);
  assert(Math.abs(residualLoss(0.02, 1, 10, 0) - 0.02) < 1e-12, "no parity: every loss stays");
  for (const burst of [1, 2, 4]) {
    let prev = Infinity;
    for (let p = 0; p <= 8; p++) {
      const r = residualLoss(0.05, burst, 10, p);
      assert(r < prev, `runs ${burst}: parity ${p} does not help`);
      prev = r;
    }
  }
  assert(residualLoss(0.05, 4, 10, 3) > 3 * residualLoss(0.05, 1, 10, 3), "runs of 4 hurt more");
});

Deno.test("fec auto: parityFor is the fewest parity meeting the target, monotone in the loss", () => {
  assertEquals(parityFor(0, 1, 10, 3, 0.001), 0);
  assertEquals(parityFor(0.0009, 1, 10, 3, 0.001), 0);
  assertEquals(parityFor(0.02, 1, 10, 5, 0.001), 2);
  assertEquals(parityFor(0.1, 2, 10, 5, 0.001), 5, "more than 5 would be needed: the most");
  for (const burst of [1, 2]) {
    let prev = 0;
    for (let loss = 0; loss < 0.3; loss += 0.0025) {
      const p = parityFor(loss, burst, 10, 6, 0.001);
      assert(p >= prev, `loss ${loss}: ${p} < ${prev}`);
      if (p < 6) assert(residualLoss(loss, burst, 10, p) <= 0.001);
      if (p > 0) assert(residualLoss(loss, burst, 10, p - 1) > 0.001);
      prev = p;
    }
    assertEquals(prev, 6);
  }
});

Deno.test("fec auto: the controller starts at full parity, lowers only after the hold, raises at once", () => {
  const c = new FecAutoController({ dataShards: 10, maxParity: 3, holdMs: 3000 });
  assertEquals(c.level, 3);
  for (let i = 0; i < 400; i++) c.peerShard(0);
  assertEquals(c.update(0), 3, "the hold starts");
  c.pushes(100, 0);
  assertEquals(c.update(2999), 3);
  assertEquals(c.update(3000), 3, "too few samples during the hold");
  c.pushes(28, 0);
  assertEquals(c.update(3000), 0, "no loss for 3 s: no parity");
  c.peerShard(3); // one run of three lost datagrams: 0.3 % at this window, above the target
  assert(c.loss > 0.002 && c.burst > 1.5, `loss ${c.loss} runs ${c.burst}`);
  const raised = c.update(3001);
  assert(raised >= 1, "raised at the next update");
  assertEquals(raised, parityFor(c.loss, c.burst, 10, 3, 0.001));
  for (let i = 0; i < 10; i++) {
    c.peerShard(3);
    for (let k = 0; k < 20; k++) c.peerShard(0);
  }
  assert(c.loss > 0.02 && c.burst > 2, `loss ${c.loss} runs ${c.burst}`);
  assertEquals(c.update(3002), 3, "runs of three at a few %: all parity");
  // A peer FEC stream that falls silent for the hold no longer counts.
  assertEquals(c.update(3002 + AUTO_PEER_QUIET_MS), 3);
  assertEquals(c.peerLoss, 0, "the silent peer's estimate is dropped");
  // Retransmissions alone (no FEC from the peer) raise it too.
  const d = new FecAutoController({ dataShards: 10, maxParity: 5, holdMs: 0 });
  d.update(0);
  d.pushes(1000, 0);
  assertEquals(d.update(1), 0);
  d.pushes(50, 25);
  assertEquals(d.update(2), parityFor(d.loss, 1, 10, 5, 0.001));
  assert(d.level >= 2, `level ${d.level} at ${d.retransmitted}`);
  // Without samples it does not lower, however long it waits.
  const e = new FecAutoController({ dataShards: 10, maxParity: 3, holdMs: 10 });
  e.update(0);
  assertEquals(e.update(1e9), 3);
});

/** Drives `c` with a peer stream through a Gilbert-Elliott chain; returns the level per sample. */
function driveGilbert(
  c: FecAutoController,
  seed: number,
  loss: number,
  burst: number,
  samples: number,
): number[] {
  const r = new Rng(seed);
  const stay = 1 - 1 / burst, enter = loss / (burst * (1 - loss));
  let bad = false, lost = 0, now = 0;
  const levels: number[] = [];
  for (let i = 0; i < samples; i++) {
    bad = r.chance(bad ? stay : enter);
    now += 2; // 500 datagrams a second
    if (bad) {
      lost++;
    } else {
      c.peerShard(lost);
      lost = 0;
    }
    if (i % 8 === 0) c.update(now);
    levels.push(c.level);
  }
  return levels;
}

Deno.test("fec auto: under steady Gilbert-Elliott loss the level settles where the model says and barely moves", () => {
  const cases = [
    { loss: 0, burst: 1, settle: 0 },
    { loss: 0.005, burst: 1, settle: 1 },
    { loss: 0.02, burst: 1, settle: 2 },
    { loss: 0.02, burst: 2, settle: 5 },
    { loss: 0.1, burst: 2, settle: 5 },
  ];
  for (const k of cases) {
    for (const seed of [1, 2]) {
      const c = new FecAutoController({ dataShards: 10, maxParity: 5 });
      const levels = driveGilbert(c, seed, k.loss, k.burst, 200_000);
      const tail = levels.slice(50_000);
      let changes = 0;
      for (let i = 1; i < tail.length; i++) if (tail[i] !== tail[i - 1]) changes++;
      const low = tail.reduce((a, b) => Math.min(a, b)),
        high = tail.reduce((a, b) => Math.max(a, b));
      const tag = `loss ${k.loss} runs ${k.burst} seed ${seed}: levels ${low}..${high}, ${changes}`;
      // Hysteresis: at most ten changes in 300 simulated seconds, and never below the model's
      // level for the true loss by more than one (the estimate is noisy), never above it by more
      // than one unless at the most.
      assert(changes <= 10, tag);
      assert(low >= k.settle - 1 && (high <= k.settle + 1 || high === 5), tag);
      if (k.loss === 0) assertEquals(high, 0, tag);
    }
  }
});

Deno.test("fec auto: ShardGapMeter counts lost data positions of the peer's layout only", () => {
  const m = new ShardGapMeter();
  // 4/2: data at positions 0..3 of each 6.
  assertEquals(m.observe(0, 4, 6), 0);
  assertEquals(m.observe(1, 4, 6), 0);
  assertEquals(m.observe(3, 4, 6), 1, "seqid 2 lost");
  assertEquals(m.observe(4, 4, 6), -1, "parity is no sample");
  assertEquals(m.observe(7, 4, 6), 1, "5 is parity (unsent or lost: not counted), 6 lost");
  assertEquals(m.observe(7, 4, 6), -1, "a repeat");
  assertEquals(m.observe(6, 4, 6), -1, "late");
  // A run across parity positions is one gap: 8, 9 (data), 10, 11 (parity), 12 (data) lost.
  assertEquals(m.observe(13, 4, 6), 3);
  assertEquals(m.observe(13 + 100, 4, 6), -1, "a jump past 3 groups restarts (113 is parity)");
  assertEquals(m.observe(114, 4, 6), 0);
  // The peer's seqids wrap at its paws (a multiple of 6): restart, count nothing.
  const w = new ShardGapMeter();
  const top = Math.floor(0xffffffff / 6) * 6 - 6; // a group start near the end
  assertEquals(w.observe(top, 4, 6), 0);
  assertEquals(w.observe(0, 4, 6), 0);
  assertEquals(w.observe(1, 4, 6), 0);
});

Deno.test("fec auto: PushMeter tells new PUSH segments from retransmissions", () => {
  const m = new PushMeter();
  const none = new Uint8Array(0);
  const push = (sn: number) => segment({ cmd: 81, wnd: 1, ts: 1, sn, una: 0 }, new Uint8Array(5));
  const ack = (sn: number) => segment({ cmd: 82, wnd: 1, ts: 1, sn, una: 0 }, none);
  const dgram = (...s: Uint8Array[]) => {
    const out = new Uint8Array(s.reduce((n, x) => n + x.length, 0));
    let at = 0;
    for (const x of s) out.set(x, (at += x.length) - x.length);
    return out;
  };
  for (const d of [dgram(ack(9), push(0), push(1)), dgram(push(2)), dgram(push(1), push(3))]) {
    m.observe(d, 0, d.length);
  }
  assertEquals([m.first, m.retransmitted], [4, 1]);
  m.take();
  assertEquals([m.first, m.retransmitted], [0, 0]);
  // A lying length stops the walk; wrapping sn still counts as new.
  const bad = push(4);
  bad[20] = 200;
  m.observe(bad, 0, bad.length);
  const wrap = new PushMeter();
  for (const sn of [0xfffffffe, 0xffffffff, 0, 1, 0xffffffff]) {
    const d = push(sn);
    wrap.observe(d, 0, d.length);
  }
  assertEquals([wrap.first, wrap.retransmitted], [4, 1]);
  assertEquals([m.first, m.retransmitted], [1, 0]);
});

Deno.test("fec auto: LayoutCheck confirms a stream in our layout only", () => {
  const feed = (check: LayoutCheck, ds: number, ps: number, count: number, lost = -1) => {
    for (let s = 0; s < count; s++) if (s % 7 !== lost) check.observe(s, s % (ds + ps) < ds);
  };
  const same = new LayoutCheck(10, 13);
  feed(same, 10, 3, 51);
  assert(!same.confirmed, "fewer than 4 groups' worth");
  feed(same, 10, 3, 52);
  assert(same.confirmed);
  // 23/3 agrees with 10/3 on seqids 13..25, and contradicts it elsewhere.
  const other = new LayoutCheck(10, 13);
  for (let s = 13; s < 26; s++) other.observe(s, s % 26 < 23);
  assert(!other.confirmed && !other.mismatched);
  feed(other, 23, 3, 200);
  assert(other.mismatched && !other.confirmed);
  feed(other, 10, 3, 200);
  assert(!other.confirmed, "a contradiction is never forgotten");
  const smaller = new LayoutCheck(10, 13);
  feed(smaller, 4, 2, 200);
  assert(smaller.mismatched);
});

/** Runs `kcp` through `enc`, calling `before(i)` ahead of datagram i; returns the wire. */
function encodeAll(
  enc: FecEncoder,
  pool: PacketPool,
  kcp: Uint8Array[],
  before = (_: number) => {},
) {
  const out = new PacketBatch();
  const wire: Uint8Array[] = [];
  kcp.forEach((d, i) => {
    before(i);
    const p = pool.acquire();
    p.buffer.set(d, p.start);
    p.end = p.start + d.length;
    enc.encode(p, out, 0);
    for (let k = 0; k < out.length; k++) wire.push(out.at(k).bytes().slice());
    out.releaseAll();
  });
  return wire;
}

Deno.test("fec encoder: paritySent sends a group's first parity rows and uses up the rest of its seqids", () => {
  const pool = new PacketPool();
  const kcp = bulk(60, 3).map((d, i) => d.subarray(0, 40 + (i * 37) % 300));
  const fixed = encodeAll(new FecEncoder(10, 3, pool), pool, kcp);
  const enc = new FecEncoder(10, 3, pool);
  const counts = [2, 0, 3, 1, 0, 2];
  // Changed at every datagram: only the value when a group's last data shard passes counts.
  const wire = encodeAll(enc, pool, kcp, (i) => {
    enc.paritySent = i % 10 === 9 ? counts[Math.floor(i / 10)] : (i * 7) % 4;
  });
  const keep = fixed.filter((d) =>
    !isParity(d) || readU32(d, 0) % 13 - 10 < counts[Math.floor(readU32(d, 0) / 13)]
  );
  assertEquals(wire.map(hexOf), keep.map(hexOf));
  assertEquals(enc.nextSeqid, 6 * 13, "groups stay 13 seqids apart");
});

Deno.test("fec encoder: bypass sends bare KCP only between groups; the FEC datagrams stay a fixed sender's", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer(),
      (ds, ps, seed) => {
        const pool = new PacketPool();
        const r = rng(seed);
        const kcp = bulk(8 * ds + (r() % ds), seed, 60);
        const enc = new FecEncoder(ds, ps, pool);
        const wire = encodeAll(enc, pool, kcp, () => {
          enc.bypass = r() % 3 === 0;
        });
        let open = 0, plain = 0;
        const intoFec: Uint8Array[] = [];
        let k = 0; // index into kcp of the next datagram to appear as data
        for (const d of wire) {
          if (!isFec(d)) {
            assertEquals(open, 0, "a bare datagram inside a group");
            assertEquals(hexOf(d), hexOf(kcp[k++]));
            plain++;
          } else if (!isParity(d)) {
            intoFec.push(kcp[k++]);
            open = (open + 1) % ds;
          }
        }
        assertEquals(k, kcp.length);
        const fixed = encodeAll(new FecEncoder(ds, ps, pool), pool, intoFec);
        assertEquals(wire.filter(isFec).map(hexOf), fixed.map(hexOf));
        return plain + intoFec.length === kcp.length;
      },
    ),
    { seed: 15, numRuns: 120 },
  );
});

interface Delivered {
  receiver: KcpGo2021Receiver;
  /** Segments KCP took from rebuilt shards. */
  fromRebuilt: Set<string>;
  /** Segments KCP took from datagrams as they came (FEC data shards and bare KCP). */
  regular: Set<string>;
}

function deliver(receiver: KcpGo2021Receiver, wire: Uint8Array[], lost: Set<number>): Delivered {
  const d: Delivered = { receiver, fromRebuilt: new Set(), regular: new Set() };
  wire.forEach((w, i) => {
    if (lost.has(i)) return;
    const out = receiver.input(w);
    if (out.regular) { for (const s of kcpAccepts(out.regular, CONV)) d.regular.add(s.hex); }
    for (const r of out.rebuilt) for (const s of kcpAccepts(r, CONV)) d.fromRebuilt.add(s.hex);
  });
  return d;
}

/** Losses in runs: a run starts with probability 1/`every` and goes on with 1/2. */
function lossyIndexes(r: () => number, from: number, to: number, every: number): Set<number> {
  const lost = new Set<number>();
  for (let i = from; i < to; i++) {
    if (r() % every !== 0) continue;
    lost.add(i);
    while (i + 1 < to && r() % 2 === 0) lost.add(++i);
  }
  return lost;
}

Deno.test("fec auto vs kcp-go 2021 with our ds/ps: any parity counts, bare stretches and losses: never re-tunes, never a made-up segment, rebuilds what the parity covers (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer(),
      (ds, ps, seed) => {
        const r = rng(seed);
        const pool = new PacketPool();
        const n = ds + ps;
        const kcp = bulk(12 * ds, seed, 100 + (r() % 200));
        const enc = new FecEncoder(ds, ps, pool);
        // A new parity count for every datagram (only group ends read it), bare KCP now and then.
        const wire = encodeAll(enc, pool, kcp, () => {
          enc.paritySent = r() % (ps + 1);
          enc.bypass = r() % 4 === 0;
        });
        const lost = lossyIndexes(r, 0, wire.length, 6);
        const d = deliver(new KcpGo2021Receiver(ds, ps), wire, lost);
        const sent = segmentsOf(kcp);
        for (const s of d.fromRebuilt) assert(sent.has(s), "a made-up segment from a rebuild");
        for (const s of d.regular) assert(sent.has(s), "a made-up regular segment");
        assertEquals(d.receiver.tunes, [], "the receiver re-tuned");
        assertEquals(d.receiver.params, [ds, ps]);
        // Every group that kept ds of its sent shards gave back all its lost data shards.
        const groups = new Map<number, { got: number; missing: string[] }>();
        wire.forEach((w, i) => {
          if (!isFec(w)) return;
          const g = Math.floor(readU32(w, 0) / n);
          const e = groups.get(g) ?? { got: 0, missing: [] };
          groups.set(g, e);
          if (!lost.has(i)) e.got++;
          else if (!isParity(w)) {
            e.missing.push(...kcpAccepts(w.subarray(8), CONV).map((s) => s.hex));
          }
        });
        for (const [g, e] of groups) {
          if (e.got < ds) continue;
          for (const s of e.missing) assert(d.fromRebuilt.has(s), `group ${g} not rebuilt`);
        }
        return true;
      },
    ),
    { seed: 1015, numRuns: 200 },
  );
});

function autoStage(options: Partial<FecStageOptions> = {}) {
  const pool = new PacketPool();
  const lines: string[] = [];
  const ctx: StageContext = {
    role: "client",
    pool,
    snmp: new Snmp(),
    log: (l) => lines.push(l),
  };
  const stage = new FecStage({
    dataShards: 10,
    parityShards: 3,
    auto: true,
    autoHoldMs: 0,
    ...options,
  }, ctx);
  return { stage, pool, lines };
}

/** Sends `kcp` through `stage` one datagram a batch at time `now(i)`; returns the wire. */
function sendThrough(
  stage: FecStage,
  pool: PacketPool,
  kcp: Uint8Array[],
  now: (i: number) => number,
): Uint8Array[] {
  const batch = new PacketBatch();
  const wire: Uint8Array[] = [];
  kcp.forEach((d, i) => {
    batch.push(pool.from(d));
    stage.encode(batch, now(i));
    for (let k = 0; k < batch.length; k++) wire.push(batch.at(k).bytes().slice());
    batch.releaseAll();
  });
  return wire;
}

/** Our KCP output in phases: new segments, then retransmissions of old ones, then new again. */
function phasedPushes(seed: number, phases: Array<["new" | "again", number]>): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  let sn = 0;
  for (const [kind, count] of phases) {
    for (let i = 0; i < count; i++) {
      const s = kind === "new" ? sn++ : Math.max(0, sn - 1 - (i % 50));
      out.push(segment({ cmd: 81, wnd: 512, ts: 777, sn: s, una: 0 }, randomBytes(r, 200)));
    }
  }
  return out;
}

Deno.test("fec auto vs a kcp-go 2021 peer with FEC off: all parity or none, the guard, nothing made up", () => {
  const { stage, pool } = autoStage();
  // Clean (level falls to 0: bare KCP), retransmitting (level back up), clean again.
  const kcp = phasedPushes(5, [["new", 400], ["again", 120], ["new", 600]]);
  const wire = sendThrough(stage, pool, kcp, (i) => i * 10);
  const plain = wire.filter((d) => !isFec(d)).length;
  assert(plain > 200, `only ${plain} bare datagrams: the level never fell`);
  assert(wire.filter(isParity).length > 20, "no FEC while retransmitting");
  assert(!stage.peerLayoutConfirmed, "the peer never sent FEC");
  // The FEC datagrams are consecutive whole groups: parity seqids all present.
  const fec = wire.filter(isFec);
  fec.forEach((d, i) => assertEquals(readU32(d, 0), i, "a seqid left out"));
  // Guard on (the peer never sent FEC): odd-seqid parity with a plausible size is zeroed.
  // A FEC-off kcp-go peer guesses 1/1, tunes, and takes nothing made up, losses or not.
  const r = rng(9);
  const firstFec = wire.findIndex(isFec);
  const lost = lossyIndexes(r, firstFec + 3 * 13, wire.length, 7);
  const d = deliver(new KcpGo2021Receiver(0, 0), wire, lost);
  const sent = segmentsOf(kcp);
  for (const s of d.fromRebuilt) assert(sent.has(s), "a made-up segment");
  assertEquals(d.receiver.params, [10, 3]);
});

Deno.test("fec auto vs a peer with other shard counts: its FEC stream is a fixed sender's, byte for byte", () => {
  const { stage, pool, lines } = autoStage();
  // The peer sends 4/2: not our layout.
  const peer = new FecEncoder(4, 2, pool);
  const peerWire = encodeAll(peer, pool, bulk(40, 11, 50));
  const batch = new PacketBatch();
  for (const w of peerWire) batch.push(pool.from(w));
  stage.decode(batch, 0);
  batch.releaseAll();
  assert(!stage.peerLayoutConfirmed);
  const kcp = phasedPushes(6, [["new", 400], ["again", 120], ["new", 400]]);
  const wire = sendThrough(stage, pool, kcp, (i) => i * 10);
  assert(lines.some((l) => l.includes("not 10/3")), lines.join("\n"));
  assert(wire.some((d) => !isFec(d)) && wire.some(isParity), "both bare and FEC stretches");
  // What a fixed 10/3 stage (which also heard the peer's FEC) sends for the datagrams that went
  // into FEC is exactly our FEC stream.
  const fixed = new FecStage({ dataShards: 10, parityShards: 3 }, {
    role: "client",
    pool,
    snmp: new Snmp(),
    log: () => {},
  });
  for (const w of peerWire) batch.push(pool.from(w));
  fixed.decode(batch, 0);
  batch.releaseAll();
  const intoFec = wire.filter((d) => isFec(d) && !isParity(d)).map((d) => d.subarray(8));
  const expected = sendThrough(fixed, pool, intoFec, () => 0);
  assertEquals(wire.filter(isFec).map(hexOf), expected.map(hexOf));
});

Deno.test("fec auto stage: confirms a peer in our layout, then sends partial groups as the loss asks", () => {
  const { stage, pool, lines } = autoStage();
  const peer = new FecEncoder(10, 3, pool);
  const peerKcp = bulk(400, 12, 40);
  const peerWire = encodeAll(peer, pool, peerKcp);
  const batch = new PacketBatch();
  let at = 0;
  const hear = (count: number, lose: (seqid: number) => boolean) => {
    for (let k = 0; k < count && at < peerWire.length; k++, at++) {
      if (!lose(readU32(peerWire[at], 0))) batch.push(pool.from(peerWire[at]));
    }
    stage.decode(batch, 0);
    batch.releaseAll();
  };
  hear(51, () => false);
  assert(!stage.peerLayoutConfirmed, "fewer than 4 groups");
  hear(1, () => false);
  assert(stage.peerLayoutConfirmed);
  // Clean both ways for a while: no parity at all.
  let t = 0;
  const kcp = phasedPushes(13, [["new", 2000]]);
  let next = 0;
  const send = (count: number) =>
    sendThrough(stage, pool, kcp.slice(next, next += count), () => t += 10);
  hear(200, () => false);
  send(300);
  assert(lines.some((l) => l.includes("sends 10/3 too")), lines.join("\n"));
  assertEquals(stage.auto!.level, 0);
  const clean = send(100);
  assert(clean.every((d) => !isFec(d)), "parity or FEC headers on a clean link");
  // The peer's stream starts losing one data shard in 30: some parity, not all.
  hear(peerWire.length, (s) => s % 30 === 7);
  t += 10000; // past the interval between lines about the level
  const lossy = send(200);
  const level = stage.auto!.level;
  assert(level >= 1 && level < 3, `level ${level} at loss ${stage.auto!.loss}`);
  const parityPositions = new Set(lossy.filter(isParity).map((d) => readU32(d, 0) % 13));
  assertEquals([...parityPositions].sort(), Array.from({ length: level }, (_, k) => 10 + k));
  assert(lines.some((l) => l.includes(`${level} of 3 parity shards`)), lines.join("\n"));
});

Deno.test("fec auto: off by default, and a stage without it never bypasses or leaves parity out", () => {
  const pool = new PacketPool();
  const ctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
  const plain = new FecStage({ dataShards: 10, parityShards: 3 }, ctx);
  assertEquals(plain.auto, null);
  const kcp = phasedPushes(14, [["new", 300], ["again", 50], ["new", 300]]);
  const wire = sendThrough(plain, pool, kcp, (i) => i * 100);
  assert(wire.every(isFec));
  assertEquals(wire.filter(isParity).length, 3 * Math.floor(kcp.length / 10));
  // -autofec with FEC off has nothing to steer.
  assertEquals(new FecStage({ dataShards: 0, parityShards: 0, auto: true }, ctx).auto, null);
});
