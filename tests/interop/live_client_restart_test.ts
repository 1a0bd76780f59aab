/**
 * Live: a client restarted on the same UDP address. A new conv whose first segment has sn 0
 * replaces the old session at once, on Go's server and on ours (without that, the address would
 * stay taken by the old session until smux's 30–60 s keepalive timeout). Our client, like
 * kcptun's, dials from an ephemeral port, so the restarted client is played at the session level:
 * our packet stages, KCP and smux on a socket bound to a fixed port.
 */

import { assert } from "../support/assert.ts";
import { missing } from "../support/requires.ts";
import { EchoTarget, freePort, type Impl, KEY, startServer, waitUdpBound } from "./harness.ts";
import { clientTunnel, echoOverStream, eventually, fixedPortSession } from "./live.ts";

async function restartedClientReplaces(server: Impl): Promise<void> {
  const target = EchoTarget.tcp();
  const sp = freePort(), lp = freePort();
  const proc = startServer(server, ["-l", `127.0.0.1:${sp}`, "-t", target.address, "-key", KEY]);
  const sessions = [];
  try {
    await waitUdpBound(proc, sp);
    const tunnel = await clientTunnel(["-r", `127.0.0.1:${sp}`, "-key", KEY]);
    const first = await fixedPortSession(tunnel, lp, sp);
    sessions.push(first);
    await echoOverStream(first.session, 65536, 1); // its stream stays open
    const remote = `remote address: 127.0.0.1:${lp}`;
    await proc.waitFor(remote);
    assert(target.open === 1, `expected one target connection, saw ${target.open}`);

    await first.crash(); // no goodbye: KCP has no close message
    const t0 = performance.now();
    const second = await fixedPortSession(tunnel, lp, sp);
    sessions.push(second);
    assert(second.session.connection.conv !== first.session.connection.conv, "same conv twice");
    await echoOverStream(second.session, 65536, 2, 10000);
    const ms = performance.now() - t0;
    // Without replacement the old session would hold the address until smux's 30 s timeout.
    assert(ms < 10000, `the new session took ${ms.toFixed(0)} ms`);
    await proc.waitFor(remote, 5000, 2);
    assert(
      await eventually(() => target.ended >= 1, 10000),
      `the replaced session's target connection was not closed (open ${target.open})`,
    );
    assert(!proc.exited, `the server exited\n${proc.tail()}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${proc.tail()}`);
  } finally {
    for (const s of sessions) await s.crash();
    await proc.stop();
    await target.close();
  }
}

Deno.test({
  name:
    "live client restarted on the same UDP address: new conv replaces the session on Go's server",
  ignore: missing("kcptun"),
  fn: () => restartedClientReplaces("go"),
});

Deno.test({
  name:
    "live client restarted on the same UDP address: new conv replaces the session on our server",
  ignore: missing("kcptun"),
  fn: () => restartedClientReplaces("ts"),
});
