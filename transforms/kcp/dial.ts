/**
 * The client side of KCP over a datagram socket: a new conversation (conv from the CSPRNG, as
 * kcp-go) on a socket dialled to the server.
 *
 * @module
 */

import type { PacketBatch } from "../../pipeline/packet.ts";
import type { PacketStage } from "../../pipeline/stage.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import { KcpSession, type KcpSessionOptions } from "./session.ts";

/** A random conversation id (4 bytes from the CSPRNG, little-endian, as kcp-go). */
export function randomConv(): number {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
}

/**
 * Starts a session over a socket dialled to the server: every datagram the socket receives goes
 * through `chain` to KCP; closing the session closes the socket.
 */
export function clientSession(
  socket: DatagramSocket,
  chain: PacketStage,
  options: Omit<KcpSessionOptions, "conv"> & { conv?: number },
): KcpSession {
  const snmp = options.snmp;
  const session = new KcpSession(socket, null, chain, {
    ...options,
    conv: options.conv ?? randomConv(),
    onClose: (s) => {
      snmp.CurrEstab--;
      socket.close().catch(() => {});
      options.onClose?.(s);
    },
  });
  snmp.ActiveOpens++;
  snmp.CurrEstab++;
  if (snmp.CurrEstab > snmp.MaxConn) snmp.MaxConn = snmp.CurrEstab;
  socket.receive((batch: PacketBatch) => {
    for (let i = 0; i < batch.length; i++) {
      snmp.InPkts++;
      snmp.InBytes += batch.packets[i].end - batch.packets[i].start;
    }
    session.input(batch);
  });
  return session;
}
