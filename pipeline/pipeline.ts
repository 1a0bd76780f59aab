/**
 * A pipeline: an ordered list of stage names (outermost, application side, first), resolved
 * against a registry or loaded from plugin modules, checked by kind, and instantiated per session.
 *
 * ```jsonc
 * // what kcptun's flags expand to on the client
 * ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"]
 * ```
 *
 * Kinds fix the slots: the app boundary, then smux, then stream stages, then KCP, then packet
 * stages, then the transport. Within a kind any order is allowed; only the default order is
 * wire-compatible with Go kcptun.
 *
 * @module
 */

import { PacketChain } from "./chain.ts";
import { cwdUrl, isModuleSpecifier, loadPlugin, type StageRegistry } from "./registry.ts";
import {
  type BoundaryRole,
  type BoundaryStageDefinition,
  type OptionSchema,
  type OptionType,
  type PacketStageDefinition,
  type StageContext,
  type StageDefinition,
  StageError,
  type StageOptions,
  type StreamStage,
  type StreamStageDefinition,
} from "./stage.ts";

/** One entry of a pipeline list: a stage name or module path, optionally with options. */
export type PipelineEntry = string | { stage: string; options?: StageOptions };

/** A pipeline as configured. */
export interface PipelineSpec {
  /** Stage names or module paths, application side first. */
  stages: readonly PipelineEntry[];
  /** Options per stage name; an entry's own `options` are applied over these. */
  options?: Readonly<Record<string, StageOptions>>;
}

/** Where relative plugin paths are resolved and which registry names come from. */
export interface BuildOptions {
  /** Registered stages. */
  registry: StageRegistry;
  /** Base for relative plugin paths (default: the current directory). */
  base?: string | URL;
}

/**
 * A slot in the pipeline, in order. A stream stage listed before the multiplexer is a
 * per-stream stage (one instance per smux stream, such as qpp); after it, a session stage (one
 * per KCP session, such as snappy).
 */
export type Slot = "app" | "perstream" | "mux" | "stream" | "arq" | "packet" | "transport";

const SLOT_ORDER: readonly Slot[] = [
  "app",
  "perstream",
  "mux",
  "stream",
  "arq",
  "packet",
  "transport",
];

const SLOT_TEXT: Record<Slot, string> = {
  app: "application boundary (tcp, unix)",
  perstream: "per-stream stage",
  mux: "multiplexer boundary (smux)",
  stream: "session stream stage",
  arq: "ARQ boundary (kcp)",
  packet: "packet stage",
  transport: "transport boundary (udp, faketcp)",
};

/** A pipeline entry resolved to its definition. */
export interface ResolvedStage {
  /** The definition's name. */
  readonly name: string;
  /** How the entry was written (name or module path). */
  readonly spec: string;
  /** The definition. */
  readonly definition: StageDefinition;
  /** Its slot. */
  readonly slot: Slot;
  /** Options the factory will get. */
  readonly options: StageOptions;
}

function slotOf(def: StageDefinition): Slot {
  if (def.kind === "packet") return "packet";
  if (def.kind === "stream") return "stream";
  return (def as BoundaryStageDefinition).role;
}

/** A checked pipeline; `create*` methods instantiate its stages for one session. */
export class Pipeline {
  /** Every stage, application side first. */
  readonly stages: readonly ResolvedStage[];

  /** Use {@link buildPipeline}, which resolves names and plugins first. */
  constructor(stages: readonly ResolvedStage[]) {
    checkOrder(stages);
    this.stages = stages;
  }

  /** The boundary stage in `role`'s slot, if the pipeline has one. */
  boundary(role: BoundaryRole): ResolvedStage | undefined {
    return this.stages.find((s) => s.slot === role);
  }

  /** Session stream stages (between smux and KCP), application side first. */
  get streamStages(): ResolvedStage[] {
    return this.stages.filter((s) => s.slot === "stream");
  }

  /** Per-stream stages (above smux), application side first. */
  get perStreamStages(): ResolvedStage[] {
    return this.stages.filter((s) => s.slot === "perstream");
  }

  /** Packet stages, KCP side first. */
  get packetStages(): ResolvedStage[] {
    return this.stages.filter((s) => s.slot === "packet");
  }

  /**
   * How many packet stages next to the transport are `shared` (one instance for every session):
   * a server runs those before it routes a datagram to its session (crypt's check and open).
   */
  get sharedPacketStageCount(): number {
    const p = this.packetStages;
    let n = 0;
    for (let i = p.length - 1; i >= 0; i--) {
      if ((p[i].definition as PacketStageDefinition).shared !== true) break;
      n++;
    }
    return n;
  }

  /** Instantiates the packet stages `[from, to)` (KCP side first) fused into one chain. */
  createPacketChain(ctx: StageContext, from = 0, to?: number): PacketChain {
    const defs = this.packetStages.slice(from, to);
    return new PacketChain(
      defs.map((s) => (s.definition as PacketStageDefinition).create(s.options, ctx)),
    );
  }

  /** Instantiates the stream stages, application side first. */
  createStreamStages(ctx: StageContext): StreamStage[] {
    return this.streamStages.map((s) =>
      (s.definition as StreamStageDefinition).create(s.options, ctx)
    );
  }

  /** The list as text: `tcp > smux > snappy > kcp > fec > crypt > udp`. */
  describe(): string {
    return this.stages.map((s) => s.spec).join(" > ");
  }
}

function checkOrder(stages: readonly ResolvedStage[]): void {
  let last = -1;
  let lastStage: ResolvedStage | null = null;
  const seen = new Set<Slot>();
  for (const s of stages) {
    const idx = SLOT_ORDER.indexOf(s.slot);
    if (s.slot !== "stream" && s.slot !== "perstream" && s.slot !== "packet") {
      if (seen.has(s.slot)) {
        throw new StageError(
          `pipeline: "${s.spec}" is a second ${SLOT_TEXT[s.slot]}; a pipeline has at most one`,
        );
      }
      seen.add(s.slot);
    }
    if (idx < last && lastStage) {
      throw new StageError(
        `pipeline: "${s.spec}" is a ${
          SLOT_TEXT[s.slot]
        } and cannot come after "${lastStage.spec}" (${SLOT_TEXT[lastStage.slot]}); the order is: ${
          SLOT_ORDER.map((x) => SLOT_TEXT[x]).join(", ")
        }`,
      );
    }
    last = idx;
    lastStage = s;
  }
  const hasStream = stages.some((s) => s.slot === "stream");
  const hasPacket = stages.some((s) => s.slot === "packet");
  if (hasStream && hasPacket && !seen.has("arq")) {
    throw new StageError(
      "pipeline: stream stages and packet stages need an ARQ boundary (kcp) between them",
    );
  }
}

function typeOf(v: unknown): OptionType | "other" {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (v !== null && typeof v === "object") return "object";
  return "other";
}

/**
 * What is wrong with giving option `key` the value `value` under `schema`: an option the stage
 * does not declare (with the ones it does), or one of another type; null when nothing is.
 */
export type OptionProblem =
  | { readonly kind: "unknown"; readonly takes: readonly string[] }
  | { readonly kind: "type"; readonly expected: OptionType };

/** Checks one option against a stage's declared {@link OptionSchema} (see {@link OptionProblem}). */
export function checkStageOption(
  schema: OptionSchema | undefined,
  key: string,
  value: unknown,
): OptionProblem | null {
  const want = schema?.[key];
  if (want === undefined) return { kind: "unknown", takes: Object.keys(schema ?? {}) };
  const got = typeOf(value);
  if (got === want.type || (want.type === "number" && got === "integer")) return null;
  return { kind: "type", expected: want.type };
}

/**
 * A problem in words, naming the stage (as written in the pipeline) and the option:
 * `stage "kcp" takes no option "mtus" (it takes: mode, mtu, ...)` or
 * `option "mtu" of stage "kcp" must be an integer` (callers add what was given).
 */
export function describeOptionProblem(stage: string, key: string, p: OptionProblem): string {
  if (p.kind === "unknown") {
    return `stage "${stage}" takes no option "${key}" (${
      p.takes.length > 0 ? `it takes: ${p.takes.join(", ")}` : "it takes none"
    })`;
  }
  return `option "${key}" of stage "${stage}" must be ${
    p.expected === "integer" ? "an integer" : `a ${p.expected}`
  }`;
}

/** Every option given must be one the stage declares, of its type. */
function checkOptions(def: StageDefinition, spec: string, options: StageOptions): void {
  for (const [key, value] of Object.entries(options)) {
    const p = checkStageOption(def.options, key, value);
    if (p === null) continue;
    throw new StageError(
      `pipeline: ${describeOptionProblem(spec, key, p)}${
        p.kind === "type" ? `, got ${JSON.stringify(value)}` : ""
      }`,
    );
  }
}

/** Resolves every entry (registry names and plugin modules) and checks the order. */
export async function buildPipeline(spec: PipelineSpec, opts: BuildOptions): Promise<Pipeline> {
  if (!Array.isArray(spec.stages)) throw new StageError("pipeline: expected a list of stages");
  const base = opts.base ?? cwdUrl();
  const resolved: ResolvedStage[] = [];
  for (const entry of spec.stages) {
    const name = typeof entry === "string" ? entry : entry?.stage;
    if (typeof name !== "string" || name === "") {
      throw new StageError(
        `pipeline: entry ${JSON.stringify(entry)} is neither a stage name nor { stage, options }`,
      );
    }
    let def: StageDefinition | undefined;
    if (isModuleSpecifier(name)) {
      def = await loadPlugin(name, base);
    } else {
      def = opts.registry.get(name);
      if (!def) {
        throw new StageError(
          `pipeline: unknown stage "${name}" (known: ${
            opts.registry.names().join(", ")
          }); give a plugin as a module path such as ./my-stage.js`,
        );
      }
    }
    const options: StageOptions = {
      ...(spec.options?.[def.name] ?? {}),
      ...(spec.options?.[name] ?? {}),
      ...(typeof entry === "string" ? {} : entry.options ?? {}),
    };
    checkOptions(def, name, options);
    resolved.push({ name: def.name, spec: name, definition: def, slot: slotOf(def), options });
  }
  // Stream stages above the multiplexer run per smux stream.
  const mux = resolved.findIndex((s) => s.slot === "mux");
  for (let i = 0; i < mux; i++) {
    if (resolved[i].slot === "stream") resolved[i] = { ...resolved[i], slot: "perstream" };
  }
  return new Pipeline(resolved);
}
