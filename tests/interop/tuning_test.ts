/** Interop matrix, tuning flags and load shapes: MTU, windows, smux buffers, many/one streams. */

import { tuningCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of tuningCases()) interopTest(c);
