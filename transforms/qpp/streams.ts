/**
 * QPP on Web Streams: a TransformStream per direction, and {@link qppDuplex}, which wraps one
 * bidirectional byte stream (an smux stream) the way kcptun 2026 wraps it: bytes written are
 * encrypted, bytes read are decrypted, each direction with its own fresh PRNG.
 *
 * Chunks are transformed in place, as kcptun does: whoever writes a chunk hands it over.
 *
 * @module
 */

import type { Duplex } from "../../pipeline/duplex.ts";
import { QppDecoder, QppEncoder } from "./codec.ts";
import type { QppPads } from "./pads.ts";

/** Encrypts a byte stream (in place, chunk by chunk). */
export function qppEncryptStream(pads: QppPads): TransformStream<Uint8Array, Uint8Array> {
  const enc = new QppEncoder(pads);
  return new TransformStream({
    transform(chunk, controller) {
      enc.process(chunk);
      controller.enqueue(chunk);
    },
  });
}

/** Decrypts a byte stream (in place, chunk by chunk). */
export function qppDecryptStream(pads: QppPads): TransformStream<Uint8Array, Uint8Array> {
  const dec = new QppDecoder(pads);
  return new TransformStream({
    transform(chunk, controller) {
      dec.process(chunk);
      controller.enqueue(chunk);
    },
  });
}

/**
 * `inner` with QPP: what is written is encrypted and then written to `inner`, what `inner`
 * gives is decrypted. A write completes when `inner`'s write does (so a relay that waits for its
 * writes waits for `inner`), reads are pulled on demand (no read-ahead), and `close()` closes
 * `inner`. Ending, cancelling or aborting the wrapper does the same to `inner`.
 */
export function qppDuplex(inner: Duplex, pads: QppPads): Duplex {
  const enc = new QppEncoder(pads);
  const dec = new QppDecoder(pads);
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  // Locks are taken on first use, so that an unused direction leaves `inner` untouched.
  const w = () => writer ??= inner.writable.getWriter();
  const r = () => reader ??= inner.readable.getReader();
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      enc.process(chunk);
      return w().write(chunk);
    },
    close: () => w().close(),
    abort: (reason) => w().abort(reason),
  });
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const got = await r().read();
      if (got.done) {
        controller.close();
        return;
      }
      dec.process(got.value);
      controller.enqueue(got.value);
    },
    cancel: (reason) => r().cancel(reason),
  }, { highWaterMark: 0 });
  return { readable, writable, close: () => inner.close() };
}
