/**
 * The log line for a target the server could not dial, in Go's words.
 *
 * @module
 */

/**
 * A failed target dial as Go's `net.OpError` prints it, the line kcptun logs
 * (`dial tcp 127.0.0.1:12948: connect: connection refused`), so that the log says what was
 * dialled and a log watcher matching Go's text keeps working.
 */
export function dialErrorText(kind: "inet" | "unix", target: string, e: unknown): string {
  const network = kind === "unix" ? "unix" : "tcp";
  let why: string;
  if (e instanceof Deno.errors.ConnectionRefused) why = "connect: connection refused";
  else if (e instanceof Deno.errors.NotFound) why = "connect: no such file or directory";
  else if (e instanceof Deno.errors.PermissionDenied) why = "connect: permission denied";
  else if (e instanceof Deno.errors.TimedOut) why = "i/o timeout";
  else {
    const m = (e instanceof Error ? e.message : String(e)).replace(/ \(os error \d+\)$/, "");
    why = m.charAt(0).toLowerCase() + m.slice(1);
  }
  return `dial ${network} ${target}: ${why}`;
}
