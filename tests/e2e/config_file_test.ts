/**
 * `-c config.json` on both ends through the real binaries: kcptun-shaped files with unknown keys
 * and mixed case; and the `pipeline` key inserting the example plugin `./examples/padding.ts` on
 * both ends (data flows; the datagrams on the wire change size).
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, startEchoServer } from "../support/net.ts";
import { LossyLink } from "../../cli/demo/lossy_link.ts";
import {
  echoTransfer,
  exitWithin,
  type Proc,
  REPO,
  spawnClient,
  spawnServer,
  waitFor,
} from "./harness.ts";

Deno.test("e2e (subprocess): -c config.json on both ends (mixed case, unknown keys, file over flags)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-json-" });
  const echo = startEchoServer();
  const sport = freePort();
  const cport = freePort();
  const procs: Proc[] = [];
  try {
    // One shape per end, as kcptun's server.json / client.json examples, plus noise.
    await Deno.writeTextFile(
      `${dir}/server.json`,
      JSON.stringify(
        {
          Listen: `127.0.0.1:${sport}`,
          TARGET: `127.0.0.1:${echo.port}`,
          Key: "json secret",
          crypt: "twofish",
          Mode: "fast2",
          NoComp: true,
          SmuxVer: 2,
          MTU: 1200,
          comment: "unknown key",
          qpp: false,
          "qpp-count": 61,
        },
        null,
        2,
      ),
    );
    await Deno.writeTextFile(
      `${dir}/client.json`,
      JSON.stringify(
        {
          localaddr: `127.0.0.1:${cport}`,
          RemoteAddr: `127.0.0.1:${sport}`,
          KEY: "json secret",
          Crypt: "twofish",
          MODE: "fast2",
          nocomp: true,
          smuxver: 2,
          mtu: 1200,
          Conn: 2,
          listen: ":1",
          "something-2026": { nested: [1, 2] },
        },
        null,
        2,
      ),
    );
    // Flags the files override: a wrong key and a wrong address.
    const server = spawnServer(["-c", `${dir}/server.json`, "-key", "wrong", "-l", ":1"]);
    procs.push(server);
    const client = spawnClient(["-key", "wrong", "-c", `${dir}/client.json`]);
    procs.push(client);
    await waitFor(server.output, "key derivation done", 10000, "server log");
    await waitFor(client.output, "key derivation done", 10000, "client log");
    for (const p of procs) {
      const log = p.output();
      for (
        const want of [
          "encryption: twofish",
          "smux version: 2",
          "compression: false",
          "nodelay parameters: 1 20 2 1",
          "mtu: 1200",
        ]
      ) assert(log.includes(want + "\n"), `${want}:\n${log}`);
    }
    assert(/ignoring unknown keys: .*"comment"/.test(server.output()), server.output());
    assert(
      /ignoring unknown keys: .*"listen".*"something-2026"/.test(client.output()),
      client.output(),
    );
    assert(client.output().includes("conn: 2\n"), client.output());
    assert(server.output().includes(`listening on: 127.0.0.1:${sport}\n`), server.output());

    const moved = await echoTransfer({ port: cport }, { streams: 4, bytes: 1 << 20 });
    assertEquals(moved, 4 << 20);
    assertEquals(server.output().match(/remote address: /g)?.length, 2, server.output());
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 6000)).code, 0);
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs a tunnel through a recording relay; returns the sizes of the client's datagrams. */
async function upstreamSizes(dir: string, pipeline: string[] | null): Promise<number[]> {
  const echo = startEchoServer();
  const sport = freePort();
  const cport = freePort();
  const sizes: number[] = [];
  const link = new LossyLink({
    targetHostname: "127.0.0.1",
    targetPort: sport,
    onDatagram: (dir, size) => {
      if (dir === "up") sizes.push(size);
    },
  });
  const file = `${dir}/${pipeline ? "padded" : "plain"}.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify(pipeline ? { pipeline, pipelineOptions: { padding: { max: 64 } } } : {}),
  );
  const procs: Proc[] = [];
  try {
    // Run from the repository root: the plugin path is relative to the working directory.
    const server = spawnServer(
      ["-c", file, "-l", `127.0.0.1:${sport}`, "-t", `127.0.0.1:${echo.port}`],
      REPO,
    );
    procs.push(server);
    const client = spawnClient(
      ["-c", file, "-l", `127.0.0.1:${cport}`, "-r", `127.0.0.1:${link.port}`],
      REPO,
    );
    procs.push(client);
    await waitFor(server.output, "key derivation done", 10000, "server log");
    await waitFor(client.output, "key derivation done", 10000, "client log");
    if (pipeline) {
      for (const p of procs) {
        assert(p.output().includes("./examples/padding.ts > crypt > udp\n"), p.output());
      }
    }
    const moved = await echoTransfer({ port: cport }, { streams: 3, bytes: 1 << 20 });
    assertEquals(moved, 3 << 20);
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 6000)).code, 0);
    return sizes;
  } finally {
    for (const p of procs) await p.kill();
    await link.close();
    await echo.close();
  }
}

Deno.test("e2e (subprocess): JSON pipeline with ./examples/padding.ts on both ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-plugin-" });
  try {
    const plain = await upstreamSizes(dir, null);
    const padded = await upstreamSizes(dir, [
      "tcp",
      "smux",
      "snappy",
      "kcp",
      "fec",
      "./examples/padding.ts",
      "crypt",
      "udp",
    ]);
    const big = (s: number[]) => s.filter((n) => n >= 1000);
    const distinct = (s: number[]) => new Set(s).size;
    const modeShare = (s: number[]) => {
      const count = new Map<number, number>();
      for (const n of s) count.set(n, (count.get(n) ?? 0) + 1);
      return Math.max(...count.values()) / s.length;
    };
    const summary = (s: number[]) =>
      `${s.length} datagrams >= 1000 B, ${distinct(s)} sizes, mode share ${modeShare(s)}`;
    const p = big(plain), q = big(padded);
    assert(p.length > 500 && q.length > 500, `${summary(p)}; ${summary(q)}`);
    // Full data datagrams all have the MTU's size without padding; padding spreads them.
    assert(Math.max(...plain) <= 1350 && Math.max(...padded) <= 1350, "datagrams within -mtu");
    assert(modeShare(p) > 0.5, `plain: ${summary(p)}`);
    assert(modeShare(q) < 0.1 && distinct(q) > 40, `padded: ${summary(q)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
