/**
 * The `kcp` boundary stage (role "arq"): datagrams below, one reliable byte stream above.
 *
 * Options take kcptun's flag names: `mtu` (whole datagram, default 1350), `sndwnd`, `rcvwnd`,
 * `nodelay`, `interval`, `resend`, `nc`, `acknodelay`, `ratelimit` (bytes/s, 2026), or `mode`
 * (a kcptun preset, which wins over the four numbers as in kcptun).
 *
 * @module
 */

import type { BoundaryStageDefinition, StageOptions } from "../../pipeline/stage.ts";
import { StageError } from "../../pipeline/stage.ts";
import type { ArqSettings } from "../../pipeline/roles.ts";
import { MTU_MIN } from "./arq.ts";
import { KCP_MANUAL_DEFAULTS, KCP_MODES } from "./modes.ts";

/** What the `kcp` stage gives: checked KCP settings for the sessions of this pipeline. */
export type KcpStageInstance = ArqSettings;

function num(options: StageOptions, key: string, fallback: number, min: number, max: number) {
  const v = options[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new StageError(`kcp: option "${key}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** Checks kcp stage options (kcptun flag names) and resolves the mode preset. */
export function kcpStageOptions(options: StageOptions): KcpStageInstance {
  const mode = options.mode;
  const preset = typeof mode === "string" && mode in KCP_MODES
    ? KCP_MODES[mode as keyof typeof KCP_MODES]
    : null;
  const manual = {
    nodelay: num(options, "nodelay", KCP_MANUAL_DEFAULTS.nodelay, 0, 1),
    interval: num(options, "interval", KCP_MANUAL_DEFAULTS.interval, 1, 100000),
    resend: num(options, "resend", KCP_MANUAL_DEFAULTS.resend, 0, 1 << 30),
    nc: num(options, "nc", KCP_MANUAL_DEFAULTS.nc, 0, 1),
  };
  const p = preset ?? manual;
  const ack = options.acknodelay ?? false;
  if (typeof ack !== "boolean") throw new StageError(`kcp: option "acknodelay" must be a boolean`);
  return {
    protocol: "kcp",
    // The whole datagram: with no packet stage KCP gets all of it. What packet stages take is
    // known once they are made (the CLI checks the rest before it starts).
    mtu: num(options, "mtu", 1350, MTU_MIN, 65535),
    rateLimit: num(options, "ratelimit", 0, 0, Number.MAX_SAFE_INTEGER),
    sndWnd: num(options, "sndwnd", 128, 1, 65535),
    rcvWnd: num(options, "rcvwnd", 512, 1, 65535),
    nodelay: p.nodelay,
    interval: p.interval,
    resend: p.resend,
    nc: p.nc,
    ackNoDelay: ack,
  };
}

/** The `kcp` boundary stage definition. */
export const kcpStage: BoundaryStageDefinition = {
  name: "kcp",
  kind: "boundary",
  role: "arq",
  description: "KCP ARQ (kcptun -mode, -mtu, -sndwnd, -rcvwnd, -nodelay ...)",
  options: {
    mode: { type: "string", description: "-mode: normal, fast, fast2, fast3 or manual" },
    mtu: { type: "integer", description: "-mtu: the whole datagram" },
    sndwnd: { type: "integer", description: "-sndwnd (segments)" },
    rcvwnd: { type: "integer", description: "-rcvwnd (segments)" },
    nodelay: { type: "integer", description: "-nodelay (manual mode)" },
    interval: { type: "integer", description: "-interval in ms (manual mode)" },
    resend: { type: "integer", description: "-resend (manual mode)" },
    nc: { type: "integer", description: "-nc (manual mode)" },
    acknodelay: { type: "boolean", description: "-acknodelay" },
    ratelimit: { type: "integer", description: "-ratelimit: bytes/s per session (2026)" },
  },
  create: (options: StageOptions): KcpStageInstance => kcpStageOptions(options),
};
