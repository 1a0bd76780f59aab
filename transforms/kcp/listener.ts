/**
 * The server side of KCP over a datagram socket: one session per remote address, created by the
 * first datagram from that address, as kcp-go's listener does.
 *
 * Per received batch: the shared packet stages (crypt's check and open) run once over the whole
 * batch, then each datagram is routed by its source address. The conversation id is read from
 * the first KCP segment (inside an FEC data shard when FEC framing is present; parity shards carry
 * none). A known address with another conv is dropped, unless that segment has sn 0: then the old
 * session is closed and replaced (a restarted client on the same port). An unknown address with a
 * readable conv creates a session unless `backlog` sessions wait to be accepted.
 *
 * @module
 */

import { PacketBatch, type PeerAddress } from "../../pipeline/packet.ts";
import type { Packet } from "../../pipeline/packet.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import type { PacketStage } from "../../pipeline/stage.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import type { KcpSession } from "./session.ts";

/** How the conversation id is found in a datagram after the shared stages. */
export type ConvLocator = "kcp" | "fec" | "none";

/** What the listener needs to make sessions. */
export interface KcpListenerOptions {
  /** Packet stages every session shares (run before routing), KCP side first. */
  shared: PacketStage;
  /**
   * Where the conv is once the shared stages ran: `"kcp"` when the datagram is bare KCP,
   * `"fec"` when per-session FEC framing comes next, `"none"` when a per-session stage hides it
   * (then sessions are keyed by address only and never replaced).
   */
  locator: ConvLocator;
  /** Makes a session for a new conversation (its per-session packet stages, KCP settings). */
  createSession: (socket: DatagramSocket, peer: PeerAddress, conv: number) => KcpSession;
  /** Counters. */
  snmp: Snmp;
  /** Sessions created but not yet accepted before new ones are refused (kcp-go: 128). */
  backlog?: number;
  /** Clock in ms (default `performance.now`). */
  clock?: () => number;
}

const FEC_DATA = 0xf1;
const FEC_PARITY = 0xf2;
/** FEC header (8) + size field: where KCP starts inside a data shard. */
const FEC_KCP_OFFSET = 8;

/** Accepts KCP sessions arriving on one datagram socket. */
export class KcpListener {
  /** The socket. */
  readonly socket: DatagramSocket;
  readonly #opts: KcpListenerOptions;
  readonly #sessions = new Map<string, KcpSession>();
  readonly #pending: KcpSession[] = [];
  readonly #acceptWaiters: Array<(s: KcpSession | null) => void> = [];
  readonly #rx = new PacketBatch();
  readonly #route = new PacketBatch();
  readonly #clock: () => number;
  #closed = false;
  /** Result of {@link KcpListener.#peek}: conv, or -1 when the datagram carries none. */
  #peekSn = 0;

  /** Starts receiving on `socket`. */
  constructor(socket: DatagramSocket, options: KcpListenerOptions) {
    this.socket = socket;
    this.#opts = options;
    this.#clock = options.clock ?? (() => performance.now());
    socket.receive((batch) => this.#onBatch(batch));
  }

  /** Sessions alive now, by remote address. */
  get sessions(): ReadonlyMap<string, KcpSession> {
    return this.#sessions;
  }

  /** The next new session, or null once the listener is closed. */
  accept(): Promise<KcpSession | null> {
    const s = this.#pending.shift();
    if (s) return Promise.resolve(s);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((r) => this.#acceptWaiters.push(r));
  }

  /** Closes every session and the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#sessions.values()]) s.close();
    for (const w of this.#acceptWaiters.splice(0)) w(null);
    this.#pending.length = 0;
    await this.socket.close();
  }

  #onBatch(batch: PacketBatch): void {
    const snmp = this.#opts.snmp;
    const rx = this.#rx;
    rx.takeAll(batch);
    for (let i = 0; i < rx.length; i++) {
      snmp.InPkts++;
      snmp.InBytes += rx.packets[i].end - rx.packets[i].start;
    }
    if (this.#closed) {
      rx.releaseAll();
      return;
    }
    const r = this.#opts.shared.decode(rx, this.#clock());
    if (r === undefined) {
      this.#routeAll(rx);
      return;
    }
    const held = new PacketBatch();
    held.takeAll(rx);
    r.then(() => this.#routeAll(held), () => held.releaseAll());
  }

  /** Routes each datagram to its session; consecutive datagrams of one session go as one batch. */
  #routeAll(rx: PacketBatch): void {
    const route = this.#route;
    let current: KcpSession | null = null;
    for (let i = 0; i < rx.length; i++) {
      const p = rx.packets[i];
      const s = this.#sessionFor(p);
      if (s === null) {
        p.release();
        continue;
      }
      if (s !== current && current !== null && route.length > 0) current.input(route);
      current = s;
      route.push(p);
    }
    if (current !== null && route.length > 0) current.input(route);
    route.length = 0;
    rx.length = 0;
  }

  #sessionFor(p: Packet): KcpSession | null {
    const opts = this.#opts;
    if (p.end - p.start < 24) {
      opts.snmp.InErrs++;
      return null;
    }
    const peer = p.peer;
    if (peer === null) return null;
    const conv = this.#peek(p);
    let s = this.#sessions.get(peer.key) ?? null;
    if (s !== null) {
      if (conv < 0 || conv === s.conv) return s;
      if (this.#peekSn !== 0) return null;
      s.close(); // a restarted client: new conversation from the same address, sn 0
      s = null;
    }
    if (conv < 0 || this.#closed) return null;
    if (this.#pending.length >= (opts.backlog ?? 128)) return null;
    s = opts.createSession(this.socket, peer, conv);
    const key = peer.key;
    this.#sessions.set(key, s);
    opts.snmp.PassiveOpens++;
    opts.snmp.CurrEstab++;
    if (opts.snmp.CurrEstab > opts.snmp.MaxConn) opts.snmp.MaxConn = opts.snmp.CurrEstab;
    s.closed.then(() => {
      opts.snmp.CurrEstab--;
      if (this.#sessions.get(key) === s) this.#sessions.delete(key);
      const at = this.#pending.indexOf(s!);
      if (at >= 0) this.#pending.splice(at, 1);
    });
    const w = this.#acceptWaiters.shift();
    if (w) w(s);
    else this.#pending.push(s);
    return s;
  }

  /** The conv of the first KCP segment (and its sn in #peekSn), or -1 when there is none. */
  #peek(p: Packet): number {
    const b = p.buffer, at = p.start, len = p.end - p.start;
    let k = at;
    const locator = this.#opts.locator;
    if (locator === "none") return -1;
    if (locator === "fec") {
      const flag = b[at + 4] | (b[at + 5] << 8);
      if (flag === FEC_PARITY) return -1;
      if (flag === FEC_DATA) {
        if (len < FEC_KCP_OFFSET + 24) return -1;
        k = at + FEC_KCP_OFFSET;
      }
    }
    this.#peekSn = (b[k + 12] | (b[k + 13] << 8) | (b[k + 14] << 16) | (b[k + 15] << 24)) >>> 0;
    return (b[k] | (b[k + 1] << 8) | (b[k + 2] << 16) | (b[k + 3] << 24)) >>> 0;
  }
}
