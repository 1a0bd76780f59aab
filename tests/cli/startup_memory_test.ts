/**
 * Guards of what an idle client or server loads (issue 12, docs/performance.md "Memory"): no
 * `node:` or `npm:` module in the static import graph of the CLI (they load Deno's Node
 * compatibility layer, megabytes per process), and no optimising compile during startup (one
 * pages in most of V8's optimising compilers, about 6 MiB that then stay resident).
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort } from "../support/net.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

/** Every module reachable from `entry` through static, non-type-only imports. */
async function staticGraph(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (d.code !== undefined && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return seen;
}

for (const entry of ["cli/server.ts", "cli/client.ts"]) {
  Deno.test(`startup: ${entry} statically imports no node: or npm: module`, async () => {
    const graph = await staticGraph(entry);
    assert(graph.size > 50, `the graph was read (${graph.size} modules)`);
    const foreign = [...graph].filter((s) => s.startsWith("node:") || s.startsWith("npm:"));
    assertEquals(foreign, []);
  });
}

Deno.test("startup: an idle server and client run no optimising (Maglev/TurboFan) compile", async () => {
  const port = freePort();
  const ends = [
    ["cli/server.ts", "-l", `127.0.0.1:${port}`, "-t", "127.0.0.1:9", "-key", "idle"],
    ["cli/client.ts", "-l", "127.0.0.1:0", "-r", `127.0.0.1:${port}`, "-key", "idle"],
  ];
  for (const args of ends) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--v8-flags=--trace-opt", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const decoder = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) text += decoder.decode(chunk, { stream: true });
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    try {
      for (let i = 0; i < 1000 && !text.includes("key derivation done"); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert(text.includes("key derivation done"), `${args[0]} started:\n${text}`);
      // Past startup, with the end idle for a while.
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await pumps;
    }
    const compiles = text.split("\n").filter((l) => l.startsWith("[completed compiling"));
    assertEquals(compiles, [], `${args[0]} compiled with an optimising tier`);
  }
});
