import { StageError } from "../../pipeline/stage.ts";
import {
  CMD_FIN,
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  encodeFrame,
  encodeUpd,
  INITIAL_PEER_WINDOW,
  parseFrames,
  type SmuxFrame,
} from "../../transforms/smux/frame.ts";
import { SmuxSession } from "../../transforms/smux/session.ts";
import { smuxConfig } from "../../transforms/smux/config.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "./capture_streams.ts";
import { pattern, prng, Wire } from "./harness.ts";

function drainFrames(s: SmuxSession): SmuxFrame[] {
  const out: Uint8Array[] = [];
  for (let f; (f = s.pollTransmit()) !== null;) out.push(f);
  return parseFrames(concat(out));
}

function brief(frames: SmuxFrame[]): string[] {
  return frames.map((f) =>
    `${["SYN", "FIN", "PSH", "NOP", "UPD"][f.cmd] ?? f.cmd}:${f.sid}:${
      f.cmd === CMD_UPD ? toHex(f.data) : f.data.length
    }`
  );
}

function pair(version: 1 | 2, config: Record<string, number> = {}, seed = 1) {
  const client = new SmuxSession("client", { version, ...config });
  const server = new SmuxSession("server", { version, ...config });
  const rand = prng(seed);
  const ab = new Wire(client, server, rand);
  const ba = new Wire(server, client, rand);
  const run = () => {
    for (let i = 0; i < 100000 && (ab.step() || ba.step()); i++) { /* until quiet */ }
  };
  return { client, server, run };
}

Deno.test("session: config defaults are kcptun 2021's and bad settings are refused", () => {
  const c = smuxConfig();
  assertEquals(
    [c.version, c.maxFrameSize, c.maxReceiveBuffer, c.maxStreamBuffer, c.keepAliveInterval],
    [1, 32768, 4194304, 2097152, 10000],
  );
  assertThrows(() => smuxConfig({ version: 3 as 1 }), StageError, "version");
  assertThrows(() => smuxConfig({ maxFrameSize: 65536 }), StageError, "65535");
  assertThrows(() => smuxConfig({ keepAliveInterval: 40000 }), StageError, "keep-alive");
  assertThrows(
    () => smuxConfig({ maxStreamBuffer: 8, maxReceiveBuffer: 4 }),
    StageError,
    "stream buffer",
  );
  assertThrows(() => new SmuxSession("client", { maxReceiveBuffer: 0 }), StageError);
});

Deno.test("session: stream ids: client odd from 3, server even from 2", () => {
  const c = new SmuxSession("client");
  const s = new SmuxSession("server");
  assertEquals([c.openStream(), c.openStream(), c.openStream()], [3, 5, 7]);
  assertEquals([s.openStream(), s.openStream()], [2, 4]);
  assertEquals(brief(drainFrames(c)), ["SYN:3:0", "SYN:5:0", "SYN:7:0"]);
});

Deno.test("session: writes are split at maxFrameSize, streams take turns, control first", () => {
  const c = new SmuxSession("client", { version: 2, maxFrameSize: 1000 });
  const a = c.openStream();
  const b = c.openStream();
  c.write(a, new Uint8Array(2500));
  c.write(b, new Uint8Array(1200));
  // A peer frame arriving for stream a, read: its UPD jumps ahead of the queued data.
  c.receive(encodeFrame(2, CMD_PSH, a, new Uint8Array(10)));
  assertEquals(c.read(a)!.length, 10);
  assertEquals(brief(drainFrames(c)), [
    "SYN:3:0",
    "SYN:5:0",
    "UPD:3:0a00000000002000",
    "PSH:3:1000",
    "PSH:5:1000",
    "PSH:3:1000",
    "PSH:5:200",
    "PSH:3:500",
  ]);
});

Deno.test("session: v1 frames never span two writes; v1 ignores UPD", () => {
  const c = new SmuxSession("client", { version: 1 });
  const a = c.openStream();
  c.write(a, new Uint8Array(10));
  c.write(a, new Uint8Array(20));
  c.receive(encodeUpd(1, a, 0, 0)); // a 2021 peer would accept it too: ignored
  assert(!c.closed);
  assertEquals(brief(drainFrames(c)), ["SYN:3:0", "PSH:3:10", "PSH:3:20"]);
});

Deno.test("session: v2 sender stops at the peer window and resumes on UPD", () => {
  const c = new SmuxSession("client", { version: 2 });
  const a = c.openStream();
  c.write(a, new Uint8Array(INITIAL_PEER_WINDOW + 5000));
  const sent = drainFrames(c).filter((f) => f.cmd === CMD_PSH);
  assertEquals(sent.reduce((n, f) => n + f.data.length, 0), INITIAL_PEER_WINDOW);
  assertEquals(c.queuedBytes(a), 5000);
  assert(!c.hasTransmit(), "blocked");
  c.receive(encodeUpd(2, a, 4000, INITIAL_PEER_WINDOW));
  assertEquals(brief(drainFrames(c)), ["PSH:3:4000"]);
  c.receive(encodeUpd(2, a, INITIAL_PEER_WINDOW + 4000, 100));
  assertEquals(brief(drainFrames(c)), ["PSH:3:100"]);
  // The peer claims more consumed than was ever sent: writing fails, nothing more is sent.
  c.receive(encodeUpd(2, a, INITIAL_PEER_WINDOW + 4101, 1 << 20));
  assertEquals(c.writeError(a), "peer consumed more than sent");
  assertThrows(() => c.write(a, new Uint8Array(1)), StageError, "consumed more");
  assertEquals(drainFrames(c).length, 0);
  assert(!c.closed, "a stream error does not close the session");
});

Deno.test("session: v2 reader sends UPD on its first read and every streambuf/2 bytes", () => {
  const s = new SmuxSession("server", { version: 2, maxStreamBuffer: 1000 });
  s.receive(encodeFrame(2, CMD_SYN, 3));
  assertEquals(s.accept(), 3);
  for (let i = 0; i < 12; i++) s.receive(encodeFrame(2, CMD_PSH, 3, new Uint8Array(100)));
  const upds: string[] = [];
  for (let i = 0; i < 12; i++) {
    s.read(3);
    upds.push(...brief(drainFrames(s)));
  }
  // consumed 100 (first read), then 600 and 1100 (every 500 more); window 1000 each time.
  assertEquals(upds, [
    "UPD:3:64000000e8030000",
    "UPD:3:58020000e8030000",
    "UPD:3:4c040000e8030000",
  ]);
});

Deno.test("session: FIN: buffered bytes are read before EOF; writes then fail", () => {
  const s = new SmuxSession("server", { version: 1 });
  s.receive(
    concat([
      encodeFrame(1, CMD_SYN, 3),
      encodeFrame(1, CMD_PSH, 3, Uint8Array.of(1, 2, 3)),
      encodeFrame(1, CMD_FIN, 3),
    ]),
  );
  assertEquals(s.accept(), 3);
  assert(!s.readEnded(3), "data first");
  assertEquals(Array.from(s.read(3)!), [1, 2, 3]);
  assert(s.readEnded(3), "then EOF");
  assertThrows(() => s.write(3, new Uint8Array(1)), StageError, "closed by peer");
  // Our own close still sends FIN, and the stream then leaves the session.
  s.closeStream(3);
  assertEquals(brief(drainFrames(s)), ["FIN:3:0"]);
  assert(!s.hasStream(3));
  assertEquals(s.stats.streamsClosed, 1);
});

Deno.test("session: close sends queued data then FIN; nothing written is dropped", () => {
  const c = new SmuxSession("client", { version: 2, maxFrameSize: 100 });
  const a = c.openStream();
  c.write(a, new Uint8Array(250));
  c.closeStream(a);
  assertThrows(() => c.write(a, new Uint8Array(1)), StageError, "stream closed");
  assertEquals(brief(drainFrames(c)), ["SYN:3:0", "PSH:3:100", "PSH:3:100", "PSH:3:50", "FIN:3:0"]);
  // abortStream drops unsent data instead.
  const b = c.openStream();
  c.write(b, new Uint8Array(250));
  c.abortStream(b);
  assertEquals(brief(drainFrames(c)), ["SYN:5:0", "FIN:5:0"]);
});

Deno.test("session: data arriving after a local close is dropped, earlier data can be read", () => {
  const s = new SmuxSession("server", { version: 1, maxReceiveBuffer: 1000, maxStreamBuffer: 10 });
  s.receive(concat([encodeFrame(1, CMD_SYN, 3), encodeFrame(1, CMD_PSH, 3, new Uint8Array(7))]));
  s.accept();
  s.closeStream(3);
  s.receive(encodeFrame(1, CMD_PSH, 3, new Uint8Array(50)));
  assertEquals(s.bucket, 1000 - 7);
  assertEquals(s.read(3)!.length, 7);
  assert(s.readEnded(3));
  assertEquals(s.bucket, 1000);
});

Deno.test("session: frames for unknown streams are consumed and ignored", () => {
  const s = new SmuxSession("server", { version: 2, maxReceiveBuffer: 100, maxStreamBuffer: 10 });
  s.receive(
    concat([
      encodeFrame(2, CMD_PSH, 99, new Uint8Array(500)),
      encodeFrame(2, CMD_FIN, 77),
      encodeUpd(2, 55, 1, 2),
      encodeFrame(2, CMD_PSH, 3, new Uint8Array(0)),
      encodeFrame(2, CMD_SYN, 3),
      encodeFrame(2, CMD_PSH, 3, Uint8Array.of(9)),
    ]),
  );
  assert(!s.closed);
  assertEquals(s.bucket, 99, "only the live stream's byte took a token");
  assertEquals(s.accept(), 3);
  assertEquals(Array.from(s.read(3)!), [9]);
  assertEquals(s.stats.framesIn, 6);
});

Deno.test("session: protocol errors close the session without throwing", () => {
  const cases: [string, Uint8Array][] = [
    ["version 1 frame on a version 2 session", encodeFrame(1, CMD_NOP, 0)],
    ["unknown command 5", encodeFrame(2, 5, 3)],
    ["unknown command 255", encodeFrame(2, 255, 0)],
    ["SYN with length 2", encodeFrame(2, CMD_SYN, 3, new Uint8Array(2))],
    ["FIN with length 1", encodeFrame(2, CMD_FIN, 3, new Uint8Array(1))],
    ["NOP with length 1", encodeFrame(2, CMD_NOP, 0, new Uint8Array(1))],
    ["UPD with length 4", encodeFrame(2, CMD_UPD, 3, new Uint8Array(4))],
  ];
  for (const [msg, bad] of cases) {
    const s = new SmuxSession("server", { version: 2 });
    s.receive(concat([encodeFrame(2, CMD_SYN, 3), encodeFrame(2, CMD_PSH, 3, Uint8Array.of(1))]));
    s.receive(concat([bad, encodeFrame(2, CMD_SYN, 5)]));
    assert(s.closed, msg);
    assertEquals(s.closeReason, `invalid protocol: ${msg}`);
    assert(s.closeIsError);
    assertEquals(s.accept(), -1, "nothing after the error is accepted");
    assert(!s.wantsInput());
    assertEquals(s.pollTransmit(), null);
    s.receive(encodeFrame(2, CMD_SYN, 7)); // ignored, no throw
    assertThrows(() => s.openStream(), StageError, "session closed");
  }
  // A v2 frame on a v1 session (kcptun -smuxver mismatch).
  const v1 = new SmuxSession("server", { version: 1 });
  v1.receive(encodeFrame(2, CMD_SYN, 3));
  assertEquals(v1.closeReason, "invalid protocol: version 2 frame on a version 1 session");
});

Deno.test("session: the receive bucket stops input while exhausted and reopens on read", () => {
  const s = new SmuxSession("server", { version: 1, maxReceiveBuffer: 1000, maxStreamBuffer: 10 });
  const frames = [encodeFrame(1, CMD_SYN, 3)];
  for (let i = 0; i < 5; i++) frames.push(encodeFrame(1, CMD_PSH, 3, new Uint8Array(400)));
  s.receive(concat(frames));
  s.accept();
  assertEquals(s.bufferedBytes, 1200, "stops after the frame that emptied the bucket");
  assert(!s.wantsInput());
  assertEquals(s.pendingInputBytes, 2 * 408);
  s.read(3);
  assertEquals(s.bufferedBytes, 1200, "one read unblocks one more frame");
  s.read(3);
  s.read(3);
  assertEquals(s.bufferedBytes, 800);
  assert(s.wantsInput());
  assertEquals(s.pendingInputBytes, 0);
});

Deno.test("session: a full accept backlog stops input until the application accepts", () => {
  const s = new SmuxSession("server", { acceptBacklog: 2 });
  s.receive(
    concat([3, 5, 7, 9].map((id) => encodeFrame(1, CMD_SYN, id))),
  );
  assertEquals(s.pendingAccepts, 2);
  assert(!s.wantsInput());
  assertEquals(s.accept(), 3);
  assertEquals(s.pendingAccepts, 2);
  assertEquals([s.accept(), s.accept(), s.accept(), s.accept()], [5, 7, 9, -1]);
});

Deno.test("session: keepalive sends NOP every interval and closes a silent session", () => {
  const s = new SmuxSession("client", { keepAliveInterval: 10000, keepAliveTimeout: 30000 }, 0);
  assertEquals(s.nextDeadline(), 10000);
  s.handleTimeout(9999);
  assertEquals(drainFrames(s).length, 0);
  s.handleTimeout(10000);
  s.handleTimeout(10001); // no second NOP while one waits... (it was not taken yet)
  assertEquals(brief(drainFrames(s)), ["NOP:0:0"]);
  assertEquals(s.nextDeadline(), 20000);
  s.handleTimeout(20000);
  assertEquals(brief(drainFrames(s)), ["NOP:0:0"]);
  s.handleTimeout(30000);
  assert(s.closed);
  assertEquals(s.closeReason, "keepalive timeout");
  assertEquals(s.nextDeadline(), Infinity);
});

Deno.test("session: frames arriving keep the session alive; a blocked session never times out", () => {
  const s = new SmuxSession("server", { version: 1 }, 0);
  for (let t = 5000; t <= 300000; t += 5000) {
    if (t % 20000 === 0) s.receive(encodeFrame(1, CMD_NOP, 0));
    s.handleTimeout(t);
    assert(!s.closed, `open at ${t}`);
  }
  // Blocked by a full bucket: silence is ours, not the peer's.
  const b = new SmuxSession("server", { version: 1, maxReceiveBuffer: 100, maxStreamBuffer: 100 });
  b.receive(concat([encodeFrame(1, CMD_SYN, 3), encodeFrame(1, CMD_PSH, 3, new Uint8Array(200))]));
  for (let t = 10000; t <= 600000; t += 10000) b.handleTimeout(t);
  assert(!b.closed);
  // Once unblocked, silence counts again.
  b.accept();
  b.read(3);
  b.handleTimeout(630000);
  b.handleTimeout(660000);
  assert(b.closed);
});

Deno.test("session: closing the session keeps buffered bytes readable, fails writes", () => {
  const { client, server, run } = pair(2);
  const a = client.openStream();
  client.write(a, pattern(1, 0, 3000));
  run();
  assertEquals(server.accept(), a);
  server.close("bye", false);
  assert(server.readEnded(a) === false);
  assertEquals(server.read(a)!.length, 3000);
  assert(server.readEnded(a));
  assert(server.readEndedCleanly(a));
  assertThrows(() => server.write(a, new Uint8Array(1)), StageError, "session closed (bye)");
  assertEquals(server.stats.activeStreams, 0);
  assertEquals(server.stats.streamsClosed, 1);
});

Deno.test("session: two sessions back to back echo data both ways, v1 and v2", () => {
  for (const version of [1, 2] as const) {
    const { client, server, run } = pair(version, { maxFrameSize: 777 });
    const ids = [client.openStream(), client.openStream()];
    ids.forEach((id, k) => client.write(id, pattern(k, 0, 100000)));
    run();
    for (let id; (id = server.accept()) >= 0;) {
      const got: Uint8Array[] = [];
      // reads interleave with the link so the window keeps moving
      for (let i = 0; i < 10000 && got.reduce((n, b) => n + b.length, 0) < 100000; i++) {
        for (let b; (b = server.read(id)) !== null;) got.push(b);
        run();
      }
      assertEquals(toHex(concat(got)), toHex(pattern(ids.indexOf(id), 0, 100000)));
    }
    ids.forEach((id) => client.closeStream(id));
    run();
    for (const id of ids) {
      assert(server.readEnded(id));
      server.closeStream(id);
    }
    run();
    assertEquals([client.stats.activeStreams, server.stats.activeStreams], [0, 0]);
    assertEquals([client.stats.streamsClosed, server.stats.streamsClosed], [2, 2]);
  }
});

Deno.test("session: a stream closed while blocked by the v2 window leaves no phantom frame", () => {
  const a = new SmuxSession("client", { version: 2 });
  const b = new SmuxSession("server", { version: 2 });
  const id = a.openStream();
  b.receive(a.pollTransmit()!.slice());
  const sid = b.accept();
  // a fills b's whole initial window; b never reads, so no update will reopen it.
  a.write(id, new Uint8Array(INITIAL_PEER_WINDOW + 1000));
  for (let f; (f = a.pollTransmit()) !== null;) b.receive(f.slice());
  assert(a.queuedBytes(id) > 0, "data left waiting for the window");
  // b answers; a's first read queues a window update, then a closes the blocked stream.
  b.write(sid, new Uint8Array(100));
  for (let f; (f = b.pollTransmit()) !== null;) a.receive(f.slice());
  assertEquals(a.read(id)?.length, 100);
  a.closeStream(id);
  // The update is for a closing stream (dropped) and the FIN waits behind the blocked data.
  assertEquals(a.hasTransmit(), false);
  assertEquals(a.pollTransmit(), null);
});
