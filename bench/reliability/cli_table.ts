/**
 * The CLI bad-input table: each bad flag, config file or key, given to our end and to Go's with
 * the same arguments; what each does: the exit code (or that it keeps running), and the first
 * line it prints that is not one of the startup settings lines.
 *
 * Some of Go's checks only run when the first session is made (kcptun's client dials lazily), so
 * a client still running after {@link SETTLE_MS} gets one connection on its local port, and is
 * watched for another {@link SETTLE_MS}.
 *
 * @module
 */

import { freePort } from "../../tests/interop/harness.ts";
import { type Child, spawnChild } from "../tunnel/child.ts";
import { GO_BINARIES, type Pair, sleep } from "./ends.ts";
import { REPO_ROOT } from "../tunnel/run.ts";

/** How long a process is watched before (and after) the provoking connection. */
export const SETTLE_MS = 3000;

/** One row of the table. */
export interface BadInput {
  /** What is wrong. */
  name: string;
  /** Which end gets it. */
  role: "client" | "server";
  /** Arguments after the end's own `-l` (and `-r` / `-t`); `PORT` is a port in use. */
  args: string[];
  /** Files written in the working directory first (name to text). */
  files?: Record<string, string>;
  /** Environment variables. */
  env?: Record<string, string>;
  /**
   * What ours must do: `exit` (non-zero, exactly one line, naming what is wrong through
   * `mentions`) or `run` (accepted, like Go).
   */
  expect: "exit" | "run";
  /** Substrings our line must contain (with `expect: "exit"`). */
  mentions?: string[];
  /** Replace the default `-l` (the case is about it). */
  ownListen?: boolean;
}

/** The cases (ours is checked against `expect`; Go is shown beside it). */
export const BAD_INPUTS: BadInput[] = [
  {
    name: "unknown flag",
    role: "client",
    args: ["-bogus", "1"],
    expect: "exit",
    mentions: ["-bogus"],
  },
  {
    name: "number that is not one",
    role: "client",
    args: ["-mtu", "abc"],
    expect: "exit",
    mentions: ["abc", "mtu"],
  },
  {
    name: "unsupported smux version",
    role: "client",
    args: ["-smuxver", "3"],
    expect: "exit",
    mentions: ["smux version"],
  },
  { name: "-conn 0", role: "client", args: ["-conn", "0"], expect: "exit", mentions: ["conn"] },
  {
    name: "-keepalive 31 (beyond smux's 30 s timeout)",
    role: "server",
    args: ["-keepalive", "31"],
    expect: "exit",
    mentions: ["keepalive"],
  },
  {
    name: "-smuxbuf below -streambuf",
    role: "client",
    args: ["-smuxbuf", "1024", "-streambuf", "2048"],
    expect: "exit",
    mentions: ["streambuf"],
  },
  {
    name: "unknown -crypt (kcptun falls back to aes)",
    role: "client",
    args: ["-crypt", "nosuch"],
    expect: "run",
  },
  {
    name: "unknown -mode (kcptun keeps the default)",
    role: "server",
    args: ["-mode", "nosuch"],
    expect: "run",
  },
  {
    name: "empty -key",
    role: "server",
    args: ["-key", ""],
    expect: "run",
  },
  {
    name: "-ds 300 (more than 255 shards)",
    role: "server",
    args: ["-ds", "300"],
    expect: "exit",
    mentions: ["datashard"],
  },
  {
    // kcptun 2026 takes a client -l that is not host:port as a unix socket path; so do we.
    name: "-l without a port (ours: a unix socket path)",
    role: "client",
    args: ["-l", "nonsense"],
    ownListen: true,
    expect: "run",
  },
  {
    name: "client -l port in use",
    role: "client",
    args: ["-l", "127.0.0.1:PORT"],
    ownListen: true,
    expect: "exit",
    mentions: ["PORT"],
  },
  {
    name: "server -l port in use",
    role: "server",
    args: ["-l", "127.0.0.1:PORT"],
    ownListen: true,
    expect: "exit",
    mentions: ["PORT"],
  },
  {
    name: "-r host that does not resolve",
    role: "client",
    args: ["-r", "no-such-host.invalid:4000"],
    expect: "run",
  },
  {
    name: "reversed port range in -r",
    role: "client",
    args: ["-r", "127.0.0.1:5-3"],
    expect: "exit",
    mentions: ["5-3"],
  },
  {
    name: "-c file that does not exist",
    role: "server",
    args: ["-c", "missing.json"],
    expect: "exit",
    mentions: ["missing.json"],
  },
  {
    name: "-c broken JSON",
    role: "server",
    args: ["-c", "broken.json"],
    files: { "broken.json": '{\n  "mtu": 1400,\n}\n' },
    expect: "exit",
    mentions: ["broken.json"],
  },
  {
    name: "-c value of the wrong type",
    role: "client",
    args: ["-c", "typed.json"],
    files: { "typed.json": '{ "mtu": "1400" }' },
    expect: "exit",
    mentions: ["typed.json", "mtu"],
  },
  {
    name: "-log into a missing directory",
    role: "client",
    args: ["-log", "no-such-dir/client.log"],
    expect: "exit",
    mentions: ["no-such-dir/client.log"],
  },
  {
    name: "-snmplog into a missing directory",
    role: "server",
    args: ["-snmplog", "no-such-dir/snmp.log", "-snmpperiod", "1"],
    expect: "exit",
    mentions: ["no-such-dir/snmp.log"],
  },
];

/** What one end did with one case. */
export interface Outcome {
  /** The exit code, or null when it was still running (then it was stopped). */
  code: number | null;
  /** The first line that is not a startup settings line ("" when none). */
  line: string;
  /** How many such lines it printed. */
  lines: number;
}

/** One row of results. */
export interface TableRow {
  /** The case. */
  input: BadInput;
  /** Per implementation. */
  outcomes: Partial<Record<Pair, Outcome>>;
  /** Whether ours did what `expect` says (null when ours did not run). */
  oursOk: boolean | null;
}

/** The setting lines both implementations print at startup (not errors). */
const STARTUP =
  /^(version|smux version|listening on|target|remote address|encryption|nodelay parameters|sndwnd|compression|mtu|datashard|acknodelay|dscp|sockbuf|smuxbuf|streambuf|keepalive|conn|autoexpire|scavengettl|snmplog|snmpperiod|pprof|quiet|tcp|initiating key derivation|key derivation done|QPP|QPPCount|ratelimit|closewait|framesize)\b/;

/** Lines of `text` with Go's `2006/01/02 15:04:05 [main.go:12: ]` prefix removed, minus startup lines. */
export function significantLines(text: string): string[] {
  return text.split("\n")
    .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, "").replace(/^\w+\.go:\d+: /, ""))
    .map((l) => l.trimEnd())
    .filter((l) => l !== "" && !STARTUP.test(l) && !/^\S*Initialize\S* /.test(l));
}

function firstLine(text: string): { line: string; lines: number } {
  const l = significantLines(text);
  return { line: l[0] ?? "", lines: l.length };
}

/** Runs one case on one end; `dir` is the working directory, `busy` a port in use. */
async function runCase(pair: Pair, c: BadInput, dir: string, busy: number): Promise<Outcome> {
  const port = freePort();
  const args = c.args.map((a) => a.replaceAll("PORT", String(busy)));
  const base = c.role === "client"
    ? [...(c.ownListen ? [] : ["-l", `127.0.0.1:${port}`]), "-r", "127.0.0.1:9", "-key", "k"]
    : [...(c.ownListen ? [] : ["-l", `127.0.0.1:${port}`]), "-t", "127.0.0.1:9", "-key", "k"];
  // A flag given twice takes its last value in both implementations: the case's own comes last.
  const all = [...base, ...args];
  const child: Child = pair === "go"
    ? spawnChild(`Go ${c.role}`, GO_BINARIES[c.role], all, dir)
    : spawnChild(
      `our ${c.role}`,
      Deno.execPath(),
      ["run", "-A", "--config", `${REPO_ROOT}deno.json`, `${REPO_ROOT}cli/${c.role}.ts`, ...all],
      dir,
    );
  try {
    // Ours needs a moment to start Deno; the clock starts once it has printed anything.
    const started = performance.now();
    while (child.output() === "" && !child.done && performance.now() - started < 15000) {
      await sleep(20);
    }
    const settled = await Promise.race([child.exited, sleep(SETTLE_MS).then(() => null)]);
    if (settled === null && c.role === "client" && !c.ownListen) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(new Uint8Array([1]));
        await Promise.race([child.exited, sleep(SETTLE_MS)]);
        conn.close();
      } catch { /* not listening: nothing to provoke */ }
    }
    const code = child.done ? await child.exited : null;
    return { code, ...firstLine(child.output()) };
  } finally {
    await child.stop(1000);
  }
}

/** Whether ours did what the case expects. */
export function oursAsExpected(c: BadInput, o: Outcome, busy: number): boolean {
  if (c.expect === "run") return o.code === null;
  if (o.code === null || o.code === 0 || o.lines !== 1) return false;
  return (c.mentions ?? []).every((m) => o.line.includes(m.replaceAll("PORT", String(busy))));
}

/** Runs every case on every pair, `parallel` processes at a time. */
export async function cliTable(
  pairs: Pair[],
  cases: BadInput[] = BAD_INPUTS,
  parallel = 6,
): Promise<TableRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-cli-table-" });
  const busyTcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busy = (busyTcp.addr as Deno.NetAddr).port;
  const busyUdp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: busy });
  try {
    for (const c of cases) {
      for (const [name, text] of Object.entries(c.files ?? {})) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
    }
    const rows: TableRow[] = cases.map((input) => ({ input, outcomes: {}, oursOk: null }));
    const jobs = rows.flatMap((row) => pairs.map((pair) => ({ row, pair })));
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const { row, pair } = jobs[next++];
        const o = await runCase(pair, row.input, dir, busy);
        row.outcomes[pair] = o;
        if (pair === "ours") row.oursOk = oursAsExpected(row.input, o, busy);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return rows;
  } finally {
    busyTcp.close();
    busyUdp.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function cell(o: Outcome | undefined): string {
  if (!o) return "-";
  const what = o.code === null ? "runs" : `exit ${o.code}`;
  const line = o.line.length > 90 ? o.line.slice(0, 87) + "..." : o.line;
  const more = o.lines > 1 ? ` (+${o.lines - 1} lines)` : "";
  return line ? `${what}: ${line}${more}` : what;
}

/** The table as Markdown (one row per case: ours, Go, whether ours is as expected). */
export function tableMarkdown(rows: TableRow[]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const out = [
    "| case | ours | Go | ours as expected |",
    "| ---- | ---- | -- | ---------------- |",
  ];
  for (const r of rows) {
    out.push(
      `| ${esc(r.input.name)} | ${esc(cell(r.outcomes.ours))} | ${esc(cell(r.outcomes.go))} | ${
        r.oursOk === null ? "-" : r.oursOk ? "yes" : `NO (expected ${r.input.expect})`
      } |`,
    );
  }
  return out.join("\n");
}

/** The one result line. */
export function describeCliTable(rows: TableRow[]): string {
  const ours = rows.filter((r) => r.oursOk !== null);
  const bad = ours.filter((r) => !r.oursOk).map((r) => r.input.name);
  const differ = rows.filter((r) => {
    const a = r.outcomes.ours, b = r.outcomes.go;
    return a && b && (a.code === null) !== (b.code === null);
  }).length;
  return `${rows.length} cases: ours as expected ${ours.length - bad.length}/${ours.length}` +
    (bad.length ? ` (not: ${bad.join("; ")})` : "") +
    `; ours and Go differ on exiting in ${differ}`;
}
