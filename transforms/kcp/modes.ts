/**
 * kcptun's `-mode` presets (identical in 2021 and 2026, docs/protocol.md §5.4). They are applied after
 * the JSON config, so a preset overrides any nodelay/interval/resend/nc given with it; any other
 * mode name means "manual": the explicit values are used.
 *
 * @module
 */

/** The four knobs of kcp-go's `NoDelay`. */
export interface NoDelayParams {
  /** 0 or 1: lower minimum RTO (30 ms) and gentler RTO back-off. */
  readonly nodelay: number;
  /** Flush interval in ms. */
  readonly interval: number;
  /** Fast-retransmit threshold (0 = off). */
  readonly resend: number;
  /** 1 = no congestion control. */
  readonly nc: number;
}

/** The named presets. */
export const KCP_MODES: Readonly<Record<"normal" | "fast" | "fast2" | "fast3", NoDelayParams>> = {
  normal: { nodelay: 0, interval: 40, resend: 2, nc: 1 },
  fast: { nodelay: 0, interval: 30, resend: 2, nc: 1 },
  fast2: { nodelay: 1, interval: 20, resend: 2, nc: 1 },
  fast3: { nodelay: 1, interval: 10, resend: 2, nc: 1 },
};

/** kcptun's manual defaults (`-nodelay 0 -interval 50 -resend 0 -nc 0`). */
export const KCP_MANUAL_DEFAULTS: NoDelayParams = { nodelay: 0, interval: 50, resend: 0, nc: 0 };

/** The parameters kcptun uses for `mode`: a preset, or `manual` for any other name. */
export function modeParams(
  mode: string,
  manual: NoDelayParams = KCP_MANUAL_DEFAULTS,
): NoDelayParams {
  switch (mode) {
    case "normal":
    case "fast":
    case "fast2":
    case "fast3":
      return KCP_MODES[mode];
    default:
      return manual;
  }
}
