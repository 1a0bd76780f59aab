/** The one-line errors when fake TCP cannot run, as a subprocess sees them. */

import { assertEquals } from "../support/assert.ts";
import { missing } from "../support/requires.ts";

const PROBE = new URL("./fixtures/probe.ts", import.meta.url).pathname;

/**
 * Runs a command with its output. The probes run as `deno run --quiet` with the lock file
 * (not `--no-lock`, which makes Deno re-resolve npm packages): Deno's own lines (`Download …`
 * on a cold cache) must not mix with the exact stderr compared here.
 */
async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("faketcp errors: without --allow-ffi, one line saying to allow FFI, exit 1", async () => {
  const r = await run(Deno.execPath(), ["run", "--quiet", "--allow-read", PROBE]);
  assertEquals(r.code, 1);
  assertEquals(
    r.stderr,
    "fake TCP (-tcp) needs FFI, which is not permitted: run deno with --allow-ffi (or -A)\n",
  );
});

Deno.test({
  name: "faketcp errors: without CAP_NET_RAW, one line saying to run as root or grant it, exit 1",
  ignore: missing("root"),
  fn: async () => {
    // Root without CAP_NET_RAW is what a non-root user looks like to socket(SOCK_RAW).
    const r = await run("setpriv", [
      "--inh-caps=-net_raw",
      "--bounding-set=-net_raw",
      Deno.execPath(),
      "run",
      "--quiet",
      "-A",
      PROBE,
      "listen",
    ]);
    const line =
      "fake TCP (-tcp) needs raw sockets, which were refused (Operation not permitted): " +
      'run as root, or give deno CAP_NET_RAW (sudo setcap cap_net_raw+ep "$(readlink -f "$(command -v deno)")")';
    assertEquals(r.code, 1);
    assertEquals(r.stderr, `${line}\nFakeTcpUnavailableError: ${line}\n`);
  },
});

Deno.test({
  name: "faketcp errors: as root with FFI, the probe says it can run",
  ignore: missing("root"),
  fn: async () => {
    const r = await run(Deno.execPath(), ["run", "--quiet", "-A", PROBE]);
    assertEquals([r.code, r.stdout, r.stderr], [0, "fake TCP available\n", ""]);
  },
});
