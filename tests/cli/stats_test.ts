/**
 * The figures shared by `-stats` and the demo's status line (cli/stats.ts): samples, intervals,
 * the line, and the reporter's timer. `-stats` through the CLI is in tests/e2e/stats_test.ts.
 */

import { Snmp } from "../../pipeline/snmp.ts";
import {
  formatMegabytes,
  formatMs,
  formatRate,
  intervalFigures,
  meanSrtt,
  sampleEnd,
  statsLine,
  StatsReporter,
  type StatsSession,
} from "../../cli/stats.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { sleep } from "../support/net.ts";

const session = (streams: number, srtt: number): StatsSession => ({
  streamCount: streams,
  connection: { kcp: { srtt } },
});

Deno.test("stats: a sample, the interval between two, and the line", () => {
  const snmp = new Snmp();
  snmp.BytesSent = 1_000_000;
  snmp.RetransSegs = 5;
  const a = sampleEnd(snmp, [session(2, 40)], 10_000);
  snmp.BytesSent += 3_000_000;
  snmp.BytesReceived += 1_500_000;
  snmp.RetransSegs += 7;
  snmp.FECRecovered += 2;
  const b = sampleEnd(snmp, [session(2, 40), session(1, 61)], 12_000);
  assertEquals([b.sessions, b.streams, b.srttMs], [2, 3, 50.5]);
  const f = intervalFigures(a, b);
  assertEquals(f, {
    seconds: 2,
    sentBytes: 3_000_000,
    receivedBytes: 1_500_000,
    retransmits: 7,
    fecRecovered: 2,
    sessions: 2,
    streams: 3,
    srttMs: 50.5,
  });
  assertEquals(
    statsLine(f),
    "stats: sent 1.50 MB/s, received 0.75 MB/s, retrans 7, FEC 2 in 2.0 s; sessions 2, streams 3, srtt 51 ms",
  );
});

Deno.test("stats: the formatting the demo shares", () => {
  assertEquals(formatRate(2_345_678, 1), "2.35 MB/s");
  assertEquals(formatRate(1, 0), "-");
  assertEquals(formatMegabytes(10_449_999), "10.4 MB");
  assertEquals(formatMs(40.5), "41 ms");
  assertEquals(meanSrtt([]), 0);
});

Deno.test("stats: each line covers the interval since the one before", () => {
  const snmp = new Snmp();
  let now = 1000;
  const r = new StatsReporter({
    periodSeconds: 5,
    snmp,
    sessions: () => [session(1, 30)],
    log: () => {},
    clock: () => now,
  });
  r.start();
  r.stop();
  snmp.RetransSegs += 4;
  snmp.BytesReceived += 500_000;
  now += 5000;
  assertEquals(
    r.next(),
    "stats: sent 0.00 MB/s, received 0.10 MB/s, retrans 4, FEC 0 in 5.0 s; sessions 1, streams 1, srtt 30 ms",
  );
  snmp.RetransSegs += 3;
  now += 4000;
  assert(r.next().includes(", retrans 3, FEC 0 in 4.0 s; "));
});

Deno.test("stats: the reporter logs every period until stopped; 0 is off", async () => {
  const snmp = new Snmp();
  const lines: string[] = [];
  const r = new StatsReporter({
    periodSeconds: 0.05,
    snmp,
    sessions: () => [session(1, 30)],
    log: (l) => lines.push(l),
  });
  r.start();
  const deadline = performance.now() + 10_000;
  while (lines.length < 2 && performance.now() < deadline) await sleep(5);
  r.stop();
  const count = lines.length;
  assert(count >= 2, `${count} lines`);
  assert(lines.every((l) => l.startsWith("stats: sent ")), lines.join("\n"));
  await sleep(150);
  assertEquals(lines.length, count, "a line after stop");

  const off = new StatsReporter({
    periodSeconds: 0,
    snmp,
    sessions: () => [],
    log: (l) => lines.push(l),
  });
  off.start();
  await sleep(60);
  off.stop();
  assertEquals(lines.length, count, "-stats 0 logged");
});
