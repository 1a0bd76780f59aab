/**
 * Our SHA-1, SHA-256, HMAC and PBKDF2-HMAC-SHA1 (transforms/crypt/sha.ts) against published
 * vectors and against `node:crypto` on many seeded random inputs (lengths around every block and
 * padding boundary, keys longer than a block, iteration counts kcptun and QPP use).
 */

import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { hmacSha1, hmacSha256, pbkdf2HmacSha1, sha1, sha256 } from "../../transforms/crypt/sha.ts";
import {
  deriveKey,
  deriveKeyAsync,
  KEY_ITERATIONS,
  KEY_LENGTH,
  KEY_SALT,
} from "../../transforms/crypt/key.ts";

const enc = new TextEncoder();

/** Deterministic bytes (xorshift32), so a failure can be replayed. */
function seeded(seed: number): (n: number) => Uint8Array {
  let x = seed | 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x;
    }
    return out;
  };
}

Deno.test("sha: FIPS 180 examples (abc, the 448-bit message, a million a's)", () => {
  assertEquals(toHex(sha1(enc.encode("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assertEquals(
    toHex(sha256(enc.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  const m448 = enc.encode("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  assertEquals(toHex(sha1(m448)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  assertEquals(
    toHex(sha256(m448)),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  const million = new Uint8Array(1000000).fill(0x61);
  assertEquals(toHex(sha1(million)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  assertEquals(
    toHex(sha256(million)),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
  assertEquals(toHex(sha1(new Uint8Array(0))), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
});

Deno.test("sha: SHA-1 and SHA-256 equal node:crypto for every length 0..300", () => {
  const bytes = seeded(1);
  for (let n = 0; n <= 300; n++) {
    const m = bytes(n);
    assertEquals(toHex(sha1(m)), createHash("sha1").update(m).digest("hex"), `sha1, ${n} bytes`);
    assertEquals(
      toHex(sha256(m)),
      createHash("sha256").update(m).digest("hex"),
      `sha256, ${n} bytes`,
    );
  }
});

Deno.test("hmac: RFC 2202 and RFC 4231 test case 2, and a key longer than a block", () => {
  const key = enc.encode("Jefe");
  const msg = enc.encode("what do ya want for nothing?");
  assertEquals(toHex(hmacSha1(key, msg)), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  assertEquals(
    toHex(hmacSha256(key, msg)),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
  // RFC 4231 test case 6: a 131-byte key is hashed first.
  assertEquals(
    toHex(
      hmacSha256(
        new Uint8Array(131).fill(0xaa),
        enc.encode("Test Using Larger Than Block-Size Key - Hash Key First"),
      ),
    ),
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  );
});

Deno.test("hmac: equal node:crypto for 500 seeded keys and messages", () => {
  const bytes = seeded(2);
  for (let i = 0; i < 500; i++) {
    const key = bytes(bytes(1)[0] % 150);
    const msg = bytes((bytes(2)[0] << 1) % 300);
    assertEquals(
      toHex(hmacSha1(key, msg)),
      createHmac("sha1", key).update(msg).digest("hex"),
      `hmac-sha1 #${i}`,
    );
    assertEquals(
      toHex(hmacSha256(key, msg)),
      createHmac("sha256", key).update(msg).digest("hex"),
      `hmac-sha256 #${i}`,
    );
  }
});

Deno.test("pbkdf2: RFC 6070 vectors", () => {
  const v = (p: string, s: string, c: number, len: number) =>
    toHex(pbkdf2HmacSha1(enc.encode(p), enc.encode(s), c, len));
  assertEquals(v("password", "salt", 1, 20), "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  assertEquals(v("password", "salt", 2, 20), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
  assertEquals(v("password", "salt", 4096, 20), "4b007901b765489abead49d926f721d065a429c1");
  assertEquals(
    v("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25),
    "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
  );
  assertEquals(
    toHex(pbkdf2HmacSha1(enc.encode("pass\0word"), enc.encode("sa\0lt"), 4096, 16)),
    "56fa6aa75548099dcc37d7f03425e0c3",
  );
  assertThrows(() => pbkdf2HmacSha1(enc.encode("p"), enc.encode("s"), 0, 20), RangeError);
});

Deno.test("pbkdf2: equal node:crypto's pbkdf2Sync (sha1) for 300 seeded inputs", () => {
  const bytes = seeded(3);
  const iterations = [1, 2, 3, 32, 128, 1024];
  for (let i = 0; i < 300; i++) {
    const password = bytes(bytes(1)[0] % 100);
    const salt = bytes(bytes(1)[0] % 70);
    const c = iterations[i % iterations.length];
    const len = 1 + (bytes(2)[1] % 100);
    assertEquals(
      toHex(pbkdf2HmacSha1(password, salt, c, len)),
      toHex(pbkdf2Sync(password, salt, c, len, "sha1")),
      `#${i}: ${password.length}-byte password, ${salt.length}-byte salt, c=${c}, ${len} bytes`,
    );
  }
  // The xor method's pad: 1500 bytes, 32 iterations.
  const pass = bytes(32);
  const salt = enc.encode("sH3CIVoF#rWLtJo6");
  assertEquals(
    toHex(pbkdf2HmacSha1(pass, salt, 32, 1500)),
    toHex(pbkdf2Sync(pass, salt, 32, 1500, "sha1")),
  );
});

Deno.test("key: deriveKey and deriveKeyAsync equal pbkdf2Sync for 60 keys (kcptun's parameters)", async () => {
  const bytes = seeded(4);
  const keys = ["", "k", "test", "it's a secrect", "ключ 🔑", "x".repeat(200)];
  while (keys.length < 60) {
    const b = bytes(1 + (bytes(1)[0] % 40));
    keys.push(Array.from(b, (x) => String.fromCharCode(32 + (x % 95))).join(""));
  }
  for (const [i, key] of keys.entries()) {
    const want = toHex(pbkdf2Sync(key, KEY_SALT, KEY_ITERATIONS, KEY_LENGTH, "sha1"));
    // Half through the cache the async form fills, half computed synchronously.
    if (i % 2 === 0) assertEquals(toHex(await deriveKeyAsync(key)), want, `async ${key}`);
    assertEquals(toHex(deriveKey(key)), want, `sync ${key}`);
  }
});
