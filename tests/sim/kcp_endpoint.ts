/**
 * A KCP core plus a test application, as a {@link SimEndpoint}: the driver loop kcptun's session
 * runs (input → flush if asked → read → write while writable → flush after each write), with a
 * byte source that writes a checkable pattern and a sink that verifies it and measures delay.
 *
 * @module
 */

import { type Packet, type PacketBatch, PacketFlags, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { Kcp, type KcpOptions } from "../../transforms/kcp/arq.ts";
import type { SimEndpoint } from "./link.ts";

/** The byte at stream offset `i` of a pattern stream (not periodic over short spans). */
export function patternByte(i: number, salt: number): number {
  let x = (i ^ salt) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return (x ^ (x >>> 16)) & 0xff;
}

/** How the application writes. */
export interface SourceConfig {
  /** Bytes to write in total (Infinity: keep writing). */
  total: number;
  /** Size of each write in bytes, or a function of the write index (deterministic). */
  writeSize: number | ((k: number) => number);
  /** If set, one write every `period` ms (paced messages, for delay); else as fast as allowed. */
  period?: number;
  /** Pattern salt. */
  salt?: number;
}

/** Writes a pattern stream into the KCP core, window permitting. */
export class ByteSource {
  /** Bytes handed to KCP. */
  written = 0;
  /** Writes done. */
  writes = 0;
  readonly #cfg: SourceConfig;
  readonly #salt: number;
  #buf = new Uint8Array(65536);
  #nextAt = 0;
  /** End offset and time of each write, for the sink's delay measurement. */
  readonly marks: { end: number; at: number }[] = [];

  /** A source writing as `cfg` says. */
  constructor(cfg: SourceConfig) {
    this.#cfg = cfg;
    this.#salt = cfg.salt ?? 0;
  }

  /** True when all bytes are written. */
  get done(): boolean {
    return this.written >= this.#cfg.total;
  }

  /** Writes what is due (`now`: simulator clock; `kcpNow`: the core's); true if it wrote. */
  pump(kcp: Kcp, now: number, kcpNow: number, out: PacketBatch, pool: PacketPool): boolean {
    let any = false;
    while (!this.done && kcp.writable()) {
      if (this.#cfg.period !== undefined && now < this.#nextAt) break;
      const ws = this.#cfg.writeSize;
      let n = typeof ws === "number" ? ws : ws(this.writes);
      n = Math.max(1, Math.min(n, this.#cfg.total - this.written));
      if (this.#buf.length < n) this.#buf = new Uint8Array(n);
      const b = this.#buf;
      const base = this.written;
      for (let i = 0; i < n; i++) b[i] = patternByte(base + i, this.#salt);
      kcp.send(b, 0, n);
      // kcptun: write delay off, so every write is flushed at once.
      kcp.flush(kcpNow, out, pool);
      this.written += n;
      this.writes++;
      this.marks.push({ end: this.written, at: now });
      any = true;
      if (this.#cfg.period !== undefined) {
        this.#nextAt = (this.#nextAt === 0 ? now : this.#nextAt) + this.#cfg.period;
      }
    }
    return any;
  }

  /**
   * When a paced source next wants to write, or Infinity (unpaced, finished, or blocked by the
   * window: then the input that opens it wakes the endpoint anyway).
   */
  nextAt(kcp: Kcp): number {
    if (this.done || this.#cfg.period === undefined || !kcp.writable()) return Infinity;
    return this.#nextAt;
  }
}

/** Reads from the KCP core, verifies the pattern, and records per-write delays. */
export class ByteSink {
  /** Bytes read and verified. */
  received = 0;
  /** First offset where the bytes differed from the pattern, or -1. */
  firstError = -1;
  /** One-way delays (ms) of completed writes, from write to full delivery. */
  readonly delays: number[] = [];
  /** Time the last byte arrived. */
  lastAt = 0;
  readonly #salt: number;
  readonly #buf = new Uint8Array(65536);
  readonly #rate: number;
  #tokens = 0;
  #tokensAt = 0;
  #markIdx = 0;

  /** A sink checking a pattern with `salt`; `rate` caps reading in bytes/ms (0 = unlimited). */
  constructor(salt = 0, rate = 0) {
    this.#salt = salt;
    this.#rate = rate;
  }

  /** Reads what KCP has (within the rate cap) and checks it against the pattern. */
  pump(kcp: Kcp, now: number, source?: ByteSource): void {
    if (this.#rate > 0) {
      this.#tokens = Math.min(this.#tokens + (now - this.#tokensAt) * this.#rate, 65536);
      this.#tokensAt = now;
    }
    for (;;) {
      let room = this.#buf.length;
      if (this.#rate > 0) room = Math.min(room, Math.floor(this.#tokens));
      if (room <= 0) break;
      const n = kcp.recv(this.#buf, 0, room);
      if (n === 0) break;
      if (this.#rate > 0) this.#tokens -= n;
      const b = this.#buf;
      const base = this.received;
      if (this.firstError < 0) {
        for (let i = 0; i < n; i++) {
          if (b[i] !== patternByte(base + i, this.#salt)) {
            this.firstError = base + i;
            break;
          }
        }
      }
      this.received += n;
      this.lastAt = now;
      if (source) {
        const marks = source.marks;
        while (this.#markIdx < marks.length && marks[this.#markIdx].end <= this.received) {
          this.delays.push(now - marks[this.#markIdx].at);
          this.#markIdx++;
        }
      }
    }
  }

  /** When a rate-capped sink can next read (if KCP has bytes), or Infinity. */
  nextAt(kcp: Kcp, now: number): number {
    if (this.#rate <= 0 || kcp.readable() === 0) return Infinity;
    if (this.#tokens >= 1) return now;
    return now + Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate));
  }
}

/** Options of a {@link KcpEndpoint}. */
export interface KcpEndpointOptions extends KcpOptions {
  /** What this side writes (nothing if absent). */
  source?: SourceConfig;
  /** Pattern salt of the peer's source (what this side expects to read). */
  expectSalt?: number;
  /** Read rate cap in bytes/ms (0 = read everything at once). */
  readRate?: number;
  /** The peer's source, for delay measurement (set after both exist). */
  peerSource?: ByteSource;
  /** Added to the simulator clock before it reaches the core (to test u32 clock wrap). */
  clockOffset?: number;
}

/** One simulated kcptun session end: a Kcp, its driver loop and a test application. */
export class KcpEndpoint implements SimEndpoint {
  /** The core. */
  readonly kcp: Kcp;
  /** Counters of this endpoint. */
  readonly snmp: Snmp = new Snmp();
  /** Where packets come from. */
  readonly pool: PacketPool;
  /** The writer, if any. */
  readonly source: ByteSource | null;
  /** The reader. */
  readonly sink: ByteSink;
  /** The peer's writer, for delays. */
  peerSource: ByteSource | null;
  /** Non-zero `input` results (kcptun's KCPInErrors). */
  inErrors = 0;
  readonly #offset: number;

  /** A session end with conversation `conv`. */
  constructor(conv: number, options: KcpEndpointOptions = {}, pool = new PacketPool()) {
    this.pool = pool;
    this.kcp = new Kcp(conv, { snmp: this.snmp, ...options });
    this.source = options.source ? new ByteSource(options.source) : null;
    this.sink = new ByteSink(options.expectSalt ?? 0, options.readRate ?? 0);
    this.peerSource = options.peerSource ?? null;
    this.#offset = options.clockOffset ?? 0;
  }

  /** Feeds one datagram (FEC-recovered ones carry {@link PacketFlags.Recovered}). */
  receive(p: Packet, now: number): void {
    const r = this.kcp.input(
      p.buffer,
      p.start,
      p.end,
      now + this.#offset,
      (p.flags & PacketFlags.Recovered) !== 0,
    );
    if (r !== 0) this.inErrors++;
    p.release();
  }

  /** The session's driver step. */
  poll(now: number, out: PacketBatch): void {
    const t = now + this.#offset;
    this.kcp.update(t, out, this.pool);
    this.sink.pump(this.kcp, now, this.peerSource ?? undefined);
    this.source?.pump(this.kcp, now, t, out, this.pool);
  }

  /** Earliest of the core's deadline and the application's. */
  deadline(now: number): number {
    let d = this.kcp.check(now + this.#offset) - this.#offset;
    const s = this.source?.nextAt(this.kcp) ?? Infinity;
    if (s < d) d = s;
    const r = this.sink.nextAt(this.kcp, now);
    if (r < d) d = r;
    return d;
  }
}
