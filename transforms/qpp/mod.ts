/**
 * QPP, kcptun 2026's "Quantum Permutation Pad" cipher over each smux stream's bytes (`-QPP`,
 * `-QPPCount`): the keyed pads, the xoshiro256** PRNG, a sans-IO encoder/decoder and Web Streams
 * wrappers. See docs/qpp.md.
 *
 * @example
 * ```ts
 * import { QppDecoder, QppEncoder, qppPads } from "./mod.ts";
 *
 * const pads = qppPads("test", 61); // built once per process per (key, count)
 * const bytes = new TextEncoder().encode("hello world, thi");
 * new QppEncoder(pads).process(bytes); // 0d0fcc3b61988e9b0de2750c9ac44bef
 * new QppDecoder(pads).process(bytes); // "hello world, thi" again
 * ```
 *
 * @module
 */

export {
  QPP_DEFAULT_COUNT,
  QPP_MAX_COUNT,
  QPP_MIN_KEY_BYTES,
  QPP_MIN_PADS,
  qppChunks,
  QppPads,
  qppPads,
  qppPrngSeed,
} from "./pads.ts";
export { stateFromBytes, Xoshiro256ss } from "./prng.ts";
export { QppDecoder, QppEncoder } from "./codec.ts";
export { qppDecryptStream, qppDuplex, qppEncryptStream } from "./streams.ts";
export { checkQppParams, type QppParamCheck } from "./params.ts";
