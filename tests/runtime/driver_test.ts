/**
 * {@link ConnectionDriver} and the Web Streams view of {@link TunnelStream}: two drivers joined
 * by in-memory sockets on the real event loop. What the deleted smux driver's tests asserted,
 * now over KCP: concurrent echoes in smux v1 and v2 with and without snappy, FIN and close
 * semantics, back-pressure through the writable, session close, keepalive, a stream piping
 * into itself, and asynchronous packet stages.
 */

import { PacketPool } from "../../pipeline/packet.ts";
import { StageError } from "../../pipeline/stage.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { asyncLike } from "../pipeline/fake_stages.ts";
import {
  ctxFor,
  driverPair,
  eventually,
  pattern,
  readAll,
  readExactly,
  sameBytes,
  settle,
  sleep,
  tracked,
} from "./support.ts";

const pool = new PacketPool();

for (const version of [1, 2] as const) {
  for (const snappy of [false, true]) {
    Deno.test(`driver: smux v${version}${snappy ? " + snappy" : ""}: concurrent streams echo`, async () => {
      const pair = driverPair({ smux: { version }, snappy }, pool);
      const { client, server } = pair;
      const echo = (async () => {
        for (let i = 0; i < 5; i++) {
          const s = await server.acceptStream();
          s.readable.pipeTo(s.writable).catch(() => {});
        }
      })();
      const results = await Promise.all([0, 1, 2, 3, 4].map(async (k) => {
        const s = client.openStream();
        const data = pattern(k, 0, 10_000 + k * 70_000);
        const w = s.writable.getWriter();
        const back = readExactly(s.readable, data.length);
        for (let at = 0; at < data.length; at += 20_000) {
          await w.write(data.slice(at, at + 20_000));
        }
        // smux has no half-close: read the whole echo, then close both ways.
        const got = await back;
        await w.close();
        await s.closed;
        return { id: s.id, ok: sameBytes(got, data) };
      }));
      await echo;
      assertEquals(results.map((r) => r.id), [3, 5, 7, 9, 11]);
      assert(results.every((r) => r.ok), "every echo is exact");
      assert(await eventually(() => server.streamCount === 0), "server streams left over");
      assertEquals(client.streamCount, 0);
      assertEquals(client.connection.smux.stats.streamsOpened, 5);
      assertEquals(server.connection.smux.stats.streamsClosed, 5);
      await client.close();
      assertEquals(await client.closed, { reason: "session closed", error: false });
      await pair.close();
    });
  }
}

Deno.test("driver: the peer's FIN ends the readable after buffered data; writes then fail", async () => {
  const pair = driverPair({ smux: { version: 2 } }, pool);
  const { client, server } = pair;
  const c = client.openStream();
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("last words"));
  await w.close(); // resolves once FIN went out
  const s = await server.acceptStream();
  assertEquals(new TextDecoder().decode(await readAll(s.readable)), "last words");
  const sw = s.writable.getWriter();
  await assertRejects(() => sw.write(Uint8Array.of(1)), StageError, "closed by peer");
  // Unlike the deleted smux driver, the Web Streams view does not close the stream by itself
  // once both directions are over: its owner closes it (as Go's smux and the relay do).
  assert(server.connection.hasStream(s.id), "the stream left without a close");
  s.close();
  await s.closed;
  await c.closed;
  assertEquals([client.streamCount, server.streamCount], [0, 0]);
  await pair.close();
});

Deno.test("driver: v2: a writer to a stream nobody reads waits; other streams keep flowing", async () => {
  const pair = driverPair({ smux: { version: 2, maxStreamBuffer: 65536 } }, pool);
  const { client, server } = pair;
  const stalled = client.openStream();
  const sw = stalled.writable.getWriter();
  const big = tracked(sw.write(pattern(1, 0, 2_000_000)));
  const ss = await server.acceptStream();
  await sleep(300);
  assert(!big.done, "the write resolved although nobody reads");
  const held = server.connection.readableBytes(ss.id);
  assert(held > 0 && held <= 262144, `server holds ${held}, at most the initial window`);
  const other = client.openStream();
  const ow = other.writable.getWriter();
  const sent = ow.write(pattern(2, 0, 300_000)).then(() => ow.close());
  const os = await server.acceptStream();
  assert(sameBytes(await readAll(os.readable), pattern(2, 0, 300_000)), "other stream differs");
  await sent;
  assert(!big.done, "the stalled write resolved without a reader");
  // Reading the stalled stream releases its writer.
  const got = await readExactly(ss.readable, 2_000_000);
  await big.promise;
  assert(sameBytes(got, pattern(1, 0, 2_000_000)));
  await pair.close();
});

Deno.test("driver: v1: unread data fills the session buffer, then nothing more crosses", async () => {
  const smuxbuf = 100_000;
  const pair = driverPair({
    smux: { version: 1, maxReceiveBuffer: smuxbuf, maxStreamBuffer: smuxbuf, maxFrameSize: 8192 },
  }, pool);
  const { client, server, serverSnmp } = pair;
  const c = client.openStream();
  const w = c.writable.getWriter();
  const write = tracked(w.write(pattern(3, 0, 1_000_000)));
  const s = await server.acceptStream();
  await sleep(300);
  assert(!write.done, "the writer is not held back");
  const smux = server.connection.smux;
  assert(smux.bufferedBytes >= smuxbuf, `buffered ${smux.bufferedBytes}`);
  assert(!smux.wantsInput(), "the session still reads");
  const taken = serverSnmp.BytesReceived;
  await sleep(300);
  assertEquals(serverSnmp.BytesReceived, taken, "smux took more from KCP");
  const got = readAll(s.readable);
  await write.promise;
  await w.close();
  assertEquals((await got).length, 1_000_000);
  await pair.close();
});

Deno.test("driver: stream close() and readable cancel()", async () => {
  const pair = driverPair({ smux: { version: 2 } }, pool);
  const { client, server } = pair;
  const a = client.openStream();
  const aw = a.writable.getWriter();
  await aw.write(new TextEncoder().encode("abc"));
  const as = await server.acceptStream();
  // close(): queued bytes and FIN still go out; the peer reads them, then EOF.
  a.close();
  assertEquals(new TextDecoder().decode(await readAll(as.readable)), "abc");
  // Closed, or already gone once both FINs crossed.
  const e = await assertRejects(() => aw.write(Uint8Array.of(1)), StageError);
  assert(/stream 3: (stream closed|no such stream)/.test(e.message), e.message);
  // cancel(): what arrives is dropped, yet the v2 sender is not blocked by it.
  const b = client.openStream();
  const bw = b.writable.getWriter();
  await bw.write(Uint8Array.of(0));
  const bs = await server.acceptStream();
  await bs.readable.cancel();
  await bw.write(pattern(4, 0, 1_500_000));
  assert(await eventually(() => b.queued === 0), "the write never drained");
  assertEquals(server.connection.smux.bufferedBytes, 0);
  await bw.close();
  await pair.close();
});

Deno.test("driver: closing the session fails writes and accepts; readers get what was buffered", async () => {
  const pair = driverPair({ smux: { version: 1 } }, pool);
  const { client, server } = pair;
  const c = client.openStream();
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("before close"));
  const s = await server.acceptStream();
  assert(await eventually(() => server.connection.readableBytes(s.id) === 12));
  const pendingAccept = server.acceptStream();
  const info = await server.close();
  assertEquals(info, { reason: "session closed", error: false });
  await assertRejects(() => pendingAccept, StageError, "session closed");
  await assertRejects(() => server.acceptStream(), StageError, "session closed");
  assertEquals(new TextDecoder().decode(await readAll(s.readable)), "before close");
  await assertRejects(() => s.writable.getWriter().write(Uint8Array.of(1)), StageError);
  assertThrows(() => server.openStream(), StageError, "session closed");
  await s.closed;
  assertEquals(server.streamCount, 0);
  // KCP has no close message: the client learns nothing until its keepalive check.
  assert(!client.connection.closed);
  await pair.close();
  await assertRejects(() => w.write(Uint8Array.of(1)), StageError, "session closed");
});

Deno.test("driver: keepalive NOPs keep an idle session up; a silent peer times out", async () => {
  const ka = { keepAliveInterval: 20, keepAliveTimeout: 200 };
  const pair = driverPair({ smux: { version: 2, ...ka } }, pool);
  const { client, server } = pair;
  await sleep(400);
  assert(!client.connection.closed && !server.connection.closed, "closed while idle");
  assert(server.connection.smux.stats.framesIn >= 2, "no NOPs arrived");
  // The server drops off the network: the client's next checks find no frame.
  const s = client.openStream();
  const reading = s.readable.getReader().read();
  pair.net.loss = 1;
  const info = await client.closed;
  assertEquals(info, { reason: "keepalive timeout", error: true });
  await assertRejects(() => reading, StageError, "keepalive timeout");
  await pair.close();
});

Deno.test("driver: a server stream echoing into itself with pipeTo, under loss (re-entrant update)", async () => {
  // Regression (86e61a8): the pipe's write ran inside the driver's update of that very stream.
  const pair = driverPair({ loss: 0.02, seed: 9, snappy: true }, pool);
  const { client, server } = pair;
  const serving = (async () => {
    for (let i = 0; i < 4; i++) {
      const st = await server.acceptStream();
      st.readable.pipeTo(st.writable).catch(() => {});
    }
  })();
  for (let i = 0; i < 4; i++) {
    const st: TunnelStream = client.openStream();
    const data = pattern(100 + i, 0, 200_000);
    const w = st.writable.getWriter();
    const back = readExactly(st.readable, data.length);
    for (let at = 0; at < data.length; at += 7000) await w.write(data.slice(at, at + 7000));
    assert(sameBytes(await back, data), `stream ${st.id} differs`);
    await w.close();
  }
  await serving;
  assert(pair.net.dropped > 0, "the link dropped nothing");
  await pair.close();
});

Deno.test("driver: asynchronous packet stages on both ends carry the streams", async () => {
  // Each end gets its own instance of a stage that answers every batch with a promise.
  const pair = driverPair(
    { packetsFor: (role) => [asyncLike.create({}, ctxFor(role, pool))] },
    pool,
  );
  const { client, server } = pair;
  const data = pattern(7, 0, 300_000);
  const s = client.openStream();
  const w = s.writable.getWriter();
  const sending = w.write(data.slice()).then(() => w.close());
  const r = await server.acceptStream();
  assert(sameBytes(await readAll(r.readable), data), "bytes differ");
  await sending;
  await settle();
  await pair.close();
});

Deno.test("driver: a defect that throws inside one session ends that session, not the process", async () => {
  let armed = false;
  const faulty = {
    overhead: 0,
    encode(_batch: unknown) {
      if (armed) throw new TypeError("a defect");
    },
    decode(_batch: unknown) {},
  };
  const pair = driverPair(
    { packetsFor: (role) => role === "client" ? [faulty as never] : [] },
    pool,
  );
  const { client, server } = pair;
  const s = client.openStream();
  const w = s.writable.getWriter();
  await w.write(new Uint8Array([1, 2, 3]));
  const r = await server.acceptStream();
  assertEquals((await readExactly(r.readable, 3)).length, 3);
  armed = true;
  w.write(new Uint8Array(10)).catch(() => {});
  const info = await client.closed;
  assert(info.error, "closed as an error");
  assert(info.reason.includes("internal error: a defect"), info.reason);
  armed = false;
  await pair.close();
});
