/**
 * Which UDP transport runs here, and the `udp` stage: the libc transport (`udp.ts`) when FFI can
 * load `libc.so.6`, else the `Deno.listenDatagram` fallback (`deno_udp.ts`). The one module that
 * knows both, so that neither implementation depends on the other.
 *
 * @module
 */

import type { DatagramTransport } from "../pipeline/transport.ts";
import type { BoundaryStageDefinition, StageContext, StageOptions } from "../pipeline/stage.ts";
import { DenoUdpTransport } from "./deno_udp.ts";
import { libcUnavailableReason, tryLoadLibc } from "./libc.ts";
import { UdpTransport } from "./udp.ts";
import type { UdpTransportConfig } from "./udp_common.ts";

/**
 * The UDP transport to use: {@link UdpTransport} when libc can be loaded through FFI, otherwise
 * {@link DenoUdpTransport} after one warning line (to `config.log`, or stderr when no log is given)
 * saying why and what is lost (speed, `-sockbuf`, `-dscp`). `warnFallback: false` leaves the line
 * out, for a second transport of a process whose first has said it.
 */
export function udpTransport(
  config: UdpTransportConfig = {},
  options: { warnFallback?: boolean } = {},
): DatagramTransport {
  const libc = tryLoadLibc();
  if (libc !== null) return new UdpTransport(config, libc);
  if (options.warnFallback === false) return new DenoUdpTransport(config);
  const warn = config.log ?? ((line: string) => console.error(line));
  warn(
    `udp: ${libcUnavailableReason()}; falling back to Deno.listenDatagram ` +
      `(slower, -sockbuf and -dscp ignored)`,
  );
  return new DenoUdpTransport(config);
}

/** The `udp` boundary stage definition (role "transport"): {@link udpTransport}, pooled packets. */
export const udpStage: BoundaryStageDefinition = {
  name: "udp",
  kind: "boundary",
  role: "transport",
  description: "UDP datagrams (recvmmsg/sendmmsg through libc; Deno.listenDatagram without FFI)",
  create: (_options: StageOptions, ctx: StageContext): DatagramTransport =>
    udpTransport({ pool: ctx.pool, log: ctx.log }),
};
