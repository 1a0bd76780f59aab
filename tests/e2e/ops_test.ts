/**
 * Operations through the real binaries (`deno task client|server`, `deno run -A cli/client.ts` /
 * `cli/server.ts` as subprocesses): SIGUSR1 and SIGUSR2, `-snmplog`, `-log`, `-quiet`, clean
 * exit on SIGINT and SIGTERM.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import {
  echoTransfer,
  exitWithin,
  listeningPort,
  ownsInspectorPort,
  portsFree,
  type Proc,
  spawnClient,
  spawnDenoWith,
  spawnServer,
  spawnTask,
  type TaskProc,
  waitFor,
} from "./harness.ts";

/** kcptun's SIGUSR1 field order (kcp-go's Snmp struct), written out independently of ours. */
const STRUCT_ORDER =
  "BytesSent BytesReceived MaxConn ActiveOpens PassiveOpens CurrEstab InErrs InCsumErrors " +
  "KCPInErrors InPkts OutPkts InSegs OutSegs InBytes OutBytes RetransSegs FastRetransSegs " +
  "EarlyRetransSegs LostSegs RepeatSegs FECRecovered FECErrs FECParityShards FECShortShards";

/** kcptun's `-snmplog` header (kcp-go's `Snmp.Header()` after `Unix`). */
const CSV_HEADER = "Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,CurrEstab," +
  "InErrs,InCsumErrors,KCPInErrors,InPkts,OutPkts,InSegs,OutSegs,InBytes,OutBytes,RetransSegs," +
  "FastRetransSegs,EarlyRetransSegs,LostSegs,RepeatSegs,FECParityShards,FECErrs,FECRecovered," +
  "FECShortShards";

const DUMP = new RegExp(
  "^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d KCP SNMP:&\\{" +
    STRUCT_ORDER.split(" ").map((f) => `${f}:(\\d+)`).join(" ") + "\\}$",
  "m",
);

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** `snmp-20060102.log` formatted for `d` in local time. */
function dayName(d: Date): string {
  return `snmp-${d.getFullYear()}${pad2(d.getMonth() + 1)}${pad2(d.getDate())}.log`;
}

/** What Deno prints when SIGUSR1 starts (or fails to start) its inspector. */
const INSPECTOR_TEXT = /Debugger listening|chrome:\/\/inspect|inspector server/i;

/** Binds 127.0.0.1:9229 if it is free (null when another process has it: the same for Deno). */
function holdInspectorPort(): Deno.Listener | null {
  try {
    return Deno.listen({ hostname: "127.0.0.1", port: 9229 });
  } catch {
    return null;
  }
}

Deno.test("e2e (deno task): SIGUSR1 and SIGUSR2 print kcptun's SNMP line; no inspector text, port closed", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-usr1-" });
  const procs: TaskProc[] = [];
  let held: Deno.Listener | null = null;
  try {
    const server = spawnTask(
      "server",
      ["-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`],
      dir,
    );
    procs.push(server);
    const client = spawnTask("client", ["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`], dir);
    procs.push(client);
    await waitFor(server.output, "key derivation done", 15000, "server log");
    const port = await listeningPort(client, 15000);
    await echoTransfer({ port }, { streams: 2, bytes: 1 << 20 });
    const pids = await Promise.all(procs.map((p) => p.pid()));
    // Deno's own SIGUSR1 handler is installed 500 ms after start: be past that.
    await sleep(600);

    const dumps = (p: Proc) => p.output().match(new RegExp(DUMP.source, "gm"))?.length ?? 0;
    for (const p of procs) p.signal("SIGUSR1");
    for (const p of procs) {
      await waitFor(() => dumps(p) >= 1 ? "dumped" : "", "dumped", 5000, p.output());
      const m = p.output().match(DUMP)!;
      const fields = m.slice(1).map(Number);
      // BytesSent, BytesReceived: the 2 MiB each way went through both ends.
      assert(fields[0] >= 2 << 20 && fields[1] >= 2 << 20, m[0]);
    }
    const c = client.output().match(DUMP)!.slice(1).map(Number);
    assertEquals(c[3], 1, "client ActiveOpens");
    const s = server.output().match(DUMP)!.slice(1).map(Number);
    assertEquals(s[4], 1, "server PassiveOpens");
    // Past the handler's last close (1 s): the inspector Deno opened is closed.
    await sleep(1200);
    for (const pid of pids) {
      assert(!ownsInspectorPort(pid), "the inspector still listens on 127.0.0.1:9229");
    }

    // With 9229 taken, Deno fails to start the inspector and says so, unless silenced.
    held = holdInspectorPort();
    for (const p of procs) p.signal("SIGUSR1");
    for (const p of procs) await waitFor(() => dumps(p) >= 2 ? "dumped" : "", "dumped", 5000);
    await sleep(300);
    held?.close();
    held = null;

    // SIGUSR2: the same line, and Deno has nothing to do with it.
    for (const p of procs) p.signal("SIGUSR2");
    for (const p of procs) await waitFor(() => dumps(p) >= 3 ? "dumped" : "", "dumped", 5000);
    for (const pid of pids) assert(!ownsInspectorPort(pid), "inspector open after SIGUSR2");

    for (const p of procs) {
      assert(!INSPECTOR_TEXT.test(p.output()), `inspector text in the output:\n${p.output()}`);
    }
    // Still serving after the signals.
    await echoTransfer({ port }, { streams: 1, bytes: 64 << 10 });
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
  } finally {
    held?.close();
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e (subprocess): SIGUSR2 dumps under a plain deno run, without Deno's inspector or its text", async () => {
  // No --quiet and no DENO_LOG: nothing hides what Deno would print.
  const client = spawnDenoWith(["-A"], "cli/client.ts", ["-l", "127.0.0.1:0", "-r", "127.0.0.1:9"]);
  try {
    await listeningPort(client, 15000);
    await sleep(600); // past the 500 ms after which Deno answers SIGUSR1
    client.signal("SIGUSR2");
    await waitFor(client.output, DUMP, 5000, "SIGUSR2 output");
    await sleep(300);
    assert(!ownsInspectorPort(client.child.pid), "inspector open after SIGUSR2");
    assert(!INSPECTOR_TEXT.test(client.output()), client.output());
    client.signal("SIGTERM");
    assertEquals((await exitWithin(client, 8000)).code, 0, client.output());
  } finally {
    await client.kill();
  }
});

Deno.test("e2e (subprocess): -log, -quiet, -snmplog (Go layout, period 1), clean exit on SIGINT/SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-ops-" });
  const echo = startEchoServer();
  const sport = freePort();
  const cport = freePort();
  const serverLog = `${dir}/server.log`;
  const clientLog = `${dir}/client.log`;
  const procs: Proc[] = [];
  const t0 = Date.now();
  try {
    const server = spawnServer([
      ...["-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`, "-key", "ops"],
      ...["-log", serverLog, "-snmplog", `${dir}/snmp-20060102.log`, "-snmpperiod", "1"],
    ]);
    procs.push(server);
    const client = spawnClient([
      ...["-l", `127.0.0.1:${cport}`, "-r", `127.0.0.1:${sport}`, "-key", "ops"],
      ...["-log", clientLog, "-quiet", "-snmplog", `${dir}/client-snmp.csv`, "-snmpperiod", "60"],
    ]);
    procs.push(client);
    await waitFor(() => readText(serverLog), "key derivation done", 10000, serverLog);
    await waitFor(() => readText(clientLog), "key derivation done", 10000, clientLog);

    // An idle connection stays open across the signal: exit must not wait for it.
    const idle = await Deno.connect({ hostname: "127.0.0.1", port: cport });
    const moved = await echoTransfer({ port: cport }, { streams: 3, bytes: 1 << 20 });
    assertEquals(moved, 3 << 20);

    // At least 3 periodic rows (one per second).
    const snmpFile = () => {
      const names = [dayName(new Date(t0)), dayName(new Date())];
      return names.map((n) => `${dir}/${n}`).find((p) => readText(p) !== "") ?? "";
    };
    await waitFor(
      () => readText(snmpFile()).split("\n").length >= 5 ? "rows" : "",
      "rows",
      8000,
      `snmplog in ${dir}: ${[...Deno.readDirSync(dir)].map((e) => e.name)}`,
    );

    client.signal("SIGINT");
    server.signal("SIGTERM");
    const [cs, ss] = [await exitWithin(client, 6000), await exitWithin(server, 6000)];
    const t1 = Date.now();
    idle.close();
    assertEquals(cs.code, 0, client.output());
    assertEquals(ss.code, 0, server.output());
    // Sockets closed: the ports can be bound again at once.
    assert(portsFree(cport, "127.0.0.1", { tcp: true }), `TCP ${cport} still in use`);
    assert(portsFree(sport, "127.0.0.1", { udp: true }), `UDP ${sport} still in use`);
    // -log: nothing on stderr, everything in the files, in Go's log format.
    assertEquals(client.stderr(), "");
    assertEquals(server.stderr(), "");
    const slog = readText(serverLog);
    const clog = readText(clientLog);
    for (const [name, text] of [["server", slog], ["client", clog]]) {
      for (const line of text.trimEnd().split("\n")) {
        assert(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \S/.test(line), `${name} log line: ${line}`);
      }
    }
    assert(slog.includes(`listening on: 127.0.0.1:${sport}\n`), slog);
    assert(clog.includes(`listening on: 127.0.0.1:${cport}\n`), clog);
    // -quiet: no stream lines on the client; the server (not quiet) has them.
    assert(clog.includes("quiet: true\n") && !clog.includes("stream opened"), clog);
    assertEquals(slog.match(/stream opened in: /g)?.length, 4, slog);
    // The idle stream's close is logged too: the server closes its streams before it exits.
    assertEquals(slog.match(/stream closed in: /g)?.length, 4, slog);

    // -snmplog: kcptun's header, then one row per second, and a last row at exit.
    const text = readText(snmpFile());
    const [header, ...rows] = text.trimEnd().split("\n");
    assertEquals(header, CSV_HEADER);
    assert(rows.length >= 4, text);
    let prevUnix = 0;
    for (const row of rows) {
      const cols = row.split(",");
      assertEquals(cols.length, 25, row);
      assert(cols.every((c) => /^\d+$/.test(c)), row);
      const unix = Number(cols[0]);
      assert(unix >= Math.floor(t0 / 1000) && unix <= Math.ceil(t1 / 1000), `Unix ${unix}`);
      assert(
        unix >= prevUnix && unix <= prevUnix + 2 || prevUnix === 0,
        `Unix ${prevUnix}→${unix}`,
      );
      prevUnix = unix;
    }
    const last = rows[rows.length - 1].split(",").map(Number);
    assert(last[1] >= 3 << 20 && last[2] >= 3 << 20, `BytesSent/Received: ${rows.at(-1)}`);
    assertEquals(last[5], 1, "PassiveOpens");
    // -snmpperiod 60: no periodic row in the run, but the final one at exit.
    const clientCsv = readText(`${dir}/client-snmp.csv`).trimEnd().split("\n");
    assertEquals(clientCsv.length, 2, clientCsv.join("\n"));
    assertEquals(clientCsv[0], CSV_HEADER);
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e (subprocess): SIGTERM during a bulk transfer: both ends exit 0 at once, ports free", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const procs: Proc[] = [];
  try {
    const server = spawnServer(["-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`]);
    procs.push(server);
    const client = spawnClient(["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`]);
    procs.push(client);
    await waitFor(server.output, "key derivation done", 10000, "server log");
    const port = await listeningPort(client);
    const transfer = echoTransfer({ port }, { streams: 4, bytes: 16 << 20, timeoutMs: 20000 })
      .then(() => "finished", (e) => String(e));
    await waitFor(server.output, /(?:stream opened[^]*){4}/, 10000, "server log");
    await sleep(300);
    const t0 = performance.now();
    client.signal("SIGTERM");
    server.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 6000)).code, 0, p.output());
    const took = performance.now() - t0;
    assert(took < 5000, `exit took ${took} ms (the forced exit is at 5 s)`);
    // The transfer was cut (the tunnel is gone), not hung.
    assert((await transfer).includes("closed after"), await transfer);
    assert(portsFree(port, "127.0.0.1", { tcp: true }), `TCP ${port} still in use`);
    assert(portsFree(sport, "127.0.0.1", { udp: true }), `UDP ${sport} still in use`);
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
  }
});
