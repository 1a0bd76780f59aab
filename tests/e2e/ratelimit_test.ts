/** `-ratelimit` (kcptun 2026): each session's outgoing datagrams stay within the rate. */

import { RATE_LIMIT_BURST } from "../../transforms/kcp/rate_limit.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { startEchoServer } from "../support/net.ts";
import { echoTransfer, startPair } from "./harness.ts";

Deno.test("e2e: -ratelimit 500000 keeps each end's datagram bytes within 500 kB/s", async () => {
  const echo = startEchoServer();
  const rate = 500_000;
  const flags = ["-key", "k", "-ratelimit", String(rate)];
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, ...flags],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", ...flags],
  );
  try {
    const t0 = performance.now();
    const moved = await echoTransfer({ port: pair.clientPort }, {
      streams: 2,
      bytes: 512 * 1024,
      seed: 3,
    });
    const seconds = (performance.now() - t0) / 1000;
    assertEquals(moved, 1 << 20);
    for (const [who, snmp] of [["client", pair.clientSnmp], ["server", pair.serverSnmp]] as const) {
      // A token bucket lets the burst through at once and then `rate` bytes a second: the
      // transfer cannot have been faster than that (a slow machine only makes it slower).
      const floor = (snmp.OutBytes - RATE_LIMIT_BURST) / rate;
      assert(
        seconds >= floor * 0.95,
        `${who} sent ${snmp.OutBytes} datagram bytes in ${seconds.toFixed(2)} s (limit ${rate}/s)`,
      );
      assert(snmp.OutBytes > 1 << 20, `${who} OutBytes ${snmp.OutBytes}`);
    }
  } finally {
    await pair.stop();
    await echo.close();
  }
});
