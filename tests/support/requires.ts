/**
 * Prerequisites a test may lack: Debian's kcptun, Debian's shadowsocks-libev, root, Deno's compile
 * base. Outside CI a test whose prerequisite is missing is skipped with a line saying what is
 * missing; with `CI=true` it runs anyway and fails, because CI installs kcptun and
 * shadowsocks-libev and runs as root.
 */

import { haveGoKcptun } from "./kcptun.ts";

/** Where Debian's shadowsocks-libev puts its two programs. */
export const SS_LOCAL = "/usr/bin/ss-local";
/** See {@link SS_LOCAL}. */
export const SS_SERVER = "/usr/bin/ss-server";

function haveShadowsocks(): boolean {
  try {
    return Deno.statSync(SS_LOCAL).isFile && Deno.statSync(SS_SERVER).isFile;
  } catch {
    return false;
  }
}

/** Things a test can need. */
export type Prerequisite = "kcptun" | "shadowsocks" | "root";

const HOW: Record<Prerequisite, string> = {
  kcptun: "Debian's kcptun is not installed (apt-get install -y kcptun)",
  shadowsocks:
    "Debian's shadowsocks-libev (ss-local, ss-server) is not installed (apt-get install -y shadowsocks-libev)",
  root: "not running as root (raw sockets need root or CAP_NET_RAW)",
};

function have(p: Prerequisite): boolean {
  if (p === "kcptun") return haveGoKcptun();
  if (p === "shadowsocks") return haveShadowsocks();
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
