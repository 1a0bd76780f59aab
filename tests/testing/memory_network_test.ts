/**
 * testing.ts's in-memory network: the transport contract (ports, dialled peers, ownership),
 * seeded loss, reordering and duplication, and whole tunnels with plugins in their pipelines
 * running on it in one process.
 */

import padding from "../../examples/padding.ts";
import { dial, listen } from "../../runtime/api.ts";
import { dialSession } from "../../runtime/dial.ts";
import { listenSessions } from "../../runtime/listen.ts";
import { builtinRegistry } from "../../runtime/registry.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import { Tunnel } from "../../runtime/tunnel.ts";
import { buildPipeline } from "../../pipeline/pipeline.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import type { StreamStageDefinition } from "../../pipeline/stage.ts";
import { MemoryNetwork } from "../../testing.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";

/** Datagrams `[i]` (one byte each) from `from`'s socket; what arrives at `to`, in order. */
async function exchange(net: MemoryNetwork, count: number): Promise<number[]> {
  const server = await net.listen("127.0.0.1", 5000);
  const client = await net.dial("127.0.0.1", 5000);
  const got: number[] = [];
  server.receive((batch) => {
    for (let i = 0; i < batch.length; i++) got.push(batch.packets[i].bytes()[0]);
    batch.releaseAll();
  });
  const out = new PacketBatch();
  for (let i = 0; i < count; i++) out.push(net.pool.from(Uint8Array.of(i)));
  client.send(out);
  assertEquals(out.length, 0);
  // Reordered datagrams arrive reorderDelay (10 ms here) after the rest.
  await new Promise((r) => setTimeout(r, 60));
  await client.close();
  await server.close();
  return got;
}

Deno.test("memory network: a perfect network delivers every datagram once, in order", async () => {
  const net = new MemoryNetwork();
  const got = await exchange(net, 100);
  assertEquals(got, Array.from({ length: 100 }, (_, i) => i));
  assertEquals(net.stats.delivered, 100);
  assertEquals(net.pool.available, net.pool.created);
});

Deno.test("memory network: loss, duplication and reordering follow their rates and seed", async () => {
  const lossy = { loss: 0.2, duplicate: 0.2, reorder: 0.2 };
  const a = await exchange(new MemoryNetwork({ seed: 42, ...lossy }), 200);
  const b = await exchange(new MemoryNetwork({ seed: 42, ...lossy }), 200);
  const c = await exchange(new MemoryNetwork({ seed: 43, ...lossy }), 200);
  assertEquals(a, b, "the same seed must drop, copy and delay the same datagrams");
  assert(a.join() !== c.join(), "another seed should give another run");
  const distinct = new Set(a);
  assert(distinct.size > 120 && distinct.size < 190, `${distinct.size} of 200 distinct arrived`);
  assert(a.length > distinct.size, "no duplicates arrived");
  const sorted = [...a].sort((x, y) => x - y);
  assert(a.join() !== sorted.join(), "nothing was reordered");
});

Deno.test("memory network: loss 1 delivers nothing; a dialled socket hears its peer only", async () => {
  const down = new MemoryNetwork({ loss: 1 });
  assertEquals(await exchange(down, 10), []);
  assertEquals(down.stats.lost, 10);

  const net = new MemoryNetwork();
  const server = await net.listen("", 6000);
  const stranger = await net.listen("127.0.0.1", 6001);
  const client = await net.dial("127.0.0.1", 6000);
  let heard = 0;
  client.receive((batch) => {
    heard += batch.length;
    batch.releaseAll();
  });
  const b = new PacketBatch();
  b.push(net.pool.from(Uint8Array.of(1)));
  server.send(b, client.localAddr);
  b.push(net.pool.from(Uint8Array.of(2)));
  stranger.send(b, client.localAddr);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(heard, 1);
  assertEquals(net.stats.undeliverable, 1);
  await Promise.all([server.close(), stranger.close(), client.close()]);
  assertEquals(net.socketCount, 0);
  assertEquals(net.pool.available, net.pool.created);
});

Deno.test("memory network: a dialled socket hears that nobody listens at its peer", async () => {
  const net = new MemoryNetwork();
  const client = await net.dial("127.0.0.1", 6500);
  const events: string[] = [];
  const stop = client.onEvent!((e) => events.push(`${e.kind} ${e.peer.key}: ${e.reason}`));
  const b = new PacketBatch();
  b.push(net.pool.from(Uint8Array.of(1)));
  client.send(b);
  assertEquals(events, ["unreachable 127.0.0.1:6500: connection refused"]);
  stop();
  b.push(net.pool.from(Uint8Array.of(2)));
  client.send(b);
  assertEquals(events.length, 1);
  await client.close();
  assertEquals(net.pool.available, net.pool.created);
});

Deno.test("memory network: a taken port is refused; closing releases datagrams in flight", async () => {
  const net = new MemoryNetwork({ delay: 1000 });
  const s = await net.listen("127.0.0.1", 7000);
  await assertRejects(() => net.listen("127.0.0.1", 7000), Error, "address already in use");
  const c = await net.dial("127.0.0.1", 7000);
  s.receive((batch) => batch.releaseAll());
  const b = new PacketBatch();
  for (let i = 0; i < 5; i++) b.push(new PacketPool().from(new Uint8Array(10)));
  c.send(b);
  assert(net.pool.created - net.pool.available === 5, "5 datagrams should be in flight");
  await s.close();
  await c.close();
  assertEquals(net.pool.available, net.pool.created);
});

/** A per-stream stage flipping every bit (its own inverse). */
const invert: StreamStageDefinition = {
  name: "invert",
  kind: "stream",
  create: () => ({
    encode(bytes, out) {
      for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0xff;
      out(bytes);
    },
    decode(bytes, out) {
      for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0xff;
      out(bytes);
    },
  }),
};

async function readExactly(s: TunnelStream, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = s.readInto(buf, at);
    at += got;
    if (got === 0) {
      if (s.readEnded) throw new Error(`stream ${s.id} ended after ${at} of ${n} bytes`);
      await s.waitReadable();
    }
  }
  return buf;
}

Deno.test("memory network: a whole tunnel with plugins echoes streams byte-exact under loss", async () => {
  const net = new MemoryNetwork({ seed: 9, loss: 0.1, reorder: 0.1, duplicate: 0.05 });
  const registry = builtinRegistry().register(net.stage()).register(padding).register(invert);
  const spec = {
    stages: ["tcp", "invert", "smux", "snappy", "kcp", "fec", "padding", "crypt", "memory"],
    options: {
      kcp: { mode: "fast3" },
      fec: { dataShards: 4, parityShards: 2 },
      crypt: { key: "memory" },
      padding: { max: 16 },
    },
  };
  const server = await listen(spec, "127.0.0.1:4000", { registry });
  const echoing = (async () => {
    const session = (await server.accept())!;
    for (;;) {
      const s = await session.acceptStream().catch(() => null);
      if (s === null) return;
      (async () => {
        for (;;) {
          const chunk = s.read();
          if (chunk !== null) s.write(chunk);
          else if (s.readEnded) return s.closeWrite();
          else await s.waitReadable();
        }
      })();
    }
  })();
  const client = await dial(spec, "127.0.0.1:4000", { registry });
  const payloads = Array.from({ length: 4 }, (_, k) => {
    const b = new Uint8Array(64 * 1024);
    for (let i = 0; i < b.length; i++) b[i] = (i * 31 + k * 7 + (i >> 9)) & 0xff;
    return b;
  });
  const echoes = await Promise.all(payloads.map(async (p) => {
    const s = client.openStream();
    s.write(p.slice());
    return await readExactly(s, p.length);
  }));
  echoes.forEach((e, k) => assertEquals(e, payloads[k], `stream ${k} echoed other bytes`));
  assert(net.stats.lost > 0 && net.stats.duplicated > 0 && net.stats.reordered > 0, "too kind");
  await client.close();
  await server.close();
  await echoing;
  assertEquals(net.socketCount, 0);
  assertEquals(net.pool.available, net.pool.created, "datagrams still held after closing");
});

Deno.test("memory network: Tunnel with listenSessions and dialSession runs on it too", async () => {
  const net = new MemoryNetwork({ seed: 5, loss: 0.05 });
  const registry = builtinRegistry().register(net.stage("mem"));
  const pipeline = await buildPipeline({ stages: ["tcp", "smux", "kcp", "crypt", "mem"] }, {
    registry,
  });
  const serverEnd = await Tunnel.create(pipeline, { role: "server" });
  const clientEnd = await Tunnel.create(pipeline, { role: "client" });
  const listener = await listenSessions(serverEnd, "", 4100, 4101);
  assertEquals(listener.sockets.map((s) => s.localAddr.port), [4100, 4101]);
  const session = await dialSession(clientEnd, "127.0.0.1", 4101);
  const out = session.openStream();
  out.write(new TextEncoder().encode("through port 4101"));
  const inbound = await (await listener.accept())!.acceptStream();
  assertEquals(new TextDecoder().decode(await readExactly(inbound, 17)), "through port 4101");
  await session.close();
  await listener.close();
  clientEnd.close();
  serverEnd.close();
  assertEquals(net.socketCount, 0);
});
