/**
 * UDP forwarding (kcptun-ts `-udp`) end to end through our CLI: DNS-style request/response over
 * many flows, a WireGuard-sized flood that must not starve a TCP stream of the same session,
 * flow expiry, and the refusal by a server that does not forward UDP (ours without `-udp`, and
 * Go's kcptun, which must see no byte of the flow at its TCP target).
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import { missing } from "../support/requires.ts";
import { startGoServer } from "../support/kcptun.ts";
import {
  listeningPort,
  type Pair,
  type Proc,
  seededBytes,
  spawnClient,
  spawnDeno,
  spawnDenoWith,
  spawnServer,
  startPair,
  waitFor,
} from "./harness.ts";

/** A UDP server on 127.0.0.1 answering each datagram by `answer` (null: no answer). */
function startUdpServer(answer: (d: Uint8Array) => Uint8Array | null): {
  port: number;
  received(): number;
  close(): Promise<void>;
} {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  let received = 0;
  const loop = (async () => {
    try {
      for (;;) {
        const [d, from] = await conn.receive();
        received++;
        const a = answer(d);
        if (a !== null) await conn.send(a, from);
      }
    } catch { /* closed */ }
  })();
  return {
    port: (conn.addr as Deno.NetAddr).port,
    received: () => received,
    async close() {
      conn.close();
      await loop;
    },
  };
}

/** A DNS-like answer: the 2-byte id, then `answer:` and the question. */
function dnsAnswer(q: Uint8Array): Uint8Array {
  const out = new Uint8Array(q.length + 7);
  out.set(q.subarray(0, 2));
  out.set(new TextEncoder().encode("answer:"), 2);
  out.set(q.subarray(2), 9);
  return out;
}

/**
 * Sends `count` DNS-like queries (ids 0..count-1) from one local socket to `port`, at most
 * `window` unanswered at a time, asking again after `retryMs` as a resolver does; returns when all
 * are answered (each answer checked against its query), or throws after `timeoutMs`.
 */
async function resolveAll(
  port: number,
  count: number,
  opts: { window?: number; retryMs?: number; timeoutMs?: number; tag?: number } = {},
): Promise<{ asked: number }> {
  const window = opts.window ?? 16, retryMs = opts.retryMs ?? 1000;
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const query = (id: number) => {
    const q = new TextEncoder().encode(`xx${opts.tag ?? 0}.example.${id}.`);
    q[0] = id >>> 8;
    q[1] = id & 0xff;
    return q;
  };
  const sentAt = new Map<number, number>();
  const answered = new Set<number>();
  let next = 0, asked = 0;
  const deadline = performance.now() + (opts.timeoutMs ?? 30000);
  const ask = async (id: number) => {
    sentAt.set(id, performance.now());
    asked++;
    await conn.send(query(id), to);
  };
  const fill = async () => {
    while (next < count && sentAt.size < window) await ask(next++);
  };
  const retry = setInterval(() => {
    const now = performance.now();
    for (const [id, t] of sentAt) if (now - t > retryMs) ask(id).catch(() => {});
  }, retryMs / 4);
  try {
    await fill();
    while (answered.size < count) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${answered.size}/${count} queries answered`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        conn.receive(),
        new Promise<null>((res) => timer = setTimeout(() => res(null), left)),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      const a = r[0];
      const id = (a[0] << 8) | a[1];
      assertEquals(
        new TextDecoder().decode(a.subarray(2)),
        "answer:" + new TextDecoder().decode(query(id).subarray(2)),
      );
      if (!answered.has(id)) {
        answered.add(id);
        sentAt.delete(id);
        await fill();
      }
    }
    return { asked };
  } finally {
    clearInterval(retry);
    conn.close();
  }
}

/** The client's bound UDP port from its `udp listening on:` startup line. */
function udpPortOf(log: string): number {
  const m = log.match(/udp listening on: \S*:(\d+)\n/);
  if (m === null) throw new Error(`no udp listening line in:\n${log}`);
  return Number(m[1]);
}

const KEY = ["-key", "udp-test"];

Deno.test("e2e udp: DNS-style queries over 8 flows, every id answered", async () => {
  const dns = startUdpServer(dnsAnswer);
  const echo = startEchoServer();
  let pair: Pair | undefined;
  try {
    pair = await startPair(
      [
        "-l",
        "127.0.0.1:0",
        "-t",
        `127.0.0.1:${echo.port}`,
        "-udp",
        `127.0.0.1:${dns.port}`,
        ...KEY,
      ],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-udp", "127.0.0.1:0", ...KEY],
    );
    const port = udpPortOf(pair.clientLog.text());
    const flows = 8, perFlow = 500;
    const results = await Promise.all(
      Array.from({ length: flows }, (_, i) => resolveAll(port, perFlow, { tag: i })),
    );
    const client = pair.client.udp!, server = pair.server.udp;
    assertEquals(client.stats.flowsOpened, flows);
    assertEquals(server.stats.flowsOpened, flows);
    assertEquals(client.flowCount, flows);
    assertEquals(server.flowCount, flows);
    const asked = results.reduce((a, r) => a + r.asked, 0);
    assert(client.stats.tunnelled >= flows * perFlow, `tunnelled ${client.stats.tunnelled}`);
    assertEquals(client.stats.tunnelled + client.stats.dropped, asked);
    const opened = pair.clientLog.lines.filter((l) => l.startsWith("udp flow opened in: "));
    assertEquals(opened.length, flows, pair.clientLog.text());
    // UDP flows are marked streams: ids from 2^31, even.
    const ids = opened.map((l) => Number(l.match(/\((\d+)\)$/)![1]));
    assert(ids.every((id) => id >= 0x80000000 && id % 2 === 0), `stream ids ${ids}`);
  } finally {
    await pair?.stop();
    await dns.close();
    await echo.close();
  }
});

Deno.test("e2e udp: without --allow-ffi (Deno's own UDP sockets) flows work the same", async () => {
  const dns = startUdpServer(dnsAnswer);
  const serverPort = freePort();
  const flags = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--quiet"];
  const server = spawnDenoWith(flags, "cli/server.ts", [
    "-l",
    `127.0.0.1:${serverPort}`,
    "-udp",
    `127.0.0.1:${dns.port}`,
    ...KEY,
  ]);
  const client = spawnDenoWith(flags, "cli/client.ts", [
    "-l",
    "127.0.0.1:0",
    "-r",
    `127.0.0.1:${serverPort}`,
    "-udp",
    "127.0.0.1:0",
    ...KEY,
  ]);
  try {
    const port = udpPortOf(await waitFor(client.output, /udp listening on: \S+\n/));
    await Promise.all([resolveAll(port, 100, { tag: 1 }), resolveAll(port, 100, { tag: 2 })]);
    // Both flows were answered, so the server has opened both.
    assertEquals(server.output().split("udp flow opened in: ").length - 1, 2, server.output());
    assert(client.output().includes("falling back to Deno.listenDatagram"), client.output());
  } finally {
    await client.kill();
    await server.kill();
    await dns.close();
  }
});

/** Sends `d` from a fresh local socket to `port` and returns the socket (to send again). */
async function sendFrom(port: number, d: Uint8Array): Promise<Deno.DatagramConn> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  await conn.send(d, { transport: "udp", hostname: "127.0.0.1", port });
  return conn;
}

function localPort(conn: Deno.DatagramConn): number {
  return (conn.addr as Deno.NetAddr).port;
}

Deno.test("e2e udp: an idle flow expires on both ends, its stream and state gone; the sender gets a new flow", async () => {
  const dns = startUdpServer(dnsAnswer);
  const echo = startEchoServer();
  let pair: Pair | undefined;
  try {
    pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-udp", `127.0.0.1:${dns.port}`]
        .concat(KEY, ["-udptimeout", "1"]),
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-udp", "127.0.0.1:0", "-udptimeout", "1"]
        .concat(KEY),
    );
    const port = udpPortOf(pair.clientLog.text());
    assert(pair.clientLog.lines.includes("udptimeout: 1"), pair.clientLog.text());
    assert(pair.serverLog.lines.includes(`udp target: 127.0.0.1:${dns.port}`));
    await resolveAll(port, 20);
    const client = pair.client.udp!, server = pair.server.udp;
    assertEquals([client.flowCount, server.flowCount], [1, 1]);
    const clientSession = pair.client.sessions[0];
    const serverSession = [...pair.server.listener.sessions][0];
    assertEquals([clientSession.streamCount, serverSession.streamCount], [1, 1]);

    // One second idle (swept every half second): both ends drop the flow and its stream.
    const deadline = performance.now() + 10000;
    while (
      client.flowCount + server.flowCount + clientSession.streamCount +
            serverSession.streamCount > 0 && performance.now() < deadline
    ) await sleep(50);
    assertEquals(
      [client.flowCount, server.flowCount, clientSession.streamCount, serverSession.streamCount],
      [0, 0, 0, 0],
    );
    assertEquals(client.stats.flowsClosed, 1);
    assertEquals(server.stats.flowsClosed, 1);
    assert(client.stats.flowsExpired + server.stats.flowsExpired >= 1);
    const closed = [...pair.clientLog.lines, ...pair.serverLog.lines].filter((l) =>
      l.startsWith("udp flow closed in: ")
    );
    assertEquals(closed.length, 2, closed.join("\n"));
    assert(closed.some((l) => l.includes("(idle 1s): ")), closed.join("\n"));

    // The same sender is served again, by a new stream.
    await resolveAll(port, 5);
    assertEquals(client.stats.flowsOpened, 2);
    assertEquals(server.stats.flowsOpened, 2);
    assertEquals(clientSession.isClosed, false);
  } finally {
    await pair?.stop();
    await dns.close();
    await echo.close();
  }
});

Deno.test("e2e udp: our server without -udp refuses the flow with a clear line; TCP carries on", async () => {
  const echo = startEchoServer();
  let pair: Pair | undefined;
  let sender: Deno.DatagramConn | undefined;
  try {
    pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, ...KEY],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-udp", "127.0.0.1:0", ...KEY],
    );
    const port = udpPortOf(pair.clientLog.text());
    sender = await sendFrom(port, new Uint8Array([1, 2, 3]));
    const from = `127.0.0.1:${localPort(sender)}`;
    const remote = pair.client.sessions[0].remote;
    await waitFor(
      pair.clientLog.text,
      `udp: server ${remote} refused the UDP flow from ${from}: ` +
        "this server forwards no UDP (start it with -udp host:port)",
      10000,
      "client log",
    );
    await waitFor(
      pair.serverLog.text,
      /udp: refused a UDP flow from \S+\(2147483648\): no -udp target/,
    );
    const client = pair.client.udp!;
    assertEquals(client.stats.flowsFailed, 1);
    assertEquals(client.stats.tunnelled, 0);
    // The sender's next datagrams are dropped and counted until a retry is due.
    await sender.send(new Uint8Array([4]), { transport: "udp", hostname: "127.0.0.1", port });
    const deadline = performance.now() + 5000;
    while (client.stats.dropped < 2 && performance.now() < deadline) await sleep(20);
    assertEquals(client.stats.dropped, 2);
    assertEquals(client.stats.droppedNoFlow, 2);
    // The session and its TCP streams are untouched.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
    const data = seededBytes(100000, 5);
    const reading = (async () => {
      const got = new Uint8Array(data.length);
      let n = 0;
      while (n < got.length) {
        const r = await conn.read(got.subarray(n));
        if (r === null) break;
        n += r;
      }
      return got.subarray(0, n);
    })();
    let at = 0;
    while (at < data.length) at += await conn.write(data.subarray(at));
    assertEquals(await reading, data);
    conn.close();
    assertEquals(pair.server.udp.stats.flowsFailed, 1);
    assertEquals(pair.clientSnmp.ActiveOpens, 1);
  } finally {
    sender?.close();
    await pair?.stop();
    await echo.close();
  }
});

/** A TCP target that counts connections, bytes in and ends, and says `greeting` (if any). */
function startTcpTarget(greeting: string | null) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = { connections: 0, bytes: 0, ended: 0 };
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) {
        stats.connections++;
        conns.push(c);
        (async () => {
          const buf = new Uint8Array(4096);
          try {
            if (greeting !== null) await c.write(new TextEncoder().encode(greeting));
            for (let n = await c.read(buf); n !== null; n = await c.read(buf)) stats.bytes += n;
            stats.ended++;
          } catch { /* closed */ }
        })();
      }
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

const UNSUPPORTED = "the server does not forward UDP \\(kcptun-ts with -udp does; " +
  "Go kcptun and older kcptun-ts take the stream for their TCP target\\)";

for (
  const [what, greeting, listening, says] of [
    ["a silent target", null, true, "did not answer the UDP flow from FROM within 10s"],
    ["a refusing target", null, false, "closed the UDP flow from FROM without answering"],
    [
      "a target that greets first",
      "SSH-2.0-OpenSSH_9.6\r\n",
      true,
      "answered the UDP flow from FROM with bytes that are not kcptun-ts UDP forwarding's",
    ],
  ] as const
) {
  Deno.test({
    name:
      `e2e udp: a Go kcptun server with ${what}: no byte reaches the target, the client says why`,
    ignore: missing("kcptun"),
    fn: async () => {
      const target = startTcpTarget(greeting);
      if (!listening) await target.close();
      const serverPort = freePort();
      const go = startGoServer(serverPort, `127.0.0.1:${target.port}`, KEY);
      const client = spawnClient(
        ["-l", "127.0.0.1:0", "-r", `127.0.0.1:${serverPort}`, "-udp", "127.0.0.1:0", ...KEY],
      );
      let sender: Deno.DatagramConn | undefined;
      try {
        await listeningPort(client);
        const port = udpPortOf(await waitFor(client.output, /udp listening on: \S+\n/));
        sender = await sendFrom(port, new TextEncoder().encode("a datagram"));
        const from = `127\\.0\\.0\\.1:${localPort(sender)}`;
        await waitFor(
          client.output,
          new RegExp(
            `udp: server 127\\.0\\.0\\.1:${serverPort} ${
              says.replace("FROM", from)
            }: ${UNSUPPORTED}`,
          ),
          20000,
          "client output",
        );
        if (listening) {
          // Go dialled its target for the stream (it cannot tell) and had nothing to pass on;
          // the client's FIN makes it close the connection.
          const deadline = performance.now() + 10000;
          while (target.stats.ended < 1 && performance.now() < deadline) await sleep(50);
          assertEquals(target.stats, { connections: 1, bytes: 0, ended: 1 });
        }
      } finally {
        sender?.close();
        await client.kill();
        await go.stop();
        if (listening) await target.close();
      }
    },
  });
}

/** The `drops` counter of the IPv4 UDP socket bound to 127.0.0.1:`port` (/proc/net/udp). */
function kernelDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of Deno.readTextFileSync("/proc/net/udp").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number(f[f.length - 1]);
  }
  throw new Error(`no UDP socket on 127.0.0.1:${port}`);
}

/** `sent, received, dropped` of the `udp flow closed` line starting with `prefix`. */
async function flowCounts(output: () => string, prefix: string) {
  const esc = prefix.replace(/[.()[\]]/g, "\\$&");
  const line = await waitFor(
    output,
    new RegExp(`${esc}.* (\\d+) sent, (\\d+) received, (\\d+) dropped`),
    20000,
  );
  const m = line.match(/(\d+) sent, (\d+) received, (\d+) dropped$/)!;
  return { sent: Number(m[1]), received: Number(m[2]), dropped: Number(m[3]), line };
}

Deno.test("e2e udp: a 1420-byte flood on one flow does not starve a TCP stream of the same session", async () => {
  const echo = startEchoServer();
  const udpEcho = spawnDeno("tests/e2e/udp_peer.ts", ["echo"]);
  const serverPort = freePort();
  let server: Proc | undefined, client: Proc | undefined, flood: Proc | undefined;
  let conn: Deno.Conn | undefined;
  try {
    const echoPort = Number((await waitFor(udpEcho.stdout, /port \d+/)).slice(5));
    server = spawnServer([
      "-l",
      `127.0.0.1:${serverPort}`,
      "-t",
      `127.0.0.1:${echo.port}`,
      "-udp",
      `127.0.0.1:${echoPort}`,
      "-udptimeout",
      "2",
      ...KEY,
    ]);
    client = spawnClient([
      "-l",
      "127.0.0.1:0",
      "-r",
      `127.0.0.1:${serverPort}`,
      "-udp",
      "127.0.0.1:0",
      "-udptimeout",
      "2",
      ...KEY,
    ]);
    const tcpPort = await listeningPort(client);
    const udpPort = udpPortOf(await waitFor(client.output, /udp listening on: \S+\n/));
    conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });

    // Ping-pong of 4 KiB messages on the TCP stream, each echo checked and timed.
    const rtts: number[] = [];
    let round = 0;
    const pingPong = async (until: () => boolean) => {
      const got = new Uint8Array(4096);
      while (!until()) {
        const msg = seededBytes(4096, ++round);
        const t0 = performance.now();
        let at = 0;
        while (at < msg.length) at += await conn!.write(msg.subarray(at));
        let n = 0;
        while (n < got.length) {
          const r = await conn!.read(got.subarray(n));
          if (r === null) throw new Error(`TCP stream closed in round ${round}`);
          n += r;
        }
        rtts.push(performance.now() - t0);
        assertEquals(got, msg, `round ${round}`);
      }
    };
    await pingPong(() => round >= 20); // warm: the session is up

    const before = rtts.length;
    flood = spawnDeno("tests/e2e/udp_peer.ts", ["flood", String(udpPort), "1420", "3"]);
    let floodDone = false;
    flood.done.then(() => floodDone = true);
    await pingPong(() => floodDone);
    const result = JSON.parse(flood.stdout().trim()) as {
      port: number;
      sent: number;
      received: number;
      intact: boolean;
    };
    const during = rtts.slice(before);
    const max = Math.max(...during);
    console.log(
      `flood: ${result.sent} datagrams sent, ${result.received} echoed; TCP: ${during.length} ` +
        `round trips during it, max ${max.toFixed(0)} ms, median ${
          during.sort((a, b) => a - b)[during.length >> 1].toFixed(1)
        } ms`,
    );
    // Not starved: many round trips got through while the flood lasted (3 s, then 1 s of
    // replies), and none waited for it to end. A round trip may wait behind a KCP window of the
    // flood's datagrams, as behind a bulk TCP stream: hundreds of ms on a loaded 2-core box.
    assert(during.length >= 20, `only ${during.length} TCP round trips during the flood`);
    assert(max < 3000, `a TCP round trip took ${max.toFixed(0)} ms during the flood`);
    assert(result.received > 0 && result.intact, JSON.stringify(result));

    // Once idle (2 s), each end closes the flow with its counts. Every datagram the flood sent
    // is accounted for: tunnelled, dropped by the flow's queue, or dropped by the kernel at the
    // client's socket (its receive buffer full).
    const from = `udp flow closed in: 127.0.0.1:${result.port} `;
    const c = await flowCounts(client.output, from);
    const s = await flowCounts(server.output, "udp flow closed in: ");
    const k = kernelDrops(udpPort);
    console.log(`client: ${c.line}; kernel drops at its socket: ${k}\nserver: ${s.line}`);
    assertEquals(c.sent + c.dropped + k, result.sent, `${c.line}; kernel drops ${k}`);
    assertEquals(s.received, c.sent, s.line);
    assertEquals(c.received, s.sent, `${c.line} / ${s.line}`);
    assert(c.received >= result.received);
  } finally {
    conn?.close();
    await flood?.kill();
    await client?.kill();
    await server?.kill();
    await udpEcho.kill();
    await echo.close();
  }
});
