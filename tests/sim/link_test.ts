/** The simulator itself: PRNG, event order, and each link impairment. */

import { assert, assertEquals } from "../support/assert.ts";
import { type Packet, type PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { type LinkConfig, Rng, type SimEndpoint, Simulator } from "./link.ts";

/** Sends `count` numbered datagrams of `size` bytes, one every `every` ms; records arrivals. */
class Probe implements SimEndpoint {
  readonly arrivals: { seq: number; at: number }[] = [];
  #sent = 0;
  #next = 0;
  constructor(
    readonly pool: PacketPool,
    readonly count: number,
    readonly size = 100,
    readonly every = 1,
  ) {}
  receive(p: Packet, now: number): void {
    this.arrivals.push({ seq: p.view.getUint32(p.start, true), at: now });
    p.release();
  }
  poll(now: number, out: PacketBatch): void {
    while (this.#sent < this.count && this.#next <= now) {
      const p = this.pool.acquire();
      const at = p.append(this.size);
      p.view.setUint32(at, this.#sent++, true);
      out.push(p);
      this.#next += this.every;
    }
  }
  deadline(): number {
    return this.#sent < this.count ? this.#next : Infinity;
  }
}

function probeRun(cfg: LinkConfig, count = 20000, seed = 1, size = 100, every = 1) {
  const pool = new PacketPool();
  const a = new Probe(pool, count, size, every);
  const b = new Probe(pool, 0);
  const sim = new Simulator(seed, a, b, cfg);
  sim.run(1e9);
  return { sim, arrivals: b.arrivals, pool };
}

Deno.test("rng: seeded, uniform enough, reproducible", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assertEquals(Array.from({ length: 1000 }, () => b.next()), xs);
  assert(c.next() !== xs[0], "another seed, another stream");
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  assert(xs.every((x) => x >= 0 && x < 1));
});

Deno.test("link: fixed delay keeps order and timing; packets go back to the pool", () => {
  const { arrivals, pool, sim } = probeRun({ delay: 25 }, 1000);
  assertEquals(arrivals.length, 1000);
  assert(arrivals.every((x, i) => x.seq === i && x.at === i + 25));
  assertEquals(pool.available, pool.created, "every packet released");
  assertEquals(sim.stats(0).delivered, 1000);
});

Deno.test("link: Bernoulli loss rate", () => {
  const { arrivals, sim } = probeRun({ delay: 1, loss: 0.1 });
  const rate = 1 - arrivals.length / 20000;
  assert(Math.abs(rate - 0.1) < 0.01, `loss ${rate}`);
  assertEquals(sim.stats(0).lost + arrivals.length, 20000);
});

Deno.test("link: Gilbert-Elliott loss comes in bursts", () => {
  // Stationary bad share p/(p+q) = 0.1; mean burst 1/q = 5 packets.
  const { arrivals } = probeRun({
    delay: 1,
    burst: { pGoodToBad: 0.2 / 9, pBadToGood: 0.2 },
  }, 50000);
  const got = new Set(arrivals.map((x) => x.seq));
  let runs = 0, lost = 0;
  for (let i = 0; i < 50000; i++) {
    if (!got.has(i)) {
      lost++;
      if (got.has(i - 1) || i === 0) runs++;
    }
  }
  const rate = lost / 50000, meanRun = lost / runs;
  assert(Math.abs(rate - 0.1) < 0.02, `loss ${rate}`);
  assert(meanRun > 4 && meanRun < 6, `mean burst ${meanRun}`);
});

Deno.test("link: jitter and explicit reordering reorder; duplication duplicates", () => {
  const j = probeRun({ delay: 10, jitter: 5 }, 5000).arrivals;
  const inversions = j.filter((x, i) => i > 0 && x.seq < j[i - 1].seq).length;
  assert(inversions > 100, `jitter inversions ${inversions}`);
  assert(j.every((x) => x.at - x.seq >= 10 && x.at - x.seq < 15));
  const r = probeRun({ delay: 10, reorder: 0.1, reorderDelay: 30 }, 5000).arrivals;
  const late = r.filter((x) => x.at - x.seq === 40).length;
  assert(late > 400 && late < 600, `reordered ${late}`);
  const d = probeRun({ delay: 10, duplicate: 0.2 }, 5000);
  const dups = d.arrivals.length - 5000;
  assertEquals(dups, d.sim.stats(0).duplicated);
  assert(dups > 900 && dups < 1100, `duplicates ${dups}`);
});

Deno.test("link: bandwidth cap serialises; the queue drops at its limit", () => {
  // 100-byte datagrams every 1 ms into 50 bytes/ms: half get through, late ones wait in the queue.
  const { arrivals, sim } = probeRun({ delay: 0, bandwidth: 50, queueLimit: 1000 }, 2000);
  assert(arrivals.length > 950 && arrivals.length < 1050, `${arrivals.length}`);
  assertEquals(sim.stats(0).queueDrops + arrivals.length, 2000);
  for (let i = 1; i < arrivals.length; i++) assert(arrivals[i].at - arrivals[i - 1].at >= 2 - 1e-9);
  const q = arrivals.map((x) => x.at - x.seq);
  assert(Math.max(...q) <= 1000 / 50 + 2, "queueing delay bounded by the queue");
});

Deno.test("simulator: same seed and config give the same run", () => {
  const cfg: LinkConfig = { delay: 5, jitter: 7, loss: 0.2, duplicate: 0.1, reorder: 0.1 };
  const x = probeRun(cfg, 3000, 9).arrivals;
  assertEquals(probeRun(cfg, 3000, 9).arrivals, x);
  assert(JSON.stringify(probeRun(cfg, 3000, 10).arrivals) !== JSON.stringify(x));
});

Deno.test("link: fifo jitter varies delay without reordering", () => {
  const { arrivals } = probeRun({ delay: 10, jitter: 5, fifo: true }, 5000);
  assertEquals(arrivals.length, 5000);
  assert(arrivals.every((x, i) => x.seq === i), "in order");
  const delays = new Set(arrivals.map((x) => Math.round(x.at - x.seq)));
  assert(delays.size >= 4, "the delay varies");
});

Deno.test("simulator: endpoint b starts at startB, or on its first datagram", () => {
  const starts: number[] = [];
  class Clock implements SimEndpoint {
    receive(p: Packet): void {
      p.release();
    }
    poll(now: number): void {
      if (starts.length === 0) starts.push(now);
    }
    deadline(): number {
      return Infinity;
    }
  }
  const pool = new PacketPool();
  new Simulator(1, new Probe(pool, 1), new Clock(), { delay: 70 }, undefined, { startB: 42 })
    .run(100);
  assertEquals(starts, [42]);
  starts.length = 0;
  new Simulator(1, new Probe(pool, 1), new Clock(), { delay: 7 }, undefined, {
    startB: Infinity,
  }).run(100);
  assertEquals(starts, [7]);
});

Deno.test("simulator: batch delivers datagrams arriving together before one poll", () => {
  /** Sends three datagrams in each poll at 0, 10, 20 ms. */
  class Triple implements SimEndpoint {
    #next = 0;
    constructor(readonly pool: PacketPool) {}
    receive(p: Packet): void {
      p.release();
    }
    poll(now: number, out: PacketBatch): void {
      if (now < this.#next || this.#next > 20) return;
      for (let k = 0; k < 3; k++) {
        const p = this.pool.acquire();
        p.append(10);
        out.push(p);
      }
      this.#next += 10;
    }
    deadline(): number {
      return this.#next > 20 ? Infinity : this.#next;
    }
  }
  /** Records how many datagrams came in before each poll that followed a delivery. */
  class Batches implements SimEndpoint {
    readonly sizes: number[] = [];
    #got = 0;
    receive(p: Packet): void {
      p.release();
      this.#got++;
    }
    poll(): void {
      if (this.#got > 0) this.sizes.push(this.#got);
      this.#got = 0;
    }
    deadline(): number {
      return Infinity;
    }
  }
  for (const batch of [false, true]) {
    const pool = new PacketPool();
    const b = new Batches();
    new Simulator(1, new Triple(pool), b, { delay: 5 }, undefined, { startB: 0, batch }).run(100);
    assertEquals(b.sizes, batch ? [3, 3, 3] : [1, 1, 1, 1, 1, 1, 1, 1, 1]);
  }
});
