import fc from "fast-check";
import {
  crc32c,
  crc32cEngine,
  crc32cJs,
  maskCrc,
  snappyChecksum,
} from "../../transforms/snappy/crc32c.ts";
import { assertEquals } from "../support/assert.ts";
import { fromHex } from "../support/captures.ts";

/** Bit-at-a-time reference: the definition, no tables. */
function crc32cReference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c: check value and RFC 3720 (iSCSI) test vectors", () => {
  assertEquals(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(0)), 0);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assertEquals(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

Deno.test("crc32c: masked checksums of captured snappy chunks (docs/protocol.md §7)", () => {
  // smux v1 SYN sid 3 → stored 44 39 ac 2f; v2 SYN → bd e3 7d 26 (u32le).
  assertEquals(snappyChecksum(fromHex("0100000003000000")), 0x2fac3944);
  assertEquals(snappyChecksum(fromHex("0200000003000000")), 0x267de3bd);
  assertEquals(maskCrc(0), 0xa282ead8);
});

Deno.test("crc32c: equals the bitwise definition, whole or in pieces, at any offset", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(),
      fc.nat(),
      (data, a, b) => {
        const want = crc32cReference(data);
        assertEquals(crc32c(data), want);
        const cut = data.length === 0 ? 0 : a % (data.length + 1);
        assertEquals(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), want);
        const start = data.length === 0 ? 0 : b % (data.length + 1);
        assertEquals(crc32c(data, 0, start), crc32cReference(data.subarray(start)));
      },
    ),
    { numRuns: 300, seed: 7 },
  );
});

Deno.test("crc32c: the native checksum (when it loads) and the JavaScript tables agree", () => {
  if (Deno.build.os === "linux") assertEquals(crc32cEngine(), "ext2fs");
  const buf = new Uint8Array(70000);
  let x = 99;
  for (let i = 0; i < buf.length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  for (const start of [0, 1, 5]) {
    for (const len of [0, 3, 63, 64, 65, 1000, 32768, 65536]) {
      for (const seed of [0, 0xdeadbeef]) {
        assertEquals(
          crc32c(buf, seed, start, start + len),
          crc32cJs(buf, seed, start, start + len),
          `[${start}, +${len}) seed ${seed}`,
        );
      }
    }
  }
});
