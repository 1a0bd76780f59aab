import fc from "fast-check";
import { assertEquals } from "../support/assert.ts";
import {
  classifyDatagram,
  DatagramKind,
  paws,
  readU16,
  readU32,
  seqDiff,
  writeDataHeader,
  writeParityHeader,
} from "../../transforms/fec/wire.ts";

Deno.test("wire: paws values of docs/protocol.md §4.2", () => {
  assertEquals(paws(13), 4294967287);
  assertEquals(paws(5), 4294967295);
  assertEquals(paws(256), 4294967040);
  assertEquals(paws(13) % 13, 0);
});

Deno.test("wire: classifier reads the u16le at offset 4", () => {
  const d = new Uint8Array(10);
  writeDataHeader(d, 1, 7, 1);
  assertEquals(classifyDatagram(d, 1, 10), DatagramKind.Data);
  assertEquals(readU32(d, 1), 7);
  assertEquals(readU16(d, 7), 3, "size counts itself");
  writeParityHeader(d, 1, 0xfffffffe);
  assertEquals(classifyDatagram(d, 1, 10), DatagramKind.Parity);
  assertEquals(readU32(d, 1), 0xfffffffe);
  // A KCP segment: conv, cmd 81 (PUSH), frg 0 → never FEC.
  const kcp = new Uint8Array([1, 2, 3, 4, 81, 0, 0, 1]);
  assertEquals(classifyDatagram(kcp, 0, 8), DatagramKind.Plain);
  assertEquals(classifyDatagram(new Uint8Array([0, 0, 0, 0, 0xf1]), 0, 5), DatagramKind.Plain);
  assertEquals(classifyDatagram(new Uint8Array([0, 0, 0, 0, 0xf1, 1]), 0, 6), DatagramKind.Plain);
  fc.assert(
    fc.property(fc.integer({ min: 81, max: 84 }), fc.integer({ min: 0, max: 255 }), (cmd, frg) => {
      const b = new Uint8Array([0, 0, 0, 0, cmd, frg, 0, 0]);
      return classifyDatagram(b, 0, 8) === DatagramKind.Plain;
    }),
    { seed: 31 },
  );
});

Deno.test("wire: seqDiff is the signed 32-bit distance", () => {
  assertEquals(seqDiff(5, 3), 2);
  assertEquals(seqDiff(3, 5), -2);
  assertEquals(seqDiff(0, 0xffffffff), 1);
  assertEquals(seqDiff(0xffffffff, 0), -1);
});
