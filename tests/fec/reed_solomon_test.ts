import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import {
  buildEncodingMatrix,
  invertMatrix,
  multiplyMatrix,
  ReedSolomon,
} from "../../transforms/fec/reed_solomon.ts";

const rows = (ds: number, ps: number) => {
  const rs = new ReedSolomon(ds, ps);
  return Array.from({ length: ps }, (_, k) => toHex(rs.parityRow(k)));
};

Deno.test("reed-solomon: parity rows equal klauspost's default (docs/protocol.md §4.4)", () => {
  assertEquals(rows(3, 2), ["010101", "0f0806"]);
  assertEquals(rows(4, 2), ["1b1c1214", "1c1b1412"]);
  assertEquals(rows(5, 2), ["0707060601", "0908090801"]);
  assertEquals(rows(10, 3), [
    "8196afb8d2c4fee80302",
    "9681b8afc4d2e8fe0203",
    "bfd6620a066fdfb70504",
  ]);
});

Deno.test("reed-solomon: top rows are the identity", () => {
  for (const [ds, ps] of [[1, 1], [3, 2], [10, 3], [20, 10]]) {
    const m = buildEncodingMatrix(ds, ps);
    for (let r = 0; r < ds; r++) {
      for (let c = 0; c < ds; c++) assertEquals(m[r * ds + c], r === c ? 1 : 0);
    }
  }
});

Deno.test("reed-solomon: worked example 3+2 (docs/protocol.md §4.5)", () => {
  const rs = new ReedSolomon(3, 2);
  const shards = [
    [1, 2, 3, 4],
    [5, 6, 0, 0],
    [7, 8, 9, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ].map((x) => new Uint8Array(x));
  rs.encode(shards, 4);
  assertEquals(toHex(shards[3]), "030c0a04");
  assertEquals(toHex(shards[4]), "351e273c");
});

Deno.test("reed-solomon: bad shard counts are refused", () => {
  assertThrows(() => new ReedSolomon(0, 1));
  assertThrows(() => new ReedSolomon(1, 0));
  assertThrows(() => new ReedSolomon(200, 57));
  assertEquals(new ReedSolomon(255, 1).totalShards, 256);
});

Deno.test("reed-solomon: matrix inverse (fast-check over random invertible matrices)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.integer(), (n, seed) => {
      let x = seed | 1;
      const m = new Uint8Array(n * n).map(() => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
      const inv = invertMatrix(m, n);
      if (inv === null) return true;
      const id = multiplyMatrix(m, inv, n, n, n);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < n; c++) assertEquals(id[r * n + c], r === c ? 1 : 0);
      }
      return true;
    }),
    { seed: 21, numRuns: 300 },
  );
  assertEquals(invertMatrix(new Uint8Array([1, 2, 1, 2]), 2), null);
});

Deno.test("reed-solomon: any ds of ds+ps shards rebuild the data (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 24 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 200 }),
      fc.integer(),
      (ds, ps, len, seed) => {
        const rs = ReedSolomon.shared(ds, ps);
        let x = seed | 1;
        const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 16;
        const shards = Array.from({ length: ds + ps }, () => new Uint8Array(len + 2));
        for (let j = 0; j < ds; j++) for (let i = 0; i < len; i++) shards[j][i + 1] = rnd();
        rs.encode(shards, len, 1);
        const original = shards.map((s) => s.slice());
        // Erase up to ps shards, chosen at random.
        const present = new Uint8Array(ds + ps).fill(1);
        const lost = rnd() % (ps + 1);
        for (let e = 0; e < lost; e++) present[rnd() % (ds + ps)] = 0;
        for (let j = 0; j < ds + ps; j++) if (!present[j]) shards[j].fill(0xee);
        assert(rs.reconstructData(shards, present, len, 1));
        for (let j = 0; j < ds; j++) {
          assertEquals(
            toHex(shards[j].subarray(1, len + 1)),
            toHex(original[j].subarray(1, len + 1)),
          );
        }
        // Too few shards: refused, nothing rebuilt.
        const few = new Uint8Array(ds + ps);
        for (let j = 0; j < ds - 1; j++) few[j] = 1;
        assert(!rs.reconstructData(shards, few, len, 1));
        return true;
      },
    ),
    { seed: 22, numRuns: 300 },
  );
});

Deno.test("reed-solomon: 255+1 and 128+128 encode and rebuild", () => {
  for (const [ds, ps] of [[255, 1], [128, 128]]) {
    const rs = ReedSolomon.shared(ds, ps);
    const shards = Array.from({ length: ds + ps }, (_, j) => new Uint8Array(16).fill(j * 7 + 1));
    rs.encode(shards, 16);
    const keep = shards.map((s) => s.slice());
    const present = new Uint8Array(ds + ps).fill(1);
    for (let j = 0; j < ps; j++) {
      present[j * 2] = 0;
      shards[j * 2].fill(0);
    }
    assert(rs.reconstructData(shards, present, 16));
    for (let j = 0; j < ds; j++) assertEquals(toHex(shards[j]), toHex(keep[j]));
  }
});
