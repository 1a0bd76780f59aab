/**
 * The rules of docs/architecture.md, checked on the tree as it is: which layer may import which
 * (every static import of every module), and that the documentation and the code's comments
 * name no file the repository does not have.
 */

import { assertEquals } from "./support/assert.ts";

const ROOT = new URL("../", import.meta.url);

/** Paths under the repository (relative, `/`-separated) of files ending in one of `exts`. */
async function files(exts: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const skip = new Set([".git", "node_modules", "dist", "tests/fixtures"]);
  async function walk(dir: string): Promise<void> {
    for await (const e of Deno.readDir(new URL(dir || ".", ROOT))) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (skip.has(path)) continue;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && exts.some((x) => path.endsWith(x))) out.push(path);
    }
  }
  await walk("");
  return out.sort();
}

/** The layer a path belongs to: its top folder, or the file itself at the top. */
function layerOf(path: string): string {
  const slash = path.indexOf("/");
  return slash < 0 ? path : path.slice(0, slash);
}

/** What each layer may import (besides npm: and node: modules); absent: anything. */
const ALLOWED: Record<string, readonly string[]> = {
  "pipeline": ["pipeline"],
  "transforms": ["pipeline", "transforms"],
  "transports": ["pipeline", "transports"],
  "runtime": ["pipeline", "transforms", "transports", "runtime"],
  "cli": ["pipeline", "transforms", "runtime", "cli", "deno.json"],
  "plugin.ts": ["pipeline"],
  "testing.ts": ["pipeline"],
  "mod.ts": ["plugin.ts", "pipeline", "transforms", "transports", "runtime"],
  "examples": ["mod.ts", "plugin.ts", "testing.ts", "examples"],
};

/** The package's own name, which resolves to its three faces. */
const SELF: Record<string, string> = {
  "@kcptun-ts/kcptun-ts": "mod.ts",
  "@kcptun-ts/kcptun-ts/plugin": "plugin.ts",
  "@kcptun-ts/kcptun-ts/testing": "testing.ts",
};

/** Static imports and re-exports at the start of a line (JSDoc examples start with ` * `). */
const IMPORT = /^[ \t]*(?:import|export)\b[^;"']*?["']([^"']+)["']/gm;

function resolve(from: string, specifier: string): string | null {
  if (specifier in SELF) return SELF[specifier];
  if (!specifier.startsWith(".")) return null; // npm:, node:, jsr: and import-map names
  return new URL(specifier, new URL(from, ROOT)).pathname.slice(ROOT.pathname.length);
}

Deno.test("architecture: every import follows the layer rules of docs/architecture.md", async () => {
  const broken: string[] = [];
  let checked = 0;
  for (const path of await files([".ts"])) {
    const allowed = ALLOWED[layerOf(path)];
    if (allowed === undefined) continue; // tests/, bench/: anything
    const text = await Deno.readTextFile(new URL(path, ROOT));
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(path, m[1]);
      if (target === null) continue;
      checked++;
      if (!allowed.includes(layerOf(target))) broken.push(`${path} imports ${target}`);
    }
  }
  assertEquals(broken, []);
  if (checked < 300) throw new Error(`only ${checked} imports found: the pattern is broken`);
});

Deno.test("architecture: nothing inside the layers imports the package's faces", async () => {
  const inside = ["pipeline", "transforms", "transports", "runtime", "cli"];
  const broken: string[] = [];
  for (const path of await files([".ts"])) {
    if (!inside.includes(layerOf(path))) continue;
    const text = await Deno.readTextFile(new URL(path, ROOT));
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(path, m[1]);
      if (target === "mod.ts" || target === "plugin.ts" || target === "testing.ts") {
        broken.push(`${path} imports ${target}`);
      }
    }
  }
  assertEquals(broken, []);
});

/** A path of this repository named in prose or a comment (not a relative import). */
const NAMED =
  /(?<![\w./-])(?:\.\/)?((?:bench|cli|docs|examples|pipeline|runtime|tests|transforms|transports)\/[\w./-]*\w\.(?:ts|md|json|js))(?!\w)/g;

Deno.test("architecture: documents and comments name only files that exist", async () => {
  const missing: string[] = [];
  let named = 0;
  for (const path of await files([".ts", ".md"])) {
    const text = await Deno.readTextFile(new URL(path, ROOT));
    for (const m of text.matchAll(NAMED)) {
      named++;
      try {
        await Deno.stat(new URL(m[1], ROOT));
      } catch {
        missing.push(`${path} names ${m[1]}`);
      }
    }
  }
  assertEquals([...new Set(missing)], []);
  if (named < 100) throw new Error(`only ${named} file names found: the pattern is broken`);
});

Deno.test("architecture: no document points outside the repository for its design or protocol", async () => {
  // The two background documents the project started from are not in the repository;
  // docs/architecture.md and docs/protocol.md say what a reader needs.
  const outside = new RegExp(`\\b(${["ARCHITECTURE", "PROTOCOL"].join("|")})\\.md\\b`);
  const found: string[] = [];
  for (const path of await files([".ts", ".md"])) {
    const text = await Deno.readTextFile(new URL(path, ROOT));
    if (outside.test(text)) found.push(path);
  }
  assertEquals(found, []);
});
