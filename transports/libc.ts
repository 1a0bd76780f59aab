/**
 * A binding to the C library through `Deno.dlopen("libc.so.6")`: the socket calls that Deno's own
 * APIs do not expose (socket options, batched `recvmmsg`/`sendmmsg`, raw sockets for fake TCP).
 *
 * Linux only (glibc's `libc.so.6`; the constants below are Linux's generic values, the same on
 * x86_64 and aarch64). Loading needs the `--allow-ffi` permission. {@link loadLibc} returns the
 * binding or throws {@link LibcUnavailableError}; {@link tryLoadLibc} returns `null` instead, so a
 * caller can fall back to Deno's portable APIs.
 *
 * Symbols ending in `Async` are the same C function declared `nonblocking: true`: Deno runs them on
 * a thread of its blocking pool and returns a promise, so a call that sleeps in the kernel (a
 * blocking receive, `getaddrinfo`) never stalls the event loop. `errno` is thread-local, so it is
 * only meaningful right after a synchronous call; after an `Async` call it tells nothing.
 *
 * Pointers are passed as `"pointer"` (a `Deno.PointerObject` made once and reused) or `"buffer"`
 * (a typed array, for synchronous calls only). Struct layouts are LP64 (8-byte pointers).
 *
 * @module
 */

/** Linux constants used by the transports (asm-generic values; x86_64 and aarch64 agree). */
export const C = {
  AF_UNSPEC: 0,
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  IPPROTO_IP: 0,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
  IPPROTO_IPV6: 41,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_TYPE: 3,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_RCVTIMEO: 20,
  SO_SNDTIMEO: 21,
  SO_SNDBUFFORCE: 32,
  SO_RCVBUFFORCE: 33,
  IP_TOS: 1,
  IP_TTL: 2,
  IP_HDRINCL: 3,
  IPV6_UNICAST_HOPS: 16,
  IPV6_V6ONLY: 26,
  IPV6_TCLASS: 67,
  MSG_PEEK: 0x2,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  MSG_WAITFORONE: 0x10000,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  EPOLLIN: 0x1,
  EPOLLOUT: 0x4,
  EPOLLERR: 0x8,
  EPOLLHUP: 0x10,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  EPOLL_CLOEXEC: 0o2000000,
  EFD_NONBLOCK: 0o4000,
  EFD_CLOEXEC: 0o2000000,
  AI_PASSIVE: 0x1,
  AI_NUMERICHOST: 0x4,
  AI_ADDRCONFIG: 0x20,
  // Added for fake TCP (transports/faketcp).
  SO_LINGER: 13,
  SO_ATTACH_FILTER: 26,
  SO_DETACH_FILTER: 27,
  IP_PKTINFO: 8,
  IPV6_CHECKSUM: 7,
  IPV6_RECVPKTINFO: 49,
  IPV6_PKTINFO: 50,
  SOMAXCONN: 4096,
  // Added for UDP segmentation offload (transports/gso.ts).
  SOL_UDP: 17,
  UDP_SEGMENT: 103,
  SO_NO_CHECK: 11,
} as const;

/**
 * `sizeof(struct epoll_event)`: `{ u32 events; u64 data; }` is packed (12 bytes) on x86_64 only;
 * elsewhere the u64 is aligned (16 bytes). `data` sits at {@link EPOLL_EVENT_DATA}.
 */
export const EPOLL_EVENT_SIZE: number = Deno.build.arch === "x86_64" ? 12 : 16;
/** Offset of `data` in `struct epoll_event`. */
export const EPOLL_EVENT_DATA: number = Deno.build.arch === "x86_64" ? 4 : 8;

/** Linux errno values the transports react to. */
export const Errno = {
  EPERM: 1,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EINVAL: 22,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  ENOTCONN: 107,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  // Added for fake TCP (transports/faketcp).
  EPROTONOSUPPORT: 93,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  EISCONN: 106,
  ETIMEDOUT: 110,
  EALREADY: 114,
  EINPROGRESS: 115,
  // Added for accept errors (transports/faketcp/kernel_tcp.ts acceptOne).
  ENFILE: 23,
  EMFILE: 24,
  ENONET: 64,
  EPROTO: 71,
  EOPNOTSUPP: 95,
  ENETDOWN: 100,
  ENOPROTOOPT: 92,
  EHOSTDOWN: 112,
} as const;

/** The C functions bound, with their FFI signatures. */
export const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  /** `recvmmsg(fd, msgvec, vlen, flags, timeout)`, synchronous. */
  recvmmsg: { parameters: ["i32", "pointer", "u32", "i32", "pointer"], result: "i32" },
  /** `recvmmsg` on a blocking-pool thread. */
  recvmmsgAsync: {
    name: "recvmmsg",
    parameters: ["i32", "pointer", "u32", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** `sendmmsg(fd, msgvec, vlen, flags)`, synchronous. */
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  /** `sendmmsg` on a blocking-pool thread (for waiting out a full send buffer). */
  sendmmsgAsync: {
    name: "sendmmsg",
    parameters: ["i32", "pointer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** `poll(fds, nfds, timeout_ms)`, synchronous. */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** `poll` on a blocking-pool thread. */
  pollAsync: {
    name: "poll",
    parameters: ["pointer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** `getaddrinfo(node, service, hints, res)` on a blocking-pool thread (it may do DNS). */
  getaddrinfoAsync: {
    name: "getaddrinfo",
    parameters: ["pointer", "pointer", "pointer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  freeaddrinfo: { parameters: ["pointer"], result: "void" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  /** `epoll_ctl(epfd, op, fd, event)`; see {@link EPOLL_EVENT_SIZE} for the struct layout. */
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** `epoll_wait(epfd, events, maxevents, timeout_ms)`, synchronous. */
  epoll_wait: { parameters: ["i32", "pointer", "i32", "i32"], result: "i32" },
  /** `epoll_wait` on a blocking-pool thread. */
  epoll_waitAsync: {
    name: "epoll_wait",
    parameters: ["i32", "pointer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  gai_strerror: { parameters: ["i32"], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  /** `accept4(fd, addr, addrlen, flags)`, synchronous (for fake TCP's kernel listener). */
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** glibc: gives free heap memory back to the kernel (see `runtime/memory.ts`). */
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type LibcSymbols = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** Thrown by {@link loadLibc} when FFI is not permitted, not on Linux, or libc cannot be opened. */
export class LibcUnavailableError extends Error {
  /** Names the error class in messages. */
  override name = "LibcUnavailableError";
}

/** The C library: its symbols plus helpers for errno, strings and pointers. */
export class Libc {
  /** The raw symbols; see the module docs for the `Async` variants. */
  readonly symbols: LibcSymbols;
  readonly #lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  readonly #errnoView: Deno.UnsafePointerView;

  /** Opens `path` (normally via {@link loadLibc}, which caches one instance). */
  constructor(path = "libc.so.6") {
    this.#lib = Deno.dlopen(path, LIBC_SYMBOLS);
    this.symbols = this.#lib.symbols;
    // __errno_location returns the calling thread's errno slot; JS runs on one thread, so the
    // pointer taken here stays valid for every synchronous call made from this isolate.
    const p = this.symbols.__errno_location();
    if (p === null) throw new LibcUnavailableError("__errno_location returned NULL");
    this.#errnoView = new Deno.UnsafePointerView(p);
  }

  /** errno of this thread: read it right after the failing synchronous call. */
  errno(): number {
    return this.#errnoView.getInt32(0);
  }

  /** The C library's text for an errno value. */
  strerror(code: number): string {
    const p = this.symbols.strerror(code);
    return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
  }

  /** `"<what>: <strerror(errno)>"`, for error messages after a failed call. */
  describe(what: string, code: number = this.errno()): string {
    return `${what}: ${this.strerror(code)} (errno ${code})`;
  }

  /** Closes the library (only for tests; the cached instance lives as long as the process). */
  close(): void {
    this.#lib.close();
  }
}

/**
 * The native address of the first byte of `view` (a number: user-space addresses fit in 53 bits on
 * every 64-bit Linux). Allocates a pointer object, so cache the result per buffer.
 */
export function addressOf(view: ArrayBufferView): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
}

/** A pointer object for `view`, for `"pointer"` parameters (make it once and keep it). */
export function pointerOf(view: ArrayBufferView): Deno.PointerObject {
  const p = Deno.UnsafePointer.of(view);
  if (p === null) throw new RangeError("cannot take the address of an empty view");
  return p;
}

let cached: Libc | null = null;
let failure: string | null = null;

/**
 * The process-wide libc binding. Throws {@link LibcUnavailableError} (with one line saying why)
 * when not on Linux, when FFI is not permitted, or when `libc.so.6` cannot be opened.
 */
export function loadLibc(): Libc {
  if (cached !== null) return cached;
  if (failure !== null) throw new LibcUnavailableError(failure);
  if (Deno.build.os !== "linux") {
    failure = `libc FFI binding is Linux-only (this is ${Deno.build.os})`;
    throw new LibcUnavailableError(failure);
  }
  try {
    cached = new Libc();
    return cached;
  } catch (e) {
    const why = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "FFI not permitted (run with --allow-ffi or -A)"
      : `cannot open libc.so.6: ${(e as Error).message}`;
    failure = why;
    throw new LibcUnavailableError(why);
  }
}

/** {@link loadLibc}, or `null` when it is unavailable (see {@link libcUnavailableReason}). */
export function tryLoadLibc(): Libc | null {
  try {
    return loadLibc();
  } catch (e) {
    if (e instanceof LibcUnavailableError) return null;
    throw e;
  }
}

/** Why the last {@link loadLibc} failed, or `null`. */
export function libcUnavailableReason(): string | null {
  return failure;
}
