/** QPP pads, PRNG and cipher against docs/protocol.md §8.6's vectors and independent references. */

import { createCipheriv, createHmac, pbkdf2Sync } from "node:crypto";
import {
  checkQppParams,
  QPP_MAX_COUNT,
  qppChunks,
  QppDecoder,
  QppEncoder,
  QppPads,
  qppPads,
  qppPrngSeed,
  stateFromBytes,
  Xoshiro256ss,
} from "../../transforms/qpp/mod.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";

const KEY = new TextEncoder().encode("test");

Deno.test("qpp vectors: first derived chunk of key 'test'", () => {
  const chunks = qppChunks(KEY);
  assertEquals(chunks.length, 7);
  assertEquals(
    toHex(chunks[0]),
    "69ca29cd6abd270712004ff7291b062e0f2e9e84f44fe0f583cfe254a2183e3d",
  );
  // A key under 32 bytes is stretched to exactly 32, so every chunk reads the same 32 bytes.
  assertEquals(new Set(chunks.map(toHex)).size, 1);
});

Deno.test("qpp vectors: pad 0 of key 'test' starts a800df48…", () => {
  const pads = qppPads("test", 61);
  assertEquals(toHex(pads.forward.subarray(0, 16)), "a800df4812105ce5d0c96fb480018e75");
});

Deno.test("qpp vectors: r_0, r_1 and the pads they select (key 'test', 61 pads)", () => {
  const prng = new Xoshiro256ss(qppPads("test", 61).prngState);
  const r0 = prng.nextBigInt();
  const r1 = prng.nextBigInt();
  assertEquals(r0, 0xa2e3555a99a2f98fn);
  assertEquals(r1, 0xa4e18d8c0ed2f592n);
  assertEquals([Number(r0 & 0xffffn) % 61, Number(r1 & 0xffffn) % 61], [20, 36]);
});

Deno.test("qpp vectors: 'hello world, thi' encrypts to 0d0fcc3b… and back", () => {
  const pads = qppPads("test", 61);
  const text = new TextEncoder().encode("hello world, thi");
  const out = new Uint8Array(16);
  const enc = new QppEncoder(pads);
  enc.process(text, out);
  assertEquals(toHex(out), "0d0fcc3b61988e9b0de2750c9ac44bef");
  assertEquals(enc.position, 16);
  assertEquals(new TextDecoder().decode(text), "hello world, thi"); // src untouched
  new QppDecoder(pads).process(out);
  assertEquals(new TextDecoder().decode(out), "hello world, thi");
});

Deno.test("qpp vectors: byte p uses pad (r mod 2^16) mod count and mask byte p mod 8 of r", () => {
  const pads = qppPads("test", 61);
  const prng = new Xoshiro256ss(pads.prngState);
  const zeros = new Uint8Array(40);
  new QppEncoder(pads).process(zeros);
  for (let w = 0; w < 5; w++) {
    const r = prng.nextBigInt();
    const pad = Number(r & 0xffffn) % 61;
    for (let b = 0; b < 8; b++) {
      const mask = Number((r >> BigInt(8 * b)) & 0xffn);
      assertEquals(zeros[w * 8 + b], pads.forward[pad * 256 + mask], `byte ${w * 8 + b}`);
    }
  }
});

/** The pads rebuilt the slow way: BigInt arithmetic and native AES-ECB per block. */
function referencePad(seed: Uint8Array, index: number): Uint8Array {
  const salt = "___QUANTUM_PERMUTATION_PAD_SHUFFLE_SALT___";
  const chunks = qppChunks(seed);
  const aesKeys = chunks.map((c) => pbkdf2Sync(c, salt, 128, 32, "sha1"));
  let s = new Uint8Array(
    createHmac("sha256", chunks[index % 7]).update(`QPP_${index.toString(2)}`).digest(),
  );
  const pad = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (let k = 255; k > 0; k--) {
    for (const key of aesKeys) {
      const c = createCipheriv("aes-256-ecb", key, null).setAutoPadding(false);
      s = new Uint8Array(c.update(s));
    }
    const j = Number(BigInt("0x" + toHex(s)) % BigInt(k + 1));
    [pad[k], pad[j]] = [pad[j], pad[k]];
  }
  return pad;
}

Deno.test("qpp pads: match a BigInt / native AES reference, and inverse inverts", () => {
  const pads = qppPads("test", 61);
  for (const i of [0, 5, 60]) {
    assertEquals(toHex(pads.forward.subarray(i * 256, i * 256 + 256)), toHex(referencePad(KEY, i)));
  }
  for (let i = 0; i < 61; i++) {
    const pad = pads.forward.subarray(i * 256, i * 256 + 256);
    assertEquals(new Set(pad).size, 256, `pad ${i} is a permutation`);
    for (let x = 0; x < 256; x++) assertEquals(pads.inverse[i * 256 + pad[x]], x);
  }
  // Pads 0 and 7 share a chunk but not their message: they differ.
  assert(toHex(pads.forward.subarray(0, 256)) !== toHex(pads.forward.subarray(7 * 256, 8 * 256)));
});

Deno.test("qpp pads: long keys are read cyclically, 32 bytes per chunk, without stretching", () => {
  const long = Uint8Array.from({ length: 40 }, (_, i) => i * 7 + 1);
  const chunks = qppChunks(long);
  const salt = "___QUANTUM_PERMUTATION_PAD_SEED_DERIVE___";
  // Chunk 1 starts at seed index 32: bytes 32..39 then 0..23.
  const raw1 = new Uint8Array([...long.subarray(32), ...long.subarray(0, 24)]);
  assertEquals(toHex(chunks[1]), toHex(new Uint8Array(pbkdf2Sync(raw1, salt, 1024, 32, "sha1"))));
  // A key under 32 bytes is stretched to 32 first (128 iterations); chunk 2 then starts at 0.
  // Chunks start at 0, 32, 24, 16, 8, 0, 32 of a 40-byte key: five distinct ones.
  assertEquals(new Set(chunks.map(toHex)).size, 5);
  assertEquals(toHex(chunks[5]), toHex(chunks[0]));
  const short = long.subarray(0, 31);
  const stretched = pbkdf2Sync(short, salt, 128, 32, "sha1");
  const want2 = pbkdf2Sync(stretched, salt, 1024, 32, "sha1");
  assertEquals(toHex(qppChunks(short)[2]), toHex(new Uint8Array(want2)));
});

Deno.test("qpp prng seed: HMAC-SHA256 of the selector, then PBKDF2", () => {
  const mac = createHmac("sha256", KEY).update("PERMUTATION_MATRIX_SELECTOR").digest();
  const want = pbkdf2Sync(mac, "___QUANTUM_PERMUTATION_PAD_PRNG_SALT___", 128, 32, "sha1");
  assertEquals(toHex(qppPrngSeed(KEY)), toHex(new Uint8Array(want)));
  assertEquals(Array.from(qppPads("test").prngState), Array.from(stateFromBytes(qppPrngSeed(KEY))));
});

/** xoshiro256** on BigInts, straight from the definition. */
function referenceXoshiro(state: bigint[]): () => bigint {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & M;
  const s = state.slice();
  return () => {
    const out = (rotl((s[1] * 5n) & M, 7n) * 9n) & M;
    const t = (s[1] << 17n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45n);
    return out;
  };
}

Deno.test("qpp prng: 32-bit halves agree with a BigInt xoshiro256** over many seeds", () => {
  let x = 0x12345678;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const seeds = [
    new Uint32Array(8).fill(0xffffffff),
    Uint32Array.of(0x7fffffff, 0x80000000, 0xcccccccc, 0x33333333, 1, 0, 0xfffffffe, 2),
  ];
  for (let i = 0; i < 20; i++) seeds.push(Uint32Array.from({ length: 8 }, rnd));
  for (const seed of seeds) {
    const words = [0, 1, 2, 3].map((w) => (BigInt(seed[2 * w + 1]) << 32n) | BigInt(seed[2 * w]));
    const ref = referenceXoshiro(words);
    const ours = new Xoshiro256ss(seed);
    for (let n = 0; n < 200; n++) assertEquals(ours.nextBigInt(), ref(), `output ${n}`);
    assertEquals(ours.state().length, 8);
  }
});

Deno.test("qpp pads: counts and caching", () => {
  assertThrows(() => new QppPads(KEY, 0), RangeError);
  assertThrows(() => new QppPads(KEY, QPP_MAX_COUNT + 1), RangeError);
  assertThrows(() => new QppPads(KEY, 1.5), RangeError);
  assert(qppPads("test", 61) === qppPads(KEY, 61), "string and bytes of one key share pads");
  const seven = qppPads("test", 7);
  assert(seven !== qppPads("test", 61));
  // The pads of a smaller count are the first pads of a larger one.
  assertEquals(toHex(seven.forward), toHex(qppPads("test", 61).forward.subarray(0, 7 * 256)));
  // One pad: every output selects it.
  const one = new QppPads(KEY, 1);
  const z = new Uint8Array(64);
  new QppEncoder(one).process(z);
  const r = new Xoshiro256ss(one.prngState);
  r.next();
  assertEquals(z[0], one.forward[r.lo & 0xff]);
  assertThrows(() => new QppEncoder(one).process(new Uint8Array(4), new Uint8Array(3)), RangeError);
});

Deno.test("qpp params: kcptun 2026's fatal count and its warnings", () => {
  assertEquals(checkQppParams(0, 300).error, "QPPCount must be greater than 0 when QPP is enabled");
  assert(checkQppParams(-5, 300).error !== null);
  assert(checkQppParams(65536, 300).error!.includes("at most 65535"));
  assertEquals(checkQppParams(61, 211), { error: null, warnings: [] });
  assertEquals(checkQppParams(61, 4).warnings, [
    "QPP Warning: 'key' has size of 4 bytes, required 211 bytes at least",
  ]);
  assertEquals(checkQppParams(5, 211).warnings, [
    "QPP Warning: QPPCount 5, required 7 at least",
  ]);
  assertEquals(checkQppParams(64, 211).warnings, [
    "QPP Warning: QPPCount 64, choose a prime number for security",
  ]);
  assertEquals(checkQppParams(2, 1).warnings.length, 3);
  // Odd but not prime: kcptun only checks that the count shares no factor with 8.
  assertEquals(checkQppParams(9, 211).warnings, []);
});
