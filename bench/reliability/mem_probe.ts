/**
 * A memory probe to preload into one of our ends while the suite runs, to see what its RSS is
 * made of: every `MEM_PROBE_MS` (default 5000) it writes one line to stderr, or, with
 * `MEM_PROBE_DIR`, appends it to `<dir>/mem-<main module>-<pid>.log` (`mem-server.ts-1234.log`),
 * away from a busy log
 *
 *   mem t=<s> rss=<MiB> anon=<MiB> file=<MiB> heapTotal=<MiB> heapUsed=<MiB> external=<MiB> threads=<n>
 *
 * (`Deno.memoryUsage()` for the V8 heap and the memory V8 knows is held outside it, mostly
 * ArrayBuffers; `/proc/self/status` for anonymous and file-backed resident memory and threads).
 * The timer is unref'd: the probe never keeps a process alive.
 *
 *   deno task soak --only conns --pairs ours \
 *     --deno-flags '--preload=bench/reliability/mem_probe.ts'
 *
 * @module
 */

const MIB = 1 << 20;

function statusKiB(text: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** One probe line for this process now. */
export function memLine(t0: number): string {
  const u = Deno.memoryUsage();
  let status = "";
  try {
    status = Deno.readTextFileSync("/proc/self/status");
  } catch { /* not Linux: the /proc fields read NaN */ }
  const f = (v: number) => v.toFixed(1);
  return `mem t=${((performance.now() - t0) / 1000).toFixed(0)} rss=${f(u.rss / MIB)} ` +
    `anon=${f(statusKiB(status, "RssAnon") / 1024)} file=${
      f(statusKiB(status, "RssFile") / 1024)
    } ` +
    `heapTotal=${f(u.heapTotal / MIB)} heapUsed=${f(u.heapUsed / MIB)} ` +
    `external=${f(u.external / MIB)} threads=${statusKiB(status, "Threads")}`;
}

const period = Number(Deno.env.get("MEM_PROBE_MS") ?? "5000");
if (Number.isFinite(period) && period > 0) {
  const t0 = performance.now();
  const encoder = new TextEncoder();
  const dir = Deno.env.get("MEM_PROBE_DIR");
  const file = dir ? `${dir}/mem-${Deno.mainModule.split("/").at(-1)}-${Deno.pid}.log` : null;
  const id = setInterval(() => {
    const line = encoder.encode(memLine(t0) + "\n");
    if (file) Deno.writeFileSync(file, line, { append: true });
    else Deno.stderr.writeSync(line);
  }, period);
  Deno.unrefTimer(id);
}
