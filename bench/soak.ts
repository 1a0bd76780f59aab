/**
 * The reliability suite (`deno task soak`): bounded, loopback-only checks of our client and server
 * side by side with Debian's Go kcptun on the same flags, one result line per check (ours | Go).
 * What each check does and the figures: docs/reliability.md.
 *
 *   deno task soak [--only cli,rst,flood,conns,stalled,restart,soak] [--quick | --long]
 *   deno task soak --help
 *
 * @module
 */

import { type Check, parseSuiteOptions, type SuiteOptions, USAGE } from "./reliability/options.ts";
import { haveGo, liveChildren, type Pair } from "./reliability/ends.ts";
import { cliTable, describeCliTable, tableMarkdown } from "./reliability/cli_table.ts";
import { describeRstStorm, rstStorm } from "./reliability/rst_storm.ts";
import { describeFlood, flood } from "./reliability/flood.ts";
import { describeShortConns, shortConnections } from "./reliability/short_conns.ts";
import { describeStalled, stalledReader } from "./reliability/stalled_reader.ts";
import { describeRestart, killRestart } from "./reliability/restart.ts";
import { describeSoak, lossySoak } from "./reliability/lossy_soak.ts";

/** One printed line and what it summarises. */
interface Line {
  check: Check;
  variant: string;
  line: string;
  results: unknown[];
}

/** Runs `one` for each pair in turn (never at once: they would share the two cores). */
async function perPair<R>(
  pairs: Pair[],
  one: (p: Pair) => Promise<R>,
  describe: (r: R) => string,
): Promise<{ line: string; results: R[] }> {
  const parts: string[] = [], results: R[] = [];
  for (const p of pairs) {
    try {
      const r = await one(p);
      results.push(r);
      parts.push(describe(r));
    } catch (e) {
      parts.push(`${p}: ERROR ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return { line: parts.join(" | "), results };
}

async function runCheck(check: Check, o: SuiteOptions, emit: (l: Line) => void): Promise<void> {
  const deno = (tag: string) => ({
    denoFlags: o.denoFlags,
    cpuProfDir: o.cpuProfDir,
    logDir: o.logDir,
    tag,
  });
  const pairs = o.pairs;
  switch (check) {
    case "cli": {
      const rows = await cliTable(pairs);
      emit({ check, variant: "", line: describeCliTable(rows), results: rows });
      if (o.table) console.log(tableMarkdown(rows));
      return;
    }
    case "rst": {
      const r = await perPair(pairs, (p) => rstStorm(p, deno(`rst-${p}`)), describeRstStorm);
      emit({ check, variant: "200 resets", ...r });
      return;
    }
    case "flood": {
      const r = await perPair(
        pairs,
        (p) =>
          flood(p, { ...deno(`flood-${p}`), secondsPerKind: o.floodSeconds, rate: o.floodRate }),
        describeFlood,
      );
      emit({ check, variant: `${o.floodRate}/s, ${o.floodSeconds} s per kind`, ...r });
      return;
    }
    case "conns": {
      const r = await perPair(
        pairs,
        (p) =>
          shortConnections(p, {
            ...deno(`conns-${p}`),
            total: o.conns,
            parallel: o.connsParallel,
            settleSeconds: o.settleSeconds,
          }),
        describeShortConns,
      );
      emit({ check, variant: `${o.conns} x ${o.connsParallel}`, ...r });
      return;
    }
    case "stalled": {
      for (const smuxver of [1, 2] as const) {
        for (const direction of ["app", "target"] as const) {
          const r = await perPair(
            pairs,
            (p) =>
              stalledReader(p, {
                ...deno(`stalled-v${smuxver}-${direction}-${p}`),
                smuxver,
                direction,
                seconds: o.stalledSeconds,
              }),
            describeStalled,
          );
          emit({ check, variant: `smux v${smuxver}, ${direction} reader`, ...r });
        }
      }
      return;
    }
    case "restart": {
      // Each run mostly waits out smux's 30 s keepalive timeout: they run at the same time.
      const runs = o.restartEnds.flatMap((end) =>
        pairs.map((p) =>
          killRestart(p, { ...deno(`restart-${end}-${p}`), end }).then(
            (r) => ({ end, text: describeRestart(r), r }),
            (e) => ({ end, text: `${p}: ERROR ${(e as Error).message.split("\n")[0]}`, r: null }),
          )
        )
      );
      const done = await Promise.all(runs);
      for (const end of o.restartEnds) {
        const mine = done.filter((d) => d.end === end);
        emit({
          check,
          variant: `kill -9 ${end}`,
          line: mine.map((d) => d.text).join(" | "),
          results: mine.map((d) => d.r),
        });
      }
      return;
    }
    case "soak": {
      const r = await perPair(
        pairs,
        (p) =>
          lossySoak(p, {
            ...deno(`soak-${p}`),
            seconds: o.soakSeconds,
            streams: o.soakStreams,
            loss: o.soakLoss,
            burst: o.soakBurst,
          }),
        describeSoak,
      );
      emit({
        check,
        variant: `${o.soakStreams} streams, ${o.soakSeconds} s, ${o.soakLoss * 100}% loss ` +
          `(bursts of ${o.soakBurst})`,
        ...r,
      });
      return;
    }
  }
}

if (import.meta.main) {
  let o: SuiteOptions | "help";
  try {
    o = parseSuiteOptions(Deno.args);
  } catch (e) {
    console.error(`soak: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (o === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (o.pairs.includes("go") && !haveGo()) {
    console.error("soak: Debian's kcptun is not installed (apt-get install -y kcptun): ours only");
    o.pairs = o.pairs.filter((p) => p !== "go");
  }
  for (const dir of [o.cpuProfDir, o.logDir]) if (dir) Deno.mkdirSync(dir, { recursive: true });
  Deno.addSignalListener("SIGINT", async () => {
    for (const c of [...liveChildren]) await c.stop(500);
    Deno.exit(130);
  });
  const lines: Line[] = [];
  const t0 = performance.now();
  for (const check of o.checks) {
    const c0 = performance.now();
    await runCheck(check, o, (l) => {
      lines.push(l);
      console.log(`${l.check}${l.variant ? ` (${l.variant})` : ""}: ${l.line}`);
    });
    console.error(`  [${check}: ${((performance.now() - c0) / 1000).toFixed(0)} s]`);
  }
  console.error(`  [all: ${((performance.now() - t0) / 1000).toFixed(0)} s]`);
  if (o.jsonPath) {
    await Deno.writeTextFile(
      o.jsonPath,
      JSON.stringify({ date: new Date().toISOString(), options: o, lines }, null, 1),
    );
  }
}
