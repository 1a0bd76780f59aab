/** Helpers shared by the KCP tests. */

import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { Kcp, type KcpOptions } from "../../transforms/kcp/arq.ts";
import { parseDatagram, type ParsedSegment } from "../../transforms/kcp/wire.ts";

/** A packet pool for tests. */
export const pool: PacketPool = new PacketPool();

/** A Kcp with its own counters. */
export function newKcp(conv: number, options: KcpOptions = {}): { kcp: Kcp; snmp: Snmp } {
  const snmp = new Snmp();
  return { kcp: new Kcp(conv, { snmp, ...options }), snmp };
}

/** Copies the datagrams of `batch` out (and releases the packets). */
export function drain(batch: PacketBatch): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < batch.length; i++) out.push(batch.at(i).bytes().slice());
  batch.releaseAll();
  return out;
}

/** Runs `kcp.flush(now)` and returns the datagrams. */
export function flushOut(kcp: Kcp, now: number): Uint8Array[] {
  const b = new PacketBatch();
  kcp.flush(now, b, pool);
  return drain(b);
}

/** Runs `kcp.update(now)` and returns the datagrams. */
export function updateOut(kcp: Kcp, now: number): Uint8Array[] {
  const b = new PacketBatch();
  kcp.update(now, b, pool);
  return drain(b);
}

/** Feeds a datagram. */
export function feed(kcp: Kcp, d: Uint8Array, now: number, recovered = false): number {
  return kcp.input(d, 0, d.length, now, recovered);
}

/** Every segment of every datagram (throws on malformed ones). */
export function segmentsOf(datagrams: Uint8Array[]): ParsedSegment[] {
  const out: ParsedSegment[] = [];
  for (const d of datagrams) {
    const p = parseDatagram(d);
    if (p.error !== null) throw new Error(`malformed datagram: ${p.error}`);
    out.push(...p.segments);
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
