/**
 * Fusion of packet stages: one call chain per batch.
 *
 * Adjacent synchronous packet stages are called one after another on the same batch with no
 * promise in between; the first stage that answers with a promise switches the rest of that
 * batch's walk to `await`. The sync path allocates nothing.
 *
 * @module
 */

import type { PacketBatch } from "./packet.ts";
import type { PacketStage } from "./stage.ts";

/**
 * Packet stages composed into one {@link PacketStage}. `stages` are listed KCP side first, wire
 * side last (the order of a pipeline list): `encode` runs them first to last, `decode` last to
 * first.
 */
export class PacketChain implements PacketStage {
  /** The stages, KCP side first. */
  readonly stages: readonly PacketStage[];
  /** Sum of the stages' overheads. */
  readonly overhead: number;

  /** Composes `stages` (KCP side first). */
  constructor(stages: readonly PacketStage[]) {
    this.stages = stages;
    let o = 0;
    for (const s of stages) o += s.overhead;
    this.overhead = o;
  }

  /** Runs every stage's `encode`, KCP side first. */
  encode(batch: PacketBatch, now: number): void | Promise<void> {
    const s = this.stages;
    for (let i = 0; i < s.length; i++) {
      const r = s[i].encode(batch, now);
      if (r !== undefined) return this.#encodeRest(r, i + 1, batch, now);
    }
  }

  /** Runs every stage's `decode`, wire side first. */
  decode(batch: PacketBatch, now: number): void | Promise<void> {
    const s = this.stages;
    for (let i = s.length - 1; i >= 0; i--) {
      const r = s[i].decode(batch, now);
      if (r !== undefined) return this.#decodeRest(r, i - 1, batch, now);
    }
  }

  /** Closes every stage. */
  close(): void {
    for (const s of this.stages) s.close?.();
  }

  async #encodeRest(p: Promise<void>, from: number, batch: PacketBatch, now: number) {
    await p;
    const s = this.stages;
    for (let i = from; i < s.length; i++) {
      const r = s[i].encode(batch, now);
      if (r !== undefined) await r;
    }
  }

  async #decodeRest(p: Promise<void>, from: number, batch: PacketBatch, now: number) {
    await p;
    const s = this.stages;
    for (let i = from; i >= 0; i--) {
      const r = s[i].decode(batch, now);
      if (r !== undefined) await r;
    }
  }
}
