/**
 * Where stage names come from: a registry of built-in stages, and plugin modules loaded by path.
 *
 * @module
 */

import {
  BOUNDARY_ORDER,
  type BoundaryRole,
  type StageDefinition,
  StageError,
  type StageKind,
} from "./stage.ts";

const KINDS: readonly StageKind[] = ["packet", "stream", "boundary"];

/** Stage definitions by name. */
export class StageRegistry {
  readonly #stages = new Map<string, StageDefinition>();

  /** A registry holding `defs`. */
  constructor(defs: Iterable<StageDefinition> = []) {
    for (const d of defs) this.register(d);
  }

  /** Adds (or replaces) a definition under its name. */
  register(def: StageDefinition): this {
    this.#stages.set(def.name, validateDefinition(def, `stage ${JSON.stringify(def?.name)}`));
    return this;
  }

  /** The definition named `name`, or undefined. */
  get(name: string): StageDefinition | undefined {
    return this.#stages.get(name);
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.#stages.keys()];
  }

  /** A registry with the same definitions, to extend without touching this one. */
  clone(): StageRegistry {
    return new StageRegistry(this.#stages.values());
  }
}

/** True when a pipeline entry names a module rather than a registered stage. */
export function isModuleSpecifier(spec: string): boolean {
  return /^(\.{1,2}\/|\/|file:|https?:|data:)/.test(spec) || /\.(m?js|ts|mts)$/.test(spec);
}

/**
 * Checks that `value` is a stage definition and returns it typed; throws a {@link StageError}
 * whose message starts with `where` otherwise.
 */
export function validateDefinition(value: unknown, where: string): StageDefinition {
  const v = value as Record<string, unknown> | null;
  if (v === null || typeof v !== "object") {
    throw new StageError(`${where}: expected a stage definition object { name, kind, create }`);
  }
  if (typeof v.name !== "string" || v.name === "") {
    throw new StageError(`${where}: stage definition has no "name" string`);
  }
  if (!KINDS.includes(v.kind as StageKind)) {
    throw new StageError(
      `${where}: stage ${v.name} has kind ${JSON.stringify(v.kind)}; expected one of ${
        KINDS.join(", ")
      }`,
    );
  }
  if (typeof v.create !== "function") {
    throw new StageError(`${where}: stage ${v.name} has no create(options, context) function`);
  }
  if (v.kind === "boundary" && !BOUNDARY_ORDER.includes(v.role as BoundaryRole)) {
    throw new StageError(
      `${where}: boundary stage ${v.name} has role ${JSON.stringify(v.role)}; expected one of ${
        BOUNDARY_ORDER.join(", ")
      }`,
    );
  }
  return v as unknown as StageDefinition;
}

/** Turns a pipeline entry that names a module into an importable URL (relative to `base`). */
export function moduleUrl(spec: string, base: string | URL): URL {
  if (/^(file:|https?:|data:)/.test(spec)) return new URL(spec);
  return new URL(spec, base);
}

/**
 * Imports a plugin module and returns its stage definition (the default export, or an export
 * named `stage`). A compiled binary cannot transpile TypeScript at run time: plugins for
 * compiled binaries must be JavaScript.
 */
export async function loadPlugin(spec: string, base: string | URL): Promise<StageDefinition> {
  const url = moduleUrl(spec, base);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url.href);
  } catch (e) {
    throw new StageError(
      `plugin ${spec}: cannot load ${url.href}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const def = mod.default ?? mod.stage;
  if (def === undefined) {
    throw new StageError(
      `plugin ${spec}: module has no default export describing a stage ({ name, kind, create })`,
    );
  }
  return validateDefinition(def, `plugin ${spec}`);
}

/** The directory of the current process, as a base URL for relative plugin paths. */
export function cwdUrl(): URL {
  const cwd = Deno.cwd();
  return new URL(`file://${cwd.endsWith("/") ? cwd : cwd + "/"}`);
}
