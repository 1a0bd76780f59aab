import { PacketPool } from "../../pipeline/packet.ts";
import { C, loadLibc } from "../../transports/libc.ts";
import { Poller, sharedPoller } from "../../transports/poller.ts";
import { type UdpSocket, UdpTransport } from "../../transports/udp.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { batchOf, Collector, turns } from "./helpers.ts";

/** Rejects instead of hanging forever (a hang is the failure being tested, not slowness). */
function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} hung`)), ms);
    }),
  ]);
}

Deno.test("poller: readiness callbacks per descriptor; idle after the last removal", async () => {
  const libc = loadLibc();
  const poller = new Poller(libc);
  const sym = libc.symbols;
  // Two eventfds stand in for sockets: readable once written, until read.
  const a = sym.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
  const b = sym.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
  const calls: string[] = [];
  const buf = new Uint8Array(8);
  const drain = (fd: number, name: string) => () => {
    sym.read(fd, buf, 8n);
    calls.push(name);
  };
  const ta = poller.add(a, drain(a, "a"));
  const tb = poller.add(b, drain(b, "b"));
  assert(poller.running);
  assertEquals(poller.size, 2);
  const one = new Uint8Array(8);
  one[0] = 1;
  sym.write(b, one, 8n);
  while (calls.length < 1) await turns(1);
  sym.write(a, one, 8n);
  while (calls.length < 2) await turns(1);
  assertEquals(calls, ["b", "a"]);
  await poller.remove(a, ta);
  sym.write(a, one, 8n); // no longer watched
  sym.write(b, one, 8n);
  while (calls.length < 3) await turns(1);
  await turns(3);
  assertEquals(calls, ["b", "a", "b"]);
  await poller.remove(b, tb);
  assert(!poller.running, "no epoll_wait pending once nothing is watched");
  assertEquals(poller.error, null);
  await poller.remove(b, tb); // twice is harmless
  sym.close(a);
  sym.close(b);
});

Deno.test("poller: 64 sockets hold one pool thread; file ops and the last socket still work", async () => {
  const pool = new PacketPool();
  const t = new UdpTransport({ poller: "epoll", pool, batchSize: 8 });
  const socks: UdpSocket[] = [];
  const collectors: Collector[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const s = await t.listen("127.0.0.1", 0);
      socks.push(s);
      collectors.push(new Collector(s));
    }
    await turns(3);
    // With one blocking receive per socket on Deno's blocking pool (32 threads here), this
    // read never completed and sockets past the 32nd never received.
    const text = await within(Deno.readTextFile("/proc/self/stat"), "Deno.readTextFile");
    assert(text.length > 0);
    const last = socks[63];
    socks[0].send(batchOf(pool, [new Uint8Array([7])], last.localAddr));
    const got = await collectors[63].waitFor(1);
    assertEquals(got[0].data, new Uint8Array([7]));
    assertEquals(sharedPoller().size, 64);
  } finally {
    for (const s of socks) await s.close();
  }
  assert(!sharedPoller().running, "closing the last socket leaves nothing pending");
});
