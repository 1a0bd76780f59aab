/** Interop cases of kcptun-ts `-autofec` against Go's fixed FEC, and ours to ours (see cases.ts). */

import { autofecCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of autofecCases()) interopTest(c);
