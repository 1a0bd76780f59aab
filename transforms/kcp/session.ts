/**
 * The session actor: one KCP conversation with its packet stages, its timer and its socket,
 * exposing the reliable byte stream as a Web Streams pair with back-pressure.
 *
 * It is the only owner of its `Kcp` core: events (datagrams in, bytes to send, the timer, close)
 * run one at a time on the event loop, so there are no locks. Like kcp-go there is no close
 * message on the wire and no idle timeout here: the session lives until its owner closes it (the
 * smux keepalive notices dead peers).
 *
 * Back-pressure both ways:
 * - writes wait while the send window is full (`waitSnd ≥ min(sndwnd, peer window)`), so a slow
 *   link stops the reading of the layer above;
 * - the readable is pulled: bytes nobody reads stay in KCP's receive queue and shrink the window
 *   this end advertises, which stops the peer.
 *
 * @module
 */

import { PacketBatch, type PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { PacketFlags } from "../../pipeline/packet.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import type { PacketStage } from "../../pipeline/stage.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import { Kcp, type KcpOptions } from "./arq.ts";
import { RateLimiter } from "./rate_limit.ts";

/** The largest chunk handed to the layer above in one read. */
const READ_CHUNK = 65536;

/** What a session needs besides its socket and packet stages. */
export interface KcpSessionOptions {
  /** Conversation id. */
  conv: number;
  /** kcptun `-mtu`: the whole datagram; KCP gets what the packet stages leave. */
  mtu: number;
  /** KCP tuning: windows, nodelay/interval/resend/nc, ackNoDelay (kcp-go defaults otherwise). */
  kcp?: Omit<KcpOptions, "snmp" | "mtu">;
  /** Where outgoing packets come from. */
  pool: PacketPool;
  /** Counters. */
  snmp: Snmp;
  /** Millisecond clock (default `performance.now`). */
  clock?: () => number;
  /**
   * kcptun 2026's `-ratelimit`: outgoing bytes per second (datagrams, parity included); 0 or
   * absent means unlimited. Datagrams over the rate wait, in order; none is dropped.
   */
  rateLimit?: number;
  /**
   * Packet stages for received datagrams when they differ from the sending chain: on a server
   * the shared stages (crypt) already ran before routing, so only the per-session ones are left.
   */
  decodeChain?: PacketStage;
  /** Called once when the session has closed (the listener forgets it, the dialer closes its socket). */
  onClose?: (session: KcpSession) => void;
}

/**
 * One KCP session. Feed it datagrams with {@link KcpSession.input}; read and write its byte
 * stream through {@link KcpSession.readable} and {@link KcpSession.writable}.
 */
export class KcpSession {
  /** The ARQ core (read its state for stats; do not drive it directly). */
  readonly kcp: Kcp;
  /** The conversation id. */
  readonly conv: number;
  /** Where datagrams go. */
  readonly remote: PeerAddress | null;
  /** Bytes from the peer, in order. Ends when the session closes. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. A write waits while the send window is full. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves once the session has closed. */
  readonly closed: Promise<void>;

  readonly #chain: PacketStage;
  readonly #decodeChain: PacketStage;
  readonly #socket: DatagramSocket;
  readonly #pool: PacketPool;
  readonly #snmp: Snmp;
  readonly #clock: () => number;
  readonly #onClose?: (session: KcpSession) => void;
  readonly #rx = new PacketBatch();
  readonly #tx = new PacketBatch();
  /** Batches waiting while an asynchronous packet stage works on an earlier one. */
  #inbox: PacketBatch[] | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #readController!: ReadableStreamDefaultController<Uint8Array>;
  #pullWaiting = false;
  #writeWaiter: (() => void) | null = null;
  #isClosed = false;
  #resolveClosed!: () => void;
  #lastInput = 0;
  readonly #limiter: RateLimiter | null;
  /** Datagrams waiting for rate-limit tokens, oldest first from `#heldFrom`. */
  readonly #held = new PacketBatch();
  #heldFrom = 0;
  readonly #released = new PacketBatch();
  #rateTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * A session sending through `socket` to `remote` (null: the socket's default peer), with the
   * packet stages fused in `chain` (KCP side first; all of them, shared ones included).
   */
  constructor(
    socket: DatagramSocket,
    remote: PeerAddress | null,
    chain: PacketStage,
    options: KcpSessionOptions,
  ) {
    this.#socket = socket;
    this.remote = remote;
    this.#chain = chain;
    this.#decodeChain = options.decodeChain ?? chain;
    this.#pool = options.pool;
    this.#snmp = options.snmp;
    this.#clock = options.clock ?? (() => performance.now());
    this.#onClose = options.onClose;
    this.conv = options.conv >>> 0;
    const kcpMtu = Math.min(options.mtu, 1500) - chain.overhead;
    this.kcp = new Kcp(this.conv, { ...options.kcp, snmp: options.snmp, mtu: kcpMtu });
    this.closed = new Promise((r) => this.#resolveClosed = r);
    this.#lastInput = this.#clock();
    this.#limiter = (options.rateLimit ?? 0) > 0
      ? new RateLimiter(options.rateLimit!, this.#lastInput)
      : null;
    this.readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#readController = c;
      },
      pull: () => this.#pull(),
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => {},
      abort: () => this.close(),
    });
  }

  /** True once {@link KcpSession.close} ran. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Clock time of the last datagram received (for idle checks by owners). */
  get lastInput(): number {
    return this.#lastInput;
  }

  /**
   * Datagrams from the peer (after any shared packet stages the owner already ran). Takes
   * ownership of the packets, not of the batch object.
   */
  input(batch: PacketBatch): void {
    if (this.#isClosed) {
      batch.releaseAll();
      return;
    }
    if (this.#inbox !== null) {
      const copy = new PacketBatch();
      copy.takeAll(batch);
      this.#inbox.push(copy);
      return;
    }
    const rx = this.#rx;
    rx.takeAll(batch);
    const now = this.#clock();
    const r = this.#decodeChain.decode(rx, now);
    if (r === undefined) {
      this.#feed(rx, now);
      return;
    }
    // An asynchronous stage: hold later batches until this one is through, to keep order.
    const held = new PacketBatch();
    held.takeAll(rx);
    this.#inbox = [];
    this.#drainAsync(r, held);
  }

  async #drainAsync(first: Promise<void>, held: PacketBatch): Promise<void> {
    try {
      await first;
    } catch {
      held.releaseAll();
    }
    this.#feed(held, this.#clock());
    while (this.#inbox !== null && this.#inbox.length > 0) {
      const next = this.#inbox.shift()!;
      try {
        await this.#decodeChain.decode(next, this.#clock());
      } catch {
        next.releaseAll();
      }
      this.#feed(next, this.#clock());
    }
    this.#inbox = null;
  }

  /** KCP input of decoded datagrams, then the work input may have made due. */
  #feed(rx: PacketBatch, now: number): void {
    if (this.#isClosed) {
      rx.releaseAll();
      return;
    }
    const kcp = this.kcp;
    for (let i = 0; i < rx.length; i++) {
      const p = rx.packets[i];
      if (p.end - p.start >= 24) {
        const recovered = (p.flags & PacketFlags.Recovered) !== 0;
        if (kcp.input(p.buffer, p.start, p.end, now, recovered) !== 0) this.#snmp.KCPInErrors++;
      }
      p.release();
    }
    rx.length = 0;
    this.#lastInput = now;
    kcp.update(now, this.#tx, this.#pool);
    this.#transmit(now);
    this.#wake(now);
  }

  /** Runs the packet stages over what KCP emitted and hands it to the socket. */
  #transmit(now: number): void {
    const tx = this.#tx;
    if (tx.length === 0) return;
    const r = this.#chain.encode(tx, now);
    if (r === undefined) {
      this.#send(tx);
      return;
    }
    const held = new PacketBatch();
    held.takeAll(tx);
    r.then(() => this.#send(held), () => held.releaseAll());
  }

  #send(batch: PacketBatch): void {
    if (this.#limiter === null) return this.#sendNow(batch);
    this.#held.takeAll(batch);
    this.#releaseHeld();
  }

  /** Sends the held datagrams the rate limit admits now; a timer comes back for the rest. */
  #releaseHeld = (): void => {
    this.#rateTimer = undefined;
    const limiter = this.#limiter!, held = this.#held, out = this.#released;
    const now = this.#clock();
    let i = this.#heldFrom;
    for (; i < held.length; i++) {
      const p = held.packets[i];
      if (!limiter.take(p.end - p.start, now)) break;
      out.push(p);
    }
    if (i === held.length) {
      held.length = 0;
      this.#heldFrom = 0;
    } else {
      this.#heldFrom = i;
      if (i > 64 && i * 2 > held.length) {
        // Compact so the backing array does not grow with the backlog's history.
        held.packets.copyWithin(0, i, held.length);
        held.length -= i;
        this.#heldFrom = 0;
      }
    }
    if (out.length > 0) this.#sendNow(out);
    if (this.#heldFrom < held.length && this.#rateTimer === undefined && !this.#isClosed) {
      const next = held.packets[this.#heldFrom];
      const wait = limiter.waitMs(next.end - next.start, now);
      this.#rateTimer = setTimeout(this.#releaseHeld, Math.max(1, wait));
    }
  };

  #sendNow(batch: PacketBatch): void {
    const snmp = this.#snmp;
    let bytes = 0;
    for (let i = 0; i < batch.length; i++) bytes += batch.packets[i].end - batch.packets[i].start;
    snmp.OutPkts += batch.length;
    snmp.OutBytes += bytes;
    if (this.remote !== null) this.#socket.send(batch, this.remote);
    else this.#socket.send(batch);
  }

  /** After any event: feed a waiting reader, release a waiting writer, re-arm the timer. */
  #wake(now: number): void {
    if (this.#pullWaiting && this.kcp.readable() > 0) {
      this.#pullWaiting = false;
      this.#deliver();
    }
    if (this.#writeWaiter !== null && this.kcp.writable()) {
      const w = this.#writeWaiter;
      this.#writeWaiter = null;
      w();
    }
    this.#arm(now);
  }

  #arm(now: number): void {
    if (this.#isClosed) return;
    const due = this.kcp.check(now);
    if (due === Infinity) return;
    if (this.#timer !== undefined && this.#timerAt <= due) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = due;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, due - now));
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#isClosed) return;
    const now = this.#clock();
    this.kcp.update(now, this.#tx, this.#pool);
    this.#transmit(now);
    this.#wake(now);
  };

  #pull(): void {
    if (this.kcp.readable() > 0) this.#deliver();
    else if (this.#isClosed) this.#readController.close();
    else this.#pullWaiting = true;
  }

  #deliver(): void {
    const chunk = this.kcp.read(READ_CHUNK);
    if (chunk === null) return;
    this.#snmp.BytesReceived += chunk.length;
    this.#readController.enqueue(chunk);
    // Reading may have reopened a closed window: let the timer tell the peer soon.
    this.#arm(this.#clock());
  }

  async #write(chunk: Uint8Array): Promise<void> {
    while (!this.#isClosed && !this.kcp.writable()) {
      await new Promise<void>((r) => this.#writeWaiter = r);
    }
    if (this.#isClosed) throw new Error("kcp session closed");
    const now = this.#clock();
    this.kcp.send(chunk);
    this.#snmp.BytesSent += chunk.length;
    this.kcp.flush(now, this.#tx, this.#pool);
    this.#transmit(now);
    this.#arm(now);
  }

  /**
   * Closes the session: one last flush goes out, the readable ends, writes fail, the core's
   * segments return to their pool. Idempotent.
   */
  close(): void {
    if (this.#isClosed) return;
    const now = this.#clock();
    this.kcp.flush(now, this.#tx, this.#pool);
    this.#transmit(now);
    this.#isClosed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#rateTimer !== undefined) clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;
    for (let i = this.#heldFrom; i < this.#held.length; i++) this.#held.packets[i].release();
    this.#held.length = 0;
    this.#heldFrom = 0;
    this.kcp.release();
    // With a separate decode chain the sending chain also holds the shared stages, which other
    // sessions still use: only the per-session ones (the decode chain) are closed.
    this.#decodeChain.close?.();
    this.#pullWaiting = false;
    try {
      this.#readController.close();
    } catch { /* already closed or errored */ }
    const w = this.#writeWaiter;
    this.#writeWaiter = null;
    w?.();
    this.#onClose?.(this);
    this.#resolveClosed();
  }
}
