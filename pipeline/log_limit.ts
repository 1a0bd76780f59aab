/**
 * Rate-limited log lines: a flood (garbage datagrams from many sources, a port scanner resetting
 * connections, a server that is not there) must not turn into one log line per event.
 *
 * Lines are grouped by a `kind` the caller names (the constant start of the line, such as
 * `remote address:`). Each kind may log `max` lines per `windowMs`; further lines of that kind
 * in the same window are counted, and once the window is over one summary line says how many
 * were left out: `(… 37 similar "remote address:" lines suppressed)`. The summary is written
 * by a timer at the end of the window, so it appears even when the flood stops; the timer does
 * not keep the process alive, and {@link LineLimiter.close} writes what is pending and stops it.
 *
 * @module
 */

/** Options of {@link LineLimiter}. */
export interface LineLimitOptions {
  /** Lines of one kind logged per window (default 10). */
  max?: number;
  /** Window length in ms (default 1000). */
  windowMs?: number;
  /** Write the `(… N similar lines suppressed)` summaries (default true). */
  summary?: boolean;
  /** Clock in ms (default `performance.now`). */
  clock?: () => number;
}

interface KindState {
  /** Start of the current window (ms). */
  start: number;
  /** Lines logged in it. */
  logged: number;
  /** Lines left out in it. */
  suppressed: number;
  /** Summary timer, while lines are being left out. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Per-kind rate limiting of log lines (see the module docs). */
export class LineLimiter {
  readonly #log: (line: string) => void;
  readonly #max: number;
  readonly #windowMs: number;
  readonly #summary: boolean;
  readonly #clock: () => number;
  readonly #kinds = new Map<string, KindState>();
  #closed = false;

  /** Limits the lines written to `log`. */
  constructor(log: (line: string) => void, options: LineLimitOptions = {}) {
    this.#log = log;
    this.#max = options.max ?? 10;
    this.#windowMs = options.windowMs ?? 1000;
    this.#summary = options.summary ?? true;
    this.#clock = options.clock ?? (() => performance.now());
    if (!(this.#max >= 1) || !(this.#windowMs > 0)) {
      throw new RangeError("LineLimiter: max must be ≥ 1 and windowMs > 0");
    }
  }

  /**
   * Logs `line` unless `kind` has used up its lines in the current window; returns whether it
   * was logged. After {@link LineLimiter.close} lines pass unlimited (nothing would summarise).
   */
  line(kind: string, line: string): boolean {
    if (this.#closed) {
      this.#log(line);
      return true;
    }
    const now = this.#clock();
    let s = this.#kinds.get(kind);
    if (s === undefined) {
      s = { start: now, logged: 0, suppressed: 0, timer: undefined };
      this.#kinds.set(kind, s);
    } else if (now - s.start >= this.#windowMs) {
      this.#endWindow(kind, s);
      s.start = now;
    }
    if (s.logged < this.#max) {
      s.logged++;
      this.#log(line);
      return true;
    }
    s.suppressed++;
    if (s.timer === undefined && this.#summary) {
      const wait = Math.max(0, s.start + this.#windowMs - now);
      const timer = setTimeout(() => {
        s.timer = undefined;
        this.#endWindow(kind, s);
        // The next line of this kind opens a new window.
        s.start = -Infinity;
      }, wait);
      Deno.unrefTimer(timer);
      s.timer = timer;
    }
    return false;
  }

  /** Lines of `kind` left out and not yet summarised. */
  suppressed(kind: string): number {
    return this.#kinds.get(kind)?.suppressed ?? 0;
  }

  /** Writes the pending summaries and stops the timers; later lines are not limited. */
  close(): void {
    if (this.#closed) return;
    for (const [kind, s] of this.#kinds) this.#endWindow(kind, s);
    this.#kinds.clear();
    this.#closed = true;
  }

  #endWindow(kind: string, s: KindState): void {
    if (s.timer !== undefined) {
      clearTimeout(s.timer);
      s.timer = undefined;
    }
    const n = s.suppressed;
    s.logged = 0;
    s.suppressed = 0;
    if (n > 0 && this.#summary) {
      this.#log(`(… ${n} similar "${kind}" line${n === 1 ? "" : "s"} suppressed)`);
    }
  }
}
