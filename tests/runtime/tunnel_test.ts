/**
 * Tunnels built from pipeline lists, over an in-memory transport stage: `dial`/`listen`,
 * `Tunnel` with `dialSession`/`listenSessions` (a restarted client replacing its server
 * session), lossy links through FEC and a plugin, build errors that name the stage, shared stage
 * lifetime, per-stream stages (qpp and a test-only framing stage with `finish`) and `prepare`.
 */

import padding from "../../examples/padding.ts";
import { PacketBatch } from "../../pipeline/packet.ts";
import type { PipelineSpec } from "../../pipeline/pipeline.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { type BoundaryStageDefinition, StageError } from "../../pipeline/stage.ts";
import { buildTunnel, dial, listen, resolvePipeline } from "../../runtime/api.ts";
import { dialSession } from "../../runtime/dial.ts";
import { listenSessions, type TunnelListener } from "../../runtime/listen.ts";
import type { TunnelSession } from "../../runtime/session.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import { Tunnel } from "../../runtime/tunnel.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import {
  blindStage,
  drain,
  framedStage,
  MemoryNetwork,
  pattern,
  peer,
  readAll,
  readExactly,
  sameBytes,
  sharedXorStage,
  sleep,
  stageCalls,
  testRegistry,
} from "./support.ts";

const KCP = { mode: "fast" };

/** Writes `data` on a new stream of `session`, reads the echo from the server side's `peer`. */
async function roundTrip(
  session: TunnelSession,
  server: TunnelSession,
  data: Uint8Array,
): Promise<void> {
  const s = session.openStream();
  s.write(data.slice());
  const r = await server.acceptStream();
  const got = await readExactly(r.readable, data.length);
  assert(sameBytes(got, data), "bytes differ on the way in");
  r.write(got);
  const back = await readExactly(s.readable, data.length);
  assert(sameBytes(back, data), "bytes differ on the way back");
  s.close();
  r.close();
}

function portOf(l: TunnelListener): number {
  return l.sockets[0].localAddr.port;
}

Deno.test("tunnel: dial and listen by pipeline list, crypt + FEC + snappy, in memory", async () => {
  const net = new MemoryNetwork();
  const registry = testRegistry(net);
  const spec: PipelineSpec = {
    stages: ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "mem"],
    options: { crypt: { key: "k" }, fec: { dataShards: 10, parityShards: 3 }, kcp: KCP },
  };
  const cs = new Snmp(), ss = new Snmp();
  const server = await listen(spec, "127.0.0.1:0", { registry, snmp: ss });
  const client = await dial(spec, `127.0.0.1:${portOf(server)}`, { registry, snmp: cs });
  assertEquals(client.remote, `127.0.0.1:${portOf(server)}`);
  const opened = client.openStream();
  opened.write(new TextEncoder().encode("hello"));
  const session = (await server.accept())!;
  const first = await session.acceptStream();
  assertEquals(first.id, opened.id);
  assertEquals(new TextDecoder().decode(await readExactly(first.readable, 5)), "hello");
  await roundTrip(client, session, pattern(1, 0, 200_000));
  assertEquals([cs.ActiveOpens, ss.PassiveOpens, cs.CurrEstab, ss.CurrEstab], [1, 1, 1, 1]);
  await client.close();
  await server.close();
  assertEquals([cs.CurrEstab, ss.CurrEstab], [0, 0]);
  assertEquals(await server.accept(), null, "a closed listener accepted");
});

Deno.test("tunnel: bytes cross a lossy in-memory link both ways through FEC and a plugin", async () => {
  const net = new MemoryNetwork(0.1, 42);
  const registry = testRegistry(net, padding);
  const spec: PipelineSpec = {
    stages: ["tcp", "smux", "kcp", "fec", "padding", "mem"],
    options: { fec: { dataShards: 4, parityShards: 2 }, padding: { max: 16 }, kcp: KCP },
  };
  const cs = new Snmp(), ss = new Snmp();
  const server = await listen(spec, "127.0.0.1:0", { registry, snmp: ss });
  const client = await dial(spec, `127.0.0.1:${portOf(server)}`, { registry, snmp: cs });
  const up = pattern(2, 0, 300_000), down = pattern(3, 0, 100_000);
  const s = client.openStream();
  const w = s.writable.getWriter();
  const sending = (async () => {
    for (let i = 0; i < up.length; i += 10_000) await w.write(up.slice(i, i + 10_000));
  })();
  const session = (await server.accept())!;
  const r = await session.acceptStream();
  assert(sameBytes(await readExactly(r.readable, up.length), up), "upload differs");
  await sending;
  r.write(down.slice());
  assert(sameBytes(await readExactly(s.readable, down.length), down), "download differs");
  assert(net.dropped > 0, "the link dropped nothing");
  assert(cs.FECRecovered + ss.FECRecovered > 0, "FEC recovered nothing");
  assertEquals([ss.PassiveOpens, cs.ActiveOpens], [1, 1]);
  await client.close();
  await server.close();
  assertEquals([cs.CurrEstab, ss.CurrEstab], [0, 0]);
});

Deno.test("tunnel: a restarted client's new conv (sn 0) replaces its server session; others do not", async () => {
  const net = new MemoryNetwork();
  const registry = testRegistry(net, padding);
  const stages = ["tcp", "smux", "kcp", "fec", "padding", "mem"];
  const options = { fec: { dataShards: 4, parityShards: 2 }, padding: { max: 16 }, kcp: KCP };
  const pipeline = await resolvePipeline({ stages, options }, { registry });
  const snmp = new Snmp();
  const server = await Tunnel.create(pipeline, { role: "server", snmp });
  const listener = await listenSessions(server, "127.0.0.1", 29900);
  const client = await Tunnel.create(pipeline, { role: "client" });
  const to = peer("127.0.0.1", 29900);
  const dialFrom = (conv: number) =>
    dialSession(client, "127.0.0.1", 29900, {
      conv,
      via: { socket: net.bind(5555, to), peer: to },
    });
  const convs = () => [...listener.sessions].map((s) => s.connection.conv);

  const first = await dialFrom(0x1111);
  first.openStream().write(Uint8Array.of(1, 2, 3));
  const s1 = (await listener.accept())!;
  assertEquals([s1.connection.conv, s1.remote], [0x1111, "127.0.0.1:5555"]);
  assertEquals(Array.from(await readExactly((await s1.acceptStream()).readable, 3)), [1, 2, 3]);
  // The client restarts on the same address with a new conv: its first segment has sn 0.
  await first.close(); // closes its socket
  const second = await dialFrom(0x2222);
  second.openStream().write(Uint8Array.of(4, 5));
  const s2 = (await listener.accept())!;
  assertEquals(s2.connection.conv, 0x2222);
  await s1.closed;
  assertEquals(Array.from(await readExactly((await s2.acceptStream()).readable, 2)), [4, 5]);
  assertEquals(convs(), [0x2222]);
  // A third conv whose first segment is not sn 0 (a stray late packet) does not replace it.
  await second.close();
  const third = await dialFrom(0x3333);
  const discard = new PacketBatch();
  third.connection.kcp.send(new Uint8Array(10)); // sn 0, never sent
  third.connection.kcp.flush(performance.now(), discard, client.ctx.pool);
  discard.releaseAll();
  third.openStream().write(Uint8Array.of(6)); // goes out as sn 1
  await sleep(100);
  assertEquals(convs(), [0x2222]);
  assertEquals(snmp.PassiveOpens, 2);
  await third.close();
  await listener.close();
  client.close();
  server.close();
});

Deno.test("tunnel: build errors name the stage and what is wrong", async () => {
  const net = new MemoryNetwork();
  const badMux: BoundaryStageDefinition = {
    name: "badmux",
    kind: "boundary",
    role: "mux",
    create: () => ({ protocol: "yamux" }),
  };
  const noListen: BoundaryStageDefinition = {
    name: "nolisten",
    kind: "boundary",
    role: "transport",
    create: () => Promise.resolve({ dial() {} }),
  };
  const nullApp: BoundaryStageDefinition = {
    name: "nullapp",
    kind: "boundary",
    role: "app",
    create: () => null,
  };
  const registry = testRegistry(net, badMux, noListen, nullApp);
  const build = (stages: string[], options: PipelineSpec["options"] = {}) =>
    buildTunnel({ stages, options }, "client", { registry });
  await assertRejects(
    () => build(["tcp", "badmux", "kcp", "mem"]),
    StageError,
    'stage "badmux" (role mux) gives protocol "yamux"',
  );
  await assertRejects(
    () => build(["tcp", "smux", "kcp", "nolisten"]),
    StageError,
    'stage "nolisten" (role transport) gives no listen() function',
  );
  await assertRejects(
    () => build(["nullapp", "smux", "kcp", "mem"]),
    StageError,
    'stage "nullapp" (role app) made null',
  );
  await assertRejects(
    () => build(["tcp", "kcp", "mem"]),
    StageError,
    "no mux stage",
  );
  // Options: unknown, mistyped, or given to a stage that takes none.
  await assertRejects(
    () => build(["tcp", "smux", "kcp", "mem"], { kcp: { bogus: 1 } }),
    StageError,
    'stage "kcp" takes no option "bogus"',
  );
  await assertRejects(
    () => build(["tcp", "smux", "kcp", "mem"], { kcp: { sndwnd: "128" } }),
    StageError,
    'option "sndwnd" of stage "kcp" must be an integer',
  );
  await assertRejects(
    () => build(["tcp", "smux", "kcp", "mem"], { mem: { port: 1 } }),
    StageError,
    'stage "mem" takes no option "port" (it takes none)',
  );
  await assertRejects(
    () =>
      dial({ stages: ["tcp", "smux", "kcp", "mem"], options: { smux: { smuxver: 3 } } }, "a:1", {
        registry,
      }),
    StageError,
    "version",
  );
});

Deno.test("tunnel: a server refuses a per-session packet stage without peek()", async () => {
  const net = new MemoryNetwork();
  const registry = testRegistry(net, blindStage);
  const spec = { stages: ["tcp", "smux", "kcp", "blind", "crypt", "mem"] };
  const e = await assertRejects(() => listen(spec, "127.0.0.1:0", { registry }), StageError);
  assert(e.message.includes('under stage "blind"'), e.message);
  assert(e.message.includes("peek()"), e.message);
  // A client needs no peek: it knows its conversation.
  const tunnel = await buildTunnel(spec, "client", { registry });
  assertThrows(() => tunnel.serverRouting(), StageError, "peek()");
  tunnel.close();
});

Deno.test("tunnel: closing a client session leaves the tunnel's shared stages working", async () => {
  const net = new MemoryNetwork();
  const calls = stageCalls();
  const registry = testRegistry(net, sharedXorStage(calls));
  const spec: PipelineSpec = {
    stages: ["tcp", "smux", "kcp", "sharedxor", "crypt", "mem"],
    options: { crypt: { key: "k" }, kcp: KCP },
  };
  const server = await listen(spec, "127.0.0.1:0", { registry });
  const tunnel = await buildTunnel(spec, "client", { registry });
  assertEquals(calls.prepare, 2, "prepare ran once per tunnel end");
  const a = await dialSession(tunnel, "127.0.0.1", portOf(server));
  const b = await dialSession(tunnel, "127.0.0.1", portOf(server));
  const created = calls.create;
  a.openStream().write(Uint8Array.of(1));
  b.openStream().write(Uint8Array.of(2));
  const sa = (await server.accept())!, sb = (await server.accept())!;
  const byConv = new Map([[sa.connection.conv, sa], [sb.connection.conv, sb]]);
  assertEquals(calls.create, created, "a session made its own shared stage");
  assert(calls.options.every((o) => o.prepared === true), "create did not get prepare's options");
  await a.close();
  await byConv.get(a.connection.conv)!.close();
  assertEquals(calls.close, 0, "closing a session closed a shared stage");
  const peerOfB = byConv.get(b.connection.conv)!;
  await peerOfB.acceptStream(); // b's first stream
  await roundTrip(b, peerOfB, pattern(4, 0, 50_000));
  // A session from dial() given the tunnel leaves it open too.
  const c = await dial(tunnel, `127.0.0.1:${portOf(server)}`);
  await c.close();
  assertEquals(calls.close, 0);
  tunnel.close();
  assertEquals(calls.close, 1, "Tunnel.close closed the shared stage");
  assertThrows(() => tunnel.clientConnection({ conv: 1, now: 0 }), StageError, "tunnel closed");
  await b.close();
  await server.close();
  assertEquals(calls.close, 2, "the listener's own tunnel closed with it");
  assertEquals(calls.prepare, 2);
});

Deno.test("tunnel: per-stream stages get finish at FIN; a failing finish ends that stream only", async () => {
  const net = new MemoryNetwork();
  const calls = { ...stageCalls(), finishes: [] as string[] };
  const registry = testRegistry(net, framedStage(calls));
  const spec: PipelineSpec = {
    stages: ["tcp", "framed", "smux", "kcp", "mem"],
    options: { kcp: KCP },
  };
  const server = await listen(spec, "127.0.0.1:0", { registry });
  const client = await dial(spec, `127.0.0.1:${portOf(server)}`, { registry });
  assertEquals(calls.prepare, 2, "prepare ran once per tunnel end");
  const perStream = calls.create;
  // A stream carrying whole frames: its peer's reads end cleanly after finish("decode").
  const good = client.openStream();
  good.write(new TextEncoder().encode("hello"));
  good.write(new TextEncoder().encode(" world"));
  const session = (await server.accept())!;
  const g = await session.acceptStream();
  assertEquals(calls.create - perStream, 2, "one instance per stream and end");
  good.closeWrite();
  assert(calls.finishes.includes("encode"), "no finish(encode) at the local close");
  assertEquals(new TextDecoder().decode(await drain(g)), "hello world");
  assertEquals(g.readFailure, null);
  assertEquals(calls.finishes.filter((d) => d === "decode").length, 1);
  g.close();
  // A stream whose peer stops inside a frame: finish("decode") throws there.
  const bad = client.openStream();
  const other = client.openStream();
  bad.write(Uint8Array.of(0xee, 1, 2, 3)); // claims 10 bytes more than it carries
  bad.closeWrite();
  const b = await session.acceptStream();
  const o = await session.acceptStream();
  const e = await assertRejects(() => readAll(b.readable), StageError);
  assert(e.message.includes("framed: stream ended inside a frame (8 bytes held)"), e.message);
  assertEquals(b.readFailure, e.message);
  // The other stream and the session carry on.
  assert(!session.isClosed && !client.isClosed);
  other.write(pattern(5, 0, 30_000));
  assert(sameBytes(await readExactly(o.readable, 30_000), pattern(5, 0, 30_000)));
  o.write(Uint8Array.of(9));
  assertEquals(Array.from(await readExactly(other.readable, 1)), [9]);
  assert(calls.options.every((x) => x.preparedBy === "framed"), "create missed prepare's options");
  assertEquals(calls.prepare, 2, "prepare ran again");
  await client.close();
  await server.close();
});

Deno.test("tunnel: qpp per stream: each stream encrypted on its own; a peer without it reads noise", async () => {
  const net = new MemoryNetwork();
  const registry = testRegistry(net);
  const qpp: PipelineSpec = {
    stages: ["tcp", "qpp", "smux", "kcp", "mem"],
    options: { qpp: { key: "secret", count: 8 }, kcp: KCP },
  };
  const plain: PipelineSpec = { stages: ["tcp", "smux", "kcp", "mem"], options: { kcp: KCP } };
  const server = await listen(qpp, "127.0.0.1:0", { registry });
  const client = await dial(qpp, `127.0.0.1:${portOf(server)}`, { registry });
  const streams: TunnelStream[] = [client.openStream(), client.openStream()];
  const data = pattern(6, 0, 100_000);
  for (const s of streams) s.write(data.slice());
  for (const s of streams) s.closeWrite();
  // The server hears of a session with its first datagram: the streams' SYNs.
  const session = (await server.accept())!;
  for (let i = 0; i < 2; i++) {
    const r = await session.acceptStream();
    assert(sameBytes(await drain(r), data), `stream ${r.id} differs`);
    assertEquals(r.readFailure, null, "qpp's stream did not end cleanly at FIN");
    r.close();
  }
  await client.close();
  // The same bytes to a server without qpp arrive encrypted.
  const bare = await listen(plain, "127.0.0.1:0", { registry });
  const c2 = await dial(qpp, `127.0.0.1:${portOf(bare)}`, { registry });
  const s = c2.openStream();
  s.write(data.slice(0, 1000));
  const r = await (await bare.accept())!.acceptStream();
  const seen = await readExactly(r.readable, 1000);
  assertEquals(seen.length, 1000);
  assert(!sameBytes(seen, data.slice(0, 1000)), "qpp left the bytes as they were");
  await c2.close();
  await bare.close();
  await server.close();
});

Deno.test("tunnel: a server with smux version 0 serves v1 and v2 clients at once", async () => {
  const net = new MemoryNetwork();
  const registry = testRegistry(net);
  const spec = (smuxver: number): PipelineSpec => ({
    stages: ["tcp", "smux", "snappy", "kcp", "crypt", "mem"],
    options: { crypt: { key: "k" }, kcp: KCP, smux: { smuxver } },
  });
  const server = await listen(spec(0), "127.0.0.1:0", { registry });
  const at = `127.0.0.1:${portOf(server)}`;
  const v1 = await dial(spec(1), at, { registry });
  const v2 = await dial(spec(2), at, { registry });
  const s1 = v1.openStream(), s2 = v2.openStream();
  const a = pattern(4, 0, 400_000), b = pattern(5, 0, 400_000);
  s1.write(a.slice());
  s2.write(b.slice());
  const sessions = [(await server.accept())!, (await server.accept())!];
  const echoes = sessions.map(async (session) => {
    const r = await session.acceptStream();
    const first = await readExactly(r.readable, 400_000);
    r.write(first);
    return { version: session.connection.smux.version, fromV1: first[0] === a[0] };
  });
  const back = await Promise.all([
    readExactly(s1.readable, a.length),
    readExactly(s2.readable, b.length),
  ]);
  assert(sameBytes(back[0], a) && sameBytes(back[1], b), "an echo differs");
  // Each session took its client's version (told apart by the data each client sent).
  assert(a[0] !== b[0]);
  for (const e of await Promise.all(echoes)) assertEquals(e.version, e.fromV1 ? 1 : 2);
  await v1.close();
  await v2.close();
  await server.close();
});

Deno.test("tunnel: a client with smux version 0 is refused when built", async () => {
  const registry = testRegistry(new MemoryNetwork());
  await assertRejects(
    () =>
      buildTunnel(
        { stages: ["tcp", "smux", "kcp", "mem"], options: { smux: { smuxver: 0 } } },
        "client",
        { registry },
      ),
    StageError,
    "smux: version 0 (the peer's) is for servers; a client must choose 1 or 2",
  );
});
