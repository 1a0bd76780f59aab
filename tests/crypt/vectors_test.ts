/**
 * Known-answer tests: key derivation, CRC32 and every cipher against published vectors. Each
 * vector names its source.
 */

import { gcm } from "@noble/ciphers/aes.js";
import { assert, assertEquals } from "../support/assert.ts";
import { fromHex, toHex } from "../support/captures.ts";
import { AesCipher, AesNativeCipher, createAes } from "../../transforms/crypt/aes.ts";
import { type BlockCipher, encryptBlock } from "../../transforms/crypt/block_cipher.ts";
import { BlowfishCipher } from "../../transforms/crypt/blowfish.ts";
import { blowfishPi } from "../../transforms/crypt/blowfish_pi.ts";
import { Cast5Cipher } from "../../transforms/crypt/cast5.ts";
import { crc32, crc32Engine, crc32Js } from "../../transforms/crypt/crc32.ts";
import { DesCipher, TripleDesCipher } from "../../transforms/crypt/des.ts";
import { deriveKey, xorTable } from "../../transforms/crypt/key.ts";
import { Salsa20Cipher } from "../../transforms/crypt/salsa20.ts";
import { Sm4Cipher } from "../../transforms/crypt/sm4.ts";
import { TeaCipher, XteaCipher } from "../../transforms/crypt/tea.ts";
import { TwofishCipher } from "../../transforms/crypt/twofish.ts";
import { AesGcmSuite } from "../../transforms/crypt/gcm.ts";
import { NonceSource } from "../../transforms/crypt/nonce.ts";
import { Packet } from "../../pipeline/packet.ts";
import { pbkdf2Sync } from "node:crypto";

function ecb(c: BlockCipher, pt: string): string {
  const out = new Uint8Array(c.blockSize);
  encryptBlock(c, fromHex(pt), 0, out, 0);
  return toHex(out);
}

type Vector = [key: string, plaintext: string, ciphertext: string];

function checkVectors(make: (key: Uint8Array) => BlockCipher, vectors: Vector[]): void {
  for (const [k, p, c] of vectors) {
    assertEquals(ecb(make(fromHex(k)), p), c.toLowerCase(), `key ${k} pt ${p}`);
  }
}

Deno.test("key: PBKDF2 vectors of docs/protocol.md §2 (captured from kcptun)", () => {
  assertEquals(
    toHex(deriveKey("test")),
    "fc0327c66699e5622be3b108e336991375ba429750939d57003dc89d9fed8859",
  );
  assertEquals(
    toHex(deriveKey("it's a secrect")),
    "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444",
  );
  assert(deriveKey("test") === deriveKey("test"), "derived keys are cached");
});

Deno.test("key: PBKDF2-HMAC-SHA1 itself (RFC 6070 §2, 4096 iterations)", () => {
  const dk = pbkdf2Sync("password", "salt", 4096, 20, "sha1");
  assertEquals(toHex(new Uint8Array(dk)), "4b007901b765489abead49d926f721d065a429c1");
});

Deno.test("key: xor table of docs/protocol.md §3.4 (key test)", () => {
  const t = xorTable(deriveKey("test"));
  assertEquals(t.length, 1500);
  assertEquals(
    toHex(t.subarray(0, 32)),
    "ab86cd9bea0b76fcd56f363040c5aab5ccea1bba64fc691d068d560ea38f3579",
  );
});

Deno.test('crc32: check value of CRC-32/IEEE ("123456789" → cbf43926, RFC 3385 / zlib)', () => {
  const s = new TextEncoder().encode("123456789");
  assertEquals(crc32(s, 0, s.length), 0xcbf43926);
  assertEquals(crc32(s, 0, 0), 0);
  // zlib's crc32 of "The quick brown fox jumps over the lazy dog" is 414fa339.
  const fox = new TextEncoder().encode("The quick brown fox jumps over the lazy dog");
  assertEquals(crc32(fox, 0, fox.length), 0x414fa339);
});

Deno.test("crc32: slicing-by-8 equals the bitwise definition at every offset and length", () => {
  const buf = new Uint8Array(100);
  let x = 12345;
  for (let i = 0; i < buf.length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  const bitwise = (s: number, e: number) => {
    let c = 0xffffffff;
    for (let i = s; i < e; i++) {
      c ^= buf[i];
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  for (let s = 0; s < 9; s++) {
    for (let e = s; e <= buf.length; e++) assertEquals(crc32(buf, s, e), bitwise(s, e));
  }
});

Deno.test("aes: FIPS-197 Appendix C (C.1 AES-128, C.2 AES-192, C.3 AES-256)", () => {
  const pt = "00112233445566778899aabbccddeeff";
  const vectors: Vector[] = [
    ["000102030405060708090a0b0c0d0e0f", pt, "69c4e0d86a7b0430d8cdb78070b4c55a"],
    ["000102030405060708090a0b0c0d0e0f1011121314151617", pt, "dda97ca4864cdfe06eaf70a0ec0d7191"],
    [
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
      pt,
      "8ea2b7ca516745bfeafc49904b496089",
    ],
  ];
  checkVectors((k) => new AesCipher(k), vectors);
  // The native bulk path gives the same blocks.
  for (const [k, p, c] of vectors) {
    const aes = createAes(fromHex(k));
    assert(aes instanceof AesNativeCipher, "node:crypto provides aes-*-ecb");
    const out = new Uint8Array(16);
    aes.encryptBlocks(fromHex(p), 0, out, 0, 1);
    assertEquals(toHex(out), c);
  }
});

Deno.test("blowfish: Eric Young's test vectors (schneier.com/code/vectors.txt)", () => {
  checkVectors((k) => new BlowfishCipher(k), [
    ["0000000000000000", "0000000000000000", "4EF997456198DD78"],
    ["FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF", "51866FD5B85ECB8A"],
    ["3000000000000000", "1000000000000001", "7D856F9A613063F2"],
    ["0123456789ABCDEF", "1111111111111111", "61F9C3802281B096"],
    ["FEDCBA9876543210", "0123456789ABCDEF", "0ACEAB0FC6A0A28D"],
  ]);
});

Deno.test("blowfish: the initial P-array and S-boxes are the hex digits of π", () => {
  // π·16^8336 by Machin's formula in fixed point, with guard digits.
  const digits = blowfishPi().length * 8;
  const one = 1n << BigInt(4 * (digits + 8));
  const arctanInv = (x: bigint) => {
    let sum = 0n, term = one / x, k = 1n, sign = 1n;
    const x2 = x * x;
    while (term !== 0n) {
      sum += sign * (term / k);
      term /= x2;
      k += 2n;
      sign = -sign;
    }
    return sum;
  };
  const pi = 16n * arctanInv(5n) - 4n * arctanInv(239n);
  const hex = (pi >> 32n).toString(16); // drop the 8 guard digits
  assertEquals(hex[0], "3");
  const fraction = hex.slice(1, 1 + digits);
  let table = "";
  for (const w of blowfishPi()) table += w.toString(16).padStart(8, "0");
  assertEquals(table, fraction);
});

Deno.test("cast5: RFC 2144 Appendix B.1 (128, 80 and 40-bit keys)", () => {
  checkVectors((k) => new Cast5Cipher(k), [
    ["0123456712345678234567893456789A", "0123456789ABCDEF", "238B4FE5847E44B2"],
    ["01234567123456782345", "0123456789ABCDEF", "EB6A711A2C02271B"],
    ["0123456712", "0123456789ABCDEF", "7AC816D16E9B302E"],
  ]);
});

Deno.test("des: the worked example of FIPS 46 (J. Orlin Grabbe) and SP 800-67 TDEA example", () => {
  checkVectors((k) => new DesCipher(k), [
    ["133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405"],
    // NBS SP 500-20 variable-plaintext known-answer test, round 0: key 0101…01.
    ["0101010101010101", "8000000000000000", "95F8A5E5DD31D900"],
    ["0101010101010101", "0000000000000001", "166B40B44ABA4BD6"],
  ]);
  // NIST SP 800-67 Rev. 1, Appendix B: "The qufck brown fox jump" under K1‖K2‖K3.
  const key = "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123";
  const c = new TripleDesCipher(fromHex(key));
  assertEquals(ecb(c, "5468652071756663"), "a826fd8ce53b855f");
  assertEquals(ecb(c, "6b2062726f776e20"), "cce21c8112256fe6");
  assertEquals(ecb(c, "666f78206a756d70"), "68d5c05dd9b6b900");
});

Deno.test("tea: Bouncy Castle TeaTest vectors (from Simon Shepherd's TEA page), 32 cycles", () => {
  checkVectors((k) => new TeaCipher(k, 32), [
    ["00000000000000000000000000000000", "0000000000000000", "41ea3a0a94baa940"],
    ["00000000000000000000000000000000", "0102030405060708", "6a2f9cf3fccf3c55"],
    ["0123456712345678234567893456789A", "0000000000000000", "34e943b0900f5dcb"],
    ["0123456712345678234567893456789A", "0102030405060708", "773dc179878a81c0"],
  ]);
});

Deno.test("tea: kcptun's 8-cycle TEA differs from standard TEA (captures check it)", () => {
  const k = new Uint8Array(16);
  assert(ecb(new TeaCipher(k), "0000000000000000") !== "41ea3a0a94baa940");
});

Deno.test("xtea: Bouncy Castle XteaTest vectors", () => {
  checkVectors((k) => new XteaCipher(k), [
    ["00000000000000000000000000000000", "0000000000000000", "dee9d4d8f7131ed9"],
    ["00000000000000000000000000000000", "0102030405060708", "065c1b8975c6a816"],
    ["0123456712345678234567893456789A", "0000000000000000", "1ff9a0261ac64264"],
    ["0123456712345678234567893456789A", "0102030405060708", "8c67155b2ef91ead"],
  ]);
});

Deno.test("twofish: paper's known answers (ecb_ival.txt) and the 49-step ecb_tbl.txt chain", () => {
  const zero = "00000000000000000000000000000000";
  checkVectors((k) => new TwofishCipher(k), [
    [zero, zero, "9F589F5CF6122C32B6BFEC2F2AE8C35A"],
    ["0123456789ABCDEFFEDCBA98765432100011223344556677", zero, "CFD1D2E5A9BE9CDF501F13B892BD2248"],
    [
      "0123456789ABCDEFFEDCBA987654321000112233445566778899AABBCCDDEEFF",
      zero,
      "37527BE0052334B89F0CFCCAE87CFA20",
    ],
  ]);
  // ecb_tbl.txt: key and plaintext start at zero; each step's plaintext is the previous
  // ciphertext and its key the previous plaintext followed by the head of the previous key.
  for (
    const [size, last] of [[16, "5D9D4EEFFA9151575524F115815A12E0"], [
      32,
      "37FE26FF1CF66175F5DDF4C33B97A205",
    ]] as const
  ) {
    let key = new Uint8Array(size);
    let pt = new Uint8Array(16);
    for (let i = 0; i < 49; i++) {
      const ct = new Uint8Array(16);
      encryptBlock(new TwofishCipher(key), pt, 0, ct, 0);
      const next = new Uint8Array(size);
      next.set(pt);
      next.set(key.subarray(0, size - 16), 16);
      key = next;
      pt = ct;
    }
    assertEquals(toHex(pt), last.toLowerCase(), `Twofish-${size * 8} chain`);
  }
});

Deno.test("sm4: GB/T 32907-2016 Appendix A example 1", () => {
  checkVectors((k) => new Sm4Cipher(k), [
    [
      "0123456789abcdeffedcba9876543210",
      "0123456789abcdeffedcba9876543210",
      "681edf34d206965e86b3e94f536e4246",
    ],
  ]);
});

Deno.test("salsa20: eSTREAM Salsa20/20 256-bit set 1 vector 0 (bytes 0..63 and 192..255)", () => {
  const key = new Uint8Array(32);
  key[0] = 0x80;
  const c = new Salsa20Cipher(key);
  // kcp-go layout: 8 bytes of nonce (zero here) in clear, keystream from byte 8 on.
  const buf = new Uint8Array(8 + 256);
  c.encrypt(buf, 0, buf.length);
  assertEquals(
    toHex(buf.subarray(8, 72)),
    "e3be8fdd8beca2e3ea8ef9475b29a6e7003951e1097a5c38d23b7a5fad9f6844" +
      "b22c97559e2723c7cbbd3fe4fc8d9a0744652a83e72a9c461876af4d7ef1a117",
  );
  assertEquals(
    toHex(buf.subarray(8 + 192, 8 + 256)),
    "57be81f47b17d9ae7c4ff15429a73e10acf250ed3a90a93c711308a74c6216a9" +
      "ed84cd126da7f28e8abf8bb63517e1ca98e712f4fb2e1a6aed9fdc73291faa17",
  );
});

Deno.test("aes-128-gcm: GCM spec test case 2 (McGrew & Viega; zero key, zero IV, one block)", () => {
  // Seal through the suite with the nonce forced to zero and compare with the published values.
  const zeroNonces = new NonceSource((b) => b.fill(0));
  const suite = new AesGcmSuite(new Uint8Array(32), zeroNonces);
  const p = new Packet(new Uint8Array(128), 32);
  p.end = p.start + 16;
  suite.seal(p);
  assertEquals(
    toHex(p.bytes()),
    "000000000000000000000000" + "0388dace60b6a392f328c2b971b2fe78" +
      "ab6e47d42cec13bdf53a67b21257bddf",
  );
  // @noble/ciphers agrees.
  const noble = gcm(new Uint8Array(16), new Uint8Array(12)).encrypt(new Uint8Array(16));
  assertEquals(toHex(noble), toHex(p.bytes().subarray(12)));
  assert(suite.open(p));
  assertEquals(toHex(p.bytes()), "00000000000000000000000000000000");
});

Deno.test("crc32: zlib (when it loads) and the JavaScript tables agree on every length and offset", () => {
  // Debian (and CI) always has libz.so.1, and these tests run with -A: the native path is tested.
  if (Deno.build.os === "linux") assertEquals(crc32Engine(), "zlib");
  const buf = new Uint8Array(3000);
  let x = 12345;
  for (let i = 0; i < buf.length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  for (let start = 0; start < 9; start++) {
    for (const len of [0, 1, 7, 8, 9, 63, 64, 65, 100, 1330, 1500, 2900]) {
      const end = start + len;
      assertEquals(crc32(buf, start, end), crc32Js(buf, start, end), `[${start}, ${end})`);
    }
  }
});
