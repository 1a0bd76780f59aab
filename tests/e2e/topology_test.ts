/**
 * Sessions and addresses end to end, in process through the real flag parser: `-conn 3`, port
 * ranges on both sides, unix sockets on both sides, IPv6 loopback.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, freePortRange, sleep, startEchoServer } from "../support/net.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import { startClientEnd, startServerEnd } from "../../cli/run.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { echoTransfer, LogLines, portsFree, startPair, startUnixEcho } from "./harness.ts";

/** `remote address` → streams opened from it, from a server log. */
function streamsBySession(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const r = l.match(/^stream opened in: (\S+)\(\d+\) out: /);
    if (r) m.set(r[1], (m.get(r[1]) ?? 0) + 1);
  }
  return m;
}

Deno.test("e2e: -conn 3 spreads 6 streams over 3 sessions, 2 each", async () => {
  const echo = startEchoServer();
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", "c3"],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", "c3", "-conn", "3"],
  );
  try {
    const moved = await echoTransfer({ port: pair.clientPort }, { streams: 6, bytes: 512 << 10 });
    assertEquals(moved, 6 * (512 << 10));
    const remotes = pair.serverLog.lines.filter((l) => l.startsWith("remote address: "));
    assertEquals(new Set(remotes).size, 3, pair.serverLog.text());
    const by = streamsBySession(pair.serverLog.lines);
    assertEquals([...by.values()], [2, 2, 2], pair.serverLog.text());
    assertEquals(pair.client.sessions.length, 3);
    assertEquals(pair.clientSnmp.ActiveOpens, 3);
    assertEquals(pair.serverSnmp.PassiveOpens, 3);
  } finally {
    await pair.stop();
    await echo.close();
  }
});

Deno.test("e2e: port range on both sides: sessions land on different server ports", async () => {
  const echo = startEchoServer();
  const base = freePortRange(3);
  const range = `${base}-${base + 2}`;
  const pair = await startPair(
    ["-l", `127.0.0.1:${range}`, "-t", `127.0.0.1:${echo.port}`, "-key", "pr"],
    ["-l", "127.0.0.1:0", "-r", `127.0.0.1:${range}`, "-key", "pr", "-conn", "10"],
  );
  try {
    assertEquals(pair.server.ports, [base, base + 1, base + 2]);
    for (let p = base; p <= base + 2; p++) {
      assert(!portsFree(p, "127.0.0.1", { udp: true }), `UDP ${p} should be bound`);
    }
    const moved = await echoTransfer({ port: pair.clientPort }, { streams: 10, bytes: 256 << 10 });
    assertEquals(moved, 10 * (256 << 10));
    // "smux version: 1 on connection: 127.0.0.1:<server port> -> <client>"
    const serverPorts = new Set<number>();
    for (const l of pair.serverLog.lines) {
      const m = l.match(/^smux version: 1 on connection: 127\.0\.0\.1:(\d+) -> /);
      if (m) serverPorts.add(Number(m[1]));
    }
    const dialled = new Set<number>();
    for (const l of pair.clientLog.lines) {
      const m = l.match(/^smux version: 1 on connection: \S+ -> 127\.0\.0\.1:(\d+)$/);
      if (m) dialled.add(Number(m[1]));
    }
    assertEquals(pair.clientSnmp.ActiveOpens, 10);
    // 10 random picks of 3 ports all equal: probability 3^-9.
    assert(serverPorts.size >= 2, `one port only: ${pair.serverLog.text()}`);
    assertEquals([...dialled].sort(), [...serverPorts].sort());
    for (const p of serverPorts) assert(p >= base && p <= base + 2, `port ${p} outside ${range}`);
  } finally {
    await pair.stop();
    await echo.close();
  }
  for (let p = base; p <= base + 2; p++) {
    assert(portsFree(p, "127.0.0.1", { udp: true }), `UDP ${p} still bound after stop`);
  }
});

Deno.test("e2e: unix sockets: client -l path (2026) and server -t path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-unix-" });
  const target = `${dir}/x.sock`;
  const local = `${dir}/y.sock`;
  const echo = startUnixEcho(target);
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", target, "-key", "ux"],
    ["-l", local, "-r", "127.0.0.1:SERVER", "-key", "ux"],
  );
  try {
    assert(pair.serverLog.lines.includes(`target: ${target}`), pair.serverLog.text());
    assert(pair.clientLog.lines.includes(`listening on: ${local}`), pair.clientLog.text());
    assertEquals(pair.clientPort, 0);
    const moved = await echoTransfer({ path: local }, { streams: 4, bytes: 1 << 20 });
    assertEquals(moved, 4 << 20);
    assertEquals(echo.accepted(), 4);
    assert(
      pair.serverLog.lines.some((l) => l.endsWith(`out: ${target}`)),
      pair.serverLog.text(),
    );
  } finally {
    await pair.stop();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e: IPv6 loopback: -l [::1]:P, -r [::1]:P, -t [::1]:P", async () => {
  const echo = startEchoServer("::1");
  const pair = await startPair(
    ["-l", "[::1]:0", "-t", `[::1]:${echo.port}`, "-key", "v6"],
    ["-l", "[::1]:0", "-r", "[::1]:SERVER", "-key", "v6", "-conn", "2"],
  );
  try {
    const moved = await echoTransfer({ port: pair.clientPort, hostname: "::1" }, {
      streams: 4,
      bytes: 1 << 20,
    });
    assertEquals(moved, 4 << 20);
    const remotes = pair.serverLog.lines.filter((l) => l.startsWith("remote address: "));
    assertEquals(remotes.length, 2, pair.serverLog.text());
    for (const r of remotes) assert(/^remote address: \[::1\]:\d+$/.test(r), r);
    assert(
      pair.clientLog.lines.some((l) => /^listening on: \[::1\]:\d+$/.test(l)),
      pair.clientLog.text(),
    );
  } finally {
    await pair.stop();
    await echo.close();
  }
});

Deno.test("e2e: client started before the server: its session is dialled at once, data flows once the server is up", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const clientLog = new LogLines();
  const cc = parseClientConfig(["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`], {});
  assert(cc.kind === "run");
  const client = await startClientEnd(cc.config, { snmp: new Snmp(), logger: clientLog.logger });
  let server;
  try {
    // As kcptun 2021: the session exists before the first connection, and nobody answers yet.
    await sleep(300);
    assertEquals(client.app.sessions.length, 1);
    assert(clientLog.text().includes("smux version: 1 on connection"), clientLog.text());
    const transfer = echoTransfer({ port: client.app.listener.port }, {
      streams: 2,
      bytes: 256 << 10,
      timeoutMs: 15000,
    });
    await sleep(1000);
    const sc = parseServerConfig(["-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`], {});
    assert(sc.kind === "run");
    server = await startServerEnd(sc.config, { snmp: new Snmp(), logger: new LogLines().logger });
    assertEquals(await transfer, 512 << 10);
    assertEquals(client.app.sessions.length, 1);
  } finally {
    await client.stop();
    await server?.stop();
    await echo.close();
  }
});
