/**
 * Live: an idle session survives smux's keepalive, against Go in both directions. smux closes a
 * session when a 30 s check finds no frame received since the previous check; an idle stream
 * lives on only through each end's NOP frames being understood by the other. 65 s of silence
 * spans two checks on each end. Both directions run at once to keep the wall time near 65 s.
 */

import { assert } from "../support/assert.ts";
import { readExactly, sleep, writeAll } from "../support/net.ts";
import { missing } from "../support/requires.ts";
import { EchoTarget, type Impl, type Proc, seededBytes } from "./harness.ts";
import { startEnds } from "./live.ts";

const IDLE_MS = 65000;

async function idleSurvives(client: Impl, server: Impl): Promise<string> {
  const target = EchoTarget.tcp();
  const procs: Proc[] = [];
  try {
    const { s, c, cp } = await startEnds(procs, client, server, target.address);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: cp });
    const d1 = seededBytes(51, 65536);
    await writeAll(conn, d1);
    await readExactly(conn, d1.length);
    await sleep(IDLE_MS);
    const d2 = seededBytes(52, 65536);
    await writeAll(conn, d2);
    const back = await readExactly(conn, d2.length, 10000);
    conn.close();
    if (!back.every((b, i) => b === d2[i])) return `${client}→${server}: wrong echo after idling`;
    const ours = client === "ts" ? c : s;
    if (/ session \S+: /.test(ours.output())) {
      return `${client}→${server}: a session failed while idle\n${ours.tail()}`;
    }
    if (s.count("remote address:") !== 1) {
      return `${client}→${server}: the server saw a new session`;
    }
    return "";
  } catch (e) {
    return `${client}→${server}: ${(e as Error).message}\n${procs.map((p) => p.tail()).join("\n")}`;
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await target.close();
  }
}

Deno.test({
  name: "live an idle stream survives 65 s (two keepalive checks) ts→go and go→ts",
  ignore: missing("kcptun"),
  fn: async () => {
    const problems = await Promise.all([idleSurvives("ts", "go"), idleSurvives("go", "ts")]);
    const failed = problems.filter((p) => p !== "");
    assert(failed.length === 0, failed.join("\n\n"));
  },
});
