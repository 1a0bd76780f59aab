/** Interop matrix over a lossy relay: FEC recovery and retransmission against Go (see cases.ts). */

import { lossyCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of lossyCases()) interopTest(c);
