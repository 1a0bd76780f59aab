/**
 * A UDP peer for the UDP forwarding tests, run as its own process so that a flood does not share
 * the test's event loop:
 *
 * - `echo`: echoes every datagram on 127.0.0.1:0; prints `port N` first, counts on SIGTERM.
 * - `flood PORT SIZE SECONDS`: sends SIZE-byte datagrams (a counter in the first 4 bytes) to
 *   127.0.0.1:PORT from one socket as fast as it can for SECONDS (64 per `sendmmsg`, then a turn
 *   of the event loop), reads what comes back for one more second, and prints one JSON line:
 *   `{"port":P,"sent":N,"received":M,"intact":true}` (`sent`: handed to the kernel; `intact`:
 *   every datagram that came back is one that was sent, byte for byte).
 */

import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { udpTransport } from "../../transports/udp_stage.ts";

const [mode, ...args] = Deno.args;
const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
const localPort = (conn.addr as Deno.NetAddr).port;

function fill(d: Uint8Array, n: number): void {
  new DataView(d.buffer, d.byteOffset).setUint32(0, n);
  for (let i = 4; i < d.length; i++) d[i] = (n + i) & 0xff;
}

if (mode === "echo") {
  console.log(`port ${localPort}`);
  for (;;) {
    const [d, from] = await conn.receive();
    await conn.send(d, from);
  }
} else if (mode === "flood") {
  // Our libc transport (sendmmsg, 64 datagrams a call): a flood Deno's own sockets cannot make.
  conn.close();
  const [port, size, seconds] = args.map(Number);
  const pool = new PacketPool(size + 64, 0);
  const socket = await udpTransport({ pool, maxDatagram: size + 1 }).dial("127.0.0.1", port);
  let sent = 0, received = 0, intact = true;
  const check = new Uint8Array(size);
  socket.receive((batch) => {
    for (let i = 0; i < batch.length; i++) {
      const d = batch.packets[i].bytes();
      received++;
      if (d.length !== size) intact = false;
      else {
        fill(check, new DataView(d.buffer, d.byteOffset).getUint32(0));
        for (let j = 0; j < size && intact; j++) if (d[j] !== check[j]) intact = false;
      }
    }
    batch.releaseAll();
  });
  const end = performance.now() + seconds * 1000;
  const batch = new PacketBatch();
  while (performance.now() < end) {
    for (let i = 0; i < 64; i++) {
      const p = pool.acquire();
      p.end = size;
      fill(p.buffer.subarray(0, size), sent++);
      batch.push(p);
    }
    socket.send(batch);
    // A turn of the event loop, so that replies are read meanwhile.
    await new Promise((r) => setTimeout(r, 0));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const port0 = socket.localAddr.port;
  const { txErrors } = (socket as unknown as { stats: { txErrors: number } }).stats;
  await socket.close();
  console.log(JSON.stringify({ port: port0, sent: sent - txErrors, received, intact }));
} else {
  console.error("usage: udp_peer.ts echo | flood PORT SIZE SECONDS");
  Deno.exit(2);
}
