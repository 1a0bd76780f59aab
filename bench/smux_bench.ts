/**
 * smux throughput over in-memory pipes (provisional numbers: shared 2-core machine).
 *
 * - "core": two sans-IO sessions back to back, no promises: the protocol's own cost.
 * - "driver": two Web Streams drivers over TransformStream pipes, as the tunnel runs them.
 *
 * Each iteration moves 4 MiB; MB/s = 4.194304 × iter/s. The frames/s cases write 64-byte
 * chunks (one frame each): frames/s = 16384 × iter/s.
 *
 *   deno bench -A bench/smux_bench.ts
 */

import { SmuxDriver } from "../transforms/smux/driver.ts";
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

async function driverRun(version: 1 | 2, streams: number): Promise<void> {
  const ab = new TransformStream<Uint8Array, Uint8Array>();
  const ba = new TransformStream<Uint8Array, Uint8Array>();
  const cfg = { version, keepAliveDisabled: true } as const;
  const client = new SmuxDriver({ readable: ba.readable, writable: ab.writable }, {
    role: "client",
    ...cfg,
  });
  const server = new SmuxDriver({ readable: ab.readable, writable: ba.writable }, {
    role: "server",
    ...cfg,
  });
  const per = TOTAL / streams;
  const readers = (async () => {
    const all: Promise<void>[] = [];
    for (let k = 0; k < streams; k++) {
      const s = await server.acceptStream();
      all.push((async () => {
        for await (const c of s.readable) sink += c.length;
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
  await client.close();
  await server.close();
}

for (const version of [1, 2] as const) {
  for (const streams of [1, 100]) {
    Deno.bench(
      `smux driver v${version} 4 MiB, ${streams} stream(s)`,
      { group: "driver" },
      async () => {
        await driverRun(version, streams);
      },
    );
  }
}
