/**
 * testing.ts's fuzzers: our stages pass them, and stages that break the contract in each way
 * they check are caught.
 */

import type { Packet } from "../../pipeline/packet.ts";
import {
  type PacketStage,
  type PacketStageDefinition,
  StageError,
  type StreamStageDefinition,
} from "../../pipeline/stage.ts";
import { assertStreamRoundTrip, fuzzPacketStage, fuzzStreamStage } from "../../testing.ts";
import { cryptStage } from "../../transforms/crypt/stage.ts";
import { fecStage } from "../../transforms/fec/stage.ts";
import { qppStage } from "../../transforms/qpp/stage.ts";
import { snappyStage } from "../../transforms/snappy/stage.ts";
import { assertRejects } from "../support/assert.ts";

Deno.test("fuzz: crypt survives loss and garbage in every kind of method", async () => {
  for (const crypt of ["aes", "salsa20", "xor", "tea", "none", "null", "aes-128-gcm"]) {
    await fuzzPacketStage(cryptStage, { options: { crypt, key: "fuzz" }, seed: 1, numRuns: 40 });
  }
});

Deno.test("fuzz: fec survives loss, reordering, damage and garbage, and holds little", async () => {
  await fuzzPacketStage(fecStage, { options: { dataShards: 10, parityShards: 3 }, seed: 2 });
  await fuzzPacketStage(fecStage, {
    options: { dataShards: 3, parityShards: 2, autoTune: 2026, skipParityAfterMs: 500 },
    seed: 3,
  });
  // Encoder off: the decoder is made on the first FEC-looking datagram and auto-tunes.
  await fuzzPacketStage(fecStage, { options: { dataShards: 0, parityShards: 0 }, seed: 4 });
});

Deno.test("fuzz: snappy fails only with StageError on damaged and garbage streams", async () => {
  await fuzzStreamStage(snappyStage, { seed: 5, numRuns: 150 });
});

Deno.test("fuzz: qpp (a per-stream stage) never throws on any bytes", async () => {
  await fuzzStreamStage(qppStage, { options: { key: "fuzz", count: 7 }, seed: 6 });
});

/** A packet stage whose decode does `bad` to the batch (encode leaves packets alone). */
function packetStage(
  name: string,
  decode: (batch: import("../../pipeline/packet.ts").PacketBatch) => void,
  extra: Partial<PacketStage> = {},
): PacketStageDefinition {
  return {
    name,
    kind: "packet",
    create: () => ({ overhead: 0, encode() {}, decode, ...extra }),
  };
}

Deno.test("fuzz: a decode that throws on short datagrams is caught", async () => {
  const def = packetStage("throws", (batch) => {
    for (let i = 0; i < batch.length; i++) {
      if (batch.packets[i].length < 8) throw new RangeError("short");
    }
  });
  await assertRejects(() => fuzzPacketStage(def, { seed: 7 }), Error, "decode threw");
});

Deno.test("fuzz: a decode that drops packets without releasing them is caught", async () => {
  const def = packetStage("leaks", (batch) => {
    let kept = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      if (p.length % 2 === 0) batch.packets[kept++] = p; // odd ones vanish, unreleased
    }
    batch.length = kept;
  });
  await assertRejects(() => fuzzPacketStage(def, { seed: 8, maxHeld: 100_000 }), Error, "leaked");
});

Deno.test("fuzz: a decode that keeps every packet until close is caught growing", async () => {
  const def: PacketStageDefinition = {
    name: "hoards",
    kind: "packet",
    create: () => {
      const kept: Packet[] = [];
      return {
        overhead: 0,
        encode() {},
        decode(batch) {
          for (let i = 0; i < batch.length; i++) kept.push(batch.packets[i]);
          batch.length = 0;
        },
        close() {
          for (const p of kept.splice(0)) p.release();
        },
      };
    },
  };
  await assertRejects(
    () => fuzzPacketStage(def, { seed: 9, maxHeld: 16 }),
    Error,
    "grows without bound",
  );
});

Deno.test("fuzz: a decode that releases a packet it also hands on is caught", async () => {
  const def = packetStage("releases twice", (batch) => {
    if (batch.length > 0) batch.packets[0].release(); // and leaves it in the batch
  });
  await assertRejects(() => fuzzPacketStage(def, { seed: 10 }), Error, "released a packet twice");
});

Deno.test("fuzz: a peek that writes into the datagram is caught", async () => {
  const def = packetStage("peek writes", () => {}, {
    peek(buffer, range) {
      if (range.end > range.start) buffer[range.start] ^= 1;
      return true;
    },
  });
  await assertRejects(() => fuzzPacketStage(def, { seed: 11 }), Error, "peek changed");
});

Deno.test("fuzz: a peek that widens the range is caught", async () => {
  const def = packetStage("peek widens", () => {}, {
    peek(_buffer, range) {
      range.end += 1;
      return true;
    },
  });
  await assertRejects(() => fuzzPacketStage(def, { seed: 12 }), Error, "outside the datagram");
});

/** Length-prefixed frames (u8 length), decoded carelessly or carefully. */
function framing(careless: boolean): StreamStageDefinition {
  return {
    name: careless ? "careless" : "careful",
    kind: "stream",
    create: () => {
      let held = new Uint8Array();
      return {
        encode(bytes, out) {
          for (let at = 0; at < bytes.length; at += 255) {
            const n = Math.min(255, bytes.length - at);
            out(Uint8Array.of(n, ...bytes.subarray(at, at + n)));
          }
        },
        decode(bytes, out) {
          const all = new Uint8Array(held.length + bytes.length);
          all.set(held);
          all.set(bytes, held.length);
          let at = 0;
          while (at < all.length && at + 1 + all[at] <= all.length) {
            if (all[at] === 0) {
              if (careless) throw new TypeError("zero-length frame"); // not a StageError
              throw new StageError("framing: zero-length frame");
            }
            out(all.slice(at + 1, at + 1 + all[at]));
            at += 1 + all[at];
          }
          held = all.slice(at);
        },
        finish(direction) {
          if (direction === "decode" && held.length > 0) {
            throw new StageError(`framing: stream ended inside a frame`);
          }
        },
      };
    },
  };
}

Deno.test("fuzz: a stream decoder that throws anything but StageError is caught", async () => {
  await fuzzStreamStage(framing(false), { seed: 13 });
  await assertRejects(
    () => fuzzStreamStage(framing(true), { seed: 13 }),
    Error,
    "only a StageError is allowed",
  );
});

Deno.test("round trip: finish runs in both directions, and a wrong finish fails", async () => {
  // The encoder holds everything until finish: without the finish call nothing would arrive.
  const holding = (badFinish: boolean): StreamStageDefinition => ({
    name: "holding",
    kind: "stream",
    create: () => {
      const held: Uint8Array[] = [];
      return {
        encode: (bytes) => void held.push(bytes),
        decode: (bytes, out) => out(bytes),
        finish(direction, out) {
          if (direction === "encode") { for (const b of held.splice(0)) out(b); }
          else if (badFinish) throw new StageError("complains about a whole stream");
        },
      };
    },
  });
  await assertStreamRoundTrip(holding(false), { seed: 14, numRuns: 30 });
  await assertRejects(
    () => assertStreamRoundTrip(holding(true), { seed: 14, numRuns: 30 }),
    Error,
    "complains about a whole stream",
  );
});
