/**
 * {@link TunnelStream}'s fast interface (what the relay uses): `read`, `readInto`,
 * `waitReadable`, `write`, `queued`, `waitDrained`, `closeWrite`, `waitFinSent`, `close`,
 * `discardReads`, and how failures show (`readFailure`, `writeFailure`).
 */

import { PacketPool } from "../../pipeline/packet.ts";
import { StageError } from "../../pipeline/stage.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import {
  concat,
  drain,
  driverPair,
  eventually,
  pattern,
  sameBytes,
  sleep,
  tracked,
} from "./support.ts";

const pool = new PacketPool();

Deno.test("stream: write, queued and waitDrained; read, readInto and waitReadable", async () => {
  const window = 262144;
  const pair = driverPair({ smux: { version: 2, maxStreamBuffer: window } }, pool);
  const { client, server } = pair;
  const c = client.openStream();
  const data = pattern(1, 0, 1_000_000);
  c.write(data);
  assert(c.queued > 0, "a megabyte went into KCP at once");
  const drained = tracked(c.waitDrained(200_000));
  const s = await server.acceptStream();
  await s.waitReadable();
  const first = s.read(1000)!;
  assert(first.length > 0 && first.length <= 1000, `read ${first.length}`);
  const got = [first];
  let at = first.length;
  const buf = new Uint8Array(70_000);
  let paused = false;
  while (at < data.length) {
    if (!paused && at >= 600_000) {
      // The reader pauses: the writer's queue settles at what the stream window leaves,
      // about 1 MB - 600 kB - 256 KiB, under the limit: waitDrained(limit) resolves now.
      paused = true;
      const timeout = sleep(10_000).then(() => "timeout");
      assertEquals(await Promise.race([drained.promise.then(() => "drained"), timeout]), "drained");
      assert(c.queued > 0 && c.queued <= 200_000, `${c.queued} queued`);
    }
    const n = s.readInto(buf, 7);
    if (n === 0) {
      await s.waitReadable();
      continue;
    }
    got.push(buf.slice(7, 7 + n));
    at += n;
  }
  assertEquals(at, data.length);
  assert(sameBytes(concat(got), data), "bytes differ");
  assertEquals(s.read(), null, "nothing more buffered");
  assertEquals(s.readInto(buf), 0);
  assert(!s.readEnded, "reads ended without a FIN");
  await c.waitDrained();
  assertEquals(c.queued, 0);
  await pair.close();
});

Deno.test("stream: closeWrite sends queued bytes then FIN; the peer's reads end cleanly", async () => {
  const pair = driverPair({}, pool);
  const { client, server } = pair;
  const c = client.openStream();
  const data = pattern(2, 0, 300_000);
  c.write(data);
  c.closeWrite();
  assertThrows(() => c.write(Uint8Array.of(1)), StageError, "stream closed");
  await c.waitFinSent();
  assertEquals(c.queued, 0, "FIN went before the data");
  const s = await server.acceptStream();
  assert(sameBytes(await drain(s), data), "bytes differ");
  assert(s.readEnded);
  assertEquals(s.readFailure, null);
  assertEquals(s.writeFailure, null, "the peer's FIN is not a write failure");
  assertThrows(() => s.write(Uint8Array.of(1)), StageError, "closed by peer");
  s.close();
  await s.closed;
  await c.closed;
  assertEquals([client.streamCount, server.streamCount], [0, 0]);
  await pair.close();
});

Deno.test("stream: discardReads drops what arrives without holding the v2 sender", async () => {
  const pair = driverPair({ smux: { version: 2, maxStreamBuffer: 65536 } }, pool);
  const { client, server } = pair;
  const c = client.openStream();
  c.write(Uint8Array.of(0));
  const s = await server.acceptStream();
  s.discardReads();
  assert(s.readEnded, "reads go on after discardReads");
  c.write(pattern(3, 0, 1_000_000));
  await c.waitDrained();
  await sleep(50);
  assertEquals(server.connection.readableBytes(s.id), 0);
  assertEquals(s.read(), null);
  await pair.close();
});

Deno.test("stream: a session closing under a writer fails waitDrained, waitFinSent and writes", async () => {
  const smux = { version: 1 as const, maxReceiveBuffer: 65536, maxStreamBuffer: 65536 };
  const pair = driverPair({ smux }, pool);
  const { client, server } = pair;
  const c = client.openStream();
  const d = client.openStream();
  c.write(pattern(4, 0, 2_000_000)); // nobody reads: most of it stays queued
  await server.acceptStream();
  await sleep(100);
  assert(c.queued > 0);
  const drained = c.waitDrained();
  c.closeWrite(); // FIN waits behind the queued bytes
  const fin = c.waitFinSent();
  await client.close("stopping", true);
  await assertRejects(() => drained, StageError, "session closed (stopping)");
  await assertRejects(() => fin, StageError, "stopping");
  assertEquals(c.writeFailure, "session closed (stopping)");
  assertThrows(() => c.write(Uint8Array.of(1)), StageError, "session closed");
  // c's reads ended by its own closeWrite; an untouched stream's reads fail with the reason.
  assert(c.readEnded && d.readEnded);
  assertEquals(c.readFailure, null);
  assertEquals(d.readFailure, "smux: stopping");
  await c.closed;
  await d.closed;
  await pair.close();
});

Deno.test("stream: close() drops unread bytes, still sends queued ones, and the stream leaves", async () => {
  const pair = driverPair({}, pool);
  const { client, server } = pair;
  const c = client.openStream();
  c.write(new TextEncoder().encode("ping"));
  const s = await server.acceptStream();
  await s.waitReadable();
  s.write(new TextEncoder().encode("pong"));
  await eventually(() => client.connection.readableBytes(c.id) === 4);
  c.close(); // "pong" is dropped unread; FIN goes out
  assertEquals(c.read(), null);
  assert(c.readEnded);
  assertEquals(new TextDecoder().decode(await drain(s)), "ping");
  s.close();
  await c.closed;
  await s.closed;
  await pair.close();
});
