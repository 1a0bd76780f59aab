/**
 * kcptun-ts server: a drop-in for `kcptun-server`.
 *
 *   deno run -A cli/server.ts -l :29900 -t 127.0.0.1:8080 -key secret
 *
 * @module
 */

import { serverMain } from "./run.ts";

if (import.meta.main) await serverMain(Deno.args);
