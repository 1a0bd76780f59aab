/**
 * Guessing the peer's (ds, ps) from the shards it sends (docs/protocol.md §4.6). kcp-go records, for
 * recent shards, whether each was data or parity; seen along the seqid axis that is a square wave
 * (ds data, ps parity, ds data, …), and the run lengths of its two levels are ds and ps.
 *
 * Two period finders, as the two kcp-go generations have them:
 * - **2021** (v5.6.1): samples sit in a 258-slot array at `seqid % 258`, read in slot order from
 *   slot 0; a missing sample (or one from another lap) breaks continuity and the search gives up.
 * - **2026** (v5.6.64): the last 258 samples in arrival order, sorted by seqid, and read from the
 *   oldest; any gap gives up.
 * Both return -1 when no complete run is found. Neither allocates per call.
 *
 * @module
 */

import { seqDiff } from "./wire.ts";

/** Samples kept (256 plus two for the edges). */
export const AUTOTUNE_SAMPLES = 258;

/** Which kcp-go generation's period finder to use. */
export type AutoTuneGeneration = 2021 | 2026;

/** Records shard kinds and finds the run lengths of data and parity. */
export class AutoTune {
  /** The period finder in use. */
  readonly generation: AutoTuneGeneration;
  readonly #seq = new Uint32Array(AUTOTUNE_SAMPLES);
  readonly #bit = new Uint8Array(AUTOTUNE_SAMPLES);
  // 2026: ring order (tail = next write, count = filled) and sort scratch.
  #tail = 0;
  #count = 0;
  readonly #sortedSeq = new Uint32Array(AUTOTUNE_SAMPLES);
  readonly #sortedBit = new Uint8Array(AUTOTUNE_SAMPLES);

  /** A fresh recorder using `generation`'s period finder. */
  constructor(generation: AutoTuneGeneration = 2021) {
    this.generation = generation;
  }

  /** Records one shard: `isData` for 0xF1, false for 0xF2. */
  sample(isData: boolean, seqid: number): void {
    if (this.generation === 2021) {
      const slot = (seqid >>> 0) % AUTOTUNE_SAMPLES;
      this.#seq[slot] = seqid;
      this.#bit[slot] = isData ? 1 : 0;
    } else {
      this.#seq[this.#tail] = seqid;
      this.#bit[this.#tail] = isData ? 1 : 0;
      this.#tail = (this.#tail + 1) % AUTOTUNE_SAMPLES;
      if (this.#count < AUTOTUNE_SAMPLES) this.#count++;
    }
  }

  /**
   * The length of a complete run of `isData` shards (ds for true, ps for false), or -1 (or a
   * value ≤ 0) when none is found.
   */
  findPeriod(isData: boolean): number {
    return this.generation === 2021
      ? findPeriod2021(this.#seq, this.#bit, AUTOTUNE_SAMPLES, isData ? 1 : 0)
      : this.#findPeriod2026(isData ? 1 : 0);
  }

  #findPeriod2026(bit: number): number {
    const n = this.#count;
    if (n < 3) return -1;
    const seq = this.#sortedSeq;
    const bits = this.#sortedBit;
    // Oldest first, then insertion sort by wrapping seqid (rare call, at most 258 entries).
    const head = n < AUTOTUNE_SAMPLES ? 0 : this.#tail;
    for (let i = 0; i < n; i++) {
      const from = (head + i) % AUTOTUNE_SAMPLES;
      const s = this.#seq[from];
      const b = this.#bit[from];
      let j = i - 1;
      while (j >= 0 && seqDiff(s, seq[j]) < 0) {
        seq[j + 1] = seq[j];
        bits[j + 1] = bits[j];
        j--;
      }
      seq[j + 1] = s;
      bits[j + 1] = b;
    }
    let left = -1;
    for (let i = 1; i < n; i++) {
      if (((seq[i - 1] + 1) >>> 0) !== seq[i]) return -1;
      if (bits[i - 1] !== bit && bits[i] === bit) {
        left = i;
        break;
      }
    }
    if (left === -1) return -1;
    for (let i = left + 1; i < n; i++) {
      if (((seq[i - 1] + 1) >>> 0) !== seq[i]) return -1;
      if (bits[i - 1] === bit && bits[i] !== bit) return i - left;
    }
    return -1;
  }
}

/**
 * kcp-go v5.6.1's search over the slot array: a left edge (a change to `bit` between two
 * consecutive seqids, or slot 0 when there is none), then a right edge with every step in between
 * consecutive.
 */
function findPeriod2021(seq: Uint32Array, bits: Uint8Array, n: number, bit: number): number {
  let left = 0;
  for (let i = 1; i < n; i++) {
    if (bits[i - 1] !== bit && bits[i] === bit && ((seq[i - 1] + 1) >>> 0) === seq[i]) {
      left = i;
      break;
    }
  }
  let right = 0;
  for (let i = left + 1; i < n; i++) {
    if (((seq[i - 1] + 1) >>> 0) !== seq[i]) return -1;
    if (bits[i - 1] === bit && bits[i] !== bit) {
      right = i;
      break;
    }
  }
  return right - left;
}
