/**
 * The CFB construction and the stream ciphers against independent references: a textbook CFB
 * written here byte by byte, @noble/ciphers' AES-CFB and Salsa20, and each engine against the
 * others (JS single blocks, native bulk decryption, batch-parallel encryption).
 */

import fc from "fast-check";
import { cfb as nobleCfb } from "@noble/ciphers/aes.js";
import { salsa20 as nobleSalsa20 } from "@noble/ciphers/salsa.js";
import { assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { PacketPool } from "../../pipeline/packet.ts";
import type { Packet } from "../../pipeline/packet.ts";
import { AesCipher, createAes } from "../../transforms/crypt/aes.ts";
import { type BlockCipher, encryptBlock } from "../../transforms/crypt/block_cipher.ts";
import { Cfb, KCP_IV } from "../../transforms/crypt/cfb.ts";
import { Salsa20Cipher } from "../../transforms/crypt/salsa20.ts";
import { createBlockCipher } from "../../transforms/crypt/suite.ts";
import type { CryptMethod } from "../../transforms/crypt/suite_types.ts";

const CFB_METHODS: CryptMethod[] = [
  "aes",
  "aes-128",
  "aes-192",
  "blowfish",
  "twofish",
  "cast5",
  "3des",
  "tea",
  "xtea",
  "sm4",
];

const SEED = 20260501;

/** Textbook CFB, written out plainly (docs/protocol.md §3.2). */
function referenceCfb(c: BlockCipher, data: Uint8Array, decrypt: boolean): Uint8Array {
  const b = c.blockSize;
  const out = new Uint8Array(data.length);
  let feedback = KCP_IV.slice(0, b);
  for (let off = 0; off < data.length; off += b) {
    const ks = new Uint8Array(b);
    encryptBlock(c, feedback, 0, ks, 0);
    const n = Math.min(b, data.length - off);
    for (let j = 0; j < n; j++) out[off + j] = data[off + j] ^ ks[j];
    feedback = (decrypt ? data : out).slice(off, off + b);
  }
  return out;
}

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
// fast-check keeps generated arrays short unless told otherwise: draw the length first.
const bytesArb = (min: number, max: number) =>
  fc.integer({ min, max }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
const dataArb = bytesArb(0, 1500);

Deno.test("cfb: every block cipher matches textbook CFB, both directions, any length", () => {
  for (const m of CFB_METHODS) {
    fc.assert(
      fc.property(keyArb, dataArb, fc.nat(40), (key, data, offset) => {
        const c = createBlockCipher(m, key)!;
        const cfb = new Cfb(c);
        const buf = new Uint8Array(offset + data.length + 7);
        buf.set(data, offset);
        cfb.encrypt(buf, offset, offset + data.length);
        const ct = buf.slice(offset, offset + data.length);
        assertEquals(toHex(ct), toHex(referenceCfb(c, data, false)), m);
        cfb.decrypt(buf, offset, offset + data.length);
        assertEquals(toHex(buf.subarray(offset, offset + data.length)), toHex(data), m);
        assertEquals(toHex(referenceCfb(c, ct, true)), toHex(data), m);
      }),
      { seed: SEED, numRuns: 25 },
    );
  }
});

Deno.test("cfb: AES-CFB equals @noble/ciphers cfb with kcp-go's IV (128/192/256)", () => {
  fc.assert(
    fc.property(fc.constantFrom(16, 24, 32), keyArb, dataArb, (size, key, data) => {
      const k = key.subarray(0, size);
      const ours = data.slice();
      new Cfb(new AesCipher(k)).encrypt(ours, 0, ours.length);
      const noble = nobleCfb(k, KCP_IV.slice()).encrypt(data);
      assertEquals(toHex(ours), toHex(noble));
    }),
    { seed: SEED, numRuns: 100 },
  );
});

Deno.test("cfb: native bulk decryption equals JS single-block decryption", () => {
  fc.assert(
    fc.property(keyArb, dataArb, (key, data) => {
      const js = data.slice(), native = data.slice();
      new Cfb(new AesCipher(key)).decrypt(js, 0, js.length);
      new Cfb(createAes(key)).decrypt(native, 0, native.length);
      assertEquals(toHex(native), toHex(js));
    }),
    { seed: SEED, numRuns: 100 },
  );
});

function packetsOf(pool: PacketPool, payloads: Uint8Array[]): Packet[] {
  return payloads.map((p) => pool.from(p));
}

Deno.test("cfb: batch-parallel encryption equals per-packet encryption (any batch)", () => {
  const pool = new PacketPool();
  fc.assert(
    fc.property(
      keyArb,
      fc.array(bytesArb(0, 1400), { maxLength: 40, size: "max" }),
      (key, payloads) => {
        const batch = packetsOf(pool, payloads);
        const single = packetsOf(pool, payloads);
        new Cfb(createAes(key)).encryptPackets(batch, batch.length);
        const serial = new Cfb(new AesCipher(key));
        for (const p of single) serial.encrypt(p.buffer, p.start, p.end);
        for (let i = 0; i < batch.length; i++) {
          assertEquals(toHex(batch[i].bytes()), toHex(single[i].bytes()), `packet ${i}`);
        }
        for (const p of [...batch, ...single]) p.release();
      },
    ),
    { seed: SEED, numRuns: 60 },
  );
});

Deno.test("salsa20: equals @noble/ciphers salsa20 (nonce = first 8 bytes, counter 0)", () => {
  fc.assert(
    fc.property(keyArb, bytesArb(8, 1500), (key, data) => {
      const ours = data.slice();
      new Salsa20Cipher(key).encrypt(ours, 0, ours.length);
      const expected = data.slice();
      expected.set(nobleSalsa20(key, data.slice(0, 8), data.slice(8)), 8);
      assertEquals(toHex(ours), toHex(expected));
    }),
    { seed: SEED, numRuns: 100 },
  );
});

Deno.test("cfb: batched decryption (one bulk call per batch) equals per-packet decryption", () => {
  const pool = new PacketPool();
  fc.assert(
    fc.property(
      keyArb,
      fc.array(bytesArb(0, 1400), { maxLength: 40, size: "max" }),
      (key, payloads) => {
        const batch = packetsOf(pool, payloads);
        new Cfb(createAes(key)).decryptPackets(batch, batch.length);
        const serial = new Cfb(new AesCipher(key));
        for (let i = 0; i < batch.length; i++) {
          const expected = payloads[i].slice();
          serial.decrypt(expected, 0, expected.length);
          assertEquals(toHex(batch[i].bytes()), toHex(expected), `packet ${i}`);
        }
        for (const p of batch) p.release();
      },
    ),
    { seed: SEED, numRuns: 60 },
  );
});
