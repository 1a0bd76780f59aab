/** Every `-mode` (and manual parameters) moves data both ways intact, in process. */

import { assert, assertEquals } from "../support/assert.ts";
import { startEchoServer } from "../support/net.ts";
import { echoTransfer, startPair } from "./harness.ts";

const MODES: Array<[string, string[], string]> = [
  ["normal", ["-mode", "normal"], "0 40 2 1"],
  ["fast", ["-mode", "fast"], "0 30 2 1"],
  ["fast2", ["-mode", "fast2"], "1 20 2 1"],
  ["fast3", ["-mode", "fast3"], "1 10 2 1"],
  [
    "manual",
    ["-mode", "manual", "-nodelay", "1", "-interval", "15", "-resend", "3", "-nc", "1"],
    "1 15 3 1",
  ],
];

for (const [name, flags, nodelay] of MODES) {
  Deno.test(`e2e: -mode ${name}: 4 streams x 1 MiB echoed intact`, async () => {
    const echo = startEchoServer();
    const pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", "k", ...flags],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", "k", ...flags],
    );
    try {
      const moved = await echoTransfer({ port: pair.clientPort }, {
        streams: 4,
        bytes: 1 << 20,
        seed: name.length,
      });
      assertEquals(moved, 4 << 20);
      for (const log of [pair.clientLog, pair.serverLog]) {
        assert(log.lines.includes(`nodelay parameters: ${nodelay}`), log.text());
      }
      assert(pair.clientSnmp.BytesSent >= 4 << 20, `client BytesSent ${pair.clientSnmp.BytesSent}`);
      assert(pair.serverSnmp.BytesSent >= 4 << 20, `server BytesSent ${pair.serverSnmp.BytesSent}`);
    } finally {
      await pair.stop();
      await echo.close();
    }
  });
}
