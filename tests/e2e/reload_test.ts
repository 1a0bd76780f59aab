/**
 * SIGHUP through the real programs (`deno run -A cli/server.ts` / `cli/client.ts` as
 * subprocesses): the `-log` and `-snmplog` files reopened after a rename, as logrotate's
 * `postrotate` does it; reloadable keys of the `-c` file applied; other keys named in one line
 * while the sessions stay up; a broken file refused without stopping anything.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, readExactly, startEchoServer, writeAll } from "../support/net.ts";
import {
  exitWithin,
  listeningPort,
  type Proc,
  seededBytes,
  spawnClient,
  spawnServer,
  waitFor,
} from "./harness.ts";

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Sends bytes on `conn` and checks the echo. */
async function echoes(conn: Deno.Conn, seed: number): Promise<void> {
  const data = seededBytes(20000, seed);
  await writeAll(conn, data);
  const got = await readExactly(conn, data.length, 15000);
  assertEquals(got, data);
}

Deno.test("e2e (subprocess): SIGHUP after a rename writes fresh -log and -snmplog files at the configured paths", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-hup-" });
  const log = `${dir}/server.log`, csv = `${dir}/snmp.csv`;
  let server: Proc | null = null;
  try {
    server = spawnServer([
      ...["-l", `127.0.0.1:${freePort()}`, "-t", "127.0.0.1:9", "-key", "hup"],
      ...["-log", log, "-snmplog", csv, "-snmpperiod", "1"],
    ]);
    await waitFor(() => readText(log), "key derivation done", 15000, "server.log");
    await waitFor(() => readText(csv), /\n\d+,/, 10000, "snmp.csv");
    // What logrotate does without copytruncate: rename, then the postrotate SIGHUP.
    Deno.renameSync(log, `${log}.1`);
    Deno.renameSync(csv, `${csv}.1`);
    server.signal("SIGHUP");
    await waitFor(() => readText(log), `SIGHUP: reopened ${log}\n`, 10000, "new server.log");
    server.signal("SIGUSR2");
    await waitFor(() => readText(log), "KCP SNMP:&{", 10000, "new server.log");
    const fresh = readText(log);
    assert(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d SIGHUP: reopened /.test(fresh), fresh);
    const csvText = await waitFor(() => readText(csv), /^Unix,BytesSent,.*\n\d+,.*\n/, 10000);
    assert(csvText.startsWith("Unix,"), "the fresh CSV starts with its header");
    const old = readText(`${log}.1`);
    assert(old.includes("key derivation done"), old);
    assert(!old.includes("SIGHUP") && !old.includes("KCP SNMP"), `old file written to:\n${old}`);
    // Still running, nothing on stderr (everything goes to the file), and a clean exit.
    server.signal("SIGTERM");
    assertEquals((await exitWithin(server, 8000)).code, 0, server.output());
    assertEquals(server.stderr(), "");
  } finally {
    await server?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e (subprocess): SIGHUP re-reads -c: quiet and snmpperiod applied, key/mtu/sndwnd named once, sessions kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-hupc-" });
  const echo = startEchoServer();
  const sport = freePort();
  const cfg = `${dir}/server.json`, log = `${dir}/server.log`, csv = `${dir}/snmp.csv`;
  const base = {
    listen: `127.0.0.1:${sport}`,
    target: `127.0.0.1:${echo.port}`,
    key: "first secret",
    log,
    snmplog: csv,
    snmpperiod: 3600,
    quiet: false,
  };
  const write = (o: Record<string, unknown>) => Deno.writeTextFileSync(cfg, JSON.stringify(o));
  const procs: Proc[] = [];
  const conns: Deno.Conn[] = [];
  try {
    write(base);
    const server = spawnServer(["-c", cfg]);
    procs.push(server);
    await waitFor(() => readText(log), "key derivation done", 15000, "server.log");
    const client = spawnClient([
      ...["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`, "-key", "first secret"],
    ]);
    procs.push(client);
    const port = await listeningPort(client, 15000);

    const a = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(a);
    await echoes(a, 1);
    await waitFor(() => readText(log), "stream opened", 10000, "server.log");

    // Reloadable keys and keys that need a restart, in one edit.
    write({ ...base, quiet: true, snmpperiod: 1, key: "second secret", mtu: 1200, sndwnd: 512 });
    server.signal("SIGHUP");
    await waitFor(() => readText(log), "not applied, a restart", 10000, "server.log");
    const text = readText(log);
    assert(
      text.includes(`SIGHUP: ${cfg}: applied snmpperiod 3600 -> 1, quiet false -> true\n`),
      text,
    );
    const notApplied = text.split("\n").filter((l) => l.includes("not applied"));
    assertEquals(notApplied.length, 1, text);
    assert(
      notApplied[0].endsWith(
        `SIGHUP: ${cfg}: not applied, a restart is needed to change: key, mtu, sndwnd`,
      ),
      notApplied[0],
    );
    assert(!text.includes("second secret"), "the key's value is never logged");

    // snmpperiod took effect: rows every second now instead of every hour.
    await waitFor(() => readText(csv), /\n\d+,.*\n\d+,/, 10000, "snmp.csv");
    // The session survived, with its old key: the open stream and a new one both echo.
    await echoes(a, 2);
    const b = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(b);
    await echoes(b, 3);
    // quiet took effect: the new stream was not logged.
    const opened = readText(log).split("\n").filter((l) => l.includes("stream opened"));
    assertEquals(opened.length, 1, readText(log));

    // A broken file is refused with one line; everything keeps running as it was.
    Deno.writeTextFileSync(cfg, '{"quiet": false,');
    server.signal("SIGHUP");
    const refused = await waitFor(() => readText(log), /SIGHUP: .* not reloaded, .*\n/, 10000);
    assert(refused.includes(`the running settings stay: config file "${cfg}": `), refused);
    await echoes(a, 4);
    assert(!client.output().includes("session"), `client lost its session:\n${client.output()}`);

    for (const c of conns.splice(0)) c.close();
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e (subprocess): SIGHUP moves -log to the path the -c file names now", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-huplog-" });
  const cfg = `${dir}/client.json`, first = `${dir}/one.log`, second = `${dir}/two.log`;
  const base = { localaddr: "127.0.0.1:0", remoteaddr: "127.0.0.1:9", key: "hup" };
  let client: Proc | null = null;
  try {
    Deno.writeTextFileSync(cfg, JSON.stringify({ ...base, log: first }));
    client = spawnClient(["-c", cfg]);
    await waitFor(() => readText(first), "key derivation done", 15000, "one.log");
    Deno.writeTextFileSync(cfg, JSON.stringify({ ...base, log: second }));
    client.signal("SIGHUP");
    await waitFor(() => readText(second), "applied log", 10000, "two.log");
    assert(readText(first).includes(`SIGHUP: the log continues in ${second}\n`), readText(first));
    assert(
      readText(second).includes(`SIGHUP: ${cfg}: applied log "${first}" -> "${second}"`),
      readText(second),
    );
    // A log path that cannot be opened is refused; the log stays where it is.
    Deno.writeTextFileSync(cfg, JSON.stringify({ ...base, log: `${dir}/missing/three.log` }));
    client.signal("SIGHUP");
    await waitFor(() => readText(second), "not applied: log", 10000, "two.log");
    assert(readText(second).includes("no such file or directory"), readText(second));
    client.signal("SIGTERM");
    assertEquals((await exitWithin(client, 8000)).code, 0, client.output());
  } finally {
    await client?.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
