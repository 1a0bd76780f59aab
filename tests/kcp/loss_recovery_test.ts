/**
 * Loss recovery as kcp-go does it, when datagrams arrive in batches: the flush that input asks
 * for carries the ACKs kcp-go's flush inside `Input` would have, whatever the batch size; and
 * ping-pong through kcptun's default KCP and FEC over a simulated bad link.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { KCP_OVERHEAD, KcpCmd, writeSegmentHeader } from "../../transforms/kcp/wire.ts";
import type { Kcp, KcpOptions } from "../../transforms/kcp/arq.ts";
import { feed, flushOut, newKcp, segmentsOf, updateOut } from "./support.ts";
import { PacketPool } from "../../pipeline/packet.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { type LinkConfig, Simulator } from "../sim/link.ts";
import { PingEndpoint } from "../sim/ping_endpoint.ts";

function push(sn: number, ts: number, una: number, len = 8): Uint8Array {
  const b = new Uint8Array(KCP_OVERHEAD + len);
  writeSegmentHeader(b, 0, 1, KcpCmd.Push, 0, 256, ts, sn, una, len);
  return b;
}

/** The ACKs in `datagrams` as [sn, ts] pairs, in wire order. */
function acksOf(datagrams: Uint8Array[]): [number, number][] {
  return segmentsOf(datagrams).filter((s) => s.cmd === KcpCmd.Ack).map((s) => [s.sn, s.ts]);
}

/** A core with two segments of its own in flight (sn 0 and 1), its timer started at 0. */
function sender(options: KcpOptions = {}): Kcp {
  const { kcp } = newKcp(1, {
    interval: 30,
    nc: 1,
    resend: 2,
    sndWnd: 64,
    rcvWnd: 256,
    ...options,
  });
  updateOut(kcp, 0);
  kcp.send(new Uint8Array(10));
  flushOut(kcp, 0);
  kcp.send(new Uint8Array(10));
  flushOut(kcp, 0);
  return kcp;
}

/** A datagram to feed; `recovered`: rebuilt by FEC. */
interface Datagram {
  bytes: Uint8Array;
  recovered: boolean;
}

/**
 * Feeds `batches` at `now` (one `update` per batch, as our drivers do, or per datagram when
 * `perDatagram`, which is kcp-go's timing: it flushes inside Input), then runs the timer until
 * nothing is left; returns every ACK written, in order.
 */
function acksWritten(
  batches: Datagram[][],
  now: number,
  perDatagram: boolean,
  options: KcpOptions = {},
) {
  const kcp = sender(options);
  const acks: [number, number][] = [];
  for (const batch of batches) {
    for (const d of batch) {
      feed(kcp, d.bytes, now, d.recovered);
      if (perDatagram) acks.push(...acksOf(updateOut(kcp, now)));
    }
    if (!perDatagram) acks.push(...acksOf(updateOut(kcp, now)));
  }
  for (let t = now, guard = 0; kcp.pendingAcks > 0 && guard < 100; guard++) {
    t = Math.max(t + 1, kcp.check(t));
    acks.push(...acksOf(updateOut(kcp, t)));
  }
  return acks;
}

Deno.test("batched input: the flush a datagram asks for has kcp-go's ACKs; later ones wait", () => {
  // The first datagram acks our segments (the window slides: flush now); the second brings the
  // next segment. kcp-go flushes inside Input after the first (ACK 0) and acks the second at its
  // next timer tick. Flushing once after the batch must write the same ACKs at the same moments,
  // not just ACK 1 (ACK 0 would then be filtered as passed by rcv_nxt).
  const batch = [push(0, 5, 2), push(1, 6, 2)].map((bytes) => ({ bytes, recovered: false }));
  const kcp = sender();
  for (const d of batch) feed(kcp, d.bytes, 20);
  assertEquals(acksOf(updateOut(kcp, 20)), [[0, 5]]);
  assertEquals(kcp.pendingAcks, 1);
  assertEquals(acksOf(updateOut(kcp, 29)), [], "the held ACK waits for the timer");
  assertEquals(acksOf(updateOut(kcp, 30)), [[1, 6]]);
  assertEquals(acksWritten([batch], 20, false), acksWritten([batch], 20, true));
});

Deno.test("batched input writes exactly the ACKs per-datagram input (kcp-go) writes", () => {
  const datagram = fc.record({
    sn: fc.integer({ min: 0, max: 15 }),
    una: fc.integer({ min: 0, max: 2 }),
    recovered: fc.boolean(),
  });
  // Small MTU: 4 queued ACKs make a datagram's worth (the ACK-when-full flush at input).
  const options = fc.record({ ackNoDelay: fc.boolean(), mtu: fc.constantFrom(100, 1400) });
  fc.assert(
    fc.property(
      fc.array(fc.array(datagram, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }),
      options,
      (spec, o) => {
        let ts = 100;
        const batches = spec.map((b) =>
          b.map((d) => ({ bytes: push(d.sn, ts++, d.una), recovered: d.recovered }))
        );
        assertEquals(acksWritten(batches, 10, false, o), acksWritten(batches, 10, true, o));
      },
    ),
    { seed: 12, numRuns: 400 },
  );
});

/** kcptun's defaults: -mode fast, client 128/512 and server 1024/1024 windows, FEC 10/3. */
interface PingRun {
  /** Every round trip of every seed, ms. */
  rtts: number[];
  /** Both ends' RTO at each message sent, ms. */
  rtos: number[];
}

function pingPong(
  link: LinkConfig,
  seeds: number,
  pings: number,
  batch: boolean,
  fec = true,
  kcp: KcpOptions = {},
): PingRun {
  const out: PingRun = { rtts: [], rtos: [] };
  const shards = fec ? { dataShards: 10, parityShards: 3 } : undefined;
  for (let seed = 1; seed <= seeds; seed++) {
    const pool = new PacketPool();
    const common = { ...KCP_MODES.fast, mtu: 1350 - 20 - 8, fec: shards, ...kcp };
    const client = new PingEndpoint(
      9,
      { ...common, role: "client", sndWnd: 128, rcvWnd: 512, count: pings },
      pool,
    );
    const server = new PingEndpoint(
      9,
      { ...common, role: "server", sndWnd: 1024, rcvWnd: 1024 },
      pool,
    );
    const sim = new Simulator(seed, client, server, link, link, { batch });
    sim.runUntil(() => client.answered >= pings, 1e9);
    assertEquals(client.answered, pings);
    out.rtts.push(...client.rtts);
    out.rtos.push(...client.rtos, ...server.rtos);
  }
  return out;
}

Deno.test("sim ping-pong: a clean 50 ms link answers every ping in one round trip", () => {
  for (const batch of [false, true]) {
    for (const fec of [false, true]) {
      const r = pingPong({ delay: 50 }, 1, 200, batch, fec);
      assertEquals(new Set(r.rtts), new Set([100]), `batch ${batch} fec ${fec}`);
    }
  }
});

Deno.test("an FEC-rebuilt copy of a segment we have is not acked (its ts is stale); a new one is", () => {
  const data = new Uint8Array(8);
  const at = (sn: number, ts: number) => {
    const b = new Uint8Array(KCP_OVERHEAD + 8);
    writeSegmentHeader(b, 0, 1, KcpCmd.Push, 0, 32, ts, sn, 0, 8);
    b.set(data, KCP_OVERHEAD);
    return b;
  };
  for (const ackRecoveredRepeats of [false, true]) {
    const { kcp } = newKcp(1, { ackRecoveredRepeats });
    feed(kcp, at(0, 10), 100);
    feed(kcp, at(2, 12), 100);
    flushOut(kcp, 100);
    feed(kcp, at(0, 10), 400, true); // below rcv_nxt
    feed(kcp, at(2, 12), 400, true); // already in the reorder buffer
    assertEquals(
      kcp.pendingAcks,
      ackRecoveredRepeats ? 2 : 0,
      `kcp-go mode ${ackRecoveredRepeats}`,
    );
    feed(kcp, at(1, 11), 400, true); // new: acked, it fills the gap
    assertEquals(kcp.pendingAcks, ackRecoveredRepeats ? 3 : 1);
    feed(kcp, at(2, 50), 400); // a regular duplicate: acked (fresh ts, the peer retransmitted)
    assertEquals(acksOf(flushOut(kcp, 400)), [[2, 50]]);
    assertEquals(kcp.readable(), 24);
  }
});

Deno.test("sim ping-pong, 10% loss in bursts, kcptun defaults: no slower than kcp-go's rules", () => {
  // The lossy relay's model: drops in runs averaging 2 datagrams, 10% overall, 50 ms each way.
  const q = 0.1 / (2 * 0.9);
  const link: LinkConfig = { delay: 50, burst: { pGoodToBad: q, pBadToGood: 0.5, lossBad: 1 } };
  // kcp-go: one datagram at a time, FEC-rebuilt repeats acked.
  const go = pingPong(link, 5, 1000, false, true, { ackRecoveredRepeats: true });
  const ours = pingPong(link, 5, 1000, true);
  const pct = (xs: number[], p: number) => {
    const s = Float64Array.from(xs).sort();
    return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const msg = `ours p99 ${pct(ours.rtts, 0.99)} mean ${mean(ours.rtts).toFixed(1)} RTO p90 ${
    pct(ours.rtos, 0.9)
  }; kcp-go p99 ${pct(go.rtts, 0.99)} mean ${mean(go.rtts).toFixed(1)} RTO p90 ${
    pct(go.rtos, 0.9)
  }`;
  assert(pct(ours.rtts, 0.99) <= pct(go.rtts, 0.99), msg);
  assert(mean(ours.rtts) <= mean(go.rtts), msg);
  // Loss-free RTO: srtt 100 + interval 30. Stale RTT samples are what pushed it up.
  assert(pct(ours.rtos, 0.9) <= 1.2 * 130, msg);
});
