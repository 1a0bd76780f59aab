/**
 * Pooled KCP segments and the ring buffers that queue them.
 *
 * A {@link KcpSegment} owns a byte buffer at least one datagram long, so that stream mode can top
 * it up in place and so that every segment can be reused for any later one; the
 * {@link SegmentPool} keeps released segments for reuse, the way kcp-go recycles its 1500-byte
 * `xmitBuf` slices. Nothing here allocates once a session has warmed up.
 *
 * @module
 */

import { MAX_DATAGRAM } from "../../pipeline/packet.ts";

/** One data segment held by KCP (queued, in flight, reordering, or waiting to be read). */
export class KcpSegment {
  /** Sequence number. */
  sn = 0;
  /** Timestamp: the sender's clock at the last (re)transmission, or the peer's on receive. */
  ts = 0;
  /** Fragment count (always 0: stream mode). */
  frg = 0;
  /** Current retransmission timeout of this segment (ms). */
  rto = 0;
  /** Transmissions so far. */
  xmit = 0;
  /** Clock value at which the segment is retransmitted if still unacknowledged. */
  resendts = 0;
  /** ACKs seen for later segments sent after this one (drives fast retransmit). */
  fastack = 0;
  /** Acknowledged selectively, waiting for `una` to pass it. */
  acked = false;
  /** Payload length; the payload is `data[0, len)`. */
  len = 0;
  /** Backing store (capacity ≥ one datagram). */
  data: Uint8Array;
  /** Cached `data.subarray(0, view.length)`, rebuilt only when the length changes. */
  view: Uint8Array;

  /** A segment with a `capacity`-byte buffer. */
  constructor(capacity: number) {
    this.data = new Uint8Array(capacity);
    this.view = this.data.subarray(0, 0);
  }

  /** The payload as a view (cached, so full-size segments do not allocate per transmission). */
  payload(): Uint8Array {
    if (this.view.length !== this.len) this.view = this.data.subarray(0, this.len);
    return this.view;
  }
}

/** A free list of {@link KcpSegment}s (kcp-go's `xmitBuf`). */
export class SegmentPool {
  /** Buffer size of new segments. */
  readonly capacity: number;
  readonly #free: KcpSegment[] = [];
  #created = 0;

  /** A pool of segments whose buffers hold `capacity` bytes (default: one full datagram). */
  constructor(capacity: number = MAX_DATAGRAM) {
    this.capacity = capacity;
  }

  /** Segments created so far (free or in use): flat once a session has warmed up. */
  get created(): number {
    return this.#created;
  }

  /** Segments waiting in the free list. */
  get available(): number {
    return this.#free.length;
  }

  /** A reset segment whose buffer holds at least `minCapacity` bytes. */
  acquire(minCapacity: number): KcpSegment {
    let s = this.#free.pop();
    if (s === undefined) {
      this.#created++;
      s = new KcpSegment(Math.max(this.capacity, minCapacity));
    } else if (s.data.length < minCapacity) {
      // Only after an MTU above the pool's capacity; rare, so a fresh buffer is fine.
      s.data = new Uint8Array(minCapacity);
      s.view = s.data.subarray(0, 0);
    }
    s.sn = 0;
    s.ts = 0;
    s.frg = 0;
    s.rto = 0;
    s.xmit = 0;
    s.resendts = 0;
    s.fastack = 0;
    s.acked = false;
    s.len = 0;
    return s;
  }

  /** Returns a segment; the caller must not touch it afterwards. */
  release(s: KcpSegment): void {
    this.#free.push(s);
  }
}

/** The pool Kcp instances share unless given another. */
export const defaultSegmentPool: SegmentPool = new SegmentPool();

/** A growable FIFO of segments over a power-of-two ring (no `Array.prototype.shift`). */
export class SegmentRing {
  #items: (KcpSegment | undefined)[];
  #head = 0;
  #size = 0;
  #mask: number;

  /** An empty ring with room for `capacity` (rounded up to a power of two) before it grows. */
  constructor(capacity = 16) {
    let c = 4;
    while (c < capacity) c <<= 1;
    this.#items = new Array(c).fill(undefined);
    this.#mask = c - 1;
  }

  /** Number of queued segments. */
  get size(): number {
    return this.#size;
  }

  /** The i-th segment from the front (0 ≤ i < size). */
  at(i: number): KcpSegment {
    return this.#items[(this.#head + i) & this.#mask]!;
  }

  /** The oldest segment, or undefined when empty. */
  first(): KcpSegment | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** The newest segment, or undefined when empty. */
  last(): KcpSegment | undefined {
    return this.#size === 0 ? undefined : this.#items[(this.#head + this.#size - 1) & this.#mask];
  }

  /** Appends at the back. */
  push(s: KcpSegment): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & this.#mask] = s;
    this.#size++;
  }

  /** Removes and returns the oldest segment (the ring must not be empty). */
  shift(): KcpSegment {
    const s = this.#items[this.#head]!;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return s;
  }

  #grow(): void {
    const old = this.#items;
    const n = old.length;
    const next = new Array<KcpSegment | undefined>(n * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#head = 0;
    this.#mask = n * 2 - 1;
  }
}
