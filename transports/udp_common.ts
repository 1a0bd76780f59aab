/**
 * What the two UDP transports share: their settings and their counters. The libc transport
 * (`udp.ts`) and the Deno fallback (`deno_udp.ts`) both take a {@link UdpTransportConfig} and
 * keep {@link UdpStats}, so either can stand in for the other (`udp_stage.ts` picks one).
 *
 * @module
 */

import type { PacketPool } from "../pipeline/packet.ts";
import type { TransportStats } from "../pipeline/transport.ts";

/** Settings of a UDP transport that apply to every socket it makes. */
export interface UdpTransportConfig {
  /** Where received packets come from (default: the process-wide pool). */
  pool?: PacketPool;
  /** Datagrams per `recvmmsg`/`sendmmsg` call (default 64, at most 1024). */
  batchSize?: number;
  /** Largest datagram accepted; longer ones are dropped and counted (default 1500). */
  maxDatagram?: number;
  /** Distinct peers a socket interns before its table starts again (default 65536). */
  maxPeers?: number;
  /**
   * Send runs of equal-size datagrams to one peer as one segmented message (`UDP_SEGMENT`,
   * Linux 4.18+; the datagrams on the wire are the same) where the kernel supports it (default
   * true). The libc transport only; the fallback sends one datagram per call whatever this says.
   */
  gso?: boolean;
  /** One-line diagnostics (option failures, receive errors). Silent by default. */
  log?: (line: string) => void;
  /**
   * What wakes a socket that has data (libc transport only). `"auto"` (default): Deno's event
   * loop, on a socket made by `Deno.listenDatagram`, when that API is there (`--unstable-net`),
   * else `"epoll"`: the process-wide poller, one `epoll_wait` on a thread of Deno's blocking pool.
   */
  poller?: "auto" | "epoll";
}

/** {@link TransportStats} plus the details behind `dropped`. */
export interface UdpStats extends TransportStats {
  /** Payload bytes received (delivered datagrams only). */
  rxBytes: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Received datagrams longer than `maxDatagram` (part of `dropped`). */
  rxOversize: number;
  /** Datagrams a dialled socket got from someone other than its server (part of `dropped`). */
  rxForeign: number;
  /** Datagrams not sent: full send buffer, kernel errors, no destination (part of `dropped`). */
  txErrors: number;
  /** errno of the last failed send, 0 if none. */
  txLastErrno: number;
  /** Completed receive calls (datagrams per wakeup = rxPackets / rxWakeups, roughly). */
  rxWakeups: number;
  /** ICMP errors about the server a dialled socket reported (each an `unreachable` event). */
  unreachable: number;
  /** Receive calls that failed with a transient error and were tried again. */
  rxErrors: number;
  /** Segmented messages sent (UDP GSO), each carrying several of the `txPackets`. */
  txGsoMessages: number;
  /** errno with which the kernel refused a segmented message (GSO is then off), 0 if never. */
  gsoRefusedErrno: number;
}

/** A socket's counters before anything has happened. */
export function newUdpStats(): UdpStats {
  return {
    rxPackets: 0,
    txPackets: 0,
    dropped: 0,
    rxBytes: 0,
    txBytes: 0,
    rxOversize: 0,
    rxForeign: 0,
    txErrors: 0,
    txLastErrno: 0,
    rxWakeups: 0,
    unreachable: 0,
    rxErrors: 0,
    txGsoMessages: 0,
    gsoRefusedErrno: 0,
  };
}
