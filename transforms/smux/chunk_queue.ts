/**
 * A FIFO of byte chunks (a growable ring, no `shift`), read from the front in pieces. smux uses
 * it for each stream's receive and send buffers and for unparsed input.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);

/** Byte chunks in order; {@link bytes} counts what is unread. */
export class ChunkQueue {
  #items: (Uint8Array | undefined)[] = new Array(4);
  #head = 0;
  #count = 0;
  /** Bytes of the head chunk already read. */
  #offset = 0;
  #bytes = 0;

  /** Unread bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends a chunk (kept by reference; empty chunks are ignored). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#count === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#count) & (this.#items.length - 1)] = chunk;
    this.#count++;
    this.#bytes += chunk.length;
  }

  /** Length of the unread part of the front chunk (0 when empty). */
  frontLength(): number {
    return this.#count === 0 ? 0 : this.#items[this.#head]!.length - this.#offset;
  }

  /**
   * Removes and returns up to `max` bytes from the front chunk only: the chunk itself when it is
   * taken whole, else a view of it.
   */
  shift(max: number = Infinity): Uint8Array {
    if (this.#count === 0) return EMPTY;
    const chunk = this.#items[this.#head]!;
    const off = this.#offset;
    const left = chunk.length - off;
    if (left <= max) {
      this.#dropFront();
      this.#bytes -= left;
      return off === 0 ? chunk : chunk.subarray(off);
    }
    this.#offset = off + max;
    this.#bytes -= max;
    return chunk.subarray(off, off + max);
  }

  /**
   * Removes and returns exactly `n` bytes (n ≤ {@link bytes}). When they lie in the front chunk
   * and are at least half of its underlying buffer, the result is a view of it; otherwise a copy
   * (so a small view never keeps a large buffer alive).
   */
  take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    const chunk = this.#items[this.#head]!;
    const off = this.#offset;
    if (chunk.length - off >= n && 2 * n >= chunk.buffer.byteLength) return this.shift(n);
    const out = new Uint8Array(n);
    this.copyInto(out, 0, n);
    return out;
  }

  /** Removes `n` bytes (n ≤ {@link bytes}) from the front, copying them into `dst` at `at`. */
  copyInto(dst: Uint8Array, at: number, n: number): void {
    while (n > 0) {
      const chunk = this.#items[this.#head]!;
      const off = this.#offset;
      const k = Math.min(n, chunk.length - off);
      if (k < 16) {
        for (let i = 0; i < k; i++) dst[at + i] = chunk[off + i];
      } else {
        dst.set(chunk.subarray(off, off + k), at);
      }
      at += k;
      n -= k;
      this.#bytes -= k;
      if (off + k === chunk.length) this.#dropFront();
      else this.#offset = off + k;
    }
  }

  /** Drops everything; returns how many unread bytes there were. */
  clear(): number {
    const n = this.#bytes;
    this.#items.fill(undefined);
    this.#head = 0;
    this.#count = 0;
    this.#offset = 0;
    this.#bytes = 0;
    return n;
  }

  #dropFront(): void {
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#count--;
    this.#offset = 0;
  }

  #grow(): void {
    const old = this.#items;
    const items: (Uint8Array | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.#count; i++) items[i] = old[(this.#head + i) & (old.length - 1)];
    this.#items = items;
    this.#head = 0;
  }
}
