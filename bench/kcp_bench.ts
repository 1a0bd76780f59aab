/**
 * KCP core throughput, in memory: one sender and one receiver Kcp, no loss. One iteration = the
 * application writes 32 segments' worth, the sender flushes, the receiver takes every datagram,
 * the application reads, the receiver flushes its ACKs and the sender takes them. Segments per
 * second = 32 / (time per iteration). Pooled packets and segments: no allocation per packet in
 * steady state (tests/kcp/sim_test.ts checks the pools stay flat).
 *
 * Run: deno bench -A bench/kcp_bench.ts
 */

import { PacketBatch, PacketPool } from "../pipeline/packet.ts";
import { Snmp } from "../pipeline/snmp.ts";
import { Kcp } from "../transforms/kcp/arq.ts";
import { KCP_MODES } from "../transforms/kcp/modes.ts";
import {
  readSegmentHeader,
  type SegmentHeader,
  writeSegmentHeader,
} from "../transforms/kcp/wire.ts";

const SEGMENTS = 32;

function makeRound(payload: number) {
  const pool = new PacketPool();
  const opts = { snmp: new Snmp(), ...KCP_MODES.fast3, mtu: 1400, sndWnd: 1024, rcvWnd: 1024 };
  const a = new Kcp(1, opts);
  const b = new Kcp(1, opts);
  const wire = new PacketBatch();
  const write = new Uint8Array(payload === 0 ? a.mss * SEGMENTS : payload);
  const sink = new Uint8Array(65536);
  let now = 0;
  return () => {
    now++;
    if (payload === 0) {
      a.send(write);
      a.flush(now, wire, pool);
    } else {
      // Small writes, each flushed at once (kcptun: one write per smux frame, write delay off).
      for (let i = 0; i < SEGMENTS; i++) {
        a.send(write);
        a.flush(now, wire, pool);
      }
    }
    for (let i = 0; i < wire.length; i++) {
      const p = wire.at(i);
      b.input(p.buffer, p.start, p.end, now);
    }
    wire.releaseAll();
    while (b.recv(sink) > 0);
    b.flush(now, wire, pool);
    for (let i = 0; i < wire.length; i++) {
      const p = wire.at(i);
      a.input(p.buffer, p.start, p.end, now);
    }
    wire.releaseAll();
    a.update(now, wire, pool);
    wire.releaseAll();
    if (a.waitSnd() !== 0) throw new Error("round left data in flight");
  };
}

Deno.bench({
  name: "kcp round: 32 full segments (mss 1376)",
  group: "kcp",
  baseline: true,
  fn: makeRound(0),
});
Deno.bench({ name: "kcp round: 32 writes of 64 B, flushed each", group: "kcp", fn: makeRound(64) });

const hdrBuf = new Uint8Array(1400);
const hdr: SegmentHeader = { conv: 0, cmd: 0, frg: 0, wnd: 0, ts: 0, sn: 0, una: 0, len: 0 };
Deno.bench({
  name: "wire: write + read 58 headers (one full datagram of ACKs)",
  group: "wire",
  fn: () => {
    for (let off = 0; off + 24 <= 1400; off += 24) {
      writeSegmentHeader(hdrBuf, off, 0xc9d90d82, 82, 0, 1024, off, off + 1, 7, 0);
    }
    let s = 0;
    for (let off = 0; off + 24 <= 1400; off += 24) s += readSegmentHeader(hdrBuf, off, hdr).sn;
    if (s === 0) throw new Error("unreachable");
  },
});
