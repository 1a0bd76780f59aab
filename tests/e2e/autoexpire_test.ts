/**
 * `-autoexpire 2`: sessions rotate during a transfer without losing a byte. A long stream keeps
 * working on its expired session while later streams go to new sessions; the scavenger closes
 * the expired session `-scavengettl` seconds after it expired.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { sleep, startEchoServer } from "../support/net.ts";
import { echoTransfer, startPair, waitFor } from "./harness.ts";

Deno.test("e2e: -autoexpire 2 rotates sessions mid-transfer; scavenger closes the old one", async () => {
  const echo = startEchoServer();
  // Streams on the first session must end before the scavenger closes it (2 + ttl s); they are
  // small so that even a heavily loaded machine finishes them in time.
  const ttl = 6;
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", "ae"],
    [
      ...["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", "ae"],
      ...["-autoexpire", "2", "-scavengettl", String(ttl)],
    ],
  );
  const t0 = performance.now();
  try {
    const port = pair.clientPort;
    // A: 16 KiB every 120 ms for ~2.9 s, started on the first session (which expires at ~2 s).
    let aEnded = 0;
    const long = echoTransfer({ port }, {
      streams: 1,
      bytes: 24 * 16384,
      chunk: 16384,
      pauseMs: 120,
      seed: 100,
    }).then((n) => {
      aEnded = performance.now() - t0;
      return n;
    });
    // B: on the first session, before it expires.
    await sleep(300);
    const early = echoTransfer({ port }, { streams: 2, bytes: 256 << 10, seed: 200 });
    // C: after the expiry: a new session, while A still runs on the old one.
    await sleep(2000);
    const cStarted = performance.now() - t0;
    const late = echoTransfer({ port }, { streams: 2, bytes: 1 << 20, seed: 300 });
    const [a, b, c] = await Promise.all([long, early, late]);
    assertEquals([a, b, c], [24 * 16384, 512 << 10, 2 << 20]);
    assert(aEnded > cStarted, `stream A ended at ${aEnded} ms, before C started (${cStarted})`);

    const log = pair.serverLog.lines;
    const remotes = log.filter((l) => l.startsWith("remote address: ")).map((l) => l.slice(16));
    assertEquals(remotes.length, 2, pair.serverLog.text());
    const opened = log.filter((l) => l.startsWith("stream opened in: "))
      .map((l) => l.match(/^stream opened in: (\S+)\(\d+\)/)![1]);
    // A and B on the first session, C's two streams on the second.
    assertEquals(opened, [remotes[0], remotes[0], remotes[0], remotes[1], remotes[1]]);

    // The scavenger closes the first session ttl seconds after it expired (checked every 1 s).
    const line = await waitFor(
      pair.clientLog.text,
      /scavenger: session closed due to ttl: 127\.0\.0\.1:\d+/,
      (2 + ttl + 3) * 1000,
      "client log",
    );
    const at = performance.now() - t0;
    assert(at >= (2 + ttl) * 1000 - 200, `scavenged after ${at} ms, before expiry + ttl`);
    assert(line.length > 0);
    assertEquals(pair.clientSnmp.ActiveOpens, 2);
    assertEquals(pair.client.sessions.length, 1);
  } finally {
    await pair.stop();
    await echo.close();
  }
});
