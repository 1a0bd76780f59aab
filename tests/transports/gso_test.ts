import { PacketPool } from "../../pipeline/packet.ts";
import { groupRuns, GSO_LIMITS, GsoSendRing, probeGso } from "../../transports/gso.ts";
import { C, Errno, type Libc, loadLibc } from "../../transports/libc.ts";
import {
  type GsoRefusal,
  MMSGHDR,
  OFF_CONTROL,
  OFF_CONTROLLEN,
  OFF_IOVLEN,
  sendmmsgAll,
} from "../../transports/mmsg.ts";
import { PeerTable, type UdpPeer } from "../../transports/sockaddr.ts";
import { UdpTransport } from "../../transports/udp.ts";
import { newUdpStats } from "../../transports/udp_common.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { batchOf, Collector, payloads } from "./helpers.ts";

/** groupRuns as [first, count] pairs. */
function runs(
  lens: number[],
  dests: unknown[] = lens.map(() => "a"),
  limits = GSO_LIMITS as typeof GSO_LIMITS | null,
): [number, number][] {
  const first = new Int32Array(lens.length), count = new Int32Array(lens.length);
  const m = groupRuns(lens, dests, lens.length, limits, first, count);
  return Array.from({ length: m }, (_, i) => [first[i], count[i]]);
}

Deno.test("gso: groupRuns joins equal sizes to one peer; only the last may be shorter", () => {
  assertEquals(runs([1350, 1350, 1350]), [[0, 3]]);
  // A shorter one joins and closes the run; a longer one starts the next.
  assertEquals(runs([1350, 1350, 700, 1350]), [[0, 3], [3, 1]]);
  assertEquals(runs([100, 1350, 1350, 1350, 90]), [[0, 1], [1, 4]]);
  assertEquals(runs([100, 100, 1350]), [[0, 2], [2, 1]]);
  // Another destination starts a new run (identity, not equality of the values' text).
  assertEquals(runs([500, 500, 500, 500], ["a", "a", "b", "b"]), [[0, 2], [2, 2]]);
  assertEquals(runs([500, 500, 500], ["a", "b", "a"]), [[0, 1], [1, 1], [2, 1]]);
  // An empty datagram never joins, nor starts a run others join.
  assertEquals(runs([0, 0, 10, 0]), [[0, 1], [1, 1], [2, 1], [3, 1]]);
  // Without limits: one message per datagram.
  assertEquals(runs([1350, 1350, 1350], undefined, null), [[0, 1], [1, 1], [2, 1]]);
  assertEquals(runs([]), []);
});

Deno.test("gso: groupRuns keeps a message within the segment and byte limits", () => {
  // 1350-byte datagrams: 48 fit in 65507 bytes, the 49th does not.
  assertEquals(runs(new Array(100).fill(1350)), [[0, 48], [48, 48], [96, 4]]);
  // Small datagrams: the segment count caps first.
  assertEquals(runs(new Array(130).fill(100)), [[0, 64], [64, 64], [128, 2]]);
  assertEquals(runs(new Array(5).fill(10), undefined, { maxSegments: 2, maxBytes: 1000 }), [
    [0, 2],
    [2, 2],
    [4, 1],
  ]);
  // A shorter last datagram that would pass the byte limit starts its own message.
  assertEquals(runs([600, 600, 100], undefined, { maxSegments: 64, maxBytes: 1250 }), [
    [0, 2],
    [2, 1],
  ]);
  assertEquals(runs([600, 600, 50], undefined, { maxSegments: 64, maxBytes: 1250 }), [[0, 3]]);
});

Deno.test("gso: GsoSendRing writes one iovec per packet and a UDP_SEGMENT cmsg per run", () => {
  const pool = new PacketPool();
  const peers = new PeerTable(4, 8, () => 0x1000);
  const a = peers.intern({ family: 4, bytes: new Uint8Array([127, 0, 0, 1]), scope: 0 }, 1000);
  const b = peers.intern({ family: 4, bytes: new Uint8Array([127, 0, 0, 1]), scope: 0 }, 2000);
  const ring = new GsoSendRing(8);
  const sizes = [1000, 1000, 400, 1000, 1000];
  const dests: UdpPeer[] = [a, a, a, a, b];
  for (let j = 0; j < sizes.length; j++) ring.put(j, pool.from(new Uint8Array(sizes[j])), dests[j]);
  const m = ring.build(sizes.length, GSO_LIMITS);
  assertEquals(m, 3);
  assertEquals(Array.from(ring.counts.subarray(0, m)), [3, 1, 1]);
  const v = ring.view;
  const field = (slot: number, off: number) => Number(v.getBigUint64(slot * MMSGHDR + off, true));
  assertEquals([0, 1, 2].map((k) => field(k, OFF_IOVLEN)), [3, 1, 1]);
  assertEquals([0, 1, 2].map((k) => field(k, OFF_CONTROLLEN)), [24, 0, 0]);
  assertEquals(field(1, OFF_CONTROL), 0);
  // The control message: cmsg_len 18, SOL_UDP, UDP_SEGMENT, then the segment size.
  const ctl = field(0, OFF_CONTROL) -
    Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ring.bytes)));
  assertEquals(Number(v.getBigUint64(ctl, true)), 18);
  assertEquals([v.getInt32(ctl + 8, true), v.getInt32(ctl + 12, true)], [C.SOL_UDP, C.UDP_SEGMENT]);
  assertEquals(v.getUint16(ctl + 16, true), 1000);
  // Without limits: every packet its own message, no control message.
  assertEquals(ring.build(sizes.length, null), 5);
  assertEquals([0, 1, 2, 3, 4].map((k) => field(k, OFF_CONTROLLEN)), [0, 0, 0, 0, 0]);
  // shift() moves the tail to the front, keeping packets and destinations together (the
  // packets before it were sent and released by sendmmsgAll).
  const tail = [ring.packets[3], ring.packets[4]];
  for (let j = 0; j < 3; j++) {
    ring.packets[j]!.release();
    ring.packets[j] = null;
  }
  assertEquals(ring.shift(3, 5), 2);
  assertEquals([ring.packets[0], ring.packets[1]], tail);
  assertEquals([ring.dests[0], ring.dests[1]], [a, b]);
  assertEquals([ring.lens[0], ring.lens[1]], [1000, 1000]);
  assert(ring.packets.slice(2).every((p) => p === null), "the rest is cleared");
  for (let j = 0; j < 2; j++) ring.packets[j]!.release();
  assertEquals(pool.available, pool.created);
});

/** A libc whose sendmmsg answers from a script: a count of slots sent, or -errno. */
function scriptedLibc(script: number[]): { libc: Libc; calls: number[] } {
  const calls: number[] = [];
  let errno = 0;
  const libc = {
    symbols: {
      sendmmsg: (_fd: number, _p: unknown, n: number) => {
        calls.push(n);
        const r = script.shift();
        if (r === undefined) throw new Error("unexpected sendmmsg call");
        if (r < 0) {
          errno = -r;
          return -1;
        }
        return Math.min(r, n);
      },
    },
    errno: () => errno,
  } as unknown as Libc;
  return { libc, calls };
}

function slots(pool: PacketPool, counts: number[]) {
  const total = counts.reduce((s, c) => s + c, 0);
  const packets = Array.from({ length: total }, () => pool.from(new Uint8Array(100)));
  const ptr = Deno.UnsafePointer.of(new Uint8Array(8))!;
  return {
    ring: {
      slotPtr: counts.map(() => ptr),
      packets: packets.slice() as (ReturnType<PacketPool["from"]> | null)[],
      counts: Int32Array.from(counts),
    },
    packets,
  };
}

Deno.test("gso: sendmmsgAll counts datagrams, not slots, through partial sends and errors", () => {
  const pool = new PacketPool();
  const { ring } = slots(pool, [3, 1, 2, 4]);
  const stats = newUdpStats();
  // Slot 0 goes, slot 1 (one datagram) fails alone, slots 2 and 3 go in two calls.
  const { libc, calls } = scriptedLibc([1, -Errno.EPERM, 1, 1]);
  const e = sendmmsgAll(libc, 3, ring, 4, stats, { slot: -1, packet: 0, errno: 0 });
  assertEquals(e, Errno.EPERM);
  assertEquals(calls, [4, 3, 2, 1]);
  assertEquals([stats.txPackets, stats.txBytes, stats.dropped, stats.txGsoMessages], [
    9,
    900,
    1,
    3,
  ]);
  assertEquals(pool.available, pool.created, "every packet released");
  assert(ring.packets.every((p) => p === null));

  // A full buffer drops every datagram left, however they were grouped.
  const full = slots(pool, [2, 5, 1]);
  const s2 = newUdpStats();
  assertEquals(
    sendmmsgAll(scriptedLibc([1, -Errno.EAGAIN]).libc, 3, full.ring, 3, s2),
    Errno.EAGAIN,
  );
  assertEquals([s2.txPackets, s2.dropped, s2.txErrors], [2, 6, 6]);
  assertEquals(pool.available, pool.created);
});

Deno.test("gso: a refused GSO slot stops the call and leaves its packets to the caller", () => {
  const pool = new PacketPool();
  const { ring, packets } = slots(pool, [2, 3, 1]);
  const stats = newUdpStats();
  const refusal: GsoRefusal = { slot: -1, packet: 0, errno: 0 };
  const e = sendmmsgAll(scriptedLibc([1, -Errno.EIO]).libc, 3, ring, 3, stats, refusal);
  assertEquals(e, 0, "a refusal is not a failure of the datagrams");
  assertEquals(refusal, { slot: 1, packet: 2, errno: Errno.EIO });
  assertEquals([stats.txPackets, stats.dropped], [2, 0]);
  assertEquals(ring.packets.slice(0, 2), [null, null]);
  assertEquals(ring.packets.slice(2), packets.slice(2), "packets from the refused slot stay");
  assertEquals(pool.available, pool.created - 4);
  for (const p of packets.slice(2)) p.release();

  // The same errno on a single-datagram slot is that datagram's: dropped, no refusal.
  const one = slots(pool, [1]);
  const s2 = newUdpStats();
  const r2: GsoRefusal = { slot: -1, packet: 0, errno: 0 };
  const e2 = sendmmsgAll(scriptedLibc([-Errno.EINVAL]).libc, 3, one.ring, 1, s2, r2);
  assertEquals([e2, s2.txPackets, s2.dropped, r2.slot], [Errno.EINVAL, 0, 1, -1]);
  // Without a refusal record (fake TCP), a failing slot of several is dropped whole.
  const many = slots(pool, [3]);
  const s3 = newUdpStats();
  assertEquals(sendmmsgAll(scriptedLibc([-Errno.EINVAL]).libc, 3, many.ring, 1, s3), Errno.EINVAL);
  assertEquals([s3.txPackets, s3.dropped], [0, 3]);
  assertEquals(pool.available, pool.created);
});

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`gso: the receiver sees exactly the datagrams sent, GSO or not (${host})`, async () => {
    const pool = new PacketPool();
    const sent = [
      ...payloads(100, 1350, 3),
      ...payloads(3, 24, 5),
      ...payloads(5, 1350, 7),
      ...payloads(1, 1000, 11),
      ...payloads(2, 1350, 13),
    ];
    for (const gso of [true, false]) {
      const t = new UdpTransport({ pool, gso });
      const srv = await t.listen(host, 0, { sockbuf: 4 << 20 });
      const cli = await t.dial(host, srv.localAddr.port, { sockbuf: 4 << 20 });
      try {
        assertEquals(cli.gso, gso);
        const atServer = new Collector(srv), atClient = new Collector(cli);
        cli.send(batchOf(pool, sent));
        const got = await atServer.waitFor(sent.length);
        assertEquals(got.map((r) => r.data), sent);
        assertEquals([cli.stats.txPackets, cli.stats.dropped], [sent.length, 0]);
        // Flushes of 64 (the default batch): 48 + 16; then 36 closed by the first short one,
        // the 2 other short ones, 5 closed by the 1000-byte one, the last 2.
        assertEquals(cli.stats.txGsoMessages, gso ? 6 : 0);
        // The server's replies go to the peer each packet names (one run per peer).
        const back = batchOf(pool, sent, got[0].peer);
        srv.send(back);
        assertEquals((await atClient.waitFor(sent.length)).map((r) => r.data), sent);
        assertEquals(srv.stats.txGsoMessages, gso ? 6 : 0);
      } finally {
        await cli.close();
        await srv.close();
      }
    }
    assertEquals(pool.available, pool.created, "every packet back in the pool");
  });
}

Deno.test("gso: a kernel that refuses segmentation gets the datagrams one by one, GSO off", async () => {
  const pool = new PacketPool();
  const lines: string[] = [];
  const t = new UdpTransport({ pool, log: (l) => lines.push(l) });
  const srv = await t.listen("127.0.0.1", 0, { sockbuf: 4 << 20 });
  const cli = await t.dial("127.0.0.1", srv.localAddr.port, { sockbuf: 4 << 20 });
  try {
    assert(cli.gso, "this kernel supports UDP_SEGMENT");
    // Without UDP checksums the kernel refuses segmentation (EINVAL), not plain datagrams.
    assertEquals(cli.setOption(C.SOL_SOCKET, C.SO_NO_CHECK, 1), 0);
    const atServer = new Collector(srv);
    const sent = [...payloads(3, 200, 3), ...payloads(60, 1350, 5)];
    cli.send(batchOf(pool, sent));
    cli.send(batchOf(pool, sent));
    const got = await atServer.waitFor(2 * sent.length);
    assertEquals(got.map((r) => r.data), [...sent, ...sent]);
    assertEquals(cli.gso, false);
    assertEquals(cli.stats.gsoRefusedErrno, Errno.EINVAL);
    assertEquals([cli.stats.txPackets, cli.stats.dropped, cli.stats.txGsoMessages], [126, 0, 0]);
    assertEquals(lines.length, 1, lines.join("\n"));
    assert(lines[0].includes("UDP_SEGMENT") && lines[0].includes("errno 22"), lines[0]);
  } finally {
    await cli.close();
    await srv.close();
  }
  assertEquals(pool.available, pool.created);
});

Deno.test("gso: a socket the kernel cannot segment on never sends a GSO message", () => {
  const libc = loadLibc();
  // A TCP socket answers UDP_SEGMENT with an error, as a kernel before 4.18 does for UDP.
  const fd = libc.symbols.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_CLOEXEC, 0);
  assert(fd >= 0);
  try {
    assertEquals(probeGso(libc, fd), false);
  } finally {
    libc.symbols.close(fd);
  }
  const udp = libc.symbols.socket(C.AF_INET, C.SOCK_DGRAM | C.SOCK_CLOEXEC, 0);
  try {
    assertEquals(probeGso(libc, udp), true);
  } finally {
    libc.symbols.close(udp);
  }
});
