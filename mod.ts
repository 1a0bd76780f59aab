/**
 * kcptun-ts: a TypeScript re-implementation of kcptun (KCP over UDP with FEC, encryption,
 * compression and smux), built as a pipeline of stages. See README.md and docs/.
 *
 * The layers, each usable alone:
 * - packets, batches and the stage contract: {@link Packet}, {@link PacketBatch},
 *   {@link PacketStage}, {@link StreamStage}, {@link buildPipeline}, {@link PacketChain};
 * - packet stages: {@link cryptStage} (every kcptun cipher), {@link fecStage} (Reed-Solomon);
 * - the ARQ: {@link Kcp} (sans-IO core), {@link KcpSession} (actor), {@link KcpListener};
 * - stream layers: {@link snappyStage}, {@link SmuxDriver} / {@link SmuxSession}, QPP
 *   ({@link qppPads}, {@link qppDuplex});
 * - transports: {@link udpTransport}, TCP and unix endpoints.
 *
 * @module
 */

export * from "./pipeline/packet.ts";
export * from "./pipeline/snmp.ts";
export * from "./pipeline/stage.ts";
export * from "./pipeline/transport.ts";
export * from "./pipeline/chain.ts";
export * from "./pipeline/streams.ts";
export * from "./pipeline/registry.ts";
export * from "./pipeline/pipeline.ts";
export * from "./pipeline/builtins.ts";

export * from "./transforms/crypt/mod.ts";
export {
  type AutoTuneGeneration,
  classifyDatagram,
  DatagramKind,
  FEC_OVERHEAD,
  FecDecoder,
  type FecDecoderOptions,
  FecEncoder,
  type FecEncoderOptions,
  FecStage,
  fecStage,
  type FecStageOptions,
  ReedSolomon,
} from "./transforms/fec/mod.ts";
export * from "./transforms/kcp/mod.ts";
export { KcpSession, type KcpSessionOptions } from "./transforms/kcp/session.ts";
export { KcpListener, type KcpListenerOptions } from "./transforms/kcp/listener.ts";
export { clientSession, randomConv } from "./transforms/kcp/dial.ts";
export { kcpStage, type KcpStageInstance, kcpStageOptions } from "./transforms/kcp/stage.ts";
export {
  type ByteStreamPair,
  KCPTUN_2021_SMUX,
  SMUX_DEFAULTS,
  type SmuxCloseInfo,
  type SmuxConfig,
  smuxConfig,
  SmuxDriver,
  type SmuxDriverOptions,
  smuxOptions,
  type SmuxRole,
  SmuxSession,
  smuxStage,
  type SmuxStageInstance,
  type SmuxStats,
  type SmuxStream,
} from "./transforms/smux/mod.ts";
export {
  crc32c,
  SnappyDecoderStream,
  SnappyEncoderStream,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  snappyStage,
  snappyStreams,
  SnappyStreamStage,
  withSnappy,
} from "./transforms/snappy/mod.ts";

export {
  getaddrinfo,
  UdpSocket,
  udpStage,
  type UdpStats,
  UdpTransport,
  udpTransport,
  type UdpTransportConfig,
} from "./transports/udp.ts";
export { DenoPeer, DenoUdpSocket, DenoUdpTransport } from "./transports/deno_udp.ts";
export {
  Libc,
  LIBC_SYMBOLS,
  type LibcSymbols,
  LibcUnavailableError,
  loadLibc,
  tryLoadLibc,
} from "./transports/libc.ts";
export { type IpAddress, PeerTable, UdpPeer } from "./transports/sockaddr.ts";
export {
  diffKernelUdpCounters,
  type KernelUdpCounters,
  type KernelUdpSnapshot,
  readKernelUdpCounters,
} from "./transports/kernel_counters.ts";
export type { AcceptStats, AppConn, AppEndpoint, AppListener } from "./transports/app.ts";
export { TcpEndpoint, tcpStage } from "./transports/tcp.ts";
export { UnixEndpoint, unixStage } from "./transports/unix.ts";
export * from "./transports/faketcp.ts";
export * from "./transforms/qpp/mod.ts";
