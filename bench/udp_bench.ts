/**
 * UDP transport throughput on loopback, 1350-byte datagrams (kcptun's default -mtu).
 *
 * Two ways to run it:
 * - `deno bench -A bench/udp_bench.ts`: in-process round trips of 64-datagram windows through
 *   each transport (time per window; bounded: deno bench picks the iteration count).
 * - `deno run -A bench/udp_bench.ts [--count N] [--seconds S] [--rate R]`: the throughput report.
 *   For each implementation it measures receiving (a child process floods this one) and sending
 *   (this process floods a child): datagrams/s, MB/s, CPU of the measured process (all its
 *   threads, from /proc/self/stat), and the kernel's UDP RcvbufErrors delta. `--rate` (datagrams/s,
 *   default 0 = as fast as the sender goes) paces the flooding side, to compare CPU per datagram
 *   at equal load. Each run stops after N datagrams (default 200000) or S seconds (default 5).
 *
 * Implementations: `ffi` (transports/udp.ts, recvmmsg/sendmmsg through libc), `deno`
 * (transports/deno_udp.ts, Deno.listenDatagram), `deno+sockbuf` (the same with SO_RCVBUF raised
 * through FFI on the socket found via /proc, to separate buffer size from receive speed).
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
import { DenoUdpTransport } from "../transports/deno_udp.ts";
import { diffKernelUdpCounters, readKernelUdpCounters } from "../transports/kernel_counters.ts";
import { C, loadLibc } from "../transports/libc.ts";
import { UdpTransport } from "../transports/udp.ts";

type Impl = "ffi" | "deno" | "deno+sockbuf";

function transportFor(impl: Impl, pool: PacketPool): DatagramTransport {
  return impl === "ffi" ? new UdpTransport({ pool }) : new DenoUdpTransport({ pool });
}

/**
 * Raises SO_RCVBUF of a `Deno.listenDatagram` socket: find its inode by port in /proc/net/udp(6),
 * then the descriptor whose /proc/self/fd link is `socket:[inode]`.
 */
function raiseRcvbufByPort(port: number, bytes: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    for (const line of Deno.readTextFileSync(file).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(":" + hex)) inodes.add(f[9]);
    }
  }
  const libc = loadLibc();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m && inodes.has(m[1])) {
      const v = new Uint8Array(4);
      new DataView(v.buffer).setInt32(0, bytes, true);
      libc.symbols.setsockopt(Number(e.name), C.SOL_SOCKET, C.SO_RCVBUFFORCE, v, 4);
      return true;
    }
  }
  return false;
}

/** Child roles: `--role flood --port P` or `--role sink`. */
async function childMain(opts: Record<string, string>): Promise<void> {
  const pool = new PacketPool();
  const t = new UdpTransport({ pool });
  if (opts.role === "flood") {
    const sock = await t.dial("127.0.0.1", Number(opts.port), { sockbuf: SOCKBUF });
    const r = await flood(sock, Number(opts.count), Number(opts.seconds), Number(opts.rate), pool);
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
  const count = opts.count ?? "200000", seconds = opts.seconds ?? "5", rate = opts.rate ?? "0";
  console.log(
    `UDP loopback, ${SIZE}-byte datagrams, up to ${count} datagrams or ${seconds} s per run, ` +
      `rate ${rate === "0" ? "unpaced" : rate + "/s"} (provisional: shared 2-core machine)`,
  );
  for (const impl of ["ffi", "deno+sockbuf", "deno"] as Impl[]) {
    const pool = new PacketPool();
    const t = transportFor(impl, pool);
    // receive: a child (libc transport) floods us
    {
      const sock = await t.listen("127.0.0.1", 0, impl === "ffi" ? { sockbuf: SOCKBUF } : {});
      if (impl === "deno+sockbuf") raiseRcvbufByPort(sock.localAddr.port, SOCKBUF);
      const k0 = readKernelUdpCounters();
      const done = sink(sock, Number(seconds));
      const proc = benchChild(import.meta.url, [
        "--role",
        "flood",
        "--port",
        String(sock.localAddr.port),
        "--count",
        count,
        "--seconds",
        seconds,
        "--rate",
        rate,
      ]);
      const r = await done;
      const out = new TextDecoder().decode((await proc.output()).stdout).trim();
      await sock.close();
      const k1 = readKernelUdpCounters();
      const sent = JSON.parse(out) as RunResult;
      const lost = k0 && k1 ? diffKernelUdpCounters(k0, k1).RcvbufErrors : NaN;
      console.log(
        `${impl.padEnd(13)} receive: ${fmt(r)}  got ${r.datagrams}/${sent.datagrams}, ` +
          `RcvbufErrors +${lost}`,
      );
    }
    if (impl === "deno+sockbuf") continue; // sending is the same as "deno"
    // send: we flood a child (libc transport)
    {
      const proc = benchChild(import.meta.url, ["--role", "sink", "--seconds", seconds]);
      const [portLine, rest] = await firstLine(proc);
      const sock = await t.dial(
        "127.0.0.1",
        Number(portLine),
        impl === "ffi" ? { sockbuf: SOCKBUF } : {},
      );
      const k0 = readKernelUdpCounters();
      const r = await flood(sock, Number(count), Number(seconds), Number(rate), pool);
      await sock.close();
      const got = JSON.parse((await rest()).trim()) as RunResult;
      await proc.status;
      const k1 = readKernelUdpCounters();
      const lost = k0 && k1 ? diffKernelUdpCounters(k0, k1).RcvbufErrors : NaN;
      console.log(
        `${impl.padEnd(13)} send:    ${fmt(r)}  child got ${got.datagrams}, ` +
          `RcvbufErrors +${lost}`,
      );
    }
  }
}

// deno bench: one window of 64 datagrams there and back through each implementation.
for (const impl of ["ffi", "deno"] as Impl[]) {
  Deno.bench({
    name: `udp ${impl}: 20 windows of 64 x ${SIZE} B echoed over loopback`,
    group: "udp window",
    baseline: impl === "ffi",
    n: 200,
    // async: deno bench treats a plain function as synchronous even when it returns a promise
    async fn(b) {
      const pool = new PacketPool();
      await windowEcho(b, transportFor(impl, pool), pool);
    },
  });
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  if (opts.role) await childMain(opts);
  else await report(opts);
}
