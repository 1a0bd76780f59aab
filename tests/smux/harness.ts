/** Test helpers: a seeded PRNG and an in-memory link between two sans-IO smux sessions. */

import { ChunkQueue } from "../../transforms/smux/chunk_queue.ts";
import type { SmuxSession } from "../../transforms/smux/session.ts";

/** The seeded PRNG the demo link uses (mulberry32), under the name these tests use. */
export { seededRandom as prng } from "../../cli/demo/lossy_link.ts";

/** One direction of a reliable in-memory byte pipe between two sessions. */
export class Wire {
  readonly bytes = new ChunkQueue();
  /** Frames emitted into the wire. */
  frames = 0;

  constructor(
    readonly from: SmuxSession,
    readonly to: SmuxSession,
    readonly rand: () => number,
    readonly maxPiece = 3000,
  ) {}

  /**
   * Moves what `from` has to send onto the wire (at most `maxFrames` frames), then delivers the
   * wire to `to` in random pieces while it wants input. True when anything moved.
   */
  step(maxFrames = Infinity): boolean {
    let moved = false;
    for (let i = 0; i < maxFrames; i++) {
      const f = this.from.pollTransmit();
      if (f === null) break;
      this.bytes.push(f);
      this.frames++;
      moved = true;
    }
    while (this.bytes.bytes > 0 && this.to.wantsInput()) {
      const n = Math.min(this.bytes.bytes, 1 + Math.floor(this.rand() * this.maxPiece));
      this.to.receive(this.bytes.take(n).slice());
      moved = true;
    }
    return moved;
  }
}

/** Deterministic content: byte `i` of the data stream number `k`. */
export function patternByte(k: number, i: number): number {
  return (k * 131 + i * 7 + (i >>> 8)) & 0xff;
}

/** `n` bytes of stream `k`'s pattern starting at offset `at`. */
export function pattern(k: number, at: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = patternByte(k, at + i);
  return out;
}
