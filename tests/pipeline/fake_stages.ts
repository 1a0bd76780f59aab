/** Stand-in stages for pipeline runtime tests: small, real transforms with checkable bytes. */

import type { PacketBatch } from "../../pipeline/packet.ts";
import { StageRegistry } from "../../pipeline/registry.ts";
import type {
  BoundaryRole,
  BoundaryStageDefinition,
  PacketStageDefinition,
  StageContext,
  StreamStageDefinition,
} from "../../pipeline/stage.ts";

/** XORs the payload with 0x5a behind a 4-byte additive checksum; drops and counts bad sums. */
export const cryptLike: PacketStageDefinition = {
  name: "crypt-like",
  kind: "packet",
  shared: true,
  create(_options, ctx: StageContext) {
    return {
      overhead: 4,
      encode(batch: PacketBatch) {
        for (let i = 0; i < batch.length; i++) {
          const p = batch.packets[i];
          let sum = 0;
          for (let j = p.start; j < p.end; j++) {
            sum = (sum + p.buffer[j]) >>> 0;
            p.buffer[j] ^= 0x5a;
          }
          p.view.setUint32(p.prepend(4), sum, true);
        }
      },
      decode(batch: PacketBatch) {
        batch.retain((p) => {
          if (p.length < 4) {
            ctx.snmp.InCsumErrors++;
            return false;
          }
          const want = p.view.getUint32(p.start, true);
          p.start += 4;
          let sum = 0;
          for (let j = p.start; j < p.end; j++) {
            p.buffer[j] ^= 0x5a;
            sum = (sum + p.buffer[j]) >>> 0;
          }
          if (sum !== want) ctx.snmp.InCsumErrors++;
          return sum === want;
        });
      },
    };
  },
};

/** Numbers packets with a u16 and adds one marker packet after every `group` (default 4). */
export const fecLike: PacketStageDefinition = {
  name: "fec-like",
  kind: "packet",
  options: { group: { type: "integer" }, other: { type: "boolean" } },
  create(options, ctx) {
    const group = (options.group as number | undefined) ?? 4;
    let seq = 0;
    return {
      overhead: 2,
      encode(batch: PacketBatch) {
        const n = batch.length;
        for (let i = 0; i < n; i++) {
          const p = batch.packets[i];
          p.view.setUint16(p.prepend(2), seq, true);
          seq = (seq + 1) & 0x7fff;
          if (seq % group === 0) {
            const marker = ctx.pool.acquire();
            marker.view.setUint16(marker.prepend(2), 0xffff, true);
            batch.push(marker);
          }
        }
      },
      decode(batch: PacketBatch) {
        batch.retain((p) => {
          if (p.length < 2 || p.view.getUint16(p.start, true) === 0xffff) return false;
          p.start += 2;
          return true;
        });
      },
    };
  },
};

/** Prepends 0xAA asynchronously (a stage that answers with a promise). */
export const asyncLike: PacketStageDefinition = {
  name: "async-like",
  kind: "packet",
  create() {
    return {
      overhead: 1,
      async encode(batch: PacketBatch) {
        await Promise.resolve();
        for (let i = 0; i < batch.length; i++) {
          const p = batch.packets[i];
          p.buffer[p.prepend(1)] = 0xaa;
        }
      },
      async decode(batch: PacketBatch) {
        await Promise.resolve();
        batch.retain((p) => p.length >= 1 && p.buffer[p.start++] === 0xaa);
      },
    };
  },
};

/** XORs every byte with 0x33 (a stream stage whose effect is visible on the wire). */
export const snappyLike: StreamStageDefinition = {
  name: "snappy-like",
  kind: "stream",
  create() {
    return {
      encode(bytes, out) {
        out(bytes.map((b) => b ^ 0x33));
      },
      decode(bytes, out) {
        out(bytes.map((b) => b ^ 0x33));
      },
    };
  },
};

function boundary(name: string, role: BoundaryRole): BoundaryStageDefinition {
  return { name, kind: "boundary", role, create: () => ({ name }) };
}

/** A registry with every stand-in, boundary roles included. */
export function fakeRegistry(): StageRegistry {
  return new StageRegistry([
    cryptLike,
    fecLike,
    asyncLike,
    snappyLike,
    boundary("tcp-like", "app"),
    boundary("smux-like", "mux"),
    boundary("kcp-like", "arq"),
    boundary("udp-like", "transport"),
  ]);
}
