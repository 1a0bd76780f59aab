/**
 * Retransmission timeline of one tunnel pair (ours or Go's) under the seeded lossy relay: a
 * 64-byte ping-pong through `-crypt none`, every datagram of both directions captured at the
 * relay with its loss decision and its KCP segments decoded, and the slow pings printed as a
 * timeline (when each PUSH, ACK and FEC parity shard crossed, which were lost).
 *
 *   deno run -A bench/tunnel/loss_trace.ts --pair ours|go [--loss 0.1] [--burst 4]
 *     [--delay-ms 50] [--seed 1] [--pings 300] [--seconds 60] [--slow-ms 400]
 *     [--flags '-mode fast'] [--jsonl FILE]
 *
 * The relay runs in this process (its loss pattern restarts at index 0 after a 5-ping warm-up,
 * as in the tunnel bench), so both pairs meet the same pattern. `--jsonl` writes every datagram
 * and ping as one JSON object per line for offline comparison.
 *
 * @module
 */

import { freePort } from "../../tests/support/net.ts";
import { type Child, spawnChild, waitForLine } from "./child.ts";
import { startRelay } from "./lossy_relay.ts";
import { REPO_ROOT, startEchoTarget } from "./run.ts";
import { percentile } from "./stats.ts";

const CMD = ["PSH", "ACK", "WSK", "WIN"];

/** One KCP segment as seen on the wire. */
export interface TraceSegment {
  cmd: string;
  sn: number;
  una: number;
  ts: number;
  wnd: number;
  len: number;
}

/** One datagram at the relay. */
export interface TraceDatagram {
  /** ms since the measured pings began. */
  t: number;
  dir: "c2s" | "s2c";
  /** Index in its direction since the pattern restarted. */
  index: number;
  drop: boolean;
  /** FEC seqid and kind (`data`, `parity`), absent without FEC. */
  fec?: { seq: number; kind: "data" | "parity" };
  segs: TraceSegment[];
}

/** Decodes a `-crypt none` datagram: 16-byte nonce, CRC, then FEC header if any, then KCP. */
export function decodeDatagram(b: Uint8Array): Omit<TraceDatagram, "t" | "dir" | "index" | "drop"> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 20;
  let end = b.length;
  let fec: TraceDatagram["fec"];
  if (b.length >= off + 6) {
    const flag = v.getUint16(off + 4, true);
    if (flag === 0xf1 || flag === 0xf2) {
      fec = { seq: v.getUint32(off, true), kind: flag === 0xf1 ? "data" : "parity" };
      if (flag === 0xf2) return { fec, segs: [] };
      end = Math.min(end, off + 6 + v.getUint16(off + 6, true));
      off += 8;
    }
  }
  const segs: TraceSegment[] = [];
  while (end - off >= 24) {
    const cmd = b[off + 4];
    const len = v.getUint32(off + 20, true);
    segs.push({
      cmd: CMD[cmd - 81] ?? String(cmd),
      wnd: v.getUint16(off + 6, true),
      ts: v.getUint32(off + 8, true),
      sn: v.getUint32(off + 12, true),
      una: v.getUint32(off + 16, true),
      len,
    });
    off += 24 + len;
  }
  return { fec, segs };
}

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

function describe(d: TraceDatagram): string {
  const f = d.fec === undefined
    ? ""
    : d.fec.kind === "parity"
    ? ` FEC parity #${d.fec.seq}`
    : ` #${d.fec.seq}`;
  const segs = d.segs.map((s) =>
    s.cmd === "PSH"
      ? `PSH sn=${s.sn} una=${s.una} ts=${s.ts} len=${s.len}`
      : s.cmd === "ACK"
      ? `ACK sn=${s.sn} una=${s.una} ts=${s.ts}`
      : `${s.cmd} una=${s.una} wnd=${s.wnd}`
  ).join(", ");
  return `${d.t.toFixed(1).padStart(9)} ${d.dir} ${String(d.index).padStart(5)} ${
    d.drop ? "LOST" : "    "
  }${f} ${segs}`;
}

if (import.meta.main) {
  const pair = arg("--pair", "ours");
  const loss = Number(arg("--loss", "0.1"));
  const burst = Number(arg("--burst", "4"));
  const delayMs = Number(arg("--delay-ms", "50"));
  const seed = Number(arg("--seed", "1"));
  const pings = Number(arg("--pings", "300"));
  const seconds = Number(arg("--seconds", "60"));
  const slowMs = Number(arg("--slow-ms", "400"));
  const flags = arg("--flags", "").trim().split(/\s+/).filter((s) => s !== "");
  const jsonl = arg("--jsonl", "");
  const key = "kcptun-ts-trace";

  const children: Child[] = [];
  const start = (role: "client" | "server", args: string[]) =>
    pair === "go" ? spawnChild(`Go ${role}`, `/usr/bin/kcptun-${role}`, args) : spawnChild(
      `our ${role}`,
      Deno.execPath(),
      ["run", "-A", "--quiet", `cli/${role}.ts`, ...args],
      REPO_ROOT,
    );

  const target = await startEchoTarget();
  children.push(target.child);
  const serverPort = freePort();
  const common = ["-key", key, "-crypt", "none", ...flags];
  const server = start("server", [
    "-l",
    `127.0.0.1:${serverPort}`,
    "-t",
    `127.0.0.1:${target.port}`,
    ...common,
  ]);
  children.push(server);
  const trace: TraceDatagram[] = [];
  let t0 = performance.now();
  let recording = false;
  const index = { c2s: 0, s2c: 0 };
  const relay = await startRelay({
    port: 0,
    serverPort,
    loss,
    delayMs,
    seed,
    burst,
    onDatagram(dir, bytes, drop) {
      const i = index[dir]++;
      if (!recording) return;
      trace.push({ t: performance.now() - t0, dir, index: i, drop, ...decodeDatagram(bytes) });
    },
  });
  const clientPort = freePort();
  const client = start("client", [
    "-l",
    `127.0.0.1:${clientPort}`,
    "-r",
    `127.0.0.1:${relay.port}`,
    ...common,
  ]);
  children.push(client);
  const pingLog: { i: number; t: number; rtt: number }[] = [];
  try {
    await Promise.all([
      waitForLine(server, /key derivation done/),
      waitForLine(client, /key derivation done/),
    ]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: clientPort });
    conn.setNoDelay(true);
    const ping = new Uint8Array(64), pong = new Uint8Array(64);
    crypto.getRandomValues(ping);
    const once = async (i: number) => {
      new DataView(ping.buffer).setUint32(0, i);
      const sent = performance.now();
      await conn.write(ping);
      let got = 0;
      while (got < 64) {
        const n = await conn.read(pong.subarray(got));
        if (n === null) throw new Error("stream closed");
        got += n;
      }
      return sent;
    };
    for (let i = 0; i < 5; i++) await once(-1 - i); // warm-up: smux stream open, first RTT samples
    await new Promise((r) => setTimeout(r, 200));
    relay.resetPattern();
    index.c2s = index.s2c = 0;
    t0 = performance.now();
    recording = true;
    const end = t0 + seconds * 1000;
    for (let i = 0; i < pings && performance.now() < end; i++) {
      const sent = await once(i);
      pingLog.push({ i, t: sent - t0, rtt: performance.now() - sent });
    }
    recording = false;
    conn.close();
  } finally {
    for (const c of [client, server, ...children]) await c.stop();
    await relay.close();
  }

  const rtts = pingLog.map((p) => p.rtt);
  const dropped = trace.filter((d) => d.drop).length;
  console.log(
    `${pair}: ${pingLog.length} pings, p50 ${percentile(rtts, 50).toFixed(1)} p99 ${
      percentile(rtts, 99).toFixed(1)
    } max ${Math.max(...rtts).toFixed(1)} ms; ${trace.length} datagrams, ${dropped} lost`,
  );
  for (const p of pingLog) {
    if (p.rtt < slowMs) continue;
    console.log(`\nping ${p.i}: sent at ${p.t.toFixed(1)}, rtt ${p.rtt.toFixed(1)} ms`);
    for (const d of trace) {
      if (d.t >= p.t - 5 && d.t <= p.t + p.rtt + 5) console.log(describe(d));
    }
  }
  if (jsonl !== "") {
    const lines = [
      ...pingLog.map((p) => JSON.stringify({ ping: p })),
      ...trace.map((d) => JSON.stringify(d)),
    ];
    Deno.writeTextFileSync(jsonl, lines.join("\n") + "\n");
  }
}
