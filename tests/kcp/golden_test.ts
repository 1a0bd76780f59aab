/**
 * Golden tests against datagrams captured between real kcptun binaries (2026, `-crypt null`, no
 * FEC: each UDP payload is a raw KCP datagram) and docs/protocol.md §5.1/§5.9.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { type CapturedDatagram, fromHex, loadCapture, toHex } from "../support/captures.ts";
import { KcpCmd, parseDatagram, readSegmentHeader } from "../../transforms/kcp/wire.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { concat, feed, flushOut, newKcp, segmentsOf, updateOut } from "./support.ts";

const CONV_NULL = 0xc9d90d82;
const CONV_KA = 0x8d30bebe;
const fast = KCP_MODES.fast;

function dir(c: CapturedDatagram[], d: "C2S" | "S2C"): Uint8Array[] {
  return c.filter((x) => x.dir === d && !x.dropped).map((x) => x.bytes);
}

/** The in-order stream a direction carried: PUSH payloads by sn, each sn once. */
function streamOf(datagrams: Uint8Array[]): Uint8Array {
  const bySn = new Map<number, Uint8Array>();
  for (const s of segmentsOf(datagrams)) {
    if (s.cmd === KcpCmd.Push && !bySn.has(s.sn)) bySn.set(s.sn, s.data.slice());
  }
  const parts: Uint8Array[] = [];
  for (let sn = 0; bySn.has(sn); sn++) parts.push(bySn.get(sn)!);
  assertEquals(parts.length, bySn.size, "sn gap in capture");
  return concat(parts);
}

/** Splits a byte stream into smux frames (ver, cmd, len u16le, sid u32le, payload). */
function smuxFrames(b: Uint8Array): { ver: number; cmd: number; sid: number; len: number }[] {
  const out = [];
  let o = 0;
  while (o < b.length) {
    assert(b.length - o >= 8, "truncated smux header");
    const len = b[o + 2] | (b[o + 3] << 8);
    const sid = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
    out.push({ ver: b[o], cmd: b[o + 1], sid, len });
    o += 8 + len;
  }
  assertEquals(o, b.length, "smux frames must end exactly at the stream end");
  return out;
}

Deno.test("wire: every captured null-crypt datagram parses as whole KCP segments", () => {
  for (const [name, conv] of [["new_null.jsonl", CONV_NULL], ["new_ka.jsonl", CONV_KA]] as const) {
    const c = loadCapture(name);
    assert(c.length > 0);
    for (const d of c) {
      const p = parseDatagram(d.bytes);
      assertEquals(p.error, null, `${name} ${d.dir}#${d.i}`);
      assert(p.segments.length >= 1);
      for (const s of p.segments) {
        assertEquals(s.conv, conv);
        assertEquals(s.frg, 0);
        if (s.cmd !== KcpCmd.Push) assertEquals(s.len, 0);
      }
    }
  }
});

Deno.test("wire: docs/protocol.md §5.1 example header fields", () => {
  const d = fromHex("820dd9c9 51 00 0002 06060000 00000000 00000000 08000000 02 00 0000 03000000");
  const h = readSegmentHeader(d, 0);
  assertEquals(h, {
    conv: 0xc9d90d82,
    cmd: 81,
    frg: 0,
    wnd: 512,
    ts: 1542,
    sn: 0,
    una: 0,
    len: 8,
  });
  const ack = readSegmentHeader(fromHex("820dd9c952001e0006060000010000000200000000000000"), 0);
  assertEquals([ack.cmd, ack.wnd, ack.ts, ack.sn, ack.una, ack.len], [82, 30, 1542, 1, 2, 0]);
});

Deno.test("golden §5.9: our client emits the captured client datagrams byte for byte", () => {
  const c = loadCapture("new_null.jsonl");
  const c2s = dir(c, "C2S");
  const s2c = dir(c, "S2C");
  const { kcp } = newKcp(CONV_NULL, { mtu: 1350, sndWnd: 128, rcvWnd: 512, ...fast });

  // Two separate writes (smux SYN, then PSH "hello"), each flushed at once: two datagrams.
  const syn = segmentsOf([c2s[0]])[0].data;
  const psh = segmentsOf([c2s[1]])[0].data;
  kcp.send(syn);
  assertEquals(flushOut(kcp, 1542).map(toHex), [toHex(c2s[0])]);
  kcp.send(psh);
  assertEquals(flushOut(kcp, 1542).map(toHex), [toHex(c2s[1])]);

  // Server's ACK slides the window; the timed flush has nothing to say.
  assertEquals(feed(kcp, s2c[0], 1543), 0);
  assertEquals(kcp.sndUna, 2);
  assertEquals(kcp.rmtWnd, 30);
  assertEquals(updateOut(kcp, 1543), []);
  assertEquals(feed(kcp, s2c[1], 1544), 0);
  assertEquals(feed(kcp, s2c[2], 1545), 0);
  assertEquals(updateOut(kcp, 1545), [], "ACKs wait for the next tick");
  assertEquals(toHex(kcp.read()!), toHex(streamOf(s2c)));

  // Writing smux UPD flushes the queued ACKs with it (the ACK for sn 0 is filtered: sn < una).
  const upd = segmentsOf([c2s[2]])[1].data;
  kcp.send(upd);
  assertEquals(flushOut(kcp, 1546).map(toHex), [toHex(c2s[2])]);

  assertEquals(feed(kcp, s2c[3], 1547), 0);
  kcp.send(segmentsOf([c2s[3]])[0].data);
  assertEquals(flushOut(kcp, 1547).map(toHex), [toHex(c2s[3])]);
});

Deno.test("golden §5.9: our server emits the captured server datagrams byte for byte", () => {
  const c = loadCapture("new_null.jsonl");
  const c2s = dir(c, "C2S");
  const s2c = dir(c, "S2C");
  // The 2026 server flushes its first ACK before kcptun applies its settings (default 32/32).
  const { kcp } = newKcp(CONV_NULL);
  assertEquals(feed(kcp, c2s[0], 2037), 0);
  assertEquals(feed(kcp, c2s[1], 2037), 0);
  assertEquals(kcp.pendingAcks, 2);
  assertEquals(updateOut(kcp, 2037).map(toHex), [toHex(s2c[0])], "one ACK, wnd 30");

  kcp.setMtu(1350);
  kcp.setWindow(1024, 1024);
  kcp.setNoDelay(fast.nodelay, fast.interval, fast.resend, fast.nc);
  const got = kcp.read()!;
  assertEquals(toHex(got), toHex(streamOf(c2s.slice(0, 2))));

  kcp.send(segmentsOf([s2c[1]])[0].data);
  assertEquals(flushOut(kcp, 2038).map(toHex), [toHex(s2c[1])]);
  kcp.send(segmentsOf([s2c[2]])[0].data);
  assertEquals(flushOut(kcp, 2040).map(toHex), [toHex(s2c[2])]);

  // ACK + PUSH from the client: una slides our window, so input asks for a flush at once.
  assertEquals(feed(kcp, c2s[2], 2041), 0);
  assertEquals(kcp.sndBufCount, 0);
  assertEquals(kcp.check(2041), 2041);
  assertEquals(updateOut(kcp, 2041).map(toHex), [toHex(s2c[3])], "ACK sn2 wnd1023 una3");
  kcp.read();

  assertEquals(feed(kcp, c2s[3], 2043), 0);
  kcp.read();
  const due = kcp.check(2043);
  // The tick scheduled by the first flush (2037, default 100 ms interval) still stands, as in
  // kcp-go; the real server's ACK also came ~100 ms after the FIN.
  assertEquals(due, 2137);
  assertEquals(updateOut(kcp, due).map(toHex), [toHex(s2c[4])], "ACK sn3 wnd1024 una4");
  assertEquals(kcp.check(due), Infinity, "nothing left to do");
});

Deno.test("golden new_ka: replaying the client's datagrams into our server", () => {
  const c = loadCapture("new_ka.jsonl");
  const { kcp, snmp } = newKcp(CONV_KA, { mtu: 1350, sndWnd: 1024, rcvWnd: 1024, ...fast });
  const delivered: Uint8Array[] = [];
  const acks: string[] = [];
  for (const d of c) {
    if (d.dir !== "C2S" || d.dropped) continue;
    assertEquals(feed(kcp, d.bytes, d.t), 0);
    // Our ACKs go out at the next tick; run it at once.
    for (const s of segmentsOf(updateOut(kcp, kcp.check(d.t)))) {
      if (s.cmd === KcpCmd.Ack) acks.push(`${s.sn}/${s.ts}/${s.una}`);
      assert(s.cmd !== KcpCmd.Push, "the server wrote nothing");
    }
    const r = kcp.read();
    if (r) delivered.push(r);
  }
  const stream = concat(delivered);
  assertEquals(toHex(stream), toHex(streamOf(dir(c, "C2S"))));
  const frames = smuxFrames(stream);
  assertEquals(frames.map((f) => f.cmd), [0, 2, 4, 3, 3, 3, 1], "SYN PSH UPD NOP NOP NOP FIN");
  assert(frames.every((f) => f.ver === 2 && (f.cmd === 3 || f.sid === 3)));

  // Every ACK the real server sent for a client PUSH (sn, echoed ts, una) is one we sent too.
  for (const s of segmentsOf(dir(c, "S2C"))) {
    if (s.cmd !== KcpCmd.Ack) continue;
    assert(acks.includes(`${s.sn}/${s.ts}/${s.una}`), `missing ACK ${s.sn}/${s.ts}/${s.una}`);
  }
  assertEquals(snmp.InSegs, segmentsOf(dir(c, "C2S")).length);
  assertEquals(snmp.RepeatSegs, 0);
});

Deno.test("golden new_ka: replaying the server's datagrams into our client", () => {
  const c = loadCapture("new_ka.jsonl");
  const { kcp } = newKcp(CONV_KA, { mtu: 1350, sndWnd: 128, rcvWnd: 512, ...fast });
  const delivered: Uint8Array[] = [];
  for (const d of c) {
    if (d.dir !== "S2C") continue;
    assertEquals(feed(kcp, d.bytes, d.t), 0);
    for (const s of segmentsOf(updateOut(kcp, kcp.check(d.t)))) {
      assertEquals(s.cmd, KcpCmd.Ack);
      assertEquals(s.wnd, 512 - kcp.rcvQueueCount);
      // The echoed ts is the server's clock from the PUSH being acknowledged.
      const push = segmentsOf(dir(c, "S2C")).find((p) => p.cmd === KcpCmd.Push && p.sn === s.sn);
      assertEquals(s.ts, push!.ts);
    }
    const r = kcp.read();
    if (r) delivered.push(r);
  }
  const stream = concat(delivered);
  assertEquals(toHex(stream), toHex(streamOf(dir(c, "S2C"))));
  assertEquals(smuxFrames(stream).map((f) => f.cmd), [4, 2, 3, 3, 3, 3], "UPD PSH NOP×4");
});
