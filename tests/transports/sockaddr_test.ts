import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  formatIp,
  formatIPv6,
  joinHostPort,
  parseIp,
  parseIPv4,
  parseIPv6,
  PeerTable,
  readSockaddr,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_SLOT,
  writeSockaddr,
} from "../../transports/sockaddr.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("sockaddr: IPv4 literals", () => {
  assertEquals(parseIPv4("127.0.0.1"), 0x7f000001);
  assertEquals(parseIPv4("255.255.255.255"), 0xffffffff);
  assertEquals(parseIPv4("0.0.0.0"), 0);
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1..2.3",
      "1.2.3.4.",
      "a.b.c.d",
      " 1.2.3.4",
    ]
  ) {
    assertEquals(parseIPv4(bad), null, bad);
  }
});

Deno.test("sockaddr: IPv6 literals", () => {
  const z = new Uint8Array(16);
  assertEquals(parseIPv6("::"), z);
  const one = new Uint8Array(16);
  one[15] = 1;
  assertEquals(parseIPv6("::1"), one);
  assertEquals(parseIPv6("0:0:0:0:0:0:0:1"), one);
  const doc = parseIPv6("2001:db8::1:0:0:1")!;
  assertEquals(formatIPv6(doc), "2001:db8::1:0:0:1");
  assertEquals(parseIPv6("1::")!.slice(0, 2), bytes(0, 1));
  assertEquals(parseIPv6("::ffff:1.2.3.4")!.slice(10), bytes(255, 255, 1, 2, 3, 4));
  assertEquals(parseIPv6("FE80::A")!.slice(0, 2), bytes(0xfe, 0x80));
  for (
    const bad of [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "g::",
      "1:2:3:4:5:6:7",
      "1:",
      ":1",
      "::1.2.3",
      "1:2:3:4:5:6:7:8::",
      "1.2.3.4::",
    ]
  ) {
    assertEquals(parseIPv6(bad), null, bad);
  }
});

Deno.test("sockaddr: parseIp: brackets, zones, IPv4-mapped as IPv4", () => {
  assertEquals(parseIp("[::1]")?.family, 6);
  assertEquals(parseIp("::ffff:10.0.0.1"), { family: 4, bytes: bytes(10, 0, 0, 1), scope: 0 });
  assertEquals(parseIp("fe80::1%3")?.scope, 3);
  assertEquals(parseIp("fe80::1%eth0"), null); // named zones go through getaddrinfo
  assertEquals(parseIp("localhost"), null);
  assertEquals(formatIp(parseIp("fe80::1%3")!), "fe80::1%3");
});

Deno.test("sockaddr: RFC 5952 formatting", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group is not compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs wins
    ["0:0:0:0:0:0:0:0", "::"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["::ffff:7f00:1", "::ffff:127.0.0.1"],
  ];
  for (const [input, want] of cases) assertEquals(formatIPv6(parseIPv6(input)!), want, input);
});

Deno.test("sockaddr: IPv6 text round-trips (fast-check)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const text = formatIPv6(b);
      assertEquals(parseIPv6(text), b, text);
    }),
    { seed: 5952, numRuns: 2000 },
  );
  // Zero-heavy addresses exercise the :: placement.
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff), { minLength: 8, maxLength: 8 }),
      (g) => {
        const b = new Uint8Array(16);
        g.forEach((w, i) => {
          b[2 * i] = w >> 8;
          b[2 * i + 1] = w & 255;
        });
        assertEquals(parseIPv6(formatIPv6(b)), b);
      },
    ),
    { seed: 7, numRuns: 500 },
  );
});

Deno.test("sockaddr: write/read sockaddr round-trip (fast-check)", () => {
  const ipArb = fc.oneof(
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => ({
      family: 4 as const,
      bytes: b,
      scope: 0,
    })),
    fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat()).map(([b, s]) => {
      b[0] = 0x20; // not IPv4-mapped
      return { family: 6 as const, bytes: b, scope: s };
    }),
  );
  fc.assert(
    fc.property(
      ipArb,
      fc.integer({ min: 0, max: 65535 }),
      fc.constantFrom(4 as const, 6 as const),
      (ip, port, fam) => {
        if (fam === 4 && ip.family === 6) return;
        const buf = new Uint8Array(40);
        const len = writeSockaddr(buf, 4, fam, ip, port);
        assertEquals(len, fam === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE);
        assertEquals(readSockaddr(buf, 4, len), { ip, port });
      },
    ),
    { seed: 28, numRuns: 1000 },
  );
  assertThrows(() => writeSockaddr(new Uint8Array(32), 0, 4, parseIp("::1")!, 1), TypeError);
});

Deno.test("sockaddr: joinHostPort brackets IPv6 only", () => {
  assertEquals(joinHostPort("127.0.0.1", 80), "127.0.0.1:80");
  assertEquals(joinHostPort("::1", 80), "[::1]:80");
  assertEquals(joinHostPort("", 80), ":80");
});

/** A kernel-style sockaddr buffer for lookups. */
function raw(family: 4 | 6, text: string, port: number): DataView {
  const buf = new Uint8Array(SOCKADDR_SLOT);
  writeSockaddr(buf, 0, family, parseIp(text)!, port);
  return new DataView(buf.buffer);
}

Deno.test("PeerTable: one object per (ip, port), found again without growth", () => {
  const t = new PeerTable(6);
  const a = t.lookup(raw(6, "::1", 1000), 0, SOCKADDR_IN6_SIZE)!;
  const b = t.lookup(raw(6, "::1", 1001), 0, SOCKADDR_IN6_SIZE)!;
  const c = t.lookup(raw(6, "127.0.0.1", 1000), 0, SOCKADDR_IN6_SIZE)!; // IPv4-mapped
  assertEquals([a.key, b.key, c.key], ["[::1]:1000", "[::1]:1001", "127.0.0.1:1000"]);
  assertEquals([a.family, c.family], ["ipv6", "ipv4"]);
  assertEquals(c.hostname, "127.0.0.1");
  assertEquals(c.socklen, SOCKADDR_IN6_SIZE); // sendable from an AF_INET6 socket
  assertEquals(readSockaddr(c.sockaddr, 0, c.socklen)?.ip.family, 4);
  assertEquals(t.size, 3);
  for (let i = 0; i < 1000; i++) {
    assert(t.lookup(raw(6, "::1", 1000), 0, SOCKADDR_IN6_SIZE) === a);
    assert(t.lookup(raw(6, "127.0.0.1", 1000), 0, SOCKADDR_IN6_SIZE) === c);
  }
  assertEquals(t.size, 3);
  assert(t.intern(parseIp("::1")!, 1001) === b);
  assert(t.intern(parseIp("127.0.0.1")!, 1000) === c);
  // Scopes are part of the identity.
  const s1 = t.lookup(raw(6, "fe80::1%1", 9), 0, SOCKADDR_IN6_SIZE)!;
  const s2 = t.lookup(raw(6, "fe80::1%2", 9), 0, SOCKADDR_IN6_SIZE)!;
  assert(s1 !== s2);
  assertEquals(s2.key, "[fe80::1%2]:9");
});

Deno.test("PeerTable: IPv4 socket, bad families and short lengths", () => {
  const t = new PeerTable(4);
  const p = t.lookup(raw(4, "10.1.2.3", 53), 0, SOCKADDR_IN_SIZE)!;
  assertEquals(p.key, "10.1.2.3:53");
  assertEquals(p.socklen, SOCKADDR_IN_SIZE);
  assertEquals(t.lookup(raw(4, "10.1.2.3", 53), 0, 8), null);
  assertEquals(t.lookup(new DataView(new ArrayBuffer(32)), 0, 32), null); // AF_UNSPEC
  assertThrows(() => t.intern(parseIp("::1")!, 1), TypeError);
});

Deno.test("PeerTable: matches compares address, port and family exactly", () => {
  const t = new PeerTable(6);
  const srv = t.intern(parseIp("::1")!, 4000);
  assert(PeerTable.matches(raw(6, "::1", 4000), 0, SOCKADDR_IN6_SIZE, srv));
  assert(!PeerTable.matches(raw(6, "::1", 4001), 0, SOCKADDR_IN6_SIZE, srv));
  assert(!PeerTable.matches(raw(6, "::2", 4000), 0, SOCKADDR_IN6_SIZE, srv));
  assert(!PeerTable.matches(raw(6, "::1", 4000), 0, 16, srv));
  const t4 = new PeerTable(4);
  const s4 = t4.intern(parseIp("127.0.0.1")!, 4000);
  assert(PeerTable.matches(raw(4, "127.0.0.1", 4000), 0, SOCKADDR_IN_SIZE, s4));
  assert(!PeerTable.matches(raw(4, "127.0.0.2", 4000), 0, SOCKADDR_IN_SIZE, s4));
  assert(!PeerTable.matches(raw(6, "127.0.0.1", 4000), 0, SOCKADDR_IN6_SIZE, s4));
});

Deno.test("PeerTable: interning is consistent for random peers (fast-check)", () => {
  const peer = fc.tuple(
    fc.constantFrom("10.0.0.1", "10.0.0.2", "::1", "2001:db8::1", "192.168.1.1", "fe80::1%2"),
    fc.integer({ min: 1, max: 6 }),
  );
  fc.assert(
    fc.property(fc.array(peer, { maxLength: 200 }), (seq) => {
      const t = new PeerTable(6);
      const seen = new Map<string, unknown>();
      for (const [host, port] of seq) {
        const p = t.lookup(raw(6, host, port), 0, SOCKADDR_IN6_SIZE)!;
        const prev = seen.get(p.key);
        if (prev !== undefined) assert(prev === p, `${p.key} interned twice`);
        seen.set(p.key, p);
      }
      assertEquals(t.size, seen.size);
    }),
    { seed: 99, numRuns: 300 },
  );
});

Deno.test("PeerTable: memory bounded by maxPeers; old peers stay usable", () => {
  const t = new PeerTable(4, 100);
  const first = t.lookup(raw(4, "10.0.0.1", 1), 0, SOCKADDR_IN_SIZE)!;
  for (let i = 0; i < 1000; i++) t.lookup(raw(4, "10.0.0.2", 1 + i), 0, SOCKADDR_IN_SIZE);
  assert(t.size <= 100);
  assertEquals(t.resets, 10);
  assertEquals(readSockaddr(first.sockaddr, 0, first.socklen)?.port, 1);
  assertEquals(first.key, "10.0.0.1:1");
});

Deno.test("PeerTable: grows past its first capacity without losing peers", () => {
  const t = new PeerTable(6);
  const peers = [];
  for (let i = 0; i < 5000; i++) {
    peers.push(t.lookup(raw(6, `2001:db8::${i.toString(16)}`, 7), 0, 28)!);
  }
  assertEquals(t.size, 5000);
  for (let i = 0; i < 5000; i += 37) {
    assert(t.lookup(raw(6, `2001:db8::${i.toString(16)}`, 7), 0, 28) === peers[i]);
  }
});
