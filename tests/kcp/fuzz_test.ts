/**
 * Hostile input: garbage, truncated segments, unknown commands, absurd lengths, wrong conv.
 * Input must return kcp-go's code, never throw, never break the core's invariants, and leave the
 * state untouched when the first segment is already bad. 100,000 fast-check cases in total.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { PacketBatch } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { Kcp, KcpInputResult } from "../../transforms/kcp/arq.ts";
import {
  KCP_OVERHEAD,
  parseDatagram,
  readU32,
  writeSegmentHeader,
} from "../../transforms/kcp/wire.ts";
import { pool } from "./support.ts";

const CONV = 0x01020304;

function snapshot(k: Kcp): number[] {
  return [
    k.sndUna,
    k.sndNxt,
    k.rcvNxt,
    k.rmtWnd,
    k.rto,
    k.srtt,
    k.rttvar,
    k.cwnd,
    k.pendingAcks,
    k.reorderCount,
    k.rcvQueueCount,
    k.sndQueueCount,
    k.sndBufCount,
    k.readable(),
    k.probeWait,
  ];
}

function checkInvariants(k: Kcp): void {
  assertEquals(k.sndBufCount, (k.sndNxt - k.sndUna) >>> 0, "send buffer = [una, nxt)");
  assert(k.reorderCount <= k.rcvWnd, "reorder buffer within the window");
  assert(k.rcvQueueCount <= k.rcvWnd, "receive queue within the window");
  assertEquals(k.readable() === 0, k.rcvQueueCount === 0, "queued segments hold bytes");
  assert(k.rmtWnd >= 0 && k.rmtWnd <= 0xffff);
  assert(k.rto >= 30 && k.rto <= 60000);
}

/** kcp-go's verdict on a datagram, from §5.2 (conv, then length, then command). */
function expectedCode(b: Uint8Array): number {
  if (b.length < KCP_OVERHEAD) return KcpInputResult.BadConv;
  let off = 0;
  while (b.length - off >= KCP_OVERHEAD) {
    if (readU32(b, off) !== CONV) return KcpInputResult.BadConv;
    const len = readU32(b, off + 20);
    const cmd = b[off + 4];
    off += KCP_OVERHEAD;
    if (len > b.length - off) return KcpInputResult.BadLength;
    if (cmd < 81 || cmd > 84) return KcpInputResult.BadCommand;
    off += len;
  }
  return KcpInputResult.Ok;
}

/** A core with data in flight, out-of-order data buffered and unread data queued. */
function primed(): Kcp {
  const k = new Kcp(CONV, { snmp: new Snmp(), nc: 1, interval: 10, mtu: 1400, rcvWnd: 64 });
  const out = new PacketBatch();
  k.send(new Uint8Array(10000).fill(7));
  k.flush(0, out, pool);
  out.releaseAll();
  const b = new Uint8Array(KCP_OVERHEAD + 100);
  for (const sn of [0, 1, 3, 5]) {
    writeSegmentHeader(b, 0, CONV, 81, 0, 32, 1, sn, 0, 100);
    k.input(b, 0, b.length, 1);
  }
  return k;
}

function feedAndCheck(k: Kcp, d: Uint8Array, now: number): void {
  const before = snapshot(k);
  const firstBad = d.length < KCP_OVERHEAD || parseDatagram(d).segments.length === 0 ||
    readU32(d, 0) !== CONV;
  let r: number;
  try {
    r = k.input(d, 0, d.length, now, (now & 1) === 1);
  } catch (e) {
    throw new Error(`input threw on ${d.length} bytes: ${e}`);
  }
  assertEquals(r, expectedCode(d));
  if (r !== 0 && firstBad) assertEquals(snapshot(k), before, "rejected datagram changed state");
  checkInvariants(k);
}

Deno.test("fuzz: random bytes (50,000 cases, half with our conv in front)", () => {
  const shared = primed();
  let now = 2;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1500 }), fc.boolean(), (bytes, withConv) => {
      if (withConv && bytes.length >= 4) {
        bytes[0] = 4;
        bytes[1] = 3;
        bytes[2] = 2;
        bytes[3] = 1;
      }
      feedAndCheck(shared, bytes, now++);
    }),
    { numRuns: 50000, seed: 0x6b6370 },
  );
  // Still usable: a flush produces well-formed datagrams no larger than the MTU.
  const out = new PacketBatch();
  shared.update(now + 100000, out, pool);
  for (let i = 0; i < out.length; i++) {
    const p = parseDatagram(out.at(i).bytes());
    assertEquals(p.error, null);
    assert(out.at(i).length <= shared.mtu);
  }
  out.releaseAll();
});

const segmentArb = fc.record({
  conv: fc.oneof(
    { weight: 12, arbitrary: fc.constant(CONV) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
  ),
  cmd: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 81, max: 84 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  ),
  frg: fc.integer({ min: 0, max: 255 }),
  wnd: fc.integer({ min: 0, max: 0xffff }),
  ts: fc.integer({ min: 0, max: 0xffffffff }),
  // Mostly near the live sequence numbers, sometimes anywhere (wrap-around included).
  sn: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 0xffffffff })),
  una: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 0xffffffff })),
  dataLen: fc.integer({ min: 0, max: 300 }),
  // The len field: honest, a little off, or absurd.
  lenLie: fc.oneof(
    { weight: 10, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: -300, max: 300 }) },
    { weight: 1, arbitrary: fc.constantFrom(0x7fffffff, 0xffffffff, 0x80000000) },
  ),
});

Deno.test("fuzz: structured segments with lying fields and truncation (50,000 cases)", () => {
  const shared = primed();
  let now = 2;
  fc.assert(
    fc.property(
      fc.array(segmentArb, { minLength: 1, maxLength: 6 }),
      fc.nat(),
      fc.boolean(),
      (segs, cut, truncate) => {
        let size = 0;
        for (const s of segs) size += KCP_OVERHEAD + s.dataLen;
        const b = new Uint8Array(size);
        let off = 0;
        for (const s of segs) {
          const len = s.lenLie > 0xffff ? s.lenLie : Math.max(0, s.dataLen + s.lenLie);
          off = writeSegmentHeader(b, off, s.conv, s.cmd, s.frg, s.wnd, s.ts, s.sn, s.una, len);
          b.fill(s.cmd, off, off + s.dataLen);
          off += s.dataLen;
        }
        const d = truncate ? b.subarray(0, cut % (size + 1)) : b;
        feedAndCheck(shared, d, now++);
        if ((now & 63) === 0) {
          // Flush now and then so ACK lists and timers move too.
          const out = new PacketBatch();
          shared.update(now, out, pool);
          shared.recv(new Uint8Array(4096));
          out.releaseAll();
          checkInvariants(shared);
        }
      },
    ),
    { numRuns: 50000, seed: 0x4b4350 },
  );
});
