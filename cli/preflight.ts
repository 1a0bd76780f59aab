/**
 * Checks made on the built pipeline before an end starts, so that what cannot work fails with one
 * line before any startup output: the transport can be made here (fake TCP needs root or FFI),
 * and `-mtu` leaves KCP room once the packet stages have taken their bytes.
 *
 * The stages are made once for the check and let go, as the tunnel would make them (its `prepare`
 * first): a packet stage's overhead is only known from an instance (plugins choose theirs).
 *
 * @module
 */

import type { Pipeline, ResolvedStage } from "../pipeline/pipeline.ts";
import { checkRoleInstance } from "../pipeline/roles.ts";
import {
  type PacketStageDefinition,
  type StageContext,
  StageError,
  type StageOptions,
} from "../pipeline/stage.ts";
import { MTU_MIN } from "../transforms/kcp/arq.ts";

/** Datagrams are received into 1500-byte buffers: a larger `-mtu` sends no larger datagrams. */
const RECEIVE_BUFFER = 1500;

/** How a datagram's bytes are shared between the packet stages and KCP. */
export interface PacketRoom {
  /** The datagram size the ARQ stage was given (`-mtu`). */
  readonly mtu: number;
  /** Bytes each packet stage adds, KCP side first (by the name written in the pipeline). */
  readonly stages: readonly { readonly stage: string; readonly overhead: number }[];
  /** Their sum. */
  readonly overhead: number;
  /** What is left for KCP (`min(mtu, 1500) − overhead`). */
  readonly kcpMtu: number;
}

async function prepared(s: ResolvedStage, ctx: StageContext): Promise<StageOptions> {
  return (await s.definition.prepare?.(s.options, ctx)) ?? s.options;
}

/** Makes the pipeline's ARQ settings and packet stages once and measures {@link PacketRoom}. */
export async function measurePacketRoom(
  pipeline: Pipeline,
  ctx: StageContext,
): Promise<PacketRoom> {
  const stages: { stage: string; overhead: number }[] = [];
  for (const s of pipeline.packetStages) {
    const def = s.definition as PacketStageDefinition;
    const instance = def.create(await prepared(s, ctx), ctx);
    try {
      stages.push({ stage: s.spec, overhead: instance.overhead });
    } finally {
      instance.close?.();
    }
  }
  const overhead = stages.reduce((sum, s) => sum + s.overhead, 0);
  const arqStage = pipeline.boundary("arq");
  if (arqStage === undefined) throw new StageError("pipeline: no arq stage (kcp)");
  const arq = checkRoleInstance(
    "arq",
    arqStage.spec,
    await arqStage.definition.create(await prepared(arqStage, ctx), ctx),
  );
  const mtu = arq.mtu;
  return { mtu, stages, overhead, kcpMtu: Math.min(mtu, RECEIVE_BUFFER) - overhead };
}

/**
 * The one line saying why `room` leaves KCP too little (`mtuName` names where the MTU came from,
 * `-mtu 60`), or null when KCP gets at least {@link MTU_MIN} bytes.
 */
export function packetRoomError(room: PacketRoom, mtuName: string): string | null {
  if (room.kcpMtu >= MTU_MIN) return null;
  const parts = room.stages.filter((s) => s.overhead !== 0).map((s) => `${s.stage} ${s.overhead}`);
  return `${mtuName}: the pipeline's packet stages take ${room.overhead} bytes${
    parts.length > 0 ? ` (${parts.join(", ")})` : ""
  }, leaving KCP ${room.kcpMtu} (it needs at least ${MTU_MIN}, so -mtu at least ${
    room.overhead + MTU_MIN
  })`;
}

/**
 * Makes the pipeline's transport once, so that one that cannot run here (fake TCP without root
 * or FFI) fails with its one line.
 */
export async function checkTransport(pipeline: Pipeline, ctx: StageContext): Promise<void> {
  const t = pipeline.boundary("transport");
  if (t === undefined) return;
  checkRoleInstance("transport", t.spec, await t.definition.create(t.options, ctx));
}
