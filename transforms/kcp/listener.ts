/**
 * The server side of KCP over a datagram socket: one session per remote address, created by the
 * first datagram from that address, as kcp-go's listener does.
 *
 * Per received batch: the shared packet stages (crypt's check and open) run once over the whole
 * batch, then each datagram is routed by its source address. {@link peekDatagram} checks that it
 * is well-formed KCP and reads the conversation id of its first segment (inside an FEC data shard
 * when FEC framing is present; parity shards carry none). A datagram that is not KCP is dropped
 * and counted (`KCPInErrors`), whoever sent it. A known address with another conv is dropped,
 * unless that segment has sn 0: then the old session is closed and replaced (a restarted client
 * on the same port). An unknown address creates a session only with well-formed KCP, and only
 * while fewer than `backlog` sessions wait to be accepted: junk from many source addresses opens
 * nothing. (kcp-go opens a session for any datagram with a readable conv.)
 *
 * @module
 */

import { PacketBatch, type PeerAddress } from "../../pipeline/packet.ts";
import type { Packet } from "../../pipeline/packet.ts";
import type { Snmp } from "../../pipeline/snmp.ts";
import type { PacketStage } from "../../pipeline/stage.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import { type ConvLocator, Peek, peekDatagram, type PeekedSegment } from "./peek.ts";
import type { KcpSession } from "./session.ts";

export type { ConvLocator };

/** What the listener needs to make sessions. */
export interface KcpListenerOptions {
  /** Packet stages every session shares (run before routing), KCP side first. */
  shared: PacketStage;
  /**
   * Where the KCP bytes are once the shared stages ran: `"kcp"` when the datagram is bare KCP,
   * `"fec"` when per-session FEC framing comes next, `"none"` when a per-session stage hides
   * them (then nothing can be checked or read, and no session is opened).
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
  /** The first segment of the datagram being routed (reused: no allocation per datagram). */
  readonly #seg: PeekedSegment = { conv: 0, sn: 0 };

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
    const seg = this.#seg;
    const kind = peekDatagram(p.buffer, p.start, p.end, opts.locator, seg);
    if (kind === Peek.Invalid) {
      opts.snmp.KCPInErrors++;
      return null;
    }
    let s = this.#sessions.get(peer.key) ?? null;
    if (s !== null) {
      if (kind !== Peek.Kcp || seg.conv === s.conv) return s;
      if (seg.sn !== 0) return null;
      s.close(); // a restarted client: new conversation from the same address, sn 0
      s = null;
    }
    if (kind !== Peek.Kcp || this.#closed) return null;
    if (this.#pending.length >= (opts.backlog ?? 128)) return null;
    s = opts.createSession(this.socket, peer, seg.conv);
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
}
