/**
 * A version-0 server session (kcptun-ts's `-smuxver 0`): it takes the version of the client's
 * first frame, sends nothing before it (no NOP with a guessed version byte), and then behaves as
 * a session of that version.
 */

import { StageError } from "../../pipeline/stage.ts";
import {
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  encodeFrame,
  parseFrames,
  type SmuxFrame,
} from "../../transforms/smux/frame.ts";
import { SmuxSession } from "../../transforms/smux/session.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import { concat } from "./capture_streams.ts";
import { pattern, prng, Wire } from "./harness.ts";

function drainFrames(s: SmuxSession): SmuxFrame[] {
  const out: Uint8Array[] = [];
  for (let f; (f = s.pollTransmit()) !== null;) out.push(f);
  return out.length === 0 ? [] : parseFrames(concat(out));
}

function readAll(s: SmuxSession, id: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let c; (c = s.read(id)) !== null;) parts.push(c);
  return concat(parts);
}

for (const version of [1, 2] as const) {
  Deno.test(`auto version: a version-0 server answers a v${version} client in v${version}`, () => {
    const client = new SmuxSession("client", { version });
    const server = new SmuxSession("server", { version: 0 });
    assertEquals(server.version, 0);
    const rand = prng(version);
    const up = new Wire(client, server, rand), down = new Wire(server, client, rand);
    const run = () => {
      for (let i = 0; i < 100000 && (up.step() || down.step()); i++) { /* until quiet */ }
    };
    // More than one v2 window each way, so that UPDs must flow in both directions.
    const n = 600_000;
    const id = client.openStream();
    client.write(id, pattern(1, 0, n));
    run();
    assertEquals(server.version, version);
    const sid = server.accept();
    assertEquals(sid, id);
    const got: Uint8Array[] = [];
    for (let total = 0; total < n;) {
      const c = server.read(sid);
      if (c === null) {
        run();
        continue;
      }
      got.push(c);
      total += c.length;
    }
    assertEquals(concat(got), pattern(1, 0, n));
    server.write(sid, pattern(2, 0, n));
    server.closeStream(sid);
    const back: Uint8Array[] = [];
    for (let total = 0; total < n;) {
      run();
      const c = readAll(client, id);
      back.push(c);
      total += c.length;
    }
    assertEquals(concat(back), pattern(2, 0, n));
    assert(client.peerClosed(id));
    assert(!client.closed && !server.closed, `${client.closeReason} ${server.closeReason}`);
    // Every byte the server sent carried the learnt version (the client would have closed).
    assertEquals(server.version, version);
    if (version === 2) assert(server.stats.framesOut > 3, "UPDs and data from the server");
  });
}

Deno.test("auto version: nothing is sent before the first frame, NOPs included", () => {
  const server = new SmuxSession("server", { version: 0 }, 0);
  // The keepalive falls due three times; a server-opened stream queues a SYN and data.
  for (const t of [10_000, 20_000, 29_999]) {
    server.handleTimeout(t);
    assert(!server.hasTransmit());
    assertEquals(server.pollTransmit(), null);
  }
  const sid = server.openStream();
  server.write(sid, pattern(3, 0, 100));
  assert(!server.hasTransmit());
  assertEquals(server.pollTransmit(), null);
  // The client's first frame (a NOP, as a kcptun client sends one when idle) sets the version;
  // the SYN, the owed NOP and the data go out in it (control frames in the order queued).
  server.receive(encodeFrame(2, CMD_NOP, 0));
  assertEquals(server.version, 2);
  const frames = drainFrames(server);
  assertEquals(frames.map((f) => [f.ver, f.cmd, f.sid]), [
    [2, CMD_SYN, sid],
    [2, CMD_NOP, 0],
    [2, CMD_PSH, sid],
  ]);
  assertEquals(frames[2].data, pattern(3, 0, 100));
  // One NOP per interval from now on, as any session.
  server.handleTimeout(40_000);
  assertEquals(drainFrames(server).map((f) => [f.ver, f.cmd]), [[2, CMD_NOP]]);
});

Deno.test("auto version: no owed NOP when none fell due; the keepalive timeout still applies", () => {
  const a = new SmuxSession("server", { version: 0 }, 0);
  a.receive(encodeFrame(1, CMD_SYN, 3));
  assertEquals(a.version, 1);
  assertEquals(drainFrames(a), []);
  // A client that never sends anything is dropped after smux's timeout, as by any server.
  const b = new SmuxSession("server", { version: 0 }, 0);
  b.handleTimeout(30_000);
  assert(b.closed);
  assertEquals(b.closeReason, "keepalive timeout");
});

Deno.test("auto version: a first frame of neither version, or a later change, is a protocol error", () => {
  for (const ver of [0, 3, 255]) {
    const s = new SmuxSession("server", { version: 0 });
    s.receive(encodeFrame(ver, CMD_SYN, 3));
    assert(s.closed && s.closeIsError);
    assertEquals(
      s.closeReason,
      `invalid protocol: first frame has version ${ver}, neither 1 nor 2`,
    );
  }
  const s = new SmuxSession("server", { version: 0 });
  s.receive(concat([encodeFrame(1, CMD_SYN, 3), encodeFrame(2, CMD_NOP, 0)]));
  assertEquals(s.closeReason, "invalid protocol: version 2 frame on a version 1 session");
  // An UPD as the first frame makes a v2 session and is taken as one (for an unknown stream).
  const u = new SmuxSession("server", { version: 0 });
  u.receive(encodeFrame(2, CMD_UPD, 3, new Uint8Array(8)));
  assertEquals([u.version, u.closed], [2, false]);
});

Deno.test("auto version: a client must choose its version", () => {
  assertThrows(
    () => new SmuxSession("client", { version: 0 }),
    StageError,
    "a client must choose 1 or 2",
  );
});
