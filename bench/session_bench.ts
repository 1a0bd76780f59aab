/**
 * Two tunnel ends talking over real UDP sockets on loopback (the libc transport), built by the
 * runtime from the bare pipeline `tcp > smux > kcp > udp` (no snappy, no FEC, no crypt): bytes
 * per second of a one-way transfer on one smux stream, and the kernel's UDP RcvbufErrors during
 * it. One iteration moves 8 MiB from a client stream to the server's stream through the fast
 * stream interface (write with a bounded queue, readInto). Windows are 1024/1024 and the mode
 * fast3, so that the runtime, not kcptun's default 128-segment client window (which caps an
 * upload at 128 segments per 30 ms flush interval, in Go too), sets the pace. The summary line
 * printed at the end gives MiB/s and the RcvbufErrors delta over all iterations.
 *
 * Run: deno bench -A bench/session_bench.ts
 */

import { dial, listen } from "../runtime/api.ts";
import { diffKernelUdpCounters, readKernelUdpCounters } from "../transports/kernel_counters.ts";

const MIB = 1 << 20;
const PER_ITERATION = 8 * MIB;
/** Written bytes the writer lets wait in smux before it waits for them to leave. */
const QUEUE_LIMIT = 1 * MIB;
const SOCKBUF = 4 << 20;

const spec = {
  stages: ["tcp", "smux", "kcp", "udp"],
  options: { kcp: { mode: "fast3", sndwnd: 1024, rcvwnd: 1024 } },
};
const server = await listen(spec, "127.0.0.1:0", { sockbuf: SOCKBUF });
const client = await dial(spec, `127.0.0.1:${server.sockets[0].localAddr.port}`, {
  sockbuf: SOCKBUF,
});
const out = client.openStream();
out.write(new Uint8Array(1));
const session = (await server.accept())!;
const inbound = await session.acceptStream();
await inbound.waitReadable();
inbound.read();

// Never modified, so the same bytes may sit in smux's queue several times over.
const chunk = crypto.getRandomValues(new Uint8Array(32768));
const sink = new Uint8Array(65536);
const before = readKernelUdpCounters();
let moved = 0;
let elapsed = 0;

Deno.bench({
  name: `tunnel session over loopback UDP, ${
    PER_ITERATION / MIB
  } MiB one way (tcp > smux > kcp > udp)`,
  async fn() {
    const t0 = performance.now();
    const sending = (async () => {
      for (let sent = 0; sent < PER_ITERATION; sent += chunk.length) {
        out.write(chunk);
        if (out.queued > QUEUE_LIMIT) await out.waitDrained(QUEUE_LIMIT);
      }
    })();
    let got = 0;
    while (got < PER_ITERATION) {
      const n = inbound.readInto(sink);
      if (n === 0) await inbound.waitReadable();
      got += n;
    }
    await sending;
    moved += got;
    elapsed += performance.now() - t0;
  },
});

globalThis.addEventListener("unload", () => {
  const after = readKernelUdpCounters();
  const d = before && after ? diffKernelUdpCounters(before, after) : null;
  console.log(
    `session bench: ${(moved / MIB / (elapsed / 1000)).toFixed(1)} MiB/s over ${
      (moved / MIB).toFixed(0)
    } MiB; kernel UDP RcvbufErrors +${d?.RcvbufErrors ?? "?"}`,
  );
  client.close();
  server.close();
});
