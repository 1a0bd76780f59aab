/**
 * kcptun-ts client: a drop-in for `kcptun-client`.
 *
 *   deno run -A cli/client.ts -l :12948 -r vps:29900 -key secret
 *
 * @module
 */

import { clientMain } from "./run.ts";

if (import.meta.main) await clientMain(Deno.args);
