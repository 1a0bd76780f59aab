/**
 * Golden tests against traffic captured between real kcptun binaries (tests/fixtures/captures):
 * our encoder must produce the very bytes kcp-go sent, and our decoder must hand KCP what kcp-go's
 * would, including data shards the capturing relay dropped on purpose.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { PacketBatch, PacketFlags, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { FecStage, type FecStageOptions } from "../../transforms/fec/stage.ts";
import { type FecDatagram, loadFecCapture } from "./captured_fec.ts";

function stage(options: FecStageOptions): { s: FecStage; ctx: StageContext; pool: PacketPool } {
  const pool = new PacketPool();
  const ctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
  return { s: new FecStage(options, ctx), ctx, pool };
}

/** KCP bytes of a data shard: after the 8-byte header, size−2 bytes. */
function kcpBytes(d: FecDatagram): Uint8Array {
  const size = d.bytes[6] | (d.bytes[7] << 8);
  return d.bytes.subarray(8, 6 + size);
}

function drain(batch: PacketBatch): { hex: string; recovered: boolean }[] {
  const out = [];
  for (let i = 0; i < batch.length; i++) {
    const p = batch.at(i);
    out.push({ hex: toHex(p.bytes()), recovered: (p.flags & PacketFlags.Recovered) !== 0 });
  }
  batch.releaseAll();
  return out;
}

/** The captured datagrams of every group whose ds data and ps parity shards are all present. */
function completeGroups(caps: FecDatagram[], ds: number, ps: number): FecDatagram[][] {
  const n = ds + ps;
  const bySeq = new Map<number, FecDatagram>();
  for (const d of caps) bySeq.set(d.seqid, d);
  const groups: FecDatagram[][] = [];
  const maxSeq = Math.max(...bySeq.keys());
  for (let g = 0; g * n <= maxSeq; g++) {
    const members = [];
    for (let k = 0; k < n; k++) members.push(bySeq.get(g * n + k));
    if (members.every((m) => m !== undefined)) groups.push(members as FecDatagram[]);
  }
  return groups;
}

/**
 * Feeds our encoder the captured data shards' KCP bytes one batch each; returns its output. The
 * stage first decodes `peer`, a datagram the other end sent: like kcp-go, both ends of these
 * captures run FEC, and once the peer is seen doing so the stage sends kcp-go's exact bytes.
 */
function reencode(
  data: FecDatagram[],
  ds: number,
  ps: number,
  peer: FecDatagram,
  firstSeqid = 0,
): string[] {
  const { s, pool } = stage({ dataShards: ds, parityShards: ps });
  const batch = new PacketBatch();
  batch.push(pool.from(peer.bytes));
  s.decode(batch, 0);
  batch.releaseAll();
  assert(!s.encoder!.guardPlainPeer, "the peer's FEC datagram lifts the guard");
  s.encoder!.nextSeqid = firstSeqid;
  const out: string[] = [];
  for (const d of data) {
    batch.push(pool.from(kcpBytes(d)));
    s.encode(batch, d.record.t);
    for (const r of drain(batch)) out.push(r.hex);
  }
  return out;
}

/** Decodes a capture; direct data must equal the capture's, recovered packets be real KCP. */
function decodeCapture(caps: FecDatagram[], options: FecStageOptions) {
  const { s, pool, ctx } = stage(options);
  const batch = new PacketBatch();
  const direct: string[] = [];
  const recovered: string[] = [];
  for (const d of caps) {
    batch.push(pool.from(d.bytes));
    s.decode(batch, d.record.t);
    for (const r of drain(batch)) (r.recovered ? recovered : direct).push(r.hex);
  }
  const data = caps.filter((d) => d.isData);
  assertEquals(direct, data.map((d) => toHex(kcpBytes(d))));
  const conv = direct[0].slice(0, 8);
  for (const r of recovered) assertEquals(r.slice(0, 8), conv, "recovered KCP has the conv");
  assertEquals(ctx.snmp.FECParityShards, caps.length - data.length);
  assertEquals(ctx.snmp.FECRecovered, recovered.length);
  return { s, pool, ctx, direct, recovered };
}

// [capture, AES?, ds, ps, complete groups at least]
const CAPTURES: [string, boolean, number, number, number][] = [
  ["old_fec.jsonl", false, 3, 2, 2],
  ["old_fec10.jsonl", true, 10, 3, 15],
  ["rec_aes_fec.jsonl", true, 10, 3, 2],
  ["rec_none_fec.jsonl", false, 10, 3, 2],
  ["new_fec10.jsonl", true, 10, 3, 15],
];

for (const [name, aes, ds, ps, minGroups] of CAPTURES) {
  Deno.test(`golden ${name}: our encoder sends kcp-go's exact datagrams for every group`, () => {
    let groups = 0;
    for (const dir of ["C2S", "S2C"] as const) {
      const peer = loadFecCapture(name, dir === "C2S" ? "S2C" : "C2S", aes)[0];
      for (const members of completeGroups(loadFecCapture(name, dir, aes), ds, ps)) {
        const ours = reencode(members.slice(0, ds), ds, ps, peer, members[0].seqid);
        assertEquals(ours, members.map((m) => toHex(m.bytes)), `${dir} ${members[0].seqid}`);
        groups++;
      }
    }
    assert(groups >= minGroups, `${name}: ${groups} groups checked`);
  });

  Deno.test(`golden ${name}: decoding gives KCP every data datagram, lazily tuned or not`, () => {
    for (const dir of ["C2S", "S2C"] as const) {
      const caps = loadFecCapture(name, dir, aes);
      const own = decodeCapture(caps, { dataShards: ds, parityShards: ps });
      assertEquals(own.ctx.snmp.FECErrs, 0);
      const lazy = decodeCapture(caps, { dataShards: 0, parityShards: 0 });
      assertEquals(lazy.ctx.snmp.FECErrs, 0);
      assert(lazy.recovered.length <= own.recovered.length);
      // Once the pattern has shown (a full parity run and the next data shard), it is found.
      if (caps.length > 2 * (ds + ps)) {
        assertEquals([lazy.s.decoder!.dataShards, lazy.s.decoder!.parityShards], [ds, ps]);
      }
      for (const r of [own, lazy]) {
        r.s.close();
        assertEquals(r.pool.available, r.pool.created, "every pooled packet came back");
      }
    }
  });
}

Deno.test("golden old_fec.jsonl: the whole 2021 stream re-encodes byte for byte", () => {
  for (const dir of ["C2S", "S2C"] as const) {
    const caps = loadFecCapture("old_fec.jsonl", dir, false);
    const peer = loadFecCapture("old_fec.jsonl", dir === "C2S" ? "S2C" : "C2S", false)[0];
    const ours = reencode(caps.filter((d) => d.isData), 3, 2, peer);
    assertEquals(ours, caps.map((d) => toHex(d.bytes)));
  }
});

Deno.test("golden old_fec10.jsonl: three lost shards of every group are rebuilt", () => {
  for (const dir of ["C2S", "S2C"] as const) {
    const caps = loadFecCapture("old_fec10.jsonl", dir, true);
    // Lose data shards g%10 and (g+4)%10 and, in odd groups, a parity shard, of every group.
    const lost = new Set<FecDatagram>();
    for (const [g, members] of completeGroups(caps, 10, 3).entries()) {
      lost.add(members[g % 10]).add(members[(g + 4) % 10]);
      if (g % 2 === 1) lost.add(members[10 + (g % 3)]);
    }
    const r = decodeCapture(caps.filter((d) => !lost.has(d)), { dataShards: 10, parityShards: 3 });
    const want = [...lost].filter((d) => d.isData).map((d) => toHex(kcpBytes(d)));
    assert(want.length >= 30);
    assertEquals([...r.recovered].sort(), want.sort());
    assertEquals(r.ctx.snmp.FECErrs, 0);
  }
});

Deno.test("golden new_fecdrop.jsonl: data shards the relay dropped are recovered", () => {
  const caps = loadFecCapture("new_fecdrop.jsonl", "C2S", false);
  const dropped = caps.filter((d) => d.record.dropped);
  assert(dropped.length > 0 && dropped.every((d) => d.isData), "the capture drops data shards");
  const delivered = caps.filter((d) => !d.record.dropped);
  const r = decodeCapture(delivered, { dataShards: 3, parityShards: 2 });
  assertEquals(r.recovered, dropped.map((d) => toHex(kcpBytes(d))));
  assertEquals(r.ctx.snmp.FECErrs, 0);
  // A session with FEC off learns 3/2 only after the first parity run, too late for seqid 1;
  // it must not make anything up meanwhile.
  const lazy = decodeCapture(delivered, { dataShards: 0, parityShards: 0 });
  for (const x of lazy.recovered) assert(r.recovered.includes(x));
  assertEquals(lazy.ctx.snmp.FECErrs, 0);
});

Deno.test("golden new_fecgap.jsonl: 2026 skipped parity is tolerated", () => {
  for (const dir of ["C2S", "S2C"] as const) {
    const caps = loadFecCapture("new_fecgap.jsonl", dir, false);
    const seqs = caps.map((d) => d.seqid);
    if (dir === "C2S") assert(seqs.includes(10) && !seqs.includes(8), "parity 8, 9 skipped");
    for (const opts of [{ dataShards: 3, parityShards: 2 }, { dataShards: 0, parityShards: 0 }]) {
      const r = decodeCapture(caps, opts);
      assertEquals(r.recovered, []);
      assertEquals(r.ctx.snmp.FECErrs, 0);
      r.s.close();
      assertEquals(r.pool.available, r.pool.created);
    }
  }
});

Deno.test("golden new_fecgap.jsonl: our 2026-mode encoder skips parity after the same gaps", () => {
  const caps = loadFecCapture("new_fecgap.jsonl", "C2S", false);
  const { s, pool } = stage({ dataShards: 3, parityShards: 2, skipParityAfterMs: 500 });
  const batch = new PacketBatch();
  const seqs: string[] = [];
  for (const d of caps) {
    if (!d.isData) continue;
    batch.push(pool.from(kcpBytes(d)));
    s.encode(batch, d.record.t); // relay time stands in for the sender's clock (gaps ≈ 1 s)
    for (const r of drain(batch)) {
      seqs.push((r.hex.slice(8, 12) === "f200" ? "p" : "") + parseInt(r.hex.slice(0, 2), 16));
    }
  }
  assertEquals(seqs, caps.map((d) => (d.isData ? "" : "p") + d.seqid));
  // Where parity was sent, it is byte-identical.
  const ours = reencode(
    caps.filter((d) => d.isData),
    3,
    2,
    loadFecCapture("new_fecgap.jsonl", "S2C", false)[0],
  );
  const theirs = new Set(caps.map((d) => toHex(d.bytes)));
  assert(ours.filter((h) => h.slice(8, 12) === "f200" && theirs.has(h)).length >= 2);
});
