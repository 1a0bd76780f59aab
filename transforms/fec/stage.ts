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
};

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
    const out = this.#out;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      if (p.start < FEC_DATA_HEADER_SIZE && p.end + FEC_DATA_HEADER_SIZE > p.buffer.length) {
        p.release(); // no room for the header: only a misconfigured MTU gets here
        continue;
      }
      enc.encode(p, out, now);
    }
    batch.clear();
    batch.takeAll(out);
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
  },
  create(options: FecStageOptions, ctx: StageContext): FecStage {
    return new FecStage(options, ctx);
  },
};
