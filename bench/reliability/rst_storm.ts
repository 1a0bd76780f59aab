/**
 * RST storm: `count` TCP connections to the client's local port, each reset right after the
 * handshake (SO_LINGER 0 then close, what a port scanner does), before the client accepted it.
 * Then a new connection must echo through the tunnel within `deadlineMs`.
 *
 * Resetting needs SO_LINGER, which Deno's sockets do not expose, so the connections are made
 * with libc through FFI (transports/libc.ts).
 *
 * @module
 */

import { C, loadLibc } from "../../transports/libc.ts";
import { echoOnce, type Pair, sleep, startTunnel, type TunnelOptions } from "./ends.ts";

/** Options of {@link rstStorm}. */
export interface RstStormOptions extends TunnelOptions {
  /** Connections reset (default 200). */
  count?: number;
  /** The new stream must echo within this long (default 1000 ms). */
  deadlineMs?: number;
  /** How long to wait for that echo before calling the client wedged (default 5000 ms). */
  waitMs?: number;
}

/** What one run found. */
export interface RstStormResult {
  /** Which implementation. */
  pair: Pair;
  /** Connections made and reset. */
  resets: number;
  /** ms from the end of the storm to the first echo; NaN when none came within `waitMs`. */
  echoMs: number;
  /** Whether the echo came within the deadline. */
  ok: boolean;
  /** Why the echo failed, when it did. */
  error: string | null;
  /** Whether the client process was still running afterwards. */
  clientAlive: boolean;
}

function sockaddrIn(port: number): Uint8Array {
  const a = new Uint8Array(16);
  new DataView(a.buffer).setUint16(0, C.AF_INET, true);
  new DataView(a.buffer).setUint16(2, port, false);
  a.set([127, 0, 0, 1], 4);
  return a;
}

/**
 * Connects to 127.0.0.1:`port` `count` times and resets each connection at once. Returns how
 * many were reset (a refused or failed connect is not counted).
 */
export function resetConnections(port: number, count: number): number {
  const libc = loadLibc();
  const s = libc.symbols;
  const addr = sockaddrIn(port);
  const linger = new Int32Array([1, 0]); // l_onoff 1, l_linger 0: close sends RST
  const lingerBytes = new Uint8Array(linger.buffer);
  let reset = 0;
  for (let i = 0; i < count; i++) {
    const fd = s.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(libc.describe("socket"));
    try {
      // Blocking connect: on loopback the handshake completes within the call.
      if (s.connect(fd, addr, addr.length) !== 0) continue;
      if (s.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, lingerBytes, 8) !== 0) {
        throw new Error(libc.describe("setsockopt SO_LINGER"));
      }
      reset++;
    } finally {
      s.close(fd);
    }
  }
  return reset;
}

/** One RST storm against `pair`'s client. */
export async function rstStorm(pair: Pair, o: RstStormOptions = {}): Promise<RstStormResult> {
  const count = o.count ?? 200, deadlineMs = o.deadlineMs ?? 1000, waitMs = o.waitMs ?? 5000;
  const t = await startTunnel(pair, o);
  try {
    await echoOnce(t.clientPort, 64, 15000); // the session is up before the storm
    const resets = resetConnections(t.clientPort, count);
    await sleep(50); // let the client meet the resets before the new connection queues behind them
    let echoMs = NaN, error: string | null = null;
    const t0 = performance.now();
    try {
      await echoOnce(t.clientPort, 64, waitMs);
      echoMs = performance.now() - t0;
    } catch (e) {
      error = (e as Error).message;
    }
    return {
      pair,
      resets,
      echoMs,
      ok: echoMs <= deadlineMs,
      error,
      clientAlive: !t.client.done,
    };
  } finally {
    await t.stop();
  }
}

/** The result line part of one pair. */
export function describeRstStorm(r: RstStormResult): string {
  const echo = Number.isFinite(r.echoMs)
    ? `echo in ${r.echoMs.toFixed(0)} ms`
    : `WEDGED (${r.error})`;
  return `${r.pair}: ${r.resets} resets, ${echo}${r.clientAlive ? "" : ", client died"}`;
}
