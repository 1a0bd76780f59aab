/**
 * Shadowsocks over our tunnel as a SIP003 plugin, with Debian's shadowsocks-libev on loopback:
 *
 *   SOCKS5 client ─► ss-local ─► our client ≈≈ UDP ≈≈ our server ─► ss-server ─► file server
 *
 * ss-local and ss-server start our ends through `--plugin` (a wrapper script that runs
 * `deno run -A cli/client.ts` / `cli/server.ts`), passing addresses in `SS_*` and the settings in
 * `--plugin-opts`. Files fetched through ss-local's SOCKS5 port must arrive byte for byte.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { spawnCollecting, waitForOutput } from "../support/kcptun.ts";
import { freePort, readExactly, sleep, writeAll } from "../support/net.ts";
import { missing, SS_LOCAL, SS_SERVER } from "../support/requires.ts";
import { REPO, seededBytes, sha256 } from "./harness.ts";

const METHOD = "chacha20-ietf-poly1305";
const PASSWORD = "ss-test-password";
// The kcptun key has each character SIP003 escapes: both ends must read `se;cr=et\x`.
const PLUGIN_OPTS = "key=se\\;cr\\=et\\\\x;crypt=aes-128;mode=fast3;nocomp;ds=5;ps=2;smuxver=2";
/** Files served, by the index byte a client sends first. */
const FILES = [seededBytes(2 << 20, 1), seededBytes(1 << 20, 2), seededBytes(300_000, 3)];

/** A wrapper ss can start as its plugin: records what ss gave it, then becomes our end. */
async function writeWrapper(dir: string, role: "client" | "server"): Promise<string> {
  const path = `${dir}/${role}-plugin.sh`;
  await Deno.writeTextFile(
    path,
    [
      "#!/bin/sh",
      `env | grep '^SS_' > '${dir}/${role}.env'`,
      `echo $$ > '${dir}/${role}.pid'`,
      `exec '${Deno.execPath()}' run -A --quiet '${REPO}cli/${role}.ts' "$@"`,
      "",
    ].join("\n"),
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/** The `SS_*` variables a wrapper recorded. */
async function recordedEnv(dir: string, role: string): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(`${dir}/${role}.env`);
  const out: Record<string, string> = {};
  for (const line of text.split("\n").filter((l) => l !== "")) {
    const eq = line.indexOf("=");
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** A TCP server that answers the index byte a connection sends with that file, then closes. */
function startFileServer(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const [index] = await readExactly(conn, 1, 60000);
          await writeAll(conn, FILES[index]);
        } catch {
          /* the test reports what it did not get */
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await loop;
    },
  };
}

/** Fetches file `index` from 127.0.0.1:`port` through the SOCKS5 proxy at `socksPort`. */
async function fetchViaSocks(socksPort: number, port: number, index: number): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: socksPort });
  try {
    await writeAll(conn, new Uint8Array([5, 1, 0])); // version 5, one method: no authentication
    assertEquals([...await readExactly(conn, 2)], [5, 0], "SOCKS5 method reply");
    // CONNECT to an IPv4 address.
    await writeAll(conn, new Uint8Array([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]));
    const reply = await readExactly(conn, 10, 60000);
    assertEquals([reply[0], reply[1]], [5, 0], "SOCKS5 CONNECT reply");
    await writeAll(conn, new Uint8Array([index]));
    const out = new Uint8Array(FILES[index].length + 1);
    let n = 0;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const got = await conn.read(out.subarray(n));
      if (got === null) return out.subarray(0, n);
      n += got;
      if (n === out.length) throw new Error(`file ${index}: more bytes than sent`);
    }
    throw new Error(`file ${index}: ${n} bytes after 120 s`);
  } finally {
    conn.close();
  }
}

/** True while process `pid` runs `script` (neither gone, nor a zombie, nor a reused pid). */
function runs(pid: number, script: string): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(script);
  } catch {
    return false;
  }
}

Deno.test({
  name: "sip003: ss-local and ss-server run our ends as their plugin; files arrive byte-exact",
  ignore: missing("shadowsocks"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-sip003-" });
  const files = startFileServer();
  const ssPort = freePort(); // ss-server's port: our server's UDP port in plugin mode
  const socksPort = freePort();
  const ssServer = spawnCollecting(SS_SERVER, [
    ...["-s", "127.0.0.1", "-p", String(ssPort), "-k", PASSWORD, "-m", METHOD],
    ...["--plugin", await writeWrapper(dir, "server"), "--plugin-opts", PLUGIN_OPTS],
  ], { NO_COLOR: "1" });
  const ssLocal = spawnCollecting(SS_LOCAL, [
    ...["-s", "127.0.0.1", "-p", String(ssPort), "-b", "127.0.0.1", "-l", String(socksPort)],
    ...["-k", PASSWORD, "-m", METHOD],
    ...["--plugin", await writeWrapper(dir, "client"), "--plugin-opts", PLUGIN_OPTS],
  ], { NO_COLOR: "1" });
  // The plugins' pids, as their wrappers recorded them (also after a failure, to clean up).
  const plugins = (): Array<[number, string]> =>
    (["client", "server"] as const).flatMap((role) => {
      try {
        return [[Number(Deno.readTextFileSync(`${dir}/${role}.pid`)), `cli/${role}.ts`]];
      } catch {
        return [];
      }
    });
  try {
    // Deno's start can be slow on a loaded machine with a cold cache.
    await waitForOutput(ssServer, "key derivation done", 90000);
    await waitForOutput(ssLocal, "key derivation done", 90000);
    const pids = plugins();
    assertEquals(pids.length, 2, "both wrappers ran");

    // What ss gave each plugin, and what our ends made of it.
    const clientEnv = await recordedEnv(dir, "client");
    const serverEnv = await recordedEnv(dir, "server");
    assertEquals(clientEnv.SS_PLUGIN_OPTIONS, PLUGIN_OPTS);
    assertEquals([clientEnv.SS_REMOTE_HOST, clientEnv.SS_REMOTE_PORT], ["127.0.0.1", `${ssPort}`]);
    assertEquals([serverEnv.SS_REMOTE_HOST, serverEnv.SS_REMOTE_PORT], ["127.0.0.1", `${ssPort}`]);
    const local = ssLocal.output();
    const remote = ssServer.output();
    for (
      const line of [
        `listening on: 127.0.0.1:${clientEnv.SS_LOCAL_PORT}\n`,
        `remote address: 127.0.0.1:${ssPort}\n`,
        "encryption: aes-128\n",
        "nodelay parameters: 1 10 2 1\n",
        "compression: false\n",
        "datashard: 5 parityshard: 2\n",
        "smux version: 2\n",
        "shadowsocks plugin (SIP003) for ss-local: ",
      ]
    ) assert(local.includes(line), `ss-local's output lacks ${JSON.stringify(line)}:\n${local}`);
    for (
      const line of [
        `listening on: 127.0.0.1:${ssPort}\n`,
        `target: 127.0.0.1:${serverEnv.SS_LOCAL_PORT}\n`,
        "encryption: aes-128\n",
        "nodelay parameters: 1 10 2 1\n",
        "shadowsocks plugin (SIP003) for ss-server: ",
      ]
    ) assert(remote.includes(line), `ss-server's output lacks ${JSON.stringify(line)}:\n${remote}`);

    // Three files at once through one tunnel session.
    const got = await Promise.all(FILES.map((_, i) => fetchViaSocks(socksPort, files.port, i)));
    for (let i = 0; i < FILES.length; i++) {
      assertEquals(got[i].length, FILES[i].length, `file ${i} length`);
      assertEquals(await sha256(got[i]), await sha256(FILES[i]), `file ${i} sha256`);
    }
    // Each went to ss-server's port, through one session of our server.
    const opened = ssServer.output().split("\n").filter((l) => l.includes("stream opened"));
    assertEquals(opened.length, FILES.length, ssServer.output());
    for (const l of opened) assert(l.endsWith(` out: 127.0.0.1:${serverEnv.SS_LOCAL_PORT}`), l);

    // Stopping ss stops its plugin (ss-libev sends it SIGTERM; we exit cleanly on it).
    await Promise.all([ssLocal.stop(), ssServer.stop()]);
    const deadline = Date.now() + 15000;
    while (pids.some(([pid, script]) => runs(pid, script)) && Date.now() < deadline) {
      await sleep(50);
    }
    for (const [pid, script] of pids) assert(!runs(pid, script), `${script} still runs`);
  } catch (e) {
    console.error(`ss-local:\n${ssLocal.output()}\nss-server:\n${ssServer.output()}`);
    throw e;
  } finally {
    await Promise.all([ssLocal.stop(), ssServer.stop()]);
    for (const [pid, script] of plugins()) {
      if (runs(pid, script)) Deno.kill(pid, "SIGKILL");
    }
    await files.close();
    await Deno.remove(dir, { recursive: true });
  }
});
