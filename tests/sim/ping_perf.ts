/**
 * Simulated ping-pong under loss: kcptun's defaults (`-mode fast`, FEC 10/3, default windows and
 * MTU), 64-byte pings as kcptun writes them, 50 ms each way, 10% loss independent or in runs (the
 * tunnel bench's lossy relay model). Each row compares kcp-go's rules (a poll per datagram,
 * FEC-rebuilt repeats acked) with ours (one poll per batch of datagrams arriving together, as our
 * drivers read them, and our defaults). Deterministic; prints a Markdown table.
 *
 * Run: deno run -A tests/sim/ping_perf.ts [seeds, default 10] [pings per seed, default 1000]
 */

import { PacketPool } from "../../pipeline/packet.ts";
import type { KcpOptions } from "../../transforms/kcp/arq.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { type LinkConfig, Simulator } from "./link.ts";
import { PingEndpoint } from "./ping_endpoint.ts";

const seeds = Number(Deno.args[0] ?? 10);
const pings = Number(Deno.args[1] ?? 1000);

function link(loss: number, burst: number): LinkConfig {
  if (burst <= 1) return { delay: 50, loss };
  const q = loss / (burst * (1 - loss));
  return { delay: 50, burst: { pGoodToBad: q, pBadToGood: 1 / burst, lossBad: 1 } };
}

function pct(xs: number[], p: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
}

function run(l: LinkConfig, batch: boolean, kcp: KcpOptions) {
  const rtts: number[] = [], rtos: number[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const pool = new PacketPool();
    const common = {
      ...KCP_MODES.fast,
      mtu: 1350 - 20 - 8,
      fec: { dataShards: 10, parityShards: 3 },
      ...kcp,
    };
    const client = new PingEndpoint(
      3,
      { ...common, role: "client", sndWnd: 128, rcvWnd: 512, count: pings },
      pool,
    );
    const server = new PingEndpoint(
      3,
      { ...common, role: "server", sndWnd: 1024, rcvWnd: 1024 },
      pool,
    );
    new Simulator(seed, client, server, l, l, { batch }).runUntil(
      () => client.answered >= pings,
      1e9,
    );
    rtts.push(...client.rtts);
    rtos.push(...client.rtos, ...server.rtos);
  }
  const mean = rtts.reduce((a, b) => a + b, 0) / rtts.length;
  return `${mean.toFixed(0)} | ${pct(rtts, 0.5)} | ${pct(rtts, 0.9)} | ${pct(rtts, 0.99)} | ${
    pct(rtts, 0.999)
  } | ${pct(rtos, 0.9)} |`;
}

const t0 = performance.now();
const rows = [
  "| loss (10%) | rules | mean ms | p50 | p90 | p99 | p99.9 | RTO p90 |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
];
for (const burst of [1, 2, 4]) {
  const l = link(0.1, burst);
  const name = burst === 1 ? "independent" : `runs of ${burst}`;
  rows.push(`| ${name} | kcp-go | ${run(l, false, { ackRecoveredRepeats: true })}`);
  rows.push(`| ${name} | ours | ${run(l, true, {})}`);
}
console.log(rows.join("\n"));
console.log(
  `\n${seeds} seeds × ${pings} pings per row, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
