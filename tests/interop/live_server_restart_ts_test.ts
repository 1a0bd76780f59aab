/**
 * Live: our server killed and restarted mid-session under Go's client. Go's client recovers as
 * it does with Go's server (smux keepalive, 30–60 s): our restarted server must take the old
 * session's datagrams (a "ghost" session, as kcp-go makes) without harm and serve the new one.
 */

import { missing } from "../support/requires.ts";
import { RECOVERY_BOUND_MS, serverRestarted } from "./live.ts";

Deno.test({
  name: `live our server restarted mid-session: Go's client redials, old streams end ` +
    `(≤ ${RECOVERY_BOUND_MS / 1000} s)`,
  ignore: missing("kcptun"),
  fn: async () => {
    const r = await serverRestarted("go", "ts");
    console.log(`  recovered ${(r.recoveryMs / 1000).toFixed(1)} s after the restart`);
  },
});
