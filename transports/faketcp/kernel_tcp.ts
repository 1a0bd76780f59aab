/**
 * The real kernel TCP connection under a fake-TCP flow: made non-blocking through libc so that
 * its TTL can be set and filters attached, connected and accepted without blocking the event
 * loop, and closed without leaving anything behind.
 *
 * Connect completion is a write-readiness event, and the shared {@link Poller} only watches for
 * reads. An epoll instance is itself readable while one of its descriptors is ready, so each
 * pending connect gets a private epoll set watching `EPOLLOUT`, and that set's descriptor goes
 * into the shared poller: no extra thread, no blocking call.
 *
 * @module
 */

import { C, EPOLL_EVENT_SIZE, Errno, type Libc, pointerOf } from "../libc.ts";
import type { Poller } from "../poller.ts";
import type { IpAddress } from "../sockaddr.ts";
import { getIntOption, setIntOption, SyscallError, tryConnect } from "../sockopt.ts";

/**
 * Sets the TTL (IPv4) or hop limit (IPv6) of the packets the kernel sends for `fd`. A dual-stack
 * IPv6 socket carrying IPv4 takes the IPv4 option, so an IPv6 socket gets both (the IPv4 one may
 * fail on a v6-only socket; that failure is ignored). Returns errno of the option that matters.
 */
export function setTtl(libc: Libc, fd: number, family: 4 | 6, ttl: number): number {
  if (family === 4) return setIntOption(libc, fd, C.IPPROTO_IP, C.IP_TTL, ttl);
  setIntOption(libc, fd, C.IPPROTO_IP, C.IP_TTL, ttl);
  return setIntOption(libc, fd, C.IPPROTO_IPV6, C.IPV6_UNICAST_HOPS, ttl);
}

/** Reads and discards whatever the socket holds (non-blocking); returns the bytes dropped. */
export function drain(libc: Libc, fd: number, scratch: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < 64; i++) {
    const n = Number(
      libc.symbols.recvfrom(fd, scratch, BigInt(scratch.length), C.MSG_DONTWAIT, null, null),
    );
    if (n <= 0) break;
    total += n;
  }
  return total;
}

/**
 * Closes a TCP socket abortively (`SO_LINGER` 0: the kernel sends one RST and frees the socket
 * at once), so no FIN_WAIT/TIME_WAIT state outlives the transport. `ttl` first restores the
 * TTL, as tcpraw does before closing, so that the RST is not stopped at the first hop.
 */
export function abortiveClose(libc: Libc, fd: number, family: 4 | 6, ttl = 64): void {
  setTtl(libc, fd, family, ttl);
  const linger = new Uint8Array(8); // struct linger { int l_onoff; int l_linger; }
  linger[0] = 1;
  libc.symbols.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, linger, 8);
  libc.symbols.close(fd);
}

/**
 * Starts a non-blocking `connect(fd, ip:port)` and resolves once it has completed, or rejects
 * with a {@link SyscallError} (`what: <strerror>`) when it fails or `timeoutMs` passes.
 */
export function connectNonBlocking(
  libc: Libc,
  poller: Poller,
  fd: number,
  family: 4 | 6,
  ip: IpAddress,
  port: number,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const e = tryConnect(libc, fd, family, ip, port);
  if (e === 0) return Promise.resolve();
  if (e !== Errno.EINPROGRESS) {
    return Promise.reject(new SyscallError(libc.describe(what, e), e));
  }
  return waitWritable(libc, poller, fd, timeoutMs).then((timedOut) => {
    if (timedOut) {
      throw new SyscallError(libc.describe(what, Errno.ETIMEDOUT), Errno.ETIMEDOUT);
    }
    const err = getIntOption(libc, fd, C.SOL_SOCKET, C.SO_ERROR);
    if (err !== 0) throw new SyscallError(libc.describe(what, err), err);
  });
}

/**
 * Resolves when `fd` is writable (or has an error), with `false`, or with `true` after
 * `timeoutMs`. Uses a private epoll set registered with the shared poller.
 */
function waitWritable(
  libc: Libc,
  poller: Poller,
  fd: number,
  timeoutMs: number,
): Promise<boolean> {
  const sym = libc.symbols;
  const epfd = sym.epoll_create1(C.EPOLL_CLOEXEC);
  if (epfd < 0) {
    const e = libc.errno();
    return Promise.reject(new SyscallError(libc.describe("epoll_create1", e), e));
  }
  const ev = new Uint8Array(16);
  new DataView(ev.buffer).setUint32(0, C.EPOLLOUT, true);
  if (sym.epoll_ctl(epfd, C.EPOLL_CTL_ADD, fd, ev) < 0) {
    const e = libc.errno();
    sym.close(epfd);
    return Promise.reject(new SyscallError(libc.describe("epoll_ctl", e), e));
  }
  const events = new Uint8Array(new ArrayBuffer(4 * EPOLL_EVENT_SIZE));
  const eventsPtr = pointerOf(events);
  return new Promise<boolean>((resolve) => {
    let done = false;
    let token = 0;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Out of the shared poller before the private set closes; resolving does not wait for
      // the poller to go idle.
      const removed = poller.remove(epfd, token);
      sym.close(epfd);
      removed.then(() => resolve(timedOut), () => resolve(timedOut));
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    token = poller.add(epfd, () => {
      if (sym.epoll_wait(epfd, eventsPtr, 4, 0) > 0) finish(false);
    });
  });
}

/**
 * errno values `accept4` returns for one pending connection that is gone, or for a network error
 * the kernel passes on (accept(2): treat them like `EAGAIN` and accept again).
 */
const ACCEPT_RETRY: ReadonlySet<number> = new Set([
  Errno.EINTR,
  Errno.ECONNABORTED,
  Errno.EPERM,
  Errno.EPROTO,
  Errno.ENETDOWN,
  Errno.ENOPROTOOPT,
  Errno.EHOSTDOWN,
  Errno.ENONET,
  Errno.EHOSTUNREACH,
  Errno.EOPNOTSUPP,
  Errno.ENETUNREACH,
]);

/**
 * Accepts one pending connection (non-blocking, close-on-exec). Returns the new descriptor, or
 * -1 when none is pending (`EAGAIN`); skips connections that are gone; throws
 * {@link SyscallError} for other errors (out of descriptors or memory: the listener is fine, the
 * caller should wait a little).
 */
export function acceptOne(libc: Libc, fd: number): number {
  for (;;) {
    const c = libc.symbols.accept4(fd, null, null, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
    if (c >= 0) return c;
    const e = libc.errno();
    if (ACCEPT_RETRY.has(e)) continue;
    if (e === Errno.EAGAIN) return -1;
    throw new SyscallError(libc.describe("accept4", e), e);
  }
}
