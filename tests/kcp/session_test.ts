import { PacketChain } from "../../pipeline/chain.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { fecStage } from "../../transforms/fec/mod.ts";
import { clientSession } from "../../transforms/kcp/dial.ts";
import { KcpListener } from "../../transforms/kcp/listener.ts";
import { KcpSession } from "../../transforms/kcp/session.ts";
import padding from "../../examples/padding.ts";
import { SmuxDriver } from "../../transforms/smux/driver.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { MemoryNetwork, peer, prng } from "../support/memory_socket.ts";

const KCP = { sndWnd: 256, rcvWnd: 256, nodelay: 1, interval: 10, resend: 2, nc: 1 };

function randomBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

async function readN(readable: ReadableStream<Uint8Array>, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let at = 0;
  const reader = readable.getReader();
  while (at < n) {
    const { value, done } = await reader.read();
    if (done) break;
    out.set(value, at);
    at += value.length;
  }
  reader.releaseLock();
  assertEquals(at, n, "bytes received");
  return out;
}

function setup(loss: number, seed: number) {
  const pool = new PacketPool();
  const net = new MemoryNetwork(loss, seed, pool);
  const snmp = new Snmp();
  const ctx: StageContext = { role: "server", pool, snmp, log: () => {} };
  const serverSocket = net.bind(29900);
  const sharedPadding = padding.create({ max: 16 }, ctx);
  const listener = new KcpListener(serverSocket, {
    shared: new PacketChain([sharedPadding]),
    locator: "fec",
    snmp,
    createSession: (socket, from, conv) => {
      const fec = fecStage.create({ dataShards: 4, parityShards: 2 }, ctx);
      return new KcpSession(socket, from, new PacketChain([fec, sharedPadding]), {
        conv,
        mtu: 1350,
        kcp: KCP,
        pool,
        snmp,
        decodeChain: new PacketChain([fec]),
      });
    },
  });
  const clientSnmp = new Snmp();
  const cctx: StageContext = { role: "client", pool, snmp: clientSnmp, log: () => {} };
  const dial = () =>
    clientSession(
      net.bind(undefined, peer("127.0.0.1", 29900)),
      new PacketChain([
        fecStage.create({ dataShards: 4, parityShards: 2 }, cctx),
        padding.create({ max: 16 }, cctx),
      ]),
      { mtu: 1350, kcp: KCP, pool, snmp: clientSnmp },
    );
  return { net, listener, dial, snmp, clientSnmp, pool };
}

Deno.test("kcp session: bytes cross a lossy in-memory link both ways through FEC and a plugin", async () => {
  const { net, listener, dial, snmp, clientSnmp } = setup(0.1, 42);
  const client = dial();
  const data = randomBytes(300_000, 7);
  const writer = client.writable.getWriter();
  const sending = (async () => {
    for (let i = 0; i < data.length; i += 10_000) await writer.write(data.slice(i, i + 10_000));
  })();
  const server = await listener.accept();
  assert(server !== null);
  assertEquals(server.conv, client.conv);
  const got = await readN(server.readable, data.length);
  await sending;
  assertEquals(got, data);
  // and back
  const back = randomBytes(100_000, 8);
  const sw = server.writable.getWriter();
  const echoing = sw.write(back);
  assertEquals(await readN(client.readable, back.length), back);
  await echoing;
  assert(net.dropped > 0, "the link dropped nothing");
  assert(snmp.FECRecovered + clientSnmp.FECRecovered > 0, "FEC recovered nothing");
  assertEquals(snmp.PassiveOpens, 1);
  assertEquals(clientSnmp.ActiveOpens, 1);
  client.close();
  await listener.close();
  assertEquals(clientSnmp.CurrEstab, 0);
  assertEquals(snmp.CurrEstab, 0);
});

Deno.test("kcp listener: a new conv from a known address replaces the session only with sn 0", async () => {
  const { listener, snmp, pool, net } = setup(0, 1);
  const cctx: StageContext = { role: "client", pool, snmp: new Snmp(), log: () => {} };
  const server = peer("127.0.0.1", 29900);
  const dialFrom = (port: number, conv: number) =>
    clientSession(
      net.bind(port, server),
      new PacketChain([
        fecStage.create({ dataShards: 4, parityShards: 2 }, cctx),
        padding.create({ max: 16 }, cctx),
      ]),
      { mtu: 1350, kcp: KCP, pool, snmp: cctx.snmp, conv },
    );
  const first = dialFrom(5555, 0x1111);
  await first.writable.getWriter().write(new Uint8Array([1, 2, 3]));
  const s1 = await listener.accept();
  assert(s1 !== null);
  assertEquals(s1.conv, 0x1111);
  assertEquals(await readN(s1.readable, 3), new Uint8Array([1, 2, 3]));
  // The client restarts on the same address with a new conv: its first segment has sn 0.
  first.close();
  const second = dialFrom(5555, 0x2222);
  await second.writable.getWriter().write(new Uint8Array([4, 5]));
  const s2 = await listener.accept();
  assert(s2 !== null);
  assertEquals(s2.conv, 0x2222);
  assert(s1.isClosed, "the old session was not closed");
  assertEquals(await readN(s2.readable, 2), new Uint8Array([4, 5]));
  assertEquals(listener.sessions.size, 1);
  // A third conv whose first segment is not sn 0 (a stray late packet) does not replace it.
  second.close();
  const third = dialFrom(5555, 0x3333);
  third.kcp.send(new Uint8Array(10)); // sn 0, never sent
  third.kcp.flush(performance.now(), new PacketBatch(), pool);
  await third.writable.getWriter().write(new Uint8Array([6])); // goes out as sn 1
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(listener.sessions.get("127.0.0.1:5555")?.conv, 0x2222);
  assertEquals(snmp.PassiveOpens, 2);
  third.close();
  await listener.close();
});

Deno.test("kcp session: a full send window holds writes until ACKs come back", async () => {
  const { dial, listener } = setup(0, 3);
  const client = dial();
  const w = client.writable.getWriter();
  // Nobody accepts or reads on the server; KCP still ACKs, so writes complete up to the
  // server's receive window, then stop.
  let written = 0;
  const chunk = new Uint8Array(1300);
  const writing = (async () => {
    for (let i = 0; i < 2000; i++) {
      await w.write(chunk);
      written += chunk.length;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  assert(written > 0, "nothing was written");
  assert(written < 2000 * 1300, "writes never blocked although nobody reads");
  const stalled = written;
  await new Promise((r) => setTimeout(r, 200));
  assert(written - stalled <= 1300 * 2, `writes kept going: ${stalled} -> ${written}`);
  client.close();
  await listener.close();
  await writing.catch(() => {});
});

Deno.test("kcp session + smux: a server stream echoing into itself with pipeTo (re-entrant update)", async () => {
  const { listener, dial } = setup(0.02, 9);
  const client = dial();
  const cmux = new SmuxDriver(client, { role: "client" });
  const serving = (async () => {
    const s = await listener.accept();
    const smux = new SmuxDriver(s!, { role: "server" });
    for (let i = 0; i < 4; i++) {
      const st = await smux.acceptStream();
      st.readable.pipeTo(st.writable).catch(() => {});
    }
    return smux;
  })();
  for (let i = 0; i < 4; i++) {
    const st = cmux.openStream();
    const data = randomBytes(200_000, 100 + i);
    const w = st.writable.getWriter();
    const back = readN(st.readable, data.length);
    for (let at = 0; at < data.length; at += 7000) await w.write(data.slice(at, at + 7000));
    assertEquals(await back, data);
    await w.close();
  }
  const smux = await serving;
  await cmux.close();
  await smux.close();
  client.close();
  await listener.close();
});
