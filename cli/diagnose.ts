/**
 * What to tell a user when a tunnel session fails. kcptun logs smux's bare error ("invalid
 * protocol") or nothing; most such failures are two ends configured differently, and the
 * error says which setting: a snappy stream identifier (0xff) where an smux version byte belongs
 * means the peer compresses, another version byte names the peer's `-smuxver`, a snappy error
 * means the peer does not compress. A client that hears nothing for smux's timeout has a dead,
 * unreachable or mismatched server (`-key`/`-crypt` failures are silent at the client).
 *
 * @module
 */

/** Which end logs. */
export type Role = "client" | "server";

/** The setting to check for an smux session's close `reason`, or "" when there is no hint. */
export function sessionCloseHint(role: Role, reason: string): string {
  const v = /version (\d+) frame on a version (\d+) session/.exec(reason);
  if (v !== null) {
    return v[1] === "255"
      ? "the peer compresses and this end does not: -nocomp must be the same on both ends"
      : `the peer speaks smux v${v[1]}, this end v${v[2]}: -smuxver must be the same on both ends`;
  }
  // A server with -smuxver 0 takes the client's version, so only a byte that is no version is left.
  const first = /first frame has version (\d+)/.exec(reason);
  if (first !== null) {
    return first[1] === "255"
      ? "the peer compresses and this end does not: -nocomp must be the same on both ends"
      : "the peer's first frame is neither smux v1 nor v2: -key, -crypt and -nocomp must be the same on both ends";
  }
  if (reason.includes("snappy")) {
    return "this end expects compressed data and the peer does not send it: " +
      "-nocomp must be the same on both ends";
  }
  if (reason.startsWith("invalid protocol")) {
    return "-key, -crypt, -nocomp and -smuxver must be the same on both ends";
  }
  if (role === "client" && reason === "keepalive timeout") {
    return "nothing heard from the server for 30 s or more: is it running and reachable? " +
      "-key, -crypt, -nocomp and -smuxver must be the same on both ends";
  }
  return "";
}

/** The log line for a failed session with `remote`: the reason, then the hint if any. */
export function sessionCloseLine(role: Role, remote: string, reason: string): string {
  const hint = sessionCloseHint(role, reason);
  return `session ${remote}: ${reason}${hint ? ` (${hint})` : ""}`;
}
