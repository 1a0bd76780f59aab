/**
 * A FIFO of non-negative integers below 2^53 (a growable ring over a Float64Array; no `shift`,
 * no allocation per entry). smux queues control frames, pending accepts and changed streams in it.
 *
 * @module
 */

/** Integers in order. */
export class NumberQueue {
  #items = new Float64Array(16);
  #head = 0;
  #count = 0;

  /** Number of queued entries. */
  get length(): number {
    return this.#count;
  }

  /** Appends `v`. */
  push(v: number): void {
    if (this.#count === this.#items.length) {
      const old = this.#items;
      const items = new Float64Array(old.length * 2);
      for (let i = 0; i < this.#count; i++) items[i] = old[(this.#head + i) & (old.length - 1)];
      this.#items = items;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#count) & (this.#items.length - 1)] = v;
    this.#count++;
  }

  /** The front entry without removing it, or -1 when empty. */
  peek(): number {
    return this.#count === 0 ? -1 : this.#items[this.#head];
  }

  /** Removes and returns the front entry, or -1 when empty. */
  shift(): number {
    if (this.#count === 0) return -1;
    const v = this.#items[this.#head];
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#count--;
    return v;
  }

  /** Drops everything. */
  clear(): void {
    this.#head = 0;
    this.#count = 0;
  }
}
