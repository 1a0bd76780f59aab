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
  /**
   * The packets the slots send, in order: slot i sends the next `counts[i]` of them (one each
   * without `counts`). Released (and cleared here) once sent or dropped.
   */
  readonly packets: (Packet | null)[];
  /** Datagrams slot i carries, when a slot may carry several (UDP GSO, `gso.ts`). */
  readonly counts?: Int32Array;
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
  /** Slots sent that carried several datagrams (UDP GSO messages); kept when present. */
  txGsoMessages?: number;
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
 * errno values with which the kernel refuses a segmented (GSO) message as such: too many
 * segments or a segment over the route's MTU (`EINVAL`, `EMSGSIZE`), no checksum offload on the
 * way out (`EIO`), an option it does not know (`ENOPROTOOPT`, `EOPNOTSUPP`). The same datagrams
 * sent one by one may well go.
 */
export const GSO_REFUSED: ReadonlySet<number> = new Set([
  Errno.EINVAL,
  Errno.EMSGSIZE,
  Errno.EIO,
  Errno.ENOPROTOOPT,
  Errno.EOPNOTSUPP,
]);

/** Where {@link sendmmsgAll} stopped because the kernel refused a GSO slot; `slot` -1: it did not. */
export interface GsoRefusal {
  /** The refused slot, -1 if none. */
  slot: number;
  /** Its first packet: packets from here on were not sent and are still in the ring. */
  packet: number;
  /** The kernel's errno. */
  errno: number;
}

/**
 * Sends slots [0, k) of `ring` on `fd` without blocking, then releases every packet. A full
 * socket buffer drops the rest of the batch (it would not take them either); any other error
 * belongs to one slot, whose datagrams are dropped, and sending goes on, except that the first
 * {@link PEER_ERRORS} error of a call is taken for a pending ICMP report and that slot is tried
 * again. Returns the errno of the last failure of this call, 0 when there was none, so that the
 * caller can report a peer that does not answer.
 *
 * With `refusal`, a slot of several datagrams failing with a {@link GSO_REFUSED} errno stops the
 * call instead: `refusal` says where, the packets before it are released, and those from it on
 * are left in the ring for the caller to send another way.
 */
export function sendmmsgAll(
  libc: Libc,
  fd: number,
  ring: SendSlots,
  k: number,
  stats: SendStats,
  refusal?: GsoRefusal,
): number {
  const sym = libc.symbols, counts = ring.counts, packets = ring.packets;
  let failure = 0;
  let retried = false;
  let done = 0; // slots
  let at = 0; // their packets
  while (done < k) {
    const r = sym.sendmmsg(fd, ring.slotPtr[done], k - done, C.MSG_DONTWAIT);
    if (r > 0) {
      const end = done + r;
      for (; done < end; done++) {
        const c = counts === undefined ? 1 : counts[done];
        for (let j = at; j < at + c; j++) stats.txBytes += packets[j]!.length;
        stats.txPackets += c;
        if (c > 1) stats.txGsoMessages = (stats.txGsoMessages ?? 0) + 1;
        at += c;
      }
      continue;
    }
    const e = r < 0 ? libc.errno() : Errno.EAGAIN;
    if (e === Errno.EINTR) continue;
    if (!retried && PEER_ERRORS.has(e)) {
      failure = e;
      retried = true;
      continue;
    }
    const c = counts === undefined ? 1 : counts[done];
    if (refusal !== undefined && c > 1 && GSO_REFUSED.has(e)) {
      refusal.slot = done;
      refusal.packet = at;
      refusal.errno = e;
      release(packets, at);
      return failure;
    }
    failure = e;
    stats.txLastErrno = e;
    let lost = c, slots = 1;
    if (e === Errno.EAGAIN || e === Errno.ENOBUFS) {
      slots = k - done;
      for (let i = done + 1; i < k; i++) lost += counts === undefined ? 1 : counts[i];
    }
    stats.dropped += lost;
    stats.txErrors += lost;
    done += slots;
    at += lost;
  }
  release(packets, at);
  return failure;
}

/** Releases and clears packets [0, n). */
function release(packets: (Packet | null)[], n: number): void {
  for (let j = 0; j < n; j++) {
    packets[j]!.release();
    packets[j] = null;
  }
}
