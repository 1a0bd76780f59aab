/**
 * Two KCP session actors talking over real UDP sockets on loopback (the libc transport), no FEC,
 * no crypt: bytes per second of a one-way transfer, and the kernel's UDP RcvbufErrors during it.
 * One iteration moves 8 MiB from a client session to a server session. Windows are 1024/1024 and
 * the mode fast3, so that the actors, not kcptun's default 128-segment client window (which caps
 * an upload at 128 segments per 30 ms flush interval, in Go too), set the pace. The summary line
 * printed at the end gives MiB/s and the RcvbufErrors delta over all iterations.
 *
 * Run: deno bench -A bench/session_bench.ts
 */

import { PacketChain } from "../pipeline/chain.ts";
import { defaultPool } from "../pipeline/packet.ts";
import { Snmp } from "../pipeline/snmp.ts";
import { clientSession } from "../transforms/kcp/dial.ts";
import { KcpListener } from "../transforms/kcp/listener.ts";
import { KcpSession } from "../transforms/kcp/session.ts";
import { KCP_MODES } from "../transforms/kcp/modes.ts";
import { diffKernelUdpCounters, readKernelUdpCounters } from "../transports/kernel_counters.ts";
import { udpTransport } from "../transports/udp_stage.ts";

const MIB = 1 << 20;
const PER_ITERATION = 8 * MIB;
const snmp = new Snmp();
const transport = udpTransport({ pool: defaultPool });
const serverSocket = await transport.listen("127.0.0.1", 0, { sockbuf: 4 << 20 });
const none = new PacketChain([]);
const listener = new KcpListener(serverSocket, {
  shared: none,
  locator: "kcp",
  snmp,
  createSession: (sock, peer, conv) =>
    new KcpSession(sock, peer, none, {
      conv,
      mtu: 1350,
      kcp: { ...KCP_MODES.fast3, sndWnd: 1024, rcvWnd: 1024 },
      pool: defaultPool,
      snmp,
    }),
});
const client = clientSession(
  await transport.dial("127.0.0.1", serverSocket.localAddr.port, { sockbuf: 4 << 20 }),
  none,
  { mtu: 1350, kcp: { ...KCP_MODES.fast3, sndWnd: 1024, rcvWnd: 1024 }, pool: defaultPool, snmp },
);
const writer = client.writable.getWriter();
await writer.write(new Uint8Array(1));
const server = (await listener.accept())!;
const reader = server.readable.getReader();
await reader.read();

const chunk = crypto.getRandomValues(new Uint8Array(32768));
const before = readKernelUdpCounters();
let moved = 0;
let elapsed = 0;

Deno.bench({
  name: `session actors over loopback UDP, ${PER_ITERATION / MIB} MiB one way (no FEC, no crypt)`,
  async fn() {
    const t0 = performance.now();
    const sending = (async () => {
      for (let sent = 0; sent < PER_ITERATION; sent += chunk.length) {
        await writer.write(chunk.slice());
      }
    })();
    let got = 0;
    while (got < PER_ITERATION) {
      const { value } = await reader.read();
      got += value!.length;
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
  listener.close();
});
