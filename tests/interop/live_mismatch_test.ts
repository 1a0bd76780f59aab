/**
 * Live behaviours with a misconfigured pair (a different -key, -crypt, -nocomp or -smuxver at the
 * two ends), against Go kcptun in both directions: no data leaks through (the TCP connection
 * gets no echo, the target is never dialled), nothing crashes, and our end logs a line naming
 * the setting to check.
 *
 * Our server knows at once (integrity failures, or the first smux frame). Our client hears
 * nothing from Go's server for a wrong key or method, so it can only tell when smux's 30 s
 * keepalive timeout ends the session; for -nocomp/-smuxver, Go's server drops the session and
 * the next datagram makes a "ghost" session there whose smux NOP our client rejects, naming the
 * setting (with -keepalive 2 on both ends that takes a few seconds).
 */

import { assert } from "../support/assert.ts";
import { missing } from "../support/requires.ts";
import { EchoTarget, type Impl, type Proc, seededBytes } from "./harness.ts";
import { listenQuietly, startEnds } from "./live.ts";

interface Mismatch {
  /** Short name. */
  kind: string;
  /** Client and server flags. */
  client: string[];
  server: string[];
  /** The setting our end's log line must name. */
  names: string;
  /** What our server logs (a fragment). */
  serverSays: string;
}

const MISMATCHES: Mismatch[] = [
  {
    kind: "key",
    client: ["-key", "client-key"],
    server: ["-key", "server-key"],
    names: "-key",
    serverSays: "failed the integrity check",
  },
  {
    kind: "crypt",
    client: ["-crypt", "aes"],
    server: ["-crypt", "salsa20"],
    names: "-crypt",
    serverSays: "failed the integrity check",
  },
  {
    kind: "nocomp (client compresses)",
    client: [],
    server: ["-nocomp"],
    names: "-nocomp",
    serverSays: "version 255 frame",
  },
  {
    kind: "nocomp (server compresses)",
    client: ["-nocomp"],
    server: [],
    names: "-nocomp",
    serverSays: "snappy",
  },
  {
    kind: "smuxver",
    client: ["-smuxver", "2"],
    server: ["-smuxver", "1"],
    names: "-smuxver",
    serverSays: "version 2 frame on a version 1 session",
  },
];

/** Runs one mismatch for `windowMs`; returns "" or what went wrong (with the logs). */
async function mismatch(
  m: Mismatch,
  client: Impl,
  server: Impl,
  windowMs: number,
): Promise<string> {
  const target = EchoTarget.tcp();
  const procs: Proc[] = [];
  const problems: string[] = [];
  try {
    const { s, c, sp, cp } = await startEnds(procs, client, server, target.address, {
      common: ["-key", "mismatch-key", "-keepalive", "2"],
      server: m.server,
      client: m.client,
    });
    const ours = client === "ts" ? c : s;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: cp });
    await conn.write(seededBytes(3, 4096));
    const quiet = listenQuietly(conn, windowMs);
    // Our end's line: the session's close with a hint, or the crypt report.
    const want = client === "ts" ? `session 127.0.0.1:${sp}: ` : m.serverSays;
    let line = "";
    try {
      await ours.waitFor(want, windowMs);
      line = ours.output().split("\n").find((l) => l.includes(want)) ?? "";
    } catch {
      problems.push(`our ${ours === c ? "client" : "server"} never logged ${JSON.stringify(want)}`);
    }
    if (line && !line.includes(m.names)) {
      problems.push(`the line does not name ${m.names}: ${line}`);
    }
    const q = await quiet;
    if (q.bytes > 0) problems.push(`${q.bytes} bytes came back through the tunnel`);
    if (target.accepted > 0) problems.push(`the target was dialled ${target.accepted} times`);
    for (const p of procs) if (p.exited) problems.push(`${p.label} exited`);
    if (problems.length === 0) console.log(`  ${m.kind}: ${line.slice(20)}`);
  } catch (e) {
    problems.push((e as Error).message);
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await target.close();
  }
  if (problems.length === 0) return "";
  return `${m.kind}: ${problems.join("; ")}\n${procs.map((p) => p.tail(25)).join("\n")}`;
}

for (const m of MISMATCHES) {
  Deno.test({
    name: `live mismatch go→ts ${m.kind}: no data through, our server names ${m.names}`,
    ignore: missing("kcptun"),
    fn: async () => {
      const problem = await mismatch(m, "go", "ts", 3000);
      assert(problem === "", problem);
    },
  });
}

Deno.test({
  name: "live mismatch ts→go key, crypt, nocomp ×2, smuxver (at once): no data through, " +
    "our client names the setting",
  ignore: missing("kcptun"),
  fn: async () => {
    // A wrong key or method is only noticed by smux's 30 s keepalive timeout.
    const problems = await Promise.all(MISMATCHES.map((m) => mismatch(m, "ts", "go", 40000)));
    const failed = problems.filter((p) => p !== "");
    assert(failed.length === 0, failed.join("\n\n"));
  },
});
