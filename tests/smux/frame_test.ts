import fc from "fast-check";
import {
  CMD_FIN,
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  encodeFrame,
  encodeUpd,
  parseFrames,
  SmuxFrameParser,
} from "../../transforms/smux/frame.ts";
import { assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "./capture_streams.ts";

Deno.test("frame: encodes the captured frames of docs/protocol.md §6.1", () => {
  assertEquals(toHex(encodeFrame(2, CMD_SYN, 3)), "0200000003000000");
  assertEquals(
    toHex(encodeFrame(2, CMD_PSH, 3, new TextEncoder().encode("hello"))),
    "020205000300000068656c6c6f",
  );
  assertEquals(toHex(encodeFrame(2, CMD_FIN, 3)), "0201000003000000");
  assertEquals(toHex(encodeFrame(2, CMD_NOP, 0)), "0203000000000000");
  assertEquals(toHex(encodeUpd(2, 3, 5, 2097152)), "02040800030000000500000000002000");
  assertEquals(toHex(encodeFrame(1, CMD_SYN, 0xfffffffd)), "01000000fdffffff");
  assertThrows(() => encodeFrame(1, CMD_PSH, 3, new Uint8Array(65536)), RangeError);
});

Deno.test("frame: parses a UPD frame and its payload (docs/protocol.md §5.9 datagram 6)", () => {
  const [f] = parseFrames(Uint8Array.from([2, 4, 8, 0, 3, 0, 0, 0, 5, 0, 0, 0, 0, 0, 32, 0]));
  assertEquals({ ver: f.ver, cmd: f.cmd, sid: f.sid }, { ver: 2, cmd: CMD_UPD, sid: 3 });
  assertEquals(toHex(f.data), "0500000000002000");
});

Deno.test("frame: the parser reassembles frames from input split anywhere", () => {
  const frame = fc.record({
    ver: fc.constantFrom(1, 2),
    cmd: fc.nat(255),
    sid: fc.nat(0xffffffff),
    data: fc.oneof(fc.uint8Array({ maxLength: 50 }), fc.uint8Array({ maxLength: 70000 })),
  }).map((f) => ({ ...f, data: f.data.subarray(0, 65535) }));
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 20000 }), { minLength: 1, maxLength: 20 }),
      (frames, cuts) => {
        const wire = concat(frames.map((f) => encodeFrame(f.ver, f.cmd, f.sid, f.data)));
        const p = new SmuxFrameParser();
        const got: { ver: number; cmd: number; sid: number; data: Uint8Array }[] = [];
        let headers = 0;
        for (let at = 0, k = 0; at < wire.length; k++) {
          const end = Math.min(wire.length, at + cuts[k % cuts.length]);
          p.push(wire.slice(at, end));
          at = end;
          while (p.next()) got.push({ ver: p.ver, cmd: p.cmd, sid: p.sid, data: p.payload });
          headers = p.headersSeen;
        }
        assertEquals(got, frames as typeof got);
        assertEquals(headers, frames.length);
        assertEquals(p.pendingBytes, 0);
      },
    ),
    { numRuns: 150, seed: 21 },
  );
});
