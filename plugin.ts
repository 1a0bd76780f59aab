/**
 * What a stage plugin needs: the stage contract, packets and batches, counters, errors, the
 * boundary roles' contracts, and the Web Streams views of a stage. Import it as
 * `@kcptun-ts/kcptun-ts/plugin`; test your stage with `@kcptun-ts/kcptun-ts/testing`.
 * `docs/plugins.md` explains the contract.
 *
 * @example A stream stage, used by hand
 * ```ts
 * import type { StreamStageDefinition } from "@kcptun-ts/kcptun-ts/plugin";
 * import { testContext } from "@kcptun-ts/kcptun-ts/testing";
 *
 * // Flips every bit: its own inverse, no state, no options.
 * const invert: StreamStageDefinition = {
 *   name: "invert",
 *   kind: "stream",
 *   create: () => ({
 *     encode(bytes, out) {
 *       for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0xff;
 *       out(bytes); // the stage may hand on the chunk it was given
 *     },
 *     decode(bytes, out) {
 *       for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0xff;
 *       out(bytes);
 *     },
 *   }),
 * };
 *
 * const stage = invert.create({}, testContext());
 * let wire: Uint8Array = new Uint8Array();
 * stage.encode(new Uint8Array([1, 2, 3]), (b) => wire = b);
 * if (wire[0] !== 0xfe) throw new Error("not inverted");
 * stage.decode(wire, (b) => wire = b);
 * if (wire.join() !== "1,2,3") throw new Error(`decoded ${wire}`);
 * ```
 *
 * @module
 */

export type {
  BoundaryRole,
  BoundaryStageDefinition,
  ByteRange,
  ByteSink,
  OptionSchema,
  OptionType,
  PacketStage,
  PacketStageDefinition,
  StageContext,
  StageDefinition,
  StageDefinitionBase,
  StageKind,
  StageOptions,
  StreamStage,
  StreamStageDefinition,
} from "./pipeline/stage.ts";
export { StageError } from "./pipeline/stage.ts";
export {
  DEFAULT_CAPACITY,
  DEFAULT_HEADROOM,
  MAX_DATAGRAM,
  Packet,
  PacketBatch,
  PacketFlags,
  PacketPool,
  type PeerAddress,
} from "./pipeline/packet.ts";
export {
  Snmp,
  SNMP_EXTRA_FIELDS,
  SNMP_STRUCT_FIELDS,
  type SnmpExtraField,
  type SnmpField,
} from "./pipeline/snmp.ts";
export type { Duplex } from "./pipeline/duplex.ts";
export type { AcceptStats, AppConn, AppEndpoint, AppListener } from "./pipeline/app.ts";
export type {
  DatagramSocket,
  DatagramTransport,
  ReceiveHandler,
  TransportEvent,
  TransportEventHandler,
  TransportOptions,
  TransportStats,
  UnreachableEvent,
} from "./pipeline/transport.ts";
export type { ArqSettings, MuxSettings, RoleInstance } from "./pipeline/roles.ts";
export {
  byteTransform,
  type Clock,
  type PacketStageStreams,
  packetStageStreams,
  packetTransform,
  type StreamStageStreams,
  streamStageStreams,
  wrapByteStream,
} from "./pipeline/streams.ts";
