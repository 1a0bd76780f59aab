/** Tests of the goals run's parts: options, judging, the table, per-phase peak RSS. */

import { assert, assertEquals, assertThrows } from "../../tests/support/assert.ts";
import {
  formatGoalsTable,
  type GoalRow,
  goalRows,
  judge,
  type RoundValues,
  spread,
  summariseGoals,
  tally,
} from "./goals.ts";
import { badRelay, roundValues, setFlags, type SetResult } from "./goals_run.ts";
import { GOAL_DEFAULTS, parseBenchOptions } from "./options.ts";
import { peakRssMonitor, resetPeakRss, residentBytes } from "./proc_stats.ts";

function options(args: string[]) {
  const o = parseBenchOptions(args);
  assert(o !== "help");
  return o;
}

Deno.test("goals options: defaults are issue 12's, --quick shrinks them, flags set them", () => {
  const d = options(["--goals"]);
  assert(d.goals);
  assertEquals(d.goal, GOAL_DEFAULTS);
  assertEquals([d.runs, d.streams, d.seconds], [3, 100, 3]);
  assertEquals(
    [d.goal.coldPings, d.goal.warmPings, d.goal.shortConns, d.goal.shortParallel],
    [300, 5000, 10000, 100],
  );
  assertEquals([d.goal.badLoss, d.goal.badBurst, d.goal.badDelayMs], [0.1, 4, 50]);
  assertEquals(options([]).goals, false);

  const q = options(["--goals", "--quick"]);
  assertEquals([q.runs, q.goal.coldPings, q.goal.warmPings, q.goal.shortConns], [
    2,
    300,
    500,
    1000,
  ]);

  const s = options([
    "--goals",
    "--cold-pings",
    "100",
    "--warm-pings",
    "2000",
    "--idle-seconds",
    "0",
    "--after-seconds",
    "3",
    "--bad-pings",
    "50",
    "--bad-seconds",
    "30",
    "--bad-loss",
    "0.05",
    "--bad-burst",
    "2",
    "--bad-delay-ms",
    "25",
    "--short-conns",
    "500",
    "--short-parallel",
    "10",
    "--runs",
    "5",
    "--seed",
    "9",
  ]);
  assertEquals(s.goal, {
    coldPings: 100,
    warmPings: 2000,
    idleSeconds: 0,
    afterSeconds: 3,
    badPings: 50,
    badSeconds: 30,
    badLoss: 0.05,
    badBurst: 2,
    badDelayMs: 25,
    shortConns: 500,
    shortParallel: 10,
  });
  assertEquals(s.runs, 5);
  assertEquals(badRelay(s), { loss: 0.05, delayMs: 25, burst: 2, seed: 9 });
});

Deno.test("goals options: the per-case options and bad values are refused", () => {
  for (
    const extra of [
      ["--cases", "direct/default"],
      ["--scenarios", "ping"],
      ["--profile", "x=-mode fast3"],
      ["--tcp"],
      ["--loss", "0.1"],
      ["--delay-ms", "10"],
      ["--pings", "10"],
      ["--ping-seconds", "3"],
    ]
  ) {
    assertThrows(() => parseBenchOptions(["--goals", ...extra]), Error, "do not apply");
    // Without --goals they still work as before.
    if (extra[0] !== "--tcp") assert(parseBenchOptions(extra) !== "help");
  }
  assertThrows(() => parseBenchOptions(["--goals", "--bad-loss", "1"]));
  assertThrows(() => parseBenchOptions(["--goals", "--bad-burst", "0.5"]));
  assertThrows(() => parseBenchOptions(["--goals", "--cold-pings", "0"]));
  assertThrows(() => parseBenchOptions(["--goals", "--short-conns"]));
});

Deno.test("goals sets: flags of each set", () => {
  const o = options(["--goals", "--flags", "-mode fast3"]);
  assertEquals(setFlags("defaults", o), ["-mode", "fast3"]);
  assertEquals(setFlags("bad", o), ["-mode", "fast3"]);
  assertEquals(setFlags("bare", o), [
    "-crypt",
    "none",
    "-nocomp",
    "-ds",
    "0",
    "-ps",
    "0",
    "-mode",
    "fast3",
  ]);
});

Deno.test("goals: spread is median, min, max and count of the finite values", () => {
  assertEquals(spread([3, 1, NaN, 2]), { median: 2, min: 1, max: 3, n: 3 });
  assertEquals(spread([5]), { median: 5, min: 5, max: 5, n: 1 });
  const none = spread([NaN]);
  assert(Number.isNaN(none.median) && none.n === 0);
});

const row = (kind: GoalRow["kind"], target: number): GoalRow => ({
  id: "bulkDefault",
  label: "x",
  unit: "MiB/s",
  kind,
  target,
});

Deno.test("goals: judge by the medians, each kind, and incomplete rounds", () => {
  const s = (median: number, n = 3) => ({ median, min: median, max: median, n });
  assertEquals(judge(row("ratio-min", 1.5), s(30), s(20), 3).verdict, "met");
  assertEquals(judge(row("ratio-min", 1.5), s(29.9), s(20), 3).verdict, "not met");
  assertEquals(judge(row("ratio-min", 1.5), s(30), s(20), 3).ratio, 1.5);
  assertEquals(judge(row("ratio-max", 1.2), s(1.2), s(1), 3).verdict, "met");
  assertEquals(judge(row("ratio-max", 1.2), s(1.3), s(1), 3).verdict, "not met");
  // An absolute goal ignores Go, and needs only ours.
  assertEquals(judge(row("ours-max", 64), s(64), s(NaN, 0), 3).verdict, "met");
  assertEquals(judge(row("ours-max", 64), s(65), s(20), 3).verdict, "not met");
  assertEquals(judge(row("ours-max", 64), s(10, 2), s(20), 3).verdict, "incomplete");
  // A ratio needs every round of both pairs.
  assertEquals(judge(row("ratio-min", 1), s(30), s(20, 2), 3).verdict, "incomplete");
  assertEquals(judge(row("ratio-min", 1), s(30), s(NaN, 0), 3).verdict, "incomplete");
  assertEquals(judge(row("info", NaN), s(30), s(20), 3).verdict, "");
});

Deno.test("goals: the summary over rounds, the table and the tally", () => {
  const rows = goalRows(GOAL_DEFAULTS, 100);
  assertEquals(rows.filter((r) => r.kind !== "info").length, 18);
  assertEquals(new Set(rows.map((r) => r.id)).size, rows.length);
  assertEquals(
    rows.find((r) => r.id === "coldP99")!.label,
    "64-byte ping, first 300 after start, p99",
  );
  assert(rows.find((r) => r.id === "badP99")!.label.includes("10% loss in bursts of 4, 50 ms"));

  const runs: RoundValues[] = [
    { pair: "ours", values: { bulkDefault: 30, coldP99: 2, rssBulkClient: 70 } },
    { pair: "go", values: { bulkDefault: 20, coldP99: 1 } },
    { pair: "ours", values: { bulkDefault: 36, coldP99: 3, rssBulkClient: 50 } },
    { pair: "go", values: { bulkDefault: 22, coldP99: 2 } },
    { pair: "ours", values: { bulkDefault: 33, coldP99: 1, rssBulkClient: 60 } },
    { pair: "go", values: { bulkDefault: 21 } },
  ];
  const picked = rows.filter((r) => ["bulkDefault", "coldP99", "rssBulkClient"].includes(r.id));
  const res = summariseGoals(picked, runs, 3);
  const by = Object.fromEntries(res.map((r) => [r.row.id, r]));
  assertEquals(by.bulkDefault.ours, { median: 33, min: 30, max: 36, n: 3 });
  assertEquals(by.bulkDefault.go.median, 21);
  assertEquals(by.bulkDefault.verdict, "met"); // 33 / 21 = 1.57
  assertEquals(by.coldP99.verdict, "incomplete"); // Go measured it in 2 rounds of 3
  assertEquals(by.rssBulkClient.verdict, "met"); // median 60 <= 64, Go not needed
  assertEquals(tally(res), { "met": 2, "not met": 0, "incomplete": 1 });

  const table = formatGoalsTable(res).split("\n");
  assertEquals(table.length, 2 + picked.length);
  const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim());
  assertEquals(cells(table[0]), ["metric", "ours", "Go", "ours:Go", "goal", "met"]);
  assertEquals(cells(table[2]), [
    "bulk echo, defaults, MiB/s",
    "33.0 (30.0–36.0)",
    "21.0 (20.0–22.0)",
    "1.57",
    "ours:Go >= 1.5",
    "met",
  ]);
  assertEquals(cells(table[4]).slice(4), ["ours <= 64 MiB", "met"]);
  // Every line is padded to the same width.
  assertEquals(new Set(table.map((l) => [...l].length)).size, 1);
});

Deno.test("goals: a pair's round merges the values of its sets", () => {
  const set = (pair: "ours" | "go", round: number, values: SetResult["values"]): SetResult => ({
    set: "defaults",
    pair,
    round,
    values,
    detail: {},
    phases: {},
    wallSeconds: 1,
    commands: { client: "", server: "" },
  });
  const merged = roundValues([
    set("ours", 0, { bulkDefault: 1 }),
    set("go", 0, { bulkDefault: 2 }),
    set("ours", 0, { bulkNone: 3 }),
    set("go", 0, { bulkNone: 4 }),
    set("ours", 1, { bulkDefault: 5 }),
  ]);
  assertEquals(merged, [
    { pair: "ours", values: { bulkDefault: 1, bulkNone: 3 } },
    { pair: "go", values: { bulkDefault: 2, bulkNone: 4 } },
    { pair: "ours", values: { bulkDefault: 5 } },
  ]);
});

Deno.test("peak RSS: the reset makes VmHWM the peak since then", async () => {
  // A child that touches 160 MiB, frees it, then idles: its VmHWM stays high, its RSS drops.
  const script = "let b = new Uint8Array(160 << 20).fill(1); b = null; globalThis.gc(); " +
    "console.log('freed'); setTimeout(() => {}, 20000);";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("freed")) {
      const r = await reader.read();
      assert(!r.done, "the child ended early");
      out += new TextDecoder().decode(r.value);
    }
    reader.releaseLock();
    const MIB = 1 << 20;
    let before = residentBytes(child.pid);
    for (let i = 0; i < 100 && before.peak - before.now < 100 * MIB; i++) {
      await new Promise((r) => setTimeout(r, 100));
      before = residentBytes(child.pid);
    }
    assert(before.peak - before.now >= 100 * MIB, `RSS never dropped: ${JSON.stringify(before)}`);
    const mon = peakRssMonitor([child.pid], 10);
    await new Promise((r) => setTimeout(r, 50));
    const phase = mon.stop();
    assertEquals(phase.method, "hwm");
    assert(phase.peak[0] < before.peak - 100 * MIB, `${phase.peak[0]} vs ${before.peak}`);
    // The kernel syncs a thread's RSS counters in batches, so a sample of VmRSS can run ahead of
    // VmHWM by a few hundred KiB: equal within that.
    assert(
      phase.sampled[0] <= phase.peak[0] + 2 * MIB,
      "sampling cannot exceed the high-water mark",
    );
    assert(resetPeakRss(child.pid));
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
  assertEquals(resetPeakRss(child.pid), false); // gone
});
