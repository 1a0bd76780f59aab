/**
 * The one duplex byte-stream type: what a TCP or unix connection, an smux stream of a tunnel and
 * a stage's byte-stream view all are to whoever plugs into them.
 *
 * @module
 */

/** A bidirectional byte stream as a Web Streams pair, closable as a whole. */
export interface Duplex {
  /** Bytes coming out of this end. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes going into this end. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes both directions (idempotent). */
  close(): void;
}
