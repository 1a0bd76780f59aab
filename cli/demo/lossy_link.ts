/**
 * A simulated lossy link on loopback: a UDP relay between a tunnel client and server that drops
 * datagrams with a seeded probability and delays the rest by a fixed time each way.
 *
 * The client sends to the relay's port instead of the server's. Each client address gets its own
 * upstream socket, so the server sees one remote address per client session, as on a real path.
 * The delay is constant, so order is kept (a FIFO per direction and one timer); loss is decided
 * by a seeded generator, so a run can be repeated. It only binds and sends to the loopback
 * addresses it is given.
 *
 * @module
 */

/** Options of {@link LossyLink}. */
export interface LossyLinkOptions {
  /** Address the relay listens on for the client (default 127.0.0.1). */
  readonly hostname?: string;
  /** Port the relay listens on (default 0: any free port). */
  readonly port?: number;
  /** The server's address. */
  readonly targetHostname: string;
  /** The server's UDP port. */
  readonly targetPort: number;
  /** Drop probability per datagram and direction, 0..1 (default 0). */
  readonly loss?: number;
  /** One-way delay in ms (default 0). */
  readonly delayMs?: number;
  /** Seed of the loss decisions (default 1). */
  readonly seed?: number;
  /** Called for every datagram entering the link (before loss), e.g. to record sizes. */
  readonly onDatagram?: (direction: "up" | "down", size: number) => void;
}

/** Counters of one direction. */
export interface LinkDirectionStats {
  /** Datagrams that entered the link. */
  packets: number;
  /** Of which dropped. */
  dropped: number;
  /** Bytes that entered the link. */
  bytes: number;
}

/** A seeded 32-bit generator (mulberry32) giving floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pending {
  due: number;
  data: Uint8Array;
  socket: Deno.DatagramConn;
  to: Deno.NetAddr;
}

/** A FIFO of datagrams due at non-decreasing times, sent by one timer. */
class DelayLine {
  #queue: Array<Pending | undefined> = new Array(1024);
  #head = 0;
  #count = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  push(p: Pending): void {
    if (this.#closed) return;
    if (this.#count === this.#queue.length) {
      // Grow the ring, keeping order.
      const bigger = new Array<Pending | undefined>(this.#queue.length * 2);
      for (let i = 0; i < this.#count; i++) {
        bigger[i] = this.#queue[(this.#head + i) % this.#queue.length];
      }
      this.#queue = bigger;
      this.#head = 0;
    }
    this.#queue[(this.#head + this.#count) % this.#queue.length] = p;
    this.#count++;
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[this.#head];
    if (!head) return;
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, head.due - performance.now()));
  }

  #flush(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#count > 0) {
      const p = this.#queue[this.#head]!;
      if (p.due > now + 0.5) break;
      this.#queue[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#queue.length;
      this.#count--;
      p.socket.send(p.data, p.to).catch(() => {/* socket closed or buffer full: a loss */});
    }
    if (this.#count > 0 && !this.#closed) this.#arm();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#count = 0;
  }
}

/** The relay; see the module doc. */
export class LossyLink {
  /** The port the client should send to. */
  readonly port: number;
  /** Drop probability per datagram and direction. */
  readonly loss: number;
  /** Client to server. */
  readonly up: LinkDirectionStats = { packets: 0, dropped: 0, bytes: 0 };
  /** Server to client. */
  readonly down: LinkDirectionStats = { packets: 0, dropped: 0, bytes: 0 };
  readonly #front: Deno.DatagramConn;
  readonly #opts: LossyLinkOptions;
  readonly #random: () => number;
  readonly #upstreams = new Map<string, Deno.DatagramConn>();
  readonly #tasks: Promise<void>[] = [];
  readonly #upLine = new DelayLine();
  readonly #downLine = new DelayLine();
  readonly #target: Deno.NetAddr;
  #closed = false;

  /** Binds the relay and starts forwarding. */
  constructor(options: LossyLinkOptions) {
    this.#opts = options;
    this.#random = seededRandom(options.seed ?? 1);
    this.loss = options.loss ?? 0;
    this.#front = Deno.listenDatagram({
      transport: "udp",
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
    });
    this.port = (this.#front.addr as Deno.NetAddr).port;
    this.#target = {
      transport: "udp",
      hostname: options.targetHostname,
      port: options.targetPort,
    };
    this.#tasks.push(this.#pumpUp());
  }

  /** Upstream sockets, one per client address seen. */
  get clients(): number {
    return this.#upstreams.size;
  }

  #passes(stats: LinkDirectionStats, size: number): boolean {
    stats.packets++;
    stats.bytes += size;
    if (this.loss > 0 && this.#random() < this.loss) {
      stats.dropped++;
      return false;
    }
    return true;
  }

  async #pumpUp(): Promise<void> {
    const delay = this.#opts.delayMs ?? 0;
    try {
      while (!this.#closed) {
        const [data, from] = await this.#front.receive();
        const addr = from as Deno.NetAddr;
        this.#opts.onDatagram?.("up", data.length);
        const key = `${addr.hostname}|${addr.port}`;
        let up = this.#upstreams.get(key);
        if (!up) {
          up = Deno.listenDatagram({
            transport: "udp",
            hostname: this.#target.hostname.includes(":") ? "::1" : "127.0.0.1",
            port: 0,
          });
          this.#upstreams.set(key, up);
          this.#tasks.push(this.#pumpDown(up, addr));
        }
        if (!this.#passes(this.up, data.length)) continue;
        this.#upLine.push({ due: performance.now() + delay, data, socket: up, to: this.#target });
      }
    } catch {
      // closed
    }
  }

  async #pumpDown(up: Deno.DatagramConn, client: Deno.NetAddr): Promise<void> {
    const delay = this.#opts.delayMs ?? 0;
    try {
      while (!this.#closed) {
        const [data] = await up.receive();
        this.#opts.onDatagram?.("down", data.length);
        if (!this.#passes(this.down, data.length)) continue;
        this.#downLine.push({
          due: performance.now() + delay,
          data,
          socket: this.#front,
          to: client,
        });
      }
    } catch {
      // closed
    }
  }

  /** Stops forwarding and closes every socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#upLine.close();
    this.#downLine.close();
    try {
      this.#front.close();
    } catch { /* closed */ }
    for (const s of this.#upstreams.values()) {
      try {
        s.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled(this.#tasks);
  }
}
