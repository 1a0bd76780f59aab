/**
 * Interop matrix, KCP modes and topologies: -mode presets and manual, -conn 3, JSON configs,
 * unix-socket targets, port ranges (see cases.ts).
 */

import { modeCases, topologyCases } from "./cases.ts";
import { interopTest } from "./harness.ts";

for (const c of [...modeCases(), ...topologyCases()]) interopTest(c);
