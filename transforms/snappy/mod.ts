/**
 * Snappy framing (kcptun's compression layer): sans-IO encoder/decoder, CRC-32C, the `snappy`
 * stream stage and a Web Streams pair.
 *
 * @module
 */

export { crc32c, maskCrc, snappyChecksum } from "./crc32c.ts";
export { compressBlock, decodeBlock, maxCompressedLength } from "./block.ts";
export {
  CHUNK_COMPRESSED,
  CHUNK_PADDING,
  CHUNK_STREAM_IDENTIFIER,
  CHUNK_UNCOMPRESSED,
  MAX_BLOCK_SIZE,
  MAX_CHUNK_LENGTH,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  STREAM_IDENTIFIER,
} from "./framing.ts";
export { SnappyDecoderStream, SnappyEncoderStream, snappyStreams } from "./streams.ts";
export { snappyStage, SnappyStreamStage } from "./stage.ts";
