/**
 * kcptun-ts: a TypeScript re-implementation of kcptun (KCP over UDP with FEC, encryption,
 * compression and smux), built as a pipeline of stages.
 *
 * @module
 */

export * from "./pipeline/packet.ts";
export * from "./pipeline/snmp.ts";
export * from "./pipeline/stage.ts";
export * from "./pipeline/transport.ts";
