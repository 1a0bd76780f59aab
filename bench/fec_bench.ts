/**
 * FEC throughput: 10 data + 3 parity shards of ~1300 bytes (kcptun's default code and a typical
 * KCP datagram). Each iteration is 100 groups = 1.3 MB of data, so MB/s = 1300 / (ms per iter).
 *
 * `deno bench -A bench/fec_bench.ts`
 */

import { PacketBatch, PacketPool } from "../pipeline/packet.ts";
import { Snmp } from "../pipeline/snmp.ts";
import type { StageContext } from "../pipeline/stage.ts";
import { ReedSolomon } from "../transforms/fec/reed_solomon.ts";
import { FecStage } from "../transforms/fec/stage.ts";

const DS = 10;
const PS = 3;
const SHARD = 1300;

function rand(n: number, seed: number): Uint8Array {
  let x = seed;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

// Raw codec: encode parity, and rebuild 3 lost data shards from 7 data + 3 parity.
const rs = new ReedSolomon(DS, PS);
const shards = Array.from({ length: DS + PS }, (_, j) => rand(SHARD, j + 1));
const present = new Uint8Array(DS + PS).fill(1);
present[0] = present[4] = present[9] = 0;

Deno.bench("fec 10/3 codec encode (1300 B shards)", { group: "codec", baseline: true }, (b) => {
  b.start();
  for (let i = 0; i < 100; i++) rs.encode(shards, SHARD);
  b.end();
});

Deno.bench("fec 10/3 codec reconstruct 3 lost data shards", { group: "codec" }, (b) => {
  b.start();
  for (let i = 0; i < 100; i++) rs.reconstructData(shards, present, SHARD);
  b.end();
});

// The stage: 10 pooled KCP datagrams in, 10 data + 3 parity out; then decode with 3 data lost.
const pool = new PacketPool();
const ctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
const sender = new FecStage({ dataShards: DS, parityShards: PS }, ctx);
const receiver = new FecStage({ dataShards: DS, parityShards: PS }, ctx);
const payloads = Array.from({ length: DS }, (_, j) => rand(SHARD - 2, 100 + j));
const batch = new PacketBatch();
const wire: Uint8Array[] = [];
{
  for (const p of payloads) batch.push(pool.from(p));
  sender.encode(batch, 0);
  for (let i = 0; i < batch.length; i++) wire.push(batch.at(i).bytes().slice());
  batch.releaseAll();
}
const lossy = wire.filter((_, i) => i !== 0 && i !== 4 && i !== 9);

Deno.bench("fec 10/3 stage encode (one group a batch)", { group: "stage", baseline: true }, (b) => {
  b.start();
  for (let n = 0; n < 100; n++) {
    for (let i = 0; i < DS; i++) batch.push(pool.from(payloads[i]));
    sender.encode(batch, 0);
    batch.releaseAll();
  }
  b.end();
});

let seq = 0;
Deno.bench("fec 10/3 stage decode, 3 data shards lost", { group: "stage" }, (b) => {
  b.start();
  for (let n = 0; n < 100; n++) {
    // Give each group fresh seqids so the decoder sees a new group every time.
    const base = seq;
    seq = (seq + DS + PS) % 4294967287;
    for (let i = 0; i < lossy.length; i++) {
      const p = pool.from(lossy[i]);
      const s = (p.view.getUint32(p.start, true) + base) >>> 0;
      p.view.setUint32(p.start, s, true);
      batch.push(p);
    }
    receiver.decode(batch, 0);
    batch.releaseAll();
  }
  b.end();
});
