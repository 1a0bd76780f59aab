/**
 * The KCP ARQ state machine, sans-IO: behaviour and wire format of kcp-go v5.6.1 (kcptun 20210922),
 * which is skywind3000's ikcp with kcp-go's changes (selective ACK marking, early retransmit,
 * ACK jitter filter, FEC-aware input, ACK-no-delay). See `docs/kcp.md` for the driver contract.
 *
 * The core never reads a clock: every entry point that depends on time takes `now`, a millisecond
 * count from the driver's clock (any origin; only differences and echoes matter). Internally every
 * timestamp and sequence number is a u32 compared through signed 32-bit differences, as ikcp does,
 * so the clock and the sequence space may wrap.
 *
 * @module
 */

import type { Packet, PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { type Snmp, snmp as processSnmp } from "../../pipeline/snmp.ts";
import { defaultSegmentPool, type KcpSegment, type SegmentPool, SegmentRing } from "./segment.ts";
import { KCP_OVERHEAD, KcpCmd, readU16, readU32, writeSegmentHeader } from "./wire.ts";

/** Minimum RTO when nodelay is on (ms). */
export const RTO_NODELAY_MIN = 30;
/** Minimum RTO when nodelay is off (ms). */
export const RTO_MIN = 100;
/** RTO before the first RTT sample (ms). */
export const RTO_DEFAULT = 200;
/** Upper bound of the RTO (ms). */
export const RTO_MAX = 60000;
/** Default send window (segments) until the caller sets one. */
export const WND_SND_DEFAULT = 32;
/** Default receive window (segments) until the caller sets one. */
export const WND_RCV_DEFAULT = 32;
/** Default MTU (KCP bytes per datagram) until the caller sets one. */
export const MTU_DEFAULT = 1400;
/**
 * Smallest MTU (KCP bytes per datagram) {@link Kcp.setMtu} takes: the number kcp-go 2021's
 * `SetMtu` refuses below (its MTU also counts the crypt and FEC bytes it reserves; kcp-go since
 * 2026 takes 25 after them, one byte of payload after the 24-byte header).
 */
export const MTU_MIN = 50;
/** Default flush interval (ms) until the caller sets one. */
export const INTERVAL_DEFAULT = 100;
/** Transmissions of one segment after which {@link Kcp.deadLink} is set (nothing acts on it). */
export const DEAD_LINK = 20;
/** Zero-window probe: first wait in kcp-go v5.6.1 (ms); 2026 kcp-go uses 500. */
export const PROBE_INIT = 7000;
/** Zero-window probe: longest wait (ms). */
export const PROBE_LIMIT = 120000;

const THRESH_INIT = 2;
const MAX_INTERVAL = 5000;
const THRESH_MIN = 2;
const ASK_SEND = 1;
const ASK_TELL = 2;
const PENDING_NONE = 0;
const PENDING_ACKS = 1;
const PENDING_FULL = 2;
/** Payloads shorter than this are copied byte by byte (cheaper than making a subarray). */
const SMALL_COPY = 64;

/** Return codes of {@link Kcp.input} (kcp-go's values). */
export const KcpInputResult = {
  /** Every segment was processed. */
  Ok: 0,
  /** Fewer than 24 bytes, or a segment with another conv: processing stopped there. */
  BadConv: -1,
  /** A segment's `len` exceeds the bytes left in the datagram: processing stopped there. */
  BadLength: -2,
  /** A segment with a command other than 81..84: processing stopped there. */
  BadCommand: -3,
} as const;

/** Construction options of {@link Kcp}; every field has kcp-go's default. */
export interface KcpOptions {
  /** Counters to increment (default: the process-wide `snmp`). */
  snmp?: Snmp;
  /** Where segments come from (default: a pool shared by every Kcp of this isolate). */
  segmentPool?: SegmentPool;
  /** KCP bytes per datagram (default 1400); see {@link Kcp.setMtu}. */
  mtu?: number;
  /** Send window in segments (default 32). */
  sndWnd?: number;
  /** Receive window in segments (default 32). */
  rcvWnd?: number;
  /** 0 or 1 (default 0); see {@link Kcp.setNoDelay}. */
  nodelay?: number;
  /** Flush interval in ms (default 100, clamped to [10, 5000]). */
  interval?: number;
  /** Duplicate-ACK count that triggers fast retransmit; 0 = off (default 0). */
  resend?: number;
  /** 1 disables congestion control (default 0). */
  nc?: number;
  /** Flush ACKs right after input instead of at the next interval (kcptun `-acknodelay`). */
  ackNoDelay?: boolean;
  /**
   * Flush queued ACKs at input as soon as a datagram's worth (mtu / 24) is waiting, as kcp-go
   * 2026 does (default true). kcp-go 2021 waited for the next interval; with a busy event loop
   * that delay can outlast the peer's RTO and cause spurious retransmissions. Wire format and
   * contents are unchanged; only when full ACK datagrams leave. false = 2021 timing.
   */
  ackWhenFull?: boolean;
  /** First zero-window probe wait (default {@link PROBE_INIT}, the 2021 value; 2026 uses 500). */
  probeInit?: number;
  /**
   * ACK PUSH segments that FEC rebuilt although we already had them, as kcp-go does (default
   * false). Such an ACK echoes the ts of the copy FEC rebuilt, sent before the whole group was
   * complete (often hundreds of ms earlier in sparse traffic); when it is the newest ACK of a
   * flush the peer takes that age as an RTT sample and its RTO balloons, which under bursty loss
   * stretches every later recovery. The segment itself was acknowledged when it first arrived,
   * and `una` covers it. true = kcp-go's behaviour.
   */
  ackRecoveredRepeats?: boolean;
}

function copyBytes(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
): void {
  if (len < SMALL_COPY) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}

/**
 * One KCP conversation: reliable, ordered byte stream over unreliable datagrams (stream mode).
 *
 * @example
 * ```ts
 * import { Kcp } from "./arq.ts";
 * import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
 * const pool = new PacketPool();
 * const a = new Kcp(1), b = new Kcp(1);
 * const wire = new PacketBatch();
 * a.send(new TextEncoder().encode("hi"));
 * a.flush(0, wire, pool);
 * for (let i = 0; i < wire.length; i++) {
 *   const p = wire.at(i);
 *   b.input(p.buffer, p.start, p.end, 1);
 * }
 * wire.releaseAll();
 * const got = b.read(); // "hi"
 * ```
 */
export class Kcp {
  /** Conversation id (u32). */
  readonly conv: number;
  /** Flush ACKs right after {@link Kcp.input} (kcptun `-acknodelay`). */
  ackNoDelay: boolean;
  /** See {@link KcpOptions.ackWhenFull}. */
  ackWhenFull: boolean;
  /** See {@link KcpOptions.ackRecoveredRepeats}. */
  ackRecoveredRepeats: boolean;

  readonly #snmp: Snmp;
  readonly #segPool: SegmentPool;

  #mtu = MTU_DEFAULT;
  #mss = MTU_DEFAULT - KCP_OVERHEAD;
  #deadLink = false;
  /** This conversation's share of `RetransSegs` (the counters are process-wide). */
  #retransmits = 0;

  #sndUna = 0;
  #sndNxt = 0;
  #rcvNxt = 0;

  #ssthresh = THRESH_INIT;
  #rxRttvar = 0;
  #rxSrtt = 0;
  #rxRto = RTO_DEFAULT;
  #rxMinrto = RTO_MIN;

  #sndWnd = WND_SND_DEFAULT;
  #rcvWnd = WND_RCV_DEFAULT;
  #rmtWnd = WND_RCV_DEFAULT;
  #cwnd = 0;
  #incr = 0;
  #probe = 0;
  #tsProbe = 0;
  #probeWait = 0;
  #probeInit = PROBE_INIT;

  #interval = INTERVAL_DEFAULT;
  #nodelay = 0;
  #fastresend = 0;
  #nocwnd = 0;

  readonly #sndQueue = new SegmentRing(64);
  readonly #sndBuf = new SegmentRing(64);
  readonly #rcvQueue = new SegmentRing(64);
  /** Bytes already read from the head of the receive queue. */
  #rcvHeadOff = 0;
  /** Unread bytes in the receive queue. */
  #rcvBytes = 0;
  /** Reorder buffer: slot `sn & mask` holds segment `sn`, for sn in [rcvNxt, rcvNxt + rcvWnd). */
  #rcvSlots: (KcpSegment | undefined)[] = [];
  #rcvMask = 0;
  #rcvBufCount = 0;

  #ackSn: Uint32Array = new Uint32Array(64);
  #ackTs: Uint32Array = new Uint32Array(64);
  /** Per queued ACK before `#ackCut`: 1 if the flush it belongs to writes it. */
  #ackKeep: Uint8Array = new Uint8Array(64);
  #ackCount = 0;
  /**
   * ACKs [0, cut) belong to the flushes input asked for; those after the cut came with later
   * datagrams. kcp-go flushes inside Input, at the datagram that asks, so the ACKs of the
   * datagrams after it wait for the next flush (timer or write), where newer ACKs may make them
   * redundant. The driver carries the request out once per batch; the cut keeps every ACK in
   * the flush it would have gone out with. Without it, a batch's stale ACK (of a FEC-recovered
   * copy sent long ago) could become the newest ACK of the flush and be written, and its echoed
   * ts would give the peer an RTT sample of hundreds of ms.
   */
  #ackCut = 0;

  /** Timer schedule: the clock value of the next timed flush (kcp-go's self-rescheduling update). */
  #tsFlush = 0;
  #started = false;
  #idle = false;
  #pending = PENDING_NONE;

  // The datagram being filled by a flush.
  #pkt: Packet | null = null;
  #pos = 0;
  #out: PacketBatch | null = null;
  #pool: PacketPool | null = null;

  /** A conversation `conv` (the u32 both peers share) with kcp-go defaults, then `options`. */
  constructor(conv: number, options: KcpOptions = {}) {
    this.conv = conv >>> 0;
    this.#snmp = options.snmp ?? processSnmp;
    this.#segPool = options.segmentPool ?? defaultSegmentPool;
    this.ackNoDelay = options.ackNoDelay ?? false;
    this.ackWhenFull = options.ackWhenFull ?? true;
    this.ackRecoveredRepeats = options.ackRecoveredRepeats ?? false;
    if (options.probeInit !== undefined) this.#probeInit = options.probeInit;
    this.#resizeRcvSlots(WND_RCV_DEFAULT);
    if (options.mtu !== undefined && !this.setMtu(options.mtu)) {
      throw new RangeError(`invalid KCP mtu ${options.mtu}`);
    }
    this.setWindow(options.sndWnd ?? 0, options.rcvWnd ?? 0);
    this.setNoDelay(
      options.nodelay ?? -1,
      options.interval ?? -1,
      options.resend ?? -1,
      options.nc ?? -1,
    );
  }

  // ---------------------------------------------------------------- configuration

  /**
   * kcp-go's `NoDelay`: a negative argument leaves that setting alone. `nodelay` ≠ 0 lowers the
   * minimum RTO to 30 ms and makes RTO back-off grow by half the RTO instead of a whole one;
   * `interval` (clamped to [10, 5000] ms) is the flush timer; `resend` > 0 enables fast
   * retransmit after that many later ACKs; `nc` = 1 disables congestion control.
   */
  setNoDelay(nodelay: number, interval: number, resend: number, nc: number): void {
    if (nodelay >= 0) {
      this.#nodelay = nodelay;
      this.#rxMinrto = nodelay !== 0 ? RTO_NODELAY_MIN : RTO_MIN;
    }
    if (interval >= 0) {
      this.#interval = interval > MAX_INTERVAL ? MAX_INTERVAL : interval < 10 ? 10 : interval | 0;
    }
    if (resend >= 0) this.#fastresend = resend | 0;
    if (nc >= 0) this.#nocwnd = nc | 0;
  }

  /** kcp-go's `WndSize`: windows in segments; values ≤ 0 leave that window alone. */
  setWindow(sndWnd: number, rcvWnd: number): void {
    if (sndWnd > 0) this.#sndWnd = sndWnd >>> 0;
    if (rcvWnd > 0) {
      this.#rcvWnd = rcvWnd >>> 0;
      if (this.#rcvWnd > this.#rcvSlots.length) this.#resizeRcvSlots(this.#rcvWnd);
    }
  }

  /**
   * Sets the KCP bytes per datagram (the session's `-mtu` minus every packet stage's overhead);
   * mss becomes `mtu − 24`. Returns false (and changes nothing) when `mtu` < {@link MTU_MIN}.
   */
  setMtu(mtu: number): boolean {
    if (!(mtu >= MTU_MIN)) return false;
    this.#mtu = mtu | 0;
    this.#mss = this.#mtu - KCP_OVERHEAD;
    return true;
  }

  /** KCP bytes per datagram. */
  get mtu(): number {
    return this.#mtu;
  }
  /** Largest segment payload (`mtu − 24`). */
  get mss(): number {
    return this.#mss;
  }
  /** Flush interval (ms). */
  get interval(): number {
    return this.#interval;
  }
  /** Send window (segments). */
  get sndWnd(): number {
    return this.#sndWnd;
  }
  /** Receive window (segments). */
  get rcvWnd(): number {
    return this.#rcvWnd;
  }
  /** The peer's last advertised free window (segments). */
  get rmtWnd(): number {
    return this.#rmtWnd;
  }
  /** Current retransmission timeout (ms). */
  get rto(): number {
    return this.#rxRto;
  }
  /** Smoothed RTT (ms; 0 before the first sample). */
  get srtt(): number {
    return this.#rxSrtt;
  }
  /** RTT variation (ms). */
  get rttvar(): number {
    return this.#rxRttvar;
  }
  /** Congestion window (segments; only used when nc = 0). */
  get cwnd(): number {
    return this.#cwnd;
  }
  /** Slow-start threshold (segments; only used when nc = 0). */
  get ssthresh(): number {
    return this.#ssthresh;
  }
  /** Oldest unacknowledged sequence number. */
  get sndUna(): number {
    return this.#sndUna;
  }
  /** Next sequence number to assign. */
  get sndNxt(): number {
    return this.#sndNxt;
  }
  /** Next sequence number expected from the peer. */
  get rcvNxt(): number {
    return this.#rcvNxt;
  }
  /** Current zero-window probe wait (ms; 0 when the peer's window is open). */
  get probeWait(): number {
    return this.#probeWait;
  }
  /** True once a segment was transmitted 20 times (kcp-go sets this and nothing reads it). */
  get deadLink(): boolean {
    return this.#deadLink;
  }
  /** Segments this conversation sent again, for any reason (its part of `RetransSegs`). */
  get retransmits(): number {
    return this.#retransmits;
  }

  /** ACKs queued for the next flush. */
  get pendingAcks(): number {
    return this.#ackCount;
  }
  /** Segments in the reorder buffer (received out of order, not yet deliverable). */
  get reorderCount(): number {
    return this.#rcvBufCount;
  }
  /** Segments in the receive queue (deliverable, not yet fully read). */
  get rcvQueueCount(): number {
    return this.#rcvQueue.size;
  }
  /** Segments waiting to enter the send window. */
  get sndQueueCount(): number {
    return this.#sndQueue.size;
  }
  /** Segments in flight (sent, not yet passed by `una`). */
  get sndBufCount(): number {
    return this.#sndBuf.size;
  }

  // ---------------------------------------------------------------- application side

  /**
   * Queues `bytes[start, end)` for sending (copied; the caller may reuse its buffer). Stream
   * mode: the last segment not yet sent is topped up to mss first, the rest is cut into mss
   * pieces. Always takes everything and returns the byte count: the driver applies back-pressure
   * by writing only while {@link Kcp.writable} is true (kcp-go's Write checks the window once,
   * then takes the whole buffer), and calls {@link Kcp.flush} afterwards (kcptun turns write
   * delay off).
   */
  send(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
    const total = end - start;
    if (total <= 0) return 0;
    const mss = this.#mss;
    let off = start;
    const tail = this.#sndQueue.last();
    if (tail !== undefined && tail.len < mss) {
      // Only a segment still in the queue (never sent) may grow; in-flight bytes are frozen.
      const room = mss - tail.len;
      const n = end - off < room ? end - off : room;
      if (tail.data.length < tail.len + n) this.#regrow(tail, tail.len + n);
      copyBytes(tail.data, tail.len, bytes, off, n);
      tail.len += n;
      off += n;
    }
    while (off < end) {
      const n = end - off < mss ? end - off : mss;
      const seg = this.#segPool.acquire(mss);
      copyBytes(seg.data, 0, bytes, off, n);
      seg.len = n;
      this.#sndQueue.push(seg);
      off += n;
    }
    return total;
  }

  /** Segments queued or in flight (kcp-go's `WaitSnd`). */
  waitSnd(): number {
    return this.#sndQueue.size + this.#sndBuf.size;
  }

  /**
   * True when the application may write: fewer than `min(sndWnd, rmtWnd)` segments are queued
   * or in flight. kcp-go blocks `Write` while this is false.
   */
  writable(): boolean {
    const w = this.#sndQueue.size + this.#sndBuf.size;
    return w < this.#sndWnd && w < this.#rmtWnd;
  }

  /** Bytes delivered in order and not yet read. */
  readable(): number {
    return this.#rcvBytes;
  }

  /**
   * Copies up to `end − offset` in-order bytes into `dst[offset, end)` and returns how many
   * (0 when nothing is readable). Reading frees receive-window space; when the receive queue was
   * full and now has room, the next flush tells the peer (WINS), as kcp-go's `Recv` does.
   */
  recv(dst: Uint8Array, offset = 0, end: number = dst.length): number {
    const q = this.#rcvQueue;
    if (q.size === 0 || end <= offset) return 0;
    const fastRecover = q.size >= this.#rcvWnd;
    let pos = offset;
    while (q.size > 0 && pos < end) {
      const seg = q.first()!;
      const avail = seg.len - this.#rcvHeadOff;
      const n = avail < end - pos ? avail : end - pos;
      copyBytes(dst, pos, seg.data, this.#rcvHeadOff, n);
      pos += n;
      if (n === avail) {
        q.shift();
        this.#segPool.release(seg);
        this.#rcvHeadOff = 0;
      } else {
        this.#rcvHeadOff += n;
      }
    }
    const got = pos - offset;
    this.#rcvBytes -= got;
    this.#moveReady();
    if (fastRecover && q.size < this.#rcvWnd) this.#probe |= ASK_TELL;
    return got;
  }

  /**
   * Reads up to `max` readable bytes into a new array (the caller owns it), or returns null
   * when nothing is readable. One allocation per call, however many segments it drains.
   */
  read(max: number = Infinity): Uint8Array | null {
    const n = this.#rcvBytes < max ? this.#rcvBytes : max;
    if (n <= 0) return null;
    const out = new Uint8Array(n);
    this.recv(out, 0, n);
    return out;
  }

  // ---------------------------------------------------------------- network side

  /**
   * Feeds one datagram's KCP bytes `buffer[start, end)` received at `now`. `recovered` marks a
   * datagram rebuilt by FEC: it may deliver data and ACKs but does not update the peer's window
   * nor give an RTT sample (kcp-go's `regular = false`). Returns a {@link KcpInputResult} code;
   * on an error the segments before the bad one have been applied, the rest is ignored and the
   * end-of-datagram work (RTT, congestion window, flush request) is skipped, as in kcp-go. The
   * driver counts non-zero results as `KCPInErrors`. Never throws for any input bytes.
   *
   * After input the driver calls {@link Kcp.update}: input may have requested a flush (window
   * slid, or ACK-no-delay).
   */
  input(buffer: Uint8Array, start: number, end: number, now: number, recovered = false): number {
    if (end - start < KCP_OVERHEAD) return KcpInputResult.BadConv;
    const regular = !recovered;
    const current = now >>> 0;
    const prevUna = this.#sndUna;
    let latest = 0;
    let sawAck = false;
    let inSegs = 0;
    let windowSlides = false;
    let off = start;

    while (end - off >= KCP_OVERHEAD) {
      if (readU32(buffer, off) !== this.conv) return KcpInputResult.BadConv;
      const cmd = buffer[off + 4];
      const frg = buffer[off + 5];
      const wnd = readU16(buffer, off + 6);
      const ts = readU32(buffer, off + 8);
      const sn = readU32(buffer, off + 12);
      const una = readU32(buffer, off + 16);
      const len = readU32(buffer, off + 20);
      off += KCP_OVERHEAD;
      if (len > end - off) return KcpInputResult.BadLength;
      if (cmd < KcpCmd.Push || cmd > KcpCmd.Wins) return KcpInputResult.BadCommand;

      if (regular) this.#rmtWnd = wnd;
      if (this.#parseUna(una) > 0) windowSlides = true;
      this.#shrinkBuf();

      if (cmd === KcpCmd.Ack) {
        this.#parseAck(sn);
        this.#parseFastack(sn, ts);
        sawAck = true;
        latest = ts;
      } else if (cmd === KcpCmd.Push) {
        let repeat = true;
        if (((sn - (this.#rcvNxt + this.#rcvWnd)) | 0) < 0) {
          if (((sn - this.#rcvNxt) | 0) >= 0) {
            repeat = this.#parseData(sn, frg, ts, buffer, off, len);
          }
          // An FEC-rebuilt copy of a segment we already have tells the peer nothing, and the ts
          // it echoes is that of a transmission long past: as the newest ACK of a flush it would
          // hand the peer an RTT sample of the whole FEC wait.
          if (regular || !repeat || this.ackRecoveredRepeats) this.#ackPush(sn, ts);
        }
        if (regular && repeat) this.#snmp.RepeatSegs++;
      } else if (cmd === KcpCmd.Wask) {
        this.#probe |= ASK_TELL;
      }
      // WINS: the window update above is all it carries.
      inSegs++;
      off += len;
    }
    this.#snmp.InSegs += inSegs;

    if (sawAck && regular) {
      const rtt = (current - latest) | 0;
      if (rtt >= 0) this.#updateAck(rtt);
    }

    if (this.#nocwnd === 0 && ((this.#sndUna - prevUna) | 0) > 0) this.#growCwnd();

    if (windowSlides) {
      this.#pending = PENDING_FULL;
      this.#cutAcks();
    } else if (
      this.#ackCount > this.#ackCut &&
      (this.ackNoDelay ||
        (this.ackWhenFull && this.#ackCount - this.#ackCut >= this.#mtu / KCP_OVERHEAD))
    ) {
      if (this.#pending === PENDING_NONE) this.#pending = PENDING_ACKS;
      this.#cutAcks();
    }
    return KcpInputResult.Ok;
  }

  /**
   * Writes everything due now into datagrams (kcp-go's `flush(false)`): queued ACKs, window
   * probe/tell, new segments the window admits, and retransmissions (fast, early, RTO). Each
   * datagram is a packet acquired from `pool` whose KCP bytes start at `pool.headroom` and hold
   * at most {@link Kcp.mtu} bytes; it is appended to `out`. Does not move the flush timer. The
   * driver calls this after {@link Kcp.send} (kcptun writes with write delay off).
   */
  flush(now: number, out: PacketBatch, pool: PacketPool): void {
    this.#pending = PENDING_NONE;
    this.#flush(now >>> 0, out, pool, false);
  }

  /**
   * Runs what is due at `now`: the timed flush when its deadline has come (and schedules the
   * next one, after `interval` ms or earlier at the nearest retransmission), otherwise the flush
   * that {@link Kcp.input} requested, if any. Call it when `now ≥ check(now)` and after input.
   */
  update(now: number, out: PacketBatch, pool: PacketPool): void {
    const t = now >>> 0;
    this.#schedule(t);
    if (((t - this.#tsFlush) | 0) >= 0) {
      this.#pending = PENDING_NONE;
      const wait = this.#flush(t, out, pool, false);
      this.#tsFlush = (t + wait) >>> 0;
      if (!this.#hasWork()) this.#idle = true;
    } else if (this.#pending !== PENDING_NONE) {
      const ackOnly = this.#pending === PENDING_ACKS;
      this.#pending = PENDING_NONE;
      this.#flush(t, out, pool, ackOnly, true);
    }
  }

  /**
   * The time (same clock as `now`) at which {@link Kcp.update} must next run: `now` itself when
   * something is due, else the next timed flush, or `Infinity` when nothing can become due
   * without new input, a send or a read (then arm no timer: `setTimeout(Infinity)` would fire at
   * once). Call again after every input, send, recv and update.
   */
  check(now: number): number {
    if (this.#pending !== PENDING_NONE) return now;
    if (!this.#hasWork()) {
      this.#idle = true;
      return Infinity;
    }
    const t = now >>> 0;
    this.#schedule(t);
    const d = (this.#tsFlush - t) | 0;
    return d <= 0 ? now : now + d;
  }

  /** Returns every segment to the pool; the instance must not be used afterwards. */
  release(): void {
    const p = this.#segPool;
    while (this.#sndQueue.size > 0) p.release(this.#sndQueue.shift());
    while (this.#sndBuf.size > 0) p.release(this.#sndBuf.shift());
    while (this.#rcvQueue.size > 0) p.release(this.#rcvQueue.shift());
    for (let i = 0; i < this.#rcvSlots.length; i++) {
      const s = this.#rcvSlots[i];
      if (s !== undefined) {
        p.release(s);
        this.#rcvSlots[i] = undefined;
      }
    }
    this.#rcvBufCount = 0;
    this.#rcvBytes = 0;
    this.#rcvHeadOff = 0;
    this.#ackCount = 0;
    this.#ackCut = 0;
  }

  // ---------------------------------------------------------------- internals

  /** Anything a timed flush could act on; when false the kcp-go timer would tick in vain. */
  #hasWork(): boolean {
    return !this.#started || this.#ackCount > 0 || this.#probe !== 0 || this.#rmtWnd === 0 ||
      this.#probeWait !== 0 || this.#sndQueue.size > 0 || this.#sndBuf.size > 0;
  }

  /**
   * kcp-go's timer keeps ticking every `interval` while idle; we sleep instead, and on waking
   * put the next tick back on the grid it would have followed, so ACK delays keep their phase.
   */
  #schedule(t: number): void {
    if (!this.#started) {
      this.#started = true;
      this.#tsFlush = t;
      this.#idle = false;
      return;
    }
    if (this.#idle && this.#hasWork()) {
      this.#idle = false;
      const late = (t - this.#tsFlush) | 0;
      if (late > 0) {
        const steps = Math.ceil(late / this.#interval);
        this.#tsFlush = (this.#tsFlush + steps * this.#interval) >>> 0;
      } else if (late < -MAX_INTERVAL) {
        // A tick is never scheduled further ahead than the longest interval: the u32 clock
        // wrapped during a sleep of 24+ days. Start a new grid.
        this.#tsFlush = t;
      }
    }
  }

  #wndUnused(): number {
    const q = this.#rcvQueue.size;
    return q < this.#rcvWnd ? (this.#rcvWnd - q) & 0xffff : 0;
  }

  #resizeRcvSlots(wnd: number): void {
    let c = 16;
    while (c < wnd) c *= 2;
    const old = this.#rcvSlots;
    const next = new Array<KcpSegment | undefined>(c).fill(undefined);
    const mask = c - 1;
    for (let i = 0; i < old.length; i++) {
      const s = old[i];
      if (s !== undefined) next[s.sn & mask] = s;
    }
    this.#rcvSlots = next;
    this.#rcvMask = mask;
  }

  #regrow(seg: KcpSegment, need: number): void {
    const d = new Uint8Array(Math.max(need, this.#segPool.capacity));
    d.set(seg.data.subarray(0, seg.len));
    seg.data = d;
    seg.view = d.subarray(0, 0);
  }

  #updateAck(rtt: number): void {
    if (this.#rxSrtt === 0) {
      this.#rxSrtt = rtt;
      this.#rxRttvar = rtt >> 1;
    } else {
      let delta = (rtt - this.#rxSrtt) | 0;
      this.#rxSrtt = (this.#rxSrtt + (delta >> 3)) | 0;
      if (delta < 0) delta = -delta;
      if (rtt < this.#rxSrtt - this.#rxRttvar) {
        // A sample below the expected range gets an 8x smaller weight.
        this.#rxRttvar = (this.#rxRttvar + ((delta - this.#rxRttvar) >> 5)) | 0;
      } else {
        this.#rxRttvar = (this.#rxRttvar + ((delta - this.#rxRttvar) >> 2)) | 0;
      }
    }
    const v4 = (this.#rxRttvar << 2) >>> 0;
    const rto = ((this.#rxSrtt >>> 0) + (this.#interval > v4 ? this.#interval : v4)) >>> 0;
    this.#rxRto = rto < this.#rxMinrto ? this.#rxMinrto : rto > RTO_MAX ? RTO_MAX : rto;
  }

  #shrinkBuf(): void {
    const f = this.#sndBuf.first();
    this.#sndUna = f !== undefined ? f.sn : this.#sndNxt;
  }

  #parseAck(sn: number): void {
    if (((sn - this.#sndUna) | 0) < 0 || ((sn - this.#sndNxt) | 0) >= 0) return;
    // The send buffer holds consecutive sequence numbers from its head, so the ACKed segment's
    // position is a subtraction (kcp-go scans for it).
    const buf = this.#sndBuf;
    if (buf.size === 0) return;
    const idx = (sn - buf.first()!.sn) | 0;
    if (idx < 0 || idx >= buf.size) return;
    buf.at(idx).acked = true;
  }

  #parseFastack(sn: number, ts: number): void {
    if (((sn - this.#sndUna) | 0) < 0 || ((sn - this.#sndNxt) | 0) >= 0) return;
    const buf = this.#sndBuf;
    const n = buf.size;
    for (let k = 0; k < n; k++) {
      const seg = buf.at(k);
      if (((sn - seg.sn) | 0) <= 0) break;
      if (((seg.ts - ts) | 0) <= 0) seg.fastack++;
    }
  }

  #parseUna(una: number): number {
    const buf = this.#sndBuf;
    let count = 0;
    while (buf.size > 0 && ((una - buf.first()!.sn) | 0) > 0) {
      this.#segPool.release(buf.shift());
      count++;
    }
    return count;
  }

  #ackPush(sn: number, ts: number): void {
    if (this.#ackCount === this.#ackSn.length) {
      const n = this.#ackSn.length * 2;
      const s = new Uint32Array(n);
      const t = new Uint32Array(n);
      const k = new Uint8Array(n);
      s.set(this.#ackSn);
      t.set(this.#ackTs);
      k.set(this.#ackKeep);
      this.#ackSn = s;
      this.#ackTs = t;
      this.#ackKeep = k;
    }
    this.#ackSn[this.#ackCount] = sn;
    this.#ackTs[this.#ackCount] = ts;
    this.#ackCount++;
  }

  /**
   * Closes the ACKs queued since the last cut into one flush's worth and picks the ones that
   * flush writes, as kcp-go's would at this moment: ACKs for segments already passed by
   * `rcv_nxt` are redundant, except the newest one (it carries an RTT sample).
   */
  #cutAcks(): void {
    const n = this.#ackCount, una = this.#rcvNxt, sn = this.#ackSn, keep = this.#ackKeep;
    for (let i = this.#ackCut; i < n; i++) {
      keep[i] = ((sn[i] - una) | 0) >= 0 || i === n - 1 ? 1 : 0;
    }
    this.#ackCut = n;
  }

  /** Stores a PUSH in the reorder buffer unless already there; true if it was a repeat. */
  #parseData(
    sn: number,
    frg: number,
    ts: number,
    buffer: Uint8Array,
    off: number,
    len: number,
  ): boolean {
    if (
      ((sn - (this.#rcvNxt + this.#rcvWnd)) | 0) >= 0 || ((sn - this.#rcvNxt) | 0) < 0
    ) return true;
    const slot = sn & this.#rcvMask;
    const have = this.#rcvSlots[slot];
    let repeat: boolean;
    if (have !== undefined) {
      repeat = true;
    } else {
      repeat = false;
      const seg = this.#segPool.acquire(len);
      seg.sn = sn;
      seg.frg = frg;
      seg.ts = ts;
      seg.len = len;
      copyBytes(seg.data, 0, buffer, off, len);
      this.#rcvSlots[slot] = seg;
      this.#rcvBufCount++;
    }
    this.#moveReady();
    return repeat;
  }

  /** Moves consecutive segments from the reorder buffer to the receive queue, window permitting. */
  #moveReady(): void {
    const slots = this.#rcvSlots;
    const mask = this.#rcvMask;
    const q = this.#rcvQueue;
    while (this.#rcvBufCount > 0 && q.size < this.#rcvWnd) {
      const slot = this.#rcvNxt & mask;
      const seg = slots[slot];
      if (seg === undefined || seg.sn !== this.#rcvNxt) break;
      slots[slot] = undefined;
      this.#rcvBufCount--;
      this.#rcvNxt = (this.#rcvNxt + 1) >>> 0;
      if (seg.len === 0) {
        // Real peers never send empty PUSHes; queueing one would hold window space that no
        // read ever frees (kcp-go's reader stalls on it).
        this.#segPool.release(seg);
        continue;
      }
      q.push(seg);
      this.#rcvBytes += seg.len;
    }
  }

  #growCwnd(): void {
    if (this.#cwnd >= this.#rmtWnd) return;
    const mss = this.#mss;
    if (this.#cwnd < this.#ssthresh) {
      this.#cwnd++;
      this.#incr += mss;
    } else {
      if (this.#incr < mss) this.#incr = mss;
      this.#incr += Math.floor((mss * mss) / this.#incr) + Math.floor(mss / 16);
      if ((this.#cwnd + 1) * mss <= this.#incr) {
        this.#cwnd = mss > 0 ? Math.floor((this.#incr + mss - 1) / mss) : this.#incr + mss - 1;
      }
    }
    if (this.#cwnd > this.#rmtWnd) {
      this.#cwnd = this.#rmtWnd;
      this.#incr = this.#rmtWnd * mss;
    }
  }

  /** Returns the offset at which `space` bytes may be written, starting a new datagram if needed. */
  #space(space: number): number {
    let pkt = this.#pkt;
    if (pkt !== null && this.#pos - pkt.start + space > this.#mtu) {
      this.#emit();
      pkt = null;
    }
    if (pkt === null) {
      pkt = this.#pool!.acquire();
      if (pkt.start + Math.max(space, this.#mtu) > pkt.buffer.length) {
        pkt.release();
        throw new RangeError(
          `packet pool buffers (${pkt.buffer.length} bytes, headroom ${pkt.start}) cannot hold ` +
            `a ${this.#mtu}-byte KCP datagram`,
        );
      }
      this.#pkt = pkt;
      this.#pos = pkt.start;
    }
    return this.#pos;
  }

  #emit(): void {
    const pkt = this.#pkt!;
    pkt.end = this.#pos;
    this.#out!.push(pkt);
    this.#pkt = null;
  }

  #writeCtl(cmd: number, wnd: number, ts: number, sn: number, una: number): void {
    const o = this.#space(KCP_OVERHEAD);
    this.#pos = writeSegmentHeader(this.#pkt!.buffer, o, this.conv, cmd, 0, wnd, ts, sn, una, 0);
  }

  /**
   * kcp-go's `flush`: returns the wait until the next timed flush (≤ interval). `requested`: the
   * flush input asked for, which writes only the ACKs before the cut (the later ones stay
   * queued); otherwise every queued ACK goes.
   */
  #flush(
    current: number,
    out: PacketBatch,
    pool: PacketPool,
    ackOnly: boolean,
    requested = false,
  ): number {
    this.#out = out;
    this.#pool = pool;
    const snmp = this.#snmp;
    const wnd = this.#wndUnused();
    const una = this.#rcvNxt;
    let outSegs = 0;
    // WASK/WINS carry whatever sn/ts the last ACK written in this flush had (kcp-go reuses one
    // segment struct); the peer ignores them.
    let ctlSn = 0;
    let ctlTs = 0;

    if (!requested) this.#cutAcks();
    const nAck = this.#ackCut;
    const ackSn = this.#ackSn, ackTs = this.#ackTs, keep = this.#ackKeep;
    for (let i = 0; i < nAck; i++) {
      if (keep[i] !== 0) {
        ctlSn = ackSn[i];
        ctlTs = ackTs[i];
        this.#writeCtl(KcpCmd.Ack, wnd, ctlTs, ctlSn, una);
        outSegs++;
      }
    }
    const rest = this.#ackCount - nAck;
    if (rest > 0) {
      ackSn.copyWithin(0, nAck, this.#ackCount);
      ackTs.copyWithin(0, nAck, this.#ackCount);
    }
    this.#ackCount = rest;
    this.#ackCut = 0;

    if (ackOnly) {
      if (this.#pkt !== null) this.#emit();
      snmp.OutSegs += outSegs;
      this.#out = null;
      this.#pool = null;
      return this.#interval;
    }

    if (this.#rmtWnd === 0) {
      if (this.#probeWait === 0) {
        this.#probeWait = this.#probeInit;
        this.#tsProbe = (current + this.#probeWait) >>> 0;
      } else if (((current - this.#tsProbe) | 0) >= 0) {
        if (this.#probeWait < this.#probeInit) this.#probeWait = this.#probeInit;
        this.#probeWait += Math.floor(this.#probeWait / 2);
        if (this.#probeWait > PROBE_LIMIT) this.#probeWait = PROBE_LIMIT;
        this.#tsProbe = (current + this.#probeWait) >>> 0;
        this.#probe |= ASK_SEND;
      }
    } else {
      this.#tsProbe = 0;
      this.#probeWait = 0;
    }
    if ((this.#probe & ASK_SEND) !== 0) {
      this.#writeCtl(KcpCmd.Wask, wnd, ctlTs, ctlSn, una);
      outSegs++;
    }
    if ((this.#probe & ASK_TELL) !== 0) {
      this.#writeCtl(KcpCmd.Wins, wnd, ctlTs, ctlSn, una);
      outSegs++;
    }
    this.#probe = 0;

    let cwnd = this.#sndWnd < this.#rmtWnd ? this.#sndWnd : this.#rmtWnd;
    if (this.#nocwnd === 0 && this.#cwnd < cwnd) cwnd = this.#cwnd;

    let newSegs = 0;
    const sq = this.#sndQueue;
    const sb = this.#sndBuf;
    while (sq.size > 0 && ((this.#sndNxt - (this.#sndUna + cwnd)) | 0) < 0) {
      const seg = sq.shift();
      seg.sn = this.#sndNxt;
      sb.push(seg);
      this.#sndNxt = (this.#sndNxt + 1) >>> 0;
      newSegs++;
    }

    const resent = this.#fastresend > 0 ? this.#fastresend : 0xffffffff;
    let change = 0, lost = 0, fast = 0, early = 0;
    let minrto = this.#interval;
    const rxRto = this.#rxRto;
    const n = sb.size;
    for (let k = 0; k < n; k++) {
      const seg = sb.at(k);
      if (seg.acked) continue;
      let needsend = false;
      if (seg.xmit === 0) {
        needsend = true;
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
      } else if (seg.fastack >= resent) {
        needsend = true;
        seg.fastack = 0;
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
        change++;
        fast++;
      } else if (seg.fastack > 0 && newSegs === 0) {
        needsend = true;
        seg.fastack = 0;
        seg.rto = rxRto;
        seg.resendts = (current + seg.rto) >>> 0;
        change++;
        early++;
      } else if (((current - seg.resendts) | 0) >= 0) {
        needsend = true;
        seg.rto = (seg.rto + (this.#nodelay === 0 ? rxRto : Math.floor(rxRto / 2))) >>> 0;
        seg.fastack = 0;
        seg.resendts = (current + seg.rto) >>> 0;
        lost++;
      }

      if (needsend) {
        seg.xmit++;
        seg.ts = current;
        const len = seg.len;
        const o = this.#space(KCP_OVERHEAD + len);
        const buf = this.#pkt!.buffer;
        const p = writeSegmentHeader(
          buf,
          o,
          this.conv,
          KcpCmd.Push,
          seg.frg,
          wnd,
          current,
          seg.sn,
          una,
          len,
        );
        if (len < SMALL_COPY) {
          const d = seg.data;
          for (let i = 0; i < len; i++) buf[p + i] = d[i];
        } else {
          buf.set(seg.payload(), p);
        }
        this.#pos = p + len;
        outSegs++;
        if (seg.xmit >= DEAD_LINK) this.#deadLink = true;
      }

      const rto = (seg.resendts - current) | 0;
      if (rto > 0 && rto < minrto) minrto = rto;
    }

    if (this.#pkt !== null) this.#emit();
    this.#out = null;
    this.#pool = null;

    snmp.OutSegs += outSegs;
    const sum = lost + fast + early;
    if (sum > 0) {
      snmp.LostSegs += lost;
      snmp.FastRetransSegs += fast;
      snmp.EarlyRetransSegs += early;
      snmp.RetransSegs += sum;
      this.#retransmits += sum;
    }

    if (this.#nocwnd === 0) {
      if (change > 0) {
        // Rate halving (RFC 6937) after a fast or early retransmit.
        const inflight = (this.#sndNxt - this.#sndUna) >>> 0;
        this.#ssthresh = Math.floor(inflight / 2);
        if (this.#ssthresh < THRESH_MIN) this.#ssthresh = THRESH_MIN;
        // u32 sum in Go: with fast retransmit off (resent = 2^32 − 1) this wraps to ssthresh − 1.
        this.#cwnd = (this.#ssthresh + resent) >>> 0;
        this.#incr = Math.imul(this.#cwnd, this.#mss) >>> 0;
      }
      if (lost > 0) {
        this.#ssthresh = Math.floor(cwnd / 2);
        if (this.#ssthresh < THRESH_MIN) this.#ssthresh = THRESH_MIN;
        this.#cwnd = 1;
        this.#incr = this.#mss;
      }
      if (this.#cwnd < 1) {
        this.#cwnd = 1;
        this.#incr = this.#mss;
      }
    }
    return minrto;
  }
}
