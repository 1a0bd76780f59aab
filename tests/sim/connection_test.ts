/**
 * Two {@link Connection}s (crypt + FEC + KCP + snappy + smux) through the simulated network:
 * many streams both ways under loss, reordering and duplication, on a fake clock.
 */

import { PacketChain } from "../../pipeline/chain.ts";
import { type Packet, type PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { Connection } from "../../runtime/connection.ts";
import { NonceSource } from "../../transforms/crypt/nonce.ts";
import { createCryptStage } from "../../transforms/crypt/stage.ts";
import { FecStage } from "../../transforms/fec/stage.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { SnappyStreamStage } from "../../transforms/snappy/stage.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { patternByte } from "./kcp_endpoint.ts";
import { type LinkConfig, type SimEndpoint, Simulator } from "./link.ts";

const pool = new PacketPool();

function connection(role: "client" | "server", snmp: Snmp, conv: number): Connection {
  const ctx: StageContext = { role, pool, snmp, log: () => {} };
  const crypt = createCryptStage({
    crypt: "aes",
    key: "sim",
    generation: "2021",
    nonces: new NonceSource((b) => b.fill(7)),
  }, ctx);
  const fec = new FecStage({ dataShards: 10, parityShards: 3 }, ctx);
  const packets = new PacketChain([fec, crypt]);
  return new Connection({
    role,
    conv,
    mtu: 1350,
    kcp: { sndWnd: 256, rcvWnd: 512, ...KCP_MODES.fast },
    packets,
    ownedPackets: fec,
    sessionStages: [new SnappyStreamStage()],
    pool,
    snmp,
    now: 0,
  });
}

/** Writes `perStream` pattern bytes on each stream it holds, checks what it reads. */
class App implements SimEndpoint {
  readonly streams: number[] = [];
  readonly written = new Map<number, number>();
  readonly read = new Map<number, number>();
  readonly salt = new Map<number, number>();
  errors: string[] = [];
  constructor(readonly conn: Connection, readonly perStream: number, readonly echo: boolean) {}

  receive(p: Packet, now: number): void {
    const b = { packets: [p], length: 1 } as unknown as PacketBatch;
    this.conn.handleDatagrams(b, now);
  }

  poll(now: number, out: PacketBatch): void {
    const c = this.conn;
    if (now >= c.pollTimeout()) c.handleTimeout(now);
    for (let id; (id = c.accept()) >= 0;) {
      this.streams.push(id);
      this.written.set(id, 0);
      this.read.set(id, 0);
      this.salt.set(id, id);
    }
    while (c.takeDirty() >= 0) { /* state is re-read below */ }
    for (const id of this.streams) {
      const salt = this.salt.get(id)!;
      for (let chunk; (chunk = c.read(id)) !== null;) {
        let at = this.read.get(id)!;
        for (let i = 0; i < chunk.length; i++, at++) {
          if (chunk[i] !== patternByte(at, salt)) {
            this.errors.push(`stream ${id}: byte ${at} differs`);
            break;
          }
        }
        this.read.set(id, at);
      }
      if (this.echo) continue;
      let w = this.written.get(id)!;
      while (w < this.perStream && c.queuedBytes(id) < 65536) {
        const n = Math.min(8192, this.perStream - w);
        const buf = new Uint8Array(n);
        for (let i = 0; i < n; i++) buf[i] = patternByte(w + i, salt);
        c.write(id, buf);
        w += n;
      }
      this.written.set(id, w);
    }
    c.pollTransmit(now, out);
  }

  deadline(): number {
    return this.conn.pollTimeout();
  }
}

Deno.test("sim: two connections carry 16 streams × 256 KiB under 10% loss, reorder, duplication", () => {
  const snmpA = new Snmp(), snmpB = new Snmp();
  const a = new App(connection("client", snmpA, 0x1234), 256 * 1024, false);
  const b = new App(connection("server", snmpB, 0x1234), 0, true);
  for (let i = 0; i < 16; i++) {
    const id = a.conn.openStream();
    a.streams.push(id);
    a.written.set(id, 0);
    a.read.set(id, 0);
    a.salt.set(id, id);
  }
  const link: LinkConfig = { delay: 20, jitter: 5, loss: 0.1, reorder: 0.02, duplicate: 0.02 };
  const sim = new Simulator(42, a, b, link);
  const total = 16 * 256 * 1024;
  const done = () => {
    let got = 0;
    for (const v of b.read.values()) got += v;
    return got >= total;
  };
  const ok = sim.runUntil(done, 600_000);
  assertEquals(a.errors.concat(b.errors), []);
  assert(ok, `only part arrived by t=${sim.now}`);
  assertEquals(b.streams.length, 16);
  console.log(sim.now, sim.stats(0), sim.stats(1), snmpB.FECRecovered, snmpA.RetransSegs);
  assert(snmpB.FECRecovered > 0, "FEC recovered nothing under 10% loss");
});
