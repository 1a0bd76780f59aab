/**
 * `-stats N` through the real programs (subprocesses): one line per period in the log (stderr,
 * or the `-log` file), whose figures move while the pair carries load and fall back after.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, startEchoServer } from "../support/net.ts";
import {
  echoTransfer,
  exitWithin,
  listeningPort,
  type Proc,
  spawnClient,
  spawnServer,
  waitFor,
} from "./harness.ts";

const LINE =
  /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d stats: sent (\d+\.\d\d) MB\/s, received (\d+\.\d\d) MB\/s, retrans (\d+), FEC (\d+) in (\d+\.\d) s; sessions (\d+), streams (\d+), srtt (\d+) ms$/gm;

interface StatsLine {
  sent: number;
  received: number;
  seconds: number;
  sessions: number;
  streams: number;
}

function statsLines(text: string): StatsLine[] {
  return [...text.matchAll(LINE)].map((m) => ({
    sent: Number(m[1]),
    received: Number(m[2]),
    seconds: Number(m[5]),
    sessions: Number(m[6]),
    streams: Number(m[7]),
  }));
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

Deno.test("e2e (subprocess): -stats 1 logs a line a second; its figures move under load", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-stats-" });
  const serverLog = `${dir}/server.log`;
  const procs: Proc[] = [];
  try {
    const server = spawnServer([
      "-l",
      `127.0.0.1:${sport}`,
      "-t",
      `127.0.0.1:${echo.port}`,
      "-stats",
      "1",
      "-log",
      serverLog,
      "-quiet",
    ]);
    procs.push(server);
    const client = spawnClient([
      "-l",
      "127.0.0.1:0",
      "-r",
      `127.0.0.1:${sport}`,
      "-stats",
      "1",
      "-quiet",
    ]);
    procs.push(client);
    const port = await listeningPort(client, 15000);
    const clientText = () => client.output();
    const serverText = () => readText(serverLog);
    const count = (text: () => string, n: number) => () =>
      statsLines(text()).length >= n ? "enough" : "";

    // Idle: the client's session is dialled at startup; nothing flows.
    await waitFor(count(clientText, 2), "enough", 15000, "client stats lines");
    const idle = statsLines(clientText()).at(-1)!;
    assertEquals([idle.sent, idle.received, idle.sessions, idle.streams], [0, 0, 1, 0]);

    // Load spread over a few seconds.
    const t0 = performance.now();
    const before = [statsLines(clientText()).length, statsLines(serverText()).length];
    await echoTransfer({ port }, {
      streams: 2,
      bytes: 6 << 20,
      pauseMs: 25,
      timeoutMs: 60000,
    });
    const loadSeconds = (performance.now() - t0) / 1000;
    // Two more lines each: the last interval of the load is reported, then an idle one.
    const after = [statsLines(clientText()).length, statsLines(serverText()).length];
    await waitFor(count(clientText, after[0] + 2), "enough", 15000, "client stats lines");
    await waitFor(count(serverText, after[1] + 2), "enough", 15000, "server stats lines");

    for (
      const [who, text, from] of [["client", clientText, before[0]], [
        "server",
        serverText,
        before[1],
      ]] as const
    ) {
      const lines = statsLines(text());
      // One line per period: each interval close to a second, and about one per second of run.
      for (const l of lines) assert(l.seconds >= 0.5 && l.seconds <= 5, `${who}: ${l.seconds} s`);
      const during = lines.slice(from);
      assert(during.length >= Math.floor(loadSeconds * 0.5), `${who}: ${during.length} lines`);
      // While the load ran: bytes both ways, the two streams, one session.
      const busy = during.filter((l) => l.sent >= 0.1 && l.received >= 0.1);
      assert(busy.length >= 1, `${who}: no line shows the load:\n${text()}`);
      assert(during.some((l) => l.streams === 2), `${who}: no line shows 2 streams:\n${text()}`);
      // The server learns of the client's session with its first datagram: the load's.
      assert(
        during.every((l) => l.sessions === 1 || (who === "server" && l.sent + l.streams === 0)),
        `${who}: sessions:\n${text()}`,
      );
      // After: quiet again.
      const last = lines.at(-1)!;
      assertEquals(
        [last.sent < 0.01, last.received < 0.01, last.streams, last.sessions],
        [true, true, 0, 1],
        who,
      );
    }
    // The server's lines went to its -log file, not to stderr.
    assertEquals(statsLines(server.output()).length, 0);

    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
