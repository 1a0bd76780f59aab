/**
 * Runs a {@link SmuxSession} over a reliable byte stream given as a Web Streams pair (KCP's, with
 * snappy between when compression is on), and exposes each smux stream as a Web Streams pair.
 * The driver owns the clock, the one timer and the promises; the session core owns the protocol.
 *
 * Back-pressure, end to end:
 * - a stream's readable is pulled on demand (high-water mark 0), so unread bytes stay in the
 *   session and count against its receive buffer; when that is used up the driver stops reading
 *   the underlying stream (v1 and v2), and in v2 the peer stops at the stream's window first;
 * - a write to a stream resolves once all its bytes left the session as frames; frames go to the
 *   underlying writer only while its `desiredSize` is positive (else the driver awaits `ready`).
 *
 * @module
 */

import { StageError } from "../../pipeline/stage.ts";
import type { SmuxConfig } from "./config.ts";
import { type SmuxRole, SmuxSession, type SmuxStats } from "./session.ts";

/** A reliable byte stream as a Web Streams pair (what KCP, or snappy over KCP, gives). */
export interface ByteStreamPair {
  /** Bytes from the peer. */
  readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  writable: WritableStream<Uint8Array>;
}

/** Options of a {@link SmuxDriver}: the session settings plus role, clock and log. */
export interface SmuxDriverOptions extends Partial<SmuxConfig> {
  /** Client (opens odd stream ids from 3) or server (even ids from 2). */
  role: SmuxRole;
  /** Monotonic clock in ms (default `performance.now`). */
  now?: () => number;
  /** Receives one line per stream opened/accepted/closed and when the session closes. */
  log?: (line: string) => void;
}

/** How a session ended. */
export interface SmuxCloseInfo {
  /** Why, e.g. "session closed", "keepalive timeout", "invalid protocol: unknown command 7". */
  reason: string;
  /** True unless the session was closed locally or its underlying stream ended cleanly. */
  error: boolean;
}

/** One smux stream: a full-duplex byte stream with smux's full-close semantics. */
export interface SmuxStream {
  /** The stream id (odd when the client opened it). */
  readonly id: number;
  /**
   * Bytes from the peer. Ends after the peer's FIN (once buffered bytes are read), after a local
   * close, or when the session closes; errors when the session fails. Cancelling it drops what
   * arrives from then on.
   */
  readonly readable: ReadableStream<Uint8Array>;
  /**
   * Bytes to the peer. Chunks are handed over, not copied: do not modify a chunk after writing
   * it. A write resolves when its bytes left the session. `close()` sends what is queued, then
   * FIN (smux has no half-close: the stream is then closed both ways, though bytes that had
   * already arrived can still be read). Errors when the peer closed the stream or the session
   * ended.
   */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves when the stream has left the session. */
  readonly closed: Promise<void>;
  /** Closes both directions now: queued bytes then FIN are still sent; unread bytes dropped. */
  close(): void;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/**
 * The smux session over `conn`.
 *
 * @example
 * ```ts
 * import { SmuxDriver } from "./driver.ts";
 * // Two sessions back to back over in-memory pipes.
 * const ab = new TransformStream<Uint8Array, Uint8Array>();
 * const ba = new TransformStream<Uint8Array, Uint8Array>();
 * const client = new SmuxDriver({ readable: ba.readable, writable: ab.writable }, { role: "client" });
 * const server = new SmuxDriver({ readable: ab.readable, writable: ba.writable }, { role: "server" });
 * const out = client.openStream();
 * const writer = out.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close();
 * const inbound = await server.acceptStream();
 * for await (const chunk of inbound.readable) console.log(new TextDecoder().decode(chunk));
 * await client.close();
 * await server.close();
 * ```
 */
export class SmuxDriver {
  /** The sans-IO core (for counters; do not drive it directly). */
  readonly session: SmuxSession;
  /** Resolves when the session has ended. */
  readonly closed: Promise<SmuxCloseInfo>;
  readonly #now: () => number;
  readonly #log: ((line: string) => void) | undefined;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #handles = new Map<number, StreamHandle>();
  readonly #acceptWaiters: Waiter<SmuxStream>[] = [];
  #resolveClosed!: (info: SmuxCloseInfo) => void;
  #inputWaiter: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #pumping = false;
  #syncing = false;
  #resync = false;
  #finished = false;

  /** Starts the session over `conn` (reading it, keepalive timer running). */
  constructor(conn: ByteStreamPair, options: SmuxDriverOptions) {
    const { role, now, log, ...config } = options;
    this.#now = now ?? (() => performance.now());
    this.#log = log;
    this.session = new SmuxSession(role, config, this.#now());
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#writer = conn.writable.getWriter();
    this.#reader = conn.readable.getReader();
    this.#writer.closed.catch(this.#onWriteError);
    this.#readLoop();
    this.sync();
  }

  /** Counters: streams opened/accepted/closed, frames and bytes. */
  get stats(): Readonly<SmuxStats> {
    return this.session.stats;
  }

  /** Streams currently in the session. */
  get numStreams(): number {
    return this.session.stats.activeStreams;
  }

  /**
   * Opens a stream (its SYN is queued at once). Throws a `StageError` when the session is closed
   * or out of stream ids.
   */
  openStream(): SmuxStream {
    const id = this.session.openStream();
    const h = this.#wrap(id);
    this.#log?.(`smux: stream ${id} opened`);
    this.sync();
    return h;
  }

  /** The next stream the peer opens; rejects when the session ends. */
  acceptStream(): Promise<SmuxStream> {
    const core = this.session;
    if (core.closed) return Promise.reject(new StageError(`smux: ${core.closeReason}`));
    const id = core.accept();
    if (id >= 0) {
      const h = this.#accepted(id);
      this.sync();
      return Promise.resolve(h);
    }
    return new Promise((resolve, reject) => this.#acceptWaiters.push({ resolve, reject }));
  }

  /**
   * Closes the session now, as smux does: streams end (unsent data is dropped and their pending
   * writes fail), the underlying writable is closed and its readable cancelled.
   */
  async close(): Promise<void> {
    this.session.close("session closed", false);
    this.sync();
    await this.closed;
  }

  #wrap(id: number): StreamHandle {
    const h = new StreamHandle(id, this);
    this.#handles.set(id, h);
    return h;
  }

  #accepted(id: number): StreamHandle {
    const h = this.#wrap(id);
    this.#log?.(`smux: stream ${id} accepted`);
    return h;
  }

  /** @internal Stream gone from the session. */
  _forget(id: number): void {
    if (this.#handles.delete(id)) this.#log?.(`smux: stream ${id} closed`);
  }

  /**
   * @internal Brings the streams, waiters, writer, reader and timer up to date with the core;
   * called after everything that touches the core.
   */
  sync(): void {
    if (this.#syncing) {
      this.#resync = true;
      return;
    }
    this.#syncing = true;
    const core = this.session;
    try {
      do {
        this.#resync = false;
        for (let id; (id = core.takeDirty()) >= 0;) this.#handles.get(id)?.update();
        while (this.#acceptWaiters.length > 0 && core.pendingAccepts > 0) {
          const id = core.accept();
          if (id < 0) break;
          this.#acceptWaiters.shift()!.resolve(this.#accepted(id));
        }
        if (core.closed && !this.#finished) this.#finish();
        if (this.#inputWaiter !== null && (core.wantsInput() || core.closed)) {
          const wake = this.#inputWaiter;
          this.#inputWaiter = null;
          wake();
        }
        if (!this.#pumping && core.hasTransmit()) this.#pump();
      } while (this.#resync);
      this.#schedule();
    } finally {
      this.#syncing = false;
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    const core = this.session;
    const w = this.#writer;
    try {
      for (;;) {
        const room = w.desiredSize;
        if (room === null || core.closed) break;
        if (room <= 0) {
          await w.ready;
          continue;
        }
        const frame = core.pollTransmit();
        if (frame === null) break;
        w.write(frame).catch(this.#onWriteError);
        this.sync();
      }
    } catch (e) {
      this.#onWriteError(e);
    } finally {
      this.#pumping = false;
    }
    if (!core.closed && core.hasTransmit() && w.desiredSize !== null) this.sync();
  }

  readonly #onWriteError = (e: unknown): void => {
    if (this.session.closed) return;
    this.session.close(`underlying stream write failed: ${message(e)}`, true);
    this.sync();
  };

  async #readLoop(): Promise<void> {
    const core = this.session;
    const r = this.#reader;
    try {
      for (;;) {
        if (core.closed) return;
        if (!core.wantsInput()) {
          await new Promise<void>((resolve) => this.#inputWaiter = resolve);
          continue;
        }
        const { value, done } = await r.read();
        if (done) {
          core.receiveEnd();
          this.sync();
          return;
        }
        core.receive(value);
        this.sync();
      }
    } catch (e) {
      if (!core.closed) {
        core.receiveEnd(message(e));
        this.sync();
      }
    }
  }

  #schedule(): void {
    const at = this.session.nextDeadline();
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - this.#now()));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.session.handleTimeout(this.#now());
    this.sync();
  };

  #finish(): void {
    this.#finished = true;
    const core = this.session;
    const info: SmuxCloseInfo = { reason: core.closeReason!, error: core.closeIsError };
    for (const h of [...this.#handles.values()]) h.update();
    const err = new StageError(`smux: ${info.reason}`);
    for (const w of this.#acceptWaiters.splice(0)) w.reject(err);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const closing = info.error ? this.#writer.abort(err) : this.#writer.close();
    closing.catch(() => {});
    this.#reader.cancel().catch(() => {});
    this.#log?.(`smux: session closed: ${info.reason}`);
    this.#resolveClosed(info);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class StreamHandle implements SmuxStream {
  readonly id: number;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  readonly #driver: SmuxDriver;
  readonly #core: SmuxSession;
  #rc!: ReadableStreamDefaultController<Uint8Array>;
  #wc!: WritableStreamDefaultController;
  #pull: (() => void) | null = null;
  #write: Waiter<void> | null = null;
  #closing: Waiter<void> | null = null;
  #resolveClosed!: () => void;
  #readDone = false;
  #writeDone = false;
  #gone = false;
  #peerFin = false;

  constructor(id: number, driver: SmuxDriver) {
    this.id = id;
    this.#driver = driver;
    this.#core = driver.session;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#rc = c;
      },
      pull: () => {
        if (this.#tryPull()) {
          this.#driver.sync();
          return;
        }
        return new Promise<void>((resolve) => this.#pull = resolve);
      },
      cancel: () => {
        this.#readDone = true;
        this.#core.discardReads(this.id);
        this.#maybeClose();
        this.#driver.sync();
      },
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      start: (c) => {
        this.#wc = c;
      },
      write: (chunk) => {
        if (chunk.length === 0) return;
        if (!this.#core.hasStream(this.id) && !this.#core.closed) {
          throw new StageError(`smux: stream ${this.id} closed${this.#peerFin ? " by peer" : ""}`);
        }
        this.#core.write(this.id, chunk);
        this.#driver.sync();
        if (this.#core.queuedBytes(this.id) === 0) {
          const err = this.#failure();
          if (err !== null) throw new StageError(`smux: ${err}`);
          return;
        }
        return new Promise<void>((resolve, reject) => {
          this.#write = { resolve, reject };
          this.update();
        });
      },
      close: () => {
        this.#writeDone = true;
        this.#core.closeStream(this.id);
        this.#driver.sync();
        if (this.#core.finSent(this.id)) return;
        if (this.#core.closed) throw new StageError(`smux: ${this.#core.closeReason}`);
        return new Promise<void>((resolve, reject) => {
          this.#closing = { resolve, reject };
          this.update();
        });
      },
      abort: () => {
        this.#writeDone = true;
        this.#core.abortStream(this.id);
        this.#driver.sync();
      },
    });
  }

  close(): void {
    this.#core.discardReads(this.id);
    this.#core.closeStream(this.id);
    if (!this.#writeDone) {
      this.#writeDone = true;
      this.#wc.error(new StageError("smux: stream closed"));
    }
    this.update();
    this.#driver.sync();
  }

  /**
   * Why writing has failed for good (session gone, written data lost, peer misbehaved), or null.
   * The peer's FIN alone is not a failure: closing the writable is then the normal thing to do,
   * and a write after it fails when attempted.
   */
  #failure(): string | null {
    return this.#core.writeFailure(this.id);
  }

  /** Reads what is there into the readable; true when the pending pull got an answer. */
  #tryPull(): boolean {
    if (this.#readDone) return true;
    const core = this.#core;
    const chunk = core.read(this.id);
    if (chunk !== null) {
      this.#rc.enqueue(chunk);
      return true;
    }
    if (!core.readEnded(this.id)) return false;
    this.#endReadable();
    return true;
  }

  #endReadable(): void {
    const core = this.#core;
    this.#readDone = true;
    if (core.readEndedCleanly(this.id)) this.#rc.close();
    else this.#rc.error(new StageError(`smux: ${core.closeReason}`));
    this.#maybeClose();
  }

  /** @internal Re-reads the core's state of this stream. */
  update(): void {
    const core = this.#core;
    const id = this.id;
    const wake = this.#pull;
    if (wake !== null) {
      // Taken before the pull: enqueueing can run a pipe's write on this same stream, which
      // re-enters update() and must not see (and consume) this waiter again.
      this.#pull = null;
      if (this.#tryPull()) wake();
      else if (this.#pull === null) this.#pull = wake;
    }
    const err = this.#failure();
    if (this.#write !== null) {
      if (err !== null) {
        this.#write.reject(new StageError(`smux: ${err}`));
        this.#write = null;
      } else if (core.queuedBytes(id) === 0) {
        this.#write.resolve();
        this.#write = null;
      }
    }
    if (err !== null && !this.#writeDone) {
      this.#writeDone = true;
      this.#wc.error(new StageError(`smux: ${err}`));
    }
    if (this.#closing !== null) {
      if (core.finSent(id)) {
        this.#closing.resolve();
        this.#closing = null;
      } else if (core.closed) {
        this.#closing.reject(new StageError(`smux: ${core.closeReason}`));
        this.#closing = null;
      }
    }
    this.#maybeClose();
    if (!this.#gone && (core.closed || !core.hasStream(id))) {
      this.#gone = true;
      if (!this.#readDone && this.#pull === null && core.readEnded(id)) {
        // Nobody is reading now: end the readable (there is nothing buffered any more).
        this.#endReadable();
      }
      this.#driver._forget(id);
      this.#resolveClosed();
    }
  }

  /**
   * Reading is over and so is writing (done locally, or pointless after the peer's FIN): close
   * the stream (FIN), as kcptun does when either direction of its copy ends after a FIN.
   */
  #maybeClose(): void {
    const core = this.#core;
    if (!this.#readDone || !core.hasStream(this.id)) return;
    if (core.peerClosed(this.id)) this.#peerFin = true;
    if (this.#writeDone || this.#peerFin) core.closeStream(this.id);
  }
}
