/**
 * The datagram transport contract, implemented by `transports/udp.ts` and `transports/faketcp.ts`.
 * Transports are the only code that touches sockets.
 *
 * @module
 */

import type { PacketBatch, PeerAddress } from "./packet.ts";

/** Counters a transport keeps about itself. */
export interface TransportStats {
  /** Datagrams received. */
  rxPackets: number;
  /** Datagrams sent. */
  txPackets: number;
  /** Datagrams the transport had to drop (too large, send errors). */
  dropped: number;
}

/**
 * Called with every batch of received datagrams, each packet's `peer` set to its source. The
 * handler takes ownership of the packets (it releases them when done) but not of the batch object,
 * which the transport reuses after the handler returns.
 */
export type ReceiveHandler = (batch: PacketBatch) => void;

/**
 * A dialled socket's peer did not take a datagram: the kernel reported an ICMP error for it
 * (port unreachable: nobody listens there; host or network unreachable). Datagrams keep going
 * out; the peer may come up later.
 */
export interface UnreachableEvent {
  /** Discriminant. */
  readonly kind: "unreachable";
  /** The peer that did not answer (a dialled socket's server). */
  readonly peer: PeerAddress;
  /** The kernel's words, lower case: `connection refused`, `no route to host`. */
  readonly reason: string;
  /** The errno behind it (`ECONNREFUSED` is 111 on Linux). */
  readonly errno: number;
}

/** What a socket reports besides datagrams. */
export type TransportEvent = UnreachableEvent;

/** Receives a socket's {@link TransportEvent}s, on the JS thread, as they happen. */
export type TransportEventHandler = (event: TransportEvent) => void;

/** One bound datagram endpoint. */
export interface DatagramSocket {
  /** The bound address. */
  readonly localAddr: PeerAddress;
  /**
   * Sends every packet of the batch to its `peer`, or to `to` when given (a dialled socket sends
   * to its remote by default). Takes ownership of the packets (releases them once sent) and
   * empties the batch. Never throws for a datagram that cannot be sent: it counts a drop.
   */
  send(batch: PacketBatch, to?: PeerAddress): void;
  /** Starts delivering received datagrams to `handler` (one handler per socket). */
  receive(handler: ReceiveHandler): void;
  /**
   * Subscribes `handler` to the socket's events; returns the function that unsubscribes.
   * Optional: a transport that cannot see such events leaves it out (callers check).
   */
  onEvent?(handler: TransportEventHandler): () => void;
  /** Closes the socket; pending receives end. */
  close(): Promise<void>;
  /** Counters about this socket. */
  readonly stats: TransportStats;
}

/** Options common to every transport. */
export interface TransportOptions {
  /** SO_RCVBUF and SO_SNDBUF in bytes (kcptun `-sockbuf`); 0 leaves the kernel default. */
  sockbuf?: number;
  /** DSCP value (kcptun `-dscp`), 0 leaves it unset. */
  dscp?: number;
}

/** Creates sockets: listening ones for servers, dialled ones for clients. */
export interface DatagramTransport {
  /** Binds `host:port` (`""` or `:port` means every interface, IPv4 and IPv6). */
  listen(host: string, port: number, options?: TransportOptions): Promise<DatagramSocket>;
  /**
   * A socket for talking to one server: bound to an ephemeral port, accepting datagrams from
   * the server only.
   */
  dial(host: string, port: number, options?: TransportOptions): Promise<DatagramSocket>;
  /**
   * Transports a server of this kind also listens with, on the same addresses: fake TCP also
   * serves plain UDP, as Go's kcptun does. Absent: none.
   */
  readonly alsoServes?: readonly DatagramTransport[];
}
