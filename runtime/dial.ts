/**
 * The client side: a new conversation (conv from the CSPRNG, as kcp-go) on a datagram socket
 * dialled to the server.
 *
 * @module
 */

import type { PacketBatch, PeerAddress } from "../pipeline/packet.ts";
import type {
  DatagramSocket,
  TransportEventHandler,
  TransportOptions,
} from "../pipeline/transport.ts";
import { ConnectionDriver } from "./driver.ts";
import { TunnelSession } from "./session.ts";
import type { Tunnel } from "./tunnel.ts";

/** A random conversation id (4 bytes from the CSPRNG, little-endian, as kcp-go). */
export function randomConv(): number {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
}

/** Options of {@link dialSession}. */
export interface DialSessionOptions extends TransportOptions {
  /** The conversation id (default: random). */
  conv?: number;
  /** Millisecond clock (default `performance.now`). */
  clock?: () => number;
  /**
   * Talk through this socket to this peer instead of a socket the transport dials (a fixed
   * source port, say). The session then sends every datagram to `peer` and closes `socket`
   * when it closes.
   */
  via?: { socket: DatagramSocket; peer: PeerAddress };
  /** What the socket reports (the server's address unreachable, ...), as it happens. */
  onSocketEvent?: TransportEventHandler;
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Opens a session to `host:port` through `tunnel`'s transport. Closing the session closes its
 * socket; the tunnel's shared stages stay.
 */
export async function dialSession(
  tunnel: Tunnel,
  host: string,
  port: number,
  options: DialSessionOptions = {},
): Promise<TunnelSession> {
  const via = options.via;
  const socket = via?.socket ?? await tunnel.transport.dial(host, port, {
    sockbuf: options.sockbuf,
    dscp: options.dscp,
  });
  const send = via === undefined
    ? (b: PacketBatch) => socket.send(b)
    : (b: PacketBatch) => socket.send(b, via.peer);
  const clock = options.clock ?? (() => performance.now());
  const snmp = tunnel.snmp;
  let driver: ConnectionDriver | null = null;
  const connection = tunnel.clientConnection({
    conv: options.conv ?? randomConv(),
    now: clock(),
    onWake: () => driver?.kick(),
  });
  driver = new ConnectionDriver(connection, { send, clock });
  const d = driver;
  snmp.ActiveOpens++;
  snmp.CurrEstab++;
  if (snmp.CurrEstab > snmp.MaxConn) snmp.MaxConn = snmp.CurrEstab;
  socket.receive((batch: PacketBatch) => {
    for (let i = 0; i < batch.length; i++) {
      snmp.InPkts++;
      snmp.InBytes += batch.packets[i].end - batch.packets[i].start;
    }
    d.input(batch);
  });
  const stopEvents = options.onSocketEvent ? socket.onEvent?.(options.onSocketEvent) : undefined;
  d.closed.then(() => {
    snmp.CurrEstab--;
    stopEvents?.();
    socket.close().catch(() => {});
  });
  return new TunnelSession(d, joinHostPort(host, port), socket.localAddr.key);
}
