/**
 * A kcptun session end doing ping-pong, as a {@link SimEndpoint}: a KCP core with optional FEC
 * around it (kcp-go's 10/3 by default in kcptun), driven the way a session is (datagrams in,
 * FEC decode, KCP input of each, then one `update`; application writes each followed by a
 * flush; FEC encode of everything KCP emitted). The client sends one message, waits for the
 * whole echo, records the round trip and sends the next; the server echoes each message it has
 * received in full, with the same writes.
 *
 * A message goes out as the writes kcptun makes of it: a 64-byte ping through smux (8-byte frame
 * header) and snappy's framing (which writes a chunk header and the chunk separately) is an
 * 8-byte write and a 72-byte write, each its own KCP segment and datagram.
 *
 * @module
 */

import { type Packet, PacketBatch, PacketFlags, PacketPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import { Kcp, type KcpOptions } from "../../transforms/kcp/arq.ts";
import { FecStage } from "../../transforms/fec/stage.ts";
import type { SimEndpoint } from "./link.ts";

/** Options of a {@link PingEndpoint}. */
export interface PingEndpointOptions extends KcpOptions {
  /** The client sends pings and measures; the server echoes. */
  role: "client" | "server";
  /** FEC data/parity shards (kcptun's -ds/-ps); absent or 0: no FEC. */
  fec?: { dataShards: number; parityShards: number };
  /** The writes one message is made of (default [8, 72]). */
  writes?: number[];
  /** Pings the client sends (default Infinity). */
  count?: number;
}

/** One end of a ping-pong over KCP (and FEC). */
export class PingEndpoint implements SimEndpoint {
  /** The core. */
  readonly kcp: Kcp;
  /** This end's counters (KCP's and FEC's). */
  readonly snmp: Snmp = new Snmp();
  /** FEC around the core, or null. */
  readonly fec: FecStage | null;
  /** Client: each ping's round trip in ms, in order. */
  readonly rtts: number[] = [];
  /** Client: when each ping was sent. */
  readonly sentAt: number[] = [];
  /** The core's RTO (ms) when each message was sent. */
  readonly rtos: number[] = [];
  readonly #pool: PacketPool;
  readonly #role: "client" | "server";
  readonly #writes: number[];
  readonly #message: number;
  readonly #count: number;
  readonly #inbox = new PacketBatch();
  readonly #tx = new PacketBatch();
  readonly #buf = new Uint8Array(4096);
  #received = 0;
  #echoed = 0;
  #pingAt = -1;

  /** An end of conversation `conv`. */
  constructor(conv: number, options: PingEndpointOptions, pool = new PacketPool()) {
    this.#pool = pool;
    this.#role = options.role;
    this.#writes = options.writes ?? [8, 72];
    this.#message = this.#writes.reduce((a, b) => a + b, 0);
    this.#count = options.count ?? Infinity;
    this.kcp = new Kcp(conv, { ...options, snmp: this.snmp });
    const f = options.fec;
    this.fec = f && f.dataShards > 0 && f.parityShards > 0
      ? new FecStage(f, { role: options.role, pool, snmp: this.snmp, log: () => {} })
      : null;
  }

  /** Pings answered so far (client). */
  get answered(): number {
    return this.rtts.length;
  }

  /** Queues a datagram for the next poll (one batch per poll). */
  receive(p: Packet, _now: number): void {
    this.#inbox.push(p);
  }

  /** Input of the queued datagrams, the timer, the application, and the output. */
  poll(now: number, out: PacketBatch): void {
    const kcp = this.kcp, pool = this.#pool, tx = this.#tx, rx = this.#inbox;
    if (rx.length > 0) {
      this.fec?.decode(rx, now);
      for (let i = 0; i < rx.length; i++) {
        const p = rx.packets[i];
        const recovered = (p.flags & PacketFlags.Recovered) !== 0;
        if (p.end - p.start >= 24) kcp.input(p.buffer, p.start, p.end, now, recovered);
        p.release();
      }
      rx.clear();
    }
    kcp.update(now, tx, pool);
    for (let n = kcp.recv(this.#buf); n > 0; n = kcp.recv(this.#buf)) this.#received += n;
    if (this.#role === "server") {
      while (this.#received - this.#echoed >= this.#message) {
        this.#sendMessage(now);
        this.#echoed += this.#message;
      }
    } else {
      if (this.#pingAt >= 0 && this.#received >= this.rtts.length * this.#message + this.#message) {
        this.rtts.push(now - this.#pingAt);
        this.#pingAt = -1;
      }
      if (this.#pingAt < 0 && this.sentAt.length < this.#count) {
        this.#pingAt = now;
        this.sentAt.push(now);
        this.#sendMessage(now);
      }
    }
    if (tx.length > 0) {
      this.fec?.encode(tx, now);
      out.takeAll(tx);
    }
  }

  #sendMessage(now: number): void {
    this.rtos.push(this.kcp.rto);
    for (const w of this.#writes) {
      this.kcp.send(this.#buf, 0, w);
      this.kcp.flush(now, this.#tx, this.#pool);
    }
  }

  /** Now when datagrams wait, else the core's next deadline. */
  deadline(now: number): number {
    if (this.#inbox.length > 0) return now;
    return this.kcp.check(now);
  }
}
