/**
 * Sending a ring of prepared `mmsghdr` slots with `sendmmsg`, shared by the UDP and fake-TCP
 * transports: what a partial send, `EINTR`, a full buffer and a per-datagram error each mean.
 *
 * @module
 */

import type { Packet } from "../pipeline/packet.ts";
import { C, Errno, type Libc } from "./libc.ts";

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
 * Sends slots [0, k) of `ring` on `fd` without blocking, then releases every packet. A full
 * socket buffer drops the rest of the batch (it would not take them either); any other error
 * belongs to one datagram, which is dropped, and sending goes on.
 */
export function sendmmsgAll(
  libc: Libc,
  fd: number,
  ring: SendSlots,
  k: number,
  stats: SendStats,
): void {
  const sym = libc.symbols;
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
}
