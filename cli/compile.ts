/**
 * `deno task compile`: single binaries `dist/kcptun-ts-client` and `dist/kcptun-ts-server`.
 *
 * `deno compile` needs Deno's runtime base (`denort`) for this Deno version: it downloads it from
 * dl.deno.land, or takes the file named by `DENORT_BIN`. Where neither works, this says so in
 * one line and exits 3. The example plugin is embedded (`--include`), so the binaries can load
 * `./examples/padding.ts` by that path; other plugins must be JavaScript at run time.
 *
 * @module
 */

import { V8_FLAGS_ARG } from "./v8_flags.ts";

/** Exit code when Deno's compile base is missing. */
export const BASE_MISSING = 3;

const TARGETS = [
  ["cli/client.ts", "dist/kcptun-ts-client"],
  ["cli/server.ts", "dist/kcptun-ts-server"],
] as const;

/** Compiles both binaries into `outDir`; returns an exit code and a one-line message. */
export async function compileAll(outDir = "dist"): Promise<{ code: number; message: string }> {
  await Deno.mkdir(outDir, { recursive: true });
  for (const [entry, out] of TARGETS) {
    const output = out.replace(/^dist/, outDir);
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "-A",
        V8_FLAGS_ARG,
        "--include",
        "examples/padding.ts",
        "--output",
        output,
        entry,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      const err = new TextDecoder().decode(r.stderr);
      if (/Setting up base binary|denort|DENORT_BIN/i.test(err)) {
        return {
          code: BASE_MISSING,
          message: `deno compile: Deno's runtime base (denort ${Deno.version.deno}) is not ` +
            `available here (download from dl.deno.land failed and DENORT_BIN is ` +
            `${Deno.env.get("DENORT_BIN") ? "not a usable denort" : "unset"}); ` +
            `run where dl.deno.land is reachable, or set DENORT_BIN to a denort binary`,
        };
      }
      return { code: 1, message: `deno compile ${entry} failed:\n${err}` };
    }
  }
  return {
    code: 0,
    message: `built ${TARGETS.map(([, o]) => o.replace(/^dist/, outDir)).join(", ")}`,
  };
}

if (import.meta.main) {
  const { code, message } = await compileAll(Deno.args[0]);
  (code === 0 ? console.log : console.error)(message);
  Deno.exit(code);
}
