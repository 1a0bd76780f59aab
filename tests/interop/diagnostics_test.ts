/**
 * The log lines a mismatched pair of ends leads to (unit level; the live tests in
 * live_mismatch_test.ts check them against Go): the crypt stage's integrity-failure report and
 * the hints of cli/diagnose.ts.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { PacketBatch, PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import { cryptStage, FAILURE_REPORT_MS } from "../../transforms/crypt/stage.ts";
import { type Role, sessionCloseHint, sessionCloseLine } from "../../cli/diagnose.ts";

const PEER: PeerAddress = {
  family: "ipv4",
  hostname: "127.0.0.1",
  port: 4000,
  key: "127.0.0.1:4000",
};

function setup(crypt: string, key: string) {
  const lines: string[] = [];
  const pool = new PacketPool();
  const ctx: StageContext = { role: "server", pool, snmp: new Snmp(), log: (l) => lines.push(l) };
  return { lines, pool, ctx, stage: cryptStage.create({ crypt, key }, ctx) };
}

/** `n` datagrams sealed by `sender`, as received from PEER. */
function sealed(sender: ReturnType<typeof setup>, n: number): PacketBatch {
  const batch = new PacketBatch();
  for (let i = 0; i < n; i++) {
    const p = sender.pool.from(new Uint8Array(100).fill(i));
    batch.push(p);
  }
  sender.stage.encode(batch, 0);
  for (const p of batch.packets.slice(0, batch.length)) p.peer = PEER;
  return batch;
}

Deno.test("crypt: a wrong key is reported at once, then at most once a minute, with a hint", () => {
  const receiver = setup("aes", "right");
  const sender = setup("aes", "wrong");
  const batch = sealed(sender, 3);
  receiver.stage.decode(batch, 1000);
  assertEquals(batch.length, 0);
  assertEquals(receiver.ctx.snmp.InCsumErrors, 3);
  assertEquals(receiver.lines, [
    "crypt: 1 datagram failed the integrity check, latest from 127.0.0.1:4000 (InCsumErrors 1): " +
    "-key and -crypt must be the same on both ends (this end: -crypt aes)",
  ]);
  const more = sealed(sender, 5);
  receiver.stage.decode(more, 1000 + FAILURE_REPORT_MS - 1);
  assertEquals(receiver.lines.length, 1, "reported again within the minute");
  const last = sealed(sender, 1);
  receiver.stage.decode(last, 1000 + FAILURE_REPORT_MS);
  assertEquals(receiver.lines.length, 2);
  assert(
    receiver.lines[1].startsWith("crypt: 8 datagrams failed the integrity check, latest from"),
    receiver.lines[1],
  );
  assert(receiver.lines[1].includes("(InCsumErrors 9)"), receiver.lines[1]);
});

Deno.test("crypt: a wrong method is reported naming this end's method; good datagrams are not", () => {
  const receiver = setup("salsa20", "k");
  const good = sealed(setup("salsa20", "k"), 4);
  receiver.stage.decode(good, 0);
  assertEquals(good.length, 4);
  assertEquals(receiver.lines, []);
  good.releaseAll();
  const bad = sealed(setup("twofish", "k"), 2);
  receiver.stage.decode(bad, 10);
  assertEquals(receiver.lines.length, 1);
  assert(receiver.lines[0].endsWith("(this end: -crypt salsa20)"), receiver.lines[0]);
});

Deno.test("session close hints name the setting that differs", () => {
  // Reasons as our smux driver gives them for the mismatches seen live against Go.
  const cases: Array<[Role, string, string]> = [
    ["server", "invalid protocol: version 255 frame on a version 1 session", "-nocomp"],
    ["server", "invalid protocol: version 2 frame on a version 1 session", "-smuxver"],
    ["client", "invalid protocol: version 1 frame on a version 2 session", "-smuxver"],
    [
      "server",
      "underlying stream failed: snappy: stream does not start with the stream identifier " +
      "(first chunk type 0x01)",
      "-nocomp",
    ],
    ["server", "invalid protocol: unknown command 7", "-key, -crypt, -nocomp and -smuxver"],
    // A -smuxver 0 server takes any version; a compressing peer's first byte is still no version.
    ["server", "invalid protocol: first frame has version 255, neither 1 nor 2", "-nocomp must"],
    ["server", "invalid protocol: first frame has version 9, neither 1 nor 2", "-key, -crypt and"],
    ["client", "keepalive timeout", "is it running and reachable?"],
  ];
  for (const [role, reason, want] of cases) {
    const line = sessionCloseLine(role, "127.0.0.1:29900", reason);
    assert(line.startsWith(`session 127.0.0.1:29900: ${reason} (`), line);
    assert(line.includes(want), `${line} lacks ${want}`);
  }
  assertEquals(
    sessionCloseLine(
      "client",
      "127.0.0.1:1",
      "invalid protocol: version 2 frame on a version 1 session",
    ),
    "session 127.0.0.1:1: invalid protocol: version 2 frame on a version 1 session " +
      "(the peer speaks smux v2, this end v1: -smuxver must be the same on both ends)",
  );
  // A client vanishing is no configuration problem: the server says only what happened.
  assertEquals(sessionCloseHint("server", "keepalive timeout"), "");
  assertEquals(
    sessionCloseLine("server", "127.0.0.1:1", "keepalive timeout"),
    "session 127.0.0.1:1: keepalive timeout",
  );
});
