/**
 * `-metrics` through the real programs (`deno run -A cli/client.ts` / `cli/server.ts` as
 * subprocesses): Prometheus scrapes over HTTP of a pair carrying load, parsed with the strict
 * exposition parser; the counters of a quiet pair against the SNMP dump of `SIGUSR2`; `/healthz`;
 * a bad address and a taken port stop the start with one line.
 */

import { SNMP_METRICS } from "../../cli/metrics.ts";
import { SNMP_STRUCT_FIELDS } from "../../pipeline/snmp.ts";
import { assert, assertEquals } from "../support/assert.ts";
import {
  type ExpositionFormat,
  type ParsedFamily,
  parseExposition,
  samplesOf,
  valueOf,
} from "../support/exposition.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import {
  echoTransfer,
  exitWithin,
  listeningPort,
  type Proc,
  spawnClient,
  spawnServer,
  waitFor,
} from "./harness.ts";

const ACCEPT: Record<ExpositionFormat, string> = {
  // What Prometheus 2.x sends.
  openmetrics:
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
  prometheus: "text/plain;version=0.0.4",
};

/** The endpoint's base URL from the end's log line. */
async function metricsBase(p: Proc): Promise<string> {
  const m = await waitFor(p.output, /metrics: serving (http:\/\/[^ ]+)\/metrics and \/healthz\n/);
  return m.match(/http:\/\/[^ /]+/)![0];
}

/** One scrape, parsed strictly in the format it says it is. */
async function scrape(
  base: string,
  format: ExpositionFormat,
): Promise<Map<string, ParsedFamily>> {
  const r = await fetch(`${base}/metrics`, { headers: { accept: ACCEPT[format] } });
  assertEquals(r.status, 200);
  const type = r.headers.get("content-type") ?? "";
  assert(
    format === "openmetrics"
      ? type.startsWith("application/openmetrics-text; version=1.0.0")
      : type.startsWith("text/plain; version=0.0.4"),
    type,
  );
  return parseExposition(await r.text(), format);
}

/** The SNMP counters of a scrape, by SNMP field name. */
function snmpOf(families: Map<string, ParsedFamily>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of SNMP_METRICS) {
    out[m.field] = valueOf(families, m.type === "counter" ? m.name + "_total" : m.name);
  }
  return out;
}

const DUMP = /KCP SNMP:&\{([^}]*)\}/g;

/** The fields of the `n`th `KCP SNMP:&{…}` line of `text` (from 1), or null. */
function dump(text: string, n: number): Record<string, number> | null {
  const all = [...text.matchAll(DUMP)];
  if (all.length < n) return null;
  const out: Record<string, number> = {};
  for (const kv of all[n - 1][1].split(" ")) {
    const [k, v] = kv.split(":");
    out[k] = Number(v);
  }
  return out;
}

/**
 * A scrape, then `SIGUSR2`, then a scrape again, until the two scrapes agree (nothing moved: no
 * keepalive in between); returns the agreeing scrape and the dump taken between.
 */
async function quietScrapeAndDump(
  p: Proc,
  base: string,
  format: ExpositionFormat,
): Promise<[Record<string, number>, Record<string, number>]> {
  let dumps = [...p.output().matchAll(DUMP)].length;
  for (let attempt = 0; attempt < 10; attempt++) {
    const before = snmpOf(await scrape(base, format));
    p.signal("SIGUSR2");
    dumps++;
    await waitFor(() => dump(p.output(), dumps) ? "dumped" : "", "dumped", 5000, p.output());
    const after = snmpOf(await scrape(base, format));
    if (JSON.stringify(before) === JSON.stringify(after)) return [after, dump(p.output(), dumps)!];
    await sleep(200);
  }
  throw new Error("the counters never held still for a scrape, a dump and a scrape");
}

Deno.test("e2e (subprocess): -metrics scrapes of a loaded pair parse strictly; a quiet pair's counters match SIGUSR2's dump", async () => {
  const echo = startEchoServer();
  const sport = freePort();
  const procs: Proc[] = [];
  const held: Deno.Conn[] = [];
  try {
    const server = spawnServer([
      "-l",
      `127.0.0.1:${sport}`,
      "-t",
      `127.0.0.1:${echo.port}`,
      "-metrics",
      "127.0.0.1:0",
      "-quiet",
    ]);
    procs.push(server);
    const client = spawnClient([
      "-l",
      "127.0.0.1:0",
      "-r",
      `127.0.0.1:${sport}`,
      "-conn",
      "2",
      "-metrics",
      "127.0.0.1:0",
      "-quiet",
    ]);
    procs.push(client);
    const [serverBase, clientBase] = [await metricsBase(server), await metricsBase(client)];
    const port = await listeningPort(client, 15000);

    const health = await fetch(`${clientBase}/healthz`);
    assertEquals([health.status, await health.text()], [200, "ok\n"]);

    // Three streams held open (echoed once, so both ends have them), then load beside them.
    for (let i = 0; i < 3; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      held.push(c);
      await c.write(new Uint8Array([i]));
      const b = new Uint8Array(1);
      assertEquals(await c.read(b), 1);
    }
    const load = echoTransfer({ port }, { streams: 4, bytes: 4 << 20, timeoutMs: 60000 });
    const scrapes: Array<[string, ExpositionFormat, Map<string, ParsedFamily>]> = [];
    let loading = true;
    load.finally(() => loading = false);
    // Scrape both ends in both formats while the bytes flow.
    while (loading || scrapes.length < 4) {
      for (
        const [base, format] of [[clientBase, "openmetrics"], [serverBase, "prometheus"], [
          clientBase,
          "prometheus",
        ], [serverBase, "openmetrics"]] as const
      ) {
        scrapes.push([base, format, await scrape(base, format)]);
      }
      await sleep(50);
    }
    const echoed = await load;
    assertEquals(echoed, 4 * (4 << 20));
    // A scrape during the load sees the held streams and some of the load's.
    const busiest = Math.max(...scrapes.map(([, , f]) => valueOf(f, "kcptun_streams")));
    assert(busiest >= 4, `at most ${busiest} streams seen during the load`);

    const c = await scrape(clientBase, "openmetrics");
    const s = await scrape(serverBase, "prometheus");
    assertEquals(valueOf(c, "kcptun_streams"), 3);
    assertEquals(valueOf(s, "kcptun_streams"), 3);
    assertEquals(valueOf(c, "kcptun_sessions"), 2);
    assertEquals(valueOf(s, "kcptun_sessions"), 2);
    assertEquals(valueOf(c, "kcptun_active_opens_total"), 2);
    assertEquals(valueOf(s, "kcptun_passive_opens_total"), 2);
    // One series per session: the client's two sockets (bound to every interface, so compared
    // by port) are the server's two remotes.
    const clientSessions = samplesOf(c).filter((x) => x.name === "kcptun_session_streams");
    const serverSessions = samplesOf(s).filter((x) => x.name === "kcptun_session_streams");
    assertEquals(clientSessions.length, 2);
    assertEquals(serverSessions.length, 2);
    for (const x of clientSessions) assertEquals(x.labels.remote, `127.0.0.1:${sport}`);
    const portOf = (a: string) => a.slice(a.lastIndexOf(":") + 1);
    assertEquals(
      clientSessions.map((x) => portOf(x.labels.local)).sort(),
      serverSessions.map((x) => portOf(x.labels.remote)).sort(),
    );
    assertEquals(clientSessions.reduce((a, x) => a + x.value, 0), 3);
    for (const x of serverSessions) {
      const labels = { remote: x.labels.remote };
      assertEquals(valueOf(s, "kcptun_session_send_window_segments", labels), 1024);
      assertEquals(valueOf(s, "kcptun_session_receive_window_segments", labels), 1024);
      assert(valueOf(s, "kcptun_session_rto_seconds", labels) > 0);
    }
    // The per-session counters add up to the end's (sessions never closed here).
    for (const [f, field] of [[c, "RetransSegs"], [s, "RetransSegs"]] as const) {
      const per = samplesOf(f).filter((x) =>
        x.name === "kcptun_session_retransmitted_segments_total"
      );
      assertEquals(per.reduce((a, x) => a + x.value, 0), snmpOf(f)[field]);
    }
    for (const f of [c, s]) {
      const per = samplesOf(f).filter((x) =>
        x.name === "kcptun_session_fec_recovered_shards_total"
      );
      assertEquals(per.reduce((a, x) => a + x.value, 0), snmpOf(f).FECRecovered);
      assert(valueOf(f, "process_resident_memory_bytes") > 10 << 20, "RSS under 10 MiB");
      assert(valueOf(f, "process_cpu_seconds_total") > 0, "no CPU time");
    }
    assertEquals(valueOf(c, "kcptun_build_info", { role: "client" }), 1);
    assertEquals(valueOf(s, "kcptun_build_info", { role: "server" }), 1);

    // Quiet now: the counters of a scrape are the dump's, field by field.
    for (const c of held) c.close();
    held.length = 0;
    await sleep(300);
    for (
      const [p, base, format] of [[client, clientBase, "openmetrics"], [
        server,
        serverBase,
        "prometheus",
      ]] as const
    ) {
      const [scraped, dumped] = await quietScrapeAndDump(p, base, format);
      assertEquals(Object.keys(dumped), [...SNMP_STRUCT_FIELDS]);
      assertEquals(scraped, Object.fromEntries(SNMP_STRUCT_FIELDS.map((f) => [f, dumped[f]])));
      assert(dumped.BytesSent >= 4 * (4 << 20), `BytesSent ${dumped.BytesSent}`);
    }

    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
    // Gone with the process.
    await fetch(`${serverBase}/healthz`).then(
      () => assert(false, "/healthz answers after exit"),
      () => {},
    );
  } finally {
    for (const c of held) c.close();
    for (const p of procs) await p.kill();
    await echo.close();
  }
});

Deno.test("e2e (subprocess): a bad -metrics address or a taken port ends the start with one line", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const cases: Array<[Proc, string]> = [
      [
        spawnClient(["-l", "127.0.0.1:0", "-r", "127.0.0.1:9", "-metrics", ":9101"]),
        'invalid -metrics ":9101": no host: give the address to serve on, e.g. 127.0.0.1:9101 (0.0.0.0:9101 for every interface)\n',
      ],
      [
        spawnServer(["-l", "127.0.0.1:0", "-t", "127.0.0.1:9", "-metrics", `127.0.0.1:${port}`]),
        `-metrics 127.0.0.1:${port}: address already in use\n`,
      ],
      [
        spawnClient(["-l", "127.0.0.1:0", "-r", "127.0.0.1:9", "-metrics", `127.0.0.1:${port}`]),
        `-metrics 127.0.0.1:${port}: address already in use\n`,
      ],
    ];
    for (const [p, line] of cases) {
      assertEquals((await exitWithin(p, 20000)).code, 1, p.output());
      assertEquals(p.output(), line);
    }
  } finally {
    taken.close();
  }
});
