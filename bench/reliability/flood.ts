/**
 * Datagram flood during a transfer: while streams echo through the tunnel (every byte checked),
 * the server's UDP port gets, one kind after another, a flood of
 *
 * - `garbage`: random bytes of random length;
 * - `truncated`: real datagrams of the client, cut short;
 * - `wrongkey`: well-formed datagrams (KCP, FEC, crypt) sealed with another key;
 * - `replayed`: real datagrams of the client, re-sent from other source addresses;
 * - `insession`: real datagrams of the client re-sent from the client's own address (duplicates
 *   of old segments inside the live session).
 *
 * All but `insession` come from `sources` UDP sockets (distinct source addresses to the server).
 * The client reaches the server through a forwarder in this process, which records the client's
 * datagrams (for the truncated and replayed kinds) and sends the in-session replays from the
 * client's address. The datagrams sealed with a wrong key come from our own client stages with
 * another key (tests/interop/live.ts), sent to a socket that records them.
 *
 * Per kind: sessions the server created (its `remote address:` lines, one per session in both
 * implementations), lines it logged, and the change of its SNMP InErrs and InCsumErrors; for the
 * whole run: whether the transfer stayed byte-exact, and the server's RSS.
 *
 * @module
 */

import { clientTunnel, fixedPortSession } from "../../tests/interop/live.ts";
import { freePort } from "../../tests/interop/harness.ts";
import { echoLoad, randomBlock } from "../tunnel/load.ts";
import { cpuSeconds } from "../tunnel/proc_stats.ts";
import {
  countIn,
  fmt,
  KEY,
  type Pair,
  peakRssMiB,
  rssMiB,
  sleep,
  snmpOf,
  startTunnel,
  type TunnelOptions,
} from "./ends.ts";

/** The kinds of datagram, in the order they are sent. */
export const FLOOD_KINDS = ["garbage", "truncated", "wrongkey", "replayed", "insession"] as const;
/** One kind. */
export type FloodKind = typeof FLOOD_KINDS[number];

/** Options of {@link flood}. */
export interface FloodOptions extends TunnelOptions {
  /** Seconds of flood per kind (default 2). */
  secondsPerKind?: number;
  /** Datagrams per second (default 20000). */
  rate?: number;
  /** Source sockets (default 200). */
  sources?: number;
  /** Echo streams during the flood (default 4). */
  streams?: number;
  /** Kinds to send (default all). */
  kinds?: readonly FloodKind[];
}

/** What one kind did. */
export interface KindResult {
  /** Datagrams sent. */
  sent: number;
  /** Sessions the server created meanwhile. */
  sessions: number;
  /** Lines the server logged meanwhile. */
  logLines: number;
  /** Change of the server's InErrs. */
  inErrs: number;
  /** Change of the server's InCsumErrors. */
  inCsumErrors: number;
}

/** What one run found. */
export interface FloodResult {
  /** Which implementation. */
  pair: Pair;
  /** Per kind. */
  kinds: Partial<Record<FloodKind, KindResult>>;
  /** Bytes echoed and checked during the flood. */
  transferBytes: number;
  /** Null when every byte came back as sent; else why not. */
  transferError: string | null;
  /** Server RSS before and after the flood, and its peak, MiB. */
  serverRss: { before: number; after: number; peak: number };
  /** Server CPU seconds during the flood. */
  serverCpu: number;
}

/** A UDP forwarder between the client and the server that records the client's datagrams. */
class Tap {
  readonly front = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  readonly back = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  readonly recorded: Uint8Array[] = [];
  #client: Deno.Addr | null = null;
  readonly #server: Deno.NetAddr;
  readonly #loops: Promise<void>[];

  constructor(serverPort: number, readonly keep = 4096) {
    this.#server = { transport: "udp", hostname: "127.0.0.1", port: serverPort };
    this.#loops = [this.#up(), this.#down()];
  }

  get port(): number {
    return (this.front.addr as Deno.NetAddr).port;
  }

  async #up(): Promise<void> {
    try {
      while (true) {
        const [data, from] = await this.front.receive();
        this.#client = from;
        if (this.recorded.length < this.keep) this.recorded.push(data);
        await this.back.send(data, this.#server);
      }
    } catch { /* closed */ }
  }

  async #down(): Promise<void> {
    try {
      while (true) {
        const [data] = await this.back.receive();
        if (this.#client) await this.front.send(data, this.#client);
      }
    } catch { /* closed */ }
  }

  /** Sends `data` to the server from the client's address (as the forwarder does). */
  inject(data: Uint8Array): Promise<number> {
    return this.back.send(data, this.#server);
  }

  async close(): Promise<void> {
    this.front.close();
    this.back.close();
    await Promise.all(this.#loops);
  }
}

/**
 * Datagrams our client stages send for one new stream, sealed with `key` (not the tunnel's):
 * what a client with the wrong key sends.
 */
export async function wrongKeyDatagrams(flags: string[], count = 64): Promise<Uint8Array[]> {
  const sink = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const sinkPort = (sink.addr as Deno.NetAddr).port;
  const tunnel = await clientTunnel([
    "-r",
    `127.0.0.1:${sinkPort}`,
    ...flags.filter((_, i, a) => a[i] !== "-key" && a[i - 1] !== "-key"),
    "-key",
    "definitely-not-the-key",
  ]);
  const s = await fixedPortSession(tunnel, freePort(), sinkPort);
  const out: Uint8Array[] = [];
  try {
    const writer = s.session.openStream().writable.getWriter();
    writer.write(randomBlock(256 * 1024)).catch(() => {});
    writer.releaseLock();
    const deadline = performance.now() + 5000;
    while (out.length < count && performance.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        sink.receive(),
        new Promise<null>((res) => timer = setTimeout(() => res(null), 500)),
      ]);
      clearTimeout(timer);
      if (r) out.push(r[0]);
    }
  } finally {
    await s.crash();
    sink.close();
  }
  if (out.length === 0) throw new Error("our client stages sent nothing to seal with a wrong key");
  return out;
}

/** Makes the datagrams of one kind, `n` at a time. */
function generator(
  kind: FloodKind,
  recorded: Uint8Array[],
  wrongKey: Uint8Array[],
): () => Uint8Array {
  let i = 0;
  const pick = (list: Uint8Array[]) => list[i++ % list.length];
  switch (kind) {
    case "garbage":
      return () => {
        const b = new Uint8Array(1 + Math.floor(Math.random() * 1400));
        crypto.getRandomValues(b);
        return b;
      };
    case "truncated":
      return () => {
        const d = pick(recorded);
        return d.subarray(0, Math.max(1, Math.floor(Math.random() * (d.length - 1))));
      };
    case "wrongkey":
      return () => pick(wrongKey);
    case "replayed":
    case "insession":
      return () => pick(recorded);
  }
}

/** Sends `rate` datagrams a second for `seconds`, round-robin over `send`; returns how many. */
async function blast(
  next: () => Uint8Array,
  send: (d: Uint8Array, i: number) => Promise<number>,
  rate: number,
  seconds: number,
): Promise<number> {
  const t0 = performance.now(), end = t0 + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate) + Math.ceil(rate / 100);
    const burst: Promise<number>[] = [];
    while (sent < due) burst.push(send(next(), sent++).catch(() => 0));
    await Promise.all(burst);
    await sleep(10);
  }
  return sent;
}

/** One flood run against `pair`'s server. */
export async function flood(pair: Pair, o: FloodOptions = {}): Promise<FloodResult> {
  const seconds = o.secondsPerKind ?? 2, rate = o.rate ?? 20000;
  const kinds = o.kinds ?? FLOOD_KINDS;
  const flags = o.flags ?? ["-key", KEY];
  let tap: Tap | null = null;
  const sources = Array.from(
    { length: o.sources ?? 200 },
    () => Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }),
  );
  const wrongKey = kinds.includes("wrongkey") ? await wrongKeyDatagrams(flags) : [];
  const t = await startTunnel(pair, {
    ...o,
    route: (serverPort) => {
      tap = new Tap(serverPort);
      return tap.port;
    },
  });
  const result: FloodResult = {
    pair,
    kinds: {},
    transferBytes: 0,
    transferError: null,
    serverRss: { before: NaN, after: NaN, peak: NaN },
    serverCpu: NaN,
  };
  try {
    const block = randomBlock(4 << 20);
    await echoLoad(t.clientPort, block, 1, 0.5); // warm-up; the tap records the client's datagrams
    const recorded = tap!.recorded;
    const server = t.server;
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: t.serverPort };
    result.serverRss.before = rssMiB(server.pid);
    const cpu0 = cpuSeconds(server.pid);
    const counters = { written: 0, read: 0 };
    const transfer = echoLoad(
      t.clientPort,
      block,
      o.streams ?? 4,
      seconds * kinds.length + 1,
      30000,
      counters,
    ).then(
      (r) => {
        result.transferBytes = r.bytes;
      },
      (e) => {
        result.transferBytes = counters.read;
        result.transferError = (e as Error).message;
      },
    );
    await sleep(500);
    for (const kind of kinds) {
      const s0 = await snmpOf(server, pair);
      const at = server.output().length, sessions0 = countIn(server, "remote address:");
      const next = generator(kind, recorded, wrongKey);
      const send = kind === "insession"
        ? (d: Uint8Array) => tap!.inject(d)
        : (d: Uint8Array, i: number) => sources[i % sources.length].send(d, to);
      const sent = await blast(next, send, rate, seconds);
      await sleep(300);
      const s1 = await snmpOf(server, pair);
      const delta = (k: string) => (s1?.[k] ?? NaN) - (s0?.[k] ?? NaN);
      result.kinds[kind] = {
        sent,
        sessions: countIn(server, "remote address:") - sessions0,
        logLines: floodLogLines(server.output().slice(at)),
        inErrs: delta("InErrs"),
        inCsumErrors: delta("InCsumErrors"),
      };
    }
    await transfer;
    result.serverCpu = cpuSeconds(server.pid) - cpu0;
    result.serverRss.after = rssMiB(server.pid);
    result.serverRss.peak = peakRssMiB(server.pid);
  } finally {
    for (const s of sources) s.close();
    await t.stop();
    await (tap as Tap | null)?.close();
  }
  return result;
}

/**
 * Log lines in `text`, leaving out the SNMP dumps this tool asks for and what Deno's inspector
 * prints on the same signal (ours today, issue 11): neither is the flood's doing.
 */
export function floodLogLines(text: string): number {
  return text.split("\n").filter((l) =>
    l !== "" && !/KCP SNMP:|Debugger listening|Visit chrome:|inspector|For help, see/.test(l)
  ).length;
}

/** The result line part of one pair. */
export function describeFlood(r: FloodResult): string {
  const parts = Object.entries(r.kinds).map(([k, v]) =>
    `${k} ${v.sessions}s/${v.logLines}l/${fmt(v.inErrs, 0)}e/${fmt(v.inCsumErrors, 0)}c`
  );
  const transfer = r.transferError === null
    ? `transfer exact ${(r.transferBytes / (1 << 20)).toFixed(1)} MiB`
    : `transfer FAILED (${r.transferError})`;
  return `${r.pair}: ${transfer}; sessions/lines/InErrs/InCsumErrors: ${parts.join(", ")}; ` +
    `server RSS ${fmt(r.serverRss.before)}->${fmt(r.serverRss.after)} MiB`;
}
