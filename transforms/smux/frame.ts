/**
 * smux frames on the wire (docs/protocol.md §6.1): an 8-byte header `ver u8 | cmd u8 | length u16le |
 * sid u32le` and `length` payload bytes. Frames follow each other in a reliable byte stream with
 * no other delimiting, so a frame may be split anywhere by the layers below.
 *
 * @module
 */

import { ChunkQueue } from "./chunk_queue.ts";

/** Opens a stream (payload empty). */
export const CMD_SYN = 0;
/** Closes a stream, "EOF" (payload empty). */
export const CMD_FIN = 1;
/** Stream data. */
export const CMD_PSH = 2;
/** Keepalive (sid 0, payload empty). */
export const CMD_NOP = 3;
/** Version 2 window update: payload `consumed u32le | window u32le`. */
export const CMD_UPD = 4;

/** Header bytes. */
export const HEADER_SIZE = 8;
/** Payload bytes of an UPD frame. */
export const UPD_SIZE = 8;
/** Largest payload a frame can carry (16-bit length). */
export const MAX_PAYLOAD = 65535;
/** The send window a version 2 writer assumes before the peer's first UPD. */
export const INITIAL_PEER_WINDOW = 262144;

/** One decoded frame. */
export interface SmuxFrame {
  /** Protocol version byte (1 or 2). */
  ver: number;
  /** Command: one of the `CMD_*` values (or anything else on a bad stream). */
  cmd: number;
  /** Stream id. */
  sid: number;
  /** Payload. */
  data: Uint8Array;
}

/** Writes a frame header at `buf[at]`. */
export function writeHeader(
  buf: Uint8Array,
  at: number,
  ver: number,
  cmd: number,
  length: number,
  sid: number,
): void {
  buf[at] = ver;
  buf[at + 1] = cmd;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = length >>> 8;
  buf[at + 4] = sid & 0xff;
  buf[at + 5] = (sid >>> 8) & 0xff;
  buf[at + 6] = (sid >>> 16) & 0xff;
  buf[at + 7] = sid >>> 24;
}

/** Encodes one frame into a fresh buffer. */
export function encodeFrame(
  ver: number,
  cmd: number,
  sid: number,
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  if (data.length > MAX_PAYLOAD) throw new RangeError(`smux payload ${data.length} > 65535`);
  const out = new Uint8Array(HEADER_SIZE + data.length);
  writeHeader(out, 0, ver, cmd, data.length, sid);
  out.set(data, HEADER_SIZE);
  return out;
}

/** Encodes an UPD frame. */
export function encodeUpd(ver: number, sid: number, consumed: number, window: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + UPD_SIZE);
  writeHeader(out, 0, ver, CMD_UPD, UPD_SIZE, sid);
  writeU32(out, 8, consumed);
  writeU32(out, 12, window);
  return out;
}

/** Writes a u32le. */
export function writeU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v & 0xff;
  buf[at + 1] = (v >>> 8) & 0xff;
  buf[at + 2] = (v >>> 16) & 0xff;
  buf[at + 3] = v >>> 24;
}

/** Reads a u32le. */
export function readU32(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

/**
 * Incremental frame parser over input split anywhere. {@link push} input, then call {@link next}
 * until it returns false; after each true the fields describe the frame just parsed. It never
 * fails: every 8 bytes are a syntactically valid header, and the caller judges version and
 * command. Payload buffers are views of the input when that does not pin a much larger buffer,
 * else copies; the input is taken over, not copied.
 */
export class SmuxFrameParser {
  readonly #input = new ChunkQueue();
  readonly #hdr = new Uint8Array(HEADER_SIZE);
  #haveHeader = false;
  #headers = 0;
  #ver = 0;
  #cmd = 0;
  #length = 0;
  #sid = 0;

  /** Version byte of the last frame. */
  ver = 0;
  /** Command of the last frame. */
  cmd = 0;
  /** Payload length of the last frame (from its header). */
  length = 0;
  /** Stream id of the last frame. */
  sid = 0;
  /** Payload of the last frame. */
  payload: Uint8Array = new Uint8Array(0);

  /** Bytes received and not yet returned as frames (a partial frame, or frames not yet taken). */
  get pendingBytes(): number {
    return this.#input.bytes + (this.#haveHeader ? HEADER_SIZE : 0);
  }

  /** Frame headers seen so far (counted as soon as a header is complete). */
  get headersSeen(): number {
    return this.#headers;
  }

  /** Appends input. */
  push(bytes: Uint8Array): void {
    this.#input.push(bytes);
    if (!this.#haveHeader && this.#input.bytes >= HEADER_SIZE) this.#readHeader();
  }

  /** Parses the next complete frame into the fields; false when more input is needed. */
  next(): boolean {
    if (!this.#haveHeader) {
      if (this.#input.bytes < HEADER_SIZE) return false;
      this.#readHeader();
    }
    if (this.#input.bytes < this.#length) return false;
    this.ver = this.#ver;
    this.cmd = this.#cmd;
    this.length = this.#length;
    this.sid = this.#sid;
    this.payload = this.#input.take(this.#length);
    this.#haveHeader = false;
    if (this.#input.bytes >= HEADER_SIZE) this.#readHeader();
    return true;
  }

  /** Drops all input. */
  clear(): void {
    this.#input.clear();
    this.#haveHeader = false;
  }

  #readHeader(): void {
    const h = this.#hdr;
    this.#input.copyInto(h, 0, HEADER_SIZE);
    this.#haveHeader = true;
    this.#headers++;
    this.#ver = h[0];
    this.#cmd = h[1];
    this.#length = h[2] | (h[3] << 8);
    this.#sid = readU32(h, 4);
  }
}

/** Parses a whole buffer of frames (for tests and tools); a trailing partial frame is ignored. */
export function parseFrames(bytes: Uint8Array): SmuxFrame[] {
  const p = new SmuxFrameParser();
  p.push(bytes);
  const out: SmuxFrame[] = [];
  while (p.next()) out.push({ ver: p.ver, cmd: p.cmd, sid: p.sid, data: p.payload });
  return out;
}
