/**
 * The `smux` boundary stage (role "mux"): one smux session per KCP session.
 *
 * Options take kcptun's flag names (`smuxver`, `smuxbuf`, `streambuf`, `framesize`,
 * `keepalive` in seconds) or {@link SmuxConfig} field names (times in ms).
 *
 * @module
 */

import type { MuxSettings } from "../../pipeline/roles.ts";
import type { BoundaryStageDefinition, StageOptions } from "../../pipeline/stage.ts";
import { StageError } from "../../pipeline/stage.ts";
import { type SmuxConfig, smuxConfig } from "./config.ts";

const KCPTUN_NAMES: Record<string, [keyof SmuxConfig, number]> = {
  smuxver: ["version", 1],
  smuxbuf: ["maxReceiveBuffer", 1],
  streambuf: ["maxStreamBuffer", 1],
  framesize: ["maxFrameSize", 1],
  keepalive: ["keepAliveInterval", 1000],
};

/** Turns stage options into a checked {@link SmuxConfig}; throws a `StageError` on bad input. */
export function smuxOptions(options: StageOptions = {}): SmuxConfig {
  const partial: Record<string, unknown> = {};
  const known = new Set<string>(Object.keys(smuxConfig()));
  for (const [k, v] of Object.entries(options)) {
    const alias = KCPTUN_NAMES[k];
    const key = alias ? alias[0] : k;
    if (!known.has(key)) throw new StageError(`smux: unknown option ${JSON.stringify(k)}`);
    if (key === "keepAliveDisabled") {
      if (typeof v !== "boolean") throw new StageError(`smux: ${k} must be true or false`);
      partial[key] = v;
      continue;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new StageError(`smux: option ${k} must be a number, got ${JSON.stringify(v)}`);
    }
    partial[key] = alias ? v * alias[1] : v;
  }
  return smuxConfig(partial as Partial<SmuxConfig>);
}

/** What the `smux` stage gives: checked smux settings for the sessions of this pipeline. */
export type SmuxStageInstance = MuxSettings;

const OPTION_NAMES = [...Object.keys(KCPTUN_NAMES), ...Object.keys(smuxConfig())];

/** The `smux` boundary stage definition. */
export const smuxStage: BoundaryStageDefinition = {
  name: "smux",
  kind: "boundary",
  role: "mux",
  description: "smux v1/v2 stream multiplexer (kcptun -smuxver, -smuxbuf, -streambuf, -framesize)",
  options: Object.fromEntries(
    OPTION_NAMES.map((k) => [k, { type: k === "keepAliveDisabled" ? "boolean" : "integer" }]),
  ),
  create(options: StageOptions): SmuxStageInstance {
    return Object.freeze({ protocol: "smux", ...smuxOptions(options) });
  },
};

export default smuxStage;
