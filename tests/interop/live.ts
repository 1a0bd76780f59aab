/**
 * Helpers for the live-behaviour tests: single echoes through a tunnel entry, a client session
 * dialled from a fixed local UDP port (to play a restarted client on the same address), echoes
 * through one smux stream, the server-restart scenario.
 *
 * @module
 */

import { parseClientConfig } from "../../cli/config.ts";
import { resolvePipeline } from "../../cli/pipeline.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { dialSession } from "../../runtime/dial.ts";
import type { TunnelSession } from "../../runtime/session.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import { Tunnel } from "../../runtime/tunnel.ts";
import { parseIp } from "../../transports/sockaddr.ts";
import type { UdpSocket, UdpTransport } from "../../transports/udp.ts";
import { readExactly, sleep, writeAll } from "../support/net.ts";
import {
  echoStreams,
  EchoTarget,
  freePort,
  type Impl,
  KEY,
  type Proc,
  seededBytes,
  sha256,
  startClient,
  startServer,
  waitUdpBound,
} from "./harness.ts";

/** Flags of {@link startEnds}: for both ends (default `-key KEY`), and for each end alone. */
export interface EndFlags {
  /** Given to both ends. */
  common?: string[];
  /** Server only. */
  server?: string[];
  /** Client only. */
  client?: string[];
}

/**
 * Starts a server on a free UDP port relaying to `targetAddress`, then a client on a free TCP
 * port dialling it; both are pushed onto `procs` (the caller stops them) as soon as they start.
 * Resolves once the server's UDP port is bound and the client listens.
 */
export async function startEnds(
  procs: Proc[],
  client: Impl,
  server: Impl,
  targetAddress: string,
  flags: EndFlags = {},
): Promise<{ s: Proc; c: Proc; sp: number; cp: number }> {
  const sp = freePort(), cp = freePort();
  const common = flags.common ?? ["-key", KEY];
  const s = startServer(server, [
    "-l",
    `127.0.0.1:${sp}`,
    "-t",
    targetAddress,
    ...common,
    ...flags.server ?? [],
  ]);
  procs.push(s);
  await waitUdpBound(s, sp);
  const c = startClient(client, [
    "-l",
    `127.0.0.1:${cp}`,
    "-r",
    `127.0.0.1:${sp}`,
    ...common,
    ...flags.client ?? [],
  ]);
  procs.push(c);
  await c.waitFor("listening on:");
  return { s, c, sp, cp };
}

/** Echoes `bytes` through one new connection to TCP `port`; throws why it failed. */
export async function echoOnce(
  port: number,
  bytes: number,
  seed: number,
  timeoutMs = 10000,
): Promise<void> {
  const r = await echoStreams({ port }, { streams: 1, bytes, seed, timeoutMs });
  const s = r.streams[0];
  if (s.error !== null) throw new Error(`${s.error} (written ${s.written}, echoed ${s.read})`);
}

/** Reads from `conn` until `ms` pass: what arrived and whether the connection ended. */
export async function listenQuietly(
  conn: Deno.Conn,
  ms: number,
): Promise<{ bytes: number; ended: string | null }> {
  const buf = new Uint8Array(65536);
  let bytes = 0;
  let ended: string | null = null;
  const deadline = performance.now() + ms;
  let pending: Promise<number | null> | null = null;
  while (ended === null) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    pending ??= conn.read(buf);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      pending.then((n) => ({ n }), (e) => ({ e: String(e) })),
      new Promise<null>((res) => timer = setTimeout(() => res(null), left)),
    ]);
    clearTimeout(timer);
    if (r === null) break;
    pending = null;
    if ("e" in r) ended = `error: ${r.e}`;
    else if (r.n === null) ended = "EOF";
    else bytes += r.n;
  }
  try {
    conn.close(); // also settles a read still pending
  } catch { /* closed */ }
  if (pending) await pending.catch(() => {});
  return { bytes, ended };
}

/** One client-side tunnel session, as our client makes them, from a fixed local UDP port. */
export interface FixedPortSession {
  /** The session (KCP, smux). */
  session: TunnelSession;
  /** The bound UDP socket. */
  socket: UdpSocket;
  /** Drops the session as a crash would: the socket closes first, so nothing more is sent. */
  crash(): Promise<void>;
}

/** A tunnel for client sessions built from kcptun client flags (`-r` must be given). */
export async function clientTunnel(args: string[], snmp = new Snmp()): Promise<Tunnel> {
  const r = parseClientConfig(["-l", "127.0.0.1:0", ...args], {});
  if (r.kind !== "run") throw new Error(`bad client flags: ${r.stderr}`);
  return await Tunnel.create(await resolvePipeline(r.config), { role: "client", snmp });
}

/**
 * Dials `127.0.0.1:serverPort` from UDP `127.0.0.1:localPort` with a fresh conv, through the
 * tunnel: what our client's dial does, except for the fixed source port (our client, like
 * kcptun's, always dials from an ephemeral port).
 */
export async function fixedPortSession(
  tunnel: Tunnel,
  localPort: number,
  serverPort: number,
): Promise<FixedPortSession> {
  const transport = tunnel.transport as UdpTransport;
  const socket = await transport.listen("127.0.0.1", localPort);
  const peer = socket.peers.intern(parseIp("127.0.0.1")!, serverPort);
  const session = await dialSession(tunnel, "127.0.0.1", serverPort, { via: { socket, peer } });
  return {
    session,
    socket,
    async crash() {
      await socket.close();
      await session.close();
    },
  };
}

/** Writes `bytes` seeded bytes to a new stream of `session` and checks the echo (sha256). */
export async function echoOverStream(
  session: TunnelSession,
  bytes: number,
  seed: number,
  timeoutMs = 10000,
): Promise<TunnelStream> {
  const stream = session.openStream();
  await echoOn(stream, bytes, seed, timeoutMs);
  return stream;
}

/** Echo of `bytes` seeded bytes on an open smux stream, checked by sha256. */
export async function echoOn(
  stream: TunnelStream,
  bytes: number,
  seed: number,
  timeoutMs = 10000,
): Promise<void> {
  const data = seededBytes(seed, bytes);
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const got = new Uint8Array(bytes);
  let off = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(
      () => rej(new Error(`echo timed out after ${off}/${bytes} bytes`)),
      timeoutMs,
    );
  });
  try {
    const write = (async () => {
      for (let i = 0; i < bytes; i += 16384) await writer.write(data.slice(i, i + 16384));
    })();
    const read = (async () => {
      while (off < bytes) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended after ${off}/${bytes} bytes`);
        got.set(value.subarray(0, bytes - off), off);
        off += value.length;
      }
    })();
    await Promise.race([Promise.all([write, read]), timeout]);
  } finally {
    clearTimeout(timer);
    writer.releaseLock();
    reader.releaseLock();
  }
  const [a, b] = await Promise.all([sha256(data), sha256(got)]);
  if (a !== b) throw new Error(`sha256 mismatch on stream ${stream.id}`);
}

/** Polls `cond` every 50 ms until true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The longest a client may take to recover from a restarted server (smux: 30–60 s). */
export const RECOVERY_BOUND_MS = 75000;

/**
 * The server of a `client`→`server` pair is killed (SIGKILL) and restarted on the same port
 * while a stream is open. The client only learns through smux's keepalive check (every 30 s,
 * fails when no frame came since the previous check), so recovery takes 30–60 s. Checks: the old
 * stream ends (EOF or error, no bytes), a new connection echoes within
 * {@link RECOVERY_BOUND_MS} of the kill, the client is still running. Returns the recovery time
 * in ms and the client process's output.
 */
export async function serverRestarted(
  client: Impl,
  server: Impl,
): Promise<{ recoveryMs: number; clientOutput: string }> {
  const target = EchoTarget.tcp();
  const sp = freePort(), cp = freePort();
  const sargs = ["-l", `127.0.0.1:${sp}`, "-t", target.address, "-key", KEY];
  const procs: Proc[] = [];
  const tails = () => procs.map((p) => p.tail()).join("\n");
  try {
    const first = startServer(server, sargs, `${server} server (first)`);
    procs.push(first);
    await waitUdpBound(first, sp);
    const c = startClient(client, [
      "-l",
      `127.0.0.1:${cp}`,
      "-r",
      `127.0.0.1:${sp}`,
      "-key",
      KEY,
      "-keepalive",
      "2",
    ]);
    procs.push(c);
    await c.waitFor("listening on:");
    const old = await Deno.connect({ hostname: "127.0.0.1", port: cp });
    const data = seededBytes(7, 65536);
    await writeAll(old, data);
    await readExactly(old, data.length);

    const killedAt = performance.now();
    await first.kill();
    const second = startServer(server, sargs, `${server} server (restarted)`);
    procs.push(second);
    await waitUdpBound(second, sp);
    const oldEnd = listenQuietly(old, RECOVERY_BOUND_MS);

    let recoveredAt = 0;
    let attempts = 0;
    const failures: string[] = [];
    while (recoveredAt === 0) {
      const left = RECOVERY_BOUND_MS - (performance.now() - killedAt);
      if (left <= 0) break;
      attempts++;
      try {
        await echoOnce(cp, 16384, 100 + attempts, left);
        recoveredAt = performance.now();
      } catch (e) {
        failures.push(`attempt ${attempts}: ${(e as Error).message}`);
      }
    }
    if (recoveredAt === 0) {
      throw new Error(
        `no echo within ${RECOVERY_BOUND_MS} ms of the restart\n${failures.join("\n")}`,
      );
    }
    const o = await oldEnd;
    if (o.ended === null) throw new Error(`the old stream neither ended nor failed`);
    if (o.bytes !== 0) throw new Error(`the old stream got ${o.bytes} bytes after the restart`);
    if (c.exited) throw new Error(`the client exited (${c.status?.signal ?? c.status?.code})`);
    if (second.count("stream opened") < 1) {
      throw new Error("the restarted server carried no stream");
    }
    return { recoveryMs: recoveredAt - killedAt, clientOutput: c.output() };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${tails()}`);
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await target.close();
  }
}
