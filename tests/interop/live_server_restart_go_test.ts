/**
 * Live: Go's server killed and restarted mid-session. Our client notices through smux's
 * keepalive (30–60 s), its old streams end, new connections work on a freshly dialled session.
 */

import { assert } from "../support/assert.ts";
import { missing } from "../support/requires.ts";
import { RECOVERY_BOUND_MS, serverRestarted } from "./live.ts";

Deno.test({
  name: `live Go server restarted mid-session: our client redials, old streams end ` +
    `(≤ ${RECOVERY_BOUND_MS / 1000} s)`,
  ignore: missing("kcptun"),
  fn: async () => {
    const r = await serverRestarted("ts", "go");
    assert(
      / session \S+: keepalive timeout \(nothing heard/.test(r.clientOutput),
      "no hint logged",
    );
    console.log(`  recovered ${(r.recoveryMs / 1000).toFixed(1)} s after the restart`);
  },
});
