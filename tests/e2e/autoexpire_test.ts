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
  // A must end before the scavenger closes its session (2 + ttl s): margin for a loaded machine.
  const ttl = 5;
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
    // A: ~3.2 s of 32 KiB every 100 ms, started on the first session (expires at ~2 s).
    const long = echoTransfer({ port }, {
      streams: 1,
      bytes: 32 * 32768,
      chunk: 32768,
      pauseMs: 100,
      seed: 100,
    });
    // B: on the first session, before it expires.
    await sleep(300);
    const early = echoTransfer({ port }, { streams: 2, bytes: 1 << 20, seed: 200 });
    // C: after the expiry: a new session, while A still runs on the old one.
    await sleep(2400);
    const late = echoTransfer({ port }, { streams: 2, bytes: 1 << 20, seed: 300 });
    const [a, b, c] = await Promise.all([long, early, late]);
    assertEquals([a, b, c], [32 * 32768, 2 << 20, 2 << 20]);
    const aEnded = performance.now() - t0;
    assert(aEnded > 2700, `stream A ended after ${aEnded} ms, before the rotation`);

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
