/**
 * Simulated KCP performance table: goodput of a bulk upload and one-way delay of paced messages,
 * for `-mode fast` and `fast3`, over a 50 ms RTT link (25 ms each way + 0–2 ms in-order jitter,
 * 100 Mbit/s) at 0 %, 2 % and 10 % random loss (both directions), kcptun's default windows
 * (client sndwnd 128 / rcvwnd 512, server 1024 / 1024) and MTU.
 * Deterministic (seeded); prints a Markdown table.
 *
 * Run: deno run -A tests/sim/perf.ts [simulated seconds per cell, default 60]
 */

import { PacketPool } from "../../pipeline/packet.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { KcpEndpoint, type SourceConfig } from "./kcp_endpoint.ts";
import { type LinkConfig, Simulator } from "./link.ts";

const seconds = Number(Deno.args[0] ?? 60);
/** kcptun defaults: -mtu 1350 minus the AES crypt header and FEC header (FEC not simulated). */
const KCP_MTU = 1350 - 20 - 8;
/** 100 Mbit/s bottleneck so that the window, not the link, bounds a loss-free transfer. */
const BANDWIDTH = 12500;

interface Cell {
  goodput: number;
  retrans: number;
  p50: number;
  p99: number;
  max: number;
}

function link(loss: number): LinkConfig {
  // In-order jitter: independent per-packet jitter would reorder back-to-back packets, which KCP
  // reads as loss (see docs/kcp.md); real paths keep a flow mostly in order.
  return { delay: 25, jitter: 2, fifo: true, loss, bandwidth: BANDWIDTH, queueLimit: 256 * 1024 };
}

function run(mode: "fast" | "fast3", loss: number, source: SourceConfig, seed: number) {
  const nd = KCP_MODES[mode];
  const pool = new PacketPool();
  const client = new KcpEndpoint(
    0x1234,
    { ...nd, mtu: KCP_MTU, sndWnd: 128, rcvWnd: 512, source: { ...source, salt: 1 } },
    pool,
  );
  const server = new KcpEndpoint(
    0x1234,
    { ...nd, mtu: KCP_MTU, sndWnd: 1024, rcvWnd: 1024, expectSalt: 1, peerSource: client.source! },
    pool,
  );
  const sim = new Simulator(seed, client, server, link(loss));
  sim.run(seconds * 1000);
  if (server.sink.firstError >= 0) throw new Error("stream corrupted");
  return { client, server, sim };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

function cell(mode: "fast" | "fast3", loss: number): Cell {
  const bulk = run(mode, loss, { total: Infinity, writeSize: 32768 }, 1);
  const goodput = bulk.server.sink.received / seconds;
  const retrans = bulk.client.snmp.RetransSegs / Math.max(1, bulk.client.snmp.OutSegs);
  // Paced: 1 KiB every 10 ms (100 KB/s), far below capacity: delay is the protocol's, not a queue's.
  const paced = run(mode, loss, { total: Infinity, writeSize: 1024, period: 10 }, 2);
  const d = paced.server.sink.delays;
  return {
    goodput,
    retrans,
    p50: percentile(d, 0.5),
    p99: percentile(d, 0.99),
    max: percentile(d, 1),
  };
}

const t0 = performance.now();
const rows: string[] = [
  `| mode | loss | goodput (bulk upload) | retransmitted | one-way delay p50 | p99 | max |`,
  `| --- | --- | --- | --- | --- | --- | --- |`,
];
for (const mode of ["fast", "fast3"] as const) {
  for (const loss of [0, 0.02, 0.1]) {
    const c = cell(mode, loss);
    rows.push(
      `| ${mode} | ${loss * 100} % | ${(c.goodput / 1e6).toFixed(2)} MB/s | ` +
        `${(c.retrans * 100).toFixed(1)} % | ${c.p50.toFixed(0)} ms | ${c.p99.toFixed(0)} ms | ` +
        `${c.max.toFixed(0)} ms |`,
    );
  }
}
console.log(rows.join("\n"));
console.log(
  `\n${seconds} s simulated per run, 12 runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
