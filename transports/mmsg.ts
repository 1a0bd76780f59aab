/**
 * The `mmsghdr` rings of the UDP and fake-TCP transports: the struct layout, native addresses
 * written into them, and sending a ring of prepared slots with `sendmmsg` (what a partial send,
 * `EINTR`, a full buffer and a per-datagram error each mean).
 *
 * @module
 */

import type { Packet } from "../pipeline/packet.ts";
import { addressOf, C, Errno, type Libc } from "./libc.ts";

/** `sizeof(struct mmsghdr)` on LP64: msghdr 56 + msg_len 4 + padding. */
export const MMSGHDR = 64;
/** `sizeof(struct iovec)` on LP64. */
export const IOVEC = 16;
/** Offsets in `struct mmsghdr` (LP64). */
export const OFF_NAME = 0,
  OFF_NAMELEN = 8,
  OFF_IOV = 16,
  OFF_IOVLEN = 24,
  OFF_CONTROL = 32,
  OFF_CONTROLLEN = 40,
  OFF_FLAGS = 48,
  OFF_LEN = 56;

/** Writes a native address (below 2^53) as two little-endian u32 halves. */
export function putAddress(v: DataView, at: number, addr: number): void {
  v.setUint32(at, addr % 0x100000000, true);
  v.setUint32(at + 4, Math.floor(addr / 0x100000000), true);
}

const bufferAddresses = new WeakMap<Uint8Array, number>();

/** The native address of a pooled packet buffer, computed once per buffer. */
export function bufferAddress(buf: Uint8Array): number {
  let a = bufferAddresses.get(buf);
  if (a === undefined) {
    a = addressOf(buf);
    bufferAddresses.set(buf, a);
  }
  return a;
}

/** Prepared `mmsghdr` slots and the packets whose bytes they point at. */
export interface SendSlots {
  /** Pointer to slot i (an `mmsghdr` with its `iovec`s filled in). */
  readonly slotPtr: readonly Deno.PointerObject[];
  /** The packet slot i sends; released (and the slot cleared) once sent or dropped. */
  readonly packets: (Packet | null)[];
}

/** The send counters a transport keeps. */
export interface SendStats {
  /** Datagrams sent. */
  txPackets: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Datagrams that could not be sent. */
  dropped: number;
  /** Same count, as send errors. */
  txErrors: number;
  /** errno of the last failed send. */
  txLastErrno: number;
}

/**
 * errno values a connected UDP socket returns for an earlier datagram's ICMP error, kept by the
 * kernel until the next call on the socket (which it fails, clearing the error). They say
 * nothing about the datagram being sent.
 */
export const PEER_ERRORS: ReadonlySet<number> = new Set([
  Errno.ECONNREFUSED,
  Errno.EHOSTUNREACH,
  Errno.ENETUNREACH,
  Errno.EHOSTDOWN,
  Errno.ENONET,
]);

/**
 * Sends slots [0, k) of `ring` on `fd` without blocking, then releases every packet. A full
 * socket buffer drops the rest of the batch (it would not take them either); any other error
 * belongs to one datagram, which is dropped, and sending goes on, except that the first
 * {@link PEER_ERRORS} error of a call is taken for a pending ICMP report and that datagram is
 * tried again. Returns the errno of the last failure of this call, 0 when there was none, so
 * that the caller can report a peer that does not answer.
 */
export function sendmmsgAll(
  libc: Libc,
  fd: number,
  ring: SendSlots,
  k: number,
  stats: SendStats,
): number {
  const sym = libc.symbols;
  let failure = 0;
  let retried = false;
  let done = 0;
  while (done < k) {
    const r = sym.sendmmsg(fd, ring.slotPtr[done], k - done, C.MSG_DONTWAIT);
    if (r > 0) {
      for (let j = done; j < done + r; j++) stats.txBytes += ring.packets[j]!.length;
      stats.txPackets += r;
      done += r;
      continue;
    }
    const e = r < 0 ? libc.errno() : Errno.EAGAIN;
    if (e === Errno.EINTR) continue;
    failure = e;
    if (!retried && PEER_ERRORS.has(e)) {
      retried = true;
      continue;
    }
    stats.txLastErrno = e;
    const lost = e === Errno.EAGAIN || e === Errno.ENOBUFS ? k - done : 1;
    stats.dropped += lost;
    stats.txErrors += lost;
    done += lost;
  }
  for (let j = 0; j < k; j++) {
    ring.packets[j]!.release();
    ring.packets[j] = null;
  }
  return failure;
}
