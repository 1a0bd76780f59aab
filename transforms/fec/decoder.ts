/**
 * The FEC decoder with kcp-go v5.6.1 (kcptun 2021) semantics (docs/protocol.md §4.6):
 *
 * - every shard (data and parity) is copied into a pooled buffer and kept in one queue ordered by
 *   seqid, at most 3 × (ds+ps) entries (the oldest is evicted one at a time; an evicted data shard
 *   counts as `FECShortShards`) and at most 60 s old; a seqid already queued is ignored;
 * - as soon as the group of the arriving shard holds all ds data shards, the group is dropped; when
 *   it holds ≥ ds shards with data missing, the missing data shards are rebuilt and the group is
 *   dropped (late shards of that group start a new, useless entry, as in Go);
 * - a shard whose flag contradicts the current (ds, ps) triggers auto-tuning ({@link AutoTune}).
 *
 * One deliberate difference from v5.6.1, taken from v5.6.64: while the pattern contradicts
 * (ds, ps) and auto-tuning has not yet found the peer's values, shards are not queued or decoded
 * (data shards still reach KCP through the stage). v5.6.1 keeps decoding with the wrong
 * parameters, and with parity row 0 of many codes being all ones (3+2: P0 = D0⊕D1⊕D2) a
 * "recovered" shard can then carry the right conv and garbage segments into KCP.
 *
 * Rebuilt shards are handed out as packets whose payload is the whole shard (`size ‖ KCP bytes ‖
 * zero padding`); the caller checks `size` (see the stage). The decoder holds only pooled packets,
 * at most rxlimit+1 of them, and allocates nothing per shard in steady state.
 *
 * @module
 */

import type { Packet, PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import { AutoTune, type AutoTuneGeneration } from "./autotune.ts";
import { ReedSolomon } from "./reed_solomon.ts";
import { FEC_HEADER_SIZE, FEC_TYPE_DATA, readU32, seqDiff } from "./wire.ts";

/** Queue entries kept per shard of a group (kcp-go's rxFECMulti). */
export const RX_FEC_MULTI = 3;
/** Milliseconds after which a queued shard is dropped (kcp-go's fecExpire). */
export const FEC_EXPIRE_MS = 60000;

/** Decoder options beyond the shard counts. */
export interface FecDecoderOptions {
  /** Which kcp-go generation's period finder auto-tuning uses (default 2021). */
  readonly autoTune?: AutoTuneGeneration;
  /** Counters to bump (`FECShortShards`); none when absent. */
  readonly snmp?: Snmp;
  /**
   * True when (ds, ps) are only a guess (a session whose own FEC is off): nothing is decoded
   * until auto-tuning has seen the peer's pattern. Default false.
   */
  readonly guessed?: boolean;
}

/** Receives FEC shards and rebuilds lost data shards. */
export class FecDecoder {
  #ds: number;
  #ps: number;
  #shardSize: number;
  #rxlimit: number;
  #codec: ReedSolomon;
  readonly #pool: PacketPool;
  readonly #snmp: Snmp | undefined;
  readonly #tune: AutoTune;
  // Set while the shard pattern contradicts (ds, ps), or until a guessed decoder has seen the
  // peer's pattern: shards are then only sampled, never grouped, so wrong parameters cannot
  // rebuild garbage.
  #outOfSync: boolean;

  // Ring of queued shards, ordered by seqid: logical entry i lives at (head + i) % cap.
  #cap = 0;
  #head = 0;
  #count = 0;
  #seq = new Uint32Array(0);
  #isData = new Uint8Array(0);
  #ts = new Float64Array(0);
  #len = new Int32Array(0);
  #pkt: (Packet | null)[] = [];

  // Decode scratch, sized to the group.
  #shards: Uint8Array[] = [];
  #present = new Uint8Array(0);
  #outputs: (Packet | null)[] = [];
  static readonly #EMPTY = new Uint8Array(0);

  /** A decoder expecting `dataShards` + `parityShards` (it re-tunes if the peer differs). */
  constructor(
    dataShards: number,
    parityShards: number,
    pool: PacketPool,
    options: FecDecoderOptions = {},
  ) {
    this.#codec = ReedSolomon.shared(dataShards, parityShards);
    this.#ds = dataShards;
    this.#ps = parityShards;
    this.#shardSize = dataShards + parityShards;
    this.#rxlimit = RX_FEC_MULTI * this.#shardSize;
    this.#pool = pool;
    this.#snmp = options.snmp;
    this.#tune = new AutoTune(options.autoTune ?? 2021);
    this.#outOfSync = options.guessed ?? false;
    this.#resizeScratch();
    this.#ensureCapacity(this.#rxlimit + 2);
  }

  /** Data shards per group as currently believed (after auto-tuning). */
  get dataShards(): number {
    return this.#ds;
  }

  /** Parity shards per group as currently believed. */
  get parityShards(): number {
    return this.#ps;
  }

  /** False while the shard pattern contradicts (ds, ps) and auto-tuning has not settled it. */
  get synced(): boolean {
    return !this.#outOfSync;
  }

  /** Shards waiting in the queue. */
  get queued(): number {
    return this.#count;
  }

  /**
   * Takes one FEC datagram `buf[start, end)` (header included, at least 8 bytes, flag 0xF1 or
   * 0xF2: the caller has classified it) received at `now` ms, and pushes any data shards it
   * allows to rebuild onto `out`. Returns false when the shard was not queued (duplicate, or
   * too long for a pooled buffer, or parameters out of sync).
   */
  decode(buf: Uint8Array, start: number, end: number, now: number, out: PacketBatch): boolean {
    const seqid = readU32(buf, start);
    const isData = buf[start + 4] === FEC_TYPE_DATA;
    this.#tune.sample(isData, seqid);

    const expectData = seqid % this.#shardSize < this.#ds;
    if (expectData !== isData) this.#outOfSync = true;
    if (this.#outOfSync && !this.#retune()) return false;

    const shardSize = this.#shardSize;
    const count = this.#count;
    // Position in the ordered queue, searching from the newest end (where shards usually go).
    let insertAt = 0;
    for (let i = count - 1; i >= 0; i--) {
      const s = this.#seq[this.#slot(i)];
      if (s === seqid) return false;
      if (seqDiff(seqid, s) > 0) {
        insertAt = i + 1;
        break;
      }
    }

    const shardLength = end - start - FEC_HEADER_SIZE;
    const pkt = this.#pool.acquire();
    if (shardLength > pkt.buffer.length) {
      pkt.release();
      return false;
    }
    // One short-lived view buys a native memcpy, far cheaper than a JS byte loop here.
    pkt.buffer.set(buf.subarray(start + FEC_HEADER_SIZE, end), 0);
    this.#insert(insertAt, seqid, isData, now, shardLength, pkt);

    const pos = seqid % shardSize;
    const groupBegin = (seqid - pos) >>> 0;
    const groupEnd = (groupBegin + shardSize - 1) >>> 0;
    const searchBegin = Math.max(0, insertAt - pos);
    const searchEnd = Math.min(searchBegin + shardSize - 1, this.#count - 1);
    if (searchEnd - searchBegin + 1 >= this.#ds) {
      this.#tryGroup(searchBegin, searchEnd, groupBegin, groupEnd, out);
    }

    if (this.#count > this.#rxlimit) {
      if (this.#isData[this.#slot(0)] === 1 && this.#snmp) this.#snmp.FECShortShards++;
      this.#remove(0, 1);
    }

    let expired = 0;
    while (expired < this.#count && now - this.#ts[this.#slot(expired)] > FEC_EXPIRE_MS) {
      expired++;
    }
    if (expired > 0) this.#remove(0, expired);
    return true;
  }

  /** Releases every queued shard to the pool. */
  release(): void {
    if (this.#count > 0) this.#remove(0, this.#count);
  }

  #tryGroup(
    searchBegin: number,
    searchEnd: number,
    groupBegin: number,
    groupEnd: number,
    out: PacketBatch,
  ): void {
    const ds = this.#ds;
    const shardSize = this.#shardSize;
    const shards = this.#shards;
    const present = this.#present;
    present.fill(0);
    let numShard = 0;
    let numData = 0;
    let first = 0;
    let maxLength = 0;
    for (let i = searchBegin; i <= searchEnd; i++) {
      const slot = this.#slot(i);
      const s = this.#seq[slot];
      if (seqDiff(s, groupEnd) > 0) break;
      if (seqDiff(s, groupBegin) < 0) continue;
      const pos = s % shardSize;
      shards[pos] = this.#pkt[slot]!.buffer;
      present[pos] = 1;
      if (numShard === 0) first = i;
      numShard++;
      numData += this.#isData[slot];
      if (this.#len[slot] > maxLength) maxLength = this.#len[slot];
    }

    if (numData === ds) {
      this.#remove(first, numShard);
      return;
    }
    if (numShard < ds) return;

    // Zero-pad every queued shard of the group to the longest one, in its own buffer.
    for (let i = first; i < first + numShard; i++) {
      const slot = this.#slot(i);
      this.#pkt[slot]!.buffer.fill(0, this.#len[slot], maxLength);
    }
    const outputs = this.#outputs;
    for (let k = 0; k < ds; k++) {
      if (present[k]) continue;
      const p = this.#pool.acquire();
      outputs[k] = p;
      shards[k] = p.buffer;
    }
    const ok = this.#codec.reconstructData(shards, present, maxLength);
    for (let k = 0; k < ds; k++) {
      const p = outputs[k];
      if (p === null) continue;
      outputs[k] = null;
      if (ok) {
        p.start = 0;
        p.end = maxLength;
        out.push(p);
      } else {
        p.release();
      }
    }
    for (let k = 0; k < shardSize; k++) shards[k] = FecDecoder.#EMPTY;
    this.#remove(first, numShard);
  }

  /** Tries to find the peer's (ds, ps); true when found (and applied if new). */
  #retune(): boolean {
    const ds = this.#tune.findPeriod(true);
    const ps = this.#tune.findPeriod(false);
    if (ds <= 0 || ps <= 0 || ds >= 256 || ps >= 256 || ds + ps > 256) return false;
    this.#outOfSync = false;
    if (ds === this.#ds && ps === this.#ps) return true;
    this.#codec = ReedSolomon.shared(ds, ps);
    this.#ds = ds;
    this.#ps = ps;
    this.#shardSize = ds + ps;
    this.#rxlimit = RX_FEC_MULTI * this.#shardSize;
    this.#resizeScratch();
    // Queued shards stay (as in kcp-go): the limit shrinks one eviction at a time.
    this.#ensureCapacity(Math.max(this.#rxlimit, this.#count) + 2);
    return true;
  }

  #resizeScratch(): void {
    const n = this.#shardSize;
    this.#shards = new Array<Uint8Array>(n).fill(FecDecoder.#EMPTY);
    this.#present = new Uint8Array(n);
    this.#outputs = new Array<Packet | null>(n).fill(null);
  }

  #slot(i: number): number {
    const s = this.#head + i;
    return s >= this.#cap ? s - this.#cap : s;
  }

  #ensureCapacity(cap: number): void {
    if (cap <= this.#cap) return;
    const seq = new Uint32Array(cap);
    const isData = new Uint8Array(cap);
    const ts = new Float64Array(cap);
    const len = new Int32Array(cap);
    const pkt = new Array<Packet | null>(cap).fill(null);
    for (let i = 0; i < this.#count; i++) {
      const s = this.#slot(i);
      seq[i] = this.#seq[s];
      isData[i] = this.#isData[s];
      ts[i] = this.#ts[s];
      len[i] = this.#len[s];
      pkt[i] = this.#pkt[s];
    }
    this.#seq = seq;
    this.#isData = isData;
    this.#ts = ts;
    this.#len = len;
    this.#pkt = pkt;
    this.#cap = cap;
    this.#head = 0;
  }

  #copyEntry(to: number, from: number): void {
    this.#seq[to] = this.#seq[from];
    this.#isData[to] = this.#isData[from];
    this.#ts[to] = this.#ts[from];
    this.#len[to] = this.#len[from];
    this.#pkt[to] = this.#pkt[from];
  }

  #insert(at: number, seqid: number, isData: boolean, now: number, len: number, pkt: Packet) {
    if (this.#count + 1 > this.#cap) this.#ensureCapacity(this.#cap * 2);
    for (let i = this.#count; i > at; i--) this.#copyEntry(this.#slot(i), this.#slot(i - 1));
    const s = this.#slot(at);
    this.#seq[s] = seqid;
    this.#isData[s] = isData ? 1 : 0;
    this.#ts[s] = now;
    this.#len[s] = len;
    this.#pkt[s] = pkt;
    this.#count++;
  }

  /** Releases entries [first, first+n) and closes the gap. */
  #remove(first: number, n: number): void {
    for (let i = first; i < first + n; i++) {
      const s = this.#slot(i);
      this.#pkt[s]!.release();
      this.#pkt[s] = null;
    }
    if (first === 0) {
      this.#head = this.#slot(n);
      if (this.#head === this.#cap) this.#head = 0;
    } else {
      for (let i = first + n; i < this.#count; i++) {
        this.#copyEntry(this.#slot(i - n), this.#slot(i));
      }
      for (let i = this.#count - n; i < this.#count; i++) this.#pkt[this.#slot(i)] = null;
    }
    this.#count -= n;
  }
}
