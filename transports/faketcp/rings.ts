/**
 * Off-heap `mmsghdr` rings for the raw sockets: a receive ring whose slots point straight into
 * pooled packets (the kernel writes each captured packet where the stages will read it), and a
 * send ring whose slots gather two iovecs, a hand-built TCP header from the ring's own slab and
 * the payload from the packet, with an optional per-flow control message (the source address).
 *
 * Everything here is made once per socket: nothing is allocated per datagram.
 *
 * @module
 */

import type { Packet } from "../../pipeline/packet.ts";
import { addressOf, pointerOf } from "../libc.ts";
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
} from "../mmsg.ts";
import { SOCKADDR_SLOT } from "../sockaddr.ts";
import { TCP_HEADER } from "./segment.ts";

/** `recvmmsg` slots: one iovec per slot over a whole packet buffer, plus a source address. */
export class RecvRing {
  /** Slots. */
  readonly size: number;
  /** The off-heap bytes (headers, iovecs, names). */
  readonly bytes: Uint8Array;
  /** A view over {@link RecvRing.bytes}. */
  readonly view: DataView;
  /** Pointer to slot 0, for `recvmmsg`. */
  readonly ptr: Deno.PointerObject;
  /** Offset of the first source-address slot in {@link RecvRing.bytes}. */
  readonly namesAt: number;
  /** The packet each slot writes into. */
  readonly packets: (Packet | null)[];
  readonly #iovAt: number;

  /** A ring of `size` slots. */
  constructor(size: number) {
    this.size = size;
    this.#iovAt = size * MMSGHDR;
    this.namesAt = this.#iovAt + size * IOVEC;
    this.bytes = new Uint8Array(new ArrayBuffer(this.namesAt + size * SOCKADDR_SLOT));
    this.view = new DataView(this.bytes.buffer);
    this.ptr = pointerOf(this.bytes);
    const base = addressOf(this.bytes);
    this.packets = new Array(size).fill(null);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR;
      putAddress(this.view, h + OFF_NAME, base + this.namesAt + i * SOCKADDR_SLOT);
      putAddress(this.view, h + OFF_IOV, base + this.#iovAt + i * IOVEC);
      putAddress(this.view, h + OFF_IOVLEN, 1);
    }
  }

  /** Points slot i's iovec at the whole buffer of `p` (from offset 0) and resets its name length. */
  attach(i: number, p: Packet): void {
    this.packets[i] = p;
    const at = this.#iovAt + i * IOVEC;
    putAddress(this.view, at, bufferAddress(p.buffer));
    putAddress(this.view, at + 8, p.buffer.length);
  }

  /** Resets the name length of slot i before a receive. */
  resetName(i: number): void {
    this.view.setUint32(i * MMSGHDR + OFF_NAMELEN, SOCKADDR_SLOT, true);
  }
}

/**
 * `sendmmsg` slots: iovec 0 is the slot's 20-byte TCP header in {@link SendRing.headers},
 * iovec 1 the payload.
 */
export class SendRing {
  /** Slots. */
  readonly size: number;
  /** The off-heap bytes. */
  readonly bytes: Uint8Array;
  /** A view over {@link SendRing.bytes}. */
  readonly view: DataView;
  /** The header slab: slot i's header is at `headersAt + i * 20` in {@link SendRing.bytes}. */
  readonly headersAt: number;
  /** Pointer to slot i, for resuming a partial `sendmmsg`. */
  readonly slotPtr: Deno.PointerObject[];
  /** The packet attached to each slot. */
  readonly packets: (Packet | null)[];
  readonly #iovAt: number;

  /** A ring of `size` slots. */
  constructor(size: number) {
    this.size = size;
    this.#iovAt = size * MMSGHDR;
    this.headersAt = this.#iovAt + size * 2 * IOVEC;
    this.bytes = new Uint8Array(new ArrayBuffer(this.headersAt + size * TCP_HEADER));
    this.view = new DataView(this.bytes.buffer);
    const ptr = pointerOf(this.bytes);
    const base = addressOf(this.bytes);
    this.slotPtr = [];
    this.packets = new Array(size).fill(null);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR;
      const iov = this.#iovAt + i * 2 * IOVEC;
      putAddress(this.view, h + OFF_IOV, base + iov);
      putAddress(this.view, h + OFF_IOVLEN, 2);
      putAddress(this.view, iov, base + this.headersAt + i * TCP_HEADER);
      putAddress(this.view, iov + 8, TCP_HEADER);
      this.slotPtr.push(Deno.UnsafePointer.offset(ptr, h) as Deno.PointerObject);
    }
  }

  /**
   * Fills slot i: the message fields from `msg` (see `Flow.msg`: sockaddr address low/high and
   * length, control address low/high and length), payload = `p`'s bytes. The caller writes the
   * header at `headersAt + i * 20`.
   */
  fill(i: number, msg: Uint32Array, p: Packet): void {
    const v = this.view, h = i * MMSGHDR;
    v.setUint32(h + OFF_NAME, msg[0], true);
    v.setUint32(h + OFF_NAME + 4, msg[1], true);
    v.setUint32(h + OFF_NAMELEN, msg[2], true);
    v.setUint32(h + OFF_CONTROL, msg[3], true);
    v.setUint32(h + OFF_CONTROL + 4, msg[4], true);
    v.setUint32(h + OFF_CONTROLLEN, msg[5], true);
    v.setUint32(h + OFF_CONTROLLEN + 4, 0, true);
    const iov = this.#iovAt + i * 2 * IOVEC + IOVEC;
    putAddress(v, iov, bufferAddress(p.buffer) + p.start);
    putAddress(v, iov + 8, p.end - p.start);
    this.packets[i] = p;
  }
}
