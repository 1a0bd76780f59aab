import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  GF_EXP,
  GF_LOG,
  gfDiv,
  gfInv,
  gfMul,
  gfMulAdd,
  gfMulSet,
  gfPow,
  packedMulAdd,
  packMulTable,
  unpackLane,
} from "../../transforms/fec/gf256.ts";

/** Carry-less multiply reduced by 0x11D, bit by bit: an independent reference. */
function slowMul(a: number, b: number): number {
  let r = 0;
  while (b > 0) {
    if (b & 1) r ^= a;
    b >>= 1;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return r;
}

Deno.test("gf256: exp table starts as klauspost's (generator 2, polynomial 0x11D)", () => {
  assertEquals(
    Array.from(GF_EXP.subarray(0, 16)),
    [
      0x01,
      0x02,
      0x04,
      0x08,
      0x10,
      0x20,
      0x40,
      0x80,
      0x1d,
      0x3a,
      0x74,
      0xe8,
      0xcd,
      0x87,
      0x13,
      0x26,
    ],
  );
  for (let a = 1; a < 256; a++) assertEquals(GF_EXP[GF_LOG[a]], a);
});

Deno.test("gf256: table multiply equals bitwise multiply for all pairs", () => {
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      if (gfMul(a, b) !== slowMul(a, b)) throw new Error(`${a}·${b}`);
    }
  }
});

Deno.test("gf256: field laws (fast-check)", () => {
  const byte = fc.integer({ min: 0, max: 255 });
  fc.assert(
    fc.property(byte, byte, byte, (a, b, c) => {
      assertEquals(gfMul(a, b), gfMul(b, a));
      assertEquals(gfMul(a, gfMul(b, c)), gfMul(gfMul(a, b), c));
      assertEquals(gfMul(a, b ^ c), gfMul(a, b) ^ gfMul(a, c));
      if (b !== 0) assertEquals(gfMul(gfDiv(a, b), b), a);
      if (a !== 0) assertEquals(gfMul(a, gfInv(a)), 1);
    }),
    { seed: 11, numRuns: 2000 },
  );
  assertThrows(() => gfDiv(1, 0));
});

Deno.test("gf256: power convention: x^0 = 1 (0 included), 0^n = 0", () => {
  assertEquals(gfPow(0, 0), 1);
  assertEquals(gfPow(0, 3), 0);
  assertEquals(gfPow(7, 0), 1);
  assertEquals(gfPow(2, 8), 0x1d);
  assertEquals(gfPow(3, 2), gfMul(3, 3));
  assertEquals(gfPow(5, 255), 1);
});

Deno.test("gf256: bulk multiply-add, multiply-set and packed tables agree with gfMul", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
      (src, c) => {
        const n = src.length;
        const dst = new Uint8Array(n + 3).fill(0x5a);
        gfMulAdd(dst, 3, src, 0, n, c[0]);
        for (let i = 0; i < n; i++) assertEquals(dst[i + 3], 0x5a ^ gfMul(c[0], src[i]));
        gfMulSet(dst, 3, src, 0, n, c[1]);
        for (let i = 0; i < n; i++) assertEquals(dst[i + 3], gfMul(c[1], src[i]));
        const table = new Uint32Array(512);
        packMulTable(table, 256, c[0], c[1], c[2], c[3]);
        const acc = new Uint32Array(n);
        packedMulAdd(acc, table, 256, src, 0, n);
        const lane = new Uint8Array(n);
        for (let k = 0; k < 4; k++) {
          unpackLane(acc, k, lane, 0, n);
          for (let i = 0; i < n; i++) assertEquals(lane[i], gfMul(c[k], src[i]));
        }
        return true;
      },
    ),
    { seed: 12, numRuns: 200 },
  );
  const one = new Uint8Array([1, 2, 3]);
  const d = new Uint8Array([4, 5, 6]);
  gfMulAdd(d, 0, one, 0, 3, 1);
  assert(d[0] === 5 && d[1] === 7 && d[2] === 5, "c = 1 is XOR");
});
