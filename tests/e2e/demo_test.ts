/** `deno task demo` (cli/demo.ts) and its lossy link. */

import { assert, assertEquals } from "../support/assert.ts";
import { LossyLink, seededRandom } from "../../cli/demo/lossy_link.ts";
import { DEMO_DEFAULTS, parseDemoArgs } from "../../cli/demo.ts";
import { exitWithin, spawnDeno } from "./harness.ts";

Deno.test("e2e (subprocess): the demo runs, prints a summary and exits 0", async () => {
  const demo = spawnDeno("cli/demo.ts", ["--duration", "2", "--streams", "3"]);
  try {
    const status = await exitWithin(demo, 30000);
    const out = demo.stdout();
    assertEquals(status.code, 0, demo.output());
    assert(out.includes("server: deno run -A cli/server.ts -l 127.0.0.1:"), out);
    assert(out.includes("client: deno run -A cli/client.ts -l 127.0.0.1:"), out);
    // Not a terminal: one status line per second instead of a line refreshed in place.
    assert(/^ +time │ throughput │ +echoed │ +srtt │ retrans │ +FEC │ link drops$/m.test(out), out);
    assert(
      /^ +\d+\.\d s │ +\d+\.\d\d MB\/s │ +\d+\.\d MB │ +\d+ ms │ +\d+ │ +\d+ │ \d+\/\d+$/m.test(
        out,
      ),
      out,
    );
    const m = out.match(
      /^summary: (\d+\.\d) s, (\d+\.\d) MB echoed through the tunnel \(.* each way\), 3\/3 streams intact \(sha256\)$/m,
    );
    assert(m !== null, out);
    assert(Number(m[2]) > 0, out);
    assert(/^ {2}link: 2% loss and 20 ms each way: \d+ of \d+ datagrams dropped$/m.test(out), out);
    assert(/^ {2}kcp: {2}srtt \d+ ms, \d+ segments retransmitted/m.test(out), out);
    assertEquals(demo.stderr(), "");
  } finally {
    await demo.kill();
  }
});

Deno.test("e2e (subprocess): the demo refuses a bad option with usage and exit code 2", async () => {
  const demo = spawnDeno("cli/demo.ts", ["--loss", "abc"]);
  try {
    assertEquals((await exitWithin(demo, 20000)).code, 2);
    assert(demo.stderr().startsWith("demo: --loss abc: expected a number"), demo.stderr());
  } finally {
    await demo.kill();
  }
});

Deno.test("demo options: defaults, values, errors", () => {
  assertEquals(parseDemoArgs([]), DEMO_DEFAULTS);
  assertEquals(parseDemoArgs(["--help"]), "help");
  const o = parseDemoArgs(["--duration=3", "--loss", "5", "--delay", "0", "--mode", "fast3"]);
  assert(typeof o === "object", String(o));
  assertEquals([o.duration, o.lossPercent, o.delayMs, o.mode], [3, 5, 0, "fast3"]);
  assert(typeof parseDemoArgs(["--mode", "turbo"]) === "string");
  assert(typeof parseDemoArgs(["--loss", "95"]) === "string");
  assert(typeof parseDemoArgs(["--nope"]) === "string");
});

Deno.test("lossy link: seeded loss is repeatable and near the rate; delay is applied", async () => {
  const a = seededRandom(7), b = seededRandom(7);
  let drops = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a();
    assertEquals(x, b());
    if (x < 0.1) drops++;
  }
  assert(drops > 900 && drops < 1100, `drops ${drops}`);

  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const link = new LossyLink({
    targetHostname: "127.0.0.1",
    targetPort: (server.addr as Deno.NetAddr).port,
    delayMs: 60,
  });
  try {
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: link.port };
    const t0 = performance.now();
    await client.send(new Uint8Array([1, 2, 3]), to);
    const [got, from] = await server.receive();
    const up = performance.now() - t0;
    assertEquals([...got], [1, 2, 3]);
    assert(up >= 55, `arrived after ${up} ms`);
    // The reply goes back through the same upstream socket to the client.
    await server.send(new Uint8Array([4]), from);
    const [back] = await client.receive();
    assertEquals([...back], [4]);
    assert(performance.now() - t0 >= 115, "delayed both ways");
    assertEquals([link.up.packets, link.down.packets, link.clients], [1, 1, 1]);
  } finally {
    await link.close();
    server.close();
    client.close();
  }
});
