/**
 * `deno task client|server` run from another directory: relative paths in the command line and
 * in the `-c` file (`-c`, `-log`, `-snmplog`, a plugin module, a unix socket) are the user's,
 * not the repository's.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, startEchoServer } from "../support/net.ts";
import { echoTransfer, exitWithin, REPO, spawnTask, type TaskProc, waitFor } from "./harness.ts";

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("e2e (deno task): relative paths resolve from where the task was run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-cwd-" });
  const echo = startEchoServer();
  const sport = freePort();
  const procs: TaskProc[] = [];
  // Both ends pad their datagrams through a plugin found by a path relative to `dir`.
  const pipeline = ["tcp", "smux", "snappy", "kcp", "fec", "./stages/pad.ts", "crypt", "udp"];
  // The client's end faces a unix socket: an explicit pipeline is used as written.
  const clientPipeline = ["unix", ...pipeline.slice(1)];
  try {
    await Deno.mkdir(`${dir}/logs`);
    await Deno.mkdir(`${dir}/stages`);
    await Deno.writeTextFile(
      `${dir}/stages/pad.ts`,
      `export { default } from ${
        JSON.stringify(new URL("examples/padding.ts", `file://${REPO}`).href)
      };\n`,
    );
    await Deno.writeTextFile(
      `${dir}/server.json`,
      JSON.stringify({
        listen: `127.0.0.1:${sport}`,
        target: `127.0.0.1:${echo.port}`,
        key: "cwd",
        log: "logs/server.log",
        pipeline,
      }),
    );
    await Deno.writeTextFile(
      `${dir}/client.json`,
      JSON.stringify({
        localaddr: "./client.sock",
        remoteaddr: `127.0.0.1:${sport}`,
        key: "cwd",
        snmplog: "logs/client-snmp.csv",
        snmpperiod: 60,
        pipeline: clientPipeline,
      }),
    );
    const server = spawnTask("server", ["-c", "server.json"], dir);
    procs.push(server);
    const client = spawnTask("client", ["-c", "client.json", "-log", "logs/client.log"], dir);
    procs.push(client);
    await waitFor(
      () => readText(`${dir}/logs/server.log`),
      "key derivation done",
      15000,
      "server.log",
    );
    await waitFor(
      () => readText(`${dir}/logs/client.log`),
      "key derivation done",
      15000,
      "client.log",
    );
    const moved = await echoTransfer({ path: `${dir}/client.sock` }, {
      streams: 2,
      bytes: 256 << 10,
    });
    assertEquals(moved, 2 * (256 << 10));

    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
    const slog = readText(`${dir}/logs/server.log`);
    const clog = readText(`${dir}/logs/client.log`);
    assert(
      slog.includes("pipeline: tcp > smux > snappy > kcp > fec > ./stages/pad.ts > crypt > udp"),
      slog,
    );
    assert(clog.includes("stream opened"), clog);
    // The final -snmplog row at exit, in the user's directory.
    const csv = readText(`${dir}/logs/client-snmp.csv`);
    assert(csv.startsWith("Unix,BytesSent,"), csv);
    // Nothing went to the repository.
    for (const f of ["logs/server.log", "logs/client.log", "logs/client-snmp.csv", "client.sock"]) {
      assert(!exists(`${REPO}${f}`), `${REPO}${f} was written`);
    }
    // -log took every log line (Deno itself may print `Download …` lines on a cold cache).
    for (const p of procs) {
      assert(!/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /m.test(p.output()), p.output());
    }
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
