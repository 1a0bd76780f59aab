/**
 * A client whose server is not there: loopback answers every datagram with ICMP port
 * unreachable, and the client says so at once (`no server answers at ADDR`), once per 10 s
 * rather than once per datagram, and keeps trying, so that a server started later is reached
 * by the same session. (Go's kcptun says nothing until its session times out.)
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import { startClientEnd, startServerEnd } from "../../cli/run.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { echoTransfer, LogLines, spawnClient, waitFor } from "./harness.ts";

const noServer = (port: number) => `no server answers at 127.0.0.1:${port}`;

Deno.test("e2e: a client without a server says so at once, once, and reaches it when it comes up", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const clientLog = new LogLines();
  const cc = parseClientConfig(["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`], {});
  assert(cc.kind === "run");
  const client = await startClientEnd(cc.config, { snmp: new Snmp(), logger: clientLog.logger });
  let server;
  try {
    const transfer = echoTransfer({ port: client.app.listener.port }, {
      streams: 1,
      bytes: 64 << 10,
      timeoutMs: 30000,
    });
    // Typically a few ms after the first datagram; generous for a loaded machine.
    await waitFor(clientLog.text, noServer(sport), 10000, "client log");
    // KCP retransmits meanwhile, and every retransmission is refused again: still one line.
    await sleep(1500);
    const lines = clientLog.lines.filter((l) => l.startsWith("no server answers"));
    assertEquals(lines, [`${noServer(sport)} (connection refused); still trying`]);
    const sc = parseServerConfig(["-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`], {});
    assert(sc.kind === "run");
    server = await startServerEnd(sc.config, { snmp: new Snmp(), logger: new LogLines().logger });
    assertEquals(await transfer, 64 << 10);
    assertEquals(client.app.sessions.length, 1, "the same session, not a new one");
  } finally {
    await client.stop();
    await server?.stop();
    await echo.close();
  }
});

Deno.test("e2e: the client CLI reports a missing server on stderr, not 30 s later", async () => {
  const sport = freePort();
  const p = spawnClient(["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`]);
  let conn: Deno.Conn | undefined;
  try {
    const m = await waitFor(p.stderr, /listening on: \S*:(\d+)\n/, 15000, "client log");
    const port = Number(m.match(/:(\d+)\n$/)![1]);
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new Uint8Array([1, 2, 3]));
    await waitFor(p.stderr, noServer(sport), 10000, "client log");
  } finally {
    conn?.close();
    await p.kill();
  }
});
