/**
 * Example plugin: random-length padding that hides packet sizes.
 *
 * Each datagram gets 0..`max` random bytes and one length byte appended on the way to the wire;
 * the receiver strips them. Put it inside `crypt` so that the padding and its length byte are
 * encrypted and covered by the checksum:
 *
 * ```json
 * { "pipeline": ["tcp", "smux", "snappy", "kcp", "fec", "./examples/padding.ts", "crypt", "udp"] }
 * ```
 *
 * Not wire-compatible with Go kcptun (it does not know this stage): use it between two kcptun-ts
 * ends. A datagram whose length byte is impossible is dropped and counted in `InErrs`.
 * Outside this repository, import from `@kcptun-ts/kcptun-ts/plugin`.
 *
 * @module
 */

import type {
  ByteRange,
  PacketBatch,
  PacketStage,
  PacketStageDefinition,
  StageContext,
  StageOptions,
} from "../plugin.ts";
import { StageError } from "../plugin.ts";

/** Options of the padding stage. */
export interface PaddingOptions extends StageOptions {
  /** Most random bytes added to one datagram, 0..255 (default 32). */
  max?: number;
}

/** Random bytes drawn from the CSPRNG in blocks, so a packet costs no system call. */
class RandomPool {
  readonly #bytes = new Uint8Array(4096);
  #at = this.#bytes.length;

  /** The next random byte. */
  next(): number {
    if (this.#at === this.#bytes.length) {
      crypto.getRandomValues(this.#bytes);
      this.#at = 0;
    }
    return this.#bytes[this.#at++];
  }

  /** Fills `dst[from, to)` with random bytes. */
  fill(dst: Uint8Array, from: number, to: number): void {
    for (let i = from; i < to; i++) dst[i] = this.next();
  }
}

class Padding implements PacketStage {
  readonly overhead: number;
  readonly #max: number;
  readonly #random = new RandomPool();
  readonly #ctx: StageContext;

  constructor(max: number, ctx: StageContext) {
    this.#max = max;
    this.overhead = max + 1;
    this.#ctx = ctx;
  }

  encode(batch: PacketBatch): void {
    const span = this.#max + 1;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const pad = this.#random.next() % span;
      const at = p.append(pad + 1);
      this.#random.fill(p.buffer, at, at + pad);
      p.buffer[at + pad] = pad;
    }
  }

  /** Where the inner datagram lies, without touching anything (a server routes by it). */
  peek(buffer: Uint8Array, range: ByteRange): boolean {
    const n = range.end - range.start;
    const pad = n > 0 ? buffer[range.end - 1] : 0;
    if (n === 0 || pad + 1 > n) return false;
    range.end -= pad + 1;
    return true;
  }

  decode(batch: PacketBatch): void {
    let kept = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const n = p.length;
      const pad = n > 0 ? p.buffer[p.end - 1] : 0;
      if (n === 0 || pad + 1 > n) {
        this.#ctx.snmp.InErrs++;
        p.release();
        continue;
      }
      p.end -= pad + 1;
      batch.packets[kept++] = p;
    }
    batch.length = kept;
  }
}

/** The stage definition (the plugin's default export). */
const padding: PacketStageDefinition<PaddingOptions> = {
  name: "padding",
  kind: "packet",
  description: "random-length padding that hides datagram sizes (kcptun-ts only)",
  shared: true,
  options: { max: { type: "integer", description: "most padding bytes per datagram (0-255)" } },
  create(options, ctx) {
    const max = options.max ?? 32;
    if (!Number.isInteger(max) || max < 0 || max > 255) {
      throw new StageError(`padding: "max" must be an integer from 0 to 255, got ${max}`);
    }
    return new Padding(max, ctx);
  },
};

export default padding;
