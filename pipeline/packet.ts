/**
 * Packets and batches: the unit that crosses packet stages.
 *
 * A {@link Packet} is a window `[start, end)` over a pooled backing buffer that keeps free bytes in
 * front (headroom) and behind, so that each layer can write its header in place on the way to the
 * wire and strip it on the way back without copying. Packets and their buffers are recycled through
 * a {@link PacketPool}; a {@link PacketBatch} is a reusable list of packets. Nothing here allocates
 * per packet once the pool and the batch arrays have warmed up.
 *
 * Ownership rule: whoever holds a batch owns its packets. A stage that wants to keep a packet's
 * bytes beyond the call copies them (FEC keeps shards this way); a stage that drops a packet
 * removes it from the batch and releases it to the pool; a stage that creates packets (FEC parity,
 * recovered shards) acquires them from the pool and appends them to the batch.
 *
 * @module
 */

/** Largest datagram kcptun sends or accepts (kcp-go's receive buffer is 1500 bytes). */
export const MAX_DATAGRAM = 1500;

/** Default free bytes in front of a fresh packet: crypt 20 + FEC 8 + room for plugins. */
export const DEFAULT_HEADROOM = 64;

/** Default total size of a pooled buffer: headroom, a full datagram, and tail room (AEAD tags). */
export const DEFAULT_CAPACITY = 2048;

/** Bits of {@link Packet.flags}. */
export const PacketFlags = {
  /** Rebuilt by FEC rather than received: KCP must not take its window or RTT sample. */
  Recovered: 1,
} as const;

/** An opaque peer address interned by a transport, so packets can carry it without allocation. */
export interface PeerAddress {
  /** Address family of the peer. */
  readonly family: "ipv4" | "ipv6" | "unix";
  /** Host as text (`127.0.0.1`, `::1`). */
  readonly hostname: string;
  /** Port number (0 for unix). */
  readonly port: number;
  /** `host:port` (IPv6 in brackets), the key kcptun uses for server sessions. */
  readonly key: string;
}

/**
 * One datagram (or one datagram-to-be) living in a pooled buffer.
 *
 * Hot paths work on `buffer` between `start` and `end` directly; {@link Packet.bytes} makes a view
 * and is meant for tests and cold paths.
 */
export class Packet {
  /** The whole backing store; the payload is `buffer[start, end)`. */
  readonly buffer: Uint8Array;
  /** A DataView over the whole backing store, for little-endian header fields. */
  readonly view: DataView;
  /** Offset of the first payload byte. */
  start: number;
  /** Offset one past the last payload byte. */
  end: number;
  /** {@link PacketFlags} bits. */
  flags = 0;
  /** Source (on receive) or destination (on send) when the transport serves many peers. */
  peer: PeerAddress | null = null;
  /** The pool this packet returns to, or null when it was wrapped around caller memory. */
  readonly pool: PacketPool | null;

  /** Wraps `buffer`; the payload starts empty at `headroom`. */
  constructor(buffer: Uint8Array, headroom: number, pool: PacketPool | null = null) {
    this.buffer = buffer;
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    this.start = headroom;
    this.end = headroom;
    this.pool = pool;
  }

  /** Payload length in bytes. */
  get length(): number {
    return this.end - this.start;
  }

  /** Free bytes in front of the payload. */
  get headroom(): number {
    return this.start;
  }

  /** Free bytes behind the payload. */
  get tailroom(): number {
    return this.buffer.length - this.end;
  }

  /** A view of the payload (allocates a view: not for per-packet hot paths). */
  bytes(): Uint8Array {
    return this.buffer.subarray(this.start, this.end);
  }

  /**
   * Grows the payload by `n` bytes at the front and returns the new `start`, where the caller
   * writes its header. When the headroom is too small the payload is moved back first.
   */
  prepend(n: number): number {
    if (this.start < n) {
      const shift = n - this.start;
      if (this.end + shift > this.buffer.length) {
        throw new RangeError(`packet full: cannot prepend ${n} bytes`);
      }
      this.buffer.copyWithin(this.start + shift, this.start, this.end);
      this.start += shift;
      this.end += shift;
    }
    this.start -= n;
    return this.start;
  }

  /** Grows the payload by `n` bytes at the back and returns the offset where they start. */
  append(n: number): number {
    if (this.end + n > this.buffer.length) {
      throw new RangeError(`packet full: cannot append ${n} bytes`);
    }
    const at = this.end;
    this.end += n;
    return at;
  }

  /** Empties the payload, leaving `headroom` free bytes in front. */
  reset(headroom: number): void {
    this.start = headroom;
    this.end = headroom;
    this.flags = 0;
    this.peer = null;
  }

  /** Replaces the payload with a copy of `data`, keeping `headroom` free bytes in front. */
  set(data: Uint8Array, headroom: number = this.pool?.headroom ?? DEFAULT_HEADROOM): this {
    if (headroom + data.length > this.buffer.length) {
      throw new RangeError(`packet full: ${data.length} bytes do not fit`);
    }
    this.buffer.set(data, headroom);
    this.start = headroom;
    this.end = headroom + data.length;
    return this;
  }

  /** Returns the packet to its pool (no-op for wrapped packets). */
  release(): void {
    this.pool?.release(this);
  }
}

/** A free list of equally sized packets. */
export class PacketPool {
  /** Size of each backing buffer. */
  readonly capacity: number;
  /** Free bytes in front of a freshly acquired packet. */
  readonly headroom: number;
  readonly #free: Packet[] = [];
  #created = 0;

  /** A pool of `capacity`-byte packets that start with `headroom` free bytes in front. */
  constructor(capacity: number = DEFAULT_CAPACITY, headroom: number = DEFAULT_HEADROOM) {
    if (headroom >= capacity) throw new RangeError("headroom must be smaller than capacity");
    this.capacity = capacity;
    this.headroom = headroom;
  }

  /** Packets created so far (free or in use). */
  get created(): number {
    return this.#created;
  }

  /** Packets waiting in the free list. */
  get available(): number {
    return this.#free.length;
  }

  /** Takes an empty packet (payload at `headroom`, no flags, no peer). */
  acquire(): Packet {
    const p = this.#free.pop();
    if (p !== undefined) return p;
    this.#created++;
    return new Packet(new Uint8Array(this.capacity), this.headroom, this);
  }

  /** Gives a packet back; it must not be used afterwards. */
  release(p: Packet): void {
    if (p.pool !== this) return;
    p.reset(this.headroom);
    this.#free.push(p);
  }

  /** A packet holding a copy of `data`. */
  from(data: Uint8Array): Packet {
    return this.acquire().set(data, this.headroom);
  }
}

/** The process-wide pool that stages use unless given another. */
export const defaultPool: PacketPool = new PacketPool();

/**
 * A reusable list of packets. `packets[0 .. length)` are live; the array keeps its capacity across
 * {@link PacketBatch.clear} so steady-state use allocates nothing.
 */
export class PacketBatch {
  /** Backing array; only the first {@link PacketBatch.length} entries are live. */
  readonly packets: Packet[] = [];
  /** Number of live packets. */
  length = 0;

  /** Adds a packet at the end. */
  push(p: Packet): void {
    if (this.length < this.packets.length) this.packets[this.length] = p;
    else this.packets.push(p);
    this.length++;
  }

  /** The i-th live packet. */
  at(i: number): Packet {
    return this.packets[i];
  }

  /** Forgets every packet without releasing it (the caller took them over). */
  clear(): void {
    this.length = 0;
  }

  /** Releases every packet to its pool and empties the batch. */
  releaseAll(): void {
    for (let i = 0; i < this.length; i++) this.packets[i].release();
    this.length = 0;
  }

  /**
   * Keeps the packets for which `keep` is true, in order, and releases the others to their pool.
   * One call per batch, not per packet, so the callback is the only closure involved.
   */
  retain(keep: (p: Packet) => boolean): void {
    let j = 0;
    for (let i = 0; i < this.length; i++) {
      const p = this.packets[i];
      if (keep(p)) this.packets[j++] = p;
      else p.release();
    }
    this.length = j;
  }

  /** Moves every packet of `other` to the end of this batch and empties `other`. */
  takeAll(other: PacketBatch): void {
    for (let i = 0; i < other.length; i++) this.push(other.packets[i]);
    other.length = 0;
  }
}
