/**
 * QPP through our client and server: both ends with `-QPP` move data intact and put QPP
 * ciphertext on the wire (checked stream by stream from the datagrams a relay saw); one end
 * alone delivers only scrambled bytes and breaks nothing; the real entry points log the QPP
 * lines and kcptun 2026's warnings.
 */

import { QppDecoder, QppEncoder, qppPads } from "../../transforms/qpp/mod.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { freePort, readExactly, startEchoServer, writeAll } from "../support/net.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "../smux/capture_streams.ts";
import {
  echoTransfer,
  exitWithin,
  listeningPort,
  type Proc,
  seededBytes,
  spawnClient,
  spawnServer,
  startPair,
  waitFor,
} from "../e2e/harness.ts";

/** A UDP relay between one client and the server that keeps a copy of every datagram. */
class RecordingRelay {
  readonly port: number;
  readonly up: Uint8Array[] = [];
  readonly down: Uint8Array[] = [];
  readonly #front: Deno.DatagramConn;
  readonly #back: Deno.DatagramConn;
  readonly #server: Deno.NetAddr;
  #client: Deno.NetAddr | null = null;
  readonly #tasks: Promise<void>[];

  constructor(serverPort: number) {
    this.#front = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    this.#back = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    this.port = (this.#front.addr as Deno.NetAddr).port;
    this.#server = { transport: "udp", hostname: "127.0.0.1", port: serverPort };
    this.#tasks = [this.#pumpUp(), this.#pumpDown()];
  }

  async #pumpUp(): Promise<void> {
    try {
      while (true) {
        const [data, from] = await this.#front.receive();
        this.#client = from as Deno.NetAddr;
        this.up.push(data);
        await this.#back.send(data, this.#server);
      }
    } catch { /* closed */ }
  }

  async #pumpDown(): Promise<void> {
    try {
      while (true) {
        const [data] = await this.#back.receive();
        this.down.push(data);
        if (this.#client) await this.#front.send(data, this.#client);
      }
    } catch { /* closed */ }
  }

  async close(): Promise<void> {
    this.#front.close();
    this.#back.close();
    await Promise.allSettled(this.#tasks);
  }
}

/**
 * The PSH payloads per smux stream id carried by bare KCP datagrams (`-crypt null`, no FEC, one
 * session): PUSH segments in sn order (retransmissions once), then smux frames.
 */
function streamPayloads(datagrams: Uint8Array[]): Map<number, Uint8Array> {
  const bySn = new Map<number, Uint8Array>();
  for (const d of datagrams) {
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    for (let p = 0; d.length - p >= 24;) {
      const len = v.getUint32(p + 20, true);
      const sn = v.getUint32(p + 12, true);
      if (d[p + 4] === 81 && !bySn.has(sn)) bySn.set(sn, d.subarray(p + 24, p + 24 + len));
      p += 24 + len;
    }
  }
  const parts: Uint8Array[] = [];
  for (let sn = 0; bySn.has(sn); sn++) parts.push(bySn.get(sn)!);
  assertEquals(parts.length, bySn.size, "no gap in the PUSH sequence");
  const bytes = concat(parts);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const perStream = new Map<number, Uint8Array[]>();
  let p = 0;
  for (; p + 8 <= bytes.length; p += 8 + v.getUint16(p + 2, true)) {
    if (bytes[p + 1] !== 2) continue; // PSH
    const sid = v.getUint32(p + 4, true);
    const len = v.getUint16(p + 2, true);
    if (!perStream.has(sid)) perStream.set(sid, []);
    perStream.get(sid)!.push(bytes.subarray(p + 8, p + 8 + len));
  }
  assertEquals(p, bytes.length, "whole smux frames");
  return new Map([...perStream].map(([sid, list]) => [sid, concat(list)]));
}

/** Byte equality without building hex strings of megabytes. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const WIRE = ["-crypt", "null", "-nocomp", "-ds", "0", "-ps", "0", "-smuxver", "2"];

Deno.test("e2e qpp: both ends -QPP move 4 x 1 MiB intact; the wire carries QPP ciphertext of each stream", async () => {
  const key = "qpp e2e key";
  const echo = startEchoServer();
  let relay: RecordingRelay | null = null;
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", key, "-QPP", ...WIRE],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", key, "-QPP", ...WIRE],
    { route: (port) => (relay = new RecordingRelay(port)).port },
  );
  try {
    const seed = 61;
    const moved = await echoTransfer({ port: pair.clientPort }, {
      streams: 4,
      bytes: 1 << 20,
      seed,
    });
    assertEquals(moved, 4 << 20);
    const r = relay as RecordingRelay | null;
    assert(r !== null);
    const up = streamPayloads(r.up);
    const down = streamPayloads(r.down);
    assertEquals([...up.keys()].sort(), [3, 5, 7, 9]);
    const pads = qppPads(key, 61);
    const matched = new Set<number>();
    for (const [sid, wire] of up) {
      assertEquals(wire.length, 1 << 20, `stream ${sid}`);
      const plain = wire.slice();
      new QppDecoder(pads).process(plain);
      const i = [0, 1, 2, 3].find((i) =>
        toHex(plain.subarray(0, 64)) === toHex(seededBytes(64, seed + i))
      );
      assert(i !== undefined, `stream ${sid} decrypts to one of the payloads`);
      matched.add(i);
      const expected = seededBytes(1 << 20, seed + i);
      assert(same(plain, expected), `stream ${sid} decrypts to what was sent`);
      const cipher = expected.slice();
      new QppEncoder(pads).process(cipher);
      assert(toHex(wire.subarray(0, 32)) !== toHex(expected.subarray(0, 32)));
      // The echo of identical bytes is identical ciphertext: both directions start at r_0.
      assert(same(wire, cipher), `stream ${sid}: our encoder gives the same bytes`);
      assert(same(down.get(sid)!, cipher), `stream ${sid}: the echo's ciphertext`);
    }
    assertEquals(matched.size, 4);
    for (const log of [pair.clientLog, pair.serverLog]) {
      assert(log.lines.includes("QPP: true") && log.lines.includes("QPP Count: 61"), log.text());
    }
  } finally {
    await pair.stop();
    await (relay as RecordingRelay | null)?.close();
    await echo.close();
  }
});

/**
 * A target that records what it receives and, after `expect` bytes, answers `reply` and
 * closes.
 */
function recordingTarget(expect: number, reply: Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  const loop = (async () => {
    for await (const conn of listener) {
      try {
        received.push(await readExactly(conn, expect));
        await writeAll(conn, reply);
      } catch { /* the test reports what arrived */ }
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    received,
    async close() {
      listener.close();
      await loop;
    },
  };
}

for (const qppEnd of ["client", "server"] as const) {
  Deno.test(`e2e qpp: -QPP on the ${qppEnd} only delivers scrambled bytes both ways and crashes nothing`, async () => {
    const key = "mismatch";
    const sent = new TextEncoder().encode("plain text from the application, ".repeat(20));
    const reply = new TextEncoder().encode("the target's answer, ".repeat(10));
    const target = recordingTarget(sent.length, reply);
    const qpp = (end: string) => (end === qppEnd ? ["-QPP"] : []);
    const pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${target.port}`, "-key", key, ...qpp("server")],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", key, ...qpp("client")],
    );
    try {
      const pads = qppPads(key, 61);
      for (let round = 0; round < 2; round++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
        try {
          await writeAll(conn, sent);
          const got = await readExactly(conn, reply.length);
          const arrived = target.received[round];
          assert(arrived !== undefined, `round ${round}: the target got the bytes`);
          assert(toHex(arrived) !== toHex(sent), "the target never sees the plaintext");
          assert(toHex(got) !== toHex(reply), "the application never sees the answer");
          // Exactly one QPP pass each way, fresh per stream: decrypting where the peer did not
          // encrypt (server end), or encrypting what the peer will not decrypt (client end).
          const fix = (b: Uint8Array, enc: boolean) => {
            const x = b.slice();
            if (enc) new QppEncoder(pads).process(x);
            else new QppDecoder(pads).process(x);
            return toHex(x);
          };
          assertEquals(toHex(arrived), fix(sent, qppEnd === "client"), `round ${round} up`);
          assertEquals(toHex(got), fix(reply, qppEnd === "server"), `round ${round} down`);
        } finally {
          conn.close();
        }
      }
      assertEquals(pair.server.listener.sockets.length, 1);
      assert(pair.client.sessions.length >= 1, "the session is still up");
    } finally {
      await pair.stop();
      await target.close();
    }
  });
}

Deno.test("e2e qpp (subprocess): the real binaries log QPP lines and warnings, and relay", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const procs: Proc[] = [];
  try {
    const common = ["-key", "short key", "-QPP", "-QPPCount", "10", "-nocomp"];
    const server = spawnServer([
      "-l",
      `127.0.0.1:${sport}`,
      "-t",
      `127.0.0.1:${echo.port}`,
      ...common,
    ]);
    procs.push(server);
    const client = spawnClient(["-l", "127.0.0.1:0", "-r", `127.0.0.1:${sport}`, ...common]);
    procs.push(client);
    for (const p of procs) {
      await waitFor(p.output, "key derivation done", 15000, "log");
      const log = p.output();
      for (
        const want of [
          "encryption: aes\n",
          "QPP: true\n",
          "QPP Count: 10\n",
          "QPP Warning: 'key' has size of 9 bytes, required 211 bytes at least\n",
          "QPP Warning: QPPCount 10, choose a prime number for security\n",
        ]
      ) assert(log.includes(want), `${want}${log}`);
      assert(/encryption: aes\n\S+ \S+ QPP: true\n\S+ \S+ QPP Count: 10\n/.test(log), log);
    }
    const cport = await listeningPort(client);
    assertEquals(await echoTransfer({ port: cport }, { streams: 2, bytes: 200000 }), 400000);
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 6000)).code, 0);
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
  }
});
