/**
 * The sans-IO {@link ServerEndpoint}: which datagrams make a connection (only those that parse
 * as KCP under the per-connection stages' `peek`), FEC parity routed to known connections only,
 * a restarted client's new conversation (first segment sn 0) replacing the old connection, an
 * asynchronous shared stage, closing and refusing.
 */

import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { PacketStage } from "../../pipeline/stage.ts";
import { locatorFor, ServerEndpoint } from "../../runtime/endpoint.ts";
import { datagramConv } from "../../transforms/kcp/wire.ts";
import { createCryptStage } from "../../transforms/crypt/stage.ts";
import { fecStage } from "../../transforms/fec/mod.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { prng } from "../support/memory_socket.ts";
import { asyncLike } from "../pipeline/fake_stages.ts";
import { ctxFor, makeConnection, pattern, peer } from "./support.ts";

const FEC = { dataShards: 2, parityShards: 1 };
/** crypt "none": a 16-byte nonce and a CRC-32, no cipher. */
const CRYPT_HEADER = 20;

interface Handle {
  readonly peer: string;
  readonly conv: number;
  batches: number;
  datagrams: number;
}

function setup(opts: { shared?: PacketStage; perConnection?: PacketStage[] } = {}) {
  const pool = new PacketPool();
  const snmp = new Snmp();
  const ctx = ctxFor("server", pool, snmp);
  const created: Handle[] = [];
  const replaced: Handle[] = [];
  const refuse = { on: false };
  const shared = opts.shared ?? createCryptStage({ crypt: "none", key: "k" }, ctx);
  const per = opts.perConnection ?? [fecStage.create(FEC, ctx)];
  const endpoint = new ServerEndpoint<Handle>({
    shared,
    locate: locatorFor(per)!,
    snmp,
    hooks: {
      create(p, conv) {
        if (refuse.on) return null;
        const h: Handle = { peer: p.key, conv, batches: 0, datagrams: 0 };
        created.push(h);
        return h;
      },
      deliver(h, batch) {
        h.batches++;
        h.datagrams += batch.length;
        batch.releaseAll();
      },
      replaced(h) {
        replaced.push(h);
      },
    },
  });
  const feed = (datagrams: Uint8Array[], from: string | null, now = 0) => {
    const b = new PacketBatch();
    for (const d of datagrams) {
      const p = pool.from(d);
      p.peer = from === null ? null : peer(from, 4000);
      b.push(p);
    }
    return endpoint.handleDatagrams(b, now);
  };
  return { endpoint, created, replaced, feed, snmp, pool, refuse };
}

/**
 * What a client with FEC 2/1 and crypt none sends for `bytes` written on a new stream, batch
 * by batch; `skip` batches are made and thrown away first (so the rest start past sn 0).
 */
function clientDatagrams(conv: number, bytes: number, skip = 0): Uint8Array[] {
  const pool = new PacketPool();
  const ctx = ctxFor("client", pool);
  const c = makeConnection("client", {
    conv,
    pool,
    packets: [fecStage.create(FEC, ctx), createCryptStage({ crypt: "none", key: "k" }, ctx)],
  });
  const id = c.openStream();
  const out = new PacketBatch();
  for (let i = 0; i < skip; i++) {
    c.write(id, pattern(i, 0, 3000));
    c.pollTransmit(i, out);
    out.releaseAll();
  }
  c.write(id, pattern(9, 0, bytes));
  c.pollTransmit(skip, out);
  const got = out.packets.slice(0, out.length).map((p) => p.bytes().slice());
  out.releaseAll();
  return got;
}

/** FEC's flag (0xF1 data, 0xF2 parity) of a crypt-none datagram. */
function fecFlag(d: Uint8Array): number {
  return d[CRYPT_HEADER + 4] | (d[CRYPT_HEADER + 5] << 8);
}

/** The sn of the first KCP segment in a crypt-none + FEC data datagram. */
function firstSn(d: Uint8Array): number {
  const at = CRYPT_HEADER + 8 + 12;
  return (d[at] | (d[at + 1] << 8) | (d[at + 2] << 16) | (d[at + 3] << 24)) >>> 0;
}

Deno.test("endpoint: random datagrams make no connection (crypt none)", () => {
  const { created, feed, snmp, endpoint } = setup();
  const random = prng(1);
  for (let round = 0; round < 50; round++) {
    const batch: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const d = new Uint8Array(Math.floor(random() * 1400));
      for (let j = 0; j < d.length; j++) d[j] = Math.floor(random() * 256);
      batch.push(d);
    }
    feed(batch, `10.0.0.${round}`);
  }
  assertEquals(created.length, 0);
  assertEquals(endpoint.size, 0);
  assertEquals(snmp.InPkts, 2000);
  assert(snmp.InCsumErrors > 1900, `checksum failures: ${snmp.InCsumErrors}`);
});

Deno.test("endpoint: junk with a valid checksum makes no connection", () => {
  const { created, feed, snmp } = setup();
  const random = prng(2);
  const client = createCryptStage({ crypt: "none", key: "k" }, ctxFor("client", new PacketPool()));
  const pool = new PacketPool();
  const seal = (payload: Uint8Array): Uint8Array => {
    const b = new PacketBatch();
    b.push(pool.from(payload));
    client.encode(b, 0);
    const d = b.packets[0].bytes().slice();
    b.releaseAll();
    return d;
  };
  const junk: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const d = new Uint8Array(24 + Math.floor(random() * 1300));
    for (let j = 0; j < d.length; j++) d[j] = Math.floor(random() * 256);
    junk.push(seal(d));
  }
  // Nearly KCP: a well-formed segment header with an unknown command, and a good segment
  // followed by stray bytes.
  const seg = (cmd: number, len: number) => {
    const s = new Uint8Array(24 + len);
    const v = new DataView(s.buffer);
    v.setUint32(0, 0x1234, true);
    s[4] = cmd;
    v.setUint32(20, len, true);
    return s;
  };
  junk.push(seal(seg(99, 0)));
  feed(junk, "10.0.0.1");
  assertEquals(created.length, 0);
  assertEquals(snmp.InCsumErrors, 0, "the checksums were not valid");
  assert(snmp.KCPInErrors >= 201, `rejected as KCP: ${snmp.KCPInErrors}`);
  // The same well-formed segment, alone, parses.
  assertEquals(datagramConv(seg(81, 10), 0, 34, { sn: 0 }), 0x1234);
});

Deno.test("endpoint: a client's datagrams make one connection and arrive as one batch", () => {
  const { created, feed, endpoint } = setup();
  const datagrams = clientDatagrams(0xabc, 8000);
  assert(datagrams.some((d) => fecFlag(d) === 0xf2), "no parity in the batch");
  feed(datagrams, "10.0.0.7");
  assertEquals(created.length, 1);
  assertEquals([created[0].conv, created[0].peer], [0xabc, "10.0.0.7:4000"]);
  assertEquals(created[0].batches, 1, "consecutive datagrams of one connection went separately");
  assertEquals(created[0].datagrams, datagrams.length, "parity of a known connection dropped");
  assertEquals(endpoint.get("10.0.0.7:4000"), created[0]);
  // Another address is another connection.
  feed(clientDatagrams(0xabc, 100), "10.0.0.8");
  assertEquals(created.length, 2);
  assertEquals(endpoint.size, 2);
});

Deno.test("endpoint: FEC parity reaches a known connection only", () => {
  const { created, feed } = setup();
  const datagrams = clientDatagrams(0x77, 8000);
  const parity = datagrams.filter((d) => fecFlag(d) === 0xf2);
  const data = datagrams.filter((d) => fecFlag(d) === 0xf1);
  assert(parity.length > 0 && data.length > 0);
  feed(parity, "10.0.0.9");
  assertEquals(created.length, 0, "parity made a connection");
  feed(data.slice(0, 1), "10.0.0.9");
  assertEquals(created.length, 1);
  const before = created[0].datagrams;
  feed(parity, "10.0.0.9");
  assertEquals(created[0].datagrams - before, parity.length);
});

Deno.test("endpoint: a new conv from a known address replaces the connection only with sn 0", () => {
  const { created, replaced, feed, endpoint } = setup();
  const from = "10.0.0.5";
  feed(clientDatagrams(0x1111, 3000), from);
  assertEquals(created.map((h) => h.conv), [0x1111]);
  // The client restarts on the same address: its first segment has sn 0.
  const restarted = clientDatagrams(0x2222, 3000);
  assertEquals(firstSn(restarted[0]), 0);
  feed(restarted, from);
  assertEquals(created.map((h) => h.conv), [0x1111, 0x2222]);
  assertEquals(replaced.map((h) => h.conv), [0x1111]);
  assertEquals(endpoint.get(`${from}:4000`)?.conv, 0x2222);
  // A third conv whose datagrams start past sn 0 (a stray late packet) does not replace it,
  // and neither does a late datagram of the replaced conv.
  const stray = clientDatagrams(0x3333, 3000, 2).filter((d) => fecFlag(d) === 0xf1);
  assert(firstSn(stray[0]) > 0, "the stray datagram starts at sn 0");
  feed(stray, from);
  feed(clientDatagrams(0x1111, 3000, 1), from);
  assertEquals(created.length, 2);
  assertEquals(replaced.length, 1);
  assertEquals(endpoint.size, 1);
  assertEquals(endpoint.get(`${from}:4000`)?.conv, 0x2222);
  // A connection that closed is forgotten; its address may start over with any sn.
  endpoint.remove(`${from}:4000`, created[1]);
  feed(stray, from);
  assertEquals(created.map((h) => h.conv), [0x1111, 0x2222, 0x3333]);
});

Deno.test("endpoint: routes after an asynchronous shared stage has finished with the batch", async () => {
  const pool = new PacketPool();
  const ctx = ctxFor("client", pool);
  // The client's datagrams through the same async stage (prepends 0xAA after a promise).
  let ready = 0;
  const c = makeConnection("client", {
    conv: 0x55,
    pool,
    packets: [asyncLike.create({}, ctx)],
    onWake: () => ready++,
  });
  const id = c.openStream();
  c.write(id, pattern(1, 0, 2000));
  const out = new PacketBatch();
  c.pollTransmit(0, out);
  while (ready === 0) await new Promise((r) => setTimeout(r, 1));
  c.pollTransmit(1, out);
  assert(out.length > 0 && out.packets[0].buffer[out.packets[0].start] === 0xaa);
  const datagrams = out.packets.slice(0, out.length).map((p) => p.bytes().slice());
  out.releaseAll();
  const { created, feed } = setup({
    shared: asyncLike.create({}, ctxFor("server", pool)),
    perConnection: [],
  });
  const r = feed(datagrams, "10.0.0.3");
  assert(r instanceof Promise, "an async shared stage gave no promise");
  await r;
  assertEquals(created.map((h) => [h.conv, h.datagrams]), [[0x55, datagrams.length]]);
});

Deno.test("endpoint: a closed endpoint or a refusing owner keeps no connection", () => {
  const { created, feed, endpoint, refuse } = setup();
  const datagrams = clientDatagrams(0x99, 100);
  refuse.on = true; // backlog full
  feed(datagrams, "10.0.0.1");
  assertEquals([created.length, endpoint.size], [0, 0]);
  refuse.on = false;
  feed(datagrams, "10.0.0.1");
  assertEquals(created.length, 1, "a refused address cannot retry");
  feed(datagrams, null);
  assertEquals(created[0].datagrams, datagrams.length, "a datagram without a source was routed");
  endpoint.close();
  feed(clientDatagrams(0x98, 100), "10.0.0.2");
  assertEquals(created.length, 1, "a closed endpoint made a connection");
  feed(datagrams, "10.0.0.1");
  assertEquals(
    created[0].datagrams,
    2 * datagrams.length,
    "a known connection lost its datagrams after close",
  );
});
