/**
 * Fake TCP against Debian's kcptun 20210922 (`-tcp`, tcpraw v1.2.25) on loopback: our client
 * socket carrying real KCP/smux traffic to `kcptun-server -tcp`, and `kcptun-client -tcp`
 * talking to our listening socket. 4 MiB of random data through 4 streams each way, checked
 * with SHA-256, with and without FEC and encryption. A UDP recorder on the server port shows
 * that no UDP datagram carried the tunnel. Needs root and the kcptun package.
 */

import type { DatagramSocket } from "../../pipeline/transport.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import type { FakeTcpStats } from "../../transports/faketcp/socket.ts";
import { assert, assertEquals } from "../support/assert.ts";
import {
  GO_CLIENT,
  GO_SERVER,
  type RunningProcess,
  spawnCollecting,
  waitForOutput,
} from "../support/kcptun.ts";
import {
  connectWithRetry,
  freePort,
  readExactly,
  sleep,
  startEchoServer,
  writeAll,
} from "../support/net.ts";
import { missing } from "../support/requires.ts";
import { goFlags, MiniClient, MiniEchoServer, type TunnelFlags } from "./mini_kcptun.ts";
import { quietPort } from "./ports.ts";
import { WireCapture } from "./wire_capture.ts";

const ignore = missing("kcptun", "root");

const DEFAULTS: TunnelFlags = { crypt: "aes", key: "faketcp-test", ds: 10, ps: 3, nocomp: false };
const PLAIN: TunnelFlags = { crypt: "none", key: "faketcp-test", ds: 0, ps: 0, nocomp: true };
const STREAMS = 4;
const PER_STREAM = 1 << 20;

function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Writes `data` to a smux stream in 64 KiB chunks while reading the echo; returns the echo. */
async function echoThroughStream(
  s: TunnelStream,
  data: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const writing = (async () => {
    const w = s.writable.getWriter();
    for (let off = 0; off < data.length; off += 65536) {
      await w.write(data.subarray(off, Math.min(data.length, off + 65536)));
    }
    w.releaseLock();
  })();
  const out = new Uint8Array(data.length);
  let at = 0;
  const r = s.readable.getReader();
  const timer = setTimeout(() => r.cancel(new Error("echo timed out")), 30000);
  while (at < out.length) {
    const { value, done } = await r.read();
    if (done) break;
    out.set(value, at);
    at += value.length;
  }
  clearTimeout(timer);
  r.releaseLock();
  await writing;
  assertEquals(at, data.length, "echoed bytes");
  return out;
}

/** Same over a TCP connection. */
async function echoThroughTcp(c: Deno.TcpConn, data: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const [, got] = await Promise.all([writeAll(c, data), readExactly(c, data.length, 30000)]);
  return got.slice();
}

async function checkEchoes(
  payloads: Uint8Array<ArrayBuffer>[],
  run: (data: Uint8Array<ArrayBuffer>, i: number) => Promise<Uint8Array<ArrayBuffer>>,
): Promise<void> {
  const got = await Promise.all(payloads.map((d, i) => run(d, i)));
  for (let i = 0; i < payloads.length; i++) {
    assertEquals(await sha256(got[i]), await sha256(payloads[i]), `stream ${i} sha256`);
  }
}

function payloads(seed: number, count = STREAMS, size = PER_STREAM): Uint8Array<ArrayBuffer>[] {
  return Array.from({ length: count }, (_, i) => randomBytes(size, seed * 100 + i + 1));
}

async function dialWithRetry(host: string, port: number, f: TunnelFlags): Promise<MiniClient> {
  const deadline = performance.now() + 10000;
  for (;;) {
    try {
      return await MiniClient.dial(host, port, f);
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

function fakeStats(s: DatagramSocket): FakeTcpStats {
  return s.stats as FakeTcpStats;
}

/** Our fake-TCP client, real KCP and smux, to Go's `kcptun-server -tcp` relaying to an echo. */
async function oursToGo(
  f: TunnelFlags,
  host: string,
  seed: number,
  count = STREAMS,
  size = PER_STREAM,
) {
  const echo = startEchoServer();
  const port = quietPort();
  const udp = new WireCapture("udp", port);
  let go: RunningProcess | null = null;
  let client: MiniClient | null = null;
  try {
    go = spawnCollecting(GO_SERVER, [
      "-tcp",
      "-l",
      `${host.includes(":") ? `[${host}]` : host}:${port}`,
      "-t",
      `127.0.0.1:${echo.port}`,
      ...goFlags(f),
    ]);
    await waitForOutput(go, "key derivation done");
    client = await dialWithRetry(host, port, f);
    const data = payloads(seed, count, size);
    await checkEchoes(data, (d) => echoThroughStream(client!.open(), d));
    const st = fakeStats(client.socket);
    assert(st.txPackets > (count * size) / 1400, `datagrams sent as TCP segments: ${st.txPackets}`);
    assert(st.rxPackets > (count * size) / 1400, `datagrams received: ${st.rxPackets}`);
    assertEquals(echo.accepted, count, "Go opened one target connection per stream");
  } finally {
    await client?.close();
    await go?.stop();
    await echo.close();
  }
  const udpSeen = await udp.stop();
  assertEquals(udpSeen.length, 0, `UDP datagrams on port ${port}: ${udpSeen.length}`);
  assert(go!.output().includes("tcp: true"), "Go ran with -tcp");
}

/**
 * Go's `kcptun-client -tcp` to our fake-TCP listener (which also serves UDP on the port, as
 * Go's does) with an in-process echo behind smux.
 */
async function goToOurs(
  f: TunnelFlags,
  host: string,
  seed: number,
  count = STREAMS,
  size = PER_STREAM,
) {
  const port = quietPort(), local = freePort();
  const udp = new WireCapture("udp", port);
  const server = await MiniEchoServer.listen(host, port, f);
  const sock = server.socket;
  let go: RunningProcess | null = null;
  const conns: Deno.TcpConn[] = [];
  try {
    go = spawnCollecting(GO_CLIENT, [
      "-tcp",
      "-l",
      `127.0.0.1:${local}`,
      "-r",
      `${host.includes(":") ? `[${host}]` : host}:${port}`,
      ...goFlags(f),
    ]);
    for (let i = 0; i < count; i++) conns.push(await connectWithRetry(local));
    await checkEchoes(payloads(seed, count, size), (d, i) => echoThroughTcp(conns[i], d));
    assertEquals(server.streams, count, "smux streams echoed");
    assertEquals(fakeStats(sock).accepted, 1, "one kernel TCP connection (-conn 1)");
    assert(sock.stats.rxPackets > (count * size) / 1400, `received: ${sock.stats.rxPackets}`);
    assert(sock.stats.txPackets > (count * size) / 1400, `sent: ${sock.stats.txPackets}`);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await go?.stop();
    await server.close();
  }
  const udpSeen = await udp.stop();
  assertEquals(udpSeen.length, 0, `UDP datagrams on port ${port}: ${udpSeen.length}`);
  assert(go!.output().includes("tcp: true"), "Go ran with -tcp");
}

Deno.test({
  name:
    "faketcp interop: our client -tcp to Go kcptun-server -tcp, aes + FEC 10/3 + snappy, 4 × 1 MiB",
  ignore,
  fn: () => oursToGo(DEFAULTS, "127.0.0.1", 1),
});

Deno.test({
  name:
    "faketcp interop: our client -tcp to Go kcptun-server -tcp, -crypt none -ds 0 -ps 0 -nocomp",
  ignore,
  fn: () => oursToGo(PLAIN, "127.0.0.1", 2),
});

Deno.test({
  name: "faketcp interop: Go kcptun-client -tcp to our server, aes + FEC 10/3 + snappy, 4 × 1 MiB",
  ignore,
  fn: () => goToOurs(DEFAULTS, "127.0.0.1", 3),
});

Deno.test({
  name: "faketcp interop: Go kcptun-client -tcp to our server, -crypt none -ds 0 -ps 0 -nocomp",
  ignore,
  fn: () => goToOurs(PLAIN, "127.0.0.1", 4),
});

Deno.test({
  name: "faketcp interop: IPv6 loopback both ways (tcpraw builds IPv6 segments too)",
  ignore,
  fn: async () => {
    await oursToGo(DEFAULTS, "::1", 5, 2, 256 << 10);
    await goToOurs(DEFAULTS, "::1", 6, 2, 256 << 10);
  },
});

Deno.test({
  name: "faketcp interop: like Go's -tcp server, one listener serves a fake-TCP and a UDP client",
  ignore,
  fn: async () => {
    const port = quietPort(), tcpLocal = freePort(), udpLocal = freePort();
    // A fake-TCP transport also serves UDP: one listener, two sockets on one port number (TCP
    // and UDP ports are separate), sessions of either kind.
    const server = await MiniEchoServer.listen("127.0.0.1", port, DEFAULTS);
    const [fake, udp] = server.listener.sockets;
    const flags = goFlags(DEFAULTS), remote = `127.0.0.1:${port}`;
    const goTcp = spawnCollecting(GO_CLIENT, [
      "-tcp",
      "-l",
      `127.0.0.1:${tcpLocal}`,
      "-r",
      remote,
      ...flags,
    ]);
    const goUdp = spawnCollecting(GO_CLIENT, [
      "-l",
      `127.0.0.1:${udpLocal}`,
      "-r",
      remote,
      ...flags,
    ]);
    const conns: Deno.TcpConn[] = [];
    try {
      conns.push(await connectWithRetry(tcpLocal), await connectWithRetry(udpLocal));
      await checkEchoes(payloads(7, 2, 256 << 10), (d, i) => echoThroughTcp(conns[i], d));
      assertEquals(server.streams, 2);
      assertEquals(server.listener.sessions.size, 2, "one session per client");
      assertEquals(fakeStats(fake).accepted, 1, "the fake-TCP client came on its socket");
      assert(fake.stats.rxPackets > 100, `fake TCP received ${fake.stats.rxPackets}`);
      assert(udp.stats.rxPackets > 100, `UDP received ${udp.stats.rxPackets}`);
    } finally {
      for (const c of conns) c.close();
      await goTcp.stop();
      await goUdp.stop();
      await server.close();
    }
  },
});
