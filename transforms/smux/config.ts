/**
 * smux session settings: the smux library's defaults, kcptun 2021's choices, and the checks smux
 * applies (docs/protocol.md §6.4).
 *
 * @module
 */

import { StageError } from "../../pipeline/stage.ts";

/** Settings of one smux session. Times in milliseconds. */
export interface SmuxConfig {
  /**
   * Protocol version, 1 or 2 (kcptun `-smuxver`; both ends must agree), or 0 (kcptun-ts, servers
   * only): each session takes the version of the first frame its peer sends, and sends nothing
   * before it.
   */
  version: 0 | 1 | 2;
  /** No NOPs and no keepalive timeout. */
  keepAliveDisabled: boolean;
  /** How often a NOP is sent (kcptun `-keepalive`, seconds there). */
  keepAliveInterval: number;
  /** The session closes when no frame arrived during a whole period (30 s fixed in kcptun). */
  keepAliveTimeout: number;
  /** Largest payload per frame this side sends (kcptun `-framesize`; 32768 in 2021). */
  maxFrameSize: number;
  /** Session receive buffer, shared by all streams (kcptun `-smuxbuf`). */
  maxReceiveBuffer: number;
  /** Per-stream window advertised in version 2 (kcptun `-streambuf`). */
  maxStreamBuffer: number;
  /** Streams opened by the peer and not yet accepted before the session stops reading. */
  acceptBacklog: number;
}

/** The smux library's defaults (v1.5.16). */
export const SMUX_DEFAULTS: Readonly<SmuxConfig> = Object.freeze({
  version: 1,
  keepAliveDisabled: false,
  keepAliveInterval: 10_000,
  keepAliveTimeout: 30_000,
  maxFrameSize: 32768,
  maxReceiveBuffer: 4194304,
  maxStreamBuffer: 65536,
  acceptBacklog: 1024,
});

/** What kcptun 20210922 configures by default (`-smuxver 1 -smuxbuf 4194304 -streambuf 2097152`). */
export const KCPTUN_2021_SMUX: Readonly<SmuxConfig> = Object.freeze({
  ...SMUX_DEFAULTS,
  maxStreamBuffer: 2097152,
});

/**
 * Completes `partial` from `base` and checks it as smux does; throws a {@link StageError} naming
 * the bad setting.
 */
export function smuxConfig(
  partial: Partial<SmuxConfig> = {},
  base: Readonly<SmuxConfig> = KCPTUN_2021_SMUX,
): SmuxConfig {
  const c: SmuxConfig = { ...base };
  for (const [k, v] of Object.entries(partial)) {
    if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  }
  const bad = (msg: string): never => {
    throw new StageError(`smux: ${msg}`);
  };
  const positiveInt = (name: keyof SmuxConfig) => {
    const v = c[name] as number;
    if (!Number.isInteger(v) || v <= 0) bad(`${name} must be a positive integer, got ${v}`);
  };
  if (c.version !== 0 && c.version !== 1 && c.version !== 2) {
    bad(`unsupported protocol version ${c.version}`);
  }
  if (!c.keepAliveDisabled) {
    if (!(c.keepAliveInterval > 0)) bad("keep-alive interval must be positive");
    if (!(c.keepAliveTimeout >= c.keepAliveInterval)) {
      bad(
        `keep-alive timeout (${c.keepAliveTimeout} ms) must not be shorter than the interval (${c.keepAliveInterval} ms)`,
      );
    }
  }
  positiveInt("maxFrameSize");
  if (c.maxFrameSize > 65535) bad(`max frame size ${c.maxFrameSize} exceeds 65535`);
  positiveInt("maxReceiveBuffer");
  positiveInt("maxStreamBuffer");
  positiveInt("acceptBacklog");
  if (c.maxStreamBuffer > c.maxReceiveBuffer) {
    bad(
      `max stream buffer (${c.maxStreamBuffer}) must not be larger than max receive buffer (${c.maxReceiveBuffer})`,
    );
  }
  if (c.maxStreamBuffer > 0x7fffffff) bad("max stream buffer cannot exceed 2147483647");
  return c;
}
