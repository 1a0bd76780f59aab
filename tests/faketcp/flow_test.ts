import fc from "fast-check";
import {
  FlowState,
  takeSequence,
  trackSegment,
  WindowSource,
} from "../../transports/faketcp/flow.ts";
import { TcpFlags } from "../../transports/faketcp/segment.ts";
import { assert, assertEquals } from "../support/assert.ts";

const { SYN, ACK, PSH, FIN, RST } = TcpFlags;

Deno.test("faketcp flow: the dialler's numbers come from the SYN-ACK", () => {
  const f = new FlowState();
  f.connected = true;
  // SYN-ACK from the server: seq = server ISN, ack = our ISN + 1.
  assertEquals(trackSegment(f, SYN | ACK, 5000, 1001, 0, 1), false);
  assertEquals([f.seq, f.ack, f.seen, f.lastSeen], [1001, 5001, true, 1]);
  // We send 100 bytes, then 50: sequence numbers as tcpraw writes them.
  assertEquals(takeSequence(f, 100), 1001);
  assertEquals(takeSequence(f, 50), 1101);
  assertEquals(f.seq, 1151);
  // The server's in-order data moves ack; our seq follows what it acknowledged.
  assertEquals(trackSegment(f, PSH | ACK, 5001, 1101, 30, 2), true);
  assertEquals([f.seq, f.ack], [1101, 5031]);
});

Deno.test("faketcp flow: the listener's numbers come from the SYN and the handshake ACK", () => {
  const f = new FlowState();
  assertEquals(trackSegment(f, SYN, 700, 0, 0, 0), false);
  assertEquals(f.ack, 701);
  assertEquals(trackSegment(f, ACK, 701, 9001, 0, 0), false);
  assertEquals(f.seq, 9001);
  // Data before the connection is accepted: tracked, not delivered (orphan).
  assertEquals(trackSegment(f, PSH | ACK, 701, 9001, 10, 0), false);
  assertEquals(f.ack, 711);
  f.connected = true;
  assertEquals(trackSegment(f, PSH | ACK, 711, 9001, 10, 0), true);
  assertEquals(f.ack, 721);
});

Deno.test("faketcp flow: out-of-order data leaves ack alone but is still delivered", () => {
  const f = new FlowState();
  f.connected = true;
  trackSegment(f, SYN | ACK, 100, 1, 0, 0);
  assertEquals(trackSegment(f, PSH | ACK, 500, 1, 20, 0), true);
  assertEquals(f.ack, 101);
  assertEquals(trackSegment(f, PSH | ACK, 101, 1, 20, 0), true);
  assertEquals(f.ack, 121);
});

Deno.test("faketcp flow: FIN and RST change nothing but seq (through ACK); pure ACKs are not delivered", () => {
  const f = new FlowState();
  f.connected = true;
  trackSegment(f, SYN | ACK, 100, 1, 0, 0);
  assertEquals(trackSegment(f, FIN | ACK, 101, 7, 0, 0), false);
  assertEquals([f.seq, f.ack], [7, 101]);
  assertEquals(trackSegment(f, RST, 999, 0, 0, 0), false);
  assertEquals([f.seq, f.ack], [7, 101]);
  assertEquals(trackSegment(f, ACK, 101, 3, 0, 0), false);
  assertEquals(f.seq, 3, "seq may go back to what the peer last acknowledged");
});

Deno.test("faketcp flow: numbers wrap at 2^32", () => {
  const f = new FlowState();
  f.connected = true;
  trackSegment(f, SYN | ACK, 0xffffffff, 0xfffffff0, 0, 0);
  assertEquals(f.ack, 0);
  assertEquals(takeSequence(f, 0x20), 0xfffffff0);
  assertEquals(f.seq, 0x10);
  trackSegment(f, PSH | ACK, 0, 0x10, 5, 0);
  assertEquals(f.ack, 5);
});

Deno.test("faketcp flow: delivery is exactly PSH on a connected flow (any flags, any numbers)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 63 }),
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      fc.integer({ min: 0, max: 1500 }),
      fc.boolean(),
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      (flags, seq, ack, len, connected, s0, a0) => {
        const f = new FlowState();
        f.seq = s0;
        f.ack = a0;
        f.connected = connected;
        const d = trackSegment(f, flags, seq, ack, len, 0);
        assertEquals(d, connected && (flags & PSH) !== 0);
        assertEquals(f.seq, (flags & ACK) !== 0 ? ack : s0);
        let want = (flags & SYN) !== 0 ? (seq + 1) >>> 0 : a0;
        if ((flags & PSH) !== 0 && want === seq) want = (seq + len) >>> 0;
        assertEquals(f.ack, want);
        assert(f.seq >= 0 && f.seq <= 0xffffffff && f.ack >= 0 && f.ack <= 0xffffffff);
      },
    ),
    { seed: 11, numRuns: 500 },
  );
});

Deno.test("faketcp flow: windows are 32768..65535 and vary", () => {
  const w = new WindowSource(12345);
  const seen = new Set<number>();
  for (let i = 0; i < 10000; i++) {
    const v = w.next();
    assert(v >= 0x8000 && v <= 0xffff, `window ${v}`);
    seen.add(v);
  }
  assert(seen.size > 8000, `only ${seen.size} distinct windows`);
  const a = new WindowSource(7), b = new WindowSource(7);
  for (let i = 0; i < 10; i++) assertEquals(a.next(), b.next());
  const zero = new WindowSource(0);
  assert(zero.next() !== zero.next(), "a zero seed does not stick");
});
