/**
 * `-metrics` in process: the exposition text in both formats through a strict parser (names,
 * types, escaping, limits, every SNMP field), format negotiation, the address check, and the HTTP
 * endpoint's answers. The scrape of a running pair is in tests/e2e/metrics_test.ts.
 */

import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import {
  METRICS_CONTENT_TYPES,
  METRICS_SESSION_LIMIT,
  type MetricsSession,
  negotiateFormat,
  parseMetricsAddress,
  readProcessFigures,
  renderMetrics,
  serveMetrics,
  SNMP_METRICS,
} from "../../cli/metrics.ts";
import { Snmp, SNMP_STRUCT_FIELDS } from "../../pipeline/snmp.ts";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  ExpositionError,
  type ExpositionFormat,
  parseExposition,
  samplesOf,
  valueOf,
} from "../support/exposition.ts";

const FORMATS: ExpositionFormat[] = ["openmetrics", "prometheus"];

function session(remote: string, streams: number, n = 0, local = "127.0.0.1:4000"): MetricsSession {
  return {
    remote,
    local,
    streamCount: streams,
    connection: {
      fecRecovered: 5 + n,
      kcp: {
        srtt: 41,
        rttvar: 7,
        rto: 250,
        cwnd: 32,
        sndWnd: 1024,
        rcvWnd: 1024,
        rmtWnd: 900,
        sndQueueCount: 3,
        sndBufCount: 12,
        rcvQueueCount: 1,
        reorderCount: 2,
        retransmits: 9 + n,
      },
      smux: { queuedSendBytes: 4096, bufferedBytes: 100 },
    },
  };
}

function countersWithDistinctValues(): Snmp {
  const snmp = new Snmp();
  SNMP_STRUCT_FIELDS.forEach((f, i) => snmp[f] = 1000 + i);
  return snmp;
}

Deno.test("metrics: every SNMP field once, counters as _total, values as in the counters", () => {
  assertEquals(SNMP_METRICS.map((m) => m.field).sort(), [...SNMP_STRUCT_FIELDS].sort());
  assertEquals(new Set(SNMP_METRICS.map((m) => m.name)).size, SNMP_METRICS.length);
  const snmp = countersWithDistinctValues();
  for (const format of FORMATS) {
    const text = renderMetrics({ role: "client", snmp, sessions: () => [] }, format);
    const families = parseExposition(text, format);
    for (const m of SNMP_METRICS) {
      const sample = m.type === "counter" ? m.name + "_total" : m.name;
      assert(/^kcptun_[a-z_]+$/.test(m.name), m.name);
      assertEquals(valueOf(families, sample), snmp[m.field], `${format} ${sample}`);
      const family = families.get(format === "openmetrics" ? m.name : sample)!;
      assertEquals(family.type, m.type);
      assert(family.help!.startsWith(`SNMP ${m.field}: `), family.help);
    }
    // Only the two that go down or are maxima are gauges.
    assertEquals(
      SNMP_METRICS.filter((m) => m.type === "gauge").map((m) => m.field).sort(),
      ["CurrEstab", "MaxConn"],
    );
    assertEquals(valueOf(families, "kcptun_streams"), 0);
    assertEquals(valueOf(families, "kcptun_build_info", { role: "client" }), 1);
    const build = samplesOf(families).find((s) => s.name === "kcptun_build_info")!;
    assertEquals(build.labels.deno, Deno.version.deno);
    assert(/^\d+\.\d+\.\d+/.test(build.labels.version), build.labels.version);
  }
});

Deno.test("metrics: docs/cli.md names every SNMP metric", () => {
  const doc = Deno.readTextFileSync(new URL("../../docs/cli.md", import.meta.url));
  for (const m of SNMP_METRICS) {
    const sample = m.type === "counter" ? m.name + "_total" : m.name;
    assert(doc.includes(`| ${m.field.padEnd(16)} | \`${sample}\``), `${m.field} ${sample}`);
  }
});

Deno.test("metrics: per-session series with escaped labels, both formats parse strictly", () => {
  const snmp = new Snmp();
  const odd = 'a"b\\c\nd';
  const sessions = [session("127.0.0.1:5001", 2), session("[::1]:5002", 1, 1), session(odd, 0, 2)];
  for (const format of FORMATS) {
    const text = renderMetrics({ role: "server", snmp, sessions: () => sessions }, format);
    assert(text.includes('remote="a\\"b\\\\c\\nd"'), "label value escaped");
    const families = parseExposition(text, format);
    assertEquals(valueOf(families, "kcptun_streams"), 3);
    assertEquals(valueOf(families, "kcptun_sessions_unlisted"), 0);
    const one = { remote: "[::1]:5002", local: "127.0.0.1:4000" };
    assertEquals(valueOf(families, "kcptun_session_streams", one), 1);
    assertEquals(valueOf(families, "kcptun_session_srtt_seconds", one), 0.041);
    assertEquals(valueOf(families, "kcptun_session_rto_seconds", one), 0.25);
    assertEquals(valueOf(families, "kcptun_session_cwnd_segments", one), 32);
    assertEquals(valueOf(families, "kcptun_session_remote_window_segments", one), 900);
    assertEquals(valueOf(families, "kcptun_session_send_queue_segments", one), 3);
    assertEquals(valueOf(families, "kcptun_session_in_flight_segments", one), 12);
    assertEquals(valueOf(families, "kcptun_session_smux_send_queue_bytes", one), 4096);
    assertEquals(valueOf(families, "kcptun_session_retransmitted_segments_total", one), 10);
    assertEquals(valueOf(families, "kcptun_session_fec_recovered_shards_total", one), 6);
    assertEquals(valueOf(families, "kcptun_session_streams", { remote: odd }), 0);
    const perSession = samplesOf(families).filter((s) => s.name === "kcptun_session_streams");
    assertEquals(perSession.length, 3);
    // Units: OpenMetrics says them, and every name with a unit ends with it either way.
    if (format === "openmetrics") {
      assertEquals(families.get("kcptun_session_srtt_seconds")!.unit, "seconds");
      assertEquals(families.get("kcptun_sent_bytes")!.unit, "bytes");
      assert(text.endsWith("# EOF\n"));
    } else {
      assert(!text.includes("# EOF") && !text.includes("# UNIT"));
    }
  }
});

Deno.test("metrics: per-session series are bounded; the busiest sessions are itemized", () => {
  const sessions: MetricsSession[] = [];
  for (let i = 0; i < METRICS_SESSION_LIMIT + 36; i++) {
    sessions.push(session(`10.0.0.${i % 250}:${1000 + i}`, i === 80 ? 50 : i % 3));
  }
  const text = renderMetrics(
    { role: "server", snmp: new Snmp(), sessions: () => sessions },
    "openmetrics",
  );
  const families = parseExposition(text, "openmetrics");
  const items = samplesOf(families).filter((s) => s.name === "kcptun_session_streams");
  assertEquals(items.length, METRICS_SESSION_LIMIT);
  assertEquals(valueOf(families, "kcptun_sessions_unlisted"), 36);
  assertEquals(items[0].labels.remote, "10.0.0.80:1080");
  assert(items.every((s) => s.value >= 1), "a session with no stream itemized before busier ones");
  assertEquals(
    valueOf(families, "kcptun_streams"),
    sessions.reduce((a, s) => a + s.streamCount, 0),
  );
});

Deno.test("metrics: process figures from /proc/self", () => {
  const p = readProcessFigures();
  assert(p !== null, "cannot read /proc/self");
  assert(p.residentBytes > 1 << 20 && p.residentBytes < 16 * 2 ** 30, String(p.residentBytes));
  assert(p.virtualBytes >= p.residentBytes, "virtual below resident");
  assert(p.cpuSeconds > 0, "no CPU time");
  const now = Date.now() / 1000;
  assert(p.startTimeSeconds !== null && p.startTimeSeconds <= now + 1, "start in the future");
  assert(p.startTimeSeconds! > now - 3600, "started more than an hour ago");
  assert(p.openFds !== null && p.openFds >= 3, String(p.openFds));
  const families = parseExposition(
    renderMetrics({ role: "client", snmp: new Snmp(), sessions: () => [] }, "openmetrics"),
    "openmetrics",
  );
  assert(valueOf(families, "process_cpu_seconds_total") >= p.cpuSeconds);
  assert(valueOf(families, "process_resident_memory_bytes") > 0);
  assertEquals(families.get("process_cpu_seconds")!.unit, "seconds");
});

Deno.test("metrics: the strict parser refuses what a scraper would", () => {
  const bad: Array<[ExpositionFormat, string, RegExp]> = [
    ["prometheus", "# TYPE a counter\na 1\n", /does not end in _total/],
    ["openmetrics", "# TYPE a_total counter\na_total 1\n# EOF\n", /ends in _total/],
    ["openmetrics", "# TYPE a counter\na 1\n# EOF\n", /expected a_total/],
    ["openmetrics", "# TYPE a gauge\na 1\n", /no # EOF/],
    ["prometheus", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", /expected b/],
    ["prometheus", "# TYPE a gauge\na 1\n# TYPE b gauge\n# HELP a x\n", /interleaved/],
    ["prometheus", "# TYPE a gauge\n# TYPE a gauge\n", /second TYPE/],
    ["prometheus", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n', /duplicate series/],
    ["prometheus", '# TYPE a gauge\na{x="\\t"} 1\n', /bad escape/],
    ["prometheus", '# TYPE a gauge\na{x-y="1"} 1\n', /bad label name/],
    ["prometheus", '# TYPE a gauge\na{__x="1"} 1\n', /bad label name/],
    ["prometheus", '# TYPE a gauge\na{x="1",} 1\n', /trailing ','/],
    ["prometheus", '# TYPE a gauge\na{x="1",x="2"} 1\n', /twice/],
    ["prometheus", "# TYPE a gauge\na 1 1700000000\n", /timestamp/],
    ["prometheus", "# TYPE a gauge\na  1\n", /extra text/],
    ["prometheus", "# TYPE a gauge\na one\n", /bad value/],
    ["prometheus", "a 1\n", /outside a typed family/],
    ["prometheus", "# TYPE 1a gauge\n", /bad name/],
    ["prometheus", "# TYPE a_total counter\na_total -1\n", /counter a_total is -1/],
    ["openmetrics", "# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n", /not the suffix/],
    ["prometheus", "# TYPE a gauge\n\na 1\n", /empty line/],
    ["prometheus", "# TYPE a gauge\na 1", /newline/],
    ["prometheus", "# a comment\n", /unexpected comment/],
    ["openmetrics", "# TYPE a gauge\n# EOF\n# TYPE b gauge\n", /after # EOF/],
  ];
  for (const [format, text, why] of bad) {
    const e = assertThrows(() => parseExposition(text, format), ExpositionError);
    assert(why.test(e.message), `${JSON.stringify(text)}: ${e.message}`);
  }
  const ok = parseExposition(
    '# HELP a_total x \\\\ y\n# TYPE a_total counter\na_total{l="\\"q\\"\\n"} 1.5e3\n',
    "prometheus",
  );
  assertEquals(valueOf(ok, "a_total", { l: '"q"\n' }), 1500);
  assertEquals(ok.get("a_total")!.help, "x \\ y");
});

Deno.test("metrics: OpenMetrics when the scraper prefers it (Prometheus does), else 0.0.4", () => {
  const prometheus =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  assertEquals(negotiateFormat(prometheus), "openmetrics");
  assertEquals(negotiateFormat(null), "prometheus");
  assertEquals(negotiateFormat("*/*"), "prometheus");
  assertEquals(negotiateFormat("text/plain;version=0.0.4"), "prometheus");
  assertEquals(
    negotiateFormat("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
    "prometheus",
  );
  assertEquals(negotiateFormat("application/openmetrics-text;q=0"), "prometheus");
  assertEquals(negotiateFormat("Application/OpenMetrics-Text"), "openmetrics");
});

Deno.test("metrics: -metrics takes host:port with a host; one line naming -metrics otherwise", () => {
  assertEquals(parseMetricsAddress("127.0.0.1:9101"), { host: "127.0.0.1", port: 9101 });
  assertEquals(parseMetricsAddress("[::1]:0"), { host: "::1", port: 0 });
  assertEquals(parseMetricsAddress("localhost:9101"), { host: "localhost", port: 9101 });
  const refused: Array<[string, string]> = [
    [":9101", 'invalid -metrics ":9101": no host: give the address to serve on'],
    ["9101", 'invalid -metrics "9101": missing port in address'],
    ["127.0.0.1:99999", 'invalid -metrics "127.0.0.1:99999": port 99999 is out of range'],
    ["::1:9101", 'invalid -metrics "::1:9101": too many colons in address'],
    ["127.0.0.1:9101-9102", 'invalid -metrics "127.0.0.1:9101-9102": a port range'],
  ];
  for (const [value, message] of refused) {
    for (const parse of [parseClientConfig, parseServerConfig]) {
      const r = parse(["-metrics", value], {});
      assert(r.kind === "exit" && r.code === 1, value);
      assert(r.stderr.startsWith(message) && r.stderr.split("\n").length === 2, r.stderr);
    }
  }
  const json = parseServerConfig(["-c", "x.json"], {}, {
    readFile: () => '{"metrics": ":1"}',
  });
  assert(json.kind === "exit" && json.stderr.startsWith('invalid -metrics ":1" (from x.json)'));
  const ok = parseClientConfig(["-c", "x.json"], {}, {
    readFile: () => '{"metrics": "127.0.0.1:9101", "stats": 5}',
  });
  assert(ok.kind === "run");
  assertEquals([ok.config.metrics, ok.config.stats], ["127.0.0.1:9101", 5]);
  const off = parseClientConfig([], {});
  assert(off.kind === "run");
  assertEquals([off.config.metrics, off.config.stats], ["", 0]);
  const negative = parseClientConfig(["-stats", "-1"], {});
  assert(negative.kind === "exit" && negative.code === 1);
  assertEquals(negative.stderr, "invalid stats -1: must be 0 (off) or a number of seconds\n");
});

Deno.test("metrics: the endpoint answers /metrics in the asked format, /healthz, 404, 405", async () => {
  const snmp = countersWithDistinctValues();
  const server = serveMetrics({ host: "127.0.0.1", port: 0 }, {
    role: "client",
    snmp,
    sessions: () => [session("127.0.0.1:29900", 1)],
  });
  try {
    const base = `http://${server.address}`;
    assert(/^127\.0\.0\.1:\d+$/.test(server.address), server.address);
    for (
      const [accept, format] of [["*/*", "prometheus"], [
        "application/openmetrics-text; version=1.0.0",
        "openmetrics",
      ]] as const
    ) {
      const r = await fetch(`${base}/metrics`, { headers: { accept } });
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-type"), METRICS_CONTENT_TYPES[format]);
      const families = parseExposition(await r.text(), format);
      assertEquals(valueOf(families, "kcptun_in_datagrams_total"), snmp.InPkts);
    }
    const health = await fetch(`${base}/healthz`);
    assertEquals([health.status, await health.text()], [200, "ok\n"]);
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    assertEquals([head.status, await head.text()], [200, ""]);
    const missing = await fetch(`${base}/`);
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    assertEquals([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);
    await post.body?.cancel();

    // A second endpoint on the same port: one line naming -metrics and the address.
    const e = assertThrows(() =>
      serveMetrics(parseMetricsAddress(server.address), {
        role: "client",
        snmp,
        sessions: () => [],
      }, server.address)
    );
    assertEquals(e.message, `-metrics ${server.address}: address already in use`);
  } finally {
    await server.close();
  }
  // Closed: nothing answers any more.
  await fetch(`http://${server.address}/healthz`).then(
    () => assert(false, "still answering after close"),
    () => {},
  );
});
