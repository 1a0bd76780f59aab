/**
 * The KCP layer: the wire format ({@link parseDatagram} and in-place header accessors), the
 * sans-IO ARQ core ({@link Kcp}, kcp-go v5.6.1 behaviour) and kcptun's `-mode` presets
 * ({@link modeParams}). `docs/kcp.md` describes how a driver calls the core.
 *
 * @module
 */

export {
  isKcpCmd,
  KCP_OVERHEAD,
  KcpCmd,
  type KcpCmdValue,
  parseDatagram,
  type ParsedDatagram,
  type ParsedSegment,
  readSegmentHeader,
  segCmd,
  segConv,
  segFrg,
  segLen,
  type SegmentHeader,
  segSn,
  segTs,
  segUna,
  segWnd,
  writeSegmentHeader,
} from "./wire.ts";
export { defaultSegmentPool, KcpSegment, SegmentPool } from "./segment.ts";
export {
  type ConvLocator,
  kcpDatagramConv,
  Peek,
  peekDatagram,
  type PeekedSegment,
  type PeekKind,
} from "./peek.ts";
export {
  DEAD_LINK,
  INTERVAL_DEFAULT,
  Kcp,
  KcpInputResult,
  type KcpOptions,
  MTU_DEFAULT,
  PROBE_INIT,
  PROBE_LIMIT,
  RTO_DEFAULT,
  RTO_MAX,
  RTO_MIN,
  RTO_NODELAY_MIN,
  WND_RCV_DEFAULT,
  WND_SND_DEFAULT,
} from "./arq.ts";
export { KCP_MANUAL_DEFAULTS, KCP_MODES, modeParams, type NoDelayParams } from "./modes.ts";
