import { PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { DenoUdpTransport } from "../../transports/deno_udp.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { batchOf, Collector, payloads, turns } from "./helpers.ts";

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`deno udp fallback: both ways on ${host}, in order`, async () => {
    const pool = new PacketPool();
    const t = new DenoUdpTransport({ pool });
    const srv = await t.listen(host, 0);
    const cli = await t.dial(host, srv.localAddr.port);
    try {
      const atServer = new Collector(srv), atClient = new Collector(cli);
      const sent = payloads(50, 1350);
      cli.send(batchOf(pool, sent));
      const got = await atServer.waitFor(50);
      assertEquals(got.map((r) => r.data), sent);
      assertEquals(got[0].peer.hostname, host);
      assert(got.every((r) => r.peer === got[0].peer), "one interned peer");
      srv.send(batchOf(pool, [new Uint8Array([9])], got[0].peer));
      const back = await atClient.waitFor(1);
      assertEquals(back[0].data, new Uint8Array([9]));
      assert(back[0].peer === cli.remoteAddr);
    } finally {
      await cli.close();
      await srv.close();
    }
    assertEquals(pool.available, pool.created);
  });
}

Deno.test("deno udp fallback: dual-stack listen shows IPv4 peers as IPv4", async () => {
  const pool = new PacketPool();
  const t = new DenoUdpTransport({ pool });
  const srv = await t.listen("", 0);
  const cli = await t.dial("127.0.0.1", srv.localAddr.port);
  try {
    const c = new Collector(srv), back = new Collector(cli);
    cli.send(batchOf(pool, [new Uint8Array([1])]));
    const got = await c.waitFor(1);
    assertEquals(got[0].peer.key, `127.0.0.1:${cli.localAddr.port}`);
    assertEquals(got[0].peer.family, "ipv4");
    srv.send(batchOf(pool, [new Uint8Array([2])], got[0].peer));
    assertEquals((await back.waitFor(1))[0].data, new Uint8Array([2]));
  } finally {
    await cli.close();
    await srv.close();
  }
});

Deno.test("deno udp fallback: foreign sources and oversize datagrams are dropped", async () => {
  const pool = new PacketPool();
  const t = new DenoUdpTransport({ pool, maxDatagram: 100 });
  const srv = await t.listen("127.0.0.1", 0);
  const cli = await t.dial("127.0.0.1", srv.localAddr.port);
  const third = await t.listen("127.0.0.1", 0);
  try {
    const atClient = new Collector(cli), atServer = new Collector(srv);
    const client: PeerAddress = {
      family: "ipv4",
      hostname: "127.0.0.1",
      port: cli.localAddr.port,
      key: "",
    };
    third.send(batchOf(pool, [new Uint8Array([3])], client));
    await turns(5);
    srv.send(batchOf(pool, [new Uint8Array([1])], client));
    const got = await atClient.waitFor(1);
    assertEquals(got.map((r) => r.data[0]), [1]);
    assertEquals(cli.stats.rxForeign, 1);
    cli.send(batchOf(pool, [new Uint8Array(101), new Uint8Array(100)]));
    const s = await atServer.waitFor(1);
    await turns(5);
    assertEquals(s.map((r) => r.data.length), [100]);
    assertEquals(srv.stats.rxOversize, 1);
  } finally {
    await third.close();
    await cli.close();
    await srv.close();
  }
});

Deno.test("deno udp fallback: socket options are ignored with one warning", async () => {
  const lines: string[] = [];
  const t = new DenoUdpTransport({ pool: new PacketPool(), log: (l) => lines.push(l) });
  const a = await t.listen("127.0.0.1", 0, { sockbuf: 1 << 20, dscp: 46 });
  const b = await t.listen("127.0.0.1", 0, { sockbuf: 1 << 20 });
  await a.close();
  await b.close();
  assertEquals(lines.length, 1);
  assert(lines[0].includes("ignored"));
});

Deno.test("udpTransport() without FFI permission warns once and falls back", async () => {
  const script = new URL("./fixtures/no_ffi.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    // The lock file, not --no-lock (which re-resolves npm packages); --quiet keeps Deno's own
    // lines (`Download …` on a cold cache) out of the output.
    args: ["run", "--allow-net", "--allow-read", "--unstable-net", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text.split("\n").pop()!);
  assertEquals(r.kind, "DenoUdpTransport");
  assertEquals(r.result, "127.0.0.1 42");
  assertEquals(r.lines.length, 2); // the fallback warning, then the ignored-options warning
  assert(r.lines[0].startsWith("udp: FFI not permitted"), r.lines[0]);
  assert(r.lines[0].includes("falling back to Deno.listenDatagram"), r.lines[0]);
});
