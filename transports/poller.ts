/**
 * One readiness poller per process: a single `epoll_wait` call at a time on a thread of Deno's
 * blocking pool, for every descriptor the transports own.
 *
 * Why not a blocking receive per socket on its own thread? Deno's blocking pool is small (32
 * threads were seen here) and is shared with every async file-system op: 32 sockets each parked
 * in `recvmmsg` starved `Deno.readTextFile` outright, and a socket whose call was queued behind
 * them received nothing. With one poller the pool holds one thread whatever the socket count, and
 * the reads themselves are synchronous, non-blocking calls on the JS thread.
 *
 * Level-triggered `EPOLLIN`: a callback that leaves data in its socket (to be fair to the others)
 * is simply called again on the next wakeup. An `eventfd` wakes the waiting call when the last
 * descriptor is removed, so nothing stays pending once every socket is closed.
 *
 * @module
 */

import {
  C,
  EPOLL_EVENT_DATA,
  EPOLL_EVENT_SIZE,
  Errno,
  type Libc,
  loadLibc,
  pointerOf,
} from "./libc.ts";

/**
 * Batches a readiness callback reads before it returns, so that one busy descriptor cannot
 * starve the others: level-triggered, what it leaves makes the poller call it again.
 */
export const DRAIN_ROUNDS = 4;

/** Events fetched per `epoll_wait` call. */
const MAX_EVENTS = 256;
/** The token of the wake-up eventfd; descriptor tokens start above it. */
const WAKE = 0;

/** Readiness callbacks for file descriptors, driven by one `epoll_wait` loop. */
export class Poller {
  readonly #libc: Libc;
  readonly #epfd: number;
  readonly #wakefd: number;
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  readonly #eventsPtr: Deno.PointerObject;
  readonly #handlers = new Map<number, () => void>();
  readonly #eventfdBuf = new Uint8Array(8);
  #nextToken = WAKE + 1;
  #loop: Promise<void> | null = null;
  #idle: (() => void)[] = [];
  #wakes = 0;
  #error: string | null = null;

  /** Makes an epoll instance and its wake-up eventfd (use {@link sharedPoller} normally). */
  constructor(libc: Libc = loadLibc()) {
    this.#libc = libc;
    const sym = libc.symbols;
    this.#epfd = sym.epoll_create1(C.EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(libc.describe("epoll_create1"));
    this.#wakefd = sym.eventfd(0, C.EFD_CLOEXEC | C.EFD_NONBLOCK);
    if (this.#wakefd < 0) throw new Error(libc.describe("eventfd"));
    this.#ctl(C.EPOLL_CTL_ADD, this.#wakefd, WAKE);
    this.#events = new Uint8Array(new ArrayBuffer(MAX_EVENTS * EPOLL_EVENT_SIZE));
    this.#eventsView = new DataView(this.#events.buffer);
    this.#eventsPtr = pointerOf(this.#events);
  }

  /** Descriptors being watched. */
  get size(): number {
    return this.#handlers.size;
  }

  /** True while an `epoll_wait` call is pending or its results are being handled. */
  get running(): boolean {
    return this.#loop !== null;
  }

  /** Why the loop stopped on its own (an epoll failure), or `null`. */
  get error(): string | null {
    return this.#error;
  }

  /** Completed `epoll_wait` calls (for benchmarks: wakeups). */
  get wakeups(): number {
    return this.#wakes;
  }

  /**
   * Calls `onReadable` (on the JS thread) whenever `fd` has data, until {@link Poller.remove}.
   * Returns the token that removes it. Throws with errno text if epoll refuses the descriptor.
   */
  add(fd: number, onReadable: () => void): number {
    const token = this.#nextToken++;
    this.#ctl(C.EPOLL_CTL_ADD, fd, token);
    this.#handlers.set(token, onReadable);
    // Whoever waits for the loop to go idle need not: the pending call now serves this fd.
    this.#settleIdle();
    if (this.#loop === null) this.#loop = this.#run();
    return token;
  }

  /**
   * Stops watching `fd` (call it before closing the descriptor). Resolves once the poller no
   * longer touches it; when it was the last descriptor, once the pending `epoll_wait` has
   * returned, so no call outlives the last socket.
   */
  async remove(fd: number, token: number): Promise<void> {
    if (!this.#handlers.delete(token)) return;
    this.#libc.symbols.epoll_ctl(this.#epfd, C.EPOLL_CTL_DEL, fd, new Uint8Array(16));
    if (this.#handlers.size === 0 && this.#loop !== null) {
      const one = new Uint8Array(8);
      one[0] = 1;
      this.#libc.symbols.write(this.#wakefd, one, 8n);
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
  }

  #settleIdle(): void {
    const waiting = this.#idle;
    if (waiting.length === 0) return;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }

  #ctl(op: number, fd: number, token: number): void {
    const ev = new Uint8Array(16);
    const v = new DataView(ev.buffer);
    v.setUint32(0, C.EPOLLIN, true);
    v.setUint32(EPOLL_EVENT_DATA, token, true);
    if (this.#libc.symbols.epoll_ctl(this.#epfd, op, fd, ev) < 0) {
      throw new Error(this.#libc.describe(`epoll_ctl(fd ${fd})`));
    }
  }

  async #run(): Promise<void> {
    const sym = this.#libc.symbols, view = this.#eventsView, handlers = this.#handlers;
    try {
      while (handlers.size > 0) {
        let n = await sym.epoll_waitAsync(this.#epfd, this.#eventsPtr, MAX_EVENTS, -1);
        this.#wakes++;
        if (n < 0) {
          // errno stayed on the pool thread: ask again here without waiting to learn it.
          n = sym.epoll_wait(this.#epfd, this.#eventsPtr, MAX_EVENTS, 0);
          if (n < 0) {
            const e = this.#libc.errno();
            if (e === Errno.EINTR) continue;
            this.#error = this.#libc.describe("epoll_wait", e);
            return;
          }
        }
        for (let i = 0; i < n; i++) {
          const token = view.getUint32(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA, true);
          if (token === WAKE) {
            sym.read(this.#wakefd, this.#eventfdBuf, 8n);
            continue;
          }
          const h = handlers.get(token); // absent if removed since the call began
          if (h === undefined) continue;
          try {
            h();
          } catch {
            // a handler's failure is its socket's business; keep serving the others
          }
        }
      }
    } finally {
      this.#loop = null;
      this.#settleIdle();
    }
  }
}

let shared: Poller | null = null;

/** The process-wide poller (made on first use). */
export function sharedPoller(libc: Libc = loadLibc()): Poller {
  shared ??= new Poller(libc);
  return shared;
}
