/** Behaviour of the KCP core, one mechanism at a time (kcp-go v5.6.1 rules). */

import { assert, assertEquals } from "../support/assert.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { KcpInputResult, RTO_MAX } from "../../transforms/kcp/arq.ts";
import { KCP_OVERHEAD, KcpCmd, writeSegmentHeader } from "../../transforms/kcp/wire.ts";
import { concat, feed, flushOut, newKcp, segmentsOf, updateOut } from "./support.ts";
import type { Kcp } from "../../transforms/kcp/arq.ts";

interface SegSpec {
  conv?: number;
  cmd: number;
  wnd?: number;
  ts?: number;
  sn?: number;
  una?: number;
  data?: Uint8Array;
}

function seg(s: SegSpec): Uint8Array {
  const data = s.data ?? new Uint8Array(0);
  const b = new Uint8Array(KCP_OVERHEAD + data.length);
  const o = writeSegmentHeader(
    b,
    0,
    s.conv ?? 1,
    s.cmd,
    0,
    s.wnd ?? 32,
    s.ts ?? 0,
    s.sn ?? 0,
    s.una ?? 0,
    data.length,
  );
  b.set(data, o);
  return b;
}

const ack = (sn: number, ts: number, una = 0, wnd = 32) =>
  seg({ cmd: KcpCmd.Ack, sn, ts, una, wnd });
const push = (sn: number, ts: number, data: Uint8Array, una = 0, wnd = 32) =>
  seg({ cmd: KcpCmd.Push, sn, ts, una, wnd, data });

function pushesOf(ds: Uint8Array[]) {
  return segmentsOf(ds).filter((s) => s.cmd === KcpCmd.Push);
}

/** Runs `kcp`'s timer from `from` to `to`, dropping its output, and returns what it sent. */
function runTimer(kcp: Kcp, from: number, to: number) {
  const sent: { t: number; cmd: number; sn: number; ts: number; wnd: number }[] = [];
  let t = from;
  for (let guard = 0; guard < 100000; guard++) {
    const d = kcp.check(t);
    if (d > to) break;
    t = d;
    for (const s of segmentsOf(updateOut(kcp, t))) {
      sent.push({ t, cmd: s.cmd, sn: s.sn, ts: s.ts, wnd: s.wnd });
    }
  }
  return sent;
}

Deno.test("send: stream mode tops up the last unsent segment; in-flight bytes are frozen", () => {
  const { kcp } = newKcp(1, { mtu: 100, nc: 1 });
  assertEquals(kcp.mss, 76);
  kcp.send(new Uint8Array(10).fill(1));
  kcp.send(new Uint8Array(10).fill(2));
  assertEquals(kcp.sndQueueCount, 1);
  kcp.send(new Uint8Array(70).fill(3)); // 20 + 56 fills one segment, 14 spill into a second
  assertEquals(kcp.sndQueueCount, 2);
  const p = pushesOf(flushOut(kcp, 0));
  assertEquals(p.map((s) => s.len), [76, 14]);
  assertEquals(Array.from(p[0].data.subarray(18, 22)), [2, 2, 3, 3]);
  kcp.send(new Uint8Array(5));
  assertEquals(kcp.sndQueueCount, 1, "the sent 14-byte segment is not topped up");
  assertEquals(pushesOf(flushOut(kcp, 1)).map((s) => [s.sn, s.len]), [[2, 5]]);
  assertEquals(kcp.waitSnd(), 3);
  assertEquals(kcp.send(new Uint8Array(0)), 0);
});

Deno.test("flush: segments are packed into datagrams of at most mtu bytes", () => {
  const { kcp, snmp } = newKcp(1, { mtu: 200, nc: 1, sndWnd: 64 });
  kcp.send(new Uint8Array(1000)); // mss 176: 5 full + 120
  const out = flushOut(kcp, 0);
  assertEquals(out.map((d) => d.length), [200, 200, 200, 200, 200, 144]);
  // sn 0 missing, so no ACK is filtered as already covered by una.
  const acks = 7;
  for (let i = 1; i <= acks; i++) feed(kcp, push(i, 1000 + i, new Uint8Array(0)), 1);
  kcp.send(new Uint8Array(100));
  const out2 = flushOut(kcp, 2);
  // 7 ACKs (168 bytes) share a datagram; the 124-byte PUSH does not fit behind them.
  assertEquals(out2.map((d) => d.length), [168, 124]);
  assertEquals(snmp.OutSegs, 6 + 7 + 1);
  assertEquals(segmentsOf(out2).map((s) => s.cmd), [...Array(acks).fill(KcpCmd.Ack), KcpCmd.Push]);
});

Deno.test("packets: KCP bytes start at the pool's headroom", () => {
  const { kcp } = newKcp(1, { nc: 1 });
  const pool = new PacketPool(2048, 28);
  const out = new PacketBatch();
  kcp.send(new Uint8Array(3));
  kcp.flush(0, out, pool);
  assertEquals(out.length, 1);
  assertEquals(out.at(0).start, 28);
  assertEquals(out.at(0).length, KCP_OVERHEAD + 3);
  out.releaseAll();
});

Deno.test("ACK: echoes the PUSH's ts, acks sn, una = rcv_nxt, wnd = free receive window", () => {
  const { kcp } = newKcp(1);
  assertEquals(feed(kcp, push(0, 0xfedcba98, new Uint8Array([1, 2, 3])), 10), 0);
  const s0 = segmentsOf(updateOut(kcp, 10));
  assertEquals(s0.map((x) => [x.cmd, x.sn, x.ts, x.una, x.wnd, x.len]), [
    [KcpCmd.Ack, 0, 0xfedcba98, 1, 31, 0],
  ]);
  assertEquals(feed(kcp, push(2, 77, new Uint8Array([9])), 11), 0);
  assertEquals(feed(kcp, push(3, 79, new Uint8Array([9])), 11), 0);
  const s = segmentsOf(updateOut(kcp, kcp.check(11)));
  assertEquals(s.map((x) => [x.cmd, x.sn, x.ts, x.una, x.wnd, x.len]), [
    [KcpCmd.Ack, 2, 77, 1, 31, 0],
    [KcpCmd.Ack, 3, 79, 1, 31, 0],
  ]);
  assertEquals(kcp.reorderCount, 2);
  assertEquals(Array.from(kcp.read()!), [1, 2, 3]);
  assertEquals(feed(kcp, push(1, 78, new Uint8Array([5])), 20), 0);
  assertEquals(kcp.readable(), 3);
  const t = kcp.check(20);
  const s2 = segmentsOf(updateOut(kcp, t));
  assertEquals(s2.map((x) => [x.sn, x.ts, x.una, x.wnd]), [[1, 78, 4, 29]]);
});

Deno.test("ACK: duplicates of old segments are acked again (only the newest survives the filter)", () => {
  const { kcp, snmp } = newKcp(1);
  feed(kcp, push(0, 5, new Uint8Array(1)), 0);
  updateOut(kcp, 0);
  feed(kcp, push(0, 6, new Uint8Array(1)), 1);
  feed(kcp, push(0, 7, new Uint8Array(1)), 1);
  assertEquals(snmp.RepeatSegs, 2);
  const s = segmentsOf(updateOut(kcp, kcp.check(1)));
  assertEquals(s.map((x) => [x.cmd, x.sn, x.ts, x.una]), [[KcpCmd.Ack, 0, 7, 1]]);
});

Deno.test("PUSH beyond the receive window is dropped, not acked, counted as repeat", () => {
  const { kcp, snmp } = newKcp(1, { rcvWnd: 4 });
  assertEquals(feed(kcp, push(4, 1, new Uint8Array(1)), 0), 0);
  assertEquals(kcp.pendingAcks, 0);
  assertEquals(kcp.reorderCount, 0);
  assertEquals(snmp.RepeatSegs, 1);
  assertEquals(feed(kcp, push(3, 1, new Uint8Array(1)), 0), 0);
  assertEquals([kcp.pendingAcks, kcp.reorderCount, snmp.RepeatSegs], [1, 1, 1]);
});

Deno.test("RTT: first sample, smoothing, low-sample weight, clamps (§5.4)", () => {
  const { kcp } = newKcp(1, { interval: 10, nc: 1 });
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 1000);
  feed(kcp, ack(0, 1000, 1), 1100);
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [100, 50, 300]);
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 2000);
  feed(kcp, ack(1, 2000, 2), 2060);
  // δ = −40: srtt 100 + (−40 >> 3) = 95; rttvar 50 + ((40 − 50) >> 2) = 47; rto 95 + 188.
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [95, 47, 283]);
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 3000);
  feed(kcp, ack(2, 3000, 3), 3010);
  // δ = −85: srtt 95 + (−85 >> 3) = 84; rtt 10 < 84 − 47, so rttvar += (85 − 47) >> 5 = 1.
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [84, 48, 276]);

  const { kcp: k2 } = newKcp(1, { nodelay: 1, interval: 10, nc: 1 });
  k2.send(new Uint8Array(1));
  flushOut(k2, 0);
  feed(k2, ack(0, 0, 1), 2);
  assertEquals(k2.rto, 30, "nodelay min RTO");
  const { kcp: k3 } = newKcp(1, { interval: 10, nc: 1 });
  k3.send(new Uint8Array(1));
  flushOut(k3, 0);
  feed(k3, ack(0, 0, 1), 90000);
  assertEquals(k3.rto, RTO_MAX);
  const { kcp: k4 } = newKcp(1, { interval: 10, nc: 1 });
  feed(k4, ack(0, 100, 0), 50);
  assertEquals(k4.srtt, 0, "an ACK echoing a future ts gives no sample");
});

Deno.test("RTT: copies of old ACKs give no sample (a replay must not inflate the RTO)", () => {
  const { kcp } = newKcp(1, { interval: 10, nc: 1 });
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 1000);
  const old = ack(0, 1000, 1);
  feed(kcp, old, 1100);
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [100, 50, 300]);
  // The same ACK again 20 s later (kcp-go would take a 20 s sample), and an ACK of a segment
  // that was never sent: neither changes the estimate.
  feed(kcp, old, 21100);
  feed(kcp, ack(5, 21000, 1), 21100);
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [100, 50, 300]);
  // An ACK of a segment in flight still samples, also when its una already covers it.
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 22000);
  feed(kcp, ack(1, 22000, 2), 22060);
  assertEquals([kcp.srtt, kcp.rttvar, kcp.rto], [95, 47, 283]);

  const { kcp: goLike } = newKcp(1, { interval: 10, nc: 1, sampleAnyAck: true });
  goLike.send(new Uint8Array(1));
  flushOut(goLike, 1000);
  feed(goLike, old, 1100);
  feed(goLike, old, 21100);
  assertEquals(goLike.srtt, 100 + ((20100 - 100) >> 3), "kcp-go's: the copy is a 20 s sample");
});

Deno.test("RTO back-off: +rto per timeout (nodelay 0), +rto/2 (nodelay 1)", () => {
  for (const [nodelay, times] of [[0, [0, 200, 600, 1200, 2000]], [1, [0, 200, 500, 900, 1400]]]) {
    const { kcp, snmp } = newKcp(1, { nodelay: nodelay as number, interval: 10, nc: 1 });
    updateOut(kcp, 0);
    kcp.send(new Uint8Array(5));
    const first = pushesOf(flushOut(kcp, 0));
    const again = runTimer(kcp, 0, (times as number[])[4]).filter((s) => s.cmd === KcpCmd.Push);
    assertEquals([...first, ...again].map((s) => s.ts), times, `nodelay ${nodelay}`);
    assertEquals(snmp.LostSegs, 4);
    assertEquals(snmp.RetransSegs, 4);
    assertEquals(snmp.FastRetransSegs + snmp.EarlyRetransSegs, 0);
  }
});

Deno.test("dead link flag after 20 transmissions (nothing else happens)", () => {
  const { kcp } = newKcp(1, { nodelay: 1, interval: 10, nc: 1 });
  updateOut(kcp, 0);
  kcp.send(new Uint8Array(1));
  flushOut(kcp, 0);
  let t = 0;
  for (let i = 0; i < 19 && !kcp.deadLink; i++) {
    runTimer(kcp, t, t + 200000);
    t += 200000;
  }
  assert(kcp.deadLink);
  assertEquals(kcp.sndBufCount, 1);
});

Deno.test("fast retransmit after `resend` later ACKs; ACKs older than the segment do not count", () => {
  const { kcp, snmp } = newKcp(1, { nodelay: 1, interval: 10, resend: 2, nc: 1, mtu: 200 });
  kcp.send(new Uint8Array(176 * 5));
  assertEquals(pushesOf(flushOut(kcp, 0)).map((s) => s.sn), [0, 1, 2, 3, 4]);
  assertEquals(feed(kcp, concat([ack(1, 0), ack(2, 0)]), 5), 0);
  const p = pushesOf(flushOut(kcp, 5));
  assertEquals(p.map((s) => [s.sn, s.ts]), [[0, 5]]);
  assertEquals([snmp.FastRetransSegs, snmp.EarlyRetransSegs, snmp.RetransSegs], [1, 0, 1]);
  // sn 0 now carries ts 5: an ACK of sn 3 sent at ts 0 says nothing about it.
  feed(kcp, concat([ack(3, 0), ack(4, 0)]), 6);
  assertEquals(pushesOf(flushOut(kcp, 6)), []);
});

Deno.test("early retransmit: one later ACK and nothing new to send", () => {
  const { kcp, snmp } = newKcp(1, { nodelay: 1, interval: 10, resend: 2, nc: 1, mtu: 200 });
  kcp.send(new Uint8Array(176 * 3));
  flushOut(kcp, 0);
  feed(kcp, ack(1, 0), 5);
  // New data goes out in this flush, so the early rule holds back.
  kcp.send(new Uint8Array(10));
  assertEquals(pushesOf(flushOut(kcp, 5)).map((s) => s.sn), [3]);
  assertEquals(pushesOf(flushOut(kcp, 6)).map((s) => s.sn), [0]);
  assertEquals([snmp.FastRetransSegs, snmp.EarlyRetransSegs, snmp.RetransSegs], [0, 1, 1]);
  // Early retransmit fires even with fast retransmit off (resend 0).
  const { kcp: k2, snmp: s2 } = newKcp(1, { interval: 10, resend: 0, nc: 1, mtu: 200 });
  k2.send(new Uint8Array(176 * 2));
  flushOut(k2, 0);
  feed(k2, ack(1, 0), 5);
  assertEquals(pushesOf(flushOut(k2, 5)).map((s) => s.sn), [0]);
  assertEquals(s2.EarlyRetransSegs, 1);
});

Deno.test("send window: at most min(sndWnd, rmtWnd) segments in flight; writable() follows", () => {
  const { kcp } = newKcp(1, { mtu: 100, sndWnd: 4, nc: 1 });
  assert(kcp.writable());
  kcp.send(new Uint8Array(76 * 10));
  assert(!kcp.writable());
  assertEquals(pushesOf(flushOut(kcp, 0)).length, 4);
  assertEquals(kcp.sndQueueCount, 6);
  feed(kcp, ack(0, 0, 2, 3), 10); // una 2, peer window 3
  assertEquals(kcp.rmtWnd, 3);
  assertEquals(kcp.check(10), 10, "window slid: flush requested");
  assertEquals(pushesOf(updateOut(kcp, 10)).map((s) => s.sn), [4]);
});

Deno.test("congestion window (nc = 0): starts at 0, then slow start on ACKs", () => {
  const { kcp } = newKcp(1, { mtu: 100, sndWnd: 32, interval: 10 });
  kcp.send(new Uint8Array(76 * 6));
  assertEquals(pushesOf(flushOut(kcp, 0)).length, 0, "kcp-go's cwnd is 0 before the first flush");
  assertEquals(kcp.cwnd, 1);
  assertEquals(pushesOf(flushOut(kcp, 1)).map((s) => s.sn), [0]);
  feed(kcp, ack(0, 1, 1), 11);
  assertEquals(kcp.cwnd, 2);
  assertEquals(pushesOf(updateOut(kcp, 11)).map((s) => s.sn), [1, 2]);
  feed(kcp, concat([ack(1, 11, 3), ack(2, 11, 3)]), 21);
  assertEquals(kcp.cwnd, 2, "at ssthresh 2: congestion avoidance, less than a segment per ACK");
  // A timeout collapses the window to 1.
  pushesOf(updateOut(kcp, 21));
  runTimer(kcp, 21, 2000);
  assertEquals(kcp.cwnd, 1);
  assertEquals(kcp.ssthresh, 2);
});

Deno.test("zero window: WASK after 7 s, then ×1.5; the peer answers WINS", () => {
  const { kcp: a } = newKcp(1);
  updateOut(a, 0);
  feed(a, seg({ cmd: KcpCmd.Wins, wnd: 0 }), 1);
  assertEquals(a.rmtWnd, 0);
  a.send(new Uint8Array(10));
  assert(!a.writable());
  const sent = runTimer(a, 1, 40000);
  assertEquals(sent.filter((s) => s.cmd === KcpCmd.Wask).map((s) => s.t), [7100, 17600, 33400]);
  assertEquals(sent.filter((s) => s.cmd === KcpCmd.Push).length, 0);
  assertEquals(a.probeWait, 23625);

  const { kcp: b } = newKcp(1, { rcvWnd: 2 });
  for (let i = 0; i < 2; i++) feed(b, push(i, 0, new Uint8Array(4)), 0);
  updateOut(b, 0);
  feed(b, seg({ cmd: KcpCmd.Wask }), 5);
  const wins = segmentsOf(updateOut(b, b.check(5))).filter((s) => s.cmd === KcpCmd.Wins);
  assertEquals(wins.map((s) => [s.wnd, s.len]), [[0, 0]], "full queue: window 0");

  // A WINS with room reopens the sender; probing stops.
  feed(a, seg({ cmd: KcpCmd.Wins, wnd: 8 }), 40001);
  assert(a.writable());
  const after = runTimer(a, 40001, 40200);
  assertEquals(after.filter((s) => s.cmd === KcpCmd.Push).length, 1);
  assertEquals(a.probeWait, 0);
});

Deno.test("zero window: reading from a full receive queue sends WINS (fast recover)", () => {
  const { kcp: b } = newKcp(1, { rcvWnd: 4 });
  for (let i = 0; i < 4; i++) feed(b, push(i, 0, new Uint8Array([i, i])), 0);
  const acks = segmentsOf(updateOut(b, 0));
  assertEquals(acks.at(-1)!.wnd, 0);
  const dst = new Uint8Array(3);
  assertEquals(b.recv(dst), 3, "one and a half segments");
  assertEquals(Array.from(dst), [0, 0, 1]);
  const s = segmentsOf(updateOut(b, b.check(1)));
  assertEquals(s.map((x) => [x.cmd, x.wnd]), [[KcpCmd.Wins, 1]]);
  assertEquals(b.readable(), 5);
});

Deno.test("recovered (FEC) datagrams: no window update, no RTT sample, no repeat count", () => {
  const { kcp, snmp } = newKcp(1, { nc: 1, interval: 10 });
  kcp.send(new Uint8Array(3000));
  flushOut(kcp, 0);
  assertEquals(feed(kcp, ack(0, 0, 1, 7), 40, true), 0);
  assertEquals(kcp.rmtWnd, 32);
  assertEquals(kcp.srtt, 0);
  assertEquals(kcp.sndUna, 1, "but the ACK itself counts");
  feed(kcp, push(0, 9, new Uint8Array(1)), 41, true);
  feed(kcp, push(0, 9, new Uint8Array(1)), 41, true);
  assertEquals(snmp.RepeatSegs, 0);
  assertEquals(kcp.readable(), 1);
  assertEquals(feed(kcp, ack(1, 0, 2, 7), 50), 0);
  assertEquals(kcp.rmtWnd, 7);
  assertEquals(kcp.srtt, 50);
});

Deno.test("input errors: code, stop at the bad segment, earlier segments applied", () => {
  const { kcp, snmp } = newKcp(1);
  const good = push(0, 1, new Uint8Array([42]));
  assertEquals(feed(kcp, new Uint8Array(23), 0), KcpInputResult.BadConv);
  assertEquals(feed(kcp, seg({ conv: 2, cmd: KcpCmd.Push }), 0), KcpInputResult.BadConv);
  const bad = seg({ cmd: 85 });
  assertEquals(feed(kcp, bad, 0), KcpInputResult.BadCommand);
  const long = push(0, 1, new Uint8Array(4)).subarray(0, 27);
  assertEquals(feed(kcp, long, 0), KcpInputResult.BadLength);
  assertEquals([kcp.readable(), kcp.pendingAcks, kcp.rmtWnd, snmp.InSegs], [0, 0, 32, 0]);

  const mixed = concat([good, seg({ conv: 3, cmd: KcpCmd.Push, sn: 1, wnd: 1 })]);
  assertEquals(feed(kcp, mixed, 0), KcpInputResult.BadConv);
  assertEquals(kcp.readable(), 1, "the first segment was delivered");
  assertEquals(snmp.InSegs, 0, "kcp-go counts InSegs only for whole datagrams");
  // A 1..23-byte tail after whole segments is ignored.
  assertEquals(feed(kcp, concat([push(1, 1, new Uint8Array(1)), new Uint8Array(10)]), 0), 0);
  assertEquals(kcp.readable(), 2);
});

Deno.test("check(): due at once first, Infinity when idle, back on the interval grid after idle", () => {
  const { kcp } = newKcp(1, { nc: 1 });
  assertEquals(kcp.check(0), 0);
  assertEquals(updateOut(kcp, 0), []);
  assertEquals(kcp.check(0), Infinity);
  feed(kcp, push(0, 1, new Uint8Array(1)), 250);
  // kcp-go's 100 ms timer ticked at 100 and 200 while we slept; the next tick is 300.
  assertEquals(kcp.check(250), 300);
  assertEquals(updateOut(kcp, 299), [], "not due yet");
  assertEquals(segmentsOf(updateOut(kcp, 300)).length, 1);
  kcp.read();
  assertEquals(kcp.check(300), Infinity);
  kcp.send(new Uint8Array(1));
  assertEquals(kcp.check(301), 400);
  flushOut(kcp, 301);
  assertEquals(kcp.check(301), 400);
});

Deno.test("check(): ACK-no-delay flushes ACKs right after input", () => {
  const { kcp } = newKcp(1, { ackNoDelay: true });
  updateOut(kcp, 0);
  feed(kcp, push(0, 1, new Uint8Array(1)), 5);
  assertEquals(kcp.check(5), 5);
  assertEquals(segmentsOf(updateOut(kcp, 5)).map((s) => s.cmd), [KcpCmd.Ack]);
  assertEquals(kcp.check(5), Infinity, "nothing left to do");
});

Deno.test("check(): a datagram's worth of queued ACKs is flushed at input (2026 rule), unless disabled", () => {
  for (const ackWhenFull of [true, false]) {
    const { kcp } = newKcp(1, { ackWhenFull, rcvWnd: 256, interval: 100 });
    updateOut(kcp, 0);
    const full = Math.ceil(kcp.mtu / KCP_OVERHEAD); // 59 ACKs fill a 1400-byte datagram
    for (let sn = 0; sn < full - 1; sn++) feed(kcp, push(sn, 1, new Uint8Array(1)), 5);
    assertEquals(kcp.check(5), 100, "fewer than a datagram of ACKs waits for the interval");
    feed(kcp, push(full - 1, 1, new Uint8Array(1)), 5);
    const acks = segmentsOf(updateOut(kcp, 5)).filter((s) => s.cmd === KcpCmd.Ack);
    // In-order data: the flush sends only the newest ACK (kcp-go skips those below rcv_nxt).
    assertEquals(
      acks.map((a) => a.sn),
      ackWhenFull ? [full - 1] : [],
      `ackWhenFull ${ackWhenFull}`,
    );
  }
});

Deno.test("setters: kcp-go clamps and ignores", () => {
  const { kcp } = newKcp(1);
  kcp.setNoDelay(1, 1, 2, 1);
  assertEquals(kcp.interval, 10);
  kcp.setNoDelay(-1, 99999, -1, -1);
  assertEquals(kcp.interval, 5000);
  kcp.setWindow(0, -5);
  assertEquals([kcp.sndWnd, kcp.rcvWnd], [32, 32]);
  kcp.setWindow(2000, 3000);
  assertEquals([kcp.sndWnd, kcp.rcvWnd], [2000, 3000]);
  assert(!kcp.setMtu(49));
  assert(kcp.setMtu(1350));
  assertEquals(kcp.mss, 1326);
});

Deno.test("release() returns every segment to the pool", () => {
  const { kcp } = newKcp(1, { nc: 1 });
  kcp.send(new Uint8Array(5000));
  flushOut(kcp, 0);
  feed(kcp, push(3, 0, new Uint8Array(3)), 0);
  feed(kcp, push(0, 0, new Uint8Array(3)), 0);
  kcp.release();
  assertEquals([kcp.waitSnd(), kcp.readable(), kcp.reorderCount], [0, 0, 0]);
});

Deno.test("check(): an idle sleep longer than the u32 clock's half range starts a new tick grid", () => {
  const { kcp } = newKcp(1, { nc: 1 });
  updateOut(kcp, 1000);
  assertEquals(kcp.check(1000), Infinity);
  const later = 1000 + 2 ** 31 + 12345; // the wrapped difference looks negative
  feed(kcp, push(0, 1, new Uint8Array(1)), later);
  assertEquals(kcp.check(later), later);
  assertEquals(segmentsOf(updateOut(kcp, later)).length, 1);
});
