/**
 * smux throughput in memory (provisional numbers: shared 2-core machine).
 *
 * - "core": two sans-IO sessions back to back, no promises: the protocol's own cost.
 * - "runtime": two runtime connections (KCP + smux, no packet stages) driven by
 *   `ConnectionDriver`s, joined by an in-memory link that delivers each sent batch on the next
 *   macrotask, streams used through the `TunnelStream` Web Streams view (as a library user
 *   would) or its fast interface (as the relay does).
 *
 * Each iteration moves 4 MiB; MB/s = 4.194304 × iter/s. The frames/s cases write 64-byte
 * chunks (one frame each): frames/s = 16384 × iter/s.
 *
 *   deno bench -A bench/smux_bench.ts
 */

import { PacketBatch, PacketPool } from "../pipeline/packet.ts";
import { Snmp } from "../pipeline/snmp.ts";
import { PacketChain } from "../pipeline/chain.ts";
import { Connection } from "../runtime/connection.ts";
import { ConnectionDriver } from "../runtime/driver.ts";
import type { TunnelStream } from "../runtime/stream.ts";
import { KCP_MODES } from "../transforms/kcp/modes.ts";
import { SmuxSession } from "../transforms/smux/session.ts";

const TOTAL = 4 * 1024 * 1024;
const DATA = new Uint8Array(TOTAL).map((_, i) => i * 31);
let sink = 0;

/** Sends TOTAL bytes in `chunk`-byte writes spread over `streams` streams; reads everything. */
function coreRun(version: 1 | 2, streams: number, chunk: number): number {
  const cfg = { version, maxFrameSize: 32768 } as const;
  const a = new SmuxSession("client", cfg);
  const b = new SmuxSession("server", cfg);
  const ids: number[] = [];
  for (let k = 0; k < streams; k++) ids.push(a.openStream());
  let written = 0;
  let got = 0;
  let frames = 0;
  const accepted: number[] = [];
  while (got < TOTAL) {
    // Keep about 1 MiB in flight, like a bounded KCP window.
    while (written < TOTAL && a.queuedSendBytes < (1 << 20)) {
      const id = ids[(written / chunk | 0) % streams];
      const n = Math.min(chunk, TOTAL - written);
      a.write(id, DATA.subarray(written, written + n));
      written += n;
    }
    for (let f; (f = a.pollTransmit()) !== null;) {
      frames++;
      b.receive(f);
    }
    for (let id; (id = b.accept()) >= 0;) accepted.push(id);
    for (const id of accepted) for (let r; (r = b.read(id)) !== null;) got += r.length;
    for (let f; (f = b.pollTransmit()) !== null;) a.receive(f);
  }
  return frames;
}

for (const version of [1, 2] as const) {
  for (const streams of [1, 100]) {
    Deno.bench(`smux core v${version} 4 MiB, ${streams} stream(s)`, { group: "core" }, () => {
      sink += coreRun(version, streams, 32768);
    });
  }
}
Deno.bench("smux core v2 frames/s: 64-byte writes, 100 streams (16384 frames)", () => {
  const frames = (() => {
    const a = new SmuxSession("client", { version: 2 });
    const b = new SmuxSession("server", { version: 2 });
    const ids = Array.from({ length: 100 }, () => a.openStream());
    const piece = DATA.subarray(0, 64);
    let n = 0;
    for (let i = 0; i < 16384; i++) a.write(ids[i % 100], piece);
    for (let f; (f = a.pollTransmit()) !== null;) {
      b.receive(f);
      n++;
    }
    for (let id; (id = b.accept()) >= 0;) while (b.read(id) !== null) n++;
    return n;
  })();
  sink += frames;
});

/**
 * One direction of an in-memory link: what one driver sends is handed to the other on the next
 * macrotask (a MessageChannel message: unlike nested timers it is not clamped), one delivery
 * per turn however many batches were sent meanwhile.
 */
class Link {
  readonly #pending = new PacketBatch();
  readonly #channel = new MessageChannel();
  #scheduled = false;
  target: ConnectionDriver | null = null;

  constructor() {
    this.#channel.port1.onmessage = () => {
      this.#scheduled = false;
      this.target!.input(this.#pending); // takes the packets over
    };
  }

  readonly send = (batch: PacketBatch): void => {
    this.#pending.takeAll(batch);
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#channel.port2.postMessage(null);
    }
  };

  close(): void {
    this.#pending.releaseAll();
    this.#channel.port1.close();
  }
}

const pool = new PacketPool();

/** A client and a server driver joined by two {@link Link}s. */
function runtimePair(version: 1 | 2) {
  const ab = new Link(), ba = new Link();
  const now = performance.now();
  const make = (role: "client" | "server", out: Link) =>
    new ConnectionDriver(
      new Connection({
        role,
        conv: 1,
        mtu: 1350,
        kcp: { ...KCP_MODES.fast3, sndWnd: 1024, rcvWnd: 1024 },
        packets: new PacketChain([]),
        smux: { version, keepAliveDisabled: true },
        pool,
        snmp: new Snmp(),
        now,
      }),
      { send: out.send },
    );
  const client = make("client", ab), server = make("server", ba);
  ab.target = server;
  ba.target = client;
  return {
    client,
    server,
    async close() {
      await client.close();
      await server.close();
      ab.close();
      ba.close();
    },
  };
}

async function webStreamsRun(version: 1 | 2, streams: number): Promise<void> {
  const { client, server, close } = runtimePair(version);
  const per = TOTAL / streams;
  const readers = (async () => {
    const all: Promise<void>[] = [];
    for (let k = 0; k < streams; k++) {
      const s = await server.acceptStream();
      all.push((async () => {
        for await (const c of s.readable) sink += c.length;
        s.close();
      })());
    }
    await Promise.all(all);
  })();
  await Promise.all(Array.from({ length: streams }, async (_, k) => {
    const s = client.openStream();
    const w = s.writable.getWriter();
    for (let at = 0; at < per; at += 32768) {
      await w.write(DATA.subarray(k * per + at, k * per + Math.min(per, at + 32768)));
    }
    await w.close();
  }));
  await readers;
  await close();
}

/** The relay's way: write with a bounded queue, `readInto` a reused buffer. */
async function fastRun(version: 1 | 2): Promise<void> {
  const { client, server, close } = runtimePair(version);
  const out: TunnelStream = client.openStream();
  const writing = (async () => {
    for (let at = 0; at < TOTAL; at += 32768) {
      out.write(DATA.subarray(at, at + 32768));
      if (out.queued > 1 << 20) await out.waitDrained(1 << 20);
    }
    out.closeWrite();
  })();
  const s = await server.acceptStream();
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = s.readInto(buf);
    if (n > 0) {
      sink += n;
      continue;
    }
    if (s.readEnded) break;
    await s.waitReadable();
  }
  await writing;
  s.close();
  await close();
}

for (const version of [1, 2] as const) {
  for (const streams of [1, 100]) {
    Deno.bench(
      `runtime v${version} 4 MiB, ${streams} stream(s), Web Streams view`,
      { group: "runtime" },
      async () => {
        await webStreamsRun(version, streams);
      },
    );
  }
  Deno.bench(
    `runtime v${version} 4 MiB, 1 stream, fast interface`,
    { group: "runtime" },
    async () => {
      await fastRun(version);
    },
  );
}
