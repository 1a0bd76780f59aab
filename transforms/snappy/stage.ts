/**
 * The `snappy` stream stage (kcptun's compression, on unless `-nocomp`).
 *
 * @module
 */

import {
  type ByteSink,
  StageError,
  type StreamStage,
  type StreamStageDefinition,
} from "../../pipeline/stage.ts";
import { SnappyFrameDecoder, SnappyFrameEncoder } from "./framing.ts";

/** One session's snappy framing: an encoder towards KCP, a decoder away from it. */
export class SnappyStreamStage implements StreamStage {
  /** Each chunk is compressed into a fresh buffer, or passed on at once as a view. */
  readonly releasesInput = true;
  readonly #encoder = new SnappyFrameEncoder();
  readonly #decoder = new SnappyFrameDecoder();

  /** Compresses one write (one smux frame) into whole chunks. */
  encode(bytes: Uint8Array, out: ByteSink): void {
    this.#encoder.encode(bytes, out);
  }

  /** Decompresses; throws a `StageError` on a corrupt stream. */
  decode(bytes: Uint8Array, out: ByteSink): void {
    this.#decoder.decode(bytes, out);
  }

  /** The input ended: a chunk cut short is an error (the encoder holds nothing back). */
  finish(direction: "encode" | "decode"): void {
    if (direction !== "decode") return;
    const left = this.#decoder.pendingBytes;
    if (left > 0) {
      throw new StageError(`snappy: stream ended inside a chunk (${left} bytes of it)`);
    }
  }
}

/** The `snappy` stream stage definition (no options). */
export const snappyStage: StreamStageDefinition = {
  name: "snappy",
  kind: "stream",
  description: "snappy framing compression, as kcptun without -nocomp",
  create: () => new SnappyStreamStage(),
};

export default snappyStage;
