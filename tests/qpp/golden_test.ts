/**
 * QPP against real kcptun 2026 traffic: `new_qpp.jsonl` (`-QPP`, count 61, key `test`, crypt
 * null, no FEC, smux v2). The client sent one stream's payload and the echo target sent it back.
 */

import { QppDecoder, QppEncoder, qppPads } from "../../transforms/qpp/mod.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { capturedStreams, concat } from "../smux/capture_streams.ts";

const PSH = 2;
const PLAINTEXT = "hello world, this is a QPP test!".repeat(3);

/** The PSH payloads per stream id of one direction's smux byte stream. */
function pshPayloads(stream: Uint8Array): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  const v = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  let p = 0;
  while (p + 8 <= stream.length) {
    const cmd = stream[p + 1];
    const len = v.getUint16(p + 2, true);
    const sid = v.getUint32(p + 4, true);
    if (cmd === PSH) {
      const list = out.get(sid) ?? [];
      list.push(stream.slice(p + 8, p + 8 + len));
      out.set(sid, list);
    }
    p += 8 + len;
  }
  assertEquals(p, stream.length, "whole frames");
  return out;
}

const streams = capturedStreams("new_qpp.jsonl", 0);
const pads = qppPads("test", 61);

Deno.test("qpp golden: each direction of the captured stream decrypts to the echoed text", () => {
  for (const [dir, bytes] of [["c2s", streams.c2s], ["s2c", streams.s2c]] as const) {
    const byStream = pshPayloads(bytes);
    assertEquals([...byStream.keys()], [3], `${dir}: one stream, id 3`);
    const dec = new QppDecoder(pads);
    const parts = byStream.get(3)!.map((p) => {
      const x = p.slice();
      dec.process(x);
      return x;
    });
    assertEquals(new TextDecoder().decode(concat(parts)), PLAINTEXT, dir);
  }
});

Deno.test("qpp golden: both directions carry the same ciphertext (fresh PRNG per direction)", () => {
  const c2s = concat(pshPayloads(streams.c2s).get(3)!);
  const s2c = concat(pshPayloads(streams.s2c).get(3)!);
  assertEquals(toHex(c2s), toHex(s2c));
  // Our encoder produces exactly those bytes, whatever the write sizes.
  const plain = new TextEncoder().encode(PLAINTEXT);
  for (const split of [96, 32, 7, 1]) {
    const enc = new QppEncoder(pads);
    const out = new Uint8Array(plain.length);
    for (let at = 0; at < plain.length; at += split) {
      const end = Math.min(at + split, plain.length);
      enc.process(plain.subarray(at, end), out.subarray(at, end));
    }
    assertEquals(toHex(out), toHex(c2s), `split ${split}`);
  }
  assert(!toHex(c2s).includes(toHex(plain.subarray(0, 8))), "the wire does not show the text");
});
