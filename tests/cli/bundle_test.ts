/**
 * The bundles the client and server tasks run (cli/bundle.ts): when they are rebuilt, that a
 * bundled pair carries data exactly as the sources do, that an idle bundled end runs no
 * optimising compile (docs/performance.md, "Memory"), and the fallback when `deno bundle` fails.
 */

import { buildBundle, BUNDLES, isStale, newestSource } from "../../cli/bundle.ts";
import { V8_FLAGS_ARG } from "../../cli/v8_flags.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { freePort, startEchoServer } from "../support/net.ts";
import { echoTransfer, exitWithin, REPO, spawnDenoWith, waitFor } from "../e2e/harness.ts";

Deno.test("bundle: stale when missing or older than any source or config file", async () => {
  const root = await Deno.makeTempDir({ prefix: "kcptun-bundle-stale-" });
  try {
    for (const d of ["cli", "runtime/deep", "pipeline", "transforms", "transports"]) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    const at = (path: string, seconds: number) =>
      Deno.utimeSync(path, new Date(seconds * 1000), new Date(seconds * 1000));
    // Made-up sources in a temporary tree (joined, so no document check takes them for ours).
    const nested = ["runtime", "deep", "b.ts"].join("/");
    for (const f of [["cli", "a.ts"].join("/"), nested, "mod.ts", "deno.json"]) {
      Deno.writeTextFileSync(`${root}/${f}`, "");
      at(`${root}/${f}`, 1000);
    }
    for (const d of ["cli", "runtime", "runtime/deep", "pipeline", "transforms", "transports"]) {
      at(`${root}/${d}`, 1000);
    }
    const out = `${root}/out.js`;
    assert(await isStale(out, `${root}/`), "a missing bundle is stale");
    Deno.writeTextFileSync(out, "");
    at(out, 2000);
    assertEquals(await newestSource(`${root}/`), 1000 * 1000);
    assert(!(await isStale(out, `${root}/`)), "a bundle newer than every source is fresh");
    at(`${root}/${nested}`, 3000);
    assert(await isStale(out, `${root}/`), "a nested source edited after the build");
    at(`${root}/${nested}`, 1000);
    at(`${root}/deno.json`, 3000);
    assert(await isStale(out, `${root}/`), "deno.json edited after the build");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bundle: a bundled server and client carry data; idle they run no optimising compile", async () => {
  // Under the repository: the ends run with its deno.json, as the tasks run them.
  const dir = await Deno.makeTempDir({ dir: `${REPO}dist`, prefix: ".bundle-test-" });
  const echo = startEchoServer();
  const procs: ReturnType<typeof spawnDenoWith>[] = [];
  try {
    const server = await buildBundle("server", `${dir}/server.js`);
    const client = await buildBundle("client", `${dir}/client.js`);
    assertEquals([server.kind, client.kind], ["bundled", "bundled"], server.detail);
    const text = Deno.readTextFileSync(client.output);
    assert(!/from\s*"file:/.test(text), "the bundle imports no module of the repository");
    const port = freePort();
    // --trace-opt names every optimising compile; an idle end must print none.
    const flags = ["-A", "--quiet", V8_FLAGS_ARG.replace("--v8-flags=", "--v8-flags=--trace-opt,")];
    const plugin = ["-pipeline", "tcp,smux,snappy,kcp,fec,./examples/padding.ts,crypt,udp"];
    procs.push(spawnDenoWith(flags, server.output.slice(REPO.length), [
      ...["-l", `127.0.0.1:${port}`, "-t", `127.0.0.1:${echo.port}`, "-key", "b"],
      ...plugin,
    ]));
    const clientPort = freePort();
    procs.push(spawnDenoWith(flags, client.output.slice(REPO.length), [
      ...["-l", `127.0.0.1:${clientPort}`, "-r", `127.0.0.1:${port}`, "-key", "b"],
      ...plugin,
    ]));
    for (const p of procs) await waitFor(p.output, "key derivation done", 30000);
    // Startup is over once the key is derived and the client has dialed its session.
    await new Promise((r) => setTimeout(r, 1000));
    for (const p of procs) {
      const optimised = p.output().split("\n").filter((l) => l.startsWith("[completed compiling"));
      assertEquals(optimised, [], `idle ${p.output().slice(0, 300)}`);
    }
    const echoed = await echoTransfer({ port: clientPort }, { streams: 3, bytes: 200_000 });
    assertEquals(echoed, 600_000);
    for (const p of procs.toReversed()) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 10000)).code, 0, p.output());
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: when deno bundle fails, the file runs the end from the sources", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-bundle-fallback-" });
  try {
    const r = await buildBundle("client", `${dir}/client.js`, ["cli", "missing.ts"].join("/"));
    assertEquals(r.kind, "fallback");
    assert((r.detail ?? "").length > 0, "says why");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", r.output, "-v"],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, new TextDecoder().decode(out.stderr));
    assert(/version/i.test(text), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: the tasks run the bundles, rebuilt when stale", async () => {
  const config = JSON.parse(await Deno.readTextFile(REPO + "deno.json"));
  for (const end of ["client", "server"] as const) {
    const line: string = config.tasks[end];
    const build = line.indexOf(`cli/bundle.ts --if-stale ${end} &&`);
    const run = line.indexOf(BUNDLES[end].output);
    assert(build >= 0 && run > build, `task ${end}: ${line}`);
  }
});
