/**
 * The FEC encoder of kcp-go (2021 semantics by default): every KCP output datagram becomes a data
 * shard, and after every ds data shards come ps parity shards (docs/protocol.md §4.2, §4.3).
 *
 * Unlike kcp-go, data shards are not copied aside until the group is complete: each one is folded
 * into packed parity accumulators as it passes (parity is linear, and zero padding contributes
 * nothing), so the encoder keeps ceil(ps/4) Uint32Arrays and no shard bytes.
 *
 * One deliberate difference, {@link FecEncoder.guardPlainPeer}: a kcp-go v5.6.1 receiver whose own
 * FEC is off decodes with a guessed 1/1 until it has seen two parity runs, and meanwhile hands
 * every parity shard at an odd seqid to KCP as if it were a lost data shard. Every parity row sums
 * to 1, so a field equal in all the group's data shards comes out unchanged (in bulk traffic size,
 * conv, cmd, wnd, ts, una and len): KCP accepts a PUSH with a made-up sn and data. While the guard
 * is on, such parity gets its first two bytes (the parity of the size fields) zeroed, which that
 * receiver rejects (size < 2).
 *
 * For kcptun-ts's `-autofec` ({@link FecEncoder.paritySent}, {@link FecEncoder.bypass}) a group may
 * carry only its first parity shards, and between groups datagrams may leave as bare KCP; the
 * seqid layout stays that of `dataShards` + `parityShards` (see auto.ts).
 *
 * @module
 */

import type { Packet, PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { packedMulAdd, unpackLane } from "./gf256.ts";
import { ReedSolomon } from "./reed_solomon.ts";
import {
  FEC_DATA_HEADER_SIZE,
  FEC_HEADER_SIZE,
  paws,
  readU16,
  writeDataHeader,
  writeParityHeader,
} from "./wire.ts";

/** Encoder options beyond the shard counts. */
export interface FecEncoderOptions {
  /**
   * 2026 behaviour: when the group's last data shard came this many ms or more after the one
   * before it, send no parity for the group (its parity seqids are still used up). kcp-go
   * v5.6.64 uses 500. Absent: always send parity, as kcp-go v5.6.1 (kcptun 2021) does.
   */
  readonly skipParityAfterMs?: number;
  /** Initial value of {@link FecEncoder.guardPlainPeer} (default false: kcp-go's exact bytes). */
  readonly guardPlainPeer?: boolean;
}

/** Adds FEC headers to outgoing datagrams and makes parity datagrams. */
export class FecEncoder {
  /** Data shards per group. */
  readonly dataShards: number;
  /** Parity shards per group. */
  readonly parityShards: number;
  /** ds + ps. */
  readonly shardSize: number;
  /** Where seqids wrap to 0. */
  readonly paws: number;
  /**
   * The code, made on first use: a stage made only to be asked its overhead or to `peek` (a
   * server's router, an idle tunnel) builds no matrix and no tables.
   */
  get codec(): ReedSolomon {
    return this.#codec ??= ReedSolomon.shared(this.dataShards, this.parityShards);
  }
  /**
   * Zero the first two bytes of each parity shard at an odd seqid whose first two bytes, read as a
   * data shard's size, a kcp-go v5.6.1 peer still guessing 1/1 would accept (2 ≤ size ≤ length).
   * Meant to be on until the peer is seen sending FEC itself (then its decoder was built with its
   * own ds/ps, never guessed). Any rebuild that uses a zeroed shard differs from the lost shard
   * only in its size field, so it is cut short or padded, never made up.
   */
  guardPlainPeer: boolean;
  /**
   * How many of a group's parity shards to send (0..`parityShards`, default all), read when the
   * group's last data shard passes: the first rows go out, the seqids of the rest are used up
   * unsent, so the layout on the wire stays `dataShards` + `parityShards` (kcptun-ts `-autofec`).
   */
  paritySent: number;
  /**
   * When true, a datagram that would start a group goes out as bare KCP: no FEC header, no seqid
   * (kcptun-ts `-autofec` at level 0). Read only between groups, so a group once started is
   * always finished with FEC headers and its parity.
   */
  bypass = false;
  readonly #pool: PacketPool;
  readonly #skipAfter: number;
  #codec: ReedSolomon | null = null;
  /** Parity accumulators, one per group of four parity shards; made with the codec. */
  #acc: Uint32Array[] = [];
  #next = 0;
  #shardCount = 0;
  #maxLength = 0;
  #lastDataAt = -Infinity;

  /** An encoder for `dataShards` + `parityShards` (each ≥ 1, sum ≤ 256); parity from `pool`. */
  constructor(
    dataShards: number,
    parityShards: number,
    pool: PacketPool,
    options: FecEncoderOptions = {},
  ) {
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.shardSize = dataShards + parityShards;
    this.paws = paws(this.shardSize);
    this.#pool = pool;
    this.#skipAfter = options.skipParityAfterMs ?? Infinity;
    this.guardPlainPeer = options.guardPlainPeer ?? false;
    this.paritySent = parityShards;
  }

  /** True while a group has data shards and awaits the rest (and its parity). */
  get inGroup(): boolean {
    return this.#shardCount > 0;
  }

  /** The seqid the next shard will get. */
  get nextSeqid(): number {
    return this.#next;
  }

  /** Sets the next seqid (tests, and resuming a numbering). Must be the start of a group. */
  set nextSeqid(seqid: number) {
    this.#next = seqid % this.paws;
  }

  /**
   * Turns `packet` (a KCP datagram) into a data shard in place, pushes it to `out`, and when it
   * completes a group pushes the group's parity packets right after it. `now` (ms) matters only
   * with `skipParityAfterMs`.
   */
  encode(packet: Packet, out: PacketBatch, now = 0): void {
    if (this.bypass && this.#shardCount === 0) {
      out.push(packet);
      return;
    }
    const kcpLength = packet.length;
    const at = packet.prepend(FEC_DATA_HEADER_SIZE);
    writeDataHeader(packet.buffer, at, this.#next, kcpLength);
    this.#next = (this.#next + 1) >>> 0;
    out.push(packet);

    const shardLength = kcpLength + 2;
    if (this.#acc.length === 0) {
      for (let g = 0; g < this.codec.parityGroups; g++) {
        this.#acc.push(new Uint32Array(this.#pool.capacity));
      }
    }
    if (shardLength > this.#acc[0].length) this.#growAccumulators(shardLength);
    if (shardLength > this.#maxLength) this.#maxLength = shardLength;
    const groups = this.codec.parityGroups;
    const tables = this.codec.parityTables;
    const base = this.#shardCount * groups;
    for (let g = 0; g < groups; g++) {
      packedMulAdd(
        this.#acc[g],
        tables,
        (base + g) * 256,
        packet.buffer,
        at + FEC_HEADER_SIZE,
        shardLength,
      );
    }
    this.#shardCount++;

    const gap = now - this.#lastDataAt;
    this.#lastDataAt = now;
    if (this.#shardCount < this.dataShards) return;

    if (this.#skipAfter === Infinity || gap < this.#skipAfter) this.#emitParity(out);
    else this.#next = (this.#next + this.parityShards) % this.paws;
    const len = this.#maxLength;
    for (let g = 0; g < groups; g++) this.#acc[g].fill(0, 0, len);
    this.#shardCount = 0;
    this.#maxLength = 0;
  }

  #emitParity(out: PacketBatch): void {
    const len = this.#maxLength;
    const ps = this.parityShards;
    const send = this.paritySent >= ps ? ps : this.paritySent > 0 ? this.paritySent : 0;
    for (let k = 0; k < send; k++) {
      const seqid = this.#next;
      this.#next = (this.#next + 1) % this.paws;
      const q = this.#pool.acquire();
      let at = q.start;
      if (at + FEC_HEADER_SIZE + len > q.buffer.length) at = 0;
      if (at + FEC_HEADER_SIZE + len > q.buffer.length) {
        // Only when data came from a pool with larger buffers than ours: no room for parity.
        q.release();
        continue;
      }
      writeParityHeader(q.buffer, at, seqid);
      unpackLane(this.#acc[k >> 2], k & 3, q.buffer, at + FEC_HEADER_SIZE, len);
      // The 1/1 guess pairs seqids (2i, 2i+1): only an odd one can arrive without its partner
      // queued, and then it is "rebuilt" byte for byte.
      if (this.guardPlainPeer && (seqid & 1) === 1) {
        const body = at + FEC_HEADER_SIZE;
        const size = readU16(q.buffer, body);
        if (size >= 2 && size <= len) q.buffer[body] = q.buffer[body + 1] = 0;
      }
      q.start = at;
      q.end = at + FEC_HEADER_SIZE + len;
      out.push(q);
    }
    if (send < ps) this.#next = (this.#next + (ps - send)) % this.paws;
  }

  #growAccumulators(length: number): void {
    for (let g = 0; g < this.#acc.length; g++) {
      const bigger = new Uint32Array(length);
      bigger.set(this.#acc[g]);
      this.#acc[g] = bigger;
    }
  }
}
