/**
 * What the datagram transport benchmarks (udp_bench.ts, faketcp_bench.ts) share: flooding and
 * counting 1350-byte datagrams between this process and a child, CPU from /proc, the report
 * line, and the in-process window echo that `deno bench` times.
 */

import { type Packet, PacketBatch, type PacketPool } from "../pipeline/packet.ts";
import type { DatagramSocket, DatagramTransport } from "../pipeline/transport.ts";

/** Datagram size: kcptun's default -mtu. */
export const SIZE = 1350;
/** Socket buffers asked for (kcptun's -sockbuf default). */
export const SOCKBUF = 4 << 20;
/** A datagram of this length ends a run. */
export const END_MARK = 1;

/** One measured run. */
export interface RunResult {
  /** Datagrams sent or received. */
  datagrams: number;
  /** Bytes received (sink only). */
  bytes?: number;
  /** Duration of the run. */
  seconds: number;
  /** CPU seconds of this process during the run. */
  cpu: number;
}

/** CPU seconds used so far by this process, all threads (utime + stime). */
export function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/**
 * Sends up to `count` datagrams of {@link SIZE} bytes, at `rate` per second (0: as fast as the
 * socket takes them), for at most `seconds`, then END marks.
 */
export async function flood(
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
    // Transports that queue sends (Deno.listenDatagram): keep the queue short.
    while (sent - sock.stats.txPackets - sock.stats.dropped > 2048) await tick();
    if (rate > 0) {
      const ahead = sent / rate * 1000 - (performance.now() - t0);
      if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    } else if ((sent & 1023) < 64) {
      await tick(); // let queued sends drain and the event loop breathe
    }
  }
  while (sock.stats.txPackets + sock.stats.dropped < sent) await tick();
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

/** Counts datagrams until an END mark, or `seconds` + 3 s. */
export function sink(sock: DatagramSocket, seconds: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let n = 0, bytes = 0, tFirst = 0, tLast = 0, c0 = 0, c1 = 0, done = false;
    const finish = () => {
      clearTimeout(timer);
      resolve({ datagrams: n, bytes, seconds: (tLast - tFirst) / 1000, cpu: c1 - c0 });
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
        bytes += len;
        tLast = performance.now();
      }
    });
  });
}

/** Runs `module` (a bench file) as a child with `args`, stdout piped. */
export function benchChild(module: string | URL, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--unstable-net", new URL(module).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** The child's first stdout line, and a function returning the rest once it exits. */
export async function firstLine(proc: Deno.ChildProcess): Promise<[string, () => Promise<string>]> {
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

/** `233k dgram/s  315 MB/s  cpu  48%  2.05 µs cpu/dgram`. */
export function fmt(r: RunResult): string {
  const rate = r.datagrams / r.seconds;
  return `${(rate / 1000).toFixed(0).padStart(4)}k dgram/s ${
    (rate * SIZE / 1e6).toFixed(0).padStart(4)
  } MB/s  cpu ${(100 * r.cpu / r.seconds).toFixed(0).padStart(3)}%  ${
    (r.cpu / r.datagrams * 1e6).toFixed(2)
  } µs cpu/dgram`;
}

/** `--key value` pairs. */
export function parseArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith("--")) out[args[i].slice(2)] = args[++i] ?? "";
  }
  return out;
}

/**
 * The `deno bench` body: 20 windows of 64 datagrams sent through `transport` to an echoing
 * socket on loopback and back, timed between `b.start()` and `b.end()`.
 */
export async function windowEcho(
  b: Deno.BenchContext,
  transport: DatagramTransport,
  pool: PacketPool,
  sockbuf = 0,
): Promise<void> {
  const options = sockbuf > 0 ? { sockbuf } : {};
  const srv = await transport.listen("127.0.0.1", 0, options);
  const cli = await transport.dial("127.0.0.1", srv.localAddr.port, options);
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
}
