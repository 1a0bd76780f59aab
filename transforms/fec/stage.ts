/**
 * The `fec` packet stage: kcp-go's forward error correction between KCP and crypt.
 *
 * Towards the wire every KCP datagram becomes a data shard (8-byte header written in the packet's
 * headroom) and every ds data shards are followed by ps parity datagrams. Away from the wire, FEC
 * datagrams are recognised per datagram (u16le at offset 4 is 0xF1/0xF2), data shards go on to
 * KCP at once with their header stripped, parity is consumed, and rebuilt data shards are added
 * to the batch flagged {@link PacketFlags.Recovered}. Anything else passes through untouched, so a
 * session with its own FEC off (ds or ps 0) still understands a peer that sends FEC: the decoder
 * is then created on the first FEC datagram, guessing 1/1 and auto-tuning.
 *
 * Until the peer is seen sending FEC datagrams, the encoder guards a kcp-go v5.6.1 peer whose FEC
 * is off ({@link FecEncoder.guardPlainPeer}); after that it sends kcp-go's exact bytes.
 *
 * @module
 */

import { PacketBatch, PacketFlags } from "../../pipeline/packet.ts";
import type { Packet, PeerAddress } from "../../pipeline/packet.ts";
import {
  type ByteRange,
  type PacketStage,
  type PacketStageDefinition,
  type StageContext,
  StageError,
} from "../../pipeline/stage.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import { FecAutoController, LayoutCheck, PushMeter, ShardGapMeter } from "./auto.ts";
import type { AutoTuneGeneration } from "./autotune.ts";
import { FecDecoder } from "./decoder.ts";
import { FecEncoder } from "./encoder.ts";
import { MAX_TOTAL_SHARDS } from "./reed_solomon.ts";
import {
  classifyDatagram,
  DatagramKind,
  FEC_DATA_HEADER_SIZE,
  FEC_HEADER_SIZE,
  readU16,
  readU32,
} from "./wire.ts";

/** Options of the `fec` stage (kcptun's `-datashard`/`-parityshard`). */
export type FecStageOptions = {
  /** Data shards per group (`-ds`, kcptun default 10); 0 turns the encoder off. */
  dataShards: number;
  /** Parity shards per group (`-ps`, kcptun default 3); 0 turns the encoder off. */
  parityShards: number;
  /**
   * 2026 sender behaviour: skip a group's parity when its last data shard came this many ms or
   * more after the previous one (kcp-go v5.6.64: 500). Absent: always send parity (2021).
   */
  skipParityAfterMs?: number;
  /** Period finder for auto-tuning the peer's ds/ps: kcp-go 2021 (default) or 2026. */
  autoTune?: AutoTuneGeneration;
  /**
   * Guard a peer whose FEC is off until the peer is seen sending FEC (default true); false sends
   * kcp-go's exact parity from the first group (see {@link FecEncoder.guardPlainPeer}).
   */
  guardPlainPeer?: boolean;
  /**
   * kcptun-ts `-autofec`: send only as many of each group's parity shards as the measured loss
   * needs, none at all (bare KCP) on a clean link; `dataShards`/`parityShards` stay the layout
   * and the most parity sent (see {@link FecAutoController}). Needs the encoder on.
   */
  auto?: boolean;
  /** `auto`: how long a lower parity level must have been enough before it is taken (ms). */
  autoHoldMs?: number;
  /** `auto`: residual loss per data shard the parity level aims at (default 0.001). */
  autoTarget?: number;
};

/** Lines about the parity level, at most one per this many ms per session. */
const AUTO_LOG_INTERVAL_MS = 10000;

/** What `-autofec` keeps per session. */
class AutoState {
  readonly controller: FecAutoController;
  readonly pushes = new PushMeter();
  readonly gaps = new ShardGapMeter();
  readonly layout: LayoutCheck;
  /** Whether the layout line was logged (confirmed or not). */
  told = false;
  loggedLevel: number;
  loggedAt = -Infinity;

  constructor(ds: number, ps: number, options: FecStageOptions) {
    this.controller = new FecAutoController({
      dataShards: ds,
      maxParity: ps,
      holdMs: options.autoHoldMs,
      target: options.autoTarget,
    });
    this.layout = new LayoutCheck(ds, ds + ps);
    this.loggedLevel = ps;
  }
}

/** Bytes the encoder adds to each data datagram. */
export const FEC_OVERHEAD: number = FEC_DATA_HEADER_SIZE;

/** One session's FEC: an optional encoder and a (possibly lazily made) decoder. */
export class FecStage implements PacketStage {
  /** 8 when the encoder is on, else 0. */
  readonly overhead: number;
  readonly #ctx: StageContext;
  readonly #snmp: Snmp;
  readonly #encoder: FecEncoder | null;
  #decoder: FecDecoder | null = null;
  readonly #ds: number;
  readonly #ps: number;
  readonly #autoTune: AutoTuneGeneration;
  readonly #auto: AutoState | null;
  readonly #out = new PacketBatch();
  readonly #recovered = new PacketBatch();

  /** Validates `options` (throws {@link StageError} on bad shard counts). */
  constructor(options: FecStageOptions, ctx: StageContext) {
    const ds = options.dataShards ?? 0;
    const ps = options.parityShards ?? 0;
    if (!Number.isInteger(ds) || !Number.isInteger(ps) || ds < 0 || ps < 0) {
      throw new StageError(`fec: shard counts must be integers ≥ 0 (got ${ds}/${ps})`);
    }
    const on = ds > 0 && ps > 0;
    if (on && ds + ps > MAX_TOTAL_SHARDS) {
      throw new StageError(`fec: datashard + parityshard must be ≤ 256 (got ${ds}+${ps})`);
    }
    const hold = options.autoHoldMs ?? 0, target = options.autoTarget ?? 0.001;
    if (!Number.isInteger(hold) || hold < 0) {
      throw new StageError(`fec: autoHoldMs must be an integer ≥ 0 (got ${hold})`);
    }
    if (!(target > 0 && target < 1)) {
      throw new StageError(`fec: autoTarget must be between 0 and 1 (got ${target})`);
    }
    this.#ctx = ctx;
    this.#snmp = ctx.snmp;
    this.#ds = on ? ds : 0;
    this.#ps = on ? ps : 0;
    this.#autoTune = options.autoTune ?? 2021;
    this.#encoder = on
      ? new FecEncoder(ds, ps, ctx.pool, {
        skipParityAfterMs: options.skipParityAfterMs,
        guardPlainPeer: options.guardPlainPeer ?? true,
      })
      : null;
    this.overhead = on ? FEC_OVERHEAD : 0;
    this.#auto = on && options.auto === true ? new AutoState(ds, ps, options) : null;
  }

  /** `-autofec`'s controller, or null when it is off (or this side's FEC is). */
  get auto(): FecAutoController | null {
    return this.#auto?.controller ?? null;
  }

  /**
   * `-autofec`: whether the peer's FEC stream has shown our ds/ps, so that groups may carry only
   * part of their parity (false when `auto` is off).
   */
  get peerLayoutConfirmed(): boolean {
    return this.#auto?.layout.confirmed ?? false;
  }

  /** The encoder, or null when this side's FEC is off. */
  get encoder(): FecEncoder | null {
    return this.#encoder;
  }

  /** The decoder, or null until the first FEC datagram arrives. */
  get decoder(): FecDecoder | null {
    return this.#decoder;
  }

  /** Adds FEC headers and parity; a no-op when the encoder is off. */
  encode(batch: PacketBatch, now: number): void {
    const enc = this.#encoder;
    if (enc === null) return;
    const auto = this.#auto;
    if (auto !== null) this.#steer(auto, enc, now);
    const out = this.#out;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      if (p.start < FEC_DATA_HEADER_SIZE && p.end + FEC_DATA_HEADER_SIZE > p.buffer.length) {
        p.release(); // no room for the header: only a misconfigured MTU gets here
        continue;
      }
      if (auto !== null) auto.pushes.observe(p.buffer, p.start, p.end);
      enc.encode(p, out, now);
    }
    batch.clear();
    batch.takeAll(out);
  }

  /**
   * Hands the counts gathered since the last batch to the controller and sets the encoder for
   * this batch: level 0 sends bare KCP between groups; a partial group only to a peer whose FEC
   * stream shows our layout, any other gets all of a group's parity (a fixed sender's stream).
   */
  #steer(auto: AutoState, enc: FecEncoder, now: number): void {
    const c = auto.controller;
    c.pushes(auto.pushes.first, auto.pushes.retransmitted);
    auto.pushes.take();
    const level = c.update(now);
    const confirmed = auto.layout.confirmed;
    enc.bypass = level === 0;
    enc.paritySent = confirmed ? level : this.#ps;
    if (!auto.told && (confirmed || auto.layout.mismatched)) {
      auto.told = true;
      this.#ctx.log(
        confirmed
          ? `fec: the peer sends ${this.#ds}/${this.#ps} too: parity per group follows the loss`
          : `fec: the peer's FEC is not ${this.#ds}/${this.#ps}: each group gets all its parity or none`,
      );
    }
    if (level !== auto.loggedLevel && now - auto.loggedAt >= AUTO_LOG_INTERVAL_MS) {
      auto.loggedLevel = level;
      auto.loggedAt = now;
      const pct = (c.loss * 100).toFixed(c.loss < 0.01 ? 2 : 1);
      const what = level === 0
        ? "no parity (bare KCP between groups)"
        : `${enc.paritySent} of ${this.#ps} parity shards per ${this.#ds} data shards`;
      this.#ctx.log(`fec: ${what} (loss ~${pct}%, runs ~${c.burst.toFixed(1)})`);
    }
  }

  /** Strips FEC from data shards, consumes parity, adds rebuilt data shards. */
  decode(batch: PacketBatch, now: number): void {
    const out = this.#out;
    const recovered = this.#recovered;
    const snmp = this.#snmp;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const kind = classifyDatagram(p.buffer, p.start, p.end);
      if (kind === DatagramKind.Plain) {
        out.push(p);
        continue;
      }
      const len = p.end - p.start;
      if (len < FEC_DATA_HEADER_SIZE) {
        snmp.InErrs++;
        p.release();
        continue;
      }
      let size = 0;
      if (kind === DatagramKind.Data) {
        size = readU16(p.buffer, p.start + FEC_HEADER_SIZE);
        if (size < 2 || size > len - FEC_HEADER_SIZE) {
          snmp.FECErrs++;
          p.release();
          continue;
        }
      } else {
        snmp.FECParityShards++;
      }
      // A peer that sends FEC built its decoder with its own ds/ps: it never guesses.
      if (this.#encoder !== null) this.#encoder.guardPlainPeer = false;
      const dec = this.#decoder ?? this.#makeDecoder();
      dec.decode(p.buffer, p.start, p.end, now, recovered);
      const auto = this.#auto;
      if (auto !== null) {
        const seqid = readU32(p.buffer, p.start);
        auto.layout.observe(seqid, kind === DatagramKind.Data);
        // Gaps count only in a stream confirmed to be in our layout: before a decoder facing
        // other numbers re-tunes, its positions are wrong and every parity would look lost.
        if (auto.layout.confirmed && dec.synced) {
          const n = dec.dataShards + dec.parityShards;
          const lost = auto.gaps.observe(seqid, dec.dataShards, n);
          if (lost >= 0) auto.controller.peerShard(lost);
        }
      }
      const peer = p.peer;
      if (kind === DatagramKind.Data) {
        p.start += FEC_DATA_HEADER_SIZE;
        p.end = p.start + size - 2;
        out.push(p);
      } else {
        p.release();
      }
      for (let r = 0; r < recovered.length; r++) this.#acceptRecovered(recovered.packets[r], peer);
      recovered.clear();
    }
    batch.clear();
    batch.takeAll(out);
  }

  #acceptRecovered(r: Packet, peer: PeerAddress | null): void {
    const len = r.end - r.start;
    const size = len >= 2 ? readU16(r.buffer, r.start) : 0;
    if (size < 2 || size > len) {
      this.#snmp.FECErrs++;
      r.release();
      return;
    }
    r.end = r.start + size;
    r.start += 2;
    r.flags |= PacketFlags.Recovered;
    r.peer = peer;
    this.#snmp.FECRecovered++;
    this.#out.push(r);
  }

  #makeDecoder(): FecDecoder {
    const ds = this.#ds > 0 ? this.#ds : 1;
    const ps = this.#ps > 0 ? this.#ps : 1;
    this.#decoder = new FecDecoder(ds, ps, this.#ctx.pool, {
      snmp: this.#snmp,
      guessed: this.#ds === 0,
      autoTune: this.#autoTune,
    });
    return this.#decoder;
  }

  /** A data shard's KCP bytes; false for a parity shard; anything else passes through. */
  peek(buffer: Uint8Array, range: ByteRange): boolean {
    const kind = classifyDatagram(buffer, range.start, range.end);
    if (kind === DatagramKind.Plain) return true;
    if (kind === DatagramKind.Parity) return false;
    const len = range.end - range.start;
    if (len < FEC_DATA_HEADER_SIZE) return false;
    const size = readU16(buffer, range.start + FEC_HEADER_SIZE);
    if (size < 2 || size > len - FEC_HEADER_SIZE) return false;
    range.end = range.start + FEC_HEADER_SIZE + size;
    range.start += FEC_DATA_HEADER_SIZE;
    return true;
  }

  /** Returns queued shards to the pool. */
  close(): void {
    this.#decoder?.release();
  }
}

/** The `fec` stage definition (per session: it keeps shard groups). */
export const fecStage: PacketStageDefinition<FecStageOptions> = {
  name: "fec",
  kind: "packet",
  description: "Reed-Solomon forward error correction, kcp-go compatible (-datashard/-parityshard)",
  shared: false,
  options: {
    dataShards: { type: "integer", description: "-datashard (0: encoder off)" },
    parityShards: { type: "integer", description: "-parityshard (0: encoder off)" },
    skipParityAfterMs: { type: "integer", description: "2026: skip parity of a stalled group" },
    autoTune: { type: "integer", description: "2021 or 2026 auto-tune of the peer's ds/ps" },
    guardPlainPeer: {
      type: "boolean",
      description: "keep a kcp-go 2021 peer with FEC off from misreading parity (default on)",
    },
    auto: { type: "boolean", description: "-autofec: parity per group from the measured loss" },
    autoHoldMs: { type: "integer", description: "-autofec: ms before a lower parity level" },
    autoTarget: { type: "number", description: "-autofec: residual loss to aim at (0.001)" },
  },
  create(options: FecStageOptions, ctx: StageContext): FecStage {
    return new FecStage(options, ctx);
  },
};
