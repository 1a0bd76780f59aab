/**
 * From kcptun's flags to a pipeline: which stages (`defaultPipeline` in `config.ts`, or the
 * configured list) and each stage's options from the flags, with the `pipeline` options of a
 * JSON config applied over them.
 *
 * @module
 */

import type { Pipeline, PipelineSpec } from "../pipeline/pipeline.ts";
import type { StageRegistry } from "../pipeline/registry.ts";
import { StageError, type StageOptions } from "../pipeline/stage.ts";
import { resolvePipeline as resolveSpec } from "../runtime/api.ts";
import { type ClientConfig, effectivePipeline, type ServerConfig } from "./config.ts";
import { goQuote } from "./flags.ts";

/** The stage options kcptun's flags give, by stage name. */
export function flagStageOptions(
  config: ClientConfig | ServerConfig,
): Record<string, StageOptions> {
  return {
    crypt: {
      crypt: config.crypt,
      key: config.key,
      ...(config.replaywindow > 0 ? { replayWindow: config.replaywindow } : {}),
    },
    fec: {
      dataShards: config.datashard,
      parityShards: config.parityshard,
      ...(config.autofec ? { auto: true } : {}),
    },
    kcp: {
      mtu: config.mtu,
      sndwnd: config.sndwnd,
      rcvwnd: config.rcvwnd,
      nodelay: config.nodelay,
      interval: config.interval,
      resend: config.resend,
      nc: config.nc,
      acknodelay: config.acknodelay,
      ratelimit: config.ratelimit,
    },
    smux: {
      smuxver: config.smuxver,
      smuxbuf: config.smuxbuf,
      streambuf: config.streambuf,
      framesize: config.framesize,
      keepalive: config.keepalive,
    },
    qpp: { key: config.key, count: config.qppcount },
  };
}

/**
 * Resolves the config's pipeline (names, plugins, order) with each stage's options from the flags.
 * Throws a `StageError` (one line) when the JSON `pipelineOptions` name a stage the pipeline does
 * not have: they would otherwise be dropped without a word.
 */
export async function resolvePipeline(
  config: ClientConfig | ServerConfig,
  opts: { registry?: StageRegistry; base?: string | URL } = {},
): Promise<Pipeline> {
  const spec = effectivePipeline(config);
  const fromFlags = flagStageOptions(config);
  const options: Record<string, StageOptions> = { ...fromFlags };
  for (const [name, o] of Object.entries(spec.options ?? {})) {
    options[name] = { ...(fromFlags[name] ?? {}), ...o };
  }
  const merged: PipelineSpec = { stages: spec.stages, options };
  const pipeline = await resolveSpec(merged, opts);
  for (const name of Object.keys(config.pipelineOptions)) {
    if (pipeline.stages.some((s) => s.name === name || s.spec === name)) continue;
    throw new StageError(
      `config file ${goQuote(config.configFile)}: "pipelineOptions" names stage ${
        goQuote(name)
      }, ` +
        `which is not in the pipeline (${pipeline.describe()})`,
    );
  }
  return pipeline;
}
