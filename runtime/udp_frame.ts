/**
 * The byte format of a UDP flow's smux stream (kcptun-ts UDP forwarding, `udp_relay.ts`): no I/O,
 * no clock.
 *
 * A flow is a marked smux stream (`SmuxSession.openMarkedStream`) carrying frames, each a u16
 * big-endian length (network order, as DNS over TCP frames its messages) and that many bytes:
 *
 * ```
 * server → client   [len][answer]  [len][datagram]  [len][datagram] ...
 * client → server                  [len][datagram]  [len][datagram] ...
 * ```
 *
 * The server speaks first: its first frame is the answer, `kcptun-ts udp/1 ok` or
 * `kcptun-ts udp/1 refused: <reason>` in ASCII. The client sends nothing before it has read
 * `ok`, so that a server without UDP forwarding, which takes the stream for an ordinary one and
 * dials its TCP target, never passes a byte of it to that target; and anything else arriving
 * first (the TCP target's greeting, EOF, silence) tells the client the server does not forward
 * UDP. Every later frame is one datagram; a length of 0 is an empty datagram.
 *
 * ```ts
 * import { answerOf, DatagramReader, encodeAnswer, encodeDatagram } from "./udp_frame.ts";
 *
 * const r = new DatagramReader();
 * const wire = new Uint8Array([...encodeAnswer(null), ...encodeDatagram(new Uint8Array([7, 8]))]);
 * r.push(wire.subarray(0, 5)); // split anywhere
 * if (r.next() !== null) throw new Error("the answer is not complete yet");
 * r.push(wire.subarray(5));
 * const answer = answerOf(r.next()!);
 * if (answer === null || !answer.ok) throw new Error("not ok");
 * if (r.next()!.join() !== "7,8") throw new Error("datagram");
 * ```
 *
 * @module
 */

/** Bytes of a frame's length field. */
export const FRAME_HEADER = 2;

/** The largest payload a frame carries (the u16 length). */
export const FRAME_MAX_PAYLOAD = 0xffff;

/** What every answer starts with; the version is the `1`. */
export const ANSWER_PREFIX = "kcptun-ts udp/1 ";

/**
 * The longest answer a client waits for. A first frame claiming more is not an answer: a TCP
 * target's greeting (`SSH-2.0…` reads as 21331 bytes) is recognised from its first two bytes.
 */
export const ANSWER_MAX = 512;

const OK = "ok";
const REFUSED = "refused: ";

/** A frame carrying `payload[start, end)`: a new buffer, the caller's to hand over. */
export function encodeDatagram(payload: Uint8Array, start = 0, end = payload.length): Uint8Array {
  const n = end - start;
  if (n > FRAME_MAX_PAYLOAD) throw new RangeError(`datagram of ${n} bytes is too long for a frame`);
  const out = new Uint8Array(FRAME_HEADER + n);
  out[0] = n >>> 8;
  out[1] = n & 0xff;
  out.set(payload.subarray(start, end), FRAME_HEADER);
  return out;
}

/** The server's answer frame: `ok` when `refusal` is null, else `refused: <refusal>`. */
export function encodeAnswer(refusal: string | null): Uint8Array {
  // ASCII only, so that one char is one byte and the bound holds.
  const why = refusal === null ? OK : REFUSED + refusal.replace(/[^\x20-\x7e]/g, "?");
  const text = (ANSWER_PREFIX + why).slice(0, ANSWER_MAX);
  return encodeDatagram(new TextEncoder().encode(text));
}

/** A parsed answer: ok, or refused with the server's reason. */
export type Answer = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** The answer in a first frame's payload, or null when it is not one (not kcptun-ts's). */
export function answerOf(payload: Uint8Array): Answer | null {
  if (payload.length > ANSWER_MAX || payload.length < ANSWER_PREFIX.length) return null;
  for (let i = 0; i < payload.length; i++) if (payload[i] < 0x20 || payload[i] > 0x7e) return null;
  const text = new TextDecoder().decode(payload);
  if (!text.startsWith(ANSWER_PREFIX)) return null;
  const rest = text.slice(ANSWER_PREFIX.length);
  if (rest === OK) return { ok: true };
  if (rest.startsWith(REFUSED)) return { ok: false, reason: rest.slice(REFUSED.length) };
  return null;
}

/**
 * Splits a flow's bytes, handed in as they were read (cut anywhere), into frame payloads.
 * A payload wholly inside one pushed chunk is returned as a view of it; one spanning chunks is
 * assembled in a buffer of the reader's. Either is valid until the next call: copy what you keep.
 */
export class DatagramReader {
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  /** Assembly buffer for a frame cut across chunks (grows up to 2 + 65535 bytes). */
  #buf: Uint8Array = new Uint8Array(0);
  /** Bytes of the partial frame in `#buf` (header included). */
  #have = 0;

  /** Hands in the next bytes; what an earlier push left unread must have been read (next() null). */
  push(chunk: Uint8Array): void {
    if (this.#at < this.#chunk.length) {
      throw new Error("DatagramReader: push before next() is null");
    }
    this.#chunk = chunk;
    this.#at = 0;
  }

  /** Bytes handed in and not yet returned as frames. */
  get pending(): number {
    return this.#have + this.#chunk.length - this.#at;
  }

  /**
   * The length field of the next frame, or -1 while fewer than its two bytes are in: lets a
   * caller reject a frame by its length before the rest has arrived.
   */
  peekLength(): number {
    const rest = this.#chunk.length - this.#at;
    if (this.#have >= FRAME_HEADER) return (this.#buf[0] << 8) | this.#buf[1];
    if (this.#have === 1) return rest >= 1 ? (this.#buf[0] << 8) | this.#chunk[this.#at] : -1;
    return rest >= 2 ? (this.#chunk[this.#at] << 8) | this.#chunk[this.#at + 1] : -1;
  }

  /** The next complete frame's payload, or null until more bytes are pushed. */
  next(): Uint8Array | null {
    const c = this.#chunk;
    if (this.#have === 0) {
      const rest = c.length - this.#at;
      if (rest >= FRAME_HEADER) {
        const n = (c[this.#at] << 8) | c[this.#at + 1];
        if (rest >= FRAME_HEADER + n) {
          const from = this.#at + FRAME_HEADER;
          this.#at = from + n;
          return c.subarray(from, from + n);
        }
      }
      if (rest === 0) return null;
    }
    // Assemble across chunks: the header first, then exactly the payload.
    if (this.#buf.length < FRAME_HEADER) this.#buf = new Uint8Array(256);
    while (this.#have < FRAME_HEADER && this.#at < c.length) {
      this.#buf[this.#have++] = c[this.#at++];
    }
    if (this.#have < FRAME_HEADER) return null;
    const total = FRAME_HEADER + ((this.#buf[0] << 8) | this.#buf[1]);
    if (this.#buf.length < total) {
      const grown = new Uint8Array(Math.max(total, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#have));
      this.#buf = grown;
    }
    const take = Math.min(total - this.#have, c.length - this.#at);
    this.#buf.set(c.subarray(this.#at, this.#at + take), this.#have);
    this.#have += take;
    this.#at += take;
    if (this.#have < total) return null;
    this.#have = 0;
    return this.#buf.subarray(FRAME_HEADER, total);
  }
}
