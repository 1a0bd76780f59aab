/**
 * Recovers the reliable byte stream of each direction from a capture without FEC: each datagram
 * is KCP (after `cryptHeader` bytes: 0 for `-crypt null`, 20 for `-crypt none`, whose header is
 * not encrypted); the PUSH payloads of one direction, in sn order with retransmissions dropped,
 * concatenated, are what KCP delivered to the layer above.
 */

import { type CapturedDatagram, loadCapture } from "../support/captures.ts";

const KCP_OVERHEAD = 24;
const CMD_PUSH = 81;

/** The bytes each direction carried above KCP. */
export interface CapturedStreams {
  /** Client to server. */
  c2s: Uint8Array;
  /** Server to client. */
  s2c: Uint8Array;
}

function direction(dgrams: CapturedDatagram[], dir: "C2S" | "S2C", cryptHeader: number) {
  const bySn = new Map<number, Uint8Array>();
  for (const d of dgrams) {
    if (d.dir !== dir || d.dropped) continue;
    const b = d.bytes;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let p = cryptHeader;
    while (b.length - p >= KCP_OVERHEAD) {
      const cmd = b[p + 4];
      const sn = v.getUint32(p + 12, true);
      const len = v.getUint32(p + 20, true);
      if (p + KCP_OVERHEAD + len > b.length) throw new Error(`${dir} ${d.i}: truncated segment`);
      if (cmd === CMD_PUSH && !bySn.has(sn)) {
        bySn.set(sn, b.slice(p + KCP_OVERHEAD, p + KCP_OVERHEAD + len));
      }
      p += KCP_OVERHEAD + len;
    }
  }
  const parts: Uint8Array[] = [];
  for (let sn = 0; bySn.has(sn); sn++) parts.push(bySn.get(sn)!);
  if (parts.length !== bySn.size) throw new Error(`${dir}: gap in PUSH sequence numbers`);
  return concat(parts);
}

/** Both directions of the capture `name` (see tests/fixtures/captures/README.md). */
export function capturedStreams(name: string, cryptHeader: number): CapturedStreams {
  const dgrams = loadCapture(name);
  return { c2s: direction(dgrams, "C2S", cryptHeader), s2c: direction(dgrams, "S2C", cryptHeader) };
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
