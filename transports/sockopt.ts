/**
 * The socket calls the libc transports share: opening, binding and connecting a socket in an
 * address family, integer socket options, the options kcptun exposes (`-sockbuf`, `-dscp`), and
 * the addresses `getsockname`/`getpeername` report. Used by the UDP transport (`udp.ts`) and fake
 * TCP (`faketcp.ts` and `faketcp/`); the Deno fallback (`deno_udp.ts`) has no descriptor to
 * call them on.
 *
 * Failures are {@link SyscallError}s whose message is the whole line a user sees
 * (`listen udp 127.0.0.1:29900: Address already in use (errno 98)`) and whose `errno` lets a
 * caller tell the cases apart (e.g. `EAFNOSUPPORT`: no IPv6 in this kernel).
 *
 * @module
 */

import { C, Errno, type Libc } from "./libc.ts";
import { type IpAddress, readSockaddr, SOCKADDR_SLOT, writeSockaddr } from "./sockaddr.ts";

/** An error from a system call, with its errno. */
export class SyscallError extends Error {
  /** Names the error class in messages. */
  override name = "SyscallError";
  /** The errno value. */
  readonly errno: number;

  /** `message` is the whole line (see `Libc.describe`). */
  constructor(message: string, errno: number) {
    super(message);
    this.errno = errno;
  }
}

/** Throws the {@link SyscallError} for the errno the failed call just left. */
function fail(libc: Libc, what: string): never {
  const e = libc.errno();
  throw new SyscallError(libc.describe(what, e), e);
}

/**
 * A close-on-exec socket of `type` (add `C.SOCK_NONBLOCK` to it for a non-blocking one) in
 * `family`; throws {@link SyscallError} (with `what`) on failure.
 */
export function openSocket(
  libc: Libc,
  family: 4 | 6,
  type: number,
  protocol: number,
  what: string,
): number {
  const fd = libc.symbols.socket(
    family === 4 ? C.AF_INET : C.AF_INET6,
    type | C.SOCK_CLOEXEC,
    protocol,
  );
  if (fd < 0) fail(libc, what);
  return fd;
}

/** `bind(fd, ip:port)` in the socket's family; throws {@link SyscallError}. */
export function bindTo(
  libc: Libc,
  fd: number,
  family: 4 | 6,
  ip: IpAddress,
  port: number,
  what: string,
): void {
  const sa = new Uint8Array(SOCKADDR_SLOT);
  const len = writeSockaddr(sa, 0, family, ip, port);
  if (libc.symbols.bind(fd, sa, len) < 0) fail(libc, what);
}

/**
 * `connect(fd, ip:port)` in the socket's family; returns errno, 0 on success (a non-blocking
 * TCP socket answers `EINPROGRESS`). An IPv6 raw socket reads the port as a protocol: pass 0.
 */
export function tryConnect(
  libc: Libc,
  fd: number,
  family: 4 | 6,
  ip: IpAddress,
  port: number,
): number {
  const sa = new Uint8Array(SOCKADDR_SLOT);
  const len = writeSockaddr(sa, 0, family, ip, port);
  return libc.symbols.connect(fd, sa, len) < 0 ? libc.errno() : 0;
}

/** {@link tryConnect}, throwing {@link SyscallError} (with `what`) on failure. */
export function connectTo(
  libc: Libc,
  fd: number,
  family: 4 | 6,
  ip: IpAddress,
  port: number,
  what: string,
): void {
  const e = tryConnect(libc, fd, family, ip, port);
  if (e !== 0) throw new SyscallError(libc.describe(what, e), e);
}

/** Sets an integer socket option; returns errno (0 on success). */
export function setIntOption(
  libc: Libc,
  fd: number,
  level: number,
  name: number,
  value: number,
): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return libc.symbols.setsockopt(fd, level, name, b, 4) < 0 ? libc.errno() : 0;
}

/** An integer socket option, or `null` when `getsockopt` fails (errno says why). */
export function queryIntOption(libc: Libc, fd: number, level: number, name: number): number | null {
  const b = new Uint8Array(4), l = new Uint32Array([4]);
  if (libc.symbols.getsockopt(fd, level, name, b, new Uint8Array(l.buffer)) < 0) return null;
  return new DataView(b.buffer).getInt32(0, true);
}

/** Reads an integer socket option; throws {@link SyscallError} on failure. */
export function getIntOption(libc: Libc, fd: number, level: number, name: number): number {
  const v = queryIntOption(libc, fd, level, name);
  if (v === null) fail(libc, `getsockopt(${level}, ${name})`);
  return v;
}

/** What {@link applySocketOptions} sets, and how it reports what it could not. */
export interface SocketOptionTarget {
  /** The socket's address family. */
  family: 4 | 6;
  /**
   * An IPv6 socket that also carries IPv4 (`IPV6_V6ONLY` off): its IPv4 peers take their TOS
   * from the IPv4 option, so `dscp` sets that one too.
   */
  dualStack: boolean;
  /** Gets one line per option the kernel refused (`setsockopt SO_RCVBUF: … (errno …)`). */
  report: (line: string) => void;
}

/**
 * Applies kcptun's `-sockbuf` and `-dscp` to `fd`; 0 or absent leaves the kernel's default. A
 * refused option is reported, not fatal, as kcptun does.
 *
 * - `sockbuf`: `SO_RCVBUF` and `SO_SNDBUF`. The kernel doubles what it grants, so a read-back
 *   below twice the request means `rmem_max`/`wmem_max` capped it: then the `…FORCE` variants
 *   are tried, which root (or `CAP_NET_ADMIN`) may use, and their failure is silent.
 * - `dscp`: `IP_TOS = dscp << 2` on IPv4, `IPV6_TCLASS = dscp` on IPv6 (and `IP_TOS` as well on
 *   a dual-stack socket, whose failure is silent).
 */
export function applySocketOptions(
  libc: Libc,
  fd: number,
  options: { sockbuf?: number; dscp?: number },
  target: SocketOptionTarget,
): void {
  const { family, report } = target;
  const sockbuf = options.sockbuf ?? 0;
  if (sockbuf > 0) {
    for (
      const [plain, force, name] of [
        [C.SO_RCVBUF, C.SO_RCVBUFFORCE, "SO_RCVBUF"],
        [C.SO_SNDBUF, C.SO_SNDBUFFORCE, "SO_SNDBUF"],
      ] as const
    ) {
      const e = setIntOption(libc, fd, C.SOL_SOCKET, plain, sockbuf);
      if (e !== 0) report(libc.describe(`setsockopt ${name}`, e));
      if ((queryIntOption(libc, fd, C.SOL_SOCKET, plain) ?? 0) < 2 * sockbuf) {
        setIntOption(libc, fd, C.SOL_SOCKET, force, sockbuf);
      }
    }
  }
  const dscp = options.dscp ?? 0;
  if (dscp > 0) {
    const tos = (dscp << 2) & 0xff;
    if (family === 4) {
      const e = setIntOption(libc, fd, C.IPPROTO_IP, C.IP_TOS, tos);
      if (e !== 0) report(libc.describe("set DSCP (IP_TOS)", e));
    } else {
      const e = setIntOption(libc, fd, C.IPPROTO_IPV6, C.IPV6_TCLASS, dscp & 0xff);
      if (e !== 0) report(libc.describe("set DSCP (IPV6_TCLASS)", e));
      if (target.dualStack) setIntOption(libc, fd, C.IPPROTO_IP, C.IP_TOS, tos);
    }
  }
}

/** An address as `getsockname`/`getpeername` report it (IPv4-mapped shown as IPv4). */
export interface SocketAddress {
  /** The IP address. */
  ip: IpAddress;
  /** The port. */
  port: number;
}

/** `getsockname(fd)`; throws {@link SyscallError}. */
export function localAddress(libc: Libc, fd: number): SocketAddress {
  return nameOf(libc, fd, false);
}

/** `getpeername(fd)`; throws {@link SyscallError}. */
export function remoteAddress(libc: Libc, fd: number): SocketAddress {
  return nameOf(libc, fd, true);
}

function nameOf(libc: Libc, fd: number, peer: boolean): SocketAddress {
  const buf = new Uint8Array(SOCKADDR_SLOT), len = new Uint32Array([SOCKADDR_SLOT]);
  const sym = libc.symbols;
  const rc = peer
    ? sym.getpeername(fd, buf, new Uint8Array(len.buffer))
    : sym.getsockname(fd, buf, new Uint8Array(len.buffer));
  const what = peer ? "getpeername" : "getsockname";
  if (rc < 0) fail(libc, what);
  const sa = readSockaddr(buf, 0, len[0]);
  if (sa === null) throw new SyscallError(`${what}: unexpected address family`, Errno.EINVAL);
  return sa;
}
