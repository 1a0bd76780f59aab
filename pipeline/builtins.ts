/**
 * The built-in stages, by the names kcptun's flags expand to:
 * `tcp`/`unix` (app), `smux` (mux), `snappy` (stream), `kcp` (arq), `fec` and `crypt` (packet),
 * `udp`/`faketcp` (transport).
 *
 * @module
 */

import { cryptStage } from "../transforms/crypt/mod.ts";
import { fecStage } from "../transforms/fec/mod.ts";
import { kcpStage } from "../transforms/kcp/stage.ts";
import { smuxStage } from "../transforms/smux/mod.ts";
import { snappyStage } from "../transforms/snappy/mod.ts";
import { faketcpStage } from "../transports/faketcp.ts";
import { tcpStage } from "../transports/tcp.ts";
import { udpStage } from "../transports/udp.ts";
import { unixStage } from "../transports/unix.ts";
import { StageRegistry } from "./registry.ts";
import type { StageDefinition } from "./stage.ts";

/** Every built-in stage definition, application side first. */
export const BUILTIN_STAGES: readonly StageDefinition[] = [
  tcpStage,
  unixStage,
  smuxStage,
  snappyStage,
  kcpStage,
  fecStage,
  cryptStage,
  udpStage,
  faketcpStage,
];

/** A fresh registry holding the built-in stages (add plugins or faketcp to it as needed). */
export function builtinRegistry(): StageRegistry {
  return new StageRegistry(BUILTIN_STAGES);
}
