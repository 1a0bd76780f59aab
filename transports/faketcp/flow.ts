/**
 * The sequence and acknowledgement bookkeeping of one fake-TCP flow, with tcpraw v1.2.25's rules.
 *
 * Every captured segment of the flow updates it, whatever its flags:
 * - with ACK: the next sequence number to send becomes the segment's acknowledgement number (so
 *   the sender follows whatever the peer last acknowledged, and may go back);
 * - with SYN: the acknowledgement number to send becomes the segment's sequence number + 1;
 * - with PSH: when the segment starts exactly at the acknowledgement number, that number moves
 *   past its payload (out-of-order data leaves it where it was).
 * A segment is delivered as a datagram when it carries PSH and the flow belongs to a real kernel
 * TCP connection (dialled or accepted); other flows are "orphans" whose data is dropped.
 *
 * Sending takes the current numbers and advances the sequence number by the payload length.
 * FIN and RST change nothing (tcpraw ignores them too).
 *
 * Pure code: no I/O, no clock (the caller passes `now`).
 *
 * @module
 */

import { TcpFlags } from "./segment.ts";

/** The per-flow numbers; the transport's flow objects extend it. */
export class FlowState {
  /** Sequence number of the next segment sent. */
  seq = 0;
  /** Acknowledgement number sent with every segment. */
  ack = 0;
  /** True once a segment of the flow has been captured (tcpraw sends nothing before that). */
  seen = false;
  /** True while a kernel TCP connection backs the flow (its data is delivered). */
  connected = false;
  /** When the last segment was captured (ms, the caller's clock). */
  lastSeen = 0;
}

/**
 * Applies one captured segment to `flow` and says whether its payload is to be delivered.
 * `seq` and `ack` are the segment's unsigned 32-bit numbers.
 */
export function trackSegment(
  flow: FlowState,
  flags: number,
  seq: number,
  ack: number,
  payloadLength: number,
  now: number,
): boolean {
  if ((flags & TcpFlags.ACK) !== 0) flow.seq = ack;
  if ((flags & TcpFlags.SYN) !== 0) flow.ack = (seq + 1) >>> 0;
  const push = (flags & TcpFlags.PSH) !== 0;
  if (push && flow.ack === seq) flow.ack = (seq + payloadLength) >>> 0;
  flow.seen = true;
  flow.lastSeen = now;
  return push && flow.connected;
}

/**
 * The sequence number for a segment carrying `payloadLength` bytes; advances the flow past it.
 */
export function takeSequence(flow: FlowState, payloadLength: number): number {
  const seq = flow.seq;
  flow.seq = (seq + payloadLength) >>> 0;
  return seq;
}

/**
 * The TCP window values tcpraw v1.2.25 sends: 16 random bits with the top bit set (32768 to
 * 65535), a fresh value per segment. A xorshift generator seeded from the CSPRNG: the values
 * only need to look varied, and the hot path must not allocate.
 */
export class WindowSource {
  #x: number;

  /** Seeds from `crypto.getRandomValues` unless a seed is given (tests). */
  constructor(seed?: number) {
    let s = seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    if (s === 0) s = 0x9e3779b9;
    this.#x = s | 0;
  }

  /** The next window value. */
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x;
    return ((x >>> 8) & 0xffff) | 0x8000;
  }
}
