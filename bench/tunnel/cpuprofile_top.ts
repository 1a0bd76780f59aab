/**
 * Where the time goes in a V8 CPU profile (`deno run --cpu-prof`, as `bench/tunnel_bench.ts
 * --cpu-prof DIR` writes for our client and server): the top functions by self time and by
 * total (inclusive) time, with `(idle)`, `(program)` (native code outside JS, e.g. Deno's ops)
 * and `(garbage collector)` shown as V8 reports them.
 *
 *   deno run -A bench/tunnel/cpuprofile_top.ts FILE.cpuprofile [N]
 *
 * @module
 */

/** The parts of a `.cpuprofile` this reads. */
export interface CpuProfile {
  /** Call-tree nodes. */
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  /** The node sampled at each tick. */
  samples: number[];
  /** Microseconds between ticks. */
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface FunctionTime {
  /** `name file:line`. */
  name: string;
  /** Milliseconds with this function on top of the stack. */
  selfMs: number;
  /** Milliseconds with this function anywhere on the stack (counted once per sample). */
  totalMs: number;
}

function label(f: { functionName: string; url: string; lineNumber: number }): string {
  const name = f.functionName || "(anonymous)";
  if (!f.url) return name;
  const file = f.url.replace(/^file:\/\//, "").replace(
    /^.*\/(cli|pipeline|transforms|transports|bench)\//,
    "$1/",
  );
  return `${name} ${file}:${f.lineNumber + 1}`;
}

/** Self and total time per function, busiest first by self time. */
export function summariseProfile(p: CpuProfile): { totalMs: number; functions: FunctionTime[] } {
  const parent = new Map<number, number>();
  const byId = new Map<number, CpuProfile["nodes"][number]>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const fns = new Map<string, FunctionTime>();
  const get = (name: string) => {
    let f = fns.get(name);
    if (!f) fns.set(name, f = { name, selfMs: 0, totalMs: 0 });
    return f;
  };
  let totalMs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const ms = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    let id: number | undefined = p.samples[i];
    const seen = new Set<string>();
    let first = true;
    while (id !== undefined) {
      const node = byId.get(id);
      if (!node) break;
      const name = label(node.callFrame);
      if (name !== "(root)") {
        const f = get(name);
        if (first) f.selfMs += ms;
        if (!seen.has(name)) {
          f.totalMs += ms;
          seen.add(name);
        }
        first = false;
      }
      id = parent.get(id);
    }
  }
  const functions = [...fns.values()].sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs, functions };
}

/**
 * Self time per source file (`ext:deno_web/06_streams.js`, `transports/mmsg.ts`), busiest first:
 * where a cost spread over many small functions (Web Streams, say) adds up. Functions without
 * a file (Deno's ops, `(garbage collector)`) keep their own name.
 */
export function selfByFile(functions: FunctionTime[]): Array<{ file: string; selfMs: number }> {
  const files = new Map<string, number>();
  for (const f of functions) {
    const at = f.name.lastIndexOf(" ");
    const file = at > 0 && /:\d+$/.test(f.name)
      ? f.name.slice(at + 1).replace(/:\d+$/, "")
      : f.name;
    files.set(file, (files.get(file) ?? 0) + f.selfMs);
  }
  return [...files].map(([file, selfMs]) => ({ file, selfMs })).sort((a, b) => b.selfMs - a.selfMs);
}

if (import.meta.main) {
  const [file, nArg] = Deno.args;
  if (!file) {
    console.error("usage: deno run -A bench/tunnel/cpuprofile_top.ts FILE.cpuprofile [N]");
    Deno.exit(2);
  }
  const n = Number(nArg ?? 25);
  const { totalMs, functions } = summariseProfile(JSON.parse(Deno.readTextFileSync(file)));
  const busy = functions.filter((f) => f.name !== "(idle)").reduce((a, f) => a + f.selfMs, 0);
  console.log(
    `${file}: ${(totalMs / 1000).toFixed(2)} s sampled, ${(busy / 1000).toFixed(2)} s not idle`,
  );
  const pct = (ms: number) => `${(100 * ms / busy).toFixed(1)}%`.padStart(6);
  console.log("\nby self time (% of non-idle):");
  for (const f of functions.filter((f) => f.name !== "(idle)").slice(0, n)) {
    console.log(`${pct(f.selfMs)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  }
  console.log("\nself time by file (% of non-idle):");
  for (const f of selfByFile(functions.filter((f) => f.name !== "(idle)")).slice(0, n)) {
    console.log(`${pct(f.selfMs)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.file}`);
  }
  console.log("\nby total time (% of non-idle):");
  const byTotal = [...functions].filter((f) => f.name !== "(idle)")
    .sort((a, b) => b.totalMs - a.totalMs);
  for (const f of byTotal.slice(0, n)) {
    console.log(`${pct(f.totalMs)} ${f.totalMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  }
}
