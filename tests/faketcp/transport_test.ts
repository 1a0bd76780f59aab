/**
 * Our fake-TCP transport against itself on loopback (needs root: raw sockets).
 */

import { PacketBatch, PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import {
  type FakeTcpDialSocket,
  FakeTcpListenSocket,
  faketcpStage,
  FakeTcpTransport,
  fakeTcpUnavailableReason,
} from "../../transports/faketcp.ts";
import {
  pseudoHeaderSum,
  putChecksum,
  tcpChecksum,
  TcpFlags,
  writeTcpHeader,
} from "../../transports/faketcp/segment.ts";
import { C, loadLibc } from "../../transports/libc.ts";
import { sharedPoller } from "../../transports/poller.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { resetConnections } from "../support/net.ts";
import { missing } from "../support/requires.ts";
import { Collector } from "../transports/helpers.ts";
import { quietPort, socketInodes, stillOpen } from "./ports.ts";
import { WireCapture } from "./wire_capture.ts";

const ignore = missing("root");
const SOCKBUF = { sockbuf: 1 << 22 };

/** A seeded payload: `size` bytes, first four say which flow and which datagram. */
function payload(flow: number, i: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = (flow * 7919 + i * 104729 + 1) >>> 0;
  for (let k = 0; k < size; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[k] = x >>> 24;
  }
  if (size >= 4) b.set([flow, i >>> 8, i & 0xff, 0xfa], 0);
  return b;
}

function batchOf(pool: PacketPool, datagrams: Uint8Array[], peer?: PeerAddress): PacketBatch {
  const b = new PacketBatch();
  for (const d of datagrams) {
    const p = pool.from(d);
    if (peer) p.peer = peer;
    b.push(p);
  }
  return b;
}

/** Echoes every datagram the listening socket gets back to its sender. */
function echo(server: FakeTcpListenSocket): { seen: Map<string, number> } {
  const seen = new Map<string, number>();
  server.receive((batch) => {
    const out = new PacketBatch();
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      seen.set(p.peer!.key, (seen.get(p.peer!.key) ?? 0) + 1);
      out.push(p); // p.peer stays: the reply goes back on its flow
    }
    batch.clear();
    server.send(out);
  });
  return { seen };
}

async function exchange(listenHost: string, dialHosts: string[], perFlow: number) {
  const pool = new PacketPool();
  const transport = new FakeTcpTransport({ pool });
  const server = await transport.listen(listenHost, quietPort(), SOCKBUF);
  const { seen } = echo(server);
  const clients: FakeTcpDialSocket[] = [];
  for (const h of dialHosts) clients.push(await transport.dial(h, server.localAddr.port, SOCKBUF));
  const collectors = clients.map((c) => new Collector(c));
  const sent: Uint8Array[][] = [];
  clients.forEach((c, f) => {
    const ds: Uint8Array[] = [];
    for (let i = 0; i < perFlow; i++) ds.push(payload(f, i, 1 + ((i * 331 + f * 97) % 1400)));
    sent.push(ds);
    c.send(batchOf(pool, ds));
  });
  for (const [f, col] of collectors.entries()) {
    const got = await col.waitFor(perFlow);
    assertEquals(got.length, perFlow, `flow ${f} echoes`);
    // Loopback keeps order; every echo is byte-identical and came from the server.
    got.forEach((r, i) => {
      assertEquals(r.data, sent[f][i], `flow ${f} datagram ${i}`);
      assertEquals(r.peer.key, clients[f].remoteAddr.key);
    });
  }
  assertEquals(server.flows.size, clients.length, "one flow per connection");
  for (const c of clients) {
    assertEquals(seen.get(c.localAddr.key), perFlow, `server saw ${c.localAddr.key}`);
    assertEquals([c.stats.txPackets, c.stats.rxPackets, c.stats.dropped], [perFlow, perFlow, 0]);
  }
  const inodes = socketInodes([server, ...clients].flatMap((s) => s.descriptors()));
  assertEquals(
    inodes.length,
    2 * clients.length + (listenHost === "" ? 2 : 1) + 1 + clients.length,
  );
  const total = perFlow * clients.length;
  assertEquals([server.stats.rxPackets, server.stats.txPackets], [total, total]);
  assertEquals([server.stats.dropped, server.stats.accepted], [0, clients.length]);
  for (const c of clients) await c.close();
  await server.close();
  assertEquals(sharedPoller().running, false, "no epoll_wait left pending");
  assertEquals(stillOpen(inodes), [], "every descriptor closed");
  assertEquals(server.descriptors().length + clients[0].descriptors().length, 0);
  return { server, clients };
}

Deno.test({
  name: "faketcp: IPv4 loopback, three flows, datagrams of 1..1400 bytes both ways",
  ignore,
  fn: async () => {
    const { clients } = await exchange("127.0.0.1", ["127.0.0.1", "127.0.0.1", "127.0.0.1"], 60);
    assertEquals(new Set(clients.map((c) => c.localAddr.port)).size, 3);
  },
});

Deno.test({
  name: "faketcp: IPv6 loopback, two flows",
  ignore,
  fn: async () => {
    const { server } = await exchange("::1", ["::1", "[::1]"], 40);
    assertEquals(server.localAddr.key.startsWith("[::1]:"), true);
  },
});

Deno.test({
  name: "faketcp: a wildcard listener serves IPv4 and IPv6 peers on one socket",
  ignore,
  fn: async () => {
    const { server, clients } = await exchange("", ["127.0.0.1", "::1"], 30);
    assertEquals(server.localAddr.key.startsWith("[::]:"), true);
    assertEquals(clients[0].remoteAddr.family, "ipv4");
    assertEquals(clients[1].remoteAddr.family, "ipv6");
  },
});

Deno.test({
  name:
    "faketcp: on the wire, the kernel's handshake, then PSH+ACK only (with -dscp), no kernel ACKs; RST on close",
  ignore,
  fn: async () => {
    const pool = new PacketPool();
    const transport = new FakeTcpTransport({ pool });
    const server = await transport.listen("127.0.0.1", quietPort(), { ...SOCKBUF, dscp: 46 });
    const port = server.localAddr.port;
    const wire = new WireCapture("tcp", port);
    echo(server);
    const client = await transport.dial("127.0.0.1", port, { ...SOCKBUF, dscp: 10 });
    const col = new Collector(client);
    for (let round = 0; round < 5; round++) {
      client.send(batchOf(pool, [payload(0, round, 300), payload(0, round + 100, 1200)]));
      await col.waitFor(2 * (round + 1));
    }
    // Give a delayed ACK (40 ms on Linux) every chance to show up.
    await new Promise((r) => setTimeout(r, 250));
    await client.close();
    await server.close();
    await new Promise((r) => setTimeout(r, 50));
    // Only this flow: another test's late segments may use the same port as a source.
    const cport = client.localAddr.port;
    const pkts = (await wire.stop()).filter((p) =>
      (p.sport === port && p.dport === cport) || (p.sport === cport && p.dport === port)
    );
    const { SYN, ACK, PSH, RST } = TcpFlags;
    const flags = pkts.map((p) => p.flags);
    assertEquals(flags.slice(0, 3), [SYN, SYN | ACK, ACK], "the kernel's handshake");
    const data = pkts.filter((p) => p.flags === (PSH | ACK));
    assertEquals(data.length, 20, "10 datagrams each way");
    assert(data.every((p) => p.ttl === 64), "datagrams leave with the default TTL");
    // -dscp applies to the datagrams (the raw sockets), as tcpraw's SetDSCP does.
    assert(data.every((p) => p.tos === (p.sport === port ? 46 << 2 : 10 << 2)), "DSCP");
    const rest = pkts.slice(3).filter((p) => p.flags !== (PSH | ACK));
    assert(
      rest.every((p) => (p.flags & RST) !== 0),
      `only resets besides data: ${JSON.stringify(rest)}`,
    );
    assert(
      rest.length >= 1 && rest.every((p) => p.ttl === 64),
      `closing restores TTL first: ${JSON.stringify(rest)}`,
    );
    assertEquals(
      pkts.filter((p) => p.flags === ACK).length,
      1,
      "no kernel ACK after the handshake",
    );
  },
});

Deno.test({
  name: "faketcp: dialling a port nobody listens on fails with one line, leaving nothing open",
  ignore,
  fn: async () => {
    const transport = new FakeTcpTransport();
    const probe = await transport.listen("127.0.0.1", 0);
    const port = probe.localAddr.port;
    await probe.close();
    const e = await assertRejects(() => transport.dial("127.0.0.1", port));
    assertEquals(e.message, `dial tcp 127.0.0.1:${port}: Connection refused (errno 111)`);
    assertEquals(
      [sharedPoller().size, sharedPoller().running],
      [0, false],
      "raw socket unregistered",
    );
  },
});

Deno.test({
  name: "faketcp: 200 connections reset before accept; the listener keeps accepting, silently",
  ignore,
  fn: async () => {
    const pool = new PacketPool();
    const lines: string[] = [];
    const transport = new FakeTcpTransport({ pool, log: (l) => lines.push(l) });
    const server = await transport.listen("127.0.0.1", quietPort(), SOCKBUF);
    echo(server);
    resetConnections(server.localAddr.port, 200);
    const client = await transport.dial("127.0.0.1", server.localAddr.port, SOCKBUF);
    const col = new Collector(client);
    client.send(batchOf(pool, [payload(2, 0, 500), payload(2, 1, 900)]));
    const got = await col.waitFor(2);
    assertEquals(got.map((r) => r.data), [payload(2, 0, 500), payload(2, 1, 900)]);
    const st = server.stats;
    // The storm was over before the event loop ran: every reset connection was accepted already
    // closed (getpeername: ENOTCONN) and dropped; the client's is the one attached.
    assertEquals([st.accepted, st.acceptGone], [1, 200], JSON.stringify(st));
    assertEquals(st.acceptErrors, 0);
    assertEquals(lines, []);
    await client.close();
    await server.close();
  },
});

Deno.test({
  name: "faketcp: a listener's port is taken while it runs (kernel TCP), and free after close",
  ignore,
  fn: async () => {
    const transport = new FakeTcpTransport();
    const a = await transport.listen("127.0.0.1", 0);
    const e = await assertRejects(() => transport.listen("127.0.0.1", a.localAddr.port));
    assert(e.message.includes("Address already in use"), e.message);
    await a.close();
    const b = await transport.listen("127.0.0.1", a.localAddr.port);
    assertEquals(b.localAddr.port, a.localAddr.port);
    await b.close();
  },
});

Deno.test({
  name: "faketcp: data on a flow without a kernel connection is counted, not delivered (orphan)",
  ignore,
  fn: async () => {
    const transport = new FakeTcpTransport();
    const server = await transport.listen("127.0.0.1", quietPort(), SOCKBUF);
    const col = new Collector(server);
    // A hand-built PSH segment from a port with no connection behind it.
    const libc = loadLibc();
    const raw = libc.symbols.socket(C.AF_INET, C.SOCK_RAW | C.SOCK_CLOEXEC, C.IPPROTO_TCP);
    assert(raw >= 0);
    const seg = new Uint8Array(20 + 30).fill(7);
    writeTcpHeader(seg, 0, 61234, server.localAddr.port, 1, 1, TcpFlags.PSH | TcpFlags.ACK, 40000);
    const lo = new Uint8Array([127, 0, 0, 1]);
    putChecksum(
      seg,
      0,
      tcpChecksum(pseudoHeaderSum(lo, lo), seg, 0, 20, new DataView(seg.buffer), 20, 50),
    );
    const sa = new Uint8Array(16);
    sa[0] = C.AF_INET;
    sa.set(lo, 4);
    assertEquals(Number(libc.symbols.sendto(raw, seg, 50n, 0, sa, 16)), 50);
    libc.symbols.close(raw);
    const deadline = performance.now() + 3000;
    while (server.stats.rxOrphan === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(server.stats.rxOrphan, 1);
    assertEquals(col.got.length, 0);
    assertEquals(server.flows.get("127.0.0.1:61234")?.connected, false);
    // Nothing can be sent to it either.
    const b = new PacketBatch();
    const p = new PacketPool().from(new Uint8Array(10));
    p.peer = server.flows.get("127.0.0.1:61234")!.peer;
    b.push(p);
    server.send(b);
    assertEquals([server.stats.txNoFlow, server.stats.txPackets], [1, 0]);
    await server.close();
  },
});

Deno.test({
  name: "faketcp: idle flows expire (kernel connection reset), later data is an orphan's",
  ignore,
  fn: async () => {
    const pool = new PacketPool();
    const transport = new FakeTcpTransport({ pool, flowIdleMs: 60000 });
    const server = await transport.listen("127.0.0.1", quietPort(), SOCKBUF);
    const col = new Collector(server);
    const client = await transport.dial("127.0.0.1", server.localAddr.port, SOCKBUF);
    client.send(batchOf(pool, [payload(1, 1, 100)]));
    await col.waitFor(1);
    server.expireIdle(performance.now() + 30000);
    assertEquals(server.flows.size, 1, "not idle long enough");
    server.expireIdle(performance.now() + 61000);
    assertEquals([server.flows.size, server.stats.flowsExpired], [0, 1]);
    client.send(batchOf(pool, [payload(1, 2, 100)]));
    const deadline = performance.now() + 3000;
    while (server.stats.rxOrphan === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals([server.stats.rxOrphan, col.got.length], [1, 1]);
    await client.close();
    await server.close();
  },
});

Deno.test({
  name: "faketcp: close is idempotent, works from the handler, and sends after it are counted",
  ignore,
  fn: async () => {
    const pool = new PacketPool();
    const transport = new FakeTcpTransport({ pool });
    const server = await transport.listen("127.0.0.1", 0);
    const client = await transport.dial("127.0.0.1", server.localAddr.port);
    let closing: Promise<void> | null = null;
    server.receive((batch) => {
      batch.releaseAll();
      closing ??= server.close();
    });
    client.send(batchOf(pool, [new Uint8Array(50)]));
    const deadline = performance.now() + 3000;
    while (closing === null && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(closing !== null, "the handler ran");
    await closing;
    await server.close();
    await client.close();
    await client.close();
    client.send(batchOf(pool, [new Uint8Array(5)]));
    assertEquals([client.stats.txErrors, client.closed, server.closed], [1, true, true]);
    assertEquals(pool.available, pool.created, "every packet back in the pool");
    assertEquals(sharedPoller().running, false);
  },
});

Deno.test({
  name: "faketcp: payloads before receive() are dropped and counted; oversize ones too",
  ignore,
  fn: async () => {
    const pool = new PacketPool();
    const transport = new FakeTcpTransport({ pool, maxDatagram: 100 });
    const server = await transport.listen("127.0.0.1", quietPort());
    const client = await transport.dial("127.0.0.1", server.localAddr.port);
    client.send(batchOf(pool, [new Uint8Array(10)]));
    let deadline = performance.now() + 3000;
    while (server.stats.rxNoHandler === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(server.stats.rxNoHandler, 1);
    const col = new Collector(server);
    client.send(batchOf(pool, [new Uint8Array(101), new Uint8Array(100)]));
    await col.waitFor(1);
    deadline = performance.now() + 1000;
    while (server.stats.rxOversize === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals([server.stats.rxOversize, col.got[0].data.length], [1, 100]);
    assertEquals(server.stats.dropped, 2);
    await client.close();
    await server.close();
  },
});

Deno.test({
  name: "faketcp: the stage definition makes the transport; the probe says it can run here",
  ignore,
  fn: async () => {
    assertEquals([faketcpStage.name, faketcpStage.kind, faketcpStage.role], [
      "faketcp",
      "boundary",
      "transport",
    ]);
    const pool = new PacketPool();
    const logs: string[] = [];
    const t = faketcpStage.create({}, {
      role: "server",
      pool,
      snmp: new Snmp(),
      log: (l) => logs.push(l),
    });
    assert(t instanceof FakeTcpTransport);
    const s = await t.listen("127.0.0.1", 0);
    assert(s instanceof FakeTcpListenSocket);
    await s.close();
    assertEquals(fakeTcpUnavailableReason(), null);
  },
});
