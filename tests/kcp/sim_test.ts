/**
 * Two KCP cores over the simulated link: whatever the (seeded) loss, bursts, reordering,
 * duplication, jitter, bandwidth, mode and windows, each side reads exactly the bytes the other
 * wrote, in order, and nothing more.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { type LinkConfig, Simulator } from "../sim/link.ts";
import { KcpEndpoint, type KcpEndpointOptions } from "../sim/kcp_endpoint.ts";
import { KCP_MANUAL_DEFAULTS, KCP_MODES, modeParams } from "../../transforms/kcp/modes.ts";
import { PacketPool } from "../../pipeline/packet.ts";
import { defaultSegmentPool } from "../../transforms/kcp/segment.ts";
import { KcpCmd, parseDatagram } from "../../transforms/kcp/wire.ts";
import { Rng } from "../sim/link.ts";

const MODES = ["normal", "fast", "fast2", "fast3", "manual", "manual-resend"] as const;

function params(mode: typeof MODES[number]) {
  if (mode === "manual-resend") return { ...KCP_MANUAL_DEFAULTS, resend: 2, interval: 20 };
  return modeParams(mode);
}

interface Pair {
  sim: Simulator;
  a: KcpEndpoint;
  b: KcpEndpoint;
  totalA: number;
  totalB: number;
}

function pair(
  seed: number,
  link: LinkConfig,
  back: LinkConfig,
  a: KcpEndpointOptions,
  b: KcpEndpointOptions,
): Pair {
  const pool = new PacketPool();
  const ea = new KcpEndpoint(0xabcdef, { expectSalt: 2, ...a }, pool);
  const eb = new KcpEndpoint(0xabcdef, { expectSalt: 1, ...b }, pool);
  ea.peerSource = eb.source;
  eb.peerSource = ea.source;
  return {
    sim: new Simulator(seed, ea, eb, link, back),
    a: ea,
    b: eb,
    totalA: a.source?.total ?? 0,
    totalB: b.source?.total ?? 0,
  };
}

function complete(p: Pair): boolean {
  return p.b.sink.received >= p.totalA && p.a.sink.received >= p.totalB;
}

const linkArb = fc.record({
  delay: fc.integer({ min: 0, max: 150 }),
  jitter: fc.integer({ min: 0, max: 40 }),
  // Percentages as integers: fast-check's doubles cluster at the bounds.
  lossPct: fc.integer({ min: 0, max: 29 }),
  bursty: fc.boolean(),
  burstLen: fc.integer({ min: 11, max: 50 }),
  reorderPct: fc.integer({ min: 0, max: 20 }),
  duplicatePct: fc.integer({ min: 0, max: 20 }),
  bandwidth: fc.option(fc.integer({ min: 20, max: 5000 }), { nil: undefined }),
});

type LinkArb = typeof linkArb extends fc.Arbitrary<infer T> ? T : never;

function toLink(l: LinkArb): LinkConfig {
  const loss = l.lossPct / 100;
  const cfg: LinkConfig = {
    delay: l.delay,
    jitter: l.jitter,
    reorder: l.reorderPct / 100,
    duplicate: l.duplicatePct / 100,
    bandwidth: l.bandwidth,
  };
  if (l.bursty) {
    // Mean bad run = burstLen/10 packets, bad share = loss: lossy in bursts, same average.
    const q = 10 / l.burstLen;
    const p = (loss * q) / (1 - loss);
    cfg.burst = { pGoodToBad: p, pBadToGood: q, lossBad: 1, lossGood: 0 };
  } else {
    cfg.loss = loss;
  }
  return cfg;
}

Deno.test("sim property: both byte streams arrive whole and in order over any bad link", () => {
  let runs = 0;
  fc.assert(
    fc.property(
      fc.integer(),
      linkArb,
      linkArb,
      fc.constantFrom(...MODES),
      fc.integer({ min: 0, max: 120000 }),
      fc.integer({ min: 0, max: 60000 }),
      fc.integer({ min: 1, max: 40000 }),
      fc.integer({ min: 4, max: 300 }),
      fc.integer({ min: 4, max: 300 }),
      fc.boolean(),
      fc.constantFrom(0, 0, 0, 5, 50),
      fc.integer({ min: 60, max: 1400 }),
      (seed, ab, ba, mode, totalA, totalB, writeMax, wndA, wndB, ackNoDelay, readRate, mtu) => {
        runs++;
        const nd = params(mode);
        const rng = new Rng(seed);
        const sizes = Array.from({ length: 64 }, () => 1 + rng.int(writeMax));
        const writeSize = (k: number) => sizes[k & 63];
        // Tiny writes make many flushes; keep those runs short.
        totalA = Math.min(totalA, writeMax * 500);
        totalB = Math.min(totalB, writeMax * 500);
        const common = { ...nd, mtu, ackNoDelay };
        const p = pair(
          seed,
          toLink(ab),
          toLink(ba),
          {
            ...common,
            sndWnd: wndA,
            rcvWnd: wndB,
            source: { total: totalA, writeSize, salt: 1 },
          },
          {
            ...common,
            sndWnd: wndB,
            rcvWnd: wndA,
            readRate,
            source: { total: totalB, writeSize, salt: 2 },
          },
        );
        const done = p.sim.runUntil(() => complete(p), 3_600_000);
        assert(
          done,
          `incomplete at ${p.sim.now}: ${p.b.sink.received}/${totalA}, ` +
            `${p.a.sink.received}/${totalB}`,
        );
        // Let retransmissions and duplicates drain: nothing more may arrive.
        p.sim.run(p.sim.now + 120_000);
        assertEquals(p.b.sink.received, totalA);
        assertEquals(p.a.sink.received, totalB);
        assertEquals(p.b.sink.firstError, -1);
        assertEquals(p.a.sink.firstError, -1);
        assertEquals(p.a.inErrors + p.b.inErrors, 0);
        assertEquals(p.a.kcp.waitSnd() + p.b.kcp.waitSnd(), 0, "everything acknowledged");
      },
    ),
    { numRuns: 60, seed: 0x73696d },
  );
  assertEquals(runs, 60);
});

Deno.test("sim: same seed, same run (determinism)", () => {
  const run = () => {
    const p = pair(
      7,
      { delay: 20, jitter: 10, loss: 0.1, duplicate: 0.05, reorder: 0.05 },
      { delay: 20, jitter: 10, loss: 0.1 },
      { ...KCP_MODES.fast, source: { total: 300000, writeSize: 5000, salt: 1 } },
      { ...KCP_MODES.fast },
    );
    p.sim.runUntil(() => complete(p), 600000);
    return [p.sim.now, p.sim.events, p.sim.stats(0).lost, p.a.snmp.RetransSegs, p.b.snmp.InSegs];
  };
  const x = run();
  assertEquals(run(), x);
  assert(x[3] > 0, "the run retransmitted");
});

Deno.test("sim: a reader that stops closes the window; WASK/WINS reopen it", () => {
  // b reads nothing until 20 s; a's data fills b's window (wnd 0), then a must probe.
  const p = pair(
    3,
    { delay: 10, loss: 0 },
    { delay: 10, loss: 0 },
    { ...KCP_MODES.fast, sndWnd: 32, source: { total: 200000, writeSize: 8192, salt: 1 } },
    { ...KCP_MODES.fast, rcvWnd: 16, readRate: 0 },
  );
  let wasks = 0, wins = 0, zeroWnd = 0;
  p.sim.tap = (from, pkt) => {
    for (const s of parseDatagram(pkt.bytes()).segments) {
      if (s.cmd === KcpCmd.Wask && from === 0) wasks++;
      if (s.cmd === KcpCmd.Wins && from === 1) wins++;
      if (from === 1 && s.wnd === 0) zeroWnd++;
    }
  };
  // Stop b's reader by pretending its sink has no room: swap in a paused sink.
  const realPump = p.b.sink.pump.bind(p.b.sink);
  let paused = true;
  p.b.sink.pump = (kcp, now, src) => {
    if (!paused) realPump(kcp, now, src);
  };
  p.sim.run(20_000);
  assertEquals(p.b.kcp.rcvQueueCount, 16, "receive queue full");
  assertEquals(p.a.kcp.rmtWnd, 0);
  assert(zeroWnd > 0);
  assert(wasks >= 1, `a probed (${wasks})`);
  assert(wins >= 1, "b answered");
  assert(!p.a.kcp.writable());
  paused = false;
  p.sim.wake(1);
  assert(p.sim.runUntil(() => complete(p), 600_000));
  assertEquals(p.b.sink.firstError, -1);
});

Deno.test("sim: the core's clock may wrap around 2^32 mid-transfer", () => {
  const offset = 0x100000000 - 500;
  const p = pair(
    11,
    { delay: 15, jitter: 5, loss: 0.15 },
    { delay: 15, jitter: 5, loss: 0.15 },
    {
      ...KCP_MODES.fast2,
      clockOffset: offset,
      source: { total: 400000, writeSize: 3000, salt: 1 },
    },
    { ...KCP_MODES.fast2, clockOffset: offset + 12345 },
  );
  assert(p.sim.runUntil(() => complete(p), 600_000));
  assert(p.sim.now > 500, "the transfer crossed the wrap");
  assertEquals(p.b.sink.firstError, -1);
  assert(p.a.kcp.srtt > 0 && p.a.kcp.srtt < 200, `srtt ${p.a.kcp.srtt}`);
});

Deno.test("sim: steady state allocates no segments or packets per packet", () => {
  const pool = new PacketPool();
  const ea = new KcpEndpoint(1, {
    ...KCP_MODES.fast3,
    sndWnd: 128,
    rcvWnd: 128,
    source: { total: Infinity, writeSize: 4096, salt: 1 },
  }, pool);
  const eb = new KcpEndpoint(
    1,
    { ...KCP_MODES.fast3, sndWnd: 128, rcvWnd: 128, expectSalt: 1 },
    pool,
  );
  const sim = new Simulator(5, ea, eb, { delay: 10, loss: 0.05, jitter: 3 });
  sim.run(5_000);
  const packets = pool.created;
  const segments = defaultSegmentPool.created;
  const before = eb.sink.received;
  const sent = sim.stats(0).sent + sim.stats(1).sent;
  sim.run(20_000);
  const moved = sim.stats(0).sent + sim.stats(1).sent - sent;
  assert(eb.sink.received - before > 5_000_000, "moved real data");
  // Pools only grow to a new high-water mark of packets in flight (random queueing), never
  // by one per packet.
  const grew = pool.created - packets + defaultSegmentPool.created - segments;
  assert(grew * 1000 < moved, `pools grew by ${grew} over ${moved} datagrams`);
  assertEquals(eb.sink.firstError, -1);
});
