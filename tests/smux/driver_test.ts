import { StageError } from "../../pipeline/stage.ts";
import { withSnappy } from "../../transforms/snappy/streams.ts";
import {
  type ByteStreamPair,
  SmuxDriver,
  type SmuxDriverOptions,
} from "../../transforms/smux/driver.ts";
import { CMD_PSH, encodeFrame, MAX_PAYLOAD } from "../../transforms/smux/frame.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "./capture_streams.ts";
import { pattern } from "./harness.ts";

/** Two byte pipes back to back, counting what crosses each. */
function pipes(): { a: ByteStreamPair; b: ByteStreamPair; crossed: { ab: number; ba: number } } {
  const crossed = { ab: 0, ba: 0 };
  const ab = new TransformStream<Uint8Array, Uint8Array>({
    transform(c, ctl) {
      crossed.ab += c.length;
      ctl.enqueue(c);
    },
  });
  const ba = new TransformStream<Uint8Array, Uint8Array>({
    transform(c, ctl) {
      crossed.ba += c.length;
      ctl.enqueue(c);
    },
  });
  return {
    a: { readable: ba.readable, writable: ab.writable },
    b: { readable: ab.readable, writable: ba.writable },
    crossed,
  };
}

type Opts = Omit<SmuxDriverOptions, "role">;

function connect(opts: Opts & { snappy?: boolean } = {}) {
  const { snappy, ...rest } = opts;
  const p = pipes();
  const wrap = (c: ByteStreamPair) => snappy ? withSnappy(c) : c;
  const client = new SmuxDriver(wrap(p.a), { role: "client", ...rest });
  const server = new SmuxDriver(wrap(p.b), { role: "server", ...rest });
  return { client, server, crossed: p.crossed };
}

async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of r) parts.push(c);
  return concat(parts);
}

async function readExactly(r: ReadableStream<Uint8Array>, n: number): Promise<Uint8Array> {
  const reader = r.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
  }
  reader.releaseLock();
  return concat(parts);
}

/** Lets every queued task and microtask run (a few event-loop turns). */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
}

function tracked<T>(p: Promise<T>): { done: boolean; promise: Promise<T> } {
  const t = { done: false, promise: p };
  p.then(() => t.done = true, () => t.done = true);
  return t;
}

for (const version of [1, 2] as const) {
  for (const snappy of [false, true]) {
    Deno.test(`driver: v${version}${snappy ? " + snappy" : ""}: concurrent streams echo`, async () => {
      const lines: string[] = [];
      const { client, server } = connect({ version, snappy, log: (l) => lines.push(l) });
      const echo = (async () => {
        for (let i = 0; i < 5; i++) {
          const s = await server.acceptStream();
          s.readable.pipeTo(s.writable);
        }
      })();
      const results = await Promise.all([0, 1, 2, 3, 4].map(async (k) => {
        const s = client.openStream();
        const data = pattern(k, 0, 10000 + k * 70000);
        const w = s.writable.getWriter();
        const back = readExactly(s.readable, data.length);
        for (let at = 0; at < data.length; at += 20000) {
          await w.write(data.slice(at, at + 20000));
        }
        // smux has no half-close: read the whole echo, then close both ways.
        const got = await back;
        await w.close();
        await s.closed;
        return { id: s.id, ok: toHex(got) === toHex(data) };
      }));
      await echo;
      assertEquals(results.map((r) => r.id), [3, 5, 7, 9, 11]);
      assert(results.every((r) => r.ok), "every echo is exact");
      await settle();
      assertEquals(client.stats.streamsOpened, 5);
      assertEquals(server.stats.streamsAccepted, 5);
      assertEquals([client.numStreams, server.numStreams], [0, 0]);
      assert(lines.includes("smux: stream 3 opened") && lines.includes("smux: stream 3 closed"));
      await client.close();
      await server.close();
      assertEquals(await client.closed, { reason: "session closed", error: false });
    });
  }
}

Deno.test("driver: the peer's FIN ends the readable after buffered data; writes then fail", async () => {
  const { client, server } = connect({ version: 2 });
  const c = client.openStream();
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("last words"));
  await w.close();
  const s = await server.acceptStream();
  await settle();
  assertEquals(new TextDecoder().decode(await readAll(s.readable)), "last words");
  const sw = s.writable.getWriter();
  await assertRejects(() => sw.write(Uint8Array.of(1)), StageError, "closed by peer");
  await s.closed;
  await c.closed;
  assertEquals([client.numStreams, server.numStreams], [0, 0]);
  await client.close();
  await server.close();
});

Deno.test("driver: v2: a stream nobody reads stops its sender; others keep flowing", async () => {
  const { client, server } = connect({ version: 2, maxStreamBuffer: 65536 });
  const stalled = client.openStream();
  const sw = stalled.writable.getWriter();
  const big = tracked(sw.write(pattern(1, 0, 2_000_000)));
  const ss = await server.acceptStream();
  await settle();
  assert(!big.done, "the write waits for the window");
  const held = server.session.readableBytes(ss.id);
  assert(held > 0 && held <= 262144, `server holds ${held}, at most the initial window`);
  // Another stream is not blocked by it.
  const other = client.openStream();
  const ow = other.writable.getWriter();
  const sent = ow.write(pattern(2, 0, 300000)).then(() => ow.close());
  const os = await server.acceptStream();
  assertEquals(toHex(await readAll(os.readable)), toHex(pattern(2, 0, 300000)));
  await sent;
  // Reading the stalled stream releases its writer.
  const reader = ss.readable.getReader();
  let n = 0;
  while (n < 2_000_000) n += (await reader.read()).value!.length;
  await big.promise;
  assertEquals(n, 2_000_000);
  await client.close();
  await server.close();
});

Deno.test("driver: v1: unread data fills the session buffer, then the underlying stream stops", async () => {
  const smuxbuf = 100000;
  const { client, server, crossed } = connect({
    version: 1,
    maxReceiveBuffer: smuxbuf,
    maxStreamBuffer: smuxbuf,
    maxFrameSize: 8192,
  });
  const c = client.openStream();
  const w = c.writable.getWriter();
  const write = tracked(w.write(pattern(3, 0, 1_000_000)));
  const s = await server.acceptStream();
  await settle();
  assert(!write.done, "the writer is held back");
  const buffered = server.session.bufferedBytes;
  assert(buffered >= smuxbuf && buffered <= smuxbuf + MAX_PAYLOAD, `buffered ${buffered}`);
  assert(!server.session.wantsInput(), "the session stopped reading");
  const inFlight = crossed.ab;
  await settle();
  assertEquals(crossed.ab, inFlight, "nothing more crosses the pipe");
  assert(crossed.ab < smuxbuf + 4 * 8200, `pipe holds a few frames, not the write`);
  const got = readAll(s.readable);
  await write.promise;
  await w.close();
  assertEquals((await got).length, 1_000_000);
  await client.close();
  await server.close();
});

Deno.test("driver: stream close() and readable cancel()", async () => {
  const { client, server } = connect({ version: 2 });
  const a = client.openStream();
  const aw = a.writable.getWriter();
  await aw.write(new TextEncoder().encode("abc"));
  const as = await server.acceptStream();
  // close(): queued bytes and FIN still go out; the peer reads them then EOF.
  a.close();
  assertEquals(new TextDecoder().decode(await readAll(as.readable)), "abc");
  await assertRejects(() => aw.write(Uint8Array.of(1)), StageError, "stream closed");
  // cancel(): what arrives is dropped, yet the v2 sender is not blocked by it.
  const b = client.openStream();
  const bw = b.writable.getWriter();
  const bs = await server.acceptStream();
  await bs.readable.cancel();
  await bw.write(pattern(4, 0, 1_500_000));
  assertEquals(server.session.bufferedBytes, 0);
  await bw.close();
  await settle();
  await client.close();
  await server.close();
});

Deno.test("driver: closing the session fails writes and accepts; readers get what was buffered", async () => {
  const { client, server } = connect({ version: 1 });
  const c = client.openStream();
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("before close"));
  const s = await server.acceptStream();
  await settle();
  const pendingAccept = server.acceptStream();
  await server.close();
  await assertRejects(() => pendingAccept, StageError, "session closed");
  await assertRejects(() => server.acceptStream(), StageError, "session closed");
  assertEquals(new TextDecoder().decode(await readAll(s.readable)), "before close");
  await assertRejects(() => s.writable.getWriter().write(Uint8Array.of(1)), StageError);
  let threw = false;
  try {
    server.openStream();
  } catch (e) {
    threw = e instanceof StageError;
  }
  assert(threw, "openStream on a closed session throws");
  // The client sees its underlying stream end.
  const info = await client.closed;
  assertEquals(info, { reason: "underlying stream ended", error: false });
  await assertRejects(() => w.write(Uint8Array.of(1)), StageError);
});

Deno.test("driver: a protocol error closes the session (no throw); streams fail", async () => {
  const toServer = new TransformStream<Uint8Array, Uint8Array>();
  const fromServer = new TransformStream<Uint8Array, Uint8Array>();
  const server = new SmuxDriver(
    { readable: toServer.readable, writable: fromServer.writable },
    { role: "server", version: 2 },
  );
  fromServer.readable.pipeTo(new WritableStream()).catch(() => {});
  const w = toServer.writable.getWriter();
  await w.write(concat([encodeFrame(2, 0, 3), encodeFrame(2, CMD_PSH, 3, Uint8Array.of(1, 2))]));
  const s = await server.acceptStream();
  await w.write(encodeFrame(1, 0, 5)); // kcptun -smuxver mismatch
  const info = await server.closed;
  assertEquals(info, {
    reason: "invalid protocol: version 1 frame on a version 2 session",
    error: true,
  });
  const r = s.readable.getReader();
  assertEquals(Array.from((await r.read()).value!), [1, 2], "buffered bytes first");
  await assertRejects(() => r.read(), StageError, "invalid protocol");
  await w.close().catch(() => {});
});

Deno.test("driver: corrupt snappy input closes the session with the snappy error", async () => {
  const toServer = new TransformStream<Uint8Array, Uint8Array>();
  const fromServer = new TransformStream<Uint8Array, Uint8Array>();
  const server = new SmuxDriver(
    withSnappy({ readable: toServer.readable, writable: fromServer.writable }),
    { role: "server" },
  );
  fromServer.readable.pipeTo(new WritableStream()).catch(() => {});
  const w = toServer.writable.getWriter();
  w.write(new TextEncoder().encode("not snappy at all")).catch(() => {});
  const info = await server.closed;
  assert(info.error && info.reason.includes("snappy"), info.reason);
  await w.abort().catch(() => {});
});

Deno.test("driver: keepalive NOPs keep an idle session up; a silent peer times out", async () => {
  // Both ends alive: NOPs flow both ways and neither side times out.
  const ka = { keepAliveInterval: 20, keepAliveTimeout: 200 };
  const { client, server } = connect({ version: 2, ...ka });
  await new Promise((r) => setTimeout(r, 300));
  assert(!client.session.closed && !server.session.closed, "alive while idle");
  assert(server.stats.framesIn >= 2, `NOPs arrived (${server.stats.framesIn})`);
  await client.close();
  await server.close();
  // A peer that sends nothing: the session closes itself.
  const silent = new TransformStream<Uint8Array, Uint8Array>();
  const sink = new TransformStream<Uint8Array, Uint8Array>();
  sink.readable.pipeTo(new WritableStream()).catch(() => {});
  const lonely = new SmuxDriver(
    { readable: silent.readable, writable: sink.writable },
    { role: "client", ...ka },
  );
  assertEquals(await lonely.closed, { reason: "keepalive timeout", error: true });
  await silent.writable.close().catch(() => {});
});
