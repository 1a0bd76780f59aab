/**
 * One end of the demo tunnel as its own process: `cli/client.ts` or `cli/server.ts` (the same
 * `clientMain` / `serverMain`, so the same flags, startup, signals and exit), plus a reporter
 * that prints this end's counters and KCP smoothed RTT as one JSON line on stdout every 250 ms.
 *
 *   deno run -A cli/demo/end.ts server -l 127.0.0.1:0 -t 127.0.0.1:7000 ...
 *   deno run -A cli/demo/end.ts client -l 127.0.0.1:0 -r 127.0.0.1:29900 ...
 *
 * The first line is `{"ready":true,"port":N}` (the client's TCP port, the server's first UDP
 * port); logs go to stderr as usual.
 *
 * @module
 */

import { SNMP_STRUCT_FIELDS } from "../../pipeline/snmp.ts";
import { KcptunClient } from "../../runtime/client.ts";
import type { KcptunServer } from "../../runtime/server.ts";
import { clientMain, type RunningEnd, serverMain } from "../run.ts";
import { sampleEnd } from "../stats.ts";

/** One report line. */
export interface EndReport {
  /** Counters by kcptun name. */
  readonly snmp: Record<string, number>;
  /** Mean smoothed RTT of the live KCP sessions (ms), 0 without one. */
  readonly srtt: number;
  /** Live KCP sessions. */
  readonly sessions: number;
}

/** The report of `end` now. */
export function report(end: RunningEnd<KcptunClient> | RunningEnd<KcptunServer>): EndReport {
  const snmp: Record<string, number> = {};
  for (const f of SNMP_STRUCT_FIELDS) snmp[f] = end.snmp[f];
  const sample = sampleEnd(end.snmp, end.sessions(), performance.now());
  return { snmp, srtt: sample.srttMs, sessions: sample.sessions };
}

function printLine(value: unknown): void {
  const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role !== "client" && role !== "server") {
    console.error("usage: end.ts client|server <kcptun flags>");
    Deno.exit(2);
  }
  const end = role === "client" ? await clientMain(args) : await serverMain(args);
  const app = end.app;
  const port = app instanceof KcptunClient ? app.listener.port : app.ports[0];
  printLine({ ready: true, port });
  setInterval(() => printLine(report(end)), 250);
}
