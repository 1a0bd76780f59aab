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

import { type Packet, PacketBatch, PacketPool } from "../pipeline/packet.ts";
import type { DatagramSocket, DatagramTransport } from "../pipeline/transport.ts";
import { FakeTcpTransport } from "../transports/faketcp.ts";
import { pseudoHeaderSum, tcpChecksum, writeTcpHeader } from "../transports/faketcp/segment.ts";
import { UdpTransport } from "../transports/udp.ts";

const SIZE = 1350;
const SOCKBUF = 4 << 20;
const END_MARK = 1; // a 1-byte datagram ends a run

type Impl = "udp" | "faketcp";

function transportFor(impl: Impl, pool: PacketPool): DatagramTransport {
  return impl === "udp" ? new UdpTransport({ pool }) : new FakeTcpTransport({ pool });
}

/** CPU seconds used so far by this process, all threads (utime + stime). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

interface RunResult {
  datagrams: number;
  seconds: number;
  cpu: number;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Sends up to `count` datagrams of SIZE bytes flat out, then END marks. */
async function flood(
  sock: DatagramSocket,
  count: number,
  seconds: number,
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
    if ((sent & 1023) < 64) await tick(); // let the receiver's side of the host breathe
  }
  const elapsed = (performance.now() - t0) / 1000, cpu = cpuSeconds() - c0;
  sent = sock.stats.txPackets;
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 5; i++) {
    const p = pool.acquire();
    p.end = p.start + END_MARK;
    batch.push(p);
  }
  sock.send(batch);
  await new Promise((r) => setTimeout(r, 50));
  return { datagrams: sent, seconds: elapsed, cpu };
}

/** Counts datagrams until an END mark or the deadline. */
function sink(sock: DatagramSocket, seconds: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let n = 0, tFirst = 0, tLast = 0, c0 = 0, c1 = 0, done = false;
    const finish = () => {
      clearTimeout(timer);
      resolve({ datagrams: n, seconds: (tLast - tFirst) / 1000, cpu: c1 - c0 });
    };
    const timer = setTimeout(() => {
      c1 = cpuSeconds();
      finish();
    }, seconds * 1000 + 3000);
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
        tLast = performance.now();
      }
    });
  });
}

function child(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** The child's first stdout line, and a function returning the rest once it exits. */
async function firstLine(proc: Deno.ChildProcess): Promise<[string, () => Promise<string>]> {
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const nl = buf.indexOf("\n");
    if (nl >= 0) {
      const rest = buf.slice(nl + 1);
      return [buf.slice(0, nl), async () => {
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

function fmt(r: RunResult): string {
  const rate = r.datagrams / r.seconds;
  return `${(rate / 1000).toFixed(0).padStart(4)}k dgram/s ${
    (rate * SIZE / 1e6).toFixed(0).padStart(4)
  } MB/s  cpu ${(100 * r.cpu / r.seconds).toFixed(0).padStart(3)}%  ${
    (r.cpu / r.datagrams * 1e6).toFixed(2)
  } µs cpu/dgram`;
}

/** Child roles: `--impl I --role flood --port P` or `--impl I --role sink`. */
async function childMain(opts: Record<string, string>): Promise<void> {
  const pool = new PacketPool();
  const t = transportFor(opts.impl as Impl, pool);
  if (opts.role === "flood") {
    const sock = await t.dial("127.0.0.1", Number(opts.port), { sockbuf: SOCKBUF });
    const r = await flood(sock, Number(opts.count), Number(opts.seconds), pool);
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
      const proc = child([
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
      const proc = child(["--impl", impl, "--role", "sink", "--seconds", seconds]);
      const [portLine, rest] = await firstLine(proc);
      const sock = await t.dial("127.0.0.1", Number(portLine), { sockbuf: SOCKBUF });
      const r = await flood(sock, Number(count), Number(seconds), pool);
      await sock.close();
      const got = JSON.parse((await rest()).trim()) as RunResult;
      await proc.status;
      console.log(`${impl.padEnd(8)} send:    ${fmt(r)}  child got ${got.datagrams}`);
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

// deno bench: 20 windows of 64 datagrams there and back through each transport.
for (const impl of ["udp", "faketcp"] as Impl[]) {
  Deno.bench({
    name: `${impl}: 20 windows of 64 x ${SIZE} B echoed over loopback`,
    group: "window",
    baseline: impl === "udp",
    n: 200,
    async fn(b) {
      const pool = new PacketPool();
      const t = transportFor(impl, pool);
      const srv = await t.listen("127.0.0.1", 0, { sockbuf: SOCKBUF });
      const cli = await t.dial("127.0.0.1", srv.localAddr.port, { sockbuf: SOCKBUF });
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
