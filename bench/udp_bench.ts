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

import { type Packet, PacketBatch, PacketPool } from "../pipeline/packet.ts";
import type { DatagramSocket, DatagramTransport } from "../pipeline/transport.ts";
import { DenoUdpTransport } from "../transports/deno_udp.ts";
import { diffKernelUdpCounters, readKernelUdpCounters } from "../transports/kernel_counters.ts";
import { C, loadLibc } from "../transports/libc.ts";
import { UdpTransport } from "../transports/udp.ts";

const SIZE = 1350;
const SOCKBUF = 4 << 20;
const END_MARK = 1; // a 1-byte datagram ends a run

type Impl = "ffi" | "deno" | "deno+sockbuf";

function transportFor(impl: Impl, pool: PacketPool): DatagramTransport {
  return impl === "ffi" ? new UdpTransport({ pool }) : new DenoUdpTransport({ pool });
}

/** CPU seconds used so far by this process, all threads (utime + stime). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
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

interface RunResult {
  datagrams: number;
  seconds: number;
  cpu: number;
}

/** Sends `count` datagrams of SIZE bytes to host:port at `rate`/s (0 = flat out), then END marks. */
async function flood(
  sock: DatagramSocket,
  count: number,
  seconds: number,
  rate: number,
  pool: PacketPool,
): Promise<RunResult> {
  const batch = new PacketBatch();
  const t0 = performance.now(), c0 = cpuSeconds();
  let sent = 0;
  const deadline = t0 + seconds * 1000;
  while (sent < count && performance.now() < deadline) {
    const n = Math.min(64, count - sent);
    for (let i = 0; i < n; i++) {
      const p = pool.acquire();
      p.end = p.start + SIZE;
      batch.push(p);
    }
    sock.send(batch);
    sent += n;
    // The fallback queues sends: keep its queue short instead of overflowing it.
    while (sent - sock.stats.txPackets - sock.stats.dropped > 2048) {
      await new Promise((r) => setTimeout(r, 0));
    }
    if (rate > 0) {
      const ahead = sent / rate * 1000 - (performance.now() - t0);
      if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    } else if ((sent & 1023) < 64) {
      // let the fallback's send queue drain and the event loop breathe
      await new Promise((r) => setTimeout(r, 0));
    }
  }
  while (sock.stats.txPackets + sock.stats.dropped < sent) {
    await new Promise((r) => setTimeout(r, 0));
  }
  const seconds_ = (performance.now() - t0) / 1000, cpu = cpuSeconds() - c0;
  sent = sock.stats.txPackets;
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 5; i++) {
    const p = pool.acquire();
    p.end = p.start + END_MARK;
    batch.push(p);
  }
  sock.send(batch);
  await new Promise((r) => setTimeout(r, 50));
  return { datagrams: sent, seconds: seconds_, cpu };
}

/** Counts datagrams until an END mark or the deadline. */
function sink(sock: DatagramSocket, seconds: number): Promise<RunResult & { bytes: number }> {
  return new Promise((resolve) => {
    let n = 0, bytes = 0, tFirst = 0, tLast = 0, c0 = 0, c1 = 0;
    const finish = () => {
      clearTimeout(timer);
      resolve({ datagrams: n, bytes, seconds: (tLast - tFirst) / 1000, cpu: c1 - c0 });
    };
    const timer = setTimeout(() => {
      c1 = cpuSeconds();
      finish();
    }, seconds * 1000 + 2000);
    let done = false;
    sock.receive((batch: PacketBatch) => {
      for (let i = 0; i < batch.length; i++) {
        const p: Packet = batch.packets[i];
        const len = p.end - p.start;
        p.release();
        if (done) continue;
        if (len === END_MARK) {
          done = true;
          c1 = cpuSeconds();
          finish();
          continue;
        }
        if (n === 0) {
          tFirst = performance.now();
          c0 = cpuSeconds();
        }
        n++;
        bytes += len;
        tLast = performance.now();
      }
    });
  });
}

function child(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

async function readLine(proc: Deno.ChildProcess): Promise<[string, () => Promise<string>]> {
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const nl = buf.indexOf("\n");
    if (nl >= 0) {
      const line = buf.slice(0, nl);
      const rest = buf.slice(nl + 1);
      return [line, async () => {
        let all = rest;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return all;
          all += value;
        }
      }];
    }
    const { value, done } = await reader.read();
    if (done) throw new Error("child ended early");
    buf += value;
  }
}

function fmt(r: RunResult, bytesPer = SIZE): string {
  const rate = r.datagrams / r.seconds;
  return `${(rate / 1000).toFixed(0).padStart(4)}k dgram/s ${
    (rate * bytesPer / 1e6).toFixed(0).padStart(4)
  } MB/s  cpu ${(100 * r.cpu / r.seconds).toFixed(0).padStart(3)}%  ${
    (r.cpu / r.datagrams * 1e6).toFixed(2)
  } µs cpu/dgram`;
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
      const proc = child([
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
      const proc = child(["--role", "sink", "--seconds", seconds]);
      const [portLine, rest] = await readLine(proc);
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

function parseArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith("--")) out[args[i].slice(2)] = args[++i] ?? "";
  }
  return out;
}

// deno bench: one window of 64 datagrams there and back through each implementation.
for (const impl of ["ffi", "deno"] as Impl[]) {
  Deno.bench({
    name: `udp ${impl}: 20 windows of 64 x ${SIZE} B echoed over loopback`,
    group: "udp window",
    baseline: impl === "ffi",
    n: 200,
    async fn(b) {
      const pool = new PacketPool();
      const t = transportFor(impl, pool);
      const srv = await t.listen("127.0.0.1", 0, {});
      const cli = await t.dial("127.0.0.1", srv.localAddr.port, {});
      srv.receive((batch) => srv.send(batch)); // echo: same packets back to their peers
      let got = 0, wake: (() => void) | null = null;
      cli.receive((batch) => {
        got += batch.length;
        batch.releaseAll();
        if (got >= 64 && wake) wake();
      });
      const out = new PacketBatch();
      b.start();
      for (let round = 0; round < 20; round++) {
        got = 0;
        const arrived = new Promise<void>((r) => wake = r);
        for (let i = 0; i < 64; i++) {
          const p = pool.acquire();
          p.end = p.start + SIZE;
          out.push(p);
        }
        cli.send(out);
        // A lost datagram would stall the window forever: give up loudly instead.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          arrived,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`window stalled at ${got}/64`)), 5000);
          }),
        ]);
        clearTimeout(timer);
      }
      b.end();
      await cli.close();
      await srv.close();
    },
  });
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  if (opts.role) await childMain(opts);
  else await report(opts);
}
