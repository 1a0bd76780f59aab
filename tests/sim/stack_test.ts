/**
 * The whole stack, deterministically: our client and server tunnel ends built from kcptun's
 * default pipeline (aes crypt, FEC 10/3, KCP, snappy, smux), the server's sans-IO routing in
 * front of its connections, joined by the simulated network with loss, reordering and
 * duplication on a fake clock. No sockets, no timers.
 */

import type { Packet, PacketBatch, PeerAddress } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { resolvePipeline } from "../../runtime/api.ts";
import type { Connection } from "../../runtime/connection.ts";
import { ServerEndpoint } from "../../runtime/endpoint.ts";
import { Tunnel } from "../../runtime/tunnel.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { patternByte } from "./kcp_endpoint.ts";
import { type LinkConfig, type SimEndpoint, Simulator } from "./link.ts";

const CLIENT: PeerAddress = {
  family: "ipv4",
  hostname: "10.0.0.1",
  port: 40000,
  key: "10.0.0.1:40000",
};

async function tunnels(): Promise<{ client: Tunnel; server: Tunnel }> {
  const spec = {
    stages: ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"],
    options: {
      crypt: { key: "sim", generation: "2021" },
      fec: { dataShards: 10, parityShards: 3 },
      kcp: { mode: "fast", sndwnd: 256, rcvwnd: 512 },
    },
  };
  const pipeline = await resolvePipeline(spec);
  return {
    client: await Tunnel.create(pipeline, { role: "client", snmp: new Snmp() }),
    server: await Tunnel.create(pipeline, { role: "server", snmp: new Snmp() }),
  };
}

/** Per-stream bookkeeping of the client application. */
interface Flow {
  written: number;
  echoed: number;
}

/** The client: writes a pattern on each stream and checks what is echoed. */
class ClientApp implements SimEndpoint {
  readonly flows = new Map<number, Flow>();
  readonly errors: string[] = [];
  readonly one = { packets: [] as Packet[], length: 0 } as unknown as PacketBatch;
  constructor(readonly conn: Connection, readonly perStream: number) {}

  get echoed(): number {
    let n = 0;
    for (const f of this.flows.values()) n += f.echoed;
    return n;
  }

  receive(p: Packet, now: number): void {
    this.one.packets[0] = p;
    this.one.length = 1;
    this.conn.handleDatagrams(this.one, now);
  }

  poll(now: number, out: PacketBatch): void {
    const c = this.conn;
    if (now >= c.pollTimeout()) c.handleTimeout(now);
    while (c.takeDirty() >= 0) { /* every stream is looked at below */ }
    for (const [id, f] of this.flows) {
      for (let chunk; (chunk = c.read(id)) !== null;) {
        for (let i = 0; i < chunk.length; i++, f.echoed++) {
          if (chunk[i] !== patternByte(f.echoed, id)) {
            this.errors.push(`stream ${id}: echoed byte ${f.echoed} differs`);
            return;
          }
        }
      }
      while (f.written < this.perStream && c.queuedBytes(id) < 32768) {
        const n = Math.min(4096 + (id * 977) % 8192, this.perStream - f.written);
        const buf = new Uint8Array(n);
        for (let i = 0; i < n; i++) buf[i] = patternByte(f.written + i, id);
        c.write(id, buf);
        f.written += n;
      }
    }
    c.pollTransmit(now, out);
  }

  deadline(): number {
    return this.conn.pollTimeout();
  }
}

/** The server: its endpoint routes datagrams; every accepted stream is echoed back. */
class ServerApp implements SimEndpoint {
  conn: Connection | null = null;
  readonly streams: number[] = [];
  readonly endpoint: ServerEndpoint<Connection>;
  readonly one = { packets: [] as Packet[], length: 0 } as unknown as PacketBatch;
  created = 0;

  constructor(tunnel: Tunnel) {
    const { shared, locate } = tunnel.serverRouting();
    this.endpoint = new ServerEndpoint<Connection>({
      shared,
      locate,
      snmp: tunnel.snmp,
      hooks: {
        create: (_peer, conv, now) => {
          this.created++;
          this.conn = tunnel.serverConnection({ conv, now });
          return this.conn;
        },
        deliver: (c, batch, now) => c.handleDatagrams(batch, now),
        replaced: (c, now) => c.close(now),
      },
    });
  }

  receive(p: Packet, now: number): void {
    p.peer = CLIENT;
    this.one.packets[0] = p;
    this.one.length = 1;
    this.endpoint.handleDatagrams(this.one, now);
  }

  poll(now: number, out: PacketBatch): void {
    const c = this.conn;
    if (c === null) return;
    if (now >= c.pollTimeout()) c.handleTimeout(now);
    for (let id; (id = c.accept()) >= 0;) this.streams.push(id);
    while (c.takeDirty() >= 0) { /* every stream is looked at below */ }
    for (const id of this.streams) {
      if (c.queuedBytes(id) >= 65536) continue;
      for (let chunk; (chunk = c.read(id)) !== null;) c.write(id, chunk);
    }
    c.pollTransmit(now, out);
  }

  deadline(): number {
    return this.conn?.pollTimeout() ?? Infinity;
  }
}

interface Outcome {
  done: boolean;
  errors: string[];
  time: number;
  events: number;
  sent: [number, number];
  lost: [number, number];
  recovered: number;
  retrans: number;
  created: number;
  serverStreams: number;
}

async function run(seed: number, streams: number, perStream: number): Promise<Outcome> {
  const { client, server } = await tunnels();
  const conn = client.clientConnection({ conv: 0x5eed, now: 0 });
  const a = new ClientApp(conn, perStream);
  for (let i = 0; i < streams; i++) a.flows.set(conn.openStream(), { written: 0, echoed: 0 });
  const b = new ServerApp(server);
  const link: LinkConfig = {
    delay: 15,
    jitter: 4,
    loss: 0.1,
    reorder: 0.03,
    duplicate: 0.03,
    bandwidth: 2500, // 20 Mbit/s
  };
  const sim = new Simulator(seed, a, b, link, link, { startB: Infinity });
  const total = streams * perStream;
  const done = sim.runUntil(() => a.echoed >= total || a.errors.length > 0, 3_600_000);
  client.close();
  server.close();
  return {
    done,
    errors: a.errors,
    time: Math.round(sim.now * 1000) / 1000,
    events: sim.events,
    sent: [sim.stats(0).sent, sim.stats(1).sent],
    lost: [sim.stats(0).lost, sim.stats(1).lost],
    recovered: server.snmp.FECRecovered + client.snmp.FECRecovered,
    retrans: server.snmp.RetransSegs + client.snmp.RetransSegs,
    created: b.created,
    serverStreams: b.streams.length,
  };
}

Deno.test("sim: whole stack, 8 MiB through 16 streams echoed under 10% loss + reorder + duplication, deterministic", async () => {
  const first = await run(7, 16, 512 * 1024);
  assertEquals(first.errors, []);
  assert(first.done, `only part was echoed by t=${first.time} ms`);
  assertEquals(first.serverStreams, 16);
  assertEquals(first.created, 1, "the server made one connection for the one client");
  assert(first.lost[0] > 0 && first.lost[1] > 0, "the link lost nothing: the test tests nothing");
  assert(first.recovered > 0, "FEC rebuilt nothing under 10% loss");
  assert(first.retrans > 0, "KCP retransmitted nothing under 10% loss");
  const again = await run(7, 16, 512 * 1024);
  assertEquals(again, first, "the same seed gave another run");
  const other = await run(8, 16, 512 * 1024);
  assert(other.done && other.errors.length === 0, "seed 8 failed");
  assert(other.events !== first.events, "another seed gave the very same run");
});
