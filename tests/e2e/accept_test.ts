/**
 * The client's local listener under connections that are gone before they are accepted (a port
 * scanner resetting right after the handshake): accepting goes on and the tunnel keeps serving.
 * Before the fix, Deno's `accept()` threw `NotConnected` for such a connection, the listener
 * reported it as closed, and every later connection was accepted by the kernel and then hung.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { resetConnections, startEchoServer } from "../support/net.ts";
import { echoTransfer, startPair } from "./harness.ts";

const STORM = 200;

for (const when of ["before the first stream", "with a session up"] as const) {
  Deno.test(`e2e: ${STORM} connections reset before accept; a new stream still echoes (${when})`, async () => {
    const echo = startEchoServer();
    const pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-nocomp"],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-nocomp"],
    );
    try {
      // A working stream first, so the session exists and only the listener is being tested.
      if (when === "with a session up") {
        assertEquals(
          await echoTransfer({ port: pair.clientPort }, { streams: 1, bytes: 1000 }),
          1000,
        );
      }
      resetConnections(pair.clientPort, STORM);
      // Generous: the whole storm is in the accept queue; 1 s is typical on an idle machine.
      assertEquals(
        await echoTransfer({ port: pair.clientPort }, {
          streams: 2,
          bytes: 4096,
          timeoutMs: 15000,
        }),
        2 * 4096,
      );
      const stats = pair.client.listener.stats!;
      assert(
        stats.connectionsGone > 0,
        `no reset connection reached accept: ${JSON.stringify(stats)}`,
      );
      assertEquals(stats.errors, 0);
      assert(!pair.clientLog.text().includes("accept"), pair.clientLog.text());
    } finally {
      await pair.stop();
      await echo.close();
    }
  });
}
