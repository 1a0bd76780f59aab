/** Interop matrix, crypt methods: every 2021 method, both directions (see cases.ts). */

import { cryptCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of cryptCases()) interopTest(c);
