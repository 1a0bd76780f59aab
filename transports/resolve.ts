/**
 * What the host and port of `listen(host, port)` / `dial(host, port)` mean, the same for every
 * datagram transport (libc UDP, the Deno fallback, fake TCP), as Go's kcptun reads them:
 *
 * - `""`, `"0.0.0.0"`, `"::"` (brackets allowed) are every interface, IPv4 and IPv6: `listen`
 *   binds the wildcard, `dial` goes to 127.0.0.1 (Go dials an empty host as the local system).
 * - An IP literal is itself (IPv6 with or without brackets, a numeric `%zone` allowed).
 * - A name is looked up and its first IPv4 address taken, else its first address, as Go's
 *   resolver orders them for `"udp"`. The libc transports look up with `getaddrinfo` (so
 *   `/etc/hosts` and nsswitch apply, see {@link getaddrinfo}); the Deno fallback, which has no
 *   FFI, with {@link denoLookup}.
 *
 * @module
 */

import { C, type Libc, pointerOf } from "./libc.ts";
import { type IpAddress, parseIp, readSockaddr, SOCKADDR_SLOT } from "./sockaddr.ts";

/** Looks a name up: its addresses in resolver order; throws when it does not resolve. */
export type Lookup = (name: string) => Promise<IpAddress[]>;

/**
 * `null` for every interface, an IP literal as it is, a name through `lookup` (IPv4 first).
 * Throws `lookup <host>: …` when the name has no address.
 */
export async function resolveHost(host: string, lookup: Lookup): Promise<IpAddress | null> {
  let h = host;
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "" || h === "0.0.0.0" || h === "::") return null;
  const ip = parseIp(h);
  if (ip !== null) return ip;
  const all = await lookup(h);
  const pick = all.find((a) => a.family === 4) ?? all[0];
  if (pick === undefined) throw new Error(`lookup ${host}: no address`);
  return pick;
}

/** The address `dial(host)` talks to: {@link resolveHost}, with every interface meaning 127.0.0.1. */
export async function dialHost(host: string, lookup: Lookup): Promise<IpAddress> {
  return (await resolveHost(host, lookup)) ?? parseIp("127.0.0.1")!;
}

/** Throws a `RangeError` unless `port` is an integer in 0..65535. */
export function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`bad port ${port}`);
  }
}

/**
 * `getaddrinfo(host)` for UDP, on a blocking-pool thread. Returns the addresses in resolver
 * order, de-duplicated; throws with the resolver's message when the name does not resolve.
 */
export async function getaddrinfo(libc: Libc, host: string): Promise<IpAddress[]> {
  const sym = libc.symbols;
  const node = new Uint8Array(new ArrayBuffer(host.length * 3 + 1));
  const { written } = new TextEncoder().encodeInto(host, node);
  node[written] = 0;
  const hints = new Uint8Array(new ArrayBuffer(48)); // struct addrinfo
  new DataView(hints.buffer).setInt32(8, C.SOCK_DGRAM, true); // ai_socktype
  const out = new BigUint64Array(new ArrayBuffer(8));
  const rc = await sym.getaddrinfoAsync(pointerOf(node), null, pointerOf(hints), pointerOf(out));
  // The thread read these buffers; keep them reachable until the call is over.
  void node.byteLength, void hints.byteLength;
  if (rc !== 0) {
    const msg = sym.gai_strerror(rc);
    throw new Error(`lookup ${host}: ${msg ? Deno.UnsafePointerView.getCString(msg) : rc}`);
  }
  const result: IpAddress[] = [];
  const seen = new Set<string>();
  let ai = Deno.UnsafePointer.create(out[0]);
  const head = ai;
  try {
    while (ai !== null) {
      const v = new Deno.UnsafePointerView(ai);
      const addrlen = v.getUint32(16);
      const addr = v.getPointer(24);
      if (addr !== null && addrlen <= SOCKADDR_SLOT) {
        const bytes = new Uint8Array(SOCKADDR_SLOT);
        Deno.UnsafePointerView.copyInto(addr, bytes.subarray(0, addrlen));
        const sa = readSockaddr(bytes, 0, addrlen);
        if (sa !== null) {
          const k = sa.ip.bytes.join(".") + "%" + sa.ip.scope;
          if (!seen.has(k)) {
            seen.add(k);
            result.push(sa.ip);
          }
        }
      }
      ai = v.getPointer(40);
    }
  } finally {
    if (head !== null) sym.freeaddrinfo(head);
  }
  return result;
}

/**
 * The {@link Lookup} of the Deno fallback: `Deno.resolveDns`, A records, else AAAA ones. It does
 * not read `/etc/hosts`, so `localhost` is answered here (127.0.0.1). A name with neither comes
 * back empty (so {@link resolveHost} says `no address`).
 */
export async function denoLookup(name: string): Promise<IpAddress[]> {
  if (name === "localhost") return [parseIp("127.0.0.1")!];
  for (const type of ["A", "AAAA"] as const) {
    try {
      const found = (await Deno.resolveDns(name, type)).map(parseIp)
        .filter((a): a is IpAddress => a !== null);
      if (found.length > 0) return found;
    } catch {
      // try the next record type
    }
  }
  return [];
}
