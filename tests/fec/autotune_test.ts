import fc from "fast-check";
import { assertEquals } from "../support/assert.ts";
import { AutoTune } from "../../transforms/fec/autotune.ts";

/** Samples a sender's pattern from `first` for `count` shards, parity skipped in `skip` groups. */
function feed(t: AutoTune, ds: number, ps: number, first: number, count: number, skip = -1) {
  const n = ds + ps;
  for (let s = first; s < first + count; s++) {
    const isData = s % n < ds;
    if (!isData && Math.floor(s / n) === skip) continue;
    t.sample(isData, s >>> 0);
  }
}

for (const gen of [2021, 2026] as const) {
  Deno.test(`autotune ${gen}: from the session start, two periods and a shard suffice`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 1, max: 38 }), (ds, ps) => {
        // ds+ps ≤ 128 keeps 2n+1 samples within one lap of the 2021 slot array.
        const t = new AutoTune(gen);
        feed(t, ds, ps, 0, 2 * (ds + ps) + 1);
        assertEquals([t.findPeriod(true), t.findPeriod(false)], [ds, ps]);
        return true;
      }),
      { seed: gen, numRuns: 300 },
    );
  });

  Deno.test(`autotune ${gen}: joining mid-stream, never wrong and soon right (fast-check)`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 0xfffffff }),
        (ds, ps, first) => {
          const t = new AutoTune(gen);
          const n = ds + ps;
          let foundAt = -1;
          // Within one pass of the 258-sample window plus two periods, it must be found.
          for (let k = 0; k < 258 + 3 * n; k++) {
            const s = first + k;
            t.sample(s % n < ds, s);
            const d = t.findPeriod(true), p = t.findPeriod(false);
            if (d > 0 && p > 0) {
              assertEquals([d, p], [ds, ps], `after ${k + 1} samples`);
              if (foundAt < 0) foundAt = k;
            }
          }
          return foundAt >= 0;
        },
      ),
      { seed: gen + 1, numRuns: 150 },
    );
  });

  Deno.test(`autotune ${gen}: too few samples give no answer`, () => {
    const t = new AutoTune(gen);
    feed(t, 10, 3, 0, 11);
    assertEquals(t.findPeriod(false) > 0, false);
  });
}

Deno.test("autotune 2021: periods are found across the seqid wrap", () => {
  const t = new AutoTune(2021);
  // 5 + 2 with paws 0xFFFFFFFC: seqids …, 0xFFFFFFFB, 0, 1, …
  const n = 7, paws = Math.floor(0xffffffff / n) * n;
  for (let k = 0; k < 300; k++) {
    const s = (paws - 150 + k) % paws;
    t.sample(s % n < 5, s);
  }
  assertEquals([t.findPeriod(true), t.findPeriod(false)], [5, 2]);
});

Deno.test("autotune 2026: a group without parity blocks an answer until it ages out", () => {
  const t = new AutoTune(2026);
  feed(t, 3, 2, 0, 30, 0); // the first group sent no parity
  assertEquals(t.findPeriod(false), -1);
  feed(t, 3, 2, 30, 300);
  assertEquals([t.findPeriod(true), t.findPeriod(false)], [3, 2]);
});
