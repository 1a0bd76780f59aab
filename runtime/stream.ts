/**
 * One smux stream of a running tunnel connection, as the application sees it: a fast
 * promise-light interface for the relay (copy what is buffered into your buffer, wait only when
 * there is nothing), and, on first use, the {@link Duplex} Web Streams view for everyone else.
 *
 * smux has no half-close: {@link TunnelStream.closeWrite} sends what is queued and then FIN,
 * after which the peer drops the stream; bytes that had already arrived can still be read.
 *
 * @module
 */

import type { Duplex } from "../pipeline/duplex.ts";
import { StageError } from "../pipeline/stage.ts";
import type { Connection } from "./connection.ts";

/** What a stream needs from the driver that runs its connection. */
export interface StreamHost {
  /** The connection. */
  readonly connection: Connection;
  /** Something changed on the application side: run the connection soon. */
  kick(): void;
  /** Moves written bytes into KCP now (so a writer may reuse its buffer), without sending. */
  pushOut(): void;
  /** The stream left the connection. */
  forget(id: number): void;
  /**
   * The stream waits for its queue to shrink to a positive limit, which smux does not signal
   * (it marks a stream only once its queue is empty): call its `update()` on every run until
   * `drainPending` is false.
   */
  watchDrain(stream: TunnelStream): void;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One smux stream. */
export class TunnelStream implements Duplex {
  /** The smux stream id (odd when the client opened it). */
  readonly id: number;
  /** Resolves when the stream has left the connection. */
  readonly closed: Promise<void>;
  readonly #host: StreamHost;
  readonly #conn: Connection;
  #readWaiter: (() => void) | null = null;
  #drain: Waiter | null = null;
  #drainLimit = 0;
  #fin: Waiter | null = null;
  #resolveClosed!: () => void;
  #gone = false;
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  /** Use the driver's `openStream`/`acceptStream`. */
  constructor(id: number, host: StreamHost) {
    this.id = id;
    this.#host = host;
    this.#conn = host.connection;
    this.closed = new Promise((r) => this.#resolveClosed = r);
  }

  // ---------------------------------------------------------------- reading

  /** The next buffered chunk (the caller owns it), or null when nothing is buffered. */
  read(max?: number): Uint8Array | null {
    const chunk = this.#conn.read(this.id, max);
    if (chunk !== null) this.#host.kick(); // returned tokens may reopen windows
    return chunk;
  }

  /** Copies buffered bytes into `dst` from `offset` and returns how many (0: none buffered). */
  readInto(dst: Uint8Array, offset = 0): number {
    const conn = this.#conn, id = this.id;
    let at = offset;
    while (at < dst.length) {
      const chunk = conn.read(id, dst.length - at);
      if (chunk === null) break;
      dst.set(chunk, at);
      at += chunk.length;
    }
    if (at > offset) this.#host.kick();
    return at - offset;
  }

  /** True when nothing more will ever be read. */
  get readEnded(): boolean {
    return this.#conn.readEnded(this.id);
  }

  /** Why reading ended badly (session failure, a stage's decode error), or null. */
  get readFailure(): string | null {
    return this.#conn.readFailure(this.id);
  }

  /** Resolves once something can be read or reading has ended. */
  waitReadable(): Promise<void> {
    if (this.#conn.readableBytes(this.id) > 0 || this.readEnded) return Promise.resolve();
    return new Promise((r) => this.#readWaiter = r);
  }

  /** Stops reading: what is buffered and what arrives from now on is dropped. */
  discardReads(): void {
    this.#conn.discardReads(this.id);
    this.update();
    this.#host.kick();
  }

  // ---------------------------------------------------------------- writing

  /**
   * Queues `bytes` (taken over: do not modify them until {@link queued} is back to 0). Throws a
   * `StageError` when the stream can no longer be written.
   */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#conn.write(this.id, bytes);
    this.#host.pushOut();
    this.#host.kick();
  }

  /**
   * True when a writer may reuse a buffer once {@link queued} is back to 0: no per-stream stage
   * may keep a view of it.
   */
  get buffersReusable(): boolean {
    return !this.#conn.hasStreamStages;
  }

  /** Written bytes not yet handed to KCP (smux's queue for this stream). */
  get queued(): number {
    return this.#conn.queuedBytes(this.id);
  }

  /** Why writing failed for good (session gone, data lost), or null. */
  get writeFailure(): string | null {
    return this.#conn.writeFailure(this.id);
  }

  /**
   * Resolves once at most `limit` written bytes wait in the queue; rejects when writing failed
   * for good.
   */
  waitDrained(limit = 0): Promise<void> {
    const failure = this.writeFailure;
    if (failure !== null) return Promise.reject(new StageError(`smux: ${failure}`));
    if (this.queued <= limit || !this.#conn.hasStream(this.id)) return Promise.resolve();
    this.#drainLimit = limit;
    const p = new Promise<void>((resolve, reject) => this.#drain = { resolve, reject });
    if (limit > 0) this.#host.watchDrain(this);
    return p;
  }

  /** @internal True while a {@link waitDrained} waits. */
  get drainPending(): boolean {
    return this.#drain !== null;
  }

  /** Sends what is queued, then FIN (the whole stream closes; buffered input stays readable). */
  closeWrite(): void {
    this.#conn.closeStream(this.id);
    this.#host.kick();
  }

  /** Resolves once FIN went out; rejects when the session closed first. */
  waitFinSent(): Promise<void> {
    if (this.#conn.finSent(this.id)) return Promise.resolve();
    if (this.#conn.closed) {
      return Promise.reject(new StageError(`smux: ${this.#conn.closeInfo?.reason}`));
    }
    return new Promise((resolve, reject) => this.#fin = { resolve, reject });
  }

  /** Closes both directions now: unread bytes are dropped, queued bytes then FIN still go. */
  close(): void {
    this.#conn.discardReads(this.id);
    this.#conn.closeStream(this.id);
    this.update();
    this.#host.kick();
  }

  // ---------------------------------------------------------------- driver side

  /** @internal The connection says this stream's state changed. */
  update(): void {
    const conn = this.#conn, id = this.id;
    const r = this.#readWaiter;
    if (r !== null && (conn.readableBytes(id) > 0 || conn.readEnded(id))) {
      this.#readWaiter = null;
      r();
    }
    const d = this.#drain;
    if (d !== null) {
      const failure = conn.writeFailure(id);
      if (failure !== null) {
        this.#drain = null;
        d.reject(new StageError(`smux: ${failure}`));
      } else if (conn.queuedBytes(id) <= this.#drainLimit || !conn.hasStream(id)) {
        this.#drain = null;
        d.resolve();
      }
    }
    const f = this.#fin;
    if (f !== null) {
      if (conn.finSent(id)) {
        this.#fin = null;
        f.resolve();
      } else if (conn.closed) {
        this.#fin = null;
        f.reject(new StageError(`smux: ${conn.closeInfo?.reason}`));
      }
    }
    if (!this.#gone && (conn.closed || !conn.hasStream(id))) {
      this.#gone = true;
      this.#host.forget(id);
      this.#resolveClosed();
    }
  }

  // ---------------------------------------------------------------- Web Streams view

  /**
   * Bytes from the peer. Ends after the peer's FIN (once buffered bytes are read) or a local
   * close; errors when the session fails. Cancelling it drops what arrives from then on.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const chunk = this.read();
          if (chunk !== null) return controller.enqueue(chunk);
          if (this.readEnded) {
            const failure = this.readFailure;
            if (failure !== null) controller.error(new StageError(failure));
            else controller.close();
            return;
          }
          await this.waitReadable();
        }
      },
      cancel: () => this.discardReads(),
    }, { highWaterMark: 0 });
  }

  /**
   * Bytes to the peer. Chunks are handed over, not copied. A write resolves when its bytes went
   * into KCP; `close()` resolves once FIN went out (the stream is then closed both ways).
   */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => {
        this.write(chunk);
        return this.waitDrained(0);
      },
      close: () => {
        this.closeWrite();
        return this.waitFinSent();
      },
      abort: () => {
        this.#conn.abortStream(this.id);
        this.#host.kick();
      },
    });
  }
}
