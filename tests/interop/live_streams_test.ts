/**
 * Live behaviours around streams and sessions, against Go kcptun:
 * - two Go clients on one server of ours, both moving data at once;
 * - the target refusing a connection: only that stream closes, the session and its other
 *   streams keep working (our client with Go's server, Go's client with our server).
 */

import { assert } from "../support/assert.ts";
import { freePort, readExactly, writeAll } from "../support/net.ts";
import { missing } from "../support/requires.ts";
import {
  describeFailures,
  echoStreams,
  EchoTarget,
  type Impl,
  KEY,
  type Proc,
  seededBytes,
  startClient,
  startServer,
  waitUdpBound,
} from "./harness.ts";
import { echoOnce, listenQuietly } from "./live.ts";

Deno.test({
  name: "live two Go clients on one server of ours, 4 MiB each at once",
  ignore: missing("kcptun"),
  fn: async () => {
    const target = EchoTarget.tcp();
    const sp = freePort();
    const procs: Proc[] = [];
    try {
      const server = startServer("ts", [
        "-l",
        `127.0.0.1:${sp}`,
        "-t",
        target.address,
        "-key",
        KEY,
      ]);
      procs.push(server);
      await waitUdpBound(server, sp);
      const ports = [freePort(), freePort()];
      const clients = ports.map((p, i) =>
        startClient(
          "go",
          ["-l", `127.0.0.1:${p}`, "-r", `127.0.0.1:${sp}`, "-key", KEY],
          `go client ${i + 1}`,
        )
      );
      procs.push(...clients);
      for (const c of clients) await c.waitFor("listening on:");
      const reports = await Promise.all(
        ports.map((port, i) =>
          echoStreams({ port }, {
            streams: 8,
            bytes: 512 * 1024,
            seed: 5000 + 100 * i,
            timeoutMs: 60000,
          })
        ),
      );
      for (const [i, r] of reports.entries()) {
        const failed = describeFailures(r);
        assert(
          failed === "",
          `go client ${i + 1}:\n${failed}\n${procs.map((p) => p.tail()).join("\n")}`,
        );
      }
      const remotes = new Set(
        [...server.output().matchAll(/remote address: (\S+)/g)].map((m) => m[1]),
      );
      assert(remotes.size === 2, `our server saw sessions from ${[...remotes].join(", ")}`);
      assert(!server.exited, `our server exited\n${server.tail()}`);
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop()));
      await target.close();
    }
  },
});

async function targetRefuses(client: Impl, server: Impl): Promise<void> {
  const target = EchoTarget.tcp();
  const sp = freePort(), cp = freePort();
  const procs: Proc[] = [];
  const tails = () => procs.map((p) => p.tail()).join("\n");
  try {
    const s = startServer(server, ["-l", `127.0.0.1:${sp}`, "-t", target.address, "-key", KEY]);
    procs.push(s);
    await waitUdpBound(s, sp);
    const c = startClient(client, ["-l", `127.0.0.1:${cp}`, "-r", `127.0.0.1:${sp}`, "-key", KEY]);
    procs.push(c);
    await c.waitFor("listening on:");

    // A long-lived stream, working before and after the refusal.
    const kept = await Deno.connect({ hostname: "127.0.0.1", port: cp });
    const d1 = seededBytes(11, 65536);
    await writeAll(kept, d1);
    await readExactly(kept, d1.length);

    await target.stopListening();
    const refused = await Deno.connect({ hostname: "127.0.0.1", port: cp });
    await writeAll(refused, seededBytes(12, 1024));
    const r = await listenQuietly(refused, 10000);
    assert(r.ended !== null, "the refused stream was not closed within 10 s");
    assert(r.bytes === 0, `the refused stream got ${r.bytes} bytes`);

    target.listen();
    const d2 = seededBytes(13, 65536);
    await writeAll(kept, d2);
    const back = await readExactly(kept, d2.length);
    assert(back.every((b, i) => b === d2[i]), "the kept stream echoed wrong bytes");
    await echoOnce(cp, 65536, 14);
    kept.close();
    // Both kcptun and we log Go's wording.
    const why = `dial tcp ${target.address}: connect: connection refused`;
    assert(s.output().includes(why), `the server did not log ${JSON.stringify(why)}`);
    assert(
      s.count("remote address:") === 1,
      `the server saw ${s.count("remote address:")} sessions`,
    );
    assert(!s.exited && !c.exited, "a process exited");
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${tails()}`);
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await target.close();
  }
}

Deno.test({
  name: "live target refuses a connection ts→go: only that stream closes",
  ignore: missing("kcptun"),
  fn: () => targetRefuses("ts", "go"),
});

Deno.test({
  name: "live target refuses a connection go→ts: only that stream closes",
  ignore: missing("kcptun"),
  fn: () => targetRefuses("go", "ts"),
});
