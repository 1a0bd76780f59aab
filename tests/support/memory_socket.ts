/**
 * An in-memory datagram network implementing the transport contract, for session tests: sockets
 * bound to made-up addresses, seeded loss, delivery on the next macrotask (so both ends run on
 * the real event loop and timers, like sockets would).
 */

import { PacketBatch, type PacketPool, type PeerAddress } from "../../pipeline/packet.ts";
import { defaultPool } from "../../pipeline/packet.ts";
import type { DatagramSocket, ReceiveHandler, TransportStats } from "../../pipeline/transport.ts";

/** The seeded PRNG the demo link uses (mulberry32), under the name these tests use. */
import { seededRandom as prng } from "../../cli/demo/lossy_link.ts";
export { prng };

/** Sockets that reach each other by address. */
export class MemoryNetwork {
  readonly #sockets = new Map<string, MemorySocket>();
  /** Fraction of datagrams dropped (0..1). */
  loss: number;
  /** Datagrams dropped so far. */
  dropped = 0;
  /** Datagrams delivered so far. */
  delivered = 0;
  readonly #random: () => number;
  readonly pool: PacketPool;
  #nextPort = 40000;

  /** A network dropping `loss` of the datagrams, decided by a PRNG seeded with `seed`. */
  constructor(loss = 0, seed = 1, pool: PacketPool = defaultPool) {
    this.loss = loss;
    this.#random = prng(seed);
    this.pool = pool;
  }

  /** A socket at `127.0.0.1:port` (a fresh port when omitted). */
  bind(port = this.#nextPort++, defaultPeer: PeerAddress | null = null): MemorySocket {
    const addr = peer("127.0.0.1", port);
    const s = new MemorySocket(this, addr, defaultPeer);
    this.#sockets.set(addr.key, s);
    return s;
  }

  /** @internal */
  _route(from: MemorySocket, batch: PacketBatch, to: PeerAddress | undefined): void {
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const dest = to ?? p.peer ?? from.defaultPeer;
      const target = dest ? this.#sockets.get(dest.key) : undefined;
      if (target && !target.isClosed && this.#random() >= this.loss) {
        const copy = this.pool.from(p.bytes());
        copy.peer = from.localAddr;
        target._enqueue(copy);
        this.delivered++;
      } else {
        this.dropped++;
      }
      p.release();
    }
    batch.length = 0;
  }

  /** @internal */
  _forget(s: MemorySocket): void {
    if (this.#sockets.get(s.localAddr.key) === s) this.#sockets.delete(s.localAddr.key);
  }
}

/** An interned-style address object. */
export function peer(hostname: string, port: number): PeerAddress {
  return { family: "ipv4", hostname, port, key: `${hostname}:${port}` };
}

/** One in-memory socket. */
export class MemorySocket implements DatagramSocket {
  readonly localAddr: PeerAddress;
  readonly defaultPeer: PeerAddress | null;
  readonly stats: TransportStats = { rxPackets: 0, txPackets: 0, dropped: 0 };
  readonly #net: MemoryNetwork;
  #handler: ReceiveHandler | null = null;
  readonly #inbox = new PacketBatch();
  #scheduled = false;
  isClosed = false;

  constructor(net: MemoryNetwork, addr: PeerAddress, defaultPeer: PeerAddress | null) {
    this.#net = net;
    this.localAddr = addr;
    this.defaultPeer = defaultPeer;
  }

  send(batch: PacketBatch, to?: PeerAddress): void {
    this.stats.txPackets += batch.length;
    this.#net._route(this, batch, to);
  }

  receive(handler: ReceiveHandler): void {
    this.#handler = handler;
  }

  close(): Promise<void> {
    this.isClosed = true;
    this.#inbox.releaseAll();
    this.#net._forget(this);
    return Promise.resolve();
  }

  /** @internal */
  _enqueue(p: import("../../pipeline/packet.ts").Packet): void {
    this.#inbox.push(p);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        if (this.isClosed) return this.#inbox.releaseAll();
        this.stats.rxPackets += this.#inbox.length;
        if (this.#handler) this.#handler(this.#inbox);
        this.#inbox.releaseAll();
      }, 0);
    }
  }
}
