/**
 * Live behaviours around restarts, against Go kcptun:
 * - Go's server killed and restarted mid-session: our client notices through smux's keepalive
 *   (timeout fixed at 30 s, checked every 30 s, so 30–60 s after the last frame), its old streams
 *   end, and new connections work on a freshly dialled session.
 * - A client restarted on the same UDP address: a new conv whose first segment has sn 0 replaces
 *   the old session at once, on Go's server and on ours.
 */

import { assert } from "../support/assert.ts";
import { freePort, readExactly, writeAll } from "../support/net.ts";
import { missing } from "../support/requires.ts";
import {
  EchoTarget,
  type Impl,
  KEY,
  type Proc,
  seededBytes,
  startClient,
  startServer,
  waitUdpBound,
} from "./harness.ts";
import {
  clientTunnel,
  echoOnce,
  echoOverStream,
  eventually,
  fixedPortSession,
  listenQuietly,
} from "./live.ts";

/** The longest our client may take to recover from a restarted server. */
const RECOVERY_BOUND_MS = 75000;

Deno.test({
  name: "live Go server restarted mid-session: our client redials, old streams end (≤ 75 s)",
  ignore: missing("kcptun"),
  fn: async () => {
    const target = EchoTarget.tcp();
    const sp = freePort(), cp = freePort();
    const sargs = ["-l", `127.0.0.1:${sp}`, "-t", target.address, "-key", KEY];
    const procs: Proc[] = [];
    try {
      const first = startServer("go", sargs, "go server (first)");
      procs.push(first);
      await waitUdpBound(first, sp);
      const client = startClient("ts", [
        "-l",
        `127.0.0.1:${cp}`,
        "-r",
        `127.0.0.1:${sp}`,
        "-key",
        KEY,
        "-keepalive",
        "2",
      ]);
      procs.push(client);
      await client.waitFor("listening on:");
      const old = await Deno.connect({ hostname: "127.0.0.1", port: cp });
      const data = seededBytes(7, 65536);
      await writeAll(old, data);
      await readExactly(old, data.length);

      const killedAt = performance.now();
      await first.kill();
      const second = startServer("go", sargs, "go server (restarted)");
      procs.push(second);
      await waitUdpBound(second, sp);
      const oldEnd = listenQuietly(old, RECOVERY_BOUND_MS);

      let recoveredAt = 0;
      let attempts = 0;
      const failures: string[] = [];
      while (recoveredAt === 0) {
        const left = RECOVERY_BOUND_MS - (performance.now() - killedAt);
        if (left <= 0) break;
        attempts++;
        try {
          await echoOnce(cp, 16384, 100 + attempts, left);
          recoveredAt = performance.now();
        } catch (e) {
          failures.push(`attempt ${attempts}: ${(e as Error).message}`);
        }
      }
      const recoveryS = ((recoveredAt - killedAt) / 1000).toFixed(1);
      assert(
        recoveredAt > 0,
        `no echo within ${RECOVERY_BOUND_MS} ms of the restart\n${failures.join("\n")}\n` +
          procs.map((p) => p.tail()).join("\n"),
      );
      const o = await oldEnd;
      assert(o.ended !== null, `the old stream neither ended nor failed (${o.bytes} bytes came)`);
      assert(o.bytes === 0, `the old stream got ${o.bytes} bytes after the restart`);
      assert(!client.exited, `our client exited\n${client.tail()}`);
      assert(
        client.count("keepalive timeout") >= 1,
        `no keepalive timeout logged\n${client.tail()}`,
      );
      assert(second.count("stream opened") >= 1, "the restarted server carried no stream");
      console.log(`  recovered ${recoveryS} s after the restart (${attempts} attempts)`);
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop()));
      await target.close();
    }
  },
});

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
    await echoOverStream(first.mux, 65536, 1); // its stream stays open
    const remote = `remote address: 127.0.0.1:${lp}`;
    await proc.waitFor(remote);
    assert(target.open === 1, `expected one target connection, saw ${target.open}`);

    await first.crash(); // no goodbye: KCP has no close message
    const t0 = performance.now();
    const second = await fixedPortSession(tunnel, lp, sp);
    sessions.push(second);
    assert(second.kcp.conv !== first.kcp.conv, "same conv twice");
    await echoOverStream(second.mux, 65536, 2, 10000);
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
