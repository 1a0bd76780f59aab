/**
 * What a stage plugin needs: the stage contract, packets and batches, counters, errors, and the
 * Web Streams views of a stage. Import it as `@kcptun-ts/kcptun-ts/plugin`; test your stage with
 * `@kcptun-ts/kcptun-ts/testing`. `docs/plugins.md` explains the contract.
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
export { Snmp } from "./pipeline/snmp.ts";
export type { Duplex } from "./pipeline/duplex.ts";
export type { AppConn, AppEndpoint, AppListener } from "./pipeline/app.ts";
export type {
  DatagramSocket,
  DatagramTransport,
  ReceiveHandler,
  TransportOptions,
  TransportStats,
} from "./pipeline/transport.ts";
export type { ArqSettings, MuxSettings } from "./pipeline/roles.ts";
export {
  byteTransform,
  packetStageStreams,
  packetTransform,
  streamStageStreams,
  wrapByteStream,
} from "./pipeline/streams.ts";
