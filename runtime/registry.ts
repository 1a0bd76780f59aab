/**
 * The built-in stages, by the names kcptun's flags expand to: `tcp`/`unix` (app), `qpp`
 * (per stream), `smux` (mux), `snappy` (session stream), `kcp` (arq), `fec` and `crypt`
 * (packet), `udp`/`faketcp` (transport).
 *
 * @module
 */

import { StageRegistry } from "../pipeline/registry.ts";
import type { StageDefinition } from "../pipeline/stage.ts";
import { cryptStage } from "../transforms/crypt/mod.ts";
import { fecStage } from "../transforms/fec/mod.ts";
import { kcpStage } from "../transforms/kcp/stage.ts";
import { qppStage } from "../transforms/qpp/stage.ts";
import { smuxStage } from "../transforms/smux/stage.ts";
import { snappyStage } from "../transforms/snappy/mod.ts";
import { faketcpStage } from "../transports/faketcp.ts";
import { tcpStage } from "../transports/tcp.ts";
import { udpStage } from "../transports/udp_stage.ts";
import { unixStage } from "../transports/unix.ts";

/** Every built-in stage definition, application side first. */
export const BUILTIN_STAGES: readonly StageDefinition[] = [
  tcpStage,
  unixStage,
  qppStage,
  smuxStage,
  snappyStage,
  kcpStage,
  fecStage,
  cryptStage,
  udpStage,
  faketcpStage,
];

/** A fresh registry holding the built-in stages (add plugins to it as needed). */
export function builtinRegistry(): StageRegistry {
  return new StageRegistry(BUILTIN_STAGES);
}
