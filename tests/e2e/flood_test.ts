/**
 * Datagram floods from many source addresses at our server. Junk opens no session and adds no
 * log line: with `-crypt null` nothing checks it before KCP, with `-crypt none` junk with a
 * valid checksum passes the crypt check, and with FEC a data shard's header may look right; in
 * every case the datagram must parse as KCP before a session is made for its source. A flood of
 * well-formed KCP does open sessions (as kcp-go does), and then the per-session lines are
 * rate-limited. A real client connects during and after all of it.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { sleep, startEchoServer } from "../support/net.ts";
import { PacketBatch, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { SERVER_LINES_PER_SECOND } from "../../runtime/server.ts";
import { cryptStage } from "../../transforms/crypt/stage.ts";
import { KcpCmd, writeSegmentHeader } from "../../transforms/kcp/wire.ts";
import { echoTransfer, type Pair, startPair } from "./harness.ts";

const SOURCES = 200;

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

/** Sends each datagram from its own fresh UDP socket (its own source port), `repeat` times. */
async function flood(port: number, datagrams: Uint8Array[], repeat = 2): Promise<void> {
  const socks = datagrams.map(() =>
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
  );
  try {
    for (let r = 0; r < repeat; r++) {
      await Promise.all(
        socks.map((s, i) =>
          s.send(datagrams[i], { transport: "udp", hostname: "127.0.0.1", port })
        ),
      );
    }
  } finally {
    for (const s of socks) s.close();
  }
}

/** Waits until the server counted `n` received datagrams (bounded: a hang fails elsewhere). */
async function received(snmp: Snmp, n: number): Promise<void> {
  const deadline = performance.now() + 10000;
  while (snmp.InPkts < n && performance.now() < deadline) await sleep(20);
  assert(snmp.InPkts >= n, `server received ${snmp.InPkts}/${n} datagrams`);
}

/** `-crypt none` junk: a random nonce, then a CRC32 that matches the random payload. */
function sealedNone(payloads: Uint8Array[]): Uint8Array[] {
  const pool = new PacketPool();
  const stage = cryptStage.create({ crypt: "none", key: "flood" }, {
    role: "client",
    pool,
    snmp: new Snmp(),
    log: () => {},
  });
  const batch = new PacketBatch();
  for (const p of payloads) batch.push(pool.from(p));
  stage.encode(batch, 0);
  const out: Uint8Array[] = [];
  for (let i = 0; i < batch.length; i++) out.push(batch.packets[i].bytes().slice());
  batch.releaseAll();
  return out;
}

/** An FEC data shard (seqid, 0xf1, sane size) around `inner`. */
function dataShard(inner: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + inner.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, Math.floor(Math.random() * 1000), true);
  v.setUint16(4, 0xf1, true);
  v.setUint16(6, inner.length + 2, true);
  b.set(inner, 8);
  return b;
}

/** A parity shard (seqid, 0xf2, random bytes). */
function parityShard(n: number): Uint8Array {
  const b = random(n);
  b[4] = 0xf2;
  b[5] = 0;
  return b;
}

const junk = () => Array.from({ length: SOURCES }, (_, i) => random(24 + ((i * 37) % 1300)));

interface Case {
  name: string;
  flags: string[];
  datagrams: () => Uint8Array[];
}

const NO_FEC = ["-datashard", "0", "-parityshard", "0"];

const CASES: Case[] = [
  {
    name: "-crypt null, no FEC, random junk",
    flags: ["-crypt", "null", "-nocomp", ...NO_FEC],
    datagrams: junk,
  },
  {
    name: "-crypt none, no FEC, junk with a valid checksum",
    flags: ["-crypt", "none", "-nocomp", ...NO_FEC],
    datagrams: () => sealedNone(junk()),
  },
  {
    name: "-crypt null with FEC, random junk",
    flags: ["-crypt", "null", "-nocomp"],
    datagrams: junk,
  },
  {
    name: "-crypt null with FEC, data shards around junk and parity shards",
    flags: ["-crypt", "null", "-nocomp"],
    datagrams: () => junk().map((j, i) => (i % 2 === 0 ? dataShard(j) : parityShard(j.length + 8))),
  },
  {
    name: "-crypt none with FEC, checksum-valid data shards around junk",
    flags: ["-crypt", "none", "-nocomp"],
    datagrams: () => sealedNone(junk().map(dataShard)),
  },
];

async function pairWith(flags: string[], echoPort: number): Promise<Pair> {
  return await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echoPort}`, "-key", "flood", ...flags],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", "flood", ...flags],
  );
}

for (const c of CASES) {
  Deno.test(`e2e flood: ${c.name} from ${SOURCES} sources opens no session, logs nothing`, async () => {
    const echo = startEchoServer();
    const pair = await pairWith(c.flags, echo.port);
    try {
      const before = pair.serverLog.lines.length;
      const datagrams = c.datagrams();
      await flood(pair.server.ports[0], datagrams);
      await received(pair.serverSnmp, 2 * SOURCES);
      assertEquals(pair.server.listener.sessions.size, 0);
      assertEquals(pair.serverSnmp.PassiveOpens, 0);
      assertEquals(pair.serverLog.lines.slice(before), [], "no log line for junk");
      // Counted where kcp-go would count them: not KCP (or a broken FEC header).
      const s = pair.serverSnmp;
      assert(s.KCPInErrors + s.FECErrs + s.InErrs > 0, JSON.stringify(s));
      // A real client still gets through, while the junk keeps coming.
      const more = flood(pair.server.ports[0], c.datagrams(), 5);
      assertEquals(
        await echoTransfer({ port: pair.clientPort }, { streams: 2, bytes: 64 << 10 }),
        2 * (64 << 10),
      );
      await more;
      assertEquals(pair.serverSnmp.PassiveOpens, 1, "only the real client's session");
    } finally {
      await pair.stop();
      await echo.close();
    }
  });
}

/** A well-formed bare KCP datagram: one ACK segment (kcp-go opens a session even for that). */
function kcpAck(conv: number): Uint8Array {
  const b = new Uint8Array(24);
  writeSegmentHeader(b, 0, conv, KcpCmd.Ack, 0, 128, 0, 0, 0, 0);
  return b;
}

Deno.test(`e2e flood: well-formed KCP from ${SOURCES} sources opens sessions, lines rate-limited`, async () => {
  const echo = startEchoServer();
  const pair = await pairWith(["-crypt", "null", "-nocomp", ...NO_FEC], echo.port);
  let stopped = false;
  try {
    const before = pair.serverLog.lines.length;
    const t0 = performance.now();
    await flood(pair.server.ports[0], Array.from({ length: SOURCES }, (_, i) => kcpAck(i + 1)), 1);
    await received(pair.serverSnmp, SOURCES);
    const opened = pair.serverSnmp.PassiveOpens;
    assert(opened > 100, `sessions opened: ${opened}`);
    await pair.stop(); // writes the pending summaries
    stopped = true;
    const seconds = Math.ceil((performance.now() - t0) / 1000);
    const lines = pair.serverLog.lines.slice(before);
    for (const kind of ["remote address:", "smux version:"]) {
      const logged = lines.filter((l) => l.startsWith(kind)).length;
      const summarised = lines
        .map((l) => l.match(new RegExp(`^\\(… (\\d+) similar "${kind}" lines? suppressed\\)$`)))
        .filter((m) => m !== null)
        .reduce((sum, m) => sum + Number(m![1]), 0);
      // Every session is accounted for: logged or counted in a summary.
      assertEquals(logged + summarised, opened, `${kind}\n${lines.join("\n")}`);
      assert(logged <= SERVER_LINES_PER_SECOND * (seconds + 1), `${logged} "${kind}" lines`);
      assert(summarised > 0, "nothing was suppressed");
    }
  } finally {
    if (!stopped) await pair.stop();
    await echo.close();
  }
});
