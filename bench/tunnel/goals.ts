/**
 * The goals table of the tunnel benchmark (`--goals`, issue 12): which metrics a goals run
 * measures, what each goal asks, and the summary of the runs (median and min–max per pair, the
 * ratio of the medians, met or not). No processes here: `goals_run.ts` measures, this judges.
 *
 * @module
 */

import type { GoalOptions } from "./options.ts";
import { fmt } from "./report.ts";
import { median, ratio } from "./stats.ts";

/** What a goals run records per pair and round (NaN or absent when not measured). */
export type MetricId =
  | "bulkDefault"
  | "bulkNone"
  | "parallel"
  | "parallelCpu"
  | "coldP50"
  | "coldP99"
  | "warmP50"
  | "warmP99"
  | "rssBulkClient"
  | "rssBulkServer"
  | "rssParallelClient"
  | "rssParallelServer"
  | "idleStartClient"
  | "idleStartServer"
  | "idleAfterClient"
  | "idleAfterServer"
  | "badP99"
  | "shortConns"
  // Details (no goal):
  | "parallelCpuClient"
  | "parallelCpuServer"
  | "coldFirst"
  | "coldMax"
  | "badP50"
  | "badMax"
  | "shortConnFailures"
  | "shortConnP99"
  | "rssBulkNoneClient"
  | "rssBulkNoneServer";

/**
 * What a goal asks: ours ÷ Go at least (`ratio-min`) or at most (`ratio-max`) `target`, or our
 * value at most `target` whatever Go's is (`ours-max`); `info` rows have no goal.
 */
export type GoalKind = "ratio-min" | "ratio-max" | "ours-max" | "info";

/** One row of the table. */
export interface GoalRow {
  /** The metric. */
  id: MetricId;
  /** What the row says. */
  label: string;
  /** Unit of the values. */
  unit: string;
  /** The goal's kind. */
  kind: GoalKind;
  /** The goal's bound (NaN for `info`). */
  target: number;
}

/**
 * The rows of the goals table, labelled with the counts `g`, `streams` and the rest describe,
 * then the detail rows (`info`).
 */
export function goalRows(g: GoalOptions, streams: number): GoalRow[] {
  const row = (id: MetricId, label: string, unit: string, kind: GoalKind, target = NaN) => ({
    id,
    label,
    unit,
    kind,
    target,
  });
  const loss = `${+(g.badLoss * 100).toFixed(2)}% loss in bursts of ${g.badBurst}, ` +
    `${g.badDelayMs} ms each way`;
  return [
    row("bulkDefault", "bulk echo, defaults", "MiB/s", "ratio-min", 1.5),
    row("bulkNone", "bulk echo, -crypt none -nocomp -ds 0 -ps 0", "MiB/s", "ratio-min", 2.0),
    row("parallel", `${streams} parallel streams, defaults`, "MiB/s", "ratio-min", 1.3),
    row(
      "parallelCpu",
      `CPU-s per MiB, ${streams} streams, client + server`,
      "s/MiB",
      "ratio-max",
      0.8,
    ),
    row("coldP50", `64-byte ping, first ${g.coldPings} after start, p50`, "ms", "ratio-max", 1.2),
    row("coldP99", `64-byte ping, first ${g.coldPings} after start, p99`, "ms", "ratio-max", 1.2),
    row("warmP50", `ping, ${g.warmPings} warm, p50`, "ms", "ratio-max", 1.0),
    row("warmP99", `ping, ${g.warmPings} warm, p99`, "ms", "ratio-max", 1.0),
    row("rssBulkClient", "peak RSS during bulk, client", "MiB", "ours-max", 64),
    row("rssBulkServer", "peak RSS during bulk, server", "MiB", "ours-max", 64),
    row("rssParallelClient", `peak RSS during ${streams} streams, client`, "MiB", "ours-max", 64),
    row("rssParallelServer", `peak RSS during ${streams} streams, server`, "MiB", "ours-max", 64),
    row("idleStartClient", "idle RSS after start, client", "MiB", "ours-max", 48),
    row("idleStartServer", "idle RSS after start, server", "MiB", "ours-max", 48),
    row(
      "idleAfterClient",
      `idle RSS ${g.afterSeconds} s after load, client`,
      "MiB",
      "ours-max",
      48,
    ),
    row(
      "idleAfterServer",
      `idle RSS ${g.afterSeconds} s after load, server`,
      "MiB",
      "ours-max",
      48,
    ),
    row("badP99", `bad link (${loss}), ping p99`, "ms", "ratio-max", 1.2),
    row(
      "shortConns",
      `${g.shortConns} short connections, ${g.shortParallel} at a time`,
      "conn/s",
      "ratio-min",
      1.0,
    ),
    row("parallelCpuClient", `CPU-s per MiB, ${streams} streams, client`, "s/MiB", "info"),
    row("parallelCpuServer", `CPU-s per MiB, ${streams} streams, server`, "s/MiB", "info"),
    row("coldFirst", "first ping after start (opens the stream)", "ms", "info"),
    row("coldMax", `slowest of the first ${g.coldPings} pings`, "ms", "info"),
    row("badP50", "bad link, ping p50", "ms", "info"),
    row("badMax", "bad link, slowest ping", "ms", "info"),
    row("shortConnP99", "short connection (connect, echo, close) p99", "ms", "info"),
    row("shortConnFailures", "short connections failed", "count", "info"),
    row("rssBulkNoneClient", "peak RSS during bulk, -crypt none ..., client", "MiB", "info"),
    row("rssBulkNoneServer", "peak RSS during bulk, -crypt none ..., server", "MiB", "info"),
  ];
}

/** One pair's values of one metric over its rounds. */
export interface Spread {
  /** Median of the measured (finite) values. */
  median: number;
  /** Smallest. */
  min: number;
  /** Largest. */
  max: number;
  /** How many rounds measured it. */
  n: number;
}

/** Median, min, max and count of the finite `values`. */
export function spread(values: readonly number[]): Spread {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** A row's outcome. */
export type Verdict = "met" | "not met" | "incomplete" | "";

/** One row of the summary. */
export interface GoalResult {
  /** The row. */
  row: GoalRow;
  /** Ours over the rounds. */
  ours: Spread;
  /** Go's over the rounds. */
  go: Spread;
  /** ours.median ÷ go.median. */
  ratio: number;
  /** Met, not met, or incomplete (a pair measured it in fewer than all rounds); "" for info. */
  verdict: Verdict;
}

/** What one round of one pair recorded. */
export interface RoundValues {
  /** Which implementation. */
  pair: "ours" | "go";
  /** The metrics it measured. */
  values: Partial<Record<MetricId, number>>;
}

/**
 * Judges one row. A ratio goal needs both pairs measured in all `rounds`; an `ours-max` goal
 * needs ours in all `rounds`. The verdict goes by the medians.
 */
export function judge(row: GoalRow, ours: Spread, go: Spread, rounds: number): GoalResult {
  const r = ratio(ours.median, go.median);
  let verdict: Verdict = "";
  if (row.kind === "ours-max") {
    verdict = ours.n < rounds ? "incomplete" : ours.median <= row.target ? "met" : "not met";
  } else if (row.kind !== "info") {
    if (ours.n < rounds || go.n < rounds || !Number.isFinite(r)) verdict = "incomplete";
    else if (row.kind === "ratio-min") verdict = r >= row.target ? "met" : "not met";
    else verdict = r <= row.target ? "met" : "not met";
  }
  return { row, ours, go, ratio: r, verdict };
}

/** The summary of a goals run: one result per row, in the rows' order. */
export function summariseGoals(
  rows: readonly GoalRow[],
  runs: readonly RoundValues[],
  rounds: number,
): GoalResult[] {
  const of = (pair: "ours" | "go", id: MetricId) =>
    spread(runs.filter((r) => r.pair === pair).map((r) => r.values[id] ?? NaN));
  return rows.map((row) => judge(row, of("ours", row.id), of("go", row.id), rounds));
}

/** How a goal prints. */
export function goalText(row: GoalRow): string {
  switch (row.kind) {
    case "ratio-min":
      return `ours:Go >= ${row.target.toFixed(1)}`;
    case "ratio-max":
      return `ours:Go <= ${row.target.toFixed(1)}`;
    case "ours-max":
      return `ours <= ${row.target} ${row.unit}`;
    default:
      return "";
  }
}

function cell(s: Spread, unit: string): string {
  if (s.n === 0) return "-";
  const kind = unit === "count" ? "count" : "value";
  const m = fmt(s.median, kind);
  return s.n === 1 ? m : `${m} (${fmt(s.min, kind)}–${fmt(s.max, kind)})`;
}

/**
 * The results as a Markdown table: metric (with unit), ours and Go as `median (min–max)` over
 * the rounds, ours:Go of the medians, the goal, and met / not met. Columns are padded so that the
 * text reads as a table too.
 */
export function formatGoalsTable(results: readonly GoalResult[]): string {
  const head = ["metric", "ours", "Go", "ours:Go", "goal", "met"];
  const body = results.map((r) => [
    `${r.row.label}, ${r.row.unit}`,
    cell(r.ours, r.row.unit),
    cell(r.go, r.row.unit),
    r.row.unit === "count" ? "" : fmt(r.ratio, "ratio"),
    goalText(r.row),
    r.verdict,
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => [...b[i]].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c + " ".repeat(width[i] - [...c].length)).join(" | ")} |`;
  return [
    line(head),
    line(width.map((w) => "-".repeat(w))),
    ...body.map(line),
  ].join("\n");
}

/** Counts of the goal rows' verdicts (info rows left out). */
export function tally(results: readonly GoalResult[]): Record<Exclude<Verdict, "">, number> {
  const t = { "met": 0, "not met": 0, "incomplete": 0 };
  for (const r of results) if (r.verdict !== "") t[r.verdict]++;
  return t;
}
