/**
 * The README's least-permission command lines, run as written (only the addresses moved to
 * loopback): both ends start, carry data, dump on SIGUSR1 and SIGUSR2, and stop cleanly; and the
 * same without `--allow-ffi` (the fallback to Deno's UDP sockets).
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import {
  echoTransfer,
  exitWithin,
  listeningPort,
  ownsInspectorPort,
  type Proc,
  REPO,
  spawnDenoWith,
  waitFor,
} from "./harness.ts";

/** A `deno run <flags> cli/<role>.ts <args>` line of the README. */
interface ReadmeLine {
  readonly role: "client" | "server";
  readonly flags: string[];
  readonly args: string[];
}

/** Splits a shell line into words (double quotes only, as the README uses). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** The README's `deno run --allow-… cli/client.ts|cli/server.ts …` lines. */
function readmeLines(): ReadmeLine[] {
  const text = Deno.readTextFileSync(`${REPO}README.md`);
  const found: ReadmeLine[] = [];
  for (const line of text.split("\n")) {
    const w = words(line);
    if (w[0] !== "deno" || w[1] !== "run" || !w[2]?.startsWith("--allow-")) continue;
    const at = w.findIndex((x) => /^cli\/(client|server)\.ts$/.test(x));
    if (at < 0) continue;
    found.push({
      role: w[at] === "cli/client.ts" ? "client" : "server",
      flags: w.slice(2, at),
      args: w.slice(at + 1),
    });
  }
  return found;
}

/** `args` with the value after `flag` replaced. */
function withValue(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  assert(i >= 0 && i + 1 < args.length, `${flag} in ${args.join(" ")}`);
  return [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}

const DUMP = /KCP SNMP:&\{BytesSent:(\d+) /g;

async function runPair(dropFfi: boolean): Promise<void> {
  const lines = readmeLines();
  const server = lines.find((l) => l.role === "server");
  const client = lines.find((l) => l.role === "client");
  assert(server && client, "the README shows a least-permission line for each end");
  assertEquals(server.flags, client.flags, "the same permissions on both ends");
  assert(!server.flags.includes("-A") && server.flags.includes("--allow-ffi"), server.flags.join());
  const flags = dropFfi ? server.flags.filter((f) => f !== "--allow-ffi") : server.flags;

  const echo = startEchoServer();
  const sport = freePort();
  const procs: Proc[] = [];
  try {
    let sargs = withValue(server.args, "-t", `127.0.0.1:${echo.port}`);
    sargs = withValue(sargs, "-l", `127.0.0.1:${sport}`);
    let cargs = withValue(client.args, "-r", `127.0.0.1:${sport}`);
    cargs = withValue(cargs, "-l", "127.0.0.1:0");
    const s = spawnDenoWith(flags, "cli/server.ts", sargs);
    procs.push(s);
    const c = spawnDenoWith(flags, "cli/client.ts", cargs);
    procs.push(c);
    await waitFor(s.output, "key derivation done", 15000, "server output");
    const port = await listeningPort(c, 15000);
    const moved = await echoTransfer({ port }, { streams: 3, bytes: 256 << 10 });
    assertEquals(moved, 3 * (256 << 10));

    for (const p of procs) {
      const fellBack = p.output().includes("udp: FFI not permitted");
      assertEquals(fellBack, dropFfi, p.output());
    }
    // The signal handlers work with these permissions too (they once needed --allow-sys).
    await sleep(600); // past the 500 ms after which Deno itself answers SIGUSR1
    for (const sig of ["SIGUSR1", "SIGUSR2"] as const) {
      for (const p of procs) p.signal(sig);
      const want = sig === "SIGUSR1" ? 1 : 2;
      for (const p of procs) {
        await waitFor(
          () => (p.output().match(DUMP)?.length ?? 0) >= want ? "dumped" : "",
          "dumped",
          5000,
          p.output(),
        );
      }
    }
    await sleep(1200); // past the last close of the inspector SIGUSR1 opened
    for (const p of procs) assert(!ownsInspectorPort(p.child.pid), "inspector still open");
    for (const p of procs) {
      assert(!/Requires|NotCapable|error:/i.test(p.output()), p.output());
    }
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
  }
}

Deno.test("e2e (README): the least-permission command lines run and carry data", async () => {
  await runPair(false);
});

Deno.test("e2e (README): the same lines without --allow-ffi fall back and carry data", async () => {
  await runPair(true);
});
