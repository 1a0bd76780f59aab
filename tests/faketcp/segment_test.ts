import fc from "fast-check";
import {
  foldChecksum,
  ipv4TcpOffset,
  pseudoHeaderSum,
  putChecksum,
  sum16,
  sum32,
  TCP_HEADER,
  tcpAck,
  tcpChecksum,
  tcpDstPort,
  TcpFlags,
  tcpFlags,
  tcpHeaderLength,
  tcpSeq,
  tcpSrcPort,
  tcpWindow,
  writeTcpHeader,
} from "../../transports/faketcp/segment.ts";
import { fromHex } from "../support/captures.ts";
import { assert, assertEquals } from "../support/assert.ts";

// Segments Debian's kcptun-client -tcp (tcpraw v1.2.25) sent to kcptun-server -tcp on loopback,
// captured with tcpdump (whole packets, IP header included).
const GO_V4 = fromHex(
  "4500006e627740004006da107f0000017f000001a20ea02a6e47d5a653abc73150188bbbd62d0000fd3a2a213a" +
    "b17316a00e61567c676cf2c6b189be1efc1c2caa163c5094d3b281e3ee72dbfb4fe8eb764dbead3cabbd083ee8" +
    "65010483c0488606c7e078c6ea203a1f39523eb4",
);
const GO_V6 = fromHex(
  "60083c0d005a06400000000000000000000000000000000100000000000000000000000000000001aac0a05244" +
    "88c72f156fb3845018b87c40c100005f26d1c8e6cb671571eb96ee47e57b83d325b13fb3625fab6f47d6018542" +
    "e094df02798757f5481014341d5749ff02c8a2ffdc174140c8a6f0f0fd906a29106223b2bb01c13e",
);

/** The Internet checksum the textbook way: one 16-bit word at a time, folding as it goes. */
function referenceChecksum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    s += (bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

/** The pseudo-header (IPv4 or IPv6 form) followed by the segment, for the reference sum. */
function withPseudo(src: Uint8Array, dst: Uint8Array, segment: Uint8Array): Uint8Array {
  const len = segment.length;
  const pseudo = src.length === 4
    ? [...src, ...dst, 0, 6, len >>> 8, len & 0xff]
    : [...src, ...dst, 0, 0, len >>> 8, len & 0xff, 0, 0, 0, 6];
  return new Uint8Array([...pseudo, ...segment]);
}

Deno.test("faketcp segment: rebuilds Go's IPv4 segment byte for byte, checksum included", () => {
  const tcp = ipv4TcpOffset(GO_V4, 0, GO_V4.length, new Int32Array(1));
  assertEquals(tcp, 20);
  const payload = GO_V4.slice(tcp + 20);
  assertEquals(payload.length, 70);
  const hdr = new Uint8Array(TCP_HEADER);
  writeTcpHeader(
    hdr,
    0,
    tcpSrcPort(GO_V4, tcp),
    tcpDstPort(GO_V4, tcp),
    tcpSeq(GO_V4, tcp),
    tcpAck(GO_V4, tcp),
    TcpFlags.PSH | TcpFlags.ACK,
    tcpWindow(GO_V4, tcp),
  );
  const pseudo = pseudoHeaderSum(GO_V4.subarray(12, 16), GO_V4.subarray(16, 20));
  putChecksum(
    hdr,
    0,
    tcpChecksum(pseudo, hdr, 0, TCP_HEADER, new DataView(payload.buffer), 0, payload.length),
  );
  assertEquals([...hdr], [...GO_V4.subarray(20, 40)]);
  assertEquals(tcpFlags(GO_V4, tcp), 0x18);
  assert(tcpWindow(GO_V4, tcp) >= 0x8000, "tcpraw windows have the top bit set");
  assertEquals(tcpHeaderLength(GO_V4, tcp), 20, "no options");
});

Deno.test("faketcp segment: rebuilds Go's IPv6 segment byte for byte, checksum included", () => {
  const t = 40; // an IPv6 raw socket would start here
  const payload = GO_V6.slice(t + 20);
  assertEquals(payload.length, 70);
  const hdr = new Uint8Array(TCP_HEADER);
  writeTcpHeader(
    hdr,
    0,
    tcpSrcPort(GO_V6, t),
    tcpDstPort(GO_V6, t),
    tcpSeq(GO_V6, t),
    tcpAck(GO_V6, t),
    TcpFlags.PSH | TcpFlags.ACK,
    tcpWindow(GO_V6, t),
  );
  const pseudo = pseudoHeaderSum(GO_V6.subarray(8, 24), GO_V6.subarray(24, 40));
  putChecksum(
    hdr,
    0,
    tcpChecksum(pseudo, hdr, 0, TCP_HEADER, new DataView(payload.buffer), 0, payload.length),
  );
  assertEquals([...hdr], [...GO_V6.subarray(40, 60)]);
});

Deno.test("faketcp segment: checksum matches the textbook algorithm (header and payload split)", () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 0, maxLength: 1500 }),
      fc.integer({ min: 0, max: 9 }),
      fc.record({
        sp: fc.integer({ min: 0, max: 65535 }),
        dp: fc.integer({ min: 0, max: 65535 }),
        seq: fc.nat({ max: 0xffffffff }),
        ack: fc.nat({ max: 0xffffffff }),
        win: fc.integer({ min: 0, max: 65535 }),
      }),
      (v4, s16, d16, payload, offset, h) => {
        const src = v4 ? s16.subarray(0, 4) : s16, dst = v4 ? d16.subarray(0, 4) : d16;
        const hdr = new Uint8Array(TCP_HEADER + 3);
        writeTcpHeader(hdr, 3, h.sp, h.dp, h.seq, h.ack, 0x18, h.win);
        const buf = new Uint8Array(payload.length + offset);
        buf.set(payload, offset);
        const sum = tcpChecksum(
          pseudoHeaderSum(src, dst),
          hdr,
          3,
          TCP_HEADER,
          new DataView(buf.buffer),
          offset,
          offset + payload.length,
        );
        const segment = new Uint8Array([...hdr.subarray(3), ...payload]);
        assertEquals(sum, referenceChecksum(withPseudo(src, dst, segment)));
        // And the receiver's check: the sum over everything, checksum in place, is zero.
        putChecksum(segment, 0, sum);
        assertEquals(referenceChecksum(withPseudo(src, dst, segment)), 0);
      },
    ),
    { seed: 8, numRuns: 300 },
  );
});

Deno.test("faketcp segment: header fields read back as written", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: 0, max: 65535 }),
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      fc.integer({ min: 0, max: 63 }),
      fc.integer({ min: 0, max: 65535 }),
      (sp, dp, seq, ack, flags, win) => {
        const b = new Uint8Array(TCP_HEADER);
        writeTcpHeader(b, 0, sp, dp, seq, ack, flags, win);
        assertEquals(
          [tcpSrcPort(b, 0), tcpDstPort(b, 0), tcpSeq(b, 0), tcpAck(b, 0), tcpFlags(b, 0)],
          [sp, dp, seq, ack, flags],
        );
        assertEquals(tcpWindow(b, 0), win);
        assertEquals(tcpHeaderLength(b, 0), 20);
      },
    ),
    { seed: 9, numRuns: 200 },
  );
});

Deno.test("faketcp segment: sum16, sum32 and foldChecksum agree with word-at-a-time folding", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), fc.integer({ min: 0, max: 7 }), (b, at) => {
      assertEquals(foldChecksum(sum16(b, 0, b.length, 0)), referenceChecksum(b));
      const shifted = new Uint8Array(b.length + at);
      shifted.set(b, at);
      const v = new DataView(shifted.buffer);
      assertEquals(foldChecksum(sum32(v, at, at + b.length, 0)), referenceChecksum(b));
    }),
    { seed: 10, numRuns: 200 },
  );
  assertEquals(foldChecksum(0), 0xffff);
  assertEquals(foldChecksum(0x1fffe), 0);
});

Deno.test("faketcp segment: IPv4 parsing rejects what a raw socket should not deliver", () => {
  const out = new Int32Array(1);
  const ok = GO_V4.slice();
  assertEquals(ipv4TcpOffset(ok, 0, ok.length, out), 20);
  assertEquals(out[0], 110);
  // Trailing bytes past the IP total length are not payload.
  const padded = new Uint8Array([...ok, 0, 0, 0]);
  assertEquals(ipv4TcpOffset(padded, 0, padded.length, out), 20);
  assertEquals(out[0], 110);
  const bad = (mutate: (b: Uint8Array) => void, len = ok.length) => {
    const b = ok.slice();
    mutate(b);
    return ipv4TcpOffset(b, 0, len, out);
  };
  assertEquals(bad(() => {}, 19), -1, "shorter than an IP header");
  assertEquals(bad((b) => (b[0] = 0x65)), -1, "not version 4");
  assertEquals(bad((b) => (b[0] = 0x44)), -1, "IHL below 5");
  assertEquals(bad((b) => (b[9] = 17)), -1, "UDP");
  assertEquals(bad((b) => (b[2] = 0x10)), -1, "total length beyond the data");
  assertEquals(bad((b) => (b[3] = 30)), -1, "total length shorter than the headers");
  assertEquals(bad((b) => (b[6] = 0x20)), -1, "more fragments");
  assertEquals(bad((b) => (b[7] = 1)), -1, "fragment offset");
  // Options (IHL 6): the TCP header moves.
  const opt = new Uint8Array([0x46, ...ok.subarray(1, 20), 1, 1, 1, 1, ...ok.subarray(20)]);
  opt[3] = 114;
  assertEquals(ipv4TcpOffset(opt, 0, opt.length, out), 24);
});
