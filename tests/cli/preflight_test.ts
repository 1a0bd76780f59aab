import { assertEquals } from "../support/assert.ts";
import { measurePacketRoom, packetRoomError } from "../../cli/preflight.ts";
import { defaultPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageOptions } from "../../pipeline/stage.ts";
import { resolvePipeline } from "../../runtime/api.ts";

const ctx = { role: "client" as const, pool: defaultPool, snmp: new Snmp(), log: () => {} };

async function room(stages: string[], options: Record<string, StageOptions>) {
  return measurePacketRoom(await resolvePipeline({ stages, options }), ctx);
}

const KCPTUN = ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"];
const FEC = { dataShards: 10, parityShards: 3 };

Deno.test("preflight: the packet stages' overhead is measured from the stages made", async () => {
  const aes = await room(KCPTUN, { kcp: { mtu: 1350 }, fec: FEC, crypt: { key: "k" } });
  assertEquals(aes, {
    mtu: 1350,
    stages: [{ stage: "fec", overhead: 8 }, { stage: "crypt", overhead: 20 }],
    overhead: 28,
    kcpMtu: 1322,
  });
  const gcm = await room(KCPTUN, {
    kcp: { mtu: 85 },
    fec: FEC,
    crypt: { crypt: "aes-128-gcm", key: "k" },
  });
  assertEquals([gcm.overhead, gcm.kcpMtu], [36, 49]);
  // FEC without shards adds no header; no crypt stage, no crypt header.
  const bare = await room(["tcp", "smux", "kcp", "fec", "udp"], {
    kcp: { mtu: 50 },
    fec: { dataShards: 0, parityShards: 0 },
  });
  assertEquals([bare.overhead, bare.kcpMtu], [0, 50]);
  // Datagrams are received into 1500 bytes: a larger mtu gives KCP no more.
  assertEquals((await room(["tcp", "smux", "kcp", "udp"], { kcp: { mtu: 9000 } })).kcpMtu, 1500);
});

Deno.test("preflight: too little room for KCP is one line naming the mtu and the overhead", async () => {
  const r = await room(KCPTUN, { kcp: { mtu: 77 }, fec: FEC, crypt: { key: "k" } });
  assertEquals(
    packetRoomError(r, "-mtu 77"),
    "-mtu 77: the pipeline's packet stages take 28 bytes (fec 8, crypt 20), leaving KCP 49" +
      " (it needs at least 50, so -mtu at least 78)",
  );
  assertEquals(packetRoomError({ ...r, mtu: 78, kcpMtu: 50 }, "-mtu 78"), null);
  assertEquals(
    packetRoomError(
      { mtu: 49, stages: [{ stage: "fec", overhead: 0 }], overhead: 0, kcpMtu: 49 },
      "x",
    ),
    "x: the pipeline's packet stages take 0 bytes, leaving KCP 49 (it needs at least 50, so -mtu at least 50)",
  );
});
