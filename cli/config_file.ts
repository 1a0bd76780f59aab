/**
 * kcptun's `-c` JSON file: which settings it gives, read as Go's `encoding/json` reads them into
 * kcptun's config struct (keys case-insensitive, the last duplicate wins, `null` skipped, unknown
 * keys ignored), with one-line errors that name the file, the key and its line and column.
 *
 * @module
 */

import {
  checkStageOption,
  describeOptionProblem,
  type PipelineEntry,
  type PipelineSpec,
} from "../pipeline/pipeline.ts";
import { isModuleSpecifier, type StageRegistry } from "../pipeline/registry.ts";
import type { StageOptions } from "../pipeline/stage.ts";
import { builtinRegistry } from "../runtime/registry.ts";
import { goQuote } from "./flags.ts";
import {
  describeJsonNode,
  foldKey,
  type JsonNode,
  JsonSyntaxError,
  jsonToPlain,
  parseJsonText,
  positionOf,
} from "./json.ts";
import {
  ConfigError,
  type RawValue,
  type Role,
  type Setting,
  type SettingKey,
  settingsOf,
} from "./settings.ts";

/** What a JSON file contributes: values by setting key, and the keys that were ignored. */
export interface JsonSettings {
  /** Settings present (null values are skipped, as Go does). */
  readonly values: Map<SettingKey, RawValue>;
  /** Keys that name no setting of this role, as written. */
  readonly unknown: readonly string[];
}

/** Says where something is: the file, the top-level key and the line and column. */
type Where = (n: { readonly at: number }) => string;

/** What the file's stage options are checked against. */
interface StageCheck {
  readonly where: Where;
  readonly registry: StageRegistry;
}

/**
 * A stage's options object. For a registered stage every option must be one its definition
 * declares, of its type (checked here so that the error can say where; a plugin module's
 * options are checked when it is loaded, and an unknown name fails when the pipeline is built).
 */
function stageOptionsOf(n: JsonNode, check: StageCheck, stage: string, what: string): StageOptions {
  const { where, registry } = check;
  if (n.t !== "object") {
    throw new ConfigError(`${where(n)}: ${what} must be an object, got ${describeJsonNode(n)}`);
  }
  const def = isModuleSpecifier(stage) ? undefined : registry.get(stage);
  for (const m of def === undefined ? [] : n.members) {
    const p = checkStageOption(def!.options, m.key, jsonToPlain(m.value));
    if (p === null) continue;
    throw new ConfigError(
      p.kind === "unknown"
        ? `${where(m)}: ${describeOptionProblem(stage, m.key, p)}`
        : `${where(m.value)}: ${describeOptionProblem(stage, m.key, p)}, got ${
          describeJsonNode(m.value)
        }`,
    );
  }
  return jsonToPlain(n) as StageOptions;
}

function pipelineFromJson(node: JsonNode, check: StageCheck): PipelineSpec {
  const { where } = check;
  const bad = (n: JsonNode, why: string): never => {
    throw new ConfigError(`${where(n)}: ${why}`);
  };
  const entry = (n: JsonNode): PipelineEntry => {
    if (n.t === "string") {
      if (n.v.trim() === "") return bad(n, "empty stage name in pipeline");
      return n.v.trim();
    }
    if (n.t !== "object") {
      return bad(
        n,
        `a pipeline entry is a stage name or { "stage", "options" }, got ${describeJsonNode(n)}`,
      );
    }
    let stage: string | undefined;
    let optionsNode: JsonNode | undefined;
    for (const m of n.members) {
      if (m.key === "stage") {
        if (m.value.t !== "string" || m.value.v.trim() === "") {
          return bad(
            m.value,
            `"stage" must be a non-empty string, got ${describeJsonNode(m.value)}`,
          );
        }
        stage = m.value.v.trim();
      } else if (m.key === "options") {
        optionsNode = m.value;
      } else {
        return bad(
          m.value,
          `unknown key ${goQuote(m.key)} in a pipeline entry (expected "stage", "options")`,
        );
      }
    }
    if (stage === undefined) return bad(n, 'a pipeline entry object needs "stage"');
    if (optionsNode === undefined) return { stage };
    return { stage, options: stageOptionsOf(optionsNode, check, stage, "stage options") };
  };
  if (node.t !== "array") {
    return bad(node, `pipeline must be an array of stages, got ${describeJsonNode(node)}`);
  }
  if (node.items.length === 0) return bad(node, "pipeline is empty");
  return { stages: node.items.map(entry) };
}

function pipelineOptionsFromJson(
  node: JsonNode,
  check: StageCheck,
): Record<string, StageOptions> {
  const { where } = check;
  if (node.t !== "object") {
    throw new ConfigError(
      `${where(node)}: expected an object of per-stage option objects, got ${
        describeJsonNode(node)
      }`,
    );
  }
  const out: Record<string, StageOptions> = {};
  for (const m of node.members) {
    out[m.key] = stageOptionsOf(m.value, check, m.key, `options of stage ${goQuote(m.key)}`);
  }
  return out;
}

/** Options of {@link readJsonSettings}. */
export interface ReadJsonOptions {
  /** The stages whose declared options `pipeline` and `pipelineOptions` are checked against
   * (default: the built-ins). */
  readonly registry?: StageRegistry;
}

/**
 * Reads a kcptun JSON config for `role`: keys matched case-insensitively (a later duplicate
 * wins), `null` values skipped, unknown keys collected. Throws {@link ConfigError} (one line,
 * naming `file`, the key and its line and column) for broken JSON, a value of the wrong type, or
 * stage options that the registered stage does not declare (or of another type).
 */
export function readJsonSettings(
  text: string,
  file: string,
  role: Role,
  options: ReadJsonOptions = {},
): JsonSettings {
  const registry = options.registry ?? builtinRegistry();
  let root: JsonNode;
  try {
    root = parseJsonText(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      if (text.replace(/^\ufeff/, "").trim() === "") {
        throw new ConfigError(`config file ${goQuote(file)}: the file is empty`);
      }
      throw new ConfigError(`config file ${goQuote(file)}: ${e.message}`);
    }
    throw e;
  }
  if (root.t !== "object") {
    throw new ConfigError(
      `config file ${goQuote(file)}: expected a JSON object, got ${describeJsonNode(root)}`,
    );
  }
  const byJson = new Map<string, Setting<SettingKey>>();
  for (const s of settingsOf(role)) byJson.set(foldKey(s.json), s);
  const values = new Map<SettingKey, RawValue>();
  const unknown: string[] = [];
  for (const m of root.members) {
    const setting = byJson.get(foldKey(m.key));
    if (!setting) {
      if (!unknown.includes(m.key)) unknown.push(m.key);
      continue;
    }
    const v = m.value;
    if (v.t === "null") continue;
    const where = (n: { readonly at: number }) => {
      const p = positionOf(text, n.at);
      return `config file ${goQuote(file)}: ${
        goQuote(m.key)
      } at line ${p.line}, column ${p.column}`;
    };
    const mismatch = (expected: string): never => {
      throw new ConfigError(`${where(v)}: expected ${expected}, got ${describeJsonNode(v)}`);
    };
    switch (setting.kind) {
      case "string":
        if (v.t !== "string") mismatch("a string");
        else values.set(setting.key, v.v);
        break;
      case "bool":
        if (v.t !== "bool") mismatch("true or false");
        else values.set(setting.key, v.v);
        break;
      case "int": {
        if (v.t !== "number" || !/^-?[0-9]+$/.test(v.raw)) mismatch("an integer");
        else {
          const n = BigInt(v.raw);
          if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
            mismatch("an integer in range");
          }
          values.set(setting.key, Number(n));
        }
        break;
      }
      case "pipeline":
        values.set(setting.key, pipelineFromJson(v, { where, registry }));
        break;
      case "stageOptions":
        values.set(setting.key, pipelineOptionsFromJson(v, { where, registry }));
        break;
    }
  }
  return { values, unknown };
}
