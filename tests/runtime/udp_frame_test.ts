/** The byte format of UDP flows (runtime/udp_frame.ts): frames split anywhere, the answer. */

import fc from "fast-check";
import {
  ANSWER_MAX,
  ANSWER_PREFIX,
  answerOf,
  DatagramReader,
  encodeAnswer,
  encodeDatagram,
  FRAME_MAX_PAYLOAD,
} from "../../runtime/udp_frame.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("udp frame: u16 big-endian length, then the payload", () => {
  assertEquals(encodeDatagram(new Uint8Array([7, 8, 9])), new Uint8Array([0, 3, 7, 8, 9]));
  assertEquals(encodeDatagram(new Uint8Array(0)), new Uint8Array([0, 0]));
  const big = encodeDatagram(new Uint8Array(0x1234));
  assertEquals([big[0], big[1], big.length], [0x12, 0x34, 0x1236]);
  assertEquals(encodeDatagram(new Uint8Array([1, 2, 3, 4]), 1, 3), new Uint8Array([0, 2, 2, 3]));
  assertEquals(encodeDatagram(new Uint8Array(FRAME_MAX_PAYLOAD)).length, FRAME_MAX_PAYLOAD + 2);
  assertThrows(() => encodeDatagram(new Uint8Array(FRAME_MAX_PAYLOAD + 1)), RangeError);
});

Deno.test("udp frame: the answer", () => {
  const ok = encodeAnswer(null);
  assertEquals(new TextDecoder().decode(ok.subarray(2)), "kcptun-ts udp/1 ok");
  assertEquals(answerOf(ok.subarray(2)), { ok: true });
  const no = encodeAnswer("no -udp target\n(é)");
  assertEquals(answerOf(no.subarray(2)), { ok: false, reason: "no -udp target?(?)" });
  assert(encodeAnswer("x".repeat(2000)).length === ANSWER_MAX + 2);
  for (
    const notOurs of [
      "kcptun-ts udp/1 maybe",
      "kcptun-ts udp/2 ok",
      "HTTP/1.1 200 OK",
      ANSWER_PREFIX.slice(0, -1),
      ANSWER_PREFIX + "ok\u0000",
    ]
  ) assertEquals(answerOf(text(notOurs)), null, notOurs);
  assertEquals(answerOf(new Uint8Array(ANSWER_MAX + 1).fill(0x41)), null);
});

Deno.test("udp frame: a TCP greeting is told from an answer by its first two bytes", () => {
  const r = new DatagramReader();
  r.push(text("S"));
  assertEquals(r.peekLength(), -1);
  assertEquals(r.next(), null);
  r.push(text("SH-2.0-OpenSSH_9.6\r\n"));
  assertEquals(r.peekLength(), 0x5353);
  assert(r.peekLength() > ANSWER_MAX);
});

Deno.test("udp frame: frames cut anywhere come out whole and in order (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 30 }),
      fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 50 }),
      (datagrams, cuts) => {
        const wire = new Uint8Array(datagrams.reduce((n, d) => n + d.length + 2, 0));
        let at = 0;
        for (const d of datagrams) {
          wire.set(encodeDatagram(d), at);
          at += d.length + 2;
        }
        const r = new DatagramReader();
        const got: Uint8Array[] = [];
        let pos = 0, i = 0;
        while (pos < wire.length) {
          const end = Math.min(wire.length, pos + cuts[i++ % cuts.length]);
          r.push(wire.subarray(pos, end));
          pos = end;
          const expect = datagrams[got.length];
          if (expect !== undefined && r.peekLength() >= 0) {
            assertEquals(r.peekLength(), expect.length);
          }
          for (let d = r.next(); d !== null; d = r.next()) got.push(d.slice());
        }
        assertEquals(got, datagrams);
        assertEquals(r.pending, 0);
      },
    ),
    { numRuns: 300 },
  );
});
