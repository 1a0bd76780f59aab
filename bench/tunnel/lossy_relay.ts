/**
 * A seeded lossy UDP relay for the tunnel benchmark, placed between a kcptun client and server:
 * every datagram is either dropped or delivered after a fixed delay, per direction. The drop
 * decision depends only on the seed, the direction and the datagram's index in that direction,
 * so two runs (ours and Go's) see the same loss pattern: the n-th client-to-server datagram of
 * one run is dropped exactly when the n-th of the other is.
 *
 *   deno run -A bench/tunnel/lossy_relay.ts --server-port N [--port 0] [--loss 0.02]
 *     [--delay-ms 30] [--seed 1] [--burst 1]
 *
 * `--burst L` makes drops come in runs averaging L datagrams at the same overall rate
 * ({@link LossPattern}).
 *
 * Prints `listening <port>` on stdout when ready. On SIGUSR2 it restarts both loss patterns at
 * datagram index 0 and prints `reset <n> <json>` (n counts the resets; the counters so far, which
 * a reset keeps), so that each measured scenario of either pair starts from the same point of the
 * pattern. On SIGTERM it prints one
 * `stats <json>` line ({@link RelayStats}) and exits. Each client address gets its own upstream socket, as a NAT
 * would. Sockets are the libc UDP transport with 4 MiB buffers, so that the relay itself does not
 * drop datagrams at these rates (check `/proc/net/udp` drops of this process to be sure).
 *
 * @module
 */

import type { Packet, PeerAddress } from "../../pipeline/packet.ts";
import { PacketBatch } from "../../pipeline/packet.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import { type UdpSocket, UdpTransport } from "../../transports/udp.ts";

/**
 * The drop decisions of one direction: `drop()` answers for datagram 0, 1, 2, ... in turn.
 * mulberry32 seeded from (seed, direction), so the sequence is a pure function of the two.
 *
 * With `burst` 1 (the default) every datagram is dropped independently with probability `rate`.
 * With `burst` L > 1 drops come in runs (a two-state Gilbert model that drops everything in its
 * bad state): a run continues with probability 1 - 1/L, so runs average L datagrams, and a run
 * starts with the probability that keeps the long-run drop fraction at `rate`. Real links lose
 * datagrams in bursts (a full queue, a radio fade), which hurts an ARQ far more than the same
 * rate spread evenly: whole FEC groups go, and retransmissions meet the same burst.
 */
export class LossPattern {
  #state: number;
  readonly #threshold: number;
  /** Bursty mode: the probability (of 2^32) that a run continues, and that one starts. */
  readonly #stay: number;
  readonly #start: number;
  #inBurst = false;

  /** `rate` in [0, 1); `direction` separates the two directions' sequences; `burst` >= 1. */
  constructor(seed: number, direction: number, rate: number, burst = 1) {
    // Mix the seed and direction so that nearby seeds give unrelated sequences.
    let s = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(direction + 1, 0x85ebca6b)) >>> 0;
    s = Math.imul(s ^ (s >>> 16), 0x7feb352d) >>> 0;
    this.#state = s;
    const r = Math.min(1, Math.max(0, rate));
    this.#threshold = Math.round(r * 0x100000000);
    if (burst > 1 && r < 1) {
      // Stationary drop fraction p of the chain: p = p(1 - 1/L) + (1 - p)q, so q = p / (L(1 - p)).
      this.#stay = Math.round((1 - 1 / burst) * 0x100000000);
      this.#start = Math.round(Math.min(1, r / (burst * (1 - r))) * 0x100000000);
    } else {
      this.#stay = -1;
      this.#start = -1;
    }
  }

  /** True when the next datagram is to be dropped. */
  drop(): boolean {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = (t ^ (t >>> 14)) >>> 0;
    if (this.#stay < 0) return u < this.#threshold;
    this.#inBurst = u < (this.#inBurst ? this.#stay : this.#start);
    return this.#inBurst;
  }
}

/** What the relay did, per direction (`c2s` client to server, `s2c` back). */
export interface RelayStats {
  /** Datagrams received from the client side. */
  c2sIn: number;
  /** Of those, dropped by the loss pattern. */
  c2sDropped: number;
  /** Datagrams received from the server side. */
  s2cIn: number;
  /** Of those, dropped by the loss pattern. */
  s2cDropped: number;
  /** Datagrams the sockets failed to send (full send buffer, kernel errors). */
  sendErrors: number;
  /** Client addresses seen (one upstream socket each). */
  clients: number;
  /** Largest number of datagrams waiting for their delay at once. */
  maxQueued: number;
}

/** A FIFO of packets waiting for their due time (the delay is fixed, so due times ascend). */
class DelayQueue {
  #packets: (Packet | null)[] = new Array(1024).fill(null);
  #sockets: (DatagramSocket | null)[] = new Array(1024).fill(null);
  #due = new Float64Array(1024);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Due time of the oldest entry (only when `size > 0`). */
  get headDue(): number {
    return this.#due[this.#head];
  }

  push(p: Packet, socket: DatagramSocket, due: number): void {
    if (this.#size === this.#due.length) this.#grow();
    const i = (this.#head + this.#size) % this.#due.length;
    this.#packets[i] = p;
    this.#sockets[i] = socket;
    this.#due[i] = due;
    this.#size++;
  }

  /** Sends everything due by `now`, one batch per run of equal sockets. */
  flush(now: number, batch: PacketBatch): void {
    let current: DatagramSocket | null = null;
    while (this.#size > 0 && this.#due[this.#head] <= now) {
      const h = this.#head;
      const socket = this.#sockets[h]!;
      if (current !== null && socket !== current) current.send(batch);
      current = socket;
      batch.push(this.#packets[h]!);
      this.#packets[h] = null;
      this.#sockets[h] = null;
      this.#head = (h + 1) % this.#due.length;
      this.#size--;
    }
    if (current !== null) current.send(batch);
  }

  #grow(): void {
    const n = this.#due.length, packets: (Packet | null)[] = new Array(n * 2).fill(null);
    const sockets: (DatagramSocket | null)[] = new Array(n * 2).fill(null);
    const due = new Float64Array(n * 2);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % n;
      packets[k] = this.#packets[i];
      sockets[k] = this.#sockets[i];
      due[k] = this.#due[i];
    }
    this.#packets = packets;
    this.#sockets = sockets;
    this.#due = due;
    this.#head = 0;
  }
}

/** Relay settings. */
export interface RelayOptions {
  /** Port to listen on at 127.0.0.1 (0 = any). */
  port: number;
  /** The kcptun server's UDP port at 127.0.0.1. */
  serverPort: number;
  /** Drop probability per datagram, each direction. */
  loss: number;
  /** One-way delay in ms, each direction. */
  delayMs: number;
  /** PRNG seed of the loss pattern. */
  seed: number;
  /** Mean length of a run of drops (1: independent drops); see {@link LossPattern}. */
  burst?: number;
  /**
   * Sees every datagram from the client side before the loss decision (bytes valid only during
   * the call): what a capture on the link would see, e.g. to replay it later.
   */
  onClientDatagram?: (bytes: Uint8Array) => void;
  /**
   * Sees every datagram of either direction with the loss decision made for it (bytes valid
   * only during the call): a capture that knows which datagrams the link lost.
   */
  onDatagram?: (direction: "c2s" | "s2c", bytes: Uint8Array, dropped: boolean) => void;
}

/** A running relay. */
export interface Relay {
  /** The port clients send to. */
  port: number;
  /** Counters so far. */
  stats: RelayStats;
  /** Restarts both directions' loss patterns at datagram index 0. */
  resetPattern(): void;
  /** Closes every socket. */
  close(): Promise<void>;
}

const SOCKBUF = 4 << 20;

/** Starts a relay in this process. */
export async function startRelay(o: RelayOptions): Promise<Relay> {
  const transport = new UdpTransport({ batchSize: 64 });
  const listener = await transport.listen("127.0.0.1", o.port, { sockbuf: SOCKBUF });
  const burst = o.burst ?? 1;
  const pattern = (direction: number) => new LossPattern(o.seed, direction, o.loss, burst);
  let c2sLoss = pattern(0), s2cLoss = pattern(1);
  const stats: RelayStats = {
    c2sIn: 0,
    c2sDropped: 0,
    s2cIn: 0,
    s2cDropped: 0,
    sendErrors: 0,
    clients: 0,
    maxQueued: 0,
  };
  const queue = new DelayQueue();
  const upstreams = new Map<PeerAddress, DatagramSocket>();
  const pending = new Map<PeerAddress, Packet[]>(); // while an upstream socket is being made
  const sockets: UdpSocket[] = [listener];
  const out = new PacketBatch();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerDue = Infinity;
  let closed = false;

  const pump = () => {
    timer = undefined;
    timerDue = Infinity;
    queue.flush(performance.now(), out);
    schedule();
  };
  const schedule = () => {
    if (closed || queue.size === 0) return;
    const due = queue.headDue;
    if (timer !== undefined && timerDue <= due) return;
    if (timer !== undefined) clearTimeout(timer);
    timerDue = due;
    timer = setTimeout(pump, Math.max(0, due - performance.now()));
  };
  const enqueue = (p: Packet, socket: DatagramSocket) => {
    queue.push(p, socket, performance.now() + o.delayMs);
    if (queue.size > stats.maxQueued) stats.maxQueued = queue.size;
  };

  const openUpstream = async (client: PeerAddress) => {
    const up = await transport.dial("127.0.0.1", o.serverPort, { sockbuf: SOCKBUF });
    sockets.push(up);
    stats.clients++;
    up.receive((batch) => {
      for (let i = 0; i < batch.length; i++) {
        const p = batch.packets[i];
        stats.s2cIn++;
        const dropped = s2cLoss.drop();
        o.onDatagram?.("s2c", p.buffer.subarray(p.start, p.end), dropped);
        if (dropped) {
          stats.s2cDropped++;
          p.release();
          continue;
        }
        p.peer = client;
        enqueue(p, listener);
      }
      schedule();
    });
    upstreams.set(client, up);
    for (const p of pending.get(client) ?? []) enqueue(p, up);
    pending.delete(client);
    schedule();
  };

  listener.receive((batch) => {
    for (let i = 0; i < batch.length; i++) {
      const p = batch.packets[i];
      const client = p.peer!;
      stats.c2sIn++;
      o.onClientDatagram?.(p.buffer.subarray(p.start, p.end));
      const dropped = c2sLoss.drop();
      o.onDatagram?.("c2s", p.buffer.subarray(p.start, p.end), dropped);
      if (dropped) {
        stats.c2sDropped++;
        p.release();
        continue;
      }
      p.peer = null; // the upstream socket sends to the server it dialled
      const up = upstreams.get(client);
      if (up !== undefined) {
        enqueue(p, up);
        continue;
      }
      const waiting = pending.get(client);
      if (waiting !== undefined) {
        waiting.push(p);
        continue;
      }
      pending.set(client, [p]);
      openUpstream(client).catch((e) => console.error(`relay: upstream: ${e}`));
    }
    schedule();
  });

  return {
    port: listener.localAddr.port,
    get stats() {
      let errors = 0;
      for (const s of sockets) errors += s.stats.txErrors;
      stats.sendErrors = errors;
      return stats;
    },
    resetPattern() {
      c2sLoss = pattern(0);
      s2cLoss = pattern(1);
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await Promise.all(sockets.map((s) => s.close()));
    },
  };
}

function argNumber(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`${name}: not a number: ${Deno.args[i + 1]}`);
  return v;
}

if (import.meta.main) {
  const relay = await startRelay({
    port: argNumber("--port", 0),
    serverPort: argNumber("--server-port", NaN),
    loss: argNumber("--loss", 0.02),
    delayMs: argNumber("--delay-ms", 30),
    seed: argNumber("--seed", 1),
    burst: argNumber("--burst", 1),
  });
  let resets = 0;
  // SIGUSR2, not SIGUSR1: under deno run, SIGUSR1 also opens Deno's inspector.
  Deno.addSignalListener("SIGUSR2", () => {
    relay.resetPattern();
    console.log(`reset ${++resets} ${JSON.stringify(relay.stats)}`);
  });
  Deno.addSignalListener("SIGTERM", () => {
    console.log(`stats ${JSON.stringify(relay.stats)}`);
    relay.close().finally(() => Deno.exit(0));
  });
  console.log(`listening ${relay.port}`);
}
