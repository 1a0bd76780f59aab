/**
 * Fake-TCP transport throughput on loopback against the UDP transport, 1350-byte datagrams
 * (kcptun's default -mtu). Needs root (raw sockets).
 *
 * Two ways to run it:
 * - `deno bench -A bench/faketcp_bench.ts`: in-process round trips of 64-datagram windows through
 *   each transport (time per 20 windows; bounded: 200 iterations).
 * - `deno run -A bench/faketcp_bench.ts [--count N] [--seconds S]`: the throughput report. For
 *   each transport it measures receiving (a child process floods this one) and sending (this
 *   process floods a child): datagrams/s, MB/s, CPU of the measured process (all threads, from
 *   /proc/self/stat) and CPU per datagram. Each run stops after N datagrams (default 200000) or
 *   S seconds (default 5).
 *
 * Numbers taken on a shared 2-core machine are provisional.
 */

import { PacketPool } from "../pipeline/packet.ts";
import type { DatagramTransport } from "../pipeline/transport.ts";
import {
  benchChild,
  firstLine,
  flood,
  fmt,
  parseArgs,
  type RunResult,
  sink,
  SIZE,
  SOCKBUF,
  windowEcho,
} from "./datagram_harness.ts";
import { FakeTcpTransport } from "../transports/faketcp.ts";
import { pseudoHeaderSum, tcpChecksum, writeTcpHeader } from "../transports/faketcp/segment.ts";
import { UdpTransport } from "../transports/udp.ts";

type Impl = "udp" | "faketcp";

function transportFor(impl: Impl, pool: PacketPool): DatagramTransport {
  return impl === "udp" ? new UdpTransport({ pool }) : new FakeTcpTransport({ pool });
}

/** Child roles: `--impl I --role flood --port P` or `--impl I --role sink`. */
async function childMain(opts: Record<string, string>): Promise<void> {
  const pool = new PacketPool();
  const t = transportFor(opts.impl as Impl, pool);
  if (opts.role === "flood") {
    const sock = await t.dial("127.0.0.1", Number(opts.port), { sockbuf: SOCKBUF });
    const r = await flood(sock, Number(opts.count), Number(opts.seconds), 0, pool);
    await sock.close();
    console.log(JSON.stringify(r));
  } else {
    const sock = await t.listen("127.0.0.1", 0, { sockbuf: SOCKBUF });
    console.log(sock.localAddr.port);
    const r = await sink(sock, Number(opts.seconds));
    await sock.close();
    console.log(JSON.stringify(r));
  }
}

async function report(opts: Record<string, string>): Promise<void> {
  const count = opts.count ?? "200000", seconds = opts.seconds ?? "5";
  console.log(
    `loopback, ${SIZE}-byte datagrams, up to ${count} datagrams or ${seconds} s per run ` +
      `(provisional: shared 2-core machine)`,
  );
  for (const impl of ["udp", "faketcp"] as Impl[]) {
    const pool = new PacketPool();
    const t = transportFor(impl, pool);
    {
      const sock = await t.listen("127.0.0.1", 0, { sockbuf: SOCKBUF });
      const done = sink(sock, Number(seconds));
      const proc = benchChild(import.meta.url, [
        "--impl",
        impl,
        "--role",
        "flood",
        "--port",
        String(sock.localAddr.port),
        "--count",
        count,
        "--seconds",
        seconds,
      ]);
      const r = await done;
      const sent = JSON.parse(new TextDecoder().decode((await proc.output()).stdout).trim());
      await sock.close();
      console.log(`${impl.padEnd(8)} receive: ${fmt(r)}  got ${r.datagrams}/${sent.datagrams}`);
    }
    {
      const proc = benchChild(import.meta.url, [
        "--impl",
        impl,
        "--role",
        "sink",
        "--seconds",
        seconds,
      ]);
      const [portLine, rest] = await firstLine(proc);
      const sock = await t.dial("127.0.0.1", Number(portLine), { sockbuf: SOCKBUF });
      const r = await flood(sock, Number(count), Number(seconds), 0, pool);
      await sock.close();
      const got = JSON.parse((await rest()).trim()) as RunResult;
      await proc.status;
      console.log(`${impl.padEnd(8)} send:    ${fmt(r)}  child got ${got.datagrams}`);
    }
  }
}

// deno bench: 20 windows of 64 datagrams there and back through each transport.
for (const impl of ["udp", "faketcp"] as Impl[]) {
  Deno.bench({
    name: `${impl}: 20 windows of 64 x ${SIZE} B echoed over loopback`,
    group: "window",
    baseline: impl === "udp",
    n: 200,
    // async: deno bench treats a plain function as synchronous even when it returns a promise
    async fn(b) {
      const pool = new PacketPool();
      await windowEcho(b, transportFor(impl, pool), pool, SOCKBUF);
    },
  });
}

// The one per-datagram computation fake TCP adds in JS: the checksum of header and payload.
{
  const hdr = new Uint8Array(20), payload = new DataView(new ArrayBuffer(2048));
  const pseudo = pseudoHeaderSum(new Uint8Array([127, 0, 0, 1]), new Uint8Array([127, 0, 0, 1]));
  writeTcpHeader(hdr, 0, 40000, 29900, 1, 2, 0x18, 0x8000);
  let sink = 0;
  Deno.bench({
    name: `tcpChecksum: 20-byte header + ${SIZE}-byte payload`,
    group: "checksum",
    fn() {
      sink ^= tcpChecksum(pseudo, hdr, 0, 20, payload, 64, 64 + SIZE);
    },
  });
  Deno.bench({
    name: "tcpChecksum: keeps its result alive",
    group: "checksum",
    fn() {
      if (sink === -1) throw new Error("unreachable");
    },
  });
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  if (opts.role) await childMain(opts);
  else await report(opts);
}
