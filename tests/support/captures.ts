/**
 * Reads the captured kcptun datagrams in `tests/fixtures/captures/` (JSON lines, one datagram each;
 * see the README there).
 */

/** One captured datagram. */
export interface CapturedDatagram {
  /** Milliseconds since the capture started. */
  t: number;
  /** Client to server, or server to client. */
  dir: "C2S" | "S2C";
  /** Index within its direction. */
  i: number;
  /** The whole UDP payload. */
  bytes: Uint8Array;
  /** True when the capturing relay dropped it on purpose (it never reached the peer). */
  dropped: boolean;
}

/** Directory of the checked-in captures. */
export const CAPTURES_DIR = new URL("../fixtures/captures/", import.meta.url);

/** Parses hex into bytes. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

/** Formats bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Loads `name` (e.g. `old_aes.jsonl`) from the captures directory. */
export function loadCapture(name: string): CapturedDatagram[] {
  const text = Deno.readTextFileSync(new URL(name, CAPTURES_DIR));
  const out: CapturedDatagram[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const o = JSON.parse(line);
    out.push({ t: o.t, dir: o.dir, i: o.i, bytes: fromHex(o.hex), dropped: o.dropped === true });
  }
  return out;
}
