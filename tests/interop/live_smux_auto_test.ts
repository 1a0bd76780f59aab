/**
 * Live: one server of ours with `-smuxver 0` serves clients of both smux versions at once: Go's
 * client with `-smuxver 1`, Go's client with `-smuxver 2`, and our client with `-smuxver 2`, each
 * moving data both ways through four streams, all at the same time. Each session answers in its
 * client's version (a wrong version byte would make Go's smux close the session at once).
 */

import { assert, assertEquals } from "../support/assert.ts";
import { missing } from "../support/requires.ts";
import {
  describeFailures,
  echoStreams,
  EchoTarget,
  freePort,
  type Impl,
  KEY,
  type Proc,
  startClient,
  startServer,
  waitUdpBound,
} from "./harness.ts";

const CLIENTS: { impl: Impl; smuxver: number }[] = [
  { impl: "go", smuxver: 1 },
  { impl: "go", smuxver: 2 },
  { impl: "ts", smuxver: 2 },
];

Deno.test({
  name: "live one server with -smuxver 0: Go clients v1 and v2 and ours v2 at once",
  ignore: missing("kcptun"),
  fn: async () => {
    const target = EchoTarget.tcp();
    const sp = freePort();
    const procs: Proc[] = [];
    const tails = () => procs.map((p) => p.tail()).join("\n");
    try {
      const server = startServer("ts", [
        "-l",
        `127.0.0.1:${sp}`,
        "-t",
        target.address,
        "-key",
        KEY,
        "-smuxver",
        "0",
      ]);
      procs.push(server);
      await waitUdpBound(server, sp);
      const ports = CLIENTS.map(() => freePort());
      const clients = CLIENTS.map((c, i) =>
        startClient(
          c.impl,
          [
            "-l",
            `127.0.0.1:${ports[i]}`,
            "-r",
            `127.0.0.1:${sp}`,
            "-key",
            KEY,
            "-smuxver",
            String(c.smuxver),
          ],
          `${c.impl} client v${c.smuxver}`,
        )
      );
      procs.push(...clients);
      for (const c of clients) await c.waitFor("listening on:");
      const reports = await Promise.all(
        ports.map((port, i) =>
          echoStreams({ port }, {
            streams: 4,
            bytes: 512 * 1024,
            seed: 7000 + 100 * i,
            timeoutMs: 90000,
          })
        ),
      );
      for (const [i, r] of reports.entries()) {
        const failed = describeFailures(r);
        assert(failed === "", `${clients[i].label}:\n${failed}\n${tails()}`);
      }
      assert(
        server.output().includes("smux version: 0 (each session answers in its client's version)"),
        `no startup line for -smuxver 0\n${server.tail()}`,
      );
      // One session per client, each logged with the version its client speaks.
      const versions = new Map(
        [...server.output().matchAll(/smux version: (\d) on connection: \S+ -> (\S+)/g)]
          .map((m) => [m[2], Number(m[1])]),
      );
      assertEquals(versions.size, 3, `sessions: ${[...versions].join(", ")}\n${tails()}`);
      assertEquals([...versions.values()].sort(), [1, 2, 2]);
      assert(!/ session \S+: /.test(server.output()), `a session failed\n${server.tail()}`);
      for (const p of procs) assert(!p.exited, `${p.label} exited\n${p.tail()}`);
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop()));
      await target.close();
    }
  },
});
