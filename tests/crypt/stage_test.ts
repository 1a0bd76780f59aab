/**
 * The `crypt` stage and the suites as a whole: round trips for every method, tampering,
 * garbage, short datagrams, counters, options.
 */

import fc from "fast-check";
import { assert, assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { Packet, PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { assertPacketRoundTrip } from "../../testing.ts";
import { deriveKey } from "../../transforms/crypt/key.ts";
import { NonceSource } from "../../transforms/crypt/nonce.ts";
import { type CryptStage, cryptStage, MIN_PAYLOAD_2021 } from "../../transforms/crypt/stage.ts";
import {
  createCryptSuite,
  createDatagramCipher,
  resolveCryptMethod,
} from "../../transforms/crypt/suite.ts";
import { DeferredCipher } from "../../transforms/crypt/datagram_cipher.ts";
import type { HeaderCryptSuite } from "../../transforms/crypt/header_suite.ts";
import { CRYPT_METHODS, type CryptMethod } from "../../transforms/crypt/suite_types.ts";

const SEED = 424242;

function context(pool = new PacketPool()): StageContext {
  return { role: "server", pool, snmp: new Snmp(), log: () => {} };
}

/** A deterministic xorshift byte source for nonces and garbage. */
function seeded(seed: number): (b: Uint8Array) => void {
  let x = seed | 0 || 1;
  return (b) => {
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x;
    }
  };
}

const bytesArb = (min: number, max: number) =>
  fc.integer({ min, max }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

Deno.test("stage: definition and overheads", () => {
  assertEquals(cryptStage.name, "crypt");
  assertEquals(cryptStage.kind, "packet");
  assertEquals(cryptStage.shared, true);
  const expected: Record<string, number> = { "null": 0, "aes-128-gcm": 28 };
  for (const m of CRYPT_METHODS) {
    const s = cryptStage.create({ crypt: m, key: "test" }, context());
    assertEquals(s.overhead, expected[m] ?? 20, m);
  }
});

for (const method of CRYPT_METHODS) {
  Deno.test(`stage: ${method} round-trips arbitrary batches (0..1400 bytes)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(bytesArb(0, 1400), { maxLength: 32, size: "max" }), {
          minLength: 1,
          maxLength: 3,
        }),
        (batches) => {
          const pool = new PacketPool();
          const opts = { crypt: method, key: "test", minPayload: 0 };
          const sender = cryptStage.create(opts, context(pool));
          const ctx = context(pool);
          const receiver = cryptStage.create(opts, ctx);
          for (const payloads of batches) {
            const batch = new PacketBatch();
            for (const p of payloads) batch.push(pool.from(p));
            sender.encode(batch, 0);
            for (let i = 0; i < batch.length; i++) {
              assertEquals(batch.at(i).length, payloads[i].length + sender.overhead);
            }
            receiver.decode(batch, 0);
            assertEquals(batch.length, payloads.length);
            for (let i = 0; i < batch.length; i++) {
              assertEquals(toHex(batch.at(i).bytes()), toHex(payloads[i]));
            }
            batch.releaseAll();
          }
          assertEquals(ctx.snmp.InCsumErrors, 0);
          assertEquals(pool.available, pool.created, "every packet back in the pool");
        },
      ),
      { seed: SEED, numRuns: method === "3des" ? 6 : 12 },
    );
  });
}

Deno.test("stage: the shared property-test helper (testing.ts) accepts every method", async () => {
  for (const method of CRYPT_METHODS) {
    await assertPacketRoundTrip(cryptStage, {
      options: { crypt: method, key: "test", minPayload: 0 },
      maxPacketSize: 1400,
      numRuns: 10,
      seed: SEED,
    });
  }
});

/**
 * Which byte offsets of a sealed datagram a bit flip may hit without being detected, per method
 * (derived in docs/crypt.md): those the receiver never checks and that do not feed the checked
 * bytes. Everywhere else a flip must be rejected (for a CRC-32 over garbage, with probability
 * 1 − 2^-32 per trial; the seeds are fixed).
 */
function undetectable(method: CryptMethod): [number, number] {
  switch (method) {
    case "blowfish":
    case "cast5":
    case "3des":
    case "tea":
    case "xtea":
      return [0, 8]; // first 8-byte block: garbles only nonce bytes [8,16)
    case "salsa20":
      return [8, 16]; // encrypted nonce bytes, not covered by the CRC
    case "xor":
    case "none":
      return [0, 16]; // the nonce
    case "null":
      return [0, Infinity]; // no integrity at all
    default:
      return [0, 0]; // 16-byte CFB (nonce flips garble the CRC block) and GCM
  }
}

for (const method of CRYPT_METHODS) {
  Deno.test(`tamper: ${method} — every single-bit flip is rejected or harmless`, () => {
    const pool = new PacketPool();
    const suite = createCryptSuite(method, "test", { nonces: new NonceSource(seeded(7)) });
    const [lo, hi] = undetectable(method);
    const payload = new Uint8Array(77);
    seeded(99)(payload);
    const sealed = pool.from(payload);
    suite.seal(sealed);
    const wire = sealed.bytes().slice();
    let rejected = 0;
    for (let bit = 0; bit < wire.length * 8; bit++) {
      const p = pool.from(wire);
      p.buffer[p.start + (bit >>> 3)] ^= 1 << (bit & 7);
      const ok = suite.open(p);
      const at = bit >>> 3;
      if (ok) {
        if (method !== "null") {
          assertEquals(toHex(p.bytes()), toHex(payload), `bit ${bit} altered the payload`);
        }
        assert(at >= lo && at < hi, `flip at byte ${at} went undetected`);
      } else {
        rejected++;
        assert(!(at >= lo && at < hi), `flip at byte ${at} rejected`);
      }
      p.release();
    }
    const expectedRejected = wire.length * 8 -
      8 * Math.max(0, Math.min(hi, wire.length) - lo);
    assertEquals(rejected, expectedRejected);
  });
}

Deno.test("tamper: the stage counts rejected datagrams in InCsumErrors and releases them", () => {
  const pool = new PacketPool();
  const ctx = context(pool);
  const stage = cryptStage.create({ crypt: "aes", key: "test" }, ctx);
  const batch = new PacketBatch();
  for (let i = 0; i < 10; i++) batch.push(pool.from(new Uint8Array(100).fill(i)));
  stage.encode(batch, 0);
  for (const i of [1, 4, 9]) batch.at(i).buffer[batch.at(i).end - 1] ^= 0x80;
  stage.decode(batch, 0);
  assertEquals(batch.length, 7);
  assertEquals(ctx.snmp.InCsumErrors, 3);
  assertEquals([...batch.packets.slice(0, 7)].map((p) => p.bytes()[0]), [0, 2, 3, 5, 6, 7, 8]);
  batch.releaseAll();
  assertEquals(pool.available, pool.created);
});

Deno.test("garbage: random and short datagrams are dropped and counted, never thrown", () => {
  const fill = seeded(12345);
  for (const method of CRYPT_METHODS) {
    const pool = new PacketPool();
    const ctx = context(pool);
    const stage = cryptStage.create({ crypt: method, key: "test", minPayload: 0 }, ctx);
    const batch = new PacketBatch();
    const sizes = [0, 1, 7, 8, 15, 16, 19, 20, 21, 27, 28, 29, 64, 1000, 1500, 2000];
    for (const n of sizes) {
      const junk = new Uint8Array(n);
      fill(junk);
      const p = pool.acquire();
      p.start = 0; // as much data as the buffer holds, no headroom
      p.end = n;
      p.buffer.set(junk, 0);
      batch.push(p);
    }
    stage.decode(batch, 0);
    if (method === "null") {
      assertEquals(batch.length, sizes.length);
      assertEquals(ctx.snmp.InCsumErrors, 0);
    } else {
      assertEquals(batch.length, 0, method);
      assertEquals(ctx.snmp.InCsumErrors, sizes.length, method);
    }
    batch.releaseAll();
    assertEquals(pool.available, pool.created);
  }
});

Deno.test("garbage: fast-check, any bytes through any method's decode never throw", () => {
  const stages = CRYPT_METHODS.map((m) => cryptStage.create({ crypt: m, key: "k" }, context()));
  fc.assert(
    fc.property(fc.array(bytesArb(0, 1500), { maxLength: 8, size: "max" }), (datagrams) => {
      for (const s of stages) {
        const batch = new PacketBatch();
        for (const d of datagrams) batch.push(new Packet(d.slice(), 0).set(d, 0));
        s.decode(batch, 0);
        assert(batch.length <= datagrams.length);
      }
    }),
    { seed: SEED, numRuns: 30 },
  );
});

Deno.test("stage: payloads shorter than 24 bytes are dropped after the check (2021 gate)", () => {
  const pool = new PacketPool();
  const ctx = context(pool);
  const stage = cryptStage.create({ crypt: "aes", key: "test" }, ctx);
  assertEquals(MIN_PAYLOAD_2021, 24);
  const batch = new PacketBatch();
  batch.push(pool.from(new Uint8Array(23)));
  batch.push(pool.from(new Uint8Array(24)));
  batch.push(pool.from(new Uint8Array(0)));
  stage.encode(batch, 0);
  stage.decode(batch, 0);
  assertEquals(batch.length, 1);
  assertEquals(batch.at(0).length, 24);
  assertEquals(ctx.snmp.KCPInErrors, 2);
  assertEquals(ctx.snmp.InCsumErrors, 0);
  batch.releaseAll();
});

Deno.test("names: unknown names fall back to aes; 2021 table maps null and aes-128-gcm to aes", () => {
  assertEquals(resolveCryptMethod("AES"), "aes");
  assertEquals(resolveCryptMethod("chacha20"), "aes");
  assertEquals(resolveCryptMethod(""), "aes");
  assertEquals(resolveCryptMethod("null"), "null");
  assertEquals(resolveCryptMethod("aes-128-gcm"), "aes-128-gcm");
  assertEquals(resolveCryptMethod("null", "2021"), "aes");
  assertEquals(resolveCryptMethod("aes-128-gcm", "2021"), "aes");
  for (const m of CRYPT_METHODS) {
    if (m !== "null" && m !== "aes-128-gcm") assertEquals(resolveCryptMethod(m, "2021"), m);
  }
  // A stage asked for an unknown name talks to an aes peer.
  const pool = new PacketPool();
  const a = cryptStage.create({ crypt: "Salsa20", key: "x" }, context(pool)) as CryptStage;
  const b = cryptStage.create({ crypt: "aes", key: "x" }, context(pool));
  assertEquals(a.suite.method, "aes");
  const batch = new PacketBatch();
  batch.push(pool.from(new Uint8Array(40).fill(5)));
  a.encode(batch, 0);
  b.decode(batch, 0);
  assertEquals(batch.length, 1);
  assertEquals(toHex(batch.at(0).bytes()), toHex(new Uint8Array(40).fill(5)));
});

Deno.test("options: pass (derived key) equals key; default key is kcptun's", () => {
  const pool = new PacketPool();
  const byKey = cryptStage.create({ crypt: "twofish", key: "secret" }, context(pool));
  const byPass = cryptStage.create({ crypt: "twofish", pass: deriveKey("secret") }, context(pool));
  const byDefault = cryptStage.create({ crypt: "twofish" }, context(pool));
  const byDefaultKey = cryptStage.create(
    { crypt: "twofish", key: "it's a secrect" },
    context(pool),
  );
  for (const [s, r] of [[byKey, byPass], [byDefault, byDefaultKey]]) {
    const batch = new PacketBatch();
    batch.push(pool.from(new Uint8Array(50).fill(9)));
    s.encode(batch, 0);
    r.decode(batch, 0);
    assertEquals(batch.length, 1);
    batch.releaseAll();
  }
});

Deno.test("seal: works without headroom (payload moved back) and nonces differ", () => {
  const suite = createCryptSuite("aes", "test");
  const buf = new Uint8Array(200);
  const p = new Packet(buf, 0);
  p.end = 100;
  buf.fill(3, 0, 100);
  suite.seal(p);
  assertEquals(p.length, 120);
  const q = new Packet(new Uint8Array(200), 64).set(new Uint8Array(100).fill(3), 64);
  suite.seal(q);
  assert(toHex(p.bytes().subarray(0, 16)) !== toHex(q.bytes().subarray(0, 16)), "fresh nonces");
  assert(suite.open(p) && suite.open(q));
  assertEquals(toHex(p.bytes()), toHex(q.bytes()));
  // GCM appends its tag behind the payload.
  const gcm = createCryptSuite("aes-128-gcm", "test");
  const g = new Packet(new Uint8Array(200), 16).set(new Uint8Array(10).fill(1), 16);
  gcm.seal(g);
  assertEquals([g.start, g.end], [4, 16 + 10 + 16]);
  assert(gcm.open(g));
  assertEquals([g.start, g.end], [16, 26]);
});

Deno.test("options: the JS-only AES engine and the native one are interchangeable", () => {
  const pool = new PacketPool();
  for (const crypt of ["aes", "aes-128", "aes-192"]) {
    const nonces = () => new NonceSource(seeded(5));
    const js = cryptStage.create({ crypt, engine: "js", nonces: nonces() }, context(pool));
    const auto = cryptStage.create({ crypt, nonces: nonces() }, context(pool));
    const a = new PacketBatch(), b = new PacketBatch();
    for (let i = 0; i < 20; i++) {
      const payload = new Uint8Array(30 + 60 * i).fill(i);
      a.push(pool.from(payload));
      b.push(pool.from(payload));
    }
    js.encode(a, 0);
    auto.encode(b, 0);
    for (let i = 0; i < a.length; i++) assertEquals(toHex(a.at(i).bytes()), toHex(b.at(i).bytes()));
    js.decode(b, 0);
    auto.decode(a, 0);
    assertEquals([a.length, b.length], [20, 20]);
    for (let i = 0; i < a.length; i++) assertEquals(toHex(a.at(i).bytes()), toHex(b.at(i).bytes()));
    a.releaseAll();
    b.releaseAll();
  }
});

Deno.test("suite: the cipher is made on the first seal or open, with the same bytes as an eager one", () => {
  const pool = new PacketPool();
  for (const method of ["aes", "aes-128", "blowfish", "xor", "salsa20", "none"] as const) {
    const pass = deriveKey("deferred").slice();
    const suite = createCryptSuite(method, pass, { nonces: new NonceSource(seeded(SEED)) });
    const cipher = (suite as HeaderCryptSuite).cipher as DeferredCipher;
    assert(cipher instanceof DeferredCipher && !cipher.made, `${method}: not made yet`);
    pass.fill(0); // the suite keeps its own copy
    const plain = new TextEncoder().encode(`a datagram of ${method} of at least 24 bytes`);
    const sealed = pool.from(plain);
    suite.seal(sealed);
    assert(cipher.made, `${method}: made by the first seal`);
    // An eager cipher keyed the same way decrypts it.
    const bytes = sealed.bytes().slice();
    createDatagramCipher(method, deriveKey("deferred"))!.decrypt(bytes, 0, bytes.length);
    assertEquals(bytes.subarray(20), plain, method);
    // The batch forms go through the cipher's own (or one call per packet).
    const batch = [pool.from(plain), pool.from(plain)];
    suite.sealBatch(batch, 2);
    const ok = new Uint8Array(2);
    suite.openBatch(batch, 2, ok);
    assertEquals([...ok], [1, 1], method);
    assertEquals(batch[1].bytes(), plain, method);
  }
  let made = 0;
  const d = new DeferredCipher(() => (made++, createDatagramCipher("none", new Uint8Array(32))!));
  assertEquals(made, 0);
  d.encrypt(new Uint8Array(4), 0, 4);
  d.decrypt(new Uint8Array(4), 0, 4);
  assertEquals(made, 1);
});
