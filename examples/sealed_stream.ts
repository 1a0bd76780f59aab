/**
 * Example per-stream plugin: every smux stream carries a keyed checksum of its bytes and ends
 * with it, so that a stream cut short, or altered anywhere between the two applications, fails
 * instead of ending cleanly.
 *
 * Listed above `smux`, a stream stage runs once per smux stream (not once per session):
 *
 * ```json
 * {
 *   "pipeline": ["tcp", "./examples/sealed_stream.ts", "smux", "snappy", "kcp", "fec", "crypt", "udp"],
 *   "pipelineOptions": { "seal": { "key": "shared secret" } }
 * }
 * ```
 *
 * On the wire of one stream: data frames `length u16be ‖ bytes` (length 1..65535), then one end
 * frame `0x0000 ‖ checksum u32be`, where the checksum is FNV-1a over every data byte, started
 * from a value derived from the key. The encoder adds the end frame when the stream is closed
 * (`finish("encode")`); the decoder hands data on as it arrives and checks the end frame when
 * it comes. A stream whose FIN arrives without a matching end frame (a truncated stream, a
 * partial frame) fails in `finish("decode")` with a {@link StageError}; so does a wrong
 * checksum, or a byte after the end frame. The runtime then ends that stream's reads with the
 * error, and the session goes on.
 *
 * Not wire-compatible with Go kcptun: use it between two kcptun-ts ends with the same key.
 * Outside this repository, import from `@kcptun-ts/kcptun-ts/plugin`.
 *
 * @module
 */

import type { ByteSink, StageOptions, StreamStage, StreamStageDefinition } from "../plugin.ts";
import { StageError } from "../plugin.ts";

/** Options of the seal stage. */
export interface SealOptions extends StageOptions {
  /** The shared key (required). */
  key?: string;
  /** The checksum's starting value: `prepare` derives it from `key` (it is no pipeline option). */
  seed?: number;
}

/** Largest data frame. */
const MAX_FRAME = 65535;

function fnv1a(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** Where the decoder is: reading a 2-byte length, inside a data frame, reading the end frame's
 * 4-byte checksum, or past a matching end frame. */
const At = { Header: 0, Data: 1, Checksum: 2, Done: 3 } as const;

/** One stream's seal: an encoder towards smux, a decoder away from it. */
export class SealStage implements StreamStage {
  readonly #seed: number;
  #sent: number;
  #received: number;
  #at: number = At.Header;
  /** Header or checksum bytes read so far. */
  readonly #field = new Uint8Array(4);
  #fieldLength = 0;
  /** Data bytes left in the current frame. */
  #left = 0;
  /** Data bytes decoded, for messages. */
  #bytes = 0;

  /** A seal whose checksums start from `seed`. */
  constructor(seed: number) {
    this.#seed = seed;
    this.#sent = seed;
    this.#received = seed;
  }

  /** Frames `bytes` (at most 65535 bytes a frame) and adds them to the checksum. */
  encode(bytes: Uint8Array, out: ByteSink): void {
    this.#sent = fnv1a(this.#sent, bytes);
    for (let at = 0; at < bytes.length; at += MAX_FRAME) {
      const n = Math.min(MAX_FRAME, bytes.length - at);
      const frame = new Uint8Array(2 + n);
      frame[0] = n >>> 8;
      frame[1] = n & 0xff;
      frame.set(bytes.subarray(at, at + n), 2);
      out(frame);
    }
  }

  /** Hands data on as it arrives; checks the end frame when it comes. */
  decode(bytes: Uint8Array, out: ByteSink): void {
    let i = 0;
    while (i < bytes.length) {
      switch (this.#at) {
        case At.Header:
          this.#field[this.#fieldLength++] = bytes[i++];
          if (this.#fieldLength === 2) {
            this.#left = (this.#field[0] << 8) | this.#field[1];
            this.#fieldLength = 0;
            this.#at = this.#left === 0 ? At.Checksum : At.Data;
          }
          break;
        case At.Data: {
          const n = Math.min(this.#left, bytes.length - i);
          // A copy: `bytes` belongs to the caller, the output to the reader.
          const data = bytes.slice(i, i + n);
          this.#received = fnv1a(this.#received, data);
          this.#bytes += n;
          this.#left -= n;
          i += n;
          if (this.#left === 0) this.#at = At.Header;
          out(data);
          break;
        }
        case At.Checksum:
          this.#field[this.#fieldLength++] = bytes[i++];
          if (this.#fieldLength === 4) {
            const f = this.#field;
            const want = ((f[0] << 24) | (f[1] << 16) | (f[2] << 8) | f[3]) >>> 0;
            if (want !== this.#received) {
              throw new StageError(`seal: checksum mismatch after ${this.#bytes} bytes`);
            }
            this.#at = At.Done;
          }
          break;
        case At.Done:
          throw new StageError(`seal: ${bytes.length - i} bytes after the end frame`);
      }
    }
  }

  /** Encode: sends the end frame. Decode: fails unless the end frame came and matched. */
  finish(direction: "encode" | "decode", out: ByteSink): void {
    if (direction === "encode") {
      const c = this.#sent;
      out(new Uint8Array([0, 0, c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff]));
      return;
    }
    if (this.#at !== At.Done) {
      throw new StageError(
        `seal: the stream ended after ${this.#bytes} bytes without its end frame (truncated)`,
      );
    }
  }
}

/** The stage definition (the plugin's default export). */
const seal: StreamStageDefinition<SealOptions> = {
  name: "seal",
  kind: "stream",
  description: "per-stream keyed checksum with an end frame: truncation fails the stream",
  options: {
    key: { type: "string", description: "the shared key" },
  },
  // Once per tunnel: hashing the key is async (WebCrypto) and needs doing only once.
  async prepare(options) {
    if (typeof options.key !== "string" || options.key === "") {
      throw new StageError(`seal: option "key" is required`);
    }
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(options.key));
    return { ...options, seed: new DataView(digest).getUint32(0) };
  },
  // Once per stream: cheap and synchronous.
  create(options) {
    if (typeof options.seed !== "number") {
      throw new StageError(`seal: no seed (the runtime runs prepare() before create())`);
    }
    return new SealStage(options.seed);
  },
};

export default seal;
