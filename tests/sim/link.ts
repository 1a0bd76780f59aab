/**
 * A deterministic network simulator: two sans-IO endpoints joined by two one-way links on a fake
 * clock, driven by an event queue (binary heap). Links model loss (Bernoulli or Gilbert-Elliott
 * bursts), delay, jitter, explicit reordering, duplication, a bandwidth cap with a drop-tail queue.
 * Everything random comes from one seeded PRNG, so a run is a pure function of its seed and
 * configuration, and simulated minutes take real seconds.
 *
 * Endpoints are anything that implements {@link SimEndpoint}: a KCP core with a test application
 * (`kcp_endpoint.ts`), or later FEC+KCP, or a whole session stack.
 *
 * @module
 */

import { type Packet, PacketBatch } from "../../pipeline/packet.ts";

/** Small fast seeded PRNG (sfc32); `next()` is uniform in [0, 1). */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** A generator determined by `seed` (any number). */
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = (seed >>> 0) ^ Math.floor(seed / 0x100000000);
    for (let i = 0; i < 15; i++) this.u32();
  }

  /** Uniform u32. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 0x100000000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
}

/** Gilbert-Elliott two-state loss: a good and a bad state with their own loss rates. */
export interface BurstLoss {
  /** Per-packet probability of going from good to bad. */
  pGoodToBad: number;
  /** Per-packet probability of going from bad to good. */
  pBadToGood: number;
  /** Loss probability in the good state (default 0). */
  lossGood?: number;
  /** Loss probability in the bad state (default 1). */
  lossBad?: number;
}

/** One direction of a link. */
export interface LinkConfig {
  /** Base one-way delay (ms). */
  delay: number;
  /** Extra delay uniform in [0, jitter) per packet (ms); reorders packets closer than it. */
  jitter?: number;
  /**
   * Keep jittered packets in order (a packet never overtakes the one before it), as on a path
   * whose delay varies through queueing rather than through multipath. `reorder` still applies.
   */
  fifo?: boolean;
  /** Independent loss probability per packet (ignored when `burst` is given). */
  loss?: number;
  /** Bursty loss instead of `loss`. */
  burst?: BurstLoss;
  /** Probability that a packet is held back by an extra `reorderDelay` (reordering). */
  reorder?: number;
  /** Extra delay of a reordered packet (ms, default 2 × delay + 1). */
  reorderDelay?: number;
  /** Probability that a packet is delivered twice (the copy has its own jitter). */
  duplicate?: number;
  /** Bottleneck rate in bytes per ms (1 Mbit/s = 125); 0 or absent = unlimited. */
  bandwidth?: number;
  /** Bottleneck queue in bytes before drop-tail (default 256 KiB); only with `bandwidth`. */
  queueLimit?: number;
}

/** A sans-IO endpoint the simulator can drive. */
export interface SimEndpoint {
  /** Takes one arriving datagram (and ownership of the packet: release it when done). */
  receive(packet: Packet, now: number): void;
  /** Does whatever is due at `now` and appends datagrams to send to `out`. */
  poll(now: number, out: PacketBatch): void;
  /** When `poll` must next run (same clock), or Infinity. */
  deadline(now: number): number;
}

/** Counters of one link direction. */
export class LinkStats {
  /** Datagrams offered to the link. */
  sent = 0;
  /** Bytes offered to the link. */
  sentBytes = 0;
  /** Datagrams lost (random or burst loss). */
  lost = 0;
  /** Datagrams dropped by the full bottleneck queue. */
  queueDrops = 0;
  /** Extra copies made. */
  duplicated = 0;
  /** Datagrams handed to the receiver. */
  delivered = 0;
}

const EV_DELIVER = 0;
const EV_TIMER = 1;

class SimEvent {
  time = 0;
  seq = 0;
  kind = EV_DELIVER;
  /** Endpoint index (0 or 1). */
  target = 0;
  gen = 0;
  packet: Packet | null = null;
}

class Link {
  readonly stats = new LinkStats();
  freeAt = 0;
  lastArrival = 0;
  bad = false;
  constructor(readonly cfg: LinkConfig) {}
}

/** Options of a {@link Simulator}. */
export interface SimOptions {
  /**
   * When endpoint b is first polled (ms). Default: a seeded random time in [0, 100), so that the
   * two endpoints' flush timers do not tick in lock-step, which no real pair of hosts does.
   * `Infinity`: only when its first datagram arrives (a server session).
   */
  startB?: number;
  /**
   * Hand every datagram that arrives at an endpoint at the same instant to `receive` before
   * polling it once, as one `recvmmsg` batch would (datagrams sent back to back over a fixed
   * delay arrive together). Default false: one poll per datagram, as a reader that takes one
   * datagram at a time (kcp-go's) sees them.
   */
  batch?: boolean;
}

/** Runs two endpoints (index 0 and 1) over a simulated link pair. */
export class Simulator {
  /** The fake clock (ms). */
  now = 0;
  /** Events processed so far. */
  events = 0;
  /** Sees every datagram offered to a link (before loss), e.g. to count segment kinds. */
  tap: ((from: 0 | 1, packet: Packet, now: number) => void) | null = null;
  readonly #rng: Rng;
  readonly #eps: [SimEndpoint, SimEndpoint];
  readonly #links: [Link, Link];
  #heap: SimEvent[] = [];
  #free: SimEvent[] = [];
  #seq = 0;
  readonly #timerGen = [0, 0];
  readonly #timerAt = [Infinity, Infinity];
  readonly #out = new PacketBatch();

  /**
   * `a` and `b` joined by `ab` (a → b) and `ba` (b → a, default: same as `ab`). Endpoint a is
   * first polled at time 0, b as `options.startB` says.
   */
  constructor(
    seed: number,
    a: SimEndpoint,
    b: SimEndpoint,
    ab: LinkConfig,
    ba: LinkConfig = ab,
    options: SimOptions = {},
  ) {
    this.#rng = new Rng(seed);
    this.#eps = [a, b];
    this.#links = [new Link(ab), new Link(ba)];
    this.#startB = options.startB ?? this.#rng.next() * 100;
    this.#batch = options.batch ?? false;
  }

  readonly #batch: boolean;

  readonly #startB: number;
  #started = false;
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#service(0);
    if (this.#startB === 0) this.#service(1);
    else if (this.#startB !== Infinity) {
      const ev = this.#alloc();
      ev.time = this.#startB;
      ev.kind = EV_TIMER;
      ev.target = 1;
      ev.gen = ++this.#timerGen[1];
      this.#timerAt[1] = this.#startB;
      this.#push(ev);
    }
  }

  /** Counters of the link leaving endpoint `from` (0: a → b, 1: b → a). */
  stats(from: 0 | 1): LinkStats {
    return this.#links[from].stats;
  }

  /** Processes events until the clock would pass `until` (the clock then reads `until`). */
  run(until: number): void {
    this.#start();
    while (this.#heap.length > 0 && this.#heap[0].time <= until) this.#step();
    if (this.now < until) this.now = until;
  }

  /**
   * Processes events until `done()` is true (checked after every event) or the clock would pass
   * `limit`; returns whether `done()` became true.
   */
  runUntil(done: () => boolean, limit: number): boolean {
    this.#start();
    if (done()) return true;
    while (this.#heap.length > 0 && this.#heap[0].time <= limit) {
      this.#step();
      if (done()) return true;
    }
    if (this.now < limit) this.now = limit;
    return false;
  }

  /** Re-polls endpoint `i` now (call after changing its application state from outside). */
  wake(i: 0 | 1): void {
    this.#start();
    this.#service(i);
  }

  #step(): void {
    const ev = this.#pop();
    this.now = ev.time;
    this.events++;
    const i = ev.target;
    if (ev.kind === EV_DELIVER) {
      const p = ev.packet!;
      ev.packet = null;
      this.#links[1 - i].stats.delivered++;
      this.#eps[i].receive(p, this.now);
      while (this.#batch && this.#heap.length > 0) {
        const next = this.#heap[0];
        if (next.kind !== EV_DELIVER || next.target !== i || next.time !== this.now) break;
        this.#pop();
        this.events++;
        const q = next.packet!;
        next.packet = null;
        this.#links[1 - i].stats.delivered++;
        this.#eps[i].receive(q, this.now);
        this.#free.push(next);
      }
      this.#service(i);
    } else if (ev.gen === this.#timerGen[i]) {
      this.#timerAt[i] = Infinity;
      this.#service(i);
    }
    this.#free.push(ev);
  }

  #service(i: number): void {
    const ep = this.#eps[i];
    const out = this.#out;
    const now = this.now;
    ep.poll(now, out);
    for (let k = 0; k < out.length; k++) this.#transmit(i, out.at(k));
    out.clear();
    let d = ep.deadline(now);
    if (d < now) d = now;
    if (d === now) {
      // Due again at once: poll again until it settles, but never spin forever.
      for (let guard = 0; d <= now; guard++) {
        if (guard > 1000) throw new Error(`endpoint ${i} stays due at ${now}`);
        ep.poll(now, out);
        for (let k = 0; k < out.length; k++) this.#transmit(i, out.at(k));
        out.clear();
        d = ep.deadline(now);
      }
    }
    if (d !== this.#timerAt[i]) {
      this.#timerGen[i]++;
      this.#timerAt[i] = d;
      if (d !== Infinity) {
        const ev = this.#alloc();
        ev.time = d;
        ev.kind = EV_TIMER;
        ev.target = i;
        ev.gen = this.#timerGen[i];
        this.#push(ev);
      }
    }
  }

  #transmit(from: number, p: Packet): void {
    const link = this.#links[from];
    const cfg = link.cfg;
    const rng = this.#rng;
    const st = link.stats;
    if (this.tap !== null) this.tap(from as 0 | 1, p, this.now);
    st.sent++;
    st.sentBytes += p.length;
    let lose: boolean;
    if (cfg.burst) {
      const b = cfg.burst;
      if (link.bad) {
        if (rng.chance(b.pBadToGood)) link.bad = false;
      } else if (rng.chance(b.pGoodToBad)) link.bad = true;
      lose = rng.chance(link.bad ? (b.lossBad ?? 1) : (b.lossGood ?? 0));
    } else {
      lose = rng.chance(cfg.loss ?? 0);
    }
    if (lose) {
      st.lost++;
      p.release();
      return;
    }
    let depart = this.now;
    if (cfg.bandwidth && cfg.bandwidth > 0) {
      const start = link.freeAt > this.now ? link.freeAt : this.now;
      const queued = (start - this.now) * cfg.bandwidth;
      if (queued + p.length > (cfg.queueLimit ?? 262144)) {
        st.queueDrops++;
        p.release();
        return;
      }
      link.freeAt = start + p.length / cfg.bandwidth;
      depart = link.freeAt;
    }
    if (rng.chance(cfg.duplicate ?? 0)) {
      st.duplicated++;
      const copy = p.pool !== null ? p.pool.acquire() : null;
      if (copy !== null) {
        copy.buffer.set(p.buffer.subarray(p.start, p.end), p.start);
        copy.start = p.start;
        copy.end = p.end;
        copy.flags = p.flags;
        this.#deliver(1 - from, copy, this.#arrival(link, depart));
      }
    }
    this.#deliver(1 - from, p, this.#arrival(link, depart));
  }

  /** Arrival time of a packet leaving the bottleneck at `depart`. */
  #arrival(link: Link, depart: number): number {
    const cfg = link.cfg;
    const rng = this.#rng;
    let t = depart + cfg.delay;
    if (cfg.jitter) t += rng.next() * cfg.jitter;
    if (cfg.fifo) {
      if (t < link.lastArrival) t = link.lastArrival;
      link.lastArrival = t;
    }
    if (cfg.reorder && rng.chance(cfg.reorder)) t += cfg.reorderDelay ?? 2 * cfg.delay + 1;
    return t;
  }

  #deliver(to: number, p: Packet, at: number): void {
    const ev = this.#alloc();
    ev.time = at;
    ev.kind = EV_DELIVER;
    ev.target = to;
    ev.packet = p;
    this.#push(ev);
  }

  #alloc(): SimEvent {
    const ev = this.#free.pop() ?? new SimEvent();
    ev.seq = this.#seq++;
    return ev;
  }

  // Binary min-heap on (time, seq): equal times keep insertion order, so runs are deterministic.
  #less(x: SimEvent, y: SimEvent): boolean {
    return x.time < y.time || (x.time === y.time && x.seq < y.seq);
  }

  #push(ev: SimEvent): void {
    const h = this.#heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(ev, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = ev;
  }

  #pop(): SimEvent {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.#less(h[r], h[l]) ? r : l;
        if (!this.#less(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
