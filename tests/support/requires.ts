/**
 * Prerequisites a test may lack: Debian's kcptun, root, Deno's compile base. Outside CI a test
 * whose prerequisite is missing is skipped with a line saying what is missing; with `CI=true` it
 * runs anyway and fails, because CI installs kcptun and runs as root.
 */

import { haveGoKcptun } from "./kcptun.ts";

/** Things a test can need. */
export type Prerequisite = "kcptun" | "root";

const HOW: Record<Prerequisite, string> = {
  kcptun: "Debian's kcptun is not installed (apt-get install -y kcptun)",
  root: "not running as root (raw sockets need root or CAP_NET_RAW)",
};

function have(p: Prerequisite): boolean {
  if (p === "kcptun") return haveGoKcptun();
  return Deno.uid() === 0;
}

const announced = new Set<Prerequisite>();

/** `ignore` flag for `Deno.test`: true (and says why, once) when a prerequisite is missing. */
export function missing(...needs: Prerequisite[]): boolean {
  if (Deno.env.get("CI") === "true") return false;
  for (const p of needs) {
    if (!have(p)) {
      if (!announced.has(p)) {
        announced.add(p);
        console.error(`skipping tests that need ${p}: ${HOW[p]}`);
      }
      return true;
    }
  }
  return false;
}
