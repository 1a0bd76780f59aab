/**
 * What each boundary role's stage gives the runtime: typed contracts instead of names. Any
 * stage (built-in or plugin) whose `create` returns an object of its role's shape fills that
 * role; the runtime checks the shape once, when a tunnel is built, and says which stage and which
 * member is wrong.
 *
 * - `app`: an {@link AppEndpoint} (listen and dial byte streams: tcp, unix);
 * - `mux`: {@link MuxSettings} for the smux sessions the runtime runs;
 * - `arq`: {@link ArqSettings} for the KCP conversations the runtime runs;
 * - `transport`: a {@link DatagramTransport} (udp, faketcp), with its capabilities.
 *
 * @module
 */

import type { AppEndpoint } from "./app.ts";
import type { BoundaryRole } from "./stage.ts";
import { StageError } from "./stage.ts";
import type { DatagramTransport } from "./transport.ts";

/** smux settings (kcptun's `-smuxver`, `-smuxbuf`, `-streambuf`, `-framesize`, keepalive). */
export interface MuxSettings {
  /** The multiplexing protocol; the runtime speaks smux. */
  readonly protocol: "smux";
  /**
   * Version 1 or 2; 0 (servers only): each session answers in the version of its client's first
   * frame.
   */
  readonly version: 0 | 1 | 2;
  /** No keepalive at all. */
  readonly keepAliveDisabled: boolean;
  /** NOP period (ms). */
  readonly keepAliveInterval: number;
  /** Silence after which the session closes (ms). */
  readonly keepAliveTimeout: number;
  /** Largest frame payload. */
  readonly maxFrameSize: number;
  /** Session receive buffer (bytes). */
  readonly maxReceiveBuffer: number;
  /** Version 2 per-stream window (bytes). */
  readonly maxStreamBuffer: number;
  /** Streams the peer may open before they are accepted. */
  readonly acceptBacklog: number;
}

/** KCP settings (kcptun's `-mtu`, windows, `-mode` numbers, `-acknodelay`, `-ratelimit`). */
export interface ArqSettings {
  /** The ARQ protocol; the runtime speaks KCP. */
  readonly protocol: "kcp";
  /** The whole datagram (KCP gets it minus the packet stages' overhead). */
  readonly mtu: number;
  /** Send window (segments). */
  readonly sndWnd: number;
  /** Receive window (segments). */
  readonly rcvWnd: number;
  /** 0 or 1. */
  readonly nodelay: number;
  /** Flush interval (ms). */
  readonly interval: number;
  /** Fast-retransmit duplicate ACK count (0: off). */
  readonly resend: number;
  /** 1: no congestion control. */
  readonly nc: number;
  /** Flush ACKs at once. */
  readonly ackNoDelay: boolean;
  /** Outgoing datagram bytes per second per session (0: unlimited; kcptun 2026). */
  readonly rateLimit: number;
}

/** What each role's `create` gives. */
export interface RoleInstance {
  /** The application boundary. */
  app: AppEndpoint;
  /** The multiplexer. */
  mux: MuxSettings;
  /** The ARQ. */
  arq: ArqSettings;
  /** The datagram transport. */
  transport: DatagramTransport;
}

const MEMBERS: { [R in BoundaryRole]: readonly string[] } = {
  app: ["listen", "dial"],
  mux: [],
  arq: [],
  transport: ["listen", "dial"],
};

const PROTOCOL: { [R in BoundaryRole]?: string } = { mux: "smux", arq: "kcp" };

/**
 * Checks that `instance`, made by stage `name` for `role`, has the role's shape, and returns it
 * typed; throws a {@link StageError} naming the stage and what is missing otherwise.
 */
export function checkRoleInstance<R extends BoundaryRole>(
  role: R,
  name: string,
  instance: unknown,
): RoleInstance[R] {
  const v = instance as Record<string, unknown> | null;
  if (v === null || typeof v !== "object") {
    throw new StageError(`stage "${name}" (role ${role}) made ${String(v)}, not a ${role} object`);
  }
  for (const m of MEMBERS[role]) {
    if (typeof v[m] !== "function") {
      throw new StageError(`stage "${name}" (role ${role}) gives no ${m}() function`);
    }
  }
  const protocol = PROTOCOL[role];
  if (protocol !== undefined && v.protocol !== protocol) {
    throw new StageError(
      `stage "${name}" (role ${role}) gives protocol ${
        JSON.stringify(v.protocol)
      }; this runtime runs ${protocol}`,
    );
  }
  return v as unknown as RoleInstance[R];
}
