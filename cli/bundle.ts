/**
 * `deno task build`: the client and the server as one JavaScript file each,
 * `dist/kcptun-ts-client.js` and `dist/kcptun-ts-server.js`, which the `client` and `server` tasks,
 * the systemd units and the benchmarks run.
 *
 * Why: Deno keeps every TypeScript module of a run as transpiled source with an inline source map
 * on V8's heap and touches more of its own code to load ~130 of them; one minified file does
 * neither. An idle end measured 55.6 MiB resident from the sources and 49.4 MiB from the bundle
 * (docs/performance.md, "Memory"). The bytes on the wire and every behaviour are the same: the
 * bundle is the same modules, joined by `deno bundle` (esbuild, fetched from npm on first use).
 *
 * `--if-stale` rebuilds only when a source file is newer than the bundle (the tasks run it before
 * every start; it reads ~150 mtimes). When `deno bundle` fails (no npm registry, no esbuild for
 * this platform) the bundle becomes a two-line module running `cli/<end>.ts`, with one line on
 * stderr saying so: the end then runs from the sources, as before, with the memory they cost.
 *
 * @module
 */

/** The two ends: entry source and bundle path, relative to the repository root. */
export const BUNDLES = {
  client: { entry: "cli/client.ts", output: "dist/kcptun-ts-client.js" },
  server: { entry: "cli/server.ts", output: "dist/kcptun-ts-server.js" },
} as const;

/** An end's name. */
export type End = keyof typeof BUNDLES;

/** Where the sources of a bundle live, relative to the repository root (walked for mtimes). */
const SOURCES = ["cli", "runtime", "pipeline", "transforms", "transports", "mod.ts", "plugin.ts"];
/** Files whose change alters how sources resolve. */
const CONFIG = ["deno.json", "deno.lock"];

const ROOT = new URL("../", import.meta.url);

async function mtime(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

async function newestUnder(path: string): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  if (!info.isDirectory) return time(info);
  let newest = time(info);
  for await (const entry of Deno.readDir(path)) {
    const child = `${path}/${entry.name}`;
    if (entry.isDirectory) newest = Math.max(newest, await newestUnder(child));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, await mtime(child));
  }
  return newest;
}

function time(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? 0;
}

/** The newest mtime (ms) among the sources and config a bundle is made from, under `root`. */
export async function newestSource(root: string = ROOT.pathname): Promise<number> {
  let newest = 0;
  for (const p of SOURCES) newest = Math.max(newest, await newestUnder(root + p));
  for (const p of CONFIG) newest = Math.max(newest, await mtime(root + p));
  return newest;
}

/** True when `output` is missing or older than a source. */
export async function isStale(output: string, root: string = ROOT.pathname): Promise<boolean> {
  const built = await mtime(output);
  return built === 0 || built < await newestSource(root);
}

/** What {@link buildBundle} did. */
export interface BuildResult {
  /** Where the bundle is. */
  output: string;
  /** `bundled`: one minified file; `fallback`: an import of the sources (`detail` says why). */
  kind: "bundled" | "fallback";
  /** `deno bundle`'s error output for a fallback. */
  detail?: string;
}

/**
 * Bundles one end (`entry`, relative to the repository) to `output` (default `dist/…` under the
 * repository). Written to a temporary
 * file first and renamed, so that an end starting meanwhile reads the old bundle or the new one,
 * never half of one.
 */
export async function buildBundle(
  end: End,
  output?: string,
  entry: string = BUNDLES[end].entry,
): Promise<BuildResult> {
  const root = ROOT.pathname;
  const out = output ?? root + BUNDLES[end].output;
  const dir = out.slice(0, out.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${out}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--minify",
      "--keep-names",
      "--output",
      tmp,
      root + entry,
    ],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.success) {
    await Deno.rename(tmp, out);
    return { output: out, kind: "bundled" };
  }
  await Deno.remove(tmp).catch(() => {});
  // cli/<end>.ts runs its main only as the main module, so the shim calls it from cli/run.ts.
  const run = JSON.stringify(new URL("cli/run.ts", ROOT).href);
  const main = `${end}Main`;
  await Deno.writeTextFile(tmp, `import { ${main} } from ${run};\nawait ${main}(Deno.args);\n`);
  await Deno.rename(tmp, out);
  const detail = new TextDecoder().decode(r.stderr).trim().split("\n").at(-1) ?? "";
  return { output: out, kind: "fallback", detail };
}

/**
 * Builds whichever of the two bundles is stale; returns their paths (absolute). For benchmarks
 * and tests that start the ends as the tasks do. A fallback is reported through `warn`.
 */
export async function ensureBundles(
  warn: (line: string) => void = (line) => console.error(line),
): Promise<Record<End, string>> {
  const paths = {} as Record<End, string>;
  for (const end of Object.keys(BUNDLES) as End[]) {
    const output = ROOT.pathname + BUNDLES[end].output;
    if (await isStale(output)) {
      const r = await buildBundle(end, output);
      if (r.kind === "fallback") warn(`build: ${end} runs from the sources: ${r.detail}`);
    }
    paths[end] = output;
  }
  return paths;
}

async function main(args: string[]): Promise<number> {
  const ifStale = args.includes("--if-stale");
  const named = args.filter((a) => !a.startsWith("-"));
  for (const a of named) {
    if (!(a in BUNDLES)) {
      console.error(`build: unknown end '${a}' (client or server)`);
      return 2;
    }
  }
  const ends = (named.length > 0 ? named : Object.keys(BUNDLES)) as End[];
  for (const end of ends) {
    const output = ROOT.pathname + BUNDLES[end].output;
    if (ifStale && !(await isStale(output))) continue;
    const r = await buildBundle(end, output);
    if (r.kind === "fallback") {
      console.error(
        `build: deno bundle failed for ${BUNDLES[end].entry} (${r.detail}); ` +
          `${BUNDLES[end].output} runs the sources instead (more memory, same behaviour)`,
      );
    } else if (!ifStale) {
      console.log(`built ${BUNDLES[end].output}`);
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
