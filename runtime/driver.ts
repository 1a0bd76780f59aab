/**
 * The one thin driver: runs a sans-IO {@link Connection} on the event loop. It owns the clock,
 * one timer and the way out to the socket; the connection owns every protocol decision.
 *
 * Received datagrams are processed at once (latency); application actions (writes, reads,
 * closes) only mark the connection and run it in a microtask, so that what many streams do in
 * one turn of the event loop leaves as one batch of datagrams.
 *
 * @module
 */

import { PacketBatch } from "../pipeline/packet.ts";
import { StageError } from "../pipeline/stage.ts";
import type { Connection, ConnectionCloseInfo } from "./connection.ts";
import { TunnelStream } from "./stream.ts";

/** What a {@link ConnectionDriver} needs besides its connection. */
export interface DriverOptions {
  /** Sends a batch of encoded datagrams (takes the packets over and empties the batch). */
  send: (batch: PacketBatch) => void;
  /** Millisecond clock (default `performance.now`). */
  clock?: () => number;
}

interface AcceptWaiter {
  resolve: (s: TunnelStream) => void;
  reject: (e: Error) => void;
}

/** Runs one connection: input, timer, output, and its streams. */
export class ConnectionDriver {
  /** The connection. */
  readonly connection: Connection;
  /** Resolves once the connection has closed and released what it held. */
  readonly closed: Promise<ConnectionCloseInfo>;
  readonly #send: (batch: PacketBatch) => void;
  readonly #clock: () => number;
  readonly #streams = new Map<number, TunnelStream>();
  readonly #acceptWaiters: AcceptWaiter[] = [];
  /** Streams waiting for their queue to shrink to a positive limit. */
  readonly #drainWatch = new Set<TunnelStream>();
  readonly #tx = new PacketBatch();
  #resolveClosed!: (info: ConnectionCloseInfo) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #kicked = false;
  #running = false;
  #again = false;
  #finished = false;

  /** Starts driving `connection` (it may already hold streams opened before). */
  constructor(connection: Connection, options: DriverOptions) {
    this.connection = connection;
    this.#send = options.send;
    this.#clock = options.clock ?? (() => performance.now());
    this.closed = new Promise((r) => this.#resolveClosed = r);
    // Arms the timer of a connection nobody uses yet: its keepalive runs from the start.
    this.kick();
  }

  /** Streams alive now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Datagrams from the peer (after any shared packet stages); takes the packets over. */
  input(batch: PacketBatch): void {
    const now = this.#clock();
    const r = this.connection.handleDatagrams(batch, now);
    if (r !== undefined) r.then(this.#onKick, this.#onKick);
    this.#run(now);
  }

  /** Runs the connection soon (after the current task): coalesces application actions. */
  kick(): void {
    if (this.#kicked || this.#finished) return;
    this.#kicked = true;
    queueMicrotask(this.#onKick);
  }

  /** Moves written stream bytes into KCP now, so the writer's buffer is free again. */
  pushOut(): void {
    this.connection.pushOut();
  }

  /** @internal A stream left the connection. */
  forget(id: number): void {
    this.#streams.delete(id);
  }

  /** @internal A stream waits for its queue to shrink to a positive limit. */
  watchDrain(stream: TunnelStream): void {
    this.#drainWatch.add(stream);
  }

  /** Opens a stream; throws a `StageError` when the connection is closed. */
  openStream(): TunnelStream {
    return this.#opened(this.connection.openStream());
  }

  /** Opens a marked stream (see `Connection.openMarkedStream`); throws when closed. */
  openMarkedStream(): TunnelStream {
    return this.#opened(this.connection.openMarkedStream());
  }

  #opened(id: number): TunnelStream {
    const s = new TunnelStream(id, this);
    this.#streams.set(id, s);
    this.kick();
    return s;
  }

  /** The next stream the peer opens; rejects once the connection has closed. */
  acceptStream(): Promise<TunnelStream> {
    if (this.connection.closed) {
      return Promise.reject(new StageError(`smux: ${this.connection.closeInfo?.reason}`));
    }
    const id = this.connection.accept();
    if (id >= 0) {
      this.kick();
      return Promise.resolve(this.#accepted(id));
    }
    return new Promise((resolve, reject) => this.#acceptWaiters.push({ resolve, reject }));
  }

  #accepted(id: number): TunnelStream {
    const s = new TunnelStream(id, this);
    this.#streams.set(id, s);
    return s;
  }

  /** Closes the connection (streams end, a last flush goes out) and waits until it is done. */
  close(reason = "session closed", error = false): Promise<ConnectionCloseInfo> {
    if (!this.#finished) {
      this.connection.close(this.#clock(), reason, error);
      this.#run(this.#clock());
    }
    return this.closed;
  }

  readonly #onKick = (): void => {
    this.#kicked = false;
    this.#run(this.#clock());
  };

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock();
    this.connection.handleTimeout(now);
    this.#run(now);
  };

  /** Sends what is due, tells the streams, hands out accepted streams, re-arms the timer. */
  #run(now: number): void {
    if (this.#finished) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    const conn = this.connection;
    try {
      do {
        this.#again = false;
        conn.pollTransmit(now, this.#tx);
        if (this.#tx.length > 0) this.#send(this.#tx);
        for (let id; (id = conn.takeDirty()) >= 0;) this.#streams.get(id)?.update();
        for (const s of this.#drainWatch) {
          s.update();
          if (!s.drainPending) this.#drainWatch.delete(s);
        }
        while (this.#acceptWaiters.length > 0) {
          const id = conn.accept();
          if (id < 0) break;
          this.#acceptWaiters.shift()!.resolve(this.#accepted(id));
        }
      } while (this.#again);
      if (conn.closed) this.#finish(now);
      else this.#arm(now);
    } finally {
      this.#running = false;
    }
  }

  #arm(now: number): void {
    const due = this.connection.pollTimeout();
    if (due === Infinity) return;
    // A timer already set to fire no later is kept: it re-arms itself when it fires.
    if (this.#timer !== undefined && this.#timerAt <= due) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = due;
    this.#timer = setTimeout(this.#onTimer, due > now ? due - now : 0);
  }

  #finish(now: number): void {
    this.#finished = true;
    const conn = this.connection;
    conn.close(now); // releases what a connection that closed by itself still holds
    conn.pollTransmit(now, this.#tx);
    if (this.#tx.length > 0) this.#send(this.#tx);
    conn.dispose();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const s of [...this.#streams.values()]) s.update();
    this.#drainWatch.clear();
    const info = conn.closeInfo!;
    const err = new StageError(`smux: ${info.reason}`);
    for (const w of this.#acceptWaiters.splice(0)) w.reject(err);
    this.#resolveClosed(info);
  }
}
