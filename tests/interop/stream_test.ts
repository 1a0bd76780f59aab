/** Interop matrix, FEC shapes, compression and smux versions, both directions (see cases.ts). */

import { fecCases, streamCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of [...fecCases(), ...streamCases()]) interopTest(c);
