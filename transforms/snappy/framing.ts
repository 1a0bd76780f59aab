/**
 * The snappy framing format exactly as kcptun's compression wrapper (golang/snappy's buffered
 * Writer, flushed after every Write, and its Reader) writes and reads it: docs/protocol.md §7.
 *
 * ```
 * stream identifier (once per direction, first): ff 06 00 00 "sNaPpY"
 * chunk:  type u8 | length u24le | body
 *   0x00 compressed:    masked CRC-32C u32le | snappy block     (CRC of the uncompressed bytes)
 *   0x01 uncompressed:  masked CRC-32C u32le | raw bytes
 *   0xfe padding, 0x80-0xfd reserved skippable: skipped;  0x02-0x7f reserved: fatal
 * ```
 *
 * Both halves are sans-IO: the encoder turns each write into whole chunks, the decoder accepts
 * its input split anywhere and emits each chunk's uncompressed bytes once the chunk is complete
 * and verified.
 *
 * @module
 */

import { StageError } from "../../pipeline/stage.ts";
import type { ByteSink } from "../../pipeline/stage.ts";
import {
  compressBlock,
  decodeBlockElements,
  decodedLength,
  maxCompressedLength,
  varintSize,
} from "./block.ts";
import { crc32c, maskCrc } from "./crc32c.ts";

/** Chunk type of compressed data. */
export const CHUNK_COMPRESSED = 0x00;
/** Chunk type of uncompressed data. */
export const CHUNK_UNCOMPRESSED = 0x01;
/** Chunk type of padding (skipped). */
export const CHUNK_PADDING = 0xfe;
/** Chunk type of the stream identifier. */
export const CHUNK_STREAM_IDENTIFIER = 0xff;

/** The whole stream identifier chunk: `ff 06 00 00 73 4e 61 50 70 59`. */
export const STREAM_IDENTIFIER: Uint8Array = Uint8Array.of(
  0xff,
  0x06,
  0x00,
  0x00,
  0x73,
  0x4e,
  0x61,
  0x50,
  0x70,
  0x59,
);

/** Most uncompressed bytes in one chunk. */
export const MAX_BLOCK_SIZE = 65536;

/** Longest chunk body a reader accepts (checksum + worst-case compressed 65536 bytes). */
export const MAX_CHUNK_LENGTH: number = 4 + maxCompressedLength(MAX_BLOCK_SIZE);

const CHUNK_HEADER_SIZE = 4;
const CHECKSUM_SIZE = 4;

/**
 * Writes the framing format. Each {@link encode} call becomes one or more whole chunks (at most
 * 65536 uncompressed bytes each) handed to the sink at once, as kcptun's Write+Flush does; the
 * stream identifier goes in front of the first chunk. A chunk is stored compressed only when that
 * saves at least an eighth of its size.
 *
 * Output buffers are fresh (the sink keeps them) except that an uncompressed chunk is emitted as
 * its header and then a view of the input, without copying: the caller hands over the input.
 */
export class SnappyFrameEncoder {
  #wroteIdentifier = false;
  readonly #scratch = new Uint8Array(maxCompressedLength(MAX_BLOCK_SIZE));

  /** Encodes `bytes` (ownership passes to the encoder) into chunks. Empty input writes nothing. */
  encode(bytes: Uint8Array, out: ByteSink): void {
    for (let at = 0; at < bytes.length; at += MAX_BLOCK_SIZE) {
      const end = Math.min(bytes.length, at + MAX_BLOCK_SIZE);
      this.#chunk(at === 0 && end === bytes.length ? bytes : bytes.subarray(at, end), out);
    }
  }

  #chunk(block: Uint8Array, out: ByteSink): void {
    const n = block.length;
    const prefix = this.#wroteIdentifier ? 0 : STREAM_IDENTIFIER.length;
    this.#wroteIdentifier = true;
    const checksum = maskCrc(crc32c(block));
    const clen = compressBlock(block, this.#scratch);
    if (clen >= n - (n >>> 3)) {
      const head = new Uint8Array(prefix + CHUNK_HEADER_SIZE + CHECKSUM_SIZE);
      if (prefix) head.set(STREAM_IDENTIFIER);
      writeChunkHeader(head, prefix, CHUNK_UNCOMPRESSED, CHECKSUM_SIZE + n, checksum);
      out(head);
      out(block);
      return;
    }
    const buf = new Uint8Array(prefix + CHUNK_HEADER_SIZE + CHECKSUM_SIZE + clen);
    if (prefix) buf.set(STREAM_IDENTIFIER);
    writeChunkHeader(buf, prefix, CHUNK_COMPRESSED, CHECKSUM_SIZE + clen, checksum);
    buf.set(this.#scratch.subarray(0, clen), prefix + CHUNK_HEADER_SIZE + CHECKSUM_SIZE);
    out(buf);
  }
}

function writeChunkHeader(
  buf: Uint8Array,
  at: number,
  type: number,
  length: number,
  checksum: number,
): void {
  buf[at] = type;
  buf[at + 1] = length & 0xff;
  buf[at + 2] = (length >>> 8) & 0xff;
  buf[at + 3] = length >>> 16;
  buf[at + 4] = checksum & 0xff;
  buf[at + 5] = (checksum >>> 8) & 0xff;
  buf[at + 6] = (checksum >>> 16) & 0xff;
  buf[at + 7] = checksum >>> 24;
}

function chunkName(type: number): string {
  return `0x${type.toString(16).padStart(2, "0")}`;
}

/**
 * Reads the framing format from input split at arbitrary points. Each verified chunk's
 * uncompressed bytes go to the sink as one buffer the sink may keep. A corrupt stream (no
 * stream identifier first, bad identifier, bad length, unsupported chunk type, undecodable block,
 * checksum mismatch) throws a {@link StageError}; the decoder then stays failed and throws the
 * same error on every later call, so nothing after the corruption is ever delivered.
 */
export class SnappyFrameDecoder {
  readonly #header = new Uint8Array(CHUNK_HEADER_SIZE);
  #headerFill = 0;
  /** -1 while reading a chunk header, else the type of the chunk whose body is being read. */
  #type = -1;
  #length = 0;
  #body: Uint8Array | null = null;
  #bodyFill = 0;
  #sawIdentifier = false;
  #error: StageError | null = null;

  /** Bytes held in a partial chunk. */
  get pendingBytes(): number {
    return this.#type < 0 ? this.#headerFill : CHUNK_HEADER_SIZE + this.#bodyFill;
  }

  /** The error that failed the stream, if any. */
  get error(): StageError | null {
    return this.#error;
  }

  /** Decodes `bytes` (ownership passes to the decoder; emitted buffers may be views of it). */
  decode(bytes: Uint8Array, out: ByteSink): void {
    if (this.#error) throw this.#error;
    const end = bytes.length;
    let p = 0;
    while (p < end) {
      if (this.#type < 0) {
        if (this.#headerFill === 0 && end - p >= CHUNK_HEADER_SIZE) {
          this.#startChunk(bytes[p], bytes[p + 1] | (bytes[p + 2] << 8) | (bytes[p + 3] << 16));
          p += CHUNK_HEADER_SIZE;
        } else {
          const h = this.#header;
          while (this.#headerFill < CHUNK_HEADER_SIZE && p < end) {
            h[this.#headerFill++] = bytes[p++];
          }
          if (this.#headerFill < CHUNK_HEADER_SIZE) return;
          this.#headerFill = 0;
          this.#startChunk(h[0], h[1] | (h[2] << 8) | (h[3] << 16));
        }
        if (this.#length === 0) this.#finishChunk(bytes, 0, 0, false, out);
        continue;
      }
      const need = this.#length - this.#bodyFill;
      if (this.#bodyFill === 0 && end - p >= need) {
        // The whole body is in this input: work on it in place.
        this.#finishChunk(bytes, p, p + need, true, out);
        p += need;
        continue;
      }
      const take = Math.min(need, end - p);
      const keep = this.#type <= CHUNK_UNCOMPRESSED || this.#type === CHUNK_STREAM_IDENTIFIER;
      if (keep) {
        this.#body ??= new Uint8Array(MAX_CHUNK_LENGTH);
        this.#body.set(bytes.subarray(p, p + take), this.#bodyFill);
      }
      this.#bodyFill += take;
      p += take;
      if (this.#bodyFill === this.#length) {
        this.#finishChunk(keep ? this.#body! : bytes, 0, this.#length, false, out);
      }
    }
  }

  /**
   * Declares the end of the input. Throws a {@link StageError} when it stops inside a chunk (Go's
   * reader: corrupt input); an input that ends between chunks, or is empty, is a clean end.
   */
  finish(): void {
    if (this.#error) throw this.#error;
    if (this.#type >= 0 || this.#headerFill > 0) {
      this.#fail(`snappy: stream ends inside a chunk (${this.pendingBytes} bytes of it received)`);
    }
  }

  #fail(message: string): never {
    this.#error = new StageError(message);
    throw this.#error;
  }

  #startChunk(type: number, length: number): void {
    if (!this.#sawIdentifier) {
      if (type !== CHUNK_STREAM_IDENTIFIER) {
        this.#fail(
          `snappy: stream does not start with the stream identifier (first chunk type ${
            chunkName(type)
          })`,
        );
      }
      this.#sawIdentifier = true;
    }
    if (length > MAX_CHUNK_LENGTH) {
      this.#fail(`snappy: chunk length ${length} exceeds ${MAX_CHUNK_LENGTH}`);
    }
    if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
      if (length < CHECKSUM_SIZE) {
        this.#fail(`snappy: chunk ${chunkName(type)} of length ${length} has no checksum`);
      }
      if (type === CHUNK_UNCOMPRESSED && length - CHECKSUM_SIZE > MAX_BLOCK_SIZE) {
        this.#fail(`snappy: uncompressed chunk of ${length - CHECKSUM_SIZE} bytes exceeds 65536`);
      }
    } else if (type === CHUNK_STREAM_IDENTIFIER) {
      if (length !== STREAM_IDENTIFIER.length - CHUNK_HEADER_SIZE) {
        this.#fail(`snappy: stream identifier chunk has length ${length}, expected 6`);
      }
    } else if (type < 0x80) {
      this.#fail(`snappy: unsupported chunk type ${chunkName(type)}`);
    }
    this.#type = type;
    this.#length = length;
    this.#bodyFill = 0;
  }

  /** Verifies and emits the chunk whose body is `src[start, end)`. */
  #finishChunk(
    src: Uint8Array,
    start: number,
    end: number,
    inPlace: boolean,
    out: ByteSink,
  ): void {
    const type = this.#type;
    this.#type = -1;
    this.#bodyFill = 0;
    if (type === CHUNK_STREAM_IDENTIFIER) {
      for (let i = 0; i < 6; i++) {
        if (src[start + i] !== STREAM_IDENTIFIER[CHUNK_HEADER_SIZE + i]) {
          this.#fail("snappy: bad stream identifier (expected sNaPpY)");
        }
      }
      return;
    }
    if (type !== CHUNK_COMPRESSED && type !== CHUNK_UNCOMPRESSED) return; // skippable
    const stored = (src[start] | (src[start + 1] << 8) | (src[start + 2] << 16) |
      (src[start + 3] << 24)) >>> 0;
    const dataStart = start + CHECKSUM_SIZE;
    let data: Uint8Array;
    if (type === CHUNK_UNCOMPRESSED) {
      if (maskCrc(crc32c(src, 0, dataStart, end)) !== stored) {
        this.#fail(
          `snappy: checksum mismatch in an uncompressed chunk of ${end - dataStart} bytes`,
        );
      }
      if (end === dataStart) return;
      // A view keeps its whole input buffer alive: only take one when it is most of that buffer.
      data = inPlace && 2 * (end - dataStart) >= src.buffer.byteLength
        ? src.subarray(dataStart, end)
        : src.slice(dataStart, end);
    } else {
      const n = decodedLength(src, dataStart, end);
      if (n < 0) this.#fail("snappy: corrupt compressed chunk (bad length varint)");
      if (n > MAX_BLOCK_SIZE) {
        this.#fail(`snappy: compressed chunk declares ${n} bytes, more than 65536`);
      }
      data = new Uint8Array(n);
      if (!decodeBlockElements(src, dataStart + varintSize, end, data)) {
        this.#fail("snappy: corrupt compressed chunk");
      }
      if (maskCrc(crc32c(data)) !== stored) {
        this.#fail(`snappy: checksum mismatch in a compressed chunk of ${n} bytes`);
      }
      if (n === 0) return;
    }
    out(data);
  }
}
