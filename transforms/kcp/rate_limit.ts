/**
 * kcptun 2026's `-ratelimit`: a token bucket over outgoing datagram bytes (parity included), with
 * kcp-go's burst of 64 full datagrams (96000 bytes). Sans-IO: the caller says what time it is.
 *
 * @module
 */

/** kcp-go's burst: 64 datagrams of 1500 bytes. */
export const RATE_LIMIT_BURST = 64 * 1500;

/** A token bucket: `rate` bytes per second, at most `burst` bytes at once. */
export class RateLimiter {
  /** Bytes per second. */
  readonly rate: number;
  /** Largest burst in bytes. */
  readonly burst: number;
  #tokens: number;
  #at: number;

  /** A bucket that starts full at time `now` (ms). */
  constructor(rate: number, now: number, burst: number = RATE_LIMIT_BURST) {
    if (!(rate > 0)) throw new RangeError("rate must be positive");
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  #refill(now: number): void {
    const dt = now - this.#at;
    if (dt > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + dt * this.rate / 1000);
      this.#at = now;
    }
  }

  /** Takes `bytes` tokens if there are enough at `now`; false (and nothing taken) otherwise. */
  take(bytes: number, now: number): boolean {
    this.#refill(now);
    // A datagram larger than the burst may go once the bucket is full, as a token bucket
    // would never admit it otherwise.
    const need = Math.min(bytes, this.burst);
    if (this.#tokens < need) return false;
    this.#tokens -= need;
    return true;
  }

  /** Milliseconds from `now` until `bytes` tokens are there (0 when they already are). */
  waitMs(bytes: number, now: number): number {
    this.#refill(now);
    const missing = Math.min(bytes, this.burst) - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil(missing * 1000 / this.rate);
  }
}
