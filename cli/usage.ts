/**
 * `-h` and `-v` output in the shape kcptun's (urfave/cli v1) has, and the helper that prints
 * a parse outcome and exits.
 *
 * @module
 */

import type { FlagSpec } from "./flags.ts";
import denoJson from "../deno.json" with { type: "json" };

/** kcptun-ts's version (from deno.json). */
export const VERSION: string = denoJson.version;

/** `-v` output: `kcptun-ts version <v>` and a newline. */
export function versionText(): string {
  return `kcptun-ts version ${VERSION}\n`;
}

function flagNames(spec: FlagSpec): string {
  const placeholder = spec.kind === "bool" ? "" : " value";
  return spec.names.map((n) => (n.length === 1 ? "-" : "--") + n + placeholder).join(", ");
}

function flagText(spec: FlagSpec): string {
  let def = "";
  if (spec.kind === "int") def = ` (default: ${spec.defaultValue})`;
  else if (spec.kind === "string" && spec.defaultValue !== "") {
    def = ` (default: ${JSON.stringify(spec.defaultValue)})`;
  }
  const env = spec.env ? ` [$${spec.env}]` : "";
  return `${spec.usage}${def}`.trim() + env;
}

/**
 * Lines of cells aligned as Go's `text/tabwriter` does with padding 2: each column is as wide
 * as its widest cell plus two spaces; the last cell of a line is not padded.
 */
function alignColumns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return rows.map(([a, b]) => a.padEnd(width) + b);
}

/**
 * The help text: NAME, USAGE, VERSION, COMMANDS and GLOBAL OPTIONS (hidden flags left out), as
 * urfave/cli v1 lays it out.
 */
export function renderHelp(
  role: "client" | "server",
  specs: readonly FlagSpec[],
  programName: string,
): string {
  const options = alignColumns(
    specs.filter((s) => !s.hidden).map((s) => ["   " + flagNames(s), flagText(s)] as const),
  );
  return [
    "NAME:",
    `   kcptun-ts - ${role}(with SMUX)`,
    "",
    "USAGE:",
    `   ${programName} [global options] command [command options] [arguments...]`,
    "",
    "VERSION:",
    `   ${VERSION}`,
    "",
    "COMMANDS:",
    ...alignColumns([["   help, h", "Shows a list of commands or help for one command"]]),
    "",
    "GLOBAL OPTIONS:",
    ...options,
    "",
  ].join("\n");
}

/** Writes all of `text` to a stream synchronously. */
function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/**
 * Prints an exit outcome of `parseClientConfig`/`parseServerConfig` (stdout text, stderr text)
 * and exits with its code.
 */
export function exitWith(outcome: { code: number; stdout: string; stderr: string }): never {
  if (outcome.stdout) writeAll(Deno.stdout, outcome.stdout);
  if (outcome.stderr) writeAll(Deno.stderr, outcome.stderr);
  Deno.exit(outcome.code);
}
