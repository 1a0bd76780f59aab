/**
 * The snappy framing as Web Streams transforms (the runtime calls the `snappy` stage directly;
 * these are for composing byte streams by hand and for tests).
 *
 * @module
 */

import type { ByteSink } from "../../pipeline/stage.ts";
import type { StreamStageStreams } from "../../pipeline/streams.ts";
import { SnappyFrameDecoder, SnappyFrameEncoder } from "./framing.ts";

/**
 * Compresses: every chunk written becomes whole snappy chunks (one smux frame in, one snappy
 * chunk out, as kcptun flushes after every write). Written chunks are handed over, not copied.
 *
 * @example
 * ```ts
 * import { SnappyDecoderStream, SnappyEncoderStream } from "./streams.ts";
 * const data = new TextEncoder().encode("hello hello hello hello");
 * const back = ReadableStream.from([data])
 *   .pipeThrough(new SnappyEncoderStream())
 *   .pipeThrough(new SnappyDecoderStream());
 * for await (const chunk of back) console.log(new TextDecoder().decode(chunk));
 * ```
 */
export class SnappyEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /** A fresh encoder (writes the stream identifier before its first chunk). */
  constructor() {
    const encoder = new SnappyFrameEncoder();
    let sink: ByteSink;
    super({
      start(controller) {
        sink = (bytes) => controller.enqueue(bytes);
      },
      transform(chunk) {
        encoder.encode(chunk, sink);
      },
    });
  }
}

/**
 * Decompresses a snappy-framed byte stream split anywhere. A corrupt stream, or one that ends
 * inside a chunk, errors the stream with a `StageError`; nothing after the corruption is emitted.
 */
export class SnappyDecoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /** A fresh decoder (expects the stream identifier first). */
  constructor() {
    const decoder = new SnappyFrameDecoder();
    let sink: ByteSink;
    super({
      start(controller) {
        sink = (bytes) => controller.enqueue(bytes);
      },
      transform(chunk) {
        decoder.decode(chunk, sink);
      },
      flush() {
        decoder.finish();
      },
    });
  }
}

/** Both directions: `encoder` towards KCP, `decoder` away from it. */
export function snappyStreams(): StreamStageStreams {
  return { encoder: new SnappyEncoderStream(), decoder: new SnappyDecoderStream() };
}
