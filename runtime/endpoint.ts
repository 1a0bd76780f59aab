/**
 * The server side's demultiplexing as a sans-IO router: datagrams from one socket are checked
 * by the shared packet stages (crypt) once per batch, then routed by source address to their
 * connection, as kcp-go's listener does. No sockets, no clock, no timers.
 *
 * A connection is only created for a datagram that parses as KCP all the way through (every
 * segment with the same conversation id, a known command, a length that fits), found under the
 * per-connection packet stages with their `peek` hooks; garbage that happens to pass the
 * integrity check, and floods from many addresses, create nothing. A known address with a new
 * conversation whose first segment has sn 0 replaces the old connection (a client restarted on
 * the same port); other datagrams of a foreign conversation are dropped.
 *
 * @module
 */

import { PacketBatch, type PeerAddress } from "../pipeline/packet.ts";
import type { Snmp } from "../pipeline/snmp.ts";
import type { ByteRange, PacketStage } from "../pipeline/stage.ts";
import { datagramConv, KCP_OVERHEAD, segConv } from "../transforms/kcp/wire.ts";

/** Finds the KCP bytes of a datagram after the shared stages, or says it carries none. */
export type KcpLocator = (buffer: Uint8Array, range: ByteRange) => boolean;

/**
 * The locator for per-connection packet stages (KCP side first): each stage's `peek`, wire side
 * first. Null when a stage has no `peek`: then the conversation id cannot be read before a
 * connection exists.
 */
export function locatorFor(stages: readonly PacketStage[]): KcpLocator | null {
  for (const s of stages) if (s.peek === undefined) return null;
  if (stages.length === 0) return () => true;
  return (buffer, range) => {
    for (let i = stages.length - 1; i >= 0; i--) if (!stages[i].peek!(buffer, range)) return false;
    return true;
  };
}

const KCP_HEADER = KCP_OVERHEAD;

/** What the endpoint asks of its owner. */
export interface EndpointHooks<H> {
  /**
   * A first valid datagram from `peer` for conversation `conv`: make its connection, or return
   * null to refuse (backlog full).
   */
  create(peer: PeerAddress, conv: number, now: number): H | null;
  /** Datagrams for a connection, in arrival order (takes the packets over, not the batch). */
  deliver(handle: H, batch: PacketBatch, now: number): void;
  /** A connection replaced by a new conversation from the same address: close it. */
  replaced(handle: H, now: number): void;
}

/** Options of a {@link ServerEndpoint}. */
export interface EndpointOptions<H> {
  /** Packet stages every connection shares, run before routing (crypt), KCP side first. */
  shared: PacketStage;
  /** Where KCP lies under the per-connection stages (see {@link locatorFor}). */
  locate: KcpLocator;
  /** Counters. */
  snmp: Snmp;
  /** The owner's side. */
  hooks: EndpointHooks<H>;
}

interface Entry<H> {
  readonly handle: H;
  readonly conv: number;
}

/** Routes one socket's datagrams to connections by source address. */
export class ServerEndpoint<H> {
  readonly #opts: EndpointOptions<H>;
  readonly #entries = new Map<string, Entry<H>>();
  /** Replaced by a fresh batch whenever an asynchronous shared stage keeps working on it. */
  #rx = new PacketBatch();
  readonly #route = new PacketBatch();
  readonly #range: ByteRange = { start: 0, end: 0 };
  readonly #first = { sn: 0 };
  #closed = false;

  /** A router with `options`. */
  constructor(options: EndpointOptions<H>) {
    this.#opts = options;
  }

  /** Connections by remote address key. */
  get size(): number {
    return this.#entries.size;
  }

  /** The connection of `peerKey`, if any. */
  get(peerKey: string): H | undefined {
    return this.#entries.get(peerKey)?.handle;
  }

  /** All connections. */
  handles(): H[] {
    return [...this.#entries.values()].map((e) => e.handle);
  }

  /** Forgets `peerKey`'s connection if it is `handle` (it closed). */
  remove(peerKey: string, handle: H): void {
    if (this.#entries.get(peerKey)?.handle === handle) this.#entries.delete(peerKey);
  }

  /** No new connections from now on. */
  close(): void {
    this.#closed = true;
  }

  /**
   * One batch from the socket (each packet's `peer` set); takes the packets over. Returns a
   * promise only while an asynchronous shared stage works on it.
   */
  handleDatagrams(batch: PacketBatch, now: number): void | Promise<void> {
    const snmp = this.#opts.snmp;
    const rx = this.#rx;
    rx.takeAll(batch);
    for (let i = 0; i < rx.length; i++) {
      snmp.InPkts++;
      snmp.InBytes += rx.packets[i].end - rx.packets[i].start;
    }
    const r = this.#opts.shared.decode(rx, now);
    if (r === undefined) return this.#routeAll(rx, now);
    // The stages go on working on this batch object after the promise: leave it to them.
    this.#rx = new PacketBatch();
    return r.then(() => this.#routeAll(rx, now), () => rx.releaseAll());
  }

  /** Consecutive datagrams of one connection go out as one batch. */
  #routeAll(rx: PacketBatch, now: number): void {
    const route = this.#route, hooks = this.#opts.hooks;
    let current: Entry<H> | null = null;
    for (let i = 0; i < rx.length; i++) {
      const p = rx.packets[i];
      const e = this.#entryFor(p.buffer, p.start, p.end, p.peer, now);
      if (e === null) {
        p.release();
        continue;
      }
      if (e !== current && current !== null && route.length > 0) {
        hooks.deliver(current.handle, route, now);
        route.length = 0;
      }
      current = e;
      route.push(p);
    }
    if (current !== null && route.length > 0) hooks.deliver(current.handle, route, now);
    route.length = 0;
    rx.length = 0;
  }

  #entryFor(
    buffer: Uint8Array,
    start: number,
    end: number,
    peer: PeerAddress | null,
    now: number,
  ): Entry<H> | null {
    const opts = this.#opts;
    if (peer === null) return null;
    if (end - start < KCP_HEADER) {
      opts.snmp.InErrs++;
      return null;
    }
    const known = this.#entries.get(peer.key) ?? null;
    const range = this.#range;
    range.start = start;
    range.end = end;
    // Parity and other datagrams without KCP bytes belong to a known connection only.
    if (!opts.locate(buffer, range)) return known;
    // A known connection's own datagrams only need their first conv read; KCP judges the rest
    // (and counts what it rejects). Anything that would create a connection must parse.
    if (known !== null && range.end - range.start >= KCP_HEADER) {
      if (segConv(buffer, range.start) === known.conv) return known;
    }
    const conv = datagramConv(buffer, range.start, range.end, this.#first);
    if (conv < 0) {
      opts.snmp.KCPInErrors++;
      return null;
    }
    if (known !== null) {
      // Another conversation: a restarted client's first segment replaces it, else drop.
      if (this.#first.sn !== 0) return null;
      this.#entries.delete(peer.key);
      opts.hooks.replaced(known.handle, now);
    }
    if (this.#closed) return null;
    const handle = opts.hooks.create(peer, conv, now);
    if (handle === null) return null;
    const e: Entry<H> = { handle, conv };
    this.#entries.set(peer.key, e);
    return e;
  }
}
