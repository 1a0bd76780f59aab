/**
 * UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18+) for the libc UDP transport: a run
 * of datagrams of one size to one peer leaves as ONE message of many `iovec`s with a `UDP_SEGMENT`
 * control message giving the size, and the kernel cuts it into the same datagrams it would have
 * sent one by one (the last may be shorter). The wire does not change; what drops is the kernel's
 * per-datagram work on the way out (route, IP output, on loopback the device and IP input),
 * which a bulk KCP flush of mtu-sized datagrams pays once per run instead of once per datagram.
 *
 * This module holds what is particular to it: {@link groupRuns} (which datagrams of a batch may
 * share a message), {@link GsoSendRing} (the `mmsghdr`s, `iovec`s and control messages of one
 * send call) and {@link probeGso}. Sending, with its errors, is `sendmmsgAll()` in `mmsg.ts`.
 *
 * @module
 */

import type { Packet } from "../pipeline/packet.ts";
import { addressOf, C, type Libc, pointerOf } from "./libc.ts";
import {
  bufferAddress,
  IOVEC,
  MMSGHDR,
  OFF_CONTROL,
  OFF_CONTROLLEN,
  OFF_IOV,
  OFF_IOVLEN,
  OFF_NAME,
  OFF_NAMELEN,
  putAddress,
  type SendSlots,
} from "./mmsg.ts";
import type { UdpPeer } from "./sockaddr.ts";
import { queryIntOption } from "./sockopt.ts";

/** `CMSG_LEN(sizeof(uint16_t))` on LP64: the 16-byte `cmsghdr` and the segment size. */
export const GSO_CMSG_LEN = 18;
/** `CMSG_SPACE(sizeof(uint16_t))` on LP64: what one such control message occupies. */
export const GSO_CMSG_SPACE = 24;

/** How many datagrams, and bytes in all, one segmented message may carry. */
export interface GsoLimits {
  /** Datagrams per message (the kernel's `UDP_MAX_SEGMENTS`: 64 from 4.18, 128 since 6.10). */
  readonly maxSegments: number;
  /** Payload bytes per message: one UDP datagram's worth, 65535 less the IPv4 and UDP headers. */
  readonly maxBytes: number;
}

/** The limits every kernel with `UDP_SEGMENT` accepts. */
export const GSO_LIMITS: GsoLimits = { maxSegments: 64, maxBytes: 65507 };

/**
 * Splits packets [0, n) into messages, in order: message m sends `count[m]` packets from
 * `first[m]`. With `limits`, consecutive packets to the same destination (`dests[i]`, compared
 * by identity) join one message while they have the first one's length; a shorter one may join
 * and closes the message (the kernel allows only the last segment to be shorter), a longer one
 * starts the next. An empty datagram never joins. Without `limits` every packet is its own
 * message. Returns the number of messages.
 */
export function groupRuns(
  lens: ArrayLike<number>,
  dests: ArrayLike<unknown>,
  n: number,
  limits: GsoLimits | null,
  first: Int32Array,
  count: Int32Array,
): number {
  let m = 0;
  for (let i = 0; i < n;) {
    const seg = lens[i], dest = dests[i];
    let c = 1, bytes = seg;
    if (limits !== null && seg > 0) {
      const max = limits.maxSegments;
      while (i + c < n && c < max) {
        const len = lens[i + c];
        if (len > seg || len === 0 || dests[i + c] !== dest || bytes + len > limits.maxBytes) {
          break;
        }
        c++;
        bytes += len;
        if (len < seg) break;
      }
    }
    first[m] = i;
    count[m] = c;
    m++;
    i += c;
  }
  return m;
}

/**
 * True when the kernel knows `UDP_SEGMENT` on `fd` (`getsockopt` answers). A kernel older than
 * 4.18 answers `ENOPROTOOPT`, and would also ignore the control message and send one oversized
 * datagram: so nothing segmented may be sent on a socket that fails this.
 */
export function probeGso(libc: Libc, fd: number): boolean {
  return queryIntOption(libc, fd, C.SOL_UDP, C.UDP_SEGMENT) !== null;
}

/**
 * The send side of one UDP socket, off-heap: up to `size` packets, each with its `iovec`, and up
 * to `size` messages over them, each with room for a `UDP_SEGMENT` control message. Packets are
 * staged with {@link GsoSendRing.put}, grouped into messages by {@link GsoSendRing.build}, and
 * handed to `sendmmsgAll()` (this is its {@link SendSlots}).
 */
export class GsoSendRing implements SendSlots {
  /** Packets (and messages) per call. */
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly slotPtr: Deno.PointerObject[];
  readonly packets: (Packet | null)[];
  /** Datagrams message m carries (its packets follow message m-1's). */
  readonly counts: Int32Array;
  /** First packet of message m. */
  readonly first: Int32Array;
  /** Length of staged packet j. */
  readonly lens: Int32Array;
  /** Destination of staged packet j. */
  readonly dests: (UdpPeer | null)[];
  readonly #base: number;
  readonly #iovAt: number;
  readonly #ctlAt: number;

  constructor(size: number) {
    this.size = size;
    this.#iovAt = size * MMSGHDR;
    this.#ctlAt = this.#iovAt + size * IOVEC;
    // A fixed-address buffer the kernel reads from, kept referenced by the ring (see udp.ts).
    this.bytes = new Uint8Array(new ArrayBuffer(this.#ctlAt + size * GSO_CMSG_SPACE));
    this.view = new DataView(this.bytes.buffer);
    this.#base = addressOf(this.bytes);
    const ptr = pointerOf(this.bytes);
    this.slotPtr = [];
    for (let i = 0; i < size; i++) {
      this.slotPtr.push(Deno.UnsafePointer.offset(ptr, i * MMSGHDR) as Deno.PointerObject);
      // The control messages' fixed part: level and type never change, only the size.
      const c = this.#ctlAt + i * GSO_CMSG_SPACE;
      putAddress(this.view, c, GSO_CMSG_LEN);
      this.view.setInt32(c + 8, C.SOL_UDP, true);
      this.view.setInt32(c + 12, C.UDP_SEGMENT, true);
    }
    this.packets = new Array(size).fill(null);
    this.dests = new Array(size).fill(null);
    this.counts = new Int32Array(size);
    this.first = new Int32Array(size);
    this.lens = new Int32Array(size);
  }

  /** Stages packet `p` for `dest` as packet j, its `iovec` pointing at its bytes. */
  put(j: number, p: Packet, dest: UdpPeer): void {
    const len = p.end - p.start;
    const at = this.#iovAt + j * IOVEC;
    putAddress(this.view, at, bufferAddress(p.buffer) + p.start);
    putAddress(this.view, at + 8, len);
    this.packets[j] = p;
    this.dests[j] = dest;
    this.lens[j] = len;
  }

  /**
   * Groups staged packets [0, n) into messages ({@link groupRuns}; `limits` null: one each) and
   * writes their headers. Returns the number of messages.
   */
  build(n: number, limits: GsoLimits | null): number {
    const m = groupRuns(this.lens, this.dests, n, limits, this.first, this.counts);
    const view = this.view, base = this.#base;
    for (let k = 0; k < m; k++) {
      const h = k * MMSGHDR, j = this.first[k], c = this.counts[k], dest = this.dests[j]!;
      putAddress(view, h + OFF_NAME, dest.native);
      view.setUint32(h + OFF_NAMELEN, dest.socklen, true);
      putAddress(view, h + OFF_IOV, base + this.#iovAt + j * IOVEC);
      putAddress(view, h + OFF_IOVLEN, c);
      if (c > 1) {
        const at = this.#ctlAt + k * GSO_CMSG_SPACE;
        view.setUint16(at + 16, this.lens[j], true);
        putAddress(view, h + OFF_CONTROL, base + at);
        putAddress(view, h + OFF_CONTROLLEN, GSO_CMSG_SPACE);
      } else {
        putAddress(view, h + OFF_CONTROL, 0);
        putAddress(view, h + OFF_CONTROLLEN, 0);
      }
    }
    return m;
  }

  /**
   * Moves staged packets [from, n) to the front (after a refused message, to send them again
   * another way); returns how many there are.
   */
  shift(from: number, n: number): number {
    if (from === 0) return n;
    for (let j = from; j < n; j++) {
      const p = this.packets[j]!;
      this.put(j - from, p, this.dests[j]!);
      this.packets[j] = null;
      this.dests[j] = null;
    }
    return n - from;
  }
}
