/**
 * kcptun-ts: kcptun (KCP over UDP with FEC, encryption, compression and smux) as a TypeScript
 * library for Deno, built as a pipeline of stages. See README.md and `docs/architecture.md`.
 *
 * - Run tunnels: {@link dial} a server and open streams, {@link listen} for sessions and accept
 *   streams; {@link KcptunClient} and {@link KcptunServer} are kcptun's two programs as classes.
 * - Build pipelines: {@link buildPipeline} with {@link builtinRegistry} and your plugins;
 *   {@link Tunnel} makes one end of it.
 * - Write stages: the contract is re-exported here and in `./plugin`; `./testing` has
 *   property-test and fuzz helpers and an in-memory network.
 * - Drive the protocol yourself: {@link Connection} (packet stages + KCP + smux, sans-IO) and
 *   {@link ServerEndpoint} (the server's routing, sans-IO).
 *
 * @example A tunnel on loopback: one stream, one echo
 * ```ts
 * import { dial, listen } from "@kcptun-ts/kcptun-ts";
 *
 * // What kcptun's flags expand to; both ends need the same key.
 * const pipeline = {
 *   stages: ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"],
 *   options: { crypt: { key: "secret" } },
 * };
 * const server = await listen(pipeline, "127.0.0.1:0");
 * const client = await dial(pipeline, `127.0.0.1:${server.sockets[0].localAddr.port}`);
 *
 * const stream = client.openStream();
 * stream.write(new TextEncoder().encode("ping"));
 *
 * // The server echoes what its first stream brings.
 * const session = await server.accept();
 * const inbound = await session!.acceptStream();
 * await inbound.waitReadable();
 * inbound.write(inbound.read()!);
 *
 * await stream.waitReadable();
 * const echoed = new TextDecoder().decode(stream.read()!);
 * if (echoed !== "ping") throw new Error(`echoed ${echoed}`);
 *
 * await client.close();
 * await server.close();
 * ```
 *
 * @module
 */

export * from "./plugin.ts";

// Tunnels.
export {
  buildTunnel,
  dial,
  type EndOptions,
  listen,
  type PipelineInput,
  resolvePipeline,
} from "./runtime/api.ts";
export { type ConnectionParams, Tunnel, type TunnelOptions } from "./runtime/tunnel.ts";
export { TunnelSession } from "./runtime/session.ts";
export { TunnelStream } from "./runtime/stream.ts";
export { listenSessions, type ListenSessionsOptions, TunnelListener } from "./runtime/listen.ts";
export { dialSession, type DialSessionOptions, randomConv } from "./runtime/dial.ts";
export {
  KcptunClient,
  type KcptunClientOptions,
  type KcptunClientUdp,
  type RemoteAddress,
} from "./runtime/client.ts";
export {
  KcptunServer,
  type KcptunServerOptions,
  type KcptunServerUdp,
  type TargetAddress,
} from "./runtime/server.ts";
export { relay } from "./runtime/relay.ts";
export {
  listenUdp,
  UdpClientRelay,
  type UdpClientRelayOptions,
  type UdpFlowStream,
  type UdpRelayLimits,
  type UdpRelayStats,
  UdpServerRelay,
  type UdpServerRelayOptions,
  type UdpTarget,
} from "./runtime/udp_relay.ts";

// Sans-IO cores and the one driver.
export {
  Connection,
  type ConnectionCloseInfo,
  type ConnectionOptions,
  type KcpSettings,
} from "./runtime/connection.ts";
export { ConnectionDriver, type DriverOptions } from "./runtime/driver.ts";
export {
  type EndpointHooks,
  type EndpointOptions,
  type KcpLocator,
  locatorFor,
  ServerEndpoint,
} from "./runtime/endpoint.ts";
export { Kcp, type KcpOptions } from "./transforms/kcp/arq.ts";
export type { KcpSegment, SegmentPool } from "./transforms/kcp/segment.ts";
export { type SmuxRole, SmuxSession, type SmuxStats } from "./transforms/smux/session.ts";
export { type SmuxConfig } from "./transforms/smux/config.ts";

// Pipelines.
export { BUILTIN_STAGES, builtinRegistry } from "./runtime/registry.ts";
export {
  type BuildOptions,
  buildPipeline,
  Pipeline,
  type PipelineEntry,
  type PipelineSpec,
  type ResolvedStage,
  type Slot,
} from "./pipeline/pipeline.ts";
export { StageRegistry } from "./pipeline/registry.ts";
export { PacketChain } from "./pipeline/chain.ts";

// The built-in stages and their options.
export { cryptStage, type CryptStageOptions } from "./transforms/crypt/stage.ts";
export type { AesEngine, CryptGeneration } from "./transforms/crypt/suite.ts";
export type { NonceSource } from "./transforms/crypt/nonce.ts";
export { fecStage, type FecStageOptions } from "./transforms/fec/stage.ts";
export type { AutoTuneGeneration } from "./transforms/fec/autotune.ts";
export { kcpStage } from "./transforms/kcp/stage.ts";
export { KCP_MODES, type NoDelayParams } from "./transforms/kcp/modes.ts";
export { smuxStage } from "./transforms/smux/stage.ts";
export { snappyStage } from "./transforms/snappy/stage.ts";
export { qppStage, type QppStageOptions } from "./transforms/qpp/stage.ts";
export type { QppPads } from "./transforms/qpp/pads.ts";
export { tcpStage } from "./transports/tcp.ts";
export { unixStage } from "./transports/unix.ts";
export { udpStage } from "./transports/udp_stage.ts";
export { faketcpStage } from "./transports/faketcp.ts";
