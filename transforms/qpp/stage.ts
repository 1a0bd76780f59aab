/**
 * The `qpp` per-stream stage: kcptun 2026's `-QPP`, each smux stream encrypted with the Quantum
 * Permutation Pad, each direction with its own PRNG. Listed above `smux` in a pipeline
 * (`tcp > qpp > smux > ...`); both ends must use it with the same key and pad count.
 *
 * @module
 */

import type {
  ByteSink,
  StageContext,
  StreamStage,
  StreamStageDefinition,
} from "../../pipeline/stage.ts";
import { StageError } from "../../pipeline/stage.ts";
import { QppDecoder, QppEncoder } from "./codec.ts";
import { QPP_DEFAULT_COUNT, type QppPads, qppPads } from "./pads.ts";

/** Options of the `qpp` stage. */
export type QppStageOptions = {
  /** The raw key (kcptun's `-key`). */
  key?: string;
  /** Pad count (kcptun's `-QPPCount`, default 61). */
  count?: number;
  /** Pads already built (what `prepare` adds). */
  pads?: QppPads;
};

/** One stream's QPP: chunks are transformed in place and handed on. */
export class QppStreamStage implements StreamStage {
  readonly #enc: QppEncoder;
  readonly #dec: QppDecoder;

  /** A fresh PRNG state per direction over `pads`. */
  constructor(pads: QppPads) {
    this.#enc = new QppEncoder(pads);
    this.#dec = new QppDecoder(pads);
  }

  /** Encrypts in place. */
  encode(bytes: Uint8Array, out: ByteSink): void {
    this.#enc.process(bytes);
    out(bytes);
  }

  /** Decrypts in place. */
  decode(bytes: Uint8Array, out: ByteSink): void {
    this.#dec.process(bytes);
    out(bytes);
  }
}

function padsOf(options: QppStageOptions): QppPads {
  if (options.pads !== undefined) return options.pads;
  const count = options.count ?? QPP_DEFAULT_COUNT;
  if (!Number.isInteger(count) || count <= 0 || count > 65535) {
    throw new StageError(`qpp: option "count" must be an integer from 1 to 65535`);
  }
  if (typeof options.key !== "string") throw new StageError(`qpp: option "key" is required`);
  return qppPads(options.key, count);
}

/** The `qpp` stream stage definition (per stream when listed above smux). */
export const qppStage: StreamStageDefinition<QppStageOptions> = {
  name: "qpp",
  kind: "stream",
  description: "Quantum Permutation Pad per smux stream (kcptun 2026 -QPP, -QPPCount)",
  options: {
    key: { type: "string", description: "-key" },
    count: { type: "integer", description: "-QPPCount: pads (default 61)" },
    pads: { type: "object", description: "pads already built" },
  },
  // Building the pads takes a while: once per tunnel, before the first stream.
  prepare: (options: QppStageOptions, _ctx: StageContext): QppStageOptions => ({
    ...options,
    pads: padsOf(options),
  }),
  create: (options: QppStageOptions): QppStreamStage => new QppStreamStage(padsOf(options)),
};
