/**
 * The smux session as a sans-IO state machine (docs/protocol.md §6): bytes from the underlying
 * reliable stream go in through {@link SmuxSession.receive}, frames to send come out of
 * {@link SmuxSession.pollTransmit}, time goes in through {@link SmuxSession.handleTimeout} at
 * {@link SmuxSession.nextDeadline}. Applications act on streams by id. No timers, no clock, no
 * promises: a driver (`driver.ts`) owns those.
 *
 * Behaviour follows smux v1.5.16 (kcptun 2021) on the wire and in its limits:
 * - session receive buffer (`maxReceiveBuffer`): a token bucket; each PSH payload for a live
 *   stream takes tokens, reading it gives them back; while the bucket is empty the session stops
 *   taking input ({@link SmuxSession.wantsInput} is false), so the underlying stream backs up;
 * - version 2 per-stream window: at most `peerWindow − (written − peerConsumed)` bytes in flight;
 *   the reader sends UPD(consumed, maxStreamBuffer) on its first read and every
 *   maxStreamBuffer/2 bytes read;
 * - keepalive: a NOP every interval; the session closes when a whole timeout period passed
 *   without a frame header while it was not itself blocked;
 * - a wrong version byte or an unknown command closes the session (protocol error). Stricter than
 *   v1.5.16 and like smux v1.5.53+: SYN/FIN/NOP must have length 0 and UPD length 8 (every smux
 *   sends exactly that). UPD on a version 1 session is ignored, as 2021 did.
 *
 * Version 0 (kcptun-ts, servers only) leaves the version to the peer: the first frame's version
 * byte (1 or 2) becomes the session's. Until then the session sends nothing, NOPs included, since
 * any byte it wrote would carry a guessed version; a NOP that fell due meanwhile goes out as soon
 * as the version is known. A kcptun client always sends first (a SYN, or its own NOP).
 *
 * Local choices (no wire effect): writes are sent fairly (one frame per stream in turn, control
 * frames SYN/NOP/UPD first); closing a stream sends its queued data, then FIN; bytes that had
 * arrived before a local close can still be read.
 *
 * @module
 */

import { StageError } from "../../pipeline/stage.ts";
import { ChunkQueue } from "./chunk_queue.ts";
import { type SmuxConfig, smuxConfig } from "./config.ts";
import {
  CMD_FIN,
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  HEADER_SIZE,
  INITIAL_PEER_WINDOW,
  readU32,
  SmuxFrameParser,
  UPD_SIZE,
  writeHeader,
  writeU32,
} from "./frame.ts";
import { NumberQueue } from "./number_queue.ts";

/** Which end of the session this is; decides stream id parity (client odd from 3, server even). */
export type SmuxRole = "client" | "server";

/**
 * First id of the marked streams (kcptun-ts): the top half of the id space, with the peer's
 * parity (client even from 0x80000000, server odd from 0x80000001).
 */
export const MARKED_STREAM_BASE = 0x80000000;

/**
 * True when a stream the peer opened is a marked one: its id has this end's own parity, which
 * smux never gives a stream the peer opens (a kcptun client opens odd ids only, even after they
 * wrap). Meaningful for accepted streams only; the id alone tells, at SYN time.
 */
export function isMarkedStream(role: SmuxRole, id: number): boolean {
  return (id & 1) === (role === "client" ? 1 : 0);
}

/** Counters for logging and tests. */
export interface SmuxStats {
  /** Streams opened locally. */
  streamsOpened: number;
  /** Streams the peer opened (SYN received). */
  streamsAccepted: number;
  /** Streams gone from the session (both sides done, or the session closed). */
  streamsClosed: number;
  /** Streams currently in the session. */
  activeStreams: number;
  /** Frames parsed. */
  framesIn: number;
  /** Frames emitted. */
  framesOut: number;
  /** PSH payload bytes received for live streams. */
  bytesIn: number;
  /** PSH payload bytes emitted. */
  bytesOut: number;
}

class StreamState {
  readonly recv = new ChunkQueue();
  readonly send = new ChunkQueue();
  finReceived = false;
  /** Local close requested: FIN goes after the queued data. */
  closing = false;
  finSent = false;
  /** The application stopped reading: arriving data is dropped (and counted as consumed). */
  readDiscard = false;
  /** Opened by the peer and not yet accepted. */
  unaccepted = false;
  writeError: string | null = null;
  // version 2 flow control, u32 counters
  numRead = 0;
  incr = 0;
  numWritten = 0;
  peerConsumed = 0;
  peerWindow = INITIAL_PEER_WINDOW;
  updQueued = false;
  /** The `consumed` value of the queued UPD (numRead when the last read called for one). */
  updConsumed = 0;
  dirty = false;
  // round-robin ring of streams with something to send
  active = false;
  next: StreamState | null = null;
  prev: StreamState | null = null;

  constructor(readonly id: number) {}
}

/**
 * One smux session. All methods are synchronous; none throws on anything the peer sends.
 * Methods that take a stream id and find no such stream do nothing (reads return null).
 *
 * Byte buffers change hands without copying: {@link receive} takes its input over, {@link write}
 * takes the written chunk over (the caller must not modify it afterwards), and the buffers
 * {@link read} and {@link pollTransmit} return belong to the caller.
 */
export class SmuxSession {
  /** The settings in force. */
  readonly config: Readonly<SmuxConfig>;
  /** Which end this is. */
  readonly role: SmuxRole;
  /** 0 until a version-0 session has seen its first frame. */
  #ver: 0 | 1 | 2;
  readonly #updThreshold: number;
  readonly #parser = new SmuxFrameParser();
  readonly #streams = new Map<number, StreamState>();
  readonly #accepts = new NumberQueue();
  /** Control frames to send, as sid * 8 + cmd. */
  readonly #control = new NumberQueue();
  readonly #dirty = new NumberQueue();
  /** Next stream to serve in the send ring. */
  #ring: StreamState | null = null;
  #bucket: number;
  #nextId: number;
  #goAway = false;
  #nextMarkedId: number;
  #markedGoAway = false;
  #nopQueued = false;
  /** A NOP fell due while the version was unknown. */
  #nopOwed = false;
  #closed = false;
  #closeReason: string | null = null;
  #closeIsError = false;
  #nextPing = Infinity;
  #nextCheck = Infinity;
  #headersAtCheck = 0;
  #buffered = 0;
  #queued = 0;
  readonly #stats: SmuxStats = {
    streamsOpened: 0,
    streamsAccepted: 0,
    streamsClosed: 0,
    activeStreams: 0,
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
  };

  /**
   * A session starting at time `now` (ms). `config` is completed from kcptun 2021's defaults and
   * checked (a bad setting throws a `StageError`).
   */
  constructor(role: SmuxRole, config: Partial<SmuxConfig> = {}, now = 0) {
    this.config = Object.freeze(smuxConfig(config));
    this.role = role;
    this.#ver = this.config.version;
    if (this.#ver === 0 && role === "client") {
      throw new StageError(
        "smux: version 0 (the peer's) is for servers; a client must choose 1 or 2",
      );
    }
    this.#updThreshold = Math.floor(this.config.maxStreamBuffer / 2);
    this.#bucket = this.config.maxReceiveBuffer;
    this.#nextId = role === "client" ? 1 : 0;
    this.#nextMarkedId = MARKED_STREAM_BASE + (role === "client" ? -2 : -1);
    if (!this.config.keepAliveDisabled) {
      this.#nextPing = now + this.config.keepAliveInterval;
      this.#nextCheck = now + this.config.keepAliveTimeout;
    }
  }

  // ---- session state ----

  /**
   * The protocol version in use: the configured one, or for a version-0 session the version of
   * the peer's first frame (0 until it arrived).
   */
  get version(): 0 | 1 | 2 {
    return this.#ver;
  }

  /** True once the session is closed (locally, by timeout, or by a protocol or I/O error). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why the session closed, or null while open. */
  get closeReason(): string | null {
    return this.#closeReason;
  }

  /** True when the session closed because of an error (reads then fail rather than end). */
  get closeIsError(): boolean {
    return this.#closeIsError;
  }

  /** Counters (a live object; copy it to keep a snapshot). */
  get stats(): Readonly<SmuxStats> {
    this.#stats.activeStreams = this.#closed ? 0 : this.#streams.size;
    return this.#stats;
  }

  /** Tokens left in the session receive bucket (may be negative by up to one frame). */
  get bucket(): number {
    return this.#bucket;
  }

  /** Received stream bytes not yet read, over all streams. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Input bytes taken but not yet parsed into frames. */
  get pendingInputBytes(): number {
    return this.#parser.pendingBytes;
  }

  /** Written stream bytes not yet emitted as frames, over all streams. */
  get queuedSendBytes(): number {
    return this.#queued;
  }

  /**
   * Closes the session: nothing more is sent or parsed, every stream's writes fail, reads return
   * what was already buffered and then end (or fail, when `error`). Idempotent.
   */
  close(reason = "session closed", error = false): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#closeIsError = error;
    this.#control.clear();
    this.#accepts.clear();
    this.#parser.clear();
    this.#queued = 0;
    // Streams stay in the map (reads of what was buffered still work) but count as closed.
    this.#stats.streamsClosed += this.#streams.size;
    for (const s of this.#streams.values()) {
      s.send.clear();
      this.#deactivate(s);
      this.#markDirty(s);
      if (s.unaccepted) this.#returnTokens(s.recv.clear());
    }
  }

  // ---- streams ----

  /**
   * Opens a stream (queues its SYN) and returns its id. Throws a `StageError` when the session is
   * closed or the stream id space is exhausted ("go away": open a new session).
   */
  openStream(): number {
    if (this.#closed) throw new StageError("smux: session closed");
    for (;;) {
      if (this.#goAway) throw new StageError("smux: stream ids exhausted, open a new session");
      const id = (this.#nextId + 2) >>> 0;
      this.#nextId = id;
      if (id < 2) {
        this.#goAway = true;
        continue;
      }
      if (this.#streams.has(id)) continue; // the peer used an id of our parity
      return this.#open(id);
    }
  }

  /**
   * Opens a marked stream (kcptun-ts): its id has the peer's parity, from
   * {@link MARKED_STREAM_BASE} up, so that the peer knows it from its SYN alone
   * ({@link isMarkedStream}) before any byte of it arrives. On the wire it is an ordinary stream:
   * a peer that does not look at ids (any kcptun) takes it as one. Throws a `StageError` when the
   * session is closed or the marked ids are exhausted (2^30 of them).
   */
  openMarkedStream(): number {
    if (this.#closed) throw new StageError("smux: session closed");
    for (;;) {
      if (this.#markedGoAway) {
        throw new StageError("smux: marked stream ids exhausted, open a new session");
      }
      const id = (this.#nextMarkedId + 2) >>> 0;
      this.#nextMarkedId = id;
      if (id < MARKED_STREAM_BASE) {
        this.#markedGoAway = true;
        continue;
      }
      if (this.#streams.has(id)) continue; // the peer opened one of its own ids up here
      return this.#open(id);
    }
  }

  #open(id: number): number {
    this.#streams.set(id, new StreamState(id));
    this.#control.push(id * 8 + CMD_SYN);
    this.#stats.streamsOpened++;
    return id;
  }

  /** Takes the next stream the peer opened, or -1 when none is waiting. */
  accept(): number {
    for (;;) {
      const id = this.#accepts.shift();
      if (id < 0) return -1;
      const s = this.#streams.get(id);
      if (!s || !s.unaccepted) continue;
      s.unaccepted = false;
      this.#processInput(); // the backlog may have been what blocked input
      return id;
    }
  }

  /** Streams the peer opened that wait for {@link accept}. */
  get pendingAccepts(): number {
    return this.#accepts.length;
  }

  /**
   * True while the stream exists in the session (after the session closed: until its buffered
   * bytes are read).
   */
  hasStream(id: number): boolean {
    const s = this.#streams.get(id);
    return s !== undefined && !(this.#closed && (s.recv.bytes === 0 || s.unaccepted));
  }

  /**
   * Queues `bytes` on stream `id` (taken over, not copied). Throws a `StageError` when the stream
   * cannot be written (see {@link writeError}).
   */
  write(id: number, bytes: Uint8Array): void {
    const s = this.#streams.get(id);
    const err = this.#writeErrorOf(s);
    if (err !== null) throw new StageError(`smux: stream ${id}: ${err}`);
    if (bytes.length === 0) return;
    s!.send.push(bytes);
    this.#queued += bytes.length;
    this.#reschedule(s!);
  }

  /** Bytes written to stream `id` and not yet emitted. */
  queuedBytes(id: number): number {
    return this.#streams.get(id)?.send.bytes ?? 0;
  }

  /** Why stream `id` cannot be written, or null when it can. */
  writeError(id: number): string | null {
    return this.#writeErrorOf(this.#streams.get(id));
  }

  /**
   * Why writing stream `id` failed for good, or null: the session closed, written data was lost
   * (the peer's FIN arrived with data unsent), or the peer misbehaved. A stream closed normally
   * (either side's FIN) has no write failure, though {@link writeError} refuses new writes.
   */
  writeFailure(id: number): string | null {
    if (this.#closed) return `session closed (${this.#closeReason})`;
    return this.#streams.get(id)?.writeError ?? null;
  }

  #writeErrorOf(s: StreamState | undefined): string | null {
    if (this.#closed) return `session closed (${this.#closeReason})`;
    if (!s) return "no such stream";
    if (s.writeError !== null) return s.writeError;
    if (s.finReceived) return "stream closed by peer";
    if (s.closing) return "stream closed";
    return null;
  }

  /**
   * Closes stream `id`: its queued data is sent, then FIN. Data arriving afterwards is dropped;
   * data that had arrived can still be read.
   */
  closeStream(id: number): void {
    const s = this.#streams.get(id);
    if (!s || s.closing) return;
    s.closing = true;
    this.#reschedule(s);
  }

  /** Closes stream `id` dropping its unsent data (then FIN). */
  abortStream(id: number): void {
    const s = this.#streams.get(id);
    if (!s) return;
    this.#queued -= s.send.clear();
    this.closeStream(id);
    this.#reschedule(s);
  }

  /** True once stream `id`'s FIN has been emitted (or the stream is gone). */
  finSent(id: number): boolean {
    const s = this.#streams.get(id);
    return !s || s.finSent;
  }

  /** True once the peer closed stream `id` (its FIN arrived), or the stream is gone. */
  peerClosed(id: number): boolean {
    return this.#streams.get(id)?.finReceived ?? true;
  }

  /**
   * True when reading stream `id` ended cleanly or was ended locally (peer FIN, local close or
   * cancelled reads, or the stream is gone), as opposed to ended by a failed session.
   */
  readEndedCleanly(id: number): boolean {
    const s = this.#streams.get(id);
    if (!s) return true;
    return s.finReceived || s.closing || s.readDiscard || !this.#closeIsError;
  }

  /**
   * Reads up to `max` buffered bytes of stream `id` (one received frame's worth at most), or null
   * when none are buffered. Gives the bytes' tokens back to the session, and in version 2 queues
   * the window update the read calls for.
   */
  read(id: number, max: number = Infinity): Uint8Array | null {
    const s = this.#streams.get(id);
    if (!s || s.recv.bytes === 0) return null;
    const chunk = s.recv.shift(max);
    this.#returnTokens(chunk.length);
    this.#consumed(s, chunk.length);
    this.#maybeRemove(s);
    return chunk;
  }

  /** Buffered unread bytes of stream `id`. */
  readableBytes(id: number): number {
    return this.#streams.get(id)?.recv.bytes ?? 0;
  }

  /**
   * True when stream `id` will never have more to read: nothing is buffered and the peer closed
   * it, it was closed or its reading cancelled locally, or the session closed.
   */
  readEnded(id: number): boolean {
    const s = this.#streams.get(id);
    if (!s || s.unaccepted && this.#closed) return true;
    if (s.recv.bytes > 0) return false;
    return s.finReceived || s.closing || s.readDiscard || this.#closed;
  }

  /**
   * The application will not read stream `id` any more: drops what is buffered and, from now
   * on, what arrives (counted as consumed, so a version 2 peer is not blocked by it).
   */
  discardReads(id: number): void {
    const s = this.#streams.get(id);
    if (!s || s.readDiscard) return;
    s.readDiscard = true;
    const n = s.recv.clear();
    this.#returnTokens(n);
    this.#consumed(s, n);
    this.#maybeRemove(s);
  }

  /**
   * The id of a stream whose state changed since it was last returned (data or FIN arrived, its
   * queued data was all sent, its FIN went out, it failed or left the session), or -1.
   */
  takeDirty(): number {
    const id = this.#dirty.shift();
    if (id >= 0) {
      const s = this.#streams.get(id);
      if (s) s.dirty = false;
    }
    return id;
  }

  // ---- input ----

  /** True when the session wants more input (open, bucket not empty, accept backlog not full). */
  wantsInput(): boolean {
    return !this.#closed && this.#bucket > 0 && this.#accepts.length < this.config.acceptBacklog;
  }

  /**
   * Takes bytes from the underlying stream (split anywhere) and parses what frames it can. Input
   * given while {@link wantsInput} is false is kept and parsed once the session unblocks.
   */
  receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#parser.push(bytes);
    this.#processInput();
  }

  /** The peer's byte stream ended (or failed): the session closes. */
  receiveEnd(error?: string): void {
    if (error === undefined) this.close("underlying stream ended");
    else this.close(`underlying stream failed: ${error}`, true);
  }

  #processInput(): void {
    const p = this.#parser;
    const backlog = this.config.acceptBacklog;
    while (!this.#closed && this.#bucket > 0 && this.#accepts.length < backlog && p.next()) {
      this.#handleFrame(p);
    }
  }

  #protocolError(message: string): void {
    this.close(`invalid protocol: ${message}`, true);
  }

  #handleFrame(p: SmuxFrameParser): void {
    this.#stats.framesIn++;
    if (this.#ver === 0) {
      if (p.ver !== 1 && p.ver !== 2) {
        return this.#protocolError(`first frame has version ${p.ver}, neither 1 nor 2`);
      }
      this.#learnVersion(p.ver);
    } else if (p.ver !== this.#ver) {
      return this.#protocolError(`version ${p.ver} frame on a version ${this.#ver} session`);
    }
    const sid = p.sid;
    const n = p.length;
    switch (p.cmd) {
      case CMD_NOP:
        if (n !== 0) this.#protocolError(`NOP with length ${n}`);
        return;
      case CMD_SYN: {
        if (n !== 0) return this.#protocolError(`SYN with length ${n}`);
        if (this.#streams.has(sid)) return;
        const s = new StreamState(sid);
        s.unaccepted = true;
        this.#streams.set(sid, s);
        this.#accepts.push(sid);
        this.#stats.streamsAccepted++;
        return;
      }
      case CMD_FIN: {
        if (n !== 0) return this.#protocolError(`FIN with length ${n}`);
        const s = this.#streams.get(sid);
        if (!s || s.finReceived) return;
        s.finReceived = true;
        // Full close: the peer has dropped the stream, so unsent data can never be delivered.
        const dropped = s.send.clear();
        this.#queued -= dropped;
        if (dropped > 0) s.writeError = "stream closed by peer with data unsent";
        this.#reschedule(s);
        this.#markDirty(s);
        return;
      }
      case CMD_PSH: {
        if (n === 0) return;
        const s = this.#streams.get(sid);
        if (!s || s.closing) return;
        if (s.readDiscard) return this.#consumed(s, n);
        s.recv.push(p.payload);
        this.#bucket -= n;
        this.#buffered += n;
        this.#stats.bytesIn += n;
        this.#markDirty(s);
        return;
      }
      case CMD_UPD: {
        if (n !== UPD_SIZE) return this.#protocolError(`UPD with length ${n}`);
        if (this.#ver !== 2) return;
        const s = this.#streams.get(sid);
        if (!s) return;
        s.peerConsumed = readU32(p.payload, 0);
        s.peerWindow = readU32(p.payload, 4);
        if (((s.numWritten - s.peerConsumed) | 0) < 0 && s.writeError === null) {
          s.writeError = "peer consumed more than sent";
          this.#queued -= s.send.clear();
          this.#markDirty(s);
        }
        this.#reschedule(s);
        return;
      }
      default:
        this.#protocolError(`unknown command ${p.cmd}`);
    }
  }

  /** A version-0 session takes the peer's version; what waited for it may now be sent. */
  #learnVersion(ver: 1 | 2): void {
    this.#ver = ver;
    if (this.#nopOwed) {
      this.#nopOwed = false;
      this.#nopQueued = true;
      this.#control.push(CMD_NOP);
    }
  }

  #returnTokens(n: number): void {
    if (n === 0) return;
    this.#bucket += n;
    this.#buffered -= n;
    if (this.#parser.pendingBytes > 0) this.#processInput();
  }

  /** Counts `n` bytes of stream `s` as consumed by the application (version 2 window). */
  #consumed(s: StreamState, n: number): void {
    if (this.#ver !== 2 || n === 0) return;
    s.numRead = (s.numRead + n) >>> 0;
    s.incr += n;
    if (s.incr >= this.#updThreshold || s.numRead === n) {
      s.incr = 0;
      if (s.numRead === 0 || s.closing || this.#closed) return;
      // One queued UPD per stream at most: a later one only raises its consumed count.
      s.updConsumed = s.numRead;
      if (!s.updQueued) {
        s.updQueued = true;
        this.#control.push(s.id * 8 + CMD_UPD);
      }
    }
  }

  #markDirty(s: StreamState): void {
    if (s.dirty) return;
    s.dirty = true;
    this.#dirty.push(s.id);
  }

  #maybeRemove(s: StreamState): void {
    if (this.#closed || !s.finSent || s.recv.bytes > 0) return;
    if (this.#streams.get(s.id) !== s) return;
    this.#deactivate(s);
    this.#streams.delete(s.id);
    this.#stats.streamsClosed++;
    this.#markDirty(s);
  }

  // ---- output ----

  /** True when {@link pollTransmit} has a frame to give. */
  hasTransmit(): boolean {
    return !this.#closed && this.#ver !== 0 && (this.#control.length > 0 || this.#ring !== null);
  }

  /**
   * The next frame to write to the underlying stream, or null. Control frames come first; then
   * streams with data or a pending FIN take turns, one frame each. A driver writes each frame as
   * one write (snappy then makes it one chunk, as kcptun does). The frame is a fresh buffer, or,
   * when `into` is given (at least {@link HEADER_SIZE} + `maxFrameSize` bytes), written into it
   * and returned as a view of it: for a caller that is done with the frame before the next call.
   * A version-0 session gives nothing before the peer's first frame told it the version.
   */
  pollTransmit(into?: Uint8Array): Uint8Array | null {
    if (this.#closed || this.#ver === 0) return null;
    const ver = this.#ver;
    while (this.#control.length > 0) {
      const v = this.#control.shift();
      const cmd = v % 8;
      const sid = (v - cmd) / 8;
      if (cmd === CMD_NOP || cmd === CMD_SYN) {
        if (cmd === CMD_NOP) this.#nopQueued = false;
        this.#stats.framesOut++;
        return this.#frame(into, ver, cmd, cmd === CMD_SYN ? sid : 0, 0);
      }
      const s = this.#streams.get(sid);
      if (!s || !s.updQueued) continue;
      s.updQueued = false;
      if (s.closing) continue;
      this.#stats.framesOut++;
      const f = this.#frame(into, ver, CMD_UPD, sid, UPD_SIZE);
      writeU32(f, HEADER_SIZE, s.updConsumed);
      writeU32(f, HEADER_SIZE + 4, this.config.maxStreamBuffer);
      return f;
    }
    const s = this.#ring;
    if (s === null) return null;
    this.#ring = s.next;
    this.#stats.framesOut++;
    if (s.send.bytes > 0) {
      let n = Math.min(s.send.frontLength(), this.config.maxFrameSize);
      if (ver === 2) n = Math.min(n, this.#window(s));
      const frame = this.#frame(into, ver, CMD_PSH, s.id, n);
      s.send.copyInto(frame, HEADER_SIZE, n);
      s.numWritten = (s.numWritten + n) >>> 0;
      this.#queued -= n;
      this.#stats.bytesOut += n;
      if (s.send.bytes === 0) this.#markDirty(s);
      this.#reschedule(s);
      return frame;
    }
    s.finSent = true;
    this.#deactivate(s);
    this.#markDirty(s);
    this.#maybeRemove(s);
    return this.#frame(into, ver, CMD_FIN, s.id, 0);
  }

  /** A frame with its header written and `length` payload bytes to fill, in `into` or fresh. */
  #frame(into: Uint8Array | undefined, ver: number, cmd: number, sid: number, length: number) {
    const size = HEADER_SIZE + length;
    const f = into !== undefined && into.length >= size
      ? into.subarray(0, size)
      : new Uint8Array(size);
    writeHeader(f, 0, ver, cmd, length, sid);
    return f;
  }

  /** Version 2 send window left (≤ 0: blocked until an UPD). */
  #window(s: StreamState): number {
    return (s.peerWindow | 0) - ((s.numWritten - s.peerConsumed) | 0);
  }

  #sendable(s: StreamState): boolean {
    if (this.#closed) return false;
    if (s.send.bytes > 0) return this.#ver !== 2 || this.#window(s) > 0;
    return s.closing && !s.finSent;
  }

  #reschedule(s: StreamState): void {
    if (this.#sendable(s)) this.#activate(s);
    else this.#deactivate(s);
  }

  #activate(s: StreamState): void {
    if (s.active) return;
    s.active = true;
    const head = this.#ring;
    if (head === null) {
      s.next = s.prev = s;
      this.#ring = s;
    } else {
      // Join at the tail, i.e. just before the stream served next.
      const tail = head.prev!;
      s.prev = tail;
      s.next = head;
      tail.next = s;
      head.prev = s;
    }
  }

  #deactivate(s: StreamState): void {
    if (!s.active) return;
    s.active = false;
    if (s.next === s) {
      this.#ring = null;
    } else {
      s.prev!.next = s.next;
      s.next!.prev = s.prev;
      if (this.#ring === s) this.#ring = s.next;
    }
    s.next = s.prev = null;
  }

  // ---- time ----

  /** When {@link handleTimeout} must next run (ms), or Infinity. */
  nextDeadline(): number {
    if (this.#closed) return Infinity;
    return Math.min(this.#nextPing, this.#nextCheck);
  }

  /**
   * Runs the keepalive at time `now`: queues a NOP when one is due (one at most waits), and
   * closes the session when no frame header arrived during the last timeout period while the
   * session was not blocked (bucket empty or accept backlog full).
   */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    const c = this.config;
    if (now >= this.#nextPing) {
      if (this.#ver === 0) {
        this.#nopOwed = true;
      } else if (!this.#nopQueued) {
        this.#nopQueued = true;
        this.#control.push(CMD_NOP);
      }
      this.#nextPing += c.keepAliveInterval;
      if (this.#nextPing <= now) this.#nextPing = now + c.keepAliveInterval;
    }
    if (now >= this.#nextCheck) {
      const seen = this.#parser.headersSeen;
      const blocked = this.#bucket <= 0 || this.#accepts.length >= c.acceptBacklog;
      if (seen === this.#headersAtCheck && !blocked) {
        this.close("keepalive timeout", true);
        return;
      }
      this.#headersAtCheck = seen;
      this.#nextCheck += c.keepAliveTimeout;
      if (this.#nextCheck <= now) this.#nextCheck = now + c.keepAliveTimeout;
    }
  }
}
