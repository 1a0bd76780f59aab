/**
 * kcptun's address syntax, checked once at startup so that a typo is one clear fatal line and
 * not a failure at the first connection.
 *
 * Forms (docs/protocol.md §8.1–8.3):
 * - `host:port`, `:port` (every interface), `[::1]:29900` (IPv6 needs brackets);
 * - `host:min-max`, a port range (2026 multiport; client `-r` and server `-l` only);
 * - where a unix socket path is allowed (server `-t` in both kcptun generations, client `-l` in
 *   2026), anything Go's `net.SplitHostPort` rejects is one, and so is anything with a `/`.
 *
 * Host names are kept as written; resolving them is the transport's job.
 *
 * @module
 */

/** An IP host with one port (`minPort === maxPort`) or a port range. */
export interface InetAddress {
  /** Always `"inet"`. */
  readonly kind: "inet";
  /** Host name or IP literal without brackets; `""` means every interface (listen) or this host (dial). */
  readonly host: string;
  /** First port of the range (the port, for a single port). */
  readonly minPort: number;
  /** Last port of the range, inclusive. */
  readonly maxPort: number;
  /** The address as written. */
  readonly text: string;
}

/** A unix domain socket path. */
export interface UnixAddress {
  /** Always `"unix"`. */
  readonly kind: "unix";
  /** The socket path. */
  readonly path: string;
  /** The address as written. */
  readonly text: string;
}

/** Any address the CLI accepts. */
export type Address = InetAddress | UnixAddress;

/** What a particular option accepts. */
export interface AddressRules {
  /** Accept `host:min-max`. */
  readonly ranges: boolean;
  /** Treat a value that is not `host:port` as a unix socket path (else it is an error). */
  readonly unix: boolean;
  /** Accept port 0 (listen on an ephemeral port). Never inside a range. */
  readonly portZero: boolean;
}

/** Client `-l`: one TCP port (0 = ephemeral) or, as kcptun 2026, a unix socket path. */
export const CLIENT_LISTEN: AddressRules = { ranges: false, unix: true, portZero: true };
/** Rules that never give a unix path. */
export type InetRules = AddressRules & { readonly unix: false };

/** Client `-r`: the server, one port or a port range (2026 multiport). */
export const CLIENT_REMOTE: InetRules = { ranges: true, unix: false, portZero: false };
/** Server `-l`: one UDP port (0 = ephemeral) or a port range (2026 multiport). */
export const SERVER_LISTEN: InetRules = { ranges: true, unix: false, portZero: true };
/** Server `-t`: the target, one TCP port or a unix socket path. */
export const SERVER_TARGET: AddressRules = { ranges: false, unix: true, portZero: false };

/** Client `-udp` (kcptun-ts): the local UDP `host:port` to listen on (0 = ephemeral). */
export const CLIENT_UDP: InetRules = { ranges: false, unix: false, portZero: true };
/** Server `-udp` (kcptun-ts): the UDP target `host:port`. */
export const SERVER_UDP: InetRules = { ranges: false, unix: false, portZero: false };

/** Thrown for an address that does not fit its option's rules. */
export class AddressError extends Error {
  /** Names the error class in stack traces. */
  override name = "AddressError";
}

/**
 * Go's `net.SplitHostPort`: `host:port` or `[host]:port` (brackets required when the host has a
 * colon). Returns the reason as a string when the text is not of that shape.
 */
export function splitHostPort(text: string): { host: string; port: string } | string {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return "missing port in address";
  let host: string;
  if (text[0] === "[") {
    const close = text.indexOf("]");
    if (close < 0) return "missing ']' in address";
    if (close + 1 === text.length) return "missing port in address";
    if (close + 1 !== colon) {
      return text[close + 1] === ":" ? "too many colons in address" : "missing port in address";
    }
    host = text.slice(1, close);
    if (text.indexOf("[", 1) >= 0) return "unexpected '[' in address";
    if (text.indexOf("]", close + 1) >= 0) return "unexpected ']' in address";
  } else {
    host = text.slice(0, colon);
    if (host.includes(":")) return "too many colons in address";
    if (text.includes("[")) return "unexpected '[' in address";
    if (text.includes("]")) return "unexpected ']' in address";
  }
  return { host, port: text.slice(colon + 1) };
}

function parsePort(text: string, allowZero: boolean): number | string {
  if (!/^[0-9]{1,5}$/.test(text)) return `port "${text}" is not a number`;
  const port = Number(text);
  if (port > 65535) return `port ${port} is out of range (1-65535)`;
  if (port === 0 && !allowZero) return "port 0 is not allowed here (1-65535)";
  return port;
}

/** An unbracketed IPv6 literal with a port is the likeliest cause of "too many colons". */
function looksLikeBareIPv6(text: string): boolean {
  return /^[0-9A-Fa-f:.]*::?[0-9A-Fa-f:.]*$/.test(text) && (text.match(/:/g)?.length ?? 0) >= 2;
}

/**
 * Parses `text` by `rules`; throws {@link AddressError} with a one-line reason otherwise.
 *
 * ```ts
 * import { CLIENT_REMOTE, parseAddress } from "./address.ts";
 * const a = parseAddress("[::1]:29900-29910", CLIENT_REMOTE);
 * // { kind: "inet", host: "::1", minPort: 29900, maxPort: 29910, text: "[::1]:29900-29910" }
 * ```
 */
export function parseAddress(text: string, rules: InetRules): InetAddress;
/** Parses `text` by `rules` (which may allow a unix socket path). */
export function parseAddress(text: string, rules: AddressRules): Address;
export function parseAddress(text: string, rules: AddressRules): Address {
  if (text === "") throw new AddressError("empty address");
  // A host never has a slash; Go would take "/run/a:80" for host "/run/a" and fail to dial it.
  if (rules.unix && text.includes("/")) return { kind: "unix", path: text, text };
  const split = splitHostPort(text);
  if (typeof split === "string") {
    if (looksLikeBareIPv6(text)) {
      throw new AddressError(`${split}: an IPv6 address needs brackets, as in [::1]:29900`);
    }
    if (!rules.unix) throw new AddressError(`${split} (expected host:port)`);
    return { kind: "unix", path: text, text };
  }
  const { host, port } = split;
  const range = /^([0-9]+)-([0-9]+)$/.exec(port);
  if (range) {
    if (!rules.ranges) throw new AddressError(`a port range is not allowed here`);
    const min = parsePort(range[1], false);
    const max = parsePort(range[2], false);
    if (typeof min === "string") throw new AddressError(min);
    if (typeof max === "string") throw new AddressError(max);
    if (min > max) throw new AddressError(`invalid port range ${min}-${max} (min > max)`);
    return { kind: "inet", host, minPort: min, maxPort: max, text };
  }
  if (port === "" && rules.portZero) {
    // Go resolves an empty port to 0 (ephemeral) for a listener.
    return { kind: "inet", host, minPort: 0, maxPort: 0, text };
  }
  const p = parsePort(port, rules.portZero);
  if (typeof p === "string") throw new AddressError(p);
  return { kind: "inet", host, minPort: p, maxPort: p, text };
}

/** `host:port`, bracketing an IPv6 host as Go's `net.JoinHostPort` does. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How many ports the address covers. */
export function portCount(addr: InetAddress): number {
  return addr.maxPort - addr.minPort + 1;
}

/**
 * Picks the port for a new session: uniform over the range (kcptun 2026 multiport draws a
 * random number and takes it modulo the range size). `random` returns a float in [0, 1).
 */
export function pickPort(addr: InetAddress, random: () => number = cryptoRandom): number {
  const n = portCount(addr);
  if (n === 1) return addr.minPort;
  return addr.minPort + Math.min(n - 1, Math.floor(random() * n));
}

function cryptoRandom(): number {
  const u = new Uint32Array(1);
  crypto.getRandomValues(u);
  return u[0] / 0x1_0000_0000;
}
