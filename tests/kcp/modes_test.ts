/** kcptun's -mode presets. */

import { assertEquals } from "../support/assert.ts";
import { KCP_MANUAL_DEFAULTS, modeParams } from "../../transforms/kcp/modes.ts";

Deno.test("modes: presets (docs/protocol.md §5.4) override manual values; other names are manual", () => {
  const manual = { nodelay: 1, interval: 77, resend: 5, nc: 0 };
  const table = {
    normal: [0, 40, 2, 1],
    fast: [0, 30, 2, 1],
    fast2: [1, 20, 2, 1],
    fast3: [1, 10, 2, 1],
  };
  for (const [mode, v] of Object.entries(table)) {
    const p = modeParams(mode, manual);
    assertEquals([p.nodelay, p.interval, p.resend, p.nc], v, mode);
  }
  assertEquals(modeParams("manual", manual), manual);
  assertEquals(modeParams("Fast", manual), manual, "names are case-sensitive");
  assertEquals(modeParams("manual"), KCP_MANUAL_DEFAULTS);
  assertEquals(KCP_MANUAL_DEFAULTS, { nodelay: 0, interval: 50, resend: 0, nc: 0 });
});
