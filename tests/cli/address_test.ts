import fc from "fast-check";
import { assertEquals, assertThrows } from "../support/assert.ts";
import {
  AddressError,
  CLIENT_LISTEN,
  CLIENT_REMOTE,
  type InetAddress,
  joinHostPort,
  parseAddress,
  pickPort,
  portCount,
  SERVER_LISTEN,
  SERVER_TARGET,
  splitHostPort,
} from "../../cli/address.ts";

Deno.test("address: Go's SplitHostPort cases", () => {
  assertEquals(splitHostPort("host:80"), { host: "host", port: "80" });
  assertEquals(splitHostPort(":80"), { host: "", port: "80" });
  assertEquals(splitHostPort("[::1]:80"), { host: "::1", port: "80" });
  assertEquals(splitHostPort("[::]:1-2"), { host: "::", port: "1-2" });
  assertEquals(splitHostPort("[fe80::1%eth0]:80"), { host: "fe80::1%eth0", port: "80" });
  assertEquals(splitHostPort("host:"), { host: "host", port: "" });
  assertEquals(splitHostPort("host"), "missing port in address");
  assertEquals(splitHostPort("::1:80"), "too many colons in address");
  assertEquals(splitHostPort("[::1]80"), "missing port in address");
  assertEquals(splitHostPort("[::1]"), "missing port in address");
  assertEquals(splitHostPort("[::1]:80:1"), "too many colons in address");
  assertEquals(splitHostPort("[::1:80"), "missing ']' in address");
  assertEquals(splitHostPort("a]:80"), "unexpected ']' in address");
  assertEquals(splitHostPort("a:[80"), "unexpected '[' in address");
  assertEquals(splitHostPort("[a[b]:80"), "unexpected '[' in address");
});

Deno.test("address: host:port, :port, IPv6 and ranges", () => {
  assertEquals(parseAddress("1.2.3.4:29900", CLIENT_REMOTE), {
    kind: "inet",
    host: "1.2.3.4",
    minPort: 29900,
    maxPort: 29900,
    text: "1.2.3.4:29900",
  });
  assertEquals(parseAddress(":29900", SERVER_LISTEN), {
    kind: "inet",
    host: "",
    minPort: 29900,
    maxPort: 29900,
    text: ":29900",
  });
  assertEquals(parseAddress("[::1]:29900", CLIENT_REMOTE).host, "::1");
  const r = parseAddress("[::]:29900-29910", SERVER_LISTEN);
  assertEquals(r, {
    kind: "inet",
    host: "::",
    minPort: 29900,
    maxPort: 29910,
    text: "[::]:29900-29910",
  });
  assertEquals(parseAddress("vps:1-65535", CLIENT_REMOTE).kind, "inet");
  assertEquals(parseAddress("vps:7-7", CLIENT_REMOTE), {
    kind: "inet",
    host: "vps",
    minPort: 7,
    maxPort: 7,
    text: "vps:7-7",
  });
  assertEquals((parseAddress("localhost:0", CLIENT_LISTEN) as InetAddress).minPort, 0);
  assertEquals((parseAddress("localhost:", CLIENT_LISTEN) as InetAddress).minPort, 0);
  assertEquals((parseAddress("localhost:00080", SERVER_TARGET) as InetAddress).minPort, 80);
});

Deno.test("address: bad ports and ranges are refused with a reason", () => {
  const bad: [string, string][] = [
    ["h:0", "port 0 is not allowed"],
    ["h:65536", "out of range"],
    ["h:123456", "is not a number"],
    ["h:2-1", "invalid port range 2-1 (min > max)"],
    ["h:0-10", "port 0 is not allowed"],
    ["h:1-65536", "out of range"],
    ["h:x", 'port "x" is not a number'],
    ["h:-1", 'port "-1" is not a number'],
    ["h:1-", 'port "1-" is not a number'],
    ["h:", 'port "" is not a number'],
    ["h", "missing port in address (expected host:port)"],
    ["", "empty address"],
    ["1:2:3", "an IPv6 address needs brackets"],
  ];
  for (const [text, msg] of bad) {
    assertThrows(() => parseAddress(text, CLIENT_REMOTE), AddressError, msg);
  }
  assertThrows(
    () => parseAddress("h:1-2", CLIENT_LISTEN),
    AddressError,
    "a port range is not allowed here",
  );
  assertThrows(
    () => parseAddress("h:1-2", SERVER_TARGET),
    AddressError,
    "a port range is not allowed here",
  );
  assertThrows(() => parseAddress(":0-0", SERVER_LISTEN), AddressError, "port 0");
});

Deno.test("address: unix socket paths where allowed", () => {
  assertEquals(parseAddress("/run/app.sock", SERVER_TARGET), {
    kind: "unix",
    path: "/run/app.sock",
    text: "/run/app.sock",
  });
  assertEquals(parseAddress("app.sock", SERVER_TARGET).kind, "unix");
  assertEquals(parseAddress("/tmp/kcp.sock", CLIENT_LISTEN).kind, "unix");
  // Go would read these as host "/tmp/a" and a port; the slash makes them paths.
  assertEquals(parseAddress("/tmp/a:b", SERVER_TARGET).kind, "unix");
  assertEquals(parseAddress("/tmp/a:80", SERVER_TARGET).kind, "unix");
  assertEquals(parseAddress("./a.sock", CLIENT_LISTEN).kind, "unix");
  assertThrows(() => parseAddress("/run/app.sock", CLIENT_REMOTE), AddressError, "missing port");
  assertThrows(() => parseAddress("/x.sock", SERVER_LISTEN), AddressError, "missing port");
  assertThrows(() => parseAddress("::1:80", SERVER_TARGET), AddressError, "brackets");
  assertThrows(() => parseAddress("host:http", SERVER_TARGET), AddressError, "not a number");
});

Deno.test("address: joinHostPort and parse are inverse (fast-check)", () => {
  const host = fc.oneof(
    fc.constantFrom("", "localhost", "::", "::1", "fe80::1", "10.0.0.1", "example.com"),
    fc.ipV4(),
    fc.ipV6(),
    fc.domain(),
  );
  fc.assert(
    fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
      const a = parseAddress(joinHostPort(h, port), CLIENT_REMOTE);
      assertEquals(a.kind === "inet" ? [a.host, a.minPort, a.maxPort] : null, [h, port, port]);
    }),
    { seed: 5, numRuns: 500 },
  );
});

Deno.test("address: pickPort stays in range and covers it", () => {
  const a = parseAddress("h:100-103", CLIENT_REMOTE);
  if (a.kind !== "inet") throw new Error("inet expected");
  assertEquals(portCount(a), 4);
  assertEquals(pickPort(a, () => 0), 100);
  assertEquals(pickPort(a, () => 0.999999), 103);
  assertEquals(pickPort(a, () => 0.5), 102);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(pickPort(a));
  assertEquals([...seen].sort(), [100, 101, 102, 103]);
  const one = parseAddress("h:5", CLIENT_REMOTE);
  if (one.kind !== "inet") throw new Error("inet expected");
  assertEquals(pickPort(one, () => 0.7), 5);
});
