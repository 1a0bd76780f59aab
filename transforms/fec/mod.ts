/**
 * Forward error correction compatible with kcp-go v5.6.1 and klauspost/reedsolomon's default code.
 *
 * @module
 */

export {
  GF_EXP,
  GF_LOG,
  GF_MUL,
  GF_POLYNOMIAL,
  gfDiv,
  gfInv,
  gfMul,
  gfMulAdd,
  gfMulSet,
  gfPow,
  initGfMul,
  xorInto,
} from "./gf256.ts";
export {
  buildEncodingMatrix,
  invertMatrix,
  MAX_TOTAL_SHARDS,
  multiplyMatrix,
  ReedSolomon,
} from "./reed_solomon.ts";
export {
  classifyDatagram,
  DatagramKind,
  FEC_DATA_HEADER_SIZE,
  FEC_HEADER_SIZE,
  FEC_TYPE_DATA,
  FEC_TYPE_PARITY,
  paws,
  seqDiff,
} from "./wire.ts";
export { AutoTune, AUTOTUNE_SAMPLES, type AutoTuneGeneration } from "./autotune.ts";
export {
  AUTO_HOLD_MS,
  AUTO_PEER_QUIET_MS,
  AUTO_TARGET,
  FecAutoController,
  type FecAutoOptions,
  LayoutCheck,
  parityFor,
  PushMeter,
  residualLoss,
  ShardGapMeter,
} from "./auto.ts";
export { FecEncoder, type FecEncoderOptions } from "./encoder.ts";
export { FEC_EXPIRE_MS, FecDecoder, type FecDecoderOptions, RX_FEC_MULTI } from "./decoder.ts";
export { FEC_OVERHEAD, FecStage, fecStage, type FecStageOptions } from "./stage.ts";
