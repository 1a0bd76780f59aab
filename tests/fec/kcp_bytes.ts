/** Test helpers shared by the FEC tests that feed KCP datagrams to an FEC sender. */

/** A seeded 24-bit integer source (an LCG): the same numbers for the same seed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => (x = (x * 1103515245 + 12345) >>> 0) >>> 8;
}

/** One KCP segment of conversation `conv` carrying `data`. */
export function kcpSegment(
  conv: number,
  f: { cmd: number; wnd: number; ts: number; sn: number; una: number },
  data: Uint8Array,
): Uint8Array {
  const s = new Uint8Array(24 + data.length);
  const v = new DataView(s.buffer);
  v.setUint32(0, conv, true);
  s[4] = f.cmd;
  v.setUint16(6, f.wnd, true);
  v.setUint32(8, f.ts, true);
  v.setUint32(12, f.sn, true);
  v.setUint32(16, f.una, true);
  v.setUint32(20, data.length, true);
  s.set(data, 24);
  return s;
}
