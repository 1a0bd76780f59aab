/** Shared helpers for the transport tests: collect datagrams, build batches. */

import { PacketBatch, type PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";

/** One received datagram, copied out of its packet. */
export interface Received {
  data: Uint8Array;
  peer: PeerAddress;
}

/** Collects every datagram a socket receives (copies, releasing the packets). */
export class Collector {
  readonly got: Received[] = [];
  readonly batchSizes: number[] = [];
  #want = Infinity;
  #wake: (() => void) | null = null;

  constructor(sock: DatagramSocket) {
    sock.receive((batch) => {
      this.batchSizes.push(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const p = batch.at(i);
        this.got.push({ data: p.bytes().slice(), peer: p.peer! });
        p.release();
      }
      if (this.got.length >= this.#want && this.#wake) this.#wake();
    });
  }

  /** Resolves once `n` datagrams are in; rejects after `ms` (a hung test, not a timing check). */
  waitFor(n: number, ms = 5000): Promise<Received[]> {
    if (this.got.length >= n) return Promise.resolve(this.got);
    this.#want = n;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        reject(new Error(`timed out with ${this.got.length}/${n} datagrams`));
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve(this.got);
      };
    });
  }
}

/** A batch of packets holding `payloads`, each addressed to `peer` when given. */
export function batchOf(
  pool: PacketPool,
  payloads: Uint8Array[],
  peer: PeerAddress | null = null,
): PacketBatch {
  const b = new PacketBatch();
  for (const data of payloads) {
    const p = pool.from(data);
    p.peer = peer;
    b.push(p);
  }
  return b;
}

/** `n` distinct payloads of `size` bytes (index in the first two bytes, then a pattern). */
export function payloads(n: number, size: number, seed = 1): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const d = new Uint8Array(size);
    for (let j = 0; j < size; j++) d[j] = (i * 31 + j * seed) & 255;
    if (size >= 2) {
      d[0] = i >> 8;
      d[1] = i & 255;
    }
    out.push(d);
  }
  return out;
}

/** Waits one macrotask turn `n` times (lets in-flight datagrams land without timing thresholds). */
export async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
}
