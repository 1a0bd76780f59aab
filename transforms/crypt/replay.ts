/**
 * Replay detection for `aes-128-gcm` datagrams (kcptun-ts, opt-in): a bounded set of the nonces of
 * recently accepted datagrams.
 *
 * kcptun 2026 (and we) give every `aes-128-gcm` datagram 12 random bytes of nonce, and the tag
 * authenticates them, so a datagram whose nonce was already accepted is a copy: a replay by an
 * attacker on the path, or a duplicate made by the network. Random nonces have no order, so there
 * is no counter window to slide (as IPsec or WireGuard have for their sequence numbers): the filter
 * remembers the nonces themselves, exactly (all 96 bits, no false positives), in two generations
 * of an open-addressing hash table. New nonces go into the current generation; when it holds
 * `window` nonces it becomes the previous one and the older previous one is forgotten. So at any
 * time the filter knows at least the last `window` nonces accepted and at most the last
 * 2 × `window`: a copy is caught when fewer than `window` other datagrams were accepted between
 * the original and the copy. Older copies get through, to the protections behind (KCP drops data
 * it already has).
 *
 * Memory: 2 generations × ⌈window / 0.75⌉ slots × 16 bytes (nonce and a generation stamp), about
 * 43 bytes per unit of window, allocated at the first datagram. A generation is emptied by
 * changing its stamp, not by clearing it. Work per datagram: one hash and a short probe (the load
 * is at most 0.75) in each generation.
 *
 * @module
 */

/** Bytes of the nonce the filter keys on (kcptun 2026's `aes-128-gcm` nonce). */
export const REPLAY_NONCE_SIZE = 12;

/** The largest window (nonces per generation): about 171 MiB of tables. */
export const REPLAY_WINDOW_MAX = 1 << 22;

/** Slots per nonce a generation holds, at most: load factor 0.75. */
const SLOTS_PER_NONCE = 4 / 3;

class Generation {
  /** Nonces as three little-endian words per slot. */
  readonly keys: Uint32Array;
  /** A slot is in use when its stamp equals {@link stamp}. */
  readonly stamps: Uint32Array;
  /** Never 0, the stamp of a slot never used. */
  stamp = 1;
  count = 0;

  constructor(readonly slots: number) {
    this.keys = new Uint32Array(slots * 3);
    this.stamps = new Uint32Array(slots);
  }

  /** Forgets every nonce: a stamp no slot has. */
  empty(): void {
    if (this.stamp === 0xffffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    } else {
      this.stamp++;
    }
    this.count = 0;
  }
}

/** An exact set of the nonces of the last `window` (up to 2 × `window`) datagrams. */
export class ReplayFilter {
  /** Nonces per generation: the filter always remembers at least this many of the latest. */
  readonly window: number;
  #current: Generation | null = null;
  #previous: Generation | null = null;

  /** A filter remembering at least the last `window` nonces (1..{@link REPLAY_WINDOW_MAX}). */
  constructor(window: number) {
    if (!Number.isInteger(window) || window < 1 || window > REPLAY_WINDOW_MAX) {
      throw new RangeError(`replay window must be an integer in 1..${REPLAY_WINDOW_MAX}`);
    }
    this.window = window;
  }

  /** Bytes the tables take once the first nonce was checked. */
  get memoryBytes(): number {
    return 2 * this.#slots() * 16;
  }

  #slots(): number {
    return Math.ceil(this.window * SLOTS_PER_NONCE) + 1;
  }

  /**
   * True when the nonce at `buf[off, off + 12)` is one the filter remembers (the datagram is a
   * copy); otherwise remembers it and returns false. Call it only for authenticated datagrams:
   * a forged one must not take a place in the window.
   */
  seenBefore(buf: Uint8Array, off: number): boolean {
    const w0 = word(buf, off), w1 = word(buf, off + 4), w2 = word(buf, off + 8);
    let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(w1 ^ 0x7f4a7c15, 0xc2b2ae35) ^
      Math.imul(w2 ^ 0x165667b1, 0x27d4eb2f);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    h >>>= 0;
    if (this.#current === null) {
      this.#current = new Generation(this.#slots());
      this.#previous = new Generation(this.#slots());
    }
    const prev = this.#previous!;
    if (prev.count > 0 && probe(prev, h, w0, w1, w2) < 0) return true;
    let cur = this.#current;
    const at = probe(cur, h, w0, w1, w2);
    if (at < 0) return true;
    let slot = at;
    if (cur.count >= this.window) {
      // The current generation is full: it becomes the previous one, the old previous one is
      // forgotten and, emptied by a new stamp, takes the new nonces.
      this.#previous = cur;
      cur = this.#current = prev;
      cur.empty();
      slot = probe(cur, h, w0, w1, w2);
    }
    cur.stamps[slot] = cur.stamp;
    cur.keys[slot * 3] = w0;
    cur.keys[slot * 3 + 1] = w1;
    cur.keys[slot * 3 + 2] = w2;
    cur.count++;
    return false;
  }
}

/** Little-endian u32 at `buf[off]`. */
function word(buf: Uint8Array, off: number): number {
  return (buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 | buf[off + 3] << 24) >>> 0;
}

/**
 * Looks for the nonce in `g`: the index of the free slot where it would go, or -1 when it is
 * there. The load stays below 1, so a free slot ends every probe.
 */
function probe(g: Generation, h: number, w0: number, w1: number, w2: number): number {
  const slots = g.slots, stamp = g.stamp, stamps = g.stamps, keys = g.keys;
  let i = h % slots;
  while (stamps[i] === stamp) {
    const k = i * 3;
    if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2) return -1;
    if (++i === slots) i = 0;
  }
  return i;
}
