/**
 * The sans-IO {@link Connection} on the simulator's fake clock: bytes through FEC and a plugin
 * under loss, back-pressure both ways (smux v1 session buffer, v2 stream window), close
 * semantics, keepalive, protocol and stream-stage errors from a raw KCP peer, and input order
 * behind an asynchronous packet stage.
 */

import padding from "../../examples/padding.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { type PacketStage, StageError } from "../../pipeline/stage.ts";
import type { Connection } from "../../runtime/connection.ts";
import { fecStage } from "../../transforms/fec/mod.ts";
import { Kcp } from "../../transforms/kcp/arq.ts";
import { CMD_PSH, CMD_SYN, encodeFrame, MAX_PAYLOAD } from "../../transforms/smux/frame.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { prng } from "../support/memory_socket.ts";
import { type LinkConfig, Simulator } from "../sim/link.ts";
import {
  concat,
  ConnEnd,
  ctxFor,
  FAST_KCP,
  makeConnection,
  pattern,
  RawKcpEnd,
  sameBytes,
} from "./support.ts";

const LINK: LinkConfig = { delay: 10 };

function total(parts: Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** Reads everything buffered on stream `id` into `into`. */
function readInto(c: Connection, id: number, into: Uint8Array[]): void {
  for (let chunk; (chunk = c.read(id)) !== null;) into.push(chunk);
}

Deno.test("connection: bytes cross a lossy link both ways through FEC and a padding plugin", () => {
  const pool = new PacketPool();
  const cs = new Snmp(), ss = new Snmp();
  const stages = (role: "client" | "server", snmp: Snmp) => {
    const ctx = ctxFor(role, pool, snmp);
    return [
      fecStage.create({ dataShards: 4, parityShards: 2 }, ctx),
      padding.create({ max: 16 }, ctx),
    ];
  };
  const client = makeConnection("client", { pool, snmp: cs, packets: stages("client", cs) });
  const server = makeConnection("server", { pool, snmp: ss, packets: stages("server", ss) });
  const a = new ConnEnd(client), b = new ConnEnd(server);
  const up = pattern(1, 0, 300_000), down = pattern(2, 0, 100_000);
  const id = client.openStream();
  let written = 0, sid = -1, echoed = false;
  const got: Uint8Array[] = [], back: Uint8Array[] = [];
  a.beforeTransmit = () => {
    while (written < up.length && client.queuedBytes(id) < 65536) {
      const n = Math.min(10_000, up.length - written);
      client.write(id, up.slice(written, written + n));
      written += n;
    }
    readInto(client, id, back);
  };
  b.beforeTransmit = () => {
    if (sid < 0) sid = server.accept();
    if (sid < 0) return;
    readInto(server, sid, got);
    if (!echoed && total(got) === up.length) {
      server.write(sid, down.slice());
      echoed = true;
    }
  };
  const sim = new Simulator(42, a, b, { ...LINK, loss: 0.1 });
  const ok = sim.runUntil(() => total(back) === down.length, 300_000);
  assert(ok, `only ${total(got)} up and ${total(back)} down by t=${sim.now}`);
  assertEquals(sid, id, "the server accepted the client's stream");
  assert(sameBytes(concat(got), up), "upload differs");
  assert(sameBytes(concat(back), down), "download differs");
  assert(sim.stats(0).lost + sim.stats(1).lost > 0, "the link dropped nothing");
  assert(cs.FECRecovered + ss.FECRecovered > 0, "FEC recovered nothing");
  // Each end has counters of its own: the per-connection figures are all of them.
  assertEquals([client.fecRecovered, server.fecRecovered], [cs.FECRecovered, ss.FECRecovered]);
  assertEquals([client.kcp.retransmits, server.kcp.retransmits], [cs.RetransSegs, ss.RetransSegs]);
  assert(cs.RetransSegs + ss.RetransSegs > 0, "nothing was retransmitted");
  client.close(sim.now);
  server.close(sim.now);
  client.dispose();
  server.dispose();
  assert(client.closed && server.closed);
});

Deno.test("connection: smux v1: unread data fills the session buffer, then KCP stops the sender", () => {
  const pool = new PacketPool();
  const smuxbuf = 100_000;
  const smux = {
    version: 1 as const,
    maxReceiveBuffer: smuxbuf,
    maxStreamBuffer: smuxbuf,
    maxFrameSize: 8192,
  };
  const ss = new Snmp();
  const client = makeConnection("client", { pool, smux });
  const server = makeConnection("server", { pool, smux, snmp: ss });
  const a = new ConnEnd(client), b = new ConnEnd(server);
  const data = pattern(3, 0, 1_000_000);
  const id = client.openStream();
  client.write(id, data.slice());
  let sid = -1;
  let reading = false;
  const got: Uint8Array[] = [];
  b.beforeTransmit = () => {
    if (sid < 0) sid = server.accept();
    if (reading) readInto(server, sid, got);
  };
  const sim = new Simulator(1, a, b, LINK);
  sim.run(3000);
  assert(sid > 0, "the stream was accepted");
  assert(client.queuedBytes(id) > 0, "the writer's bytes all left although nobody reads");
  const buffered = server.smux.bufferedBytes;
  assert(buffered >= smuxbuf && buffered <= smuxbuf + MAX_PAYLOAD, `smux holds ${buffered}`);
  assert(!server.smux.wantsInput(), "smux still takes input");
  assert(server.kcp.rcvQueueCount <= FAST_KCP.rcvWnd, "KCP took more than its window");
  const taken = ss.BytesReceived, queued = client.queuedBytes(id), sent = sim.stats(0).sentBytes;
  sim.run(6000);
  assertEquals(ss.BytesReceived, taken, "smux took more from KCP");
  assertEquals(client.queuedBytes(id), queued, "the writer's queue moved");
  // Zero-window probes and keepalives only: far less than one window of data segments.
  assert(sim.stats(0).sentBytes - sent < 20 * 1400, `${sim.stats(0).sentBytes - sent} bytes sent`);
  reading = true;
  sim.wake(1);
  assert(sim.runUntil(() => total(got) === data.length, 120_000), `read ${total(got)}`);
  assert(sameBytes(concat(got), data), "bytes differ");
  assertEquals(client.queuedBytes(id), 0);
});

Deno.test("connection: smux v2: a stream nobody reads stops its sender; others keep flowing", () => {
  const pool = new PacketPool();
  const smux = { version: 2 as const, maxStreamBuffer: 65536 };
  const client = makeConnection("client", { pool, smux });
  const server = makeConnection("server", { pool, smux });
  const a = new ConnEnd(client), b = new ConnEnd(server);
  const stalled = client.openStream();
  client.write(stalled, pattern(1, 0, 2_000_000));
  const accepted: number[] = [];
  const reads = new Map<number, Uint8Array[]>();
  let readStalled = false;
  b.beforeTransmit = () => {
    for (let id; (id = server.accept()) >= 0;) {
      accepted.push(id);
      reads.set(id, []);
    }
    for (const id of accepted) {
      if (id !== stalled || readStalled) readInto(server, id, reads.get(id)!);
    }
  };
  const sim = new Simulator(2, a, b, LINK);
  sim.run(3000);
  assert(client.queuedBytes(stalled) > 0, "the write went through although nobody reads");
  const held = server.readableBytes(stalled);
  assert(held > 0 && held <= 262144, `server holds ${held}, at most the initial window`);
  const other = client.openStream();
  const otherData = pattern(2, 0, 300_000);
  client.write(other, otherData.slice());
  client.closeStream(other);
  sim.wake(0);
  assert(
    sim.runUntil(() => server.readEnded(other) && reads.has(other), 60_000),
    "the other stream did not finish",
  );
  assert(sameBytes(concat(reads.get(other)!), otherData), "the other stream's bytes differ");
  assert(client.queuedBytes(stalled) > 0, "the stalled stream drained without a reader");
  readStalled = true;
  sim.wake(1);
  assert(
    sim.runUntil(() => total(reads.get(stalled)!) === 2_000_000, 120_000),
    `read ${total(reads.get(stalled)!)}`,
  );
  assert(sameBytes(concat(reads.get(stalled)!), pattern(1, 0, 2_000_000)));
});

Deno.test("connection: a full send window holds data in smux until ACKs come back", () => {
  const pool = new PacketPool();
  const client = makeConnection("client", { pool });
  const server = makeConnection("server", { pool });
  const a = new ConnEnd(client), b = new ConnEnd(server);
  const id = client.openStream();
  client.write(id, pattern(4, 0, 1_000_000));
  client.pushOut();
  // Before anything was acknowledged KCP takes one send window, smux keeps the rest.
  assert(!client.kcp.writable(), "KCP's window is not full");
  const first = client.queuedBytes(id);
  assert(first > 0 && first < 1_000_000, `smux holds ${first}`);
  const sim = new Simulator(3, a, b, { delay: 50 });
  sim.run(20);
  assertEquals(client.queuedBytes(id), first, "bytes left smux before any ACK came back");
  sim.run(2000);
  assert(client.queuedBytes(id) < first, "ACKs did not reopen the window");
});

Deno.test("connection: FIN follows queued data; the peer reads it all; writes after its FIN fail", () => {
  const pool = new PacketPool();
  const client = makeConnection("client", { pool, smux: { version: 2 } });
  const server = makeConnection("server", { pool, smux: { version: 2 } });
  const sim = new Simulator(4, new ConnEnd(client), new ConnEnd(server), LINK);
  const data = pattern(5, 0, 200_000);
  const id = client.openStream();
  client.write(id, data.slice());
  client.closeStream(id); // before a byte left: FIN still goes after the data
  assertThrows(() => client.write(id, Uint8Array.of(1)), StageError, "stream closed");
  sim.wake(0);
  let sid = -1;
  const got: Uint8Array[] = [];
  const done = () => {
    if (sid < 0) sid = server.accept();
    if (sid >= 0) readInto(server, sid, got);
    return sid >= 0 && server.readEnded(sid);
  };
  assert(sim.runUntil(done, 60_000), `read ${total(got)}`);
  assert(sameBytes(concat(got), data), "bytes differ");
  assertEquals(server.readFailure(sid), null);
  assert(server.peerClosed(sid));
  assertEquals(server.writeError(sid), "stream closed by peer");
  assertThrows(() => server.write(sid, Uint8Array.of(1)), StageError, "closed by peer");
  assertEquals(server.writeFailure(sid), null, "a normal close is not a write failure");
  // Both FINs exchanged: the stream leaves both sessions.
  server.closeStream(sid);
  sim.wake(1);
  assert(sim.runUntil(() => !client.hasStream(id) && !server.hasStream(sid), 10_000));
});

Deno.test("connection: after close, buffered bytes are still read; writes, opens and new input fail", () => {
  const pool = new PacketPool();
  const client = makeConnection("client", { pool });
  const server = makeConnection("server", { pool });
  const b = new ConnEnd(server);
  const sim = new Simulator(5, new ConnEnd(client), b, LINK);
  const id = client.openStream();
  client.write(id, new TextEncoder().encode("before close"));
  sim.wake(0);
  let sid = -1;
  assert(sim.runUntil(() =>
    (sid = sid >= 0 ? sid : server.accept()) >= 0 &&
    server.readableBytes(sid) === 12, 10_000));
  server.close(sim.now);
  assertEquals(server.closeInfo, { reason: "session closed", error: false });
  assertEquals(new TextDecoder().decode(server.read(sid)!), "before close");
  assert(server.readEnded(sid), "reads did not end after the buffered bytes");
  assertEquals(server.readFailure(sid), null, "a local close is not a read failure");
  assertThrows(() => server.write(sid, Uint8Array.of(1)), StageError, "session closed");
  assertThrows(() => server.openStream(), StageError, "session closed");
  assertEquals(server.pollTimeout(), Infinity);
  // Input after close is released, not processed.
  client.write(id, Uint8Array.of(1, 2, 3));
  sim.wake(0);
  sim.run(sim.now + 500);
  assertEquals(server.readableBytes(sid), 0);
  server.dispose();
});

Deno.test("connection: keepalive NOPs keep an idle connection up; a silent peer times out", () => {
  const pool = new PacketPool();
  const smux = { keepAliveInterval: 1000, keepAliveTimeout: 3000 };
  const client = makeConnection("client", { pool, smux });
  const server = makeConnection("server", { pool, smux });
  const a = new ConnEnd(client), b = new ConnEnd(server);
  const id = client.openStream();
  const sim = new Simulator(6, a, b, LINK);
  sim.run(20_000);
  assert(!client.closed && !server.closed, "an idle connection closed");
  assert(server.smux.stats.framesIn >= 15, `NOPs arrived: ${server.smux.stats.framesIn}`);
  const sid = server.accept();
  assertEquals(sid, id);
  // The server hears nothing from now on.
  b.deaf = true;
  // smux checks once per timeout period: closed within two periods.
  assert(sim.runUntil(() => server.closed, 20_000 + 2 * 3000 + 100), "no timeout");
  assert(!client.closed, "the side still hearing NOPs timed out");
  assertEquals(server.closeInfo, { reason: "keepalive timeout", error: true });
  assert(server.readEnded(sid));
  assertEquals(server.readFailure(sid), "smux: keepalive timeout");
  assertEquals(server.pollTimeout(), Infinity);
  // Now the client hears nothing either.
  assert(sim.runUntil(() => client.closed, sim.now + 2 * 3000 + 100), "no timeout");
  assertEquals(client.closeInfo, { reason: "keepalive timeout", error: true });
});

/** A server connection and a raw KCP peer speaking whatever bytes the test writes. */
function rawPeer(spec: { snappy?: boolean; smux?: { version: 1 | 2 } }) {
  const pool = new PacketPool();
  const server = makeConnection("server", { pool, ...spec });
  const raw = new RawKcpEnd(
    new Kcp(0x1234, { ...FAST_KCP, mtu: 1350, snmp: new Snmp() }),
    pool,
  );
  const sim = new Simulator(7, raw, new ConnEnd(server), LINK);
  return { server, raw, sim };
}

Deno.test("connection: a protocol error closes it (no throw); buffered bytes first, then reads fail", () => {
  const { server, raw, sim } = rawPeer({ smux: { version: 2 } });
  raw.kcp.send(
    concat([encodeFrame(2, CMD_SYN, 3), encodeFrame(2, CMD_PSH, 3, Uint8Array.of(1, 2))]),
  );
  sim.wake(0);
  let sid = -1;
  assert(sim.runUntil(() => (sid = server.accept()) >= 0, 5000));
  raw.kcp.send(encodeFrame(1, CMD_SYN, 5)); // a -smuxver mismatch
  sim.wake(0);
  assert(sim.runUntil(() => server.closed, 5000), "the connection stayed open");
  assertEquals(server.closeInfo, {
    reason: "invalid protocol: version 1 frame on a version 2 session",
    error: true,
  });
  assertEquals(Array.from(server.read(sid)!), [1, 2], "buffered bytes first");
  assert(server.readEnded(sid));
  assert(server.readFailure(sid)!.includes("invalid protocol"), String(server.readFailure(sid)));
});

Deno.test("connection: corrupt snappy input closes it with the snappy error", () => {
  const { server, raw, sim } = rawPeer({ snappy: true });
  raw.kcp.send(new TextEncoder().encode("not snappy at all"));
  sim.wake(0);
  assert(sim.runUntil(() => server.closed, 5000), "the connection stayed open");
  const info = server.closeInfo!;
  assert(info.error && info.reason.includes("snappy"), info.reason);
});

/** The sn of a datagram's first KCP segment. */
function firstSn(p: { buffer: Uint8Array; start: number }): number {
  const b = p.buffer, at = p.start + 12;
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

Deno.test("connection: input keeps its order behind an asynchronous packet stage", async () => {
  const pool = new PacketPool();
  const random = prng(11);
  // Resolves each batch after a random delay: run concurrently, batches would overtake.
  const slow: PacketStage = {
    overhead: 0,
    encode() {},
    decode: () => new Promise((r) => setTimeout(r, Math.floor(random() * 5))),
  };
  const seen: number[] = [];
  const recorder: PacketStage = {
    overhead: 0,
    encode() {},
    decode(batch) {
      for (let i = 0; i < batch.length; i++) seen.push(firstSn(batch.packets[i]));
    },
  };
  let wakes = 0;
  const client = makeConnection("client", { pool });
  const server = makeConnection("server", {
    pool,
    packets: [recorder, slow],
    onWake: () => wakes++,
  });
  const id = client.openStream();
  const data = pattern(6, 0, 20_000);
  client.write(id, data.slice());
  const out = new PacketBatch();
  client.pollTransmit(0, out);
  assert(out.length >= 10, `only ${out.length} datagrams`);
  const sent = out.packets.slice(0, out.length).map(firstSn);
  let first: Promise<void> | undefined;
  for (let i = 0; i < out.length; i++) {
    const one = new PacketBatch();
    one.push(out.packets[i]);
    const r = server.handleDatagrams(one, 1);
    if (i === 0) first = r as Promise<void>;
    else assertEquals(r, undefined, "a later batch did not queue behind the pending one");
  }
  out.clear();
  assert(first instanceof Promise, "an asynchronous stage gave no promise");
  await first;
  assertEquals(seen, sent, "datagrams reached KCP out of order");
  assertEquals(wakes, 1);
  const sid = server.accept();
  assertEquals(sid, id);
  const got: Uint8Array[] = [];
  readInto(server, sid, got);
  assert(sameBytes(concat(got), data), "bytes differ");
  // The next input runs synchronously again.
  client.handleTimeout(client.pollTimeout());
  server.pollTransmit(2, out);
  assert(out.length > 0, "the server sent no ACK");
  assertEquals(client.handleDatagrams(out, 2), undefined);
});

Deno.test("connection: output keeps KCP's order through an asynchronous packet stage", async () => {
  const pool = new PacketPool();
  const random = prng(12);
  let wakes = 0;
  const slow: PacketStage = {
    overhead: 0,
    encode: () => new Promise((r) => setTimeout(r, Math.floor(random() * 8))),
    decode() {},
  };
  const client = makeConnection("client", { pool, packets: [slow], onWake: () => wakes++ });
  const id = client.openStream();
  const out = new PacketBatch();
  // One write and one transmit at a time: each flush is its own encode, running concurrently.
  for (let i = 0; i < 12; i++) {
    client.write(id, pattern(7, i * 1000, 1000));
    client.pollTransmit(i, out);
    assertEquals(out.length, 0, "an asynchronous encode's output came out at once");
  }
  for (let i = 0; i < 100 && wakes < 12; i++) await new Promise((r) => setTimeout(r, 5));
  assertEquals(wakes, 12);
  client.pollTransmit(20, out);
  const sns = out.packets.slice(0, out.length).map(firstSn);
  assertEquals(sns, [...sns].sort((x, y) => x - y), "datagrams left out of KCP's order");
  assertEquals(out.length, 12);
  out.releaseAll();
});

Deno.test("connection: ACKs advertise the receive window left after smux took the input", () => {
  const pool = new PacketPool();
  const kcp = { ...FAST_KCP, ackNoDelay: true };
  const client = makeConnection("client", { pool, kcp });
  const server = makeConnection("server", { pool, kcp });
  const id = client.openStream();
  client.write(id, pattern(8, 0, 100_000));
  const out = new PacketBatch();
  client.pollTransmit(0, out);
  assert(out.length >= 20, `only ${out.length} datagrams`);
  // One batch, as a socket delivers them; nobody has read yet, but smux has room for it all.
  server.handleDatagrams(out, 1);
  server.pollTransmit(1, out);
  assert(out.length > 0, "no ACK went out");
  for (let i = 0; i < out.length; i++) {
    const p = out.packets[i];
    const wnd = p.buffer[p.start + 6] | (p.buffer[p.start + 7] << 8);
    assertEquals(wnd, FAST_KCP.rcvWnd, "an ACK advertised a window the input had filled");
  }
  out.releaseAll();
});
