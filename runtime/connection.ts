/**
 * One tunnel connection as a sans-IO state machine: a KCP conversation with its packet stages
 * below, its session stream stages (snappy) and smux session above, and per-stream stages over
 * each smux stream. Datagrams go in through {@link Connection.handleDatagrams}, time through
 * {@link Connection.handleTimeout} at {@link Connection.pollTimeout}, datagrams to send come out
 * of {@link Connection.pollTransmit}; applications act on smux streams by id. No sockets, no
 * clock, no timers: a driver (`driver.ts`) owns those, so the whole stack also runs under a
 * simulated network and a fake clock (`tests/sim`).
 *
 * Data moves between the layers synchronously inside each call, with back-pressure both ways:
 * - smux frames enter KCP only while KCP's send window has room, so a slow link leaves written
 *   bytes queued in smux, where a writer sees them ({@link Connection.queuedBytes});
 * - KCP's delivered bytes enter smux only while smux wants input (its receive buffer has
 *   tokens), so unread stream data closes KCP's receive window and stops the peer.
 *
 * Packet stages may be asynchronous (a plugin's promise): input batches then queue in order
 * behind the pending one, encoded output lands in the outbox when ready, and `onWake` tells the
 * driver to poll again. The built-in stages are synchronous and never take that path.
 *
 * @module
 */

import { PacketBatch, PacketFlags, type PacketPool } from "../pipeline/packet.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import {
  type ByteSink,
  type PacketStage,
  StageError,
  type StreamStage,
} from "../pipeline/stage.ts";
import { Kcp, type KcpOptions } from "../transforms/kcp/arq.ts";
import { RateLimiter } from "../transforms/kcp/rate_limit.ts";
import { ChunkQueue } from "../transforms/smux/chunk_queue.ts";
import type { SmuxConfig } from "../transforms/smux/config.ts";
import { HEADER_SIZE as SMUX_HEADER_SIZE } from "../transforms/smux/frame.ts";
import { type SmuxRole, SmuxSession } from "../transforms/smux/session.ts";

/** The largest chunk taken from KCP's receive queue at once. */
const READ_CHUNK = 65536;

/** KCP settings of a connection (kcptun's flags), without the MTU the packet stages decide. */
export type KcpSettings = Omit<KcpOptions, "snmp" | "mtu" | "segmentPool">;

/** What a {@link Connection} is made of. */
export interface ConnectionOptions {
  /** Client (opens odd smux stream ids) or server. */
  role: SmuxRole;
  /** The KCP conversation id. */
  conv: number;
  /** kcptun `-mtu`: the whole datagram; KCP gets what the packet stages leave of it. */
  mtu: number;
  /** KCP tuning (windows, nodelay, interval, resend, nc, ackNoDelay). */
  kcp?: KcpSettings;
  /** Packet stages towards the wire, fused, KCP side first (shared ones included). */
  packets: PacketStage;
  /**
   * Packet stages for received datagrams when they differ from {@link packets}: a server runs
   * the shared stages (crypt) before routing, so only the per-connection ones are left here.
   */
  decodePackets?: PacketStage;
  /**
   * The per-connection packet stages, closed with the connection (shared stages, such as crypt,
   * belong to the tunnel and outlive it). Default: none.
   */
  ownedPackets?: PacketStage;
  /** Stream stages between KCP and smux (snappy), application side first. */
  sessionStages?: readonly StreamStage[];
  /** Makes the stages over one smux stream (application side first); none when absent. */
  streamStages?: () => StreamStage[];
  /** smux settings (kcptun 2021's defaults otherwise). */
  smux?: Partial<SmuxConfig>;
  /** Where datagrams come from. */
  pool: PacketPool;
  /** Counters. */
  snmp: Snmp;
  /** Clock value (ms) at creation. */
  now: number;
  /** kcptun 2026 `-ratelimit`: outgoing datagram bytes per second; 0 or absent: unlimited. */
  rateLimit?: number;
  /** Called when an asynchronous packet stage finished a batch: poll this connection again. */
  onWake?: () => void;
}

/** How a connection ended. */
export interface ConnectionCloseInfo {
  /** Why, e.g. "session closed", "keepalive timeout", "invalid protocol: unknown command 7". */
  readonly reason: string;
  /** True unless closed locally or cleanly. */
  readonly error: boolean;
}

/** The stages over one smux stream and what they decoded but nobody has read yet. */
class StreamSlot {
  readonly decoded = new ChunkQueue();
  /** Encodes towards smux, application side first; the last sink writes into smux. */
  readonly encodeSinks: ByteSink[];
  /** Decodes away from smux, smux side first; the last sink queues for the reader. */
  readonly decodeSinks: ByteSink[];
  encodeFinished = false;
  decodeFinished = false;
  /** A stage's decode failure: the stream's reads end with it. */
  error: string | null = null;

  constructor(readonly stages: StreamStage[], toSmux: ByteSink) {
    const n = stages.length;
    this.encodeSinks = new Array(n);
    this.decodeSinks = new Array(n);
    this.encodeSinks[n - 1] = toSmux;
    for (let i = n - 2; i >= 0; i--) {
      const next = stages[i + 1], sink = this.encodeSinks[i + 1];
      this.encodeSinks[i] = (b) => next.encode(b, sink);
    }
    this.decodeSinks[0] = (b) => this.decoded.push(b);
    for (let i = 1; i < n; i++) {
      const next = stages[i - 1], sink = this.decodeSinks[i - 1];
      this.decodeSinks[i] = (b) => next.decode(b, sink);
    }
  }
}

/**
 * One tunnel connection. Every method is synchronous except where a packet stage answers with a
 * promise; none throws on anything the peer sends.
 */
export class Connection {
  /** The ARQ core (for stats; do not drive it directly). */
  readonly kcp: Kcp;
  /** The smux core (for stats; do not drive it directly). */
  readonly smux: SmuxSession;
  /** The conversation id. */
  readonly conv: number;

  readonly #packets: PacketStage;
  readonly #decodePackets: PacketStage;
  readonly #ownedPackets: PacketStage | null;
  readonly #sessionStages: readonly StreamStage[];
  readonly #streamStages: (() => StreamStage[]) | null;
  readonly #slots = new Map<number, StreamSlot>();
  readonly #pool: PacketPool;
  readonly #snmp: Snmp;
  readonly #onWake: (() => void) | null;
  readonly #limiter: RateLimiter | null;
  /** Replaced by a fresh batch whenever an asynchronous stage keeps working on this one. */
  #rx = new PacketBatch();
  /** Replaced likewise. */
  #tx = new PacketBatch();
  /** Encoded datagrams waiting for {@link pollTransmit} (and rate-limit tokens). */
  readonly #outbox = new PacketBatch();
  #outFrom = 0;
  /** Input batches (and their arrival times) waiting behind an asynchronous packet stage. */
  #inbox: { batch: PacketBatch; now: number }[] | null = null;
  /** Settles when the last asynchronous encode's batch is in the outbox; null when none runs. */
  #encodeTail: Promise<void> | null = null;
  /** Session stream stage sinks: towards KCP (app side first) and towards smux (KCP side first). */
  readonly #toKcp: ByteSink[];
  readonly #toSmux: ByteSink[];
  #kcpDue = Infinity;
  #rateDue = Infinity;
  #lastInput: number;
  /**
   * One frame buffer reused for every smux frame when KCP (which copies what it is given) and
   * every session stage are done with a frame when they return; null otherwise.
   */
  readonly #frame: Uint8Array | null;
  #closeInfo: ConnectionCloseInfo | null = null;
  #released = false;
  /** Bytes went into KCP since its last flush. */
  #unflushed = false;
  /** Datagrams the packet stages rebuilt (FEC) for this connection. */
  #recovered = 0;

  /** A connection as `options` describe, at time `options.now`. */
  constructor(options: ConnectionOptions) {
    this.conv = options.conv >>> 0;
    this.#packets = options.packets;
    this.#decodePackets = options.decodePackets ?? options.packets;
    this.#ownedPackets = options.ownedPackets ?? null;
    this.#sessionStages = options.sessionStages ?? [];
    this.#streamStages = options.streamStages ?? null;
    this.#pool = options.pool;
    this.#snmp = options.snmp;
    this.#onWake = options.onWake ?? null;
    const kcpMtu = Math.min(options.mtu, 1500) - options.packets.overhead;
    this.kcp = new Kcp(this.conv, { ...options.kcp, snmp: options.snmp, mtu: kcpMtu });
    this.smux = new SmuxSession(options.role, options.smux ?? {}, options.now);
    this.#frame = this.#sessionStages.every((st) => st.releasesInput === true)
      ? new Uint8Array(SMUX_HEADER_SIZE + this.smux.config.maxFrameSize)
      : null;
    this.#lastInput = options.now;
    this.#limiter = (options.rateLimit ?? 0) > 0
      ? new RateLimiter(options.rateLimit!, options.now)
      : null;
    const stages = this.#sessionStages, n = stages.length;
    this.#toKcp = new Array(n + 1);
    this.#toSmux = new Array(n + 1);
    this.#toKcp[n] = (b) => this.#sendKcp(b);
    for (let i = n - 1; i >= 0; i--) {
      const s = stages[i], sink = this.#toKcp[i + 1];
      this.#toKcp[i] = (b) => s.encode(b, sink);
    }
    this.#toSmux[0] = (b) => this.smux.receive(b);
    for (let i = 1; i <= n; i++) {
      const s = stages[i - 1], sink = this.#toSmux[i - 1];
      this.#toSmux[i] = (b) => s.decode(b, sink);
    }
  }

  /** True once the connection has closed (see {@link closeInfo}). */
  get closed(): boolean {
    return this.#closeInfo !== null || this.smux.closed;
  }

  /** How the connection ended, or null while it is open. */
  get closeInfo(): ConnectionCloseInfo | null {
    if (this.#closeInfo === null && this.smux.closed) {
      this.#closeInfo = { reason: this.smux.closeReason!, error: this.smux.closeIsError };
    }
    return this.#closeInfo;
  }

  /**
   * Datagrams the packet stages rebuilt for this connection (FEC): its part of `FECRecovered`,
   * counted as they reach KCP.
   */
  get fecRecovered(): number {
    return this.#recovered;
  }

  /** Clock time of the last datagram that reached KCP. */
  get lastInput(): number {
    return this.#lastInput;
  }

  // ------------------------------------------------------------------ network side

  /**
   * Datagrams from the peer, after any shared packet stages the owner ran. Takes the packets over
   * (not the batch object). Returns a promise only while an asynchronous packet stage works.
   */
  handleDatagrams(batch: PacketBatch, now: number): void | Promise<void> {
    if (this.closed) return batch.releaseAll();
    if (this.#inbox !== null) {
      const later = new PacketBatch();
      later.takeAll(batch);
      this.#inbox.push({ batch: later, now });
      return;
    }
    const rx = this.#rx;
    rx.takeAll(batch);
    const r = this.#decodePackets.decode(rx, now);
    if (r === undefined) return this.#input(rx, now);
    // The stages go on working on this batch object after the promise: leave it to them.
    this.#rx = new PacketBatch();
    this.#inbox = [];
    return this.#drainInbox(r, rx, now);
  }

  async #drainInbox(first: Promise<void>, held: PacketBatch, now: number): Promise<void> {
    try {
      await first;
    } catch {
      held.releaseAll();
    }
    this.#input(held, now);
    while (this.#inbox !== null && this.#inbox.length > 0) {
      const next = this.#inbox.shift()!;
      try {
        await this.#decodePackets.decode(next.batch, next.now);
      } catch {
        next.batch.releaseAll();
      }
      this.#input(next.batch, next.now);
    }
    this.#inbox = null;
    this.#onWake?.();
  }

  #input(rx: PacketBatch, now: number): void {
    if (this.closed) return rx.releaseAll();
    const kcp = this.kcp;
    let fed = false;
    for (let i = 0; i < rx.length; i++) {
      const p = rx.packets[i];
      const recovered = (p.flags & PacketFlags.Recovered) !== 0;
      if (recovered) this.#recovered++;
      if (p.end - p.start >= 24) {
        if (kcp.input(p.buffer, p.start, p.end, now, recovered) !== 0) this.#snmp.KCPInErrors++;
        fed = true;
      }
      p.release();
    }
    rx.length = 0;
    if (fed) this.#lastInput = now;
    // Into smux before KCP flushes its ACKs, so that they advertise the window smux's reading
    // left, not the one the input filled: a peer stopped at a full window would otherwise wait
    // for the next flush to hear that it may go on.
    this.#pumpIn();
    kcp.update(now, this.#tx, this.#pool);
    this.#pump(now);
  }

  /** Runs what is due at `now` (KCP's timed flush, smux keepalive, rate-limited sends). */
  handleTimeout(now: number): void {
    if (this.closed) return;
    if (now >= this.#kcpDue) this.kcp.update(now, this.#tx, this.#pool);
    if (now >= this.smux.nextDeadline()) this.smux.handleTimeout(now);
    this.#pump(now);
  }

  /** When {@link handleTimeout} must next run (ms, same clock as `now`), or Infinity. */
  pollTimeout(): number {
    if (this.closed) return Infinity;
    const smux = this.smux.nextDeadline();
    const kcp = this.#kcpDue;
    const rate = this.#rateDue;
    return kcp < smux ? (kcp < rate ? kcp : rate) : (smux < rate ? smux : rate);
  }

  /**
   * Moves the datagrams ready to go at `now` into `out` (encoded by every packet stage), after
   * bringing the layers up to date with what the application did since the last call (writes,
   * reads that reopened a window, closes).
   */
  pollTransmit(now: number, out: PacketBatch): void {
    if (!this.closed) this.#pump(now);
    const box = this.#outbox;
    if (box.length === this.#outFrom) return;
    if (this.#limiter === null) {
      for (let i = 0; i < box.length; i++) out.push(box.packets[i]);
      this.#count(box, 0, box.length);
      box.length = 0;
      return;
    }
    const limiter = this.#limiter;
    let i = this.#outFrom;
    for (; i < box.length; i++) {
      const p = box.packets[i];
      if (!limiter.take(p.end - p.start, now)) break;
      out.push(p);
    }
    this.#count(box, this.#outFrom, i);
    if (i === box.length) {
      box.length = 0;
      this.#outFrom = 0;
      this.#rateDue = Infinity;
    } else {
      this.#outFrom = i;
      if (i > 64 && i * 2 > box.length) {
        box.packets.copyWithin(0, i, box.length);
        box.length -= i;
        this.#outFrom = 0;
      }
      const next = box.packets[this.#outFrom];
      this.#rateDue = now + Math.max(1, limiter.waitMs(next.end - next.start, now));
    }
  }

  #count(b: PacketBatch, from: number, to: number): void {
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += b.packets[i].end - b.packets[i].start;
    this.#snmp.OutPkts += to - from;
    this.#snmp.OutBytes += bytes;
  }

  /** KCP → smux, smux → KCP, then KCP's datagrams through the packet stages. */
  #pump(now: number): void {
    this.#pumpIn();
    this.#pumpOut(now);
    this.#encode(now);
    this.#kcpDue = this.closed ? Infinity : this.kcp.check(now);
  }

  #pumpIn(): void {
    const kcp = this.kcp, smux = this.smux, sink = this.#toSmux[this.#toSmux.length - 1];
    while (smux.wantsInput() && kcp.readable() > 0) {
      const chunk = kcp.read(READ_CHUNK)!;
      this.#snmp.BytesReceived += chunk.length;
      try {
        sink(chunk);
      } catch (e) {
        // A corrupt stream below smux (snappy): the session cannot continue.
        smux.receiveEnd(e instanceof Error ? e.message : String(e));
        return;
      }
    }
  }

  #pumpOut(now: number): void {
    this.pushOut();
    if (this.#unflushed) {
      this.#unflushed = false;
      this.kcp.flush(now, this.#tx, this.#pool);
    }
  }

  /**
   * Moves queued smux frames into KCP while its send window has room, without sending anything
   * yet (the next {@link pollTransmit} flushes). A writer whose bytes left the smux queue this
   * way may reuse its buffer at once.
   */
  pushOut(): void {
    const kcp = this.kcp, smux = this.smux, sink = this.#toKcp[0];
    while (kcp.writable() && smux.hasTransmit()) {
      sink(smux.pollTransmit(this.#frame ?? undefined)!);
      this.#unflushed = true;
    }
  }

  #sendKcp(bytes: Uint8Array): void {
    this.kcp.send(bytes);
    this.#snmp.BytesSent += bytes.length;
  }

  #encode(now: number): void {
    const tx = this.#tx;
    if (tx.length === 0) return;
    const r = this.#packets.encode(tx, now);
    if (r === undefined && this.#encodeTail === null) {
      this.#outbox.takeAll(tx);
      return;
    }
    let held: PacketBatch;
    if (r === undefined) {
      held = new PacketBatch();
      held.takeAll(tx);
    } else {
      // The stages go on working on this batch object after the promise: leave it to them.
      held = tx;
      this.#tx = new PacketBatch();
    }
    // Batches reach the outbox in KCP's order, whichever encode finishes first.
    const ok = Promise.resolve(r).then(() => true, () => false);
    const tail: Promise<void> = (this.#encodeTail ?? Promise.resolve()).then(() => ok).then(
      (done) => {
        if (done) this.#outbox.takeAll(held);
        else held.releaseAll();
        if (this.#encodeTail === tail) this.#encodeTail = null;
        this.#onWake?.();
      },
    );
    this.#encodeTail = tail;
  }

  // ------------------------------------------------------------------ streams

  /** Opens a stream (its SYN goes with the next transmit); throws a `StageError` when closed. */
  openStream(): number {
    const id = this.smux.openStream();
    this.#attach(id);
    return id;
  }

  /**
   * Opens a marked stream (`SmuxSession.openMarkedStream`: an id the peer tells apart at SYN
   * time); throws a `StageError` when closed.
   */
  openMarkedStream(): number {
    const id = this.smux.openMarkedStream();
    this.#attach(id);
    return id;
  }

  /** Takes the next stream the peer opened, or -1 when none waits. */
  accept(): number {
    const id = this.smux.accept();
    if (id >= 0) this.#attach(id);
    return id;
  }

  /**
   * True when streams have per-stream stages: those may keep what is written to them, so a
   * writer must not reuse its buffers.
   */
  get hasStreamStages(): boolean {
    return this.#streamStages !== null;
  }

  /** Streams the peer opened that wait for {@link accept}. */
  get pendingAccepts(): number {
    return this.smux.pendingAccepts;
  }

  #attach(id: number): void {
    if (this.#streamStages === null) return;
    const stages = this.#streamStages();
    if (stages.length === 0) return;
    this.#slots.set(id, new StreamSlot(stages, (b) => this.smux.write(id, b)));
  }

  /**
   * Queues `bytes` on stream `id` (taken over: do not modify them afterwards). Throws a
   * `StageError` when the stream cannot be written ({@link writeError}).
   */
  write(id: number, bytes: Uint8Array): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return this.smux.write(id, bytes);
    const err = this.smux.writeError(id);
    if (err !== null) throw new StageError(`smux: stream ${id}: ${err}`);
    slot.stages[0].encode(bytes, slot.encodeSinks[0]);
  }

  /** Bytes written to stream `id` and not yet handed to KCP. */
  queuedBytes(id: number): number {
    return this.smux.queuedBytes(id);
  }

  /** Why stream `id` cannot be written, or null. */
  writeError(id: number): string | null {
    return this.smux.writeError(id);
  }

  /** Why writing stream `id` failed for good (see `SmuxSession.writeFailure`), or null. */
  writeFailure(id: number): string | null {
    return this.smux.writeFailure(id);
  }

  /** Reads up to `max` bytes of stream `id` (a fresh or handed-over buffer), or null if none. */
  read(id: number, max: number = Infinity): Uint8Array | null {
    const slot = this.#slots.get(id);
    if (slot === undefined) return this.smux.read(id, max);
    this.#decodeInto(slot, id);
    return slot.decoded.bytes > 0 ? slot.decoded.shift(max) : null;
  }

  #decodeInto(slot: StreamSlot, id: number): void {
    const last = slot.stages.length - 1;
    while (slot.decoded.bytes === 0 && slot.error === null) {
      const chunk = this.smux.read(id);
      if (chunk === null) break;
      try {
        slot.stages[last].decode(chunk, slot.decodeSinks[last]);
      } catch (e) {
        this.#streamFailed(slot, id, e);
      }
    }
    if (!slot.decodeFinished && slot.error === null && this.smux.readEnded(id)) {
      slot.decodeFinished = true;
      try {
        for (let i = last; i >= 0; i--) slot.stages[i].finish?.("decode", slot.decodeSinks[i]);
      } catch (e) {
        this.#streamFailed(slot, id, e);
      }
    }
  }

  #streamFailed(slot: StreamSlot, id: number, e: unknown): void {
    slot.error = e instanceof Error ? e.message : String(e);
    slot.decoded.clear();
    this.smux.discardReads(id);
    this.smux.abortStream(id);
  }

  /** Bytes of stream `id` ready to read (before per-stream stages decode them). */
  readableBytes(id: number): number {
    const slot = this.#slots.get(id);
    return this.smux.readableBytes(id) + (slot?.decoded.bytes ?? 0);
  }

  /** True when stream `id` will never have more to read. */
  readEnded(id: number): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return this.smux.readEnded(id);
    if (slot.error !== null) return true;
    if (slot.decoded.bytes > 0) return false;
    if (!this.smux.readEnded(id)) return false;
    this.#decodeInto(slot, id);
    return slot.decoded.bytes === 0;
  }

  /**
   * Why the reads of stream `id` ended badly (a failed session or a per-stream stage's decode
   * error), or null when they ended cleanly or have not ended.
   */
  readFailure(id: number): string | null {
    const slot = this.#slots.get(id);
    if (slot?.error) return slot.error;
    if (!this.smux.readEnded(id) || this.smux.readEndedCleanly(id)) return null;
    return `smux: ${this.smux.closeReason}`;
  }

  /** True once the peer closed stream `id` (its FIN arrived), or the stream is gone. */
  peerClosed(id: number): boolean {
    return this.smux.peerClosed(id);
  }

  /** True once stream `id`'s FIN has been emitted (or the stream is gone). */
  finSent(id: number): boolean {
    return this.smux.finSent(id);
  }

  /** True while stream `id` is in the session. */
  hasStream(id: number): boolean {
    return this.smux.hasStream(id);
  }

  /** Closes stream `id`: per-stream stages finish, queued data is sent, then FIN. */
  closeStream(id: number): void {
    const slot = this.#slots.get(id);
    if (slot !== undefined && !slot.encodeFinished) {
      slot.encodeFinished = true;
      try {
        for (let i = 0; i < slot.stages.length; i++) {
          slot.stages[i].finish?.("encode", slot.encodeSinks[i]);
        }
      } catch { /* the stream is closing anyway; what could not be flushed is dropped */ }
    }
    this.smux.closeStream(id);
  }

  /** Closes stream `id` dropping its unsent data (then FIN). */
  abortStream(id: number): void {
    this.smux.abortStream(id);
  }

  /** Drops what stream `id` has and will receive (its reader is gone). */
  discardReads(id: number): void {
    const slot = this.#slots.get(id);
    slot?.decoded.clear();
    this.smux.discardReads(id);
  }

  /**
   * The id of a stream whose state changed (data or FIN arrived, its queue drained, its FIN went
   * out, it failed or left), or -1. Streams that left lose their per-stream stages here.
   */
  takeDirty(): number {
    const id = this.smux.takeDirty();
    if (id >= 0 && this.#slots.size > 0 && !this.smux.hasStream(id) && !this.smux.closed) {
      this.#releaseSlot(id);
    }
    return id;
  }

  #releaseSlot(id: number): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    for (const s of slot.stages) s.close?.();
  }

  // ------------------------------------------------------------------ lifetime

  /**
   * Closes the connection: smux closes (streams end, writes fail), one last KCP flush goes into
   * the outbox, KCP's segments and the per-connection stages are released. Idempotent; the
   * owner calls it also when the connection closed by itself ({@link closed}: keepalive timeout,
   * protocol error), to release what it holds.
   */
  close(now: number, reason = "session closed", error = false): void {
    if (this.#released) return;
    this.#released = true;
    this.smux.close(reason, error);
    this.#closeInfo ??= { reason: this.smux.closeReason!, error: this.smux.closeIsError };
    this.kcp.flush(now, this.#tx, this.#pool);
    this.#encode(now);
    this.kcp.release();
    this.#kcpDue = Infinity;
    this.#ownedPackets?.close?.();
    for (const s of this.#sessionStages) s.close?.();
    for (const id of [...this.#slots.keys()]) this.#releaseSlot(id);
    if (this.#inbox !== null) {
      for (const b of this.#inbox) b.batch.releaseAll();
      this.#inbox.length = 0;
    }
  }

  /** Releases what is still in the outbox (after the driver's last {@link pollTransmit}). */
  dispose(): void {
    for (let i = this.#outFrom; i < this.#outbox.length; i++) this.#outbox.packets[i].release();
    this.#outbox.length = 0;
    this.#outFrom = 0;
  }
}
