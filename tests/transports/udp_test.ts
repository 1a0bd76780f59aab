import { PacketBatch, PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { C, loadLibc } from "../../transports/libc.ts";
import { sharedPoller } from "../../transports/poller.ts";
import { UdpPeer } from "../../transports/sockaddr.ts";
import { type UdpSocket, UdpTransport } from "../../transports/udp.ts";
import { udpTransport } from "../../transports/udp_stage.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { batchOf, Collector, payloads, turns } from "./helpers.ts";

const MiB = 1 << 20;
const readInt = (path: string) => Number(Deno.readTextFileSync(path).trim());

async function pair(t: UdpTransport, host: string) {
  const srv = await t.listen(host, 0, { sockbuf: 4 * MiB });
  const cli = await t.dial(host, srv.localAddr.port, { sockbuf: 4 * MiB });
  return { srv, cli };
}

/** Every test runs with both wake-up sources of the libc transport. */
for (const poller of ["auto", "epoll"] as const) {
  for (const host of ["127.0.0.1", "::1"]) {
    Deno.test(`udp (${poller}): batches both ways on ${host}, in order, peers set`, async () => {
      const pool = new PacketPool();
      const t = new UdpTransport({ poller, pool });
      const { srv, cli } = await pair(t, host);
      try {
        // deno.json turns on --unstable-net, so "auto" runs on Deno's event loop.
        assertEquals([srv.onEventLoop, cli.onEventLoop], [poller === "auto", poller === "auto"]);
        assertEquals(srv.localAddr.hostname, host);
        assertEquals(cli.remoteAddr?.key, srv.localAddr.key);
        const atServer = new Collector(srv), atClient = new Collector(cli);
        const sent = payloads(200, 1350);
        cli.send(batchOf(pool, sent));
        const got = await atServer.waitFor(200);
        assertEquals(got.map((r) => r.data), sent);
        const from = got[0].peer;
        assertEquals(from.hostname, host);
        assertEquals(from.port, cli.localAddr.port);
        assert(got.every((r) => r.peer === from), "one interned peer for every datagram");
        // Echo back through the server: packets addressed by their peer field.
        const back = new PacketBatch();
        for (const r of got) {
          const p = pool.from(r.data);
          p.peer = r.peer;
          back.push(p);
        }
        srv.send(back);
        assertEquals(back.length, 0, "send empties the batch");
        const echoed = await atClient.waitFor(200);
        assertEquals(echoed.map((r) => r.data), sent);
        assertEquals(echoed[0].peer, cli.remoteAddr);
        if (poller === "auto") assertEquals(sharedPoller().size, 0, "the epoll poller is not used");
        assertEquals([cli.stats.txPackets, srv.stats.rxPackets], [200, 200]);
        assertEquals([srv.stats.txBytes, cli.stats.rxBytes], [200 * 1350, 200 * 1350]);
        assertEquals(srv.stats.dropped + cli.stats.dropped, 0);
      } finally {
        await cli.close();
        await srv.close();
      }
      assertEquals(pool.available, pool.created, "every packet back in the pool after close");
    });
  }

  Deno.test(`udp (${poller}): datagrams queued before receive() arrive as one batch`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool, batchSize: 64 });
    const { srv, cli } = await pair(t, "127.0.0.1");
    try {
      cli.send(batchOf(pool, payloads(64, 100)));
      await turns(5); // nothing receives yet, so the kernel queues them
      const c = new Collector(srv);
      await c.waitFor(64);
      assertEquals(c.batchSizes[0], 64);
      assertEquals(srv.stats.rxWakeups, 1);
    } finally {
      await cli.close();
      await srv.close();
    }
  });

  Deno.test(`udp (${poller}): listen on every interface is dual-stack; IPv4 peers shown as IPv4`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    for (const any of ["", "0.0.0.0", "::", "[::]"]) {
      const srv = await t.listen(any, 0);
      assertEquals(srv.family, 6, any);
      assertEquals(srv.localAddr.key, `[::]:${srv.localAddr.port}`);
      assertEquals(srv.getOption(C.IPPROTO_IPV6, C.IPV6_V6ONLY), 0);
      await srv.close();
    }
    const srv = await t.listen("", 0);
    const c4 = await t.dial("127.0.0.1", srv.localAddr.port);
    const c6 = await t.dial("::1", srv.localAddr.port);
    try {
      assertEquals([c4.family, c6.family], [4, 6]);
      const atServer = new Collector(srv), at4 = new Collector(c4);
      c4.send(batchOf(pool, [new Uint8Array([4])]));
      await atServer.waitFor(1);
      c6.send(batchOf(pool, [new Uint8Array([6])]));
      const got = await atServer.waitFor(2);
      assertEquals(got[0].peer.family, "ipv4");
      assertEquals(got[0].peer.key, `127.0.0.1:${c4.localAddr.port}`);
      assertEquals(got[1].peer.family, "ipv6");
      assertEquals(got[1].peer.key, `[::1]:${c6.localAddr.port}`);
      // A reply to the IPv4 peer goes out through the IPv6 socket as IPv4-mapped.
      srv.send(batchOf(pool, [new Uint8Array([44])], got[0].peer));
      const reply = await at4.waitFor(1);
      assertEquals(reply[0].data, new Uint8Array([44]));
      assertEquals(reply[0].peer.key, `127.0.0.1:${srv.localAddr.port}`);
    } finally {
      await c4.close();
      await c6.close();
      await srv.close();
    }
  });

  Deno.test(`udp (${poller}): a dialled socket accepts only its server's exact ip:port`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    const { srv, cli } = await pair(t, "127.0.0.1");
    const third = await t.listen("127.0.0.1", 0);
    try {
      const atClient = new Collector(cli);
      const client: PeerAddress = {
        family: "ipv4",
        hostname: "127.0.0.1",
        port: cli.localAddr.port,
        key: `127.0.0.1:${cli.localAddr.port}`,
      };
      third.send(batchOf(pool, [new Uint8Array([3, 3, 3])]), client); // same IP, other port
      srv.send(batchOf(pool, [new Uint8Array([1])]), client);
      const got = await atClient.waitFor(1);
      await turns(5);
      assertEquals(got.length, 1);
      assertEquals(got[0].data, new Uint8Array([1]));
      assertEquals(got[0].peer, cli.remoteAddr);
      // The dialled socket is connected: the kernel drops the stranger's datagram before us.
      assertEquals([cli.stats.rxForeign, cli.stats.dropped], [0, 0]);
      assertEquals(third.stats.txPackets, 1, "the third party's datagram did leave");
    } finally {
      await third.close();
      await cli.close();
      await srv.close();
    }
  });

  for (const host of ["127.0.0.1", "::1"]) {
    Deno.test(`udp (${poller}): a dialled socket reports a server that is not there (${host}), then works when it is`, async () => {
      const pool = new PacketPool();
      const t = new UdpTransport({ poller, pool });
      const probe = await t.listen(host, 0);
      const port = probe.localAddr.port;
      await probe.close(); // nothing listens on `port` now: loopback answers port-unreachable
      const cli = await t.dial(host, port);
      const events: Array<{ kind: string; peer: string; reason: string; errno: number }> = [];
      const off = cli.onEvent((e) =>
        events.push({ kind: e.kind, peer: e.peer.key, reason: e.reason, errno: e.errno })
      );
      let srv: UdpSocket | null = null;
      try {
        const atClient = new Collector(cli);
        // The ICMP error comes back at once; the kernel reports it on the next receive (the
        // poller wakes for it) or send.
        for (let i = 0; i < 100 && events.length === 0; i++) {
          cli.send(batchOf(pool, [new Uint8Array([i])]));
          await new Promise((r) => setTimeout(r, 20));
        }
        assert(events.length >= 1, "no unreachable event");
        assertEquals(events[0], {
          kind: "unreachable",
          peer: cli.remoteAddr!.key,
          reason: "connection refused",
          errno: 111,
        });
        assertEquals(cli.stats.unreachable, events.length);
        assertEquals(cli.error, null, "receiving goes on");
        // The server comes up on that port: the same socket reaches it and hears the reply.
        srv = await t.listen(host, port);
        const atServer = new Collector(srv);
        cli.send(batchOf(pool, [new Uint8Array([7, 7])]));
        const got = await atServer.waitFor(1);
        assertEquals(got[0].data, new Uint8Array([7, 7]));
        srv.send(batchOf(pool, [new Uint8Array([8])], got[0].peer));
        const back = await atClient.waitFor(1);
        assertEquals(back[0].data, new Uint8Array([8]));
        off();
      } finally {
        await cli.close();
        await srv?.close();
      }
      assertEquals(pool.available, pool.created, "every packet back in the pool");
    });
  }

  Deno.test(`udp (${poller}): -sockbuf and -dscp are set on the socket (read back)`, async () => {
    const t = new UdpTransport({ poller, pool: new PacketPool() });
    const s4 = await t.listen("127.0.0.1", 0, { sockbuf: 4 * MiB, dscp: 46 });
    const s6 = await t.listen("::1", 0, { sockbuf: 4 * MiB, dscp: 46 });
    const d4 = await t.dial("127.0.0.1", 9, { sockbuf: 4 * MiB, dscp: 10 });
    const plain = await t.listen("127.0.0.1", 0);
    try {
      // The kernel reports double what it grants; as root SO_*BUFFORCE passes rmem_max/wmem_max.
      const root = Deno.uid() === 0;
      for (const s of [s4, s6, d4]) {
        const rcv = s.getOption(C.SOL_SOCKET, C.SO_RCVBUF),
          snd = s.getOption(C.SOL_SOCKET, C.SO_SNDBUF);
        if (root) assertEquals([rcv, snd], [8 * MiB, 8 * MiB]);
        else {
          assertEquals(rcv, 2 * Math.min(4 * MiB, readInt("/proc/sys/net/core/rmem_max")));
          assertEquals(snd, 2 * Math.min(4 * MiB, readInt("/proc/sys/net/core/wmem_max")));
        }
      }
      assertEquals(s4.getOption(C.IPPROTO_IP, C.IP_TOS), 46 << 2);
      assertEquals(d4.getOption(C.IPPROTO_IP, C.IP_TOS), 10 << 2);
      assertEquals(s6.getOption(C.IPPROTO_IPV6, C.IPV6_TCLASS), 46);
      assertEquals(plain.getOption(C.IPPROTO_IP, C.IP_TOS), 0);
      assertEquals(
        plain.getOption(C.SOL_SOCKET, C.SO_RCVBUF),
        readInt("/proc/sys/net/core/rmem_default"),
      );
    } finally {
      for (const s of [s4, s6, d4, plain]) await s.close();
    }
  });

  Deno.test(`udp (${poller}): datagrams longer than maxDatagram are dropped and counted`, async () => {
    const pool = new PacketPool();
    const small = new UdpTransport({ poller, pool, maxDatagram: 100 });
    const big = new UdpTransport({ poller, pool });
    const srv = await small.listen("127.0.0.1", 0);
    const srvDefault = await big.listen("127.0.0.1", 0);
    const cli = await big.dial("127.0.0.1", srv.localAddr.port);
    try {
      const c = new Collector(srv), cd = new Collector(srvDefault);
      const sizes = [99, 100, 101, 1000, 1, 100];
      cli.send(batchOf(pool, sizes.map((n) => new Uint8Array(n).fill(n & 255))));
      const got = await c.waitFor(4);
      await turns(5);
      assertEquals(got.map((r) => r.data.length), [99, 100, 1, 100]);
      assertEquals(srv.stats.rxOversize, 2);
      assertEquals(srv.stats.dropped, 2);
      assertEquals(srv.stats.rxPackets, 4);
      // The default limit is kcp-go's 1500-byte receive buffer.
      cli.send(batchOf(pool, [new Uint8Array(1501), new Uint8Array(1500)]), srvDefault.localAddr);
      const gotDefault = await cd.waitFor(1);
      await turns(5);
      assertEquals(gotDefault.map((r) => r.data.length), [1500]);
      assertEquals(srvDefault.stats.rxOversize, 1);
    } finally {
      await cli.close();
      await srv.close();
      await srvDefault.close();
    }
  });

  Deno.test(`udp (${poller}): close() ends a pending receive promptly and releases everything`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    const s = await t.listen("127.0.0.1", 0);
    const c = new Collector(s);
    await turns(2); // the receive call is now sleeping in the kernel on another thread
    assert(s.receiving);
    const closing = s.close();
    assert(s.closed);
    assert(s.close() === closing, "close() is idempotent");
    await closing;
    assert(!s.receiving);
    assert(!sharedPoller().running, "the pending epoll_wait has returned when close() resolves");
    assertEquals(c.got.length, 0);
    assertEquals(s.error, null);
    assertEquals(pool.available, pool.created);
    // Sending on a closed socket drops and releases.
    const b = batchOf(pool, payloads(3, 10));
    s.send(b);
    assertEquals([b.length, s.stats.dropped, s.stats.txErrors], [0, 3, 3]);
    assertEquals(pool.available, pool.created);
  });

  Deno.test(`udp (${poller}): close() from inside the receive handler, and before receive()`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    const { srv, cli } = await pair(t, "127.0.0.1");
    let closing: Promise<void> | null = null;
    let batches = 0;
    srv.receive((batch) => {
      batches++;
      batch.releaseAll();
      closing ??= srv.close();
    });
    cli.send(batchOf(pool, payloads(5, 10)));
    while (closing === null) await turns(1);
    await closing;
    cli.send(batchOf(pool, payloads(5, 10)));
    await turns(5);
    assertEquals(batches, 1);
    await cli.close();
    const never = await t.listen("127.0.0.1", 0);
    await never.close();
    never.receive(() => {
      throw new Error("unreachable");
    });
    assertEquals(pool.available, pool.created);
  });

  Deno.test(`udp (${poller}): many peers are interned once; no growth per datagram`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool, batchSize: 32 });
    const srv = await t.listen("127.0.0.1", 0, { sockbuf: 4 * MiB });
    const clients: UdpSocket[] = [];
    for (let i = 0; i < 30; i++) clients.push(await t.dial("127.0.0.1", srv.localAddr.port));
    try {
      const c = new Collector(srv);
      const round = async (r: number) => {
        for (const cl of clients) cl.send(batchOf(pool, payloads(4, 64, r)));
        await c.waitFor(clients.length * 4 * r);
      };
      await round(1);
      const peers = srv.peers.size, created = pool.created;
      assertEquals(peers, 30);
      for (let r = 2; r <= 6; r++) await round(r);
      assertEquals(srv.peers.size, peers, "no new peers for known sources");
      assertEquals(pool.created, created, "no new packets once the pool is warm");
      const byKey = new Map<string, PeerAddress>();
      for (const g of c.got) {
        const prev = byKey.get(g.peer.key);
        if (prev) assert(prev === g.peer, "same source, same object");
        byKey.set(g.peer.key, g.peer);
      }
      assertEquals(byKey.size, 30);
      assertEquals(
        [...byKey.keys()].sort(),
        clients.map((cl) => `127.0.0.1:${cl.localAddr.port}`).sort(),
      );
    } finally {
      for (const cl of clients) await cl.close();
      await srv.close();
    }
  });

  Deno.test(`udp (${poller}): send to addresses from elsewhere; unsendable ones are counted`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    const srv = await t.listen("127.0.0.1", 0);
    const s4 = await t.listen("127.0.0.1", 0);
    try {
      const c = new Collector(srv);
      const plain: PeerAddress = {
        family: "ipv4",
        hostname: "127.0.0.1",
        port: srv.localAddr.port,
        key: "",
      };
      s4.send(batchOf(pool, [new Uint8Array([1])], plain));
      s4.send(batchOf(pool, [new Uint8Array([2])]), plain);
      s4.send(batchOf(pool, [new Uint8Array([3])], srv.localAddr)); // another socket's peer
      const got = await c.waitFor(3);
      assertEquals(got.map((r) => r.data[0]), [1, 2, 3]);
      assert(srv.localAddr instanceof UdpPeer);
      // No destination, a hostname (not resolved on the hot path), IPv6 on an IPv4 socket.
      const bad: PeerAddress = { family: "ipv4", hostname: "localhost", port: 1, key: "" };
      const six: PeerAddress = { family: "ipv6", hostname: "::1", port: 1, key: "" };
      s4.send(batchOf(pool, [new Uint8Array(1)]));
      s4.send(batchOf(pool, [new Uint8Array(1)], bad));
      s4.send(batchOf(pool, [new Uint8Array(1)], six));
      assertEquals([s4.stats.txErrors, s4.stats.dropped, s4.stats.txPackets], [3, 3, 3]);
    } finally {
      await s4.close();
      await srv.close();
    }
    assertEquals(pool.available, pool.created);
  });

  Deno.test(`udp (${poller}): hostnames resolve through getaddrinfo, IPv4 first`, async () => {
    const t = new UdpTransport({ poller, pool: new PacketPool() });
    assertEquals((await t.resolve("localhost"))?.family, 4);
    assertEquals((await t.resolve("[::1]"))?.family, 6);
    assertEquals(await t.resolve(""), null);
    const s = await t.listen("localhost", 0);
    assertEquals(s.localAddr.hostname, "127.0.0.1");
    await s.close();
    await assertRejects(
      () => t.resolve("no-such-host.invalid"),
      Error,
      "lookup no-such-host.invalid",
    );
  });

  Deno.test(`udp (${poller}): errors are one clear line`, async () => {
    const t = new UdpTransport({ poller, pool: new PacketPool() });
    const s = await t.listen("127.0.0.1", 0);
    try {
      await assertRejects(
        () => t.listen("127.0.0.1", s.localAddr.port),
        Error,
        `listen udp 127.0.0.1:${s.localAddr.port}: Address already in use`,
      );
    } finally {
      await s.close();
    }
    await assertRejects(() => t.listen("127.0.0.1", 70000), RangeError);
    await assertRejects(() => t.dial("127.0.0.1", 0), RangeError);
    let threw = false;
    try {
      new UdpTransport({ poller, pool: new PacketPool(1024, 64) }); // 960 bytes < 1500
    } catch (e) {
      threw = e instanceof RangeError && e.message.includes("maxDatagram 1500");
    }
    assert(threw, "a pool too small for maxDatagram is refused");
  });

  Deno.test(`udp (${poller}): udpTransport() picks the libc transport when FFI works`, () => {
    assert(udpTransport() instanceof UdpTransport);
    const libc = loadLibc();
    assertEquals(libc.strerror(98), "Address already in use");
  });

  Deno.test(`udp (${poller}): -sockbuf 4 MiB holds a 1024-datagram burst sent while the event loop is busy`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool });
    const roomy = await t.listen("127.0.0.1", 0, { sockbuf: 4 * MiB });
    const tight = await t.listen("127.0.0.1", 0); // the kernel default (rmem_default)
    const cli = await t.dial("127.0.0.1", roomy.localAddr.port, { sockbuf: 4 * MiB });
    try {
      const a = new Collector(roomy), b = new Collector(tight);
      // Both bursts go out before this turn ends, so neither receiver can drain in between.
      cli.send(batchOf(pool, payloads(1024, 1350)));
      cli.send(batchOf(pool, payloads(1024, 1350)), tight.localAddr);
      assertEquals(cli.stats.txPackets, 2048);
      await a.waitFor(1024);
      assertEquals(roomy.stats.rxPackets, 1024);
      await b.waitFor(1);
      await turns(10);
      assert(tight.stats.rxPackets < 1024, `default buffer kept ${tight.stats.rxPackets} of 1024`);
    } finally {
      await cli.close();
      await roomy.close();
      await tight.close();
    }
  });

  Deno.test(`udp (${poller}): closing a receiver in the middle of a flood`, async () => {
    const pool = new PacketPool();
    const t = new UdpTransport({ poller, pool, batchSize: 16 });
    const { srv, cli } = await pair(t, "127.0.0.1");
    let seen = 0;
    let closing: Promise<void> | null = null;
    srv.receive((batch) => {
      seen += batch.length;
      batch.releaseAll();
      if (seen >= 100) closing ??= srv.close();
    });
    for (let i = 0; i < 20 && closing === null; i++) {
      cli.send(batchOf(pool, payloads(64, 1350)));
      await turns(1);
    }
    assert(closing !== null, "the receiver saw 100 datagrams");
    await closing;
    const after = srv.stats.rxPackets;
    cli.send(batchOf(pool, payloads(64, 1350)));
    await turns(5);
    assertEquals(srv.stats.rxPackets, after, "nothing delivered after close");
    await cli.close();
    assertEquals(pool.available, pool.created);
  });
}
