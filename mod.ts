/**
 * kcptun-ts: kcptun (KCP over UDP with FEC, encryption, compression and smux) as a TypeScript
 * library for Deno, built as a pipeline of stages. See README.md and docs/.
 *
 * - Run tunnels: {@link dial} a server and open streams, {@link listen} for sessions and accept
 *   streams; {@link KcptunClient} and {@link KcptunServer} are kcptun's two programs as classes.
 * - Build pipelines: {@link buildPipeline} with {@link builtinRegistry} and your plugins;
 *   {@link Tunnel} makes one end of it.
 * - Write stages: the contract is re-exported here and in `./plugin`; `./testing` has
 *   property-test and fuzz helpers.
 * - Drive the protocol yourself: {@link Connection} (packet stages + KCP + smux, sans-IO) and
 *   {@link ServerEndpoint} (the server's routing, sans-IO).
 *
 * @module
 */

export * from "./plugin.ts";

export {
  buildTunnel,
  dial,
  type EndOptions,
  listen,
  type PipelineInput,
  resolvePipeline,
} from "./runtime/api.ts";
export { Tunnel, type TunnelOptions } from "./runtime/tunnel.ts";
export { TunnelSession } from "./runtime/session.ts";
export { TunnelStream } from "./runtime/stream.ts";
export { listenSessions, type ListenSessionsOptions, TunnelListener } from "./runtime/listen.ts";
export { dialSession, type DialSessionOptions, randomConv } from "./runtime/dial.ts";
export { KcptunClient, type KcptunClientOptions, type RemoteAddress } from "./runtime/client.ts";
export { KcptunServer, type KcptunServerOptions, type TargetAddress } from "./runtime/server.ts";
export { relay } from "./runtime/relay.ts";
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

export { cryptStage, type CryptStageOptions } from "./transforms/crypt/stage.ts";
export { fecStage, type FecStageOptions } from "./transforms/fec/stage.ts";
export { kcpStage } from "./transforms/kcp/stage.ts";
export { KCP_MODES } from "./transforms/kcp/modes.ts";
export { Kcp, type KcpOptions } from "./transforms/kcp/arq.ts";
export { smuxStage } from "./transforms/smux/stage.ts";
export { SmuxSession } from "./transforms/smux/session.ts";
export { type SmuxConfig } from "./transforms/smux/config.ts";
export { snappyStage } from "./transforms/snappy/stage.ts";
export { qppStage, type QppStageOptions } from "./transforms/qpp/stage.ts";
export { tcpStage } from "./transports/tcp.ts";
export { unixStage } from "./transports/unix.ts";
export { udpStage } from "./transports/udp_stage.ts";
export { faketcpStage } from "./transports/faketcp.ts";
