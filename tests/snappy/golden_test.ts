/**
 * Golden tests against real kcptun traffic with compression on (crypt none, no FEC): the snappy
 * stream of each direction, recovered from the KCP segments, must decode; what it decodes to must
 * be whole smux frames, and equal to the uncompressed run of the same session where one exists.
 */

import { SnappyFrameDecoder, SnappyFrameEncoder } from "../../transforms/snappy/framing.ts";
import { parseFrames } from "../../transforms/smux/frame.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { capturedStreams, concat } from "../smux/capture_streams.ts";

function decompress(wire: Uint8Array): Uint8Array {
  const dec = new SnappyFrameDecoder();
  const out: Uint8Array[] = [];
  dec.decode(wire, (b) => out.push(b));
  dec.finish();
  return concat(out);
}

/** Re-encodes frame by frame, one write per smux frame as kcptun does. */
function recompress(plain: Uint8Array): Uint8Array {
  const enc = new SnappyFrameEncoder();
  const out: Uint8Array[] = [];
  let at = 0;
  for (const f of parseFrames(plain)) {
    const n = 8 + f.data.length;
    enc.encode(plain.slice(at, at + n), (b) => out.push(b));
    at += n;
  }
  return concat(out);
}

function frameBytes(plain: Uint8Array): number {
  return parseFrames(plain).reduce((n, f) => n + 8 + f.data.length, 0);
}

const COMPRESSED = [
  "old_comp.jsonl",
  "new_comp.jsonl",
  "rec_smux1_comp.jsonl",
  "rec_smux2_comp.jsonl",
];

for (const name of COMPRESSED) {
  Deno.test(`golden snappy: ${name} decodes into whole smux frames, both directions`, () => {
    const s = capturedStreams(name, 20);
    for (const dir of ["c2s", "s2c"] as const) {
      assert(toHex(s[dir].subarray(0, 10)) === "ff060000734e61507059", `${dir} starts with sNaPpY`);
      const plain = decompress(s[dir]);
      assert(plain.length > 0, `${dir} carries data`);
      assertEquals(frameBytes(plain), plain.length, `${dir}: frames cover the stream exactly`);
      // Our encoder's output, whatever its compressed bytes, decodes to the same stream.
      assertEquals(toHex(decompress(recompress(plain))), toHex(plain));
    }
  });
}

Deno.test("golden snappy: Go's chunks re-encode byte for byte where Go stored them uncompressed", () => {
  // Every chunk in these runs is uncompressed (random data, short control frames): our encoder
  // makes the same choice and writes the same checksums, so the streams are identical.
  for (const name of ["old_comp.jsonl", "rec_smux1_comp.jsonl", "rec_smux2_comp.jsonl"]) {
    const s = capturedStreams(name, 20);
    for (const dir of ["c2s", "s2c"] as const) {
      assertEquals(toHex(recompress(decompress(s[dir]))), toHex(s[dir]), `${name} ${dir}`);
    }
  }
});

Deno.test("golden snappy: compressed runs carry exactly the bytes of the uncompressed runs", () => {
  for (const ver of [1, 2]) {
    const comp = capturedStreams(`rec_smux${ver}_comp.jsonl`, 20);
    const raw = capturedStreams(`rec_smux${ver}_nocomp.jsonl`, 20);
    for (const dir of ["c2s", "s2c"] as const) {
      const plain = decompress(comp[dir]);
      assertEquals(plain.length, raw[dir].length, `v${ver} ${dir} length`);
      assert(toHex(plain) === toHex(raw[dir]), `v${ver} ${dir} bytes`);
    }
  }
});

Deno.test("golden snappy: new_comp holds Go's compressed chunk for 'hello' x 20", () => {
  const s = capturedStreams("new_comp.jsonl", 20);
  const hex = toHex(s.c2s);
  assert(hex.includes("001900008e2f22e76c30020264000300000068656c6c6ffe05007a0500"));
  const frames = parseFrames(decompress(s.c2s));
  const psh = frames.find((f) => f.cmd === 2)!;
  assertEquals(new TextDecoder().decode(psh.data), "hello".repeat(20));
});

Deno.test("golden snappy: 2021 kcptun compressed the text payloads; we read its blocks", () => {
  for (const name of ["rec_smux1_comptext.jsonl", "rec_smux2_comptext.jsonl"]) {
    const s = capturedStreams(name, 20);
    for (const dir of ["c2s", "s2c"] as const) {
      const w = s[dir];
      let compressed = 0;
      for (let at = 0; at < w.length;) {
        const len = w[at + 1] | (w[at + 2] << 8) | (w[at + 3] << 16);
        if (w[at] === 0x00) compressed++;
        at += 4 + len;
      }
      assert(compressed >= 2, `${name} ${dir}: Go wrote compressed chunks`);
      const text = parseFrames(decompress(w)).filter((f) => f.cmd === 2);
      for (const f of text) {
        assertEquals(
          new TextDecoder().decode(f.data),
          "kcptun-ts compressible payload ".repeat(40).trim(),
        );
      }
    }
  }
});
