/**
 * Golden data from the real kcptun: every captured datagram (key `test`) must pass our check and
 * decrypt to well-formed KCP or FEC bytes, and the docs/protocol.md §3.7 vectors must come out
 * byte for byte in both directions.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { fromHex, loadCapture, toHex } from "../support/captures.ts";
import { Packet } from "../../pipeline/packet.ts";
import { deriveKey } from "../../transforms/crypt/key.ts";
import { crc32 } from "../../transforms/crypt/crc32.ts";
import { NonceSource } from "../../transforms/crypt/nonce.ts";
import {
  createCryptSuite,
  createDatagramCipher,
  type CryptGeneration,
} from "../../transforms/crypt/suite.ts";
import type { CryptMethod } from "../../transforms/crypt/suite_types.ts";

const KEY = "test";

/** Capture → (-crypt given to kcptun, generation, FEC on). From captures/README.md. */
const CAPTURES: Record<string, [string, CryptGeneration, boolean]> = {};
for (
  const m of [
    "3des",
    "aes-128",
    "aes-192",
    "aes",
    "blowfish",
    "cast5",
    "salsa20",
    "sm4",
    "tea",
    "twofish",
    "xor",
    "xtea",
  ]
) {
  CAPTURES[`old_${m}.jsonl`] = [m, "2021", false];
  CAPTURES[`new_${m}.jsonl`] = [m, "2026", false];
}
Object.assign(CAPTURES, {
  "old_comp.jsonl": ["none", "2021", false],
  "old_fec.jsonl": ["none", "2021", true],
  "old_fec10.jsonl": ["aes", "2021", true],
  "old_nullname.jsonl": ["null", "2021", false], // a 2021 binary silently uses AES-256
  "new_aes-128-gcm.jsonl": ["aes-128-gcm", "2026", false],
  "new_comp.jsonl": ["none", "2026", false],
  "new_none.jsonl": ["none", "2026", false],
  "new_null.jsonl": ["null", "2026", false],
  "new_ka.jsonl": ["null", "2026", false],
  "new_qpp.jsonl": ["null", "2026", false],
  "new_fec10.jsonl": ["aes", "2026", true],
  "new_fecdrop.jsonl": ["none", "2026", true],
  "new_fecgap.jsonl": ["none", "2026", true],
});
// Recorded in this repo from Debian's kcptun 20210922 with -ds 10 -ps 3 -nocomp.
for (
  const m of [
    "3des",
    "aes-128",
    "aes-192",
    "aes",
    "blowfish",
    "cast5",
    "none",
    "salsa20",
    "sm4",
    "tea",
    "twofish",
    "xor",
    "xtea",
  ]
) {
  CAPTURES[`rec_${m}_fec.jsonl`] = [m, "2021", true];
}

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function wrap(bytes: Uint8Array): Packet {
  const p = new Packet(new Uint8Array(2048), 64);
  return p.set(bytes, 64);
}

for (const [file, [name, generation, fec]] of Object.entries(CAPTURES)) {
  Deno.test(`golden: ${file} (${name}, ${generation}) — every datagram opens to KCP${fec ? "/FEC" : ""}`, () => {
    const suite = createCryptSuite(name, KEY, { generation });
    const datagrams = loadCapture(file);
    assert(datagrams.length > 0, "capture is not empty");
    const convs = new Set<number>();
    let data = 0, parity = 0;
    for (const d of datagrams) {
      const p = wrap(d.bytes);
      assert(suite.open(p), `${d.dir} #${d.i} failed the check`);
      assertEquals(p.length, d.bytes.length - suite.overhead, "header size");
      const b = p.bytes();
      const flag = u16(b, 4);
      if (fec) {
        assert(flag === 0xf1 || flag === 0xf2, `${d.dir} #${d.i}: FEC flag ${flag.toString(16)}`);
        if (flag === 0xf1) {
          data++;
          assertEquals(6 + u16(b, 6), b.length, "FEC data size field = 2 + KCP bytes");
          convs.add(u32(b, 8));
          assert(b[12] >= 81 && b[12] <= 84, "KCP command after the FEC header");
        } else {
          parity++;
        }
      } else {
        assert(b.length >= 24, "at least one KCP segment header");
        assert(b[4] >= 81 && b[4] <= 84, `${d.dir} #${d.i}: KCP command ${b[4]}`);
        convs.add(u32(b, 0));
      }
    }
    assertEquals(convs.size, 1, "one conv per capture");
    if (fec) assert(data > 0 && parity > 0, `data ${data} and parity ${parity} shards seen`);
  });
}

Deno.test("golden: old_nullname is AES-256 (2021 fallback) and fails as real null/aes", () => {
  const first = loadCapture("old_nullname.jsonl")[0].bytes;
  const asAes = wrap(first);
  assert(createCryptSuite("aes", KEY).open(asAes));
  const suite2021 = createCryptSuite("null", KEY, { generation: "2021" });
  assertEquals(suite2021.method, "aes");
  // A 2026 peer with real null would hand the ciphertext to KCP unchanged: not a KCP datagram.
  const b = first;
  assert(!(b[4] >= 81 && b[4] <= 84 && u32(b, 0) === u32(asAes.bytes(), 0)));
});

// docs/protocol.md §3.7: key `test`, first datagram of a 2026 client.
const VECTORS: [CryptMethod, string, string][] = [
  [
    "aes",
    "e0b248686569a043feaee98e68e52d190b51c2963beb68e4def7aa9c964905f4f563aaaba5461ac9aa7ff1ddda2f68692662b7c3",
    "a9851de13a3b54d72b39aa076292c865703785a4b08396b751000002fd050000000000000000000008000000" +
    "0200000003000000",
  ],
  [
    "salsa20",
    "d52b3b1d6641f719d6ada0badcb1320210ca7f7c288361fff21cbf1ccba72680a3d1de404aed5f4bac1e5c4e23dd1f4483c232ab",
    "d52b3b1d6641f7191e3638445971827e0bf783d0d5f76b4f51000002050600000000000000000000080000000200000003000000",
  ],
  [
    "xor",
    "5dd655c3a6c2b4b43de62f988a1f0577bace6eb660bdf2d5578d560ca48935798edffefe515a71c613cb65daa8935982035b5818",
    "f65098584cc9c248e88919a8cadaafc27624750c04419bc851000002070600000000000000000000080000000200000003000000",
  ],
  [
    "tea",
    "9d7b6a4b475d92dbcbea89a5a026fe3d700adc6de7bf05ab5a381a7dc797670ffe87f714f12718d94144f0ae9b127c890651d9e7",
    "41194b730df39c8388973fc42f69861dc33a473c3fc09254510000020b0600000000000000000000080000000200000003000000",
  ],
];

for (const [method, wire, plain] of VECTORS) {
  Deno.test(`golden: docs/protocol.md §3.7 ${method} vector, decrypt and re-seal`, () => {
    const pass = deriveKey(KEY);
    const w = fromHex(wire), pl = fromHex(plain);
    const whole = w.slice();
    createDatagramCipher(method, pass)!.decrypt(whole, 0, whole.length);
    assertEquals(toHex(whole), toHex(pl), "whole datagram decrypts to nonce ‖ crc ‖ KCP");
    assertEquals(crc32(pl, 20, pl.length), u32(pl, 16), "stored CRC");
    // Sealing the KCP bytes with the captured nonce gives the captured wire bytes.
    const nonce = pl.slice(0, 16);
    const suite = createCryptSuite(method, pass, {
      nonces: new NonceSource((b) => {
        for (let i = 0; i < b.length; i++) b[i] = nonce[i % 16];
      }),
    });
    const p = wrap(pl.subarray(20));
    suite.seal(p);
    assertEquals(toHex(p.bytes()), wire);
    assert(suite.open(p));
    assertEquals(toHex(p.bytes()), toHex(pl.subarray(20)));
  });
}

Deno.test("golden: docs/protocol.md §3.7 aes-128-gcm vector (2026)", () => {
  const wire = fromHex(
    "8fb72bfe4bf5017dbd307e9e10c701545382c15084429ed44bf1de59106c58665a374a5677ac07c3b55dafdc" +
      "7e88bf6faa47fbee8d53da91361e149e",
  );
  const plain = "f7dd81cb51000002080600000000000000000000080000000200000003000000";
  const suite = createCryptSuite("aes-128-gcm", KEY);
  assertEquals(suite.overhead, 28);
  const p = wrap(wire);
  assert(suite.open(p));
  assertEquals(toHex(p.bytes()), plain);
  // Re-sealed with the captured nonce it is the captured datagram again.
  const nonce = wire.slice(0, 12);
  const again = createCryptSuite("aes-128-gcm", KEY, {
    nonces: new NonceSource((b) => {
      for (let i = 0; i < b.length; i++) b[i] = nonce[i % 12];
    }),
  });
  const q = wrap(fromHex(plain));
  again.seal(q);
  assertEquals(toHex(q.bytes()), toHex(wire));
});

Deno.test("golden: docs/protocol.md §3.7 none vector (2021): header kept, CRC c9ac863d", () => {
  const wire = fromHex(
    "4dee759809ca8cb23d4aaebc7eee24bf3d86acc9be457f565100000" +
      "20d060000000000000000000008000000" + "0100000003000000",
  );
  assertEquals(crc32(wire, 20, wire.length), 0xc9ac863d);
  const p = wrap(wire);
  assert(createCryptSuite("none", KEY).open(p));
  assertEquals(toHex(p.bytes()), toHex(wire.subarray(20)));
  assert(createCryptSuite("null", KEY).open(wrap(wire)), "null accepts anything");
});
