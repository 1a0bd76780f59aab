/**
 * Whether fake TCP can run here, and the one line that tells the user what to do when it cannot:
 * Linux only, FFI permitted (the C library is reached through `Deno.dlopen`), and raw sockets
 * allowed (root, or the `CAP_NET_RAW` capability).
 *
 * @module
 */

import { C, Errno, type Libc, LibcUnavailableError, loadLibc } from "../libc.ts";

/** Thrown when fake TCP cannot run here; the message is one line saying what to do. */
export class FakeTcpUnavailableError extends Error {
  /** Names the error class in messages. */
  override name = "FakeTcpUnavailableError";
}

/** The line for a raw-socket failure with `errno` (permission or otherwise). */
export function rawSocketFailure(libc: Libc, errno: number): string {
  if (errno === Errno.EPERM || errno === Errno.EACCES) {
    return `fake TCP (-tcp) needs raw sockets, which were refused (${libc.strerror(errno)}): ` +
      "run as root, or give deno CAP_NET_RAW " +
      '(sudo setcap cap_net_raw+ep "$(readlink -f "$(command -v deno)")")';
  }
  return `fake TCP (-tcp) cannot open a raw socket: ${
    libc.describe("socket(SOCK_RAW)", errno)
  }; drop -tcp to use UDP`;
}

/**
 * The C library for fake TCP, or a {@link FakeTcpUnavailableError} saying why not (not Linux,
 * FFI not permitted, no `libc.so.6`).
 */
export function fakeTcpLibc(): Libc {
  if (Deno.build.os !== "linux") {
    throw new FakeTcpUnavailableError(
      `fake TCP (-tcp) works on Linux only (this is ${Deno.build.os}); drop -tcp to use UDP`,
    );
  }
  try {
    return loadLibc();
  } catch (e) {
    if (!(e instanceof LibcUnavailableError)) throw e;
    const why = e.message;
    if (why.startsWith("FFI not permitted")) {
      throw new FakeTcpUnavailableError(
        "fake TCP (-tcp) needs FFI, which is not permitted: run deno with --allow-ffi (or -A)",
      );
    }
    throw new FakeTcpUnavailableError(`fake TCP (-tcp) needs glibc through FFI: ${why}`);
  }
}

let probed: string | null | undefined;

/**
 * `null` when fake TCP can run here, else the one line to show the user (and exit non-zero):
 * not Linux, FFI not permitted, or raw sockets refused (not root / no `CAP_NET_RAW`). Probes
 * once by opening and closing a raw socket; the answer is cached.
 */
export function fakeTcpUnavailableReason(): string | null {
  if (probed !== undefined) return probed;
  let libc: Libc;
  try {
    libc = fakeTcpLibc();
  } catch (e) {
    if (!(e instanceof FakeTcpUnavailableError)) throw e;
    probed = e.message;
    return probed;
  }
  const fd = libc.symbols.socket(C.AF_INET, C.SOCK_RAW | C.SOCK_CLOEXEC, C.IPPROTO_TCP);
  if (fd < 0) {
    probed = rawSocketFailure(libc, libc.errno());
    return probed;
  }
  libc.symbols.close(fd);
  probed = null;
  return probed;
}
