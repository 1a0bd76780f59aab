/**
 * The demo's traffic: streams that write seeded pseudo-random bytes through the tunnel to the
 * echo target and read them back, hashing both directions (SHA-256) so that every byte is
 * checked. At most `maxInFlight` bytes per stream are unanswered, so the tunnel drains quickly
 * when the writers stop.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Options of {@link EchoLoad}. */
export interface EchoLoadOptions {
  /** Where the tunnel client listens. */
  readonly hostname: string;
  /** Its TCP port. */
  readonly port: number;
  /** Parallel streams. */
  readonly streams: number;
  /** Seed of the payloads (stream i uses seed + i). */
  readonly seed: number;
  /** Bytes per write (default 16 KiB). */
  readonly chunk?: number;
  /** Unanswered bytes allowed per stream (default 1 MiB). */
  readonly maxInFlight?: number;
}

/** What one stream did. */
export interface StreamResult {
  /** Bytes written. */
  readonly sent: number;
  /** Bytes read back. */
  readonly received: number;
  /** True when everything came back, in order, unchanged. */
  readonly intact: boolean;
  /** Why not, when not. */
  readonly error?: string;
}

/** xorshift32 bytes, a chunk at a time. */
class SeededSource {
  #x: number;
  constructor(seed: number) {
    this.#x = (seed >>> 0) || 0x9e3779b9;
  }
  fill(out: Uint8Array): void {
    const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
    let x = this.#x;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      words[i] = x;
    }
    this.#x = x;
  }
}

class LoadStream {
  sent = 0;
  received = 0;
  error: string | undefined;
  readonly #conn: Deno.Conn;
  readonly #out = createHash("sha256");
  readonly #in = createHash("sha256");
  readonly #source: SeededSource;
  readonly #chunk: number;
  readonly #maxInFlight: number;
  #stopping = false;
  #wake: (() => void) | null = null;
  readonly #writer: Promise<void>;
  readonly #reader: Promise<void>;

  constructor(conn: Deno.Conn, seed: number, chunk: number, maxInFlight: number) {
    this.#conn = conn;
    this.#source = new SeededSource(seed);
    this.#chunk = chunk & ~3;
    this.#maxInFlight = maxInFlight;
    this.#writer = this.#write();
    this.#reader = this.#read();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #write(): Promise<void> {
    const buf = new Uint8Array(this.#chunk);
    try {
      while (!this.#stopping) {
        if (this.sent - this.received >= this.#maxInFlight) {
          await new Promise<void>((r) => this.#wake = r);
          continue;
        }
        this.#source.fill(buf);
        this.#out.update(buf);
        let off = 0;
        while (off < buf.length) off += await this.#conn.write(buf.subarray(off));
        this.sent += buf.length;
      }
    } catch (e) {
      if (!this.#stopping) this.error ??= `write: ${(e as Error).message}`;
    }
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const n = await this.#conn.read(buf);
        if (n === null) {
          if (!this.#stopping || this.received < this.sent) {
            this.error ??= `closed after ${this.received} of ${this.sent} bytes`;
          }
          break;
        }
        this.#in.update(buf.subarray(0, n));
        this.received += n;
        this.#notify();
      }
    } catch (e) {
      if (!this.#stopping || this.received < this.sent) {
        this.error ??= `read: ${(e as Error).message}`;
      }
    }
    this.#notify();
  }

  /** Stops writing (the current write finishes). */
  async stopWriting(): Promise<void> {
    this.#stopping = true;
    this.#notify();
    await this.#writer;
  }

  /** True once everything written came back (or the stream failed). */
  get drained(): boolean {
    return this.received >= this.sent || this.error !== undefined;
  }

  /** Closes the connection and reports. */
  async finish(): Promise<StreamResult> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reader;
    let error = this.error;
    if (error === undefined && this.received !== this.sent) {
      error = `${this.sent - this.received} bytes did not come back`;
    }
    if (error === undefined && this.#out.digest("hex") !== this.#in.digest("hex")) {
      error = "the bytes that came back differ from those sent (sha256)";
    }
    return { sent: this.sent, received: this.received, intact: error === undefined, error };
  }
}

/** Streams of echoed traffic; see the module doc. */
export class EchoLoad {
  readonly #streams: LoadStream[];

  private constructor(streams: LoadStream[]) {
    this.#streams = streams;
  }

  /** Connects every stream and starts writing. */
  static async start(options: EchoLoadOptions): Promise<EchoLoad> {
    const streams: LoadStream[] = [];
    for (let i = 0; i < options.streams; i++) {
      const conn = await Deno.connect({ hostname: options.hostname, port: options.port });
      streams.push(
        new LoadStream(
          conn,
          options.seed + i,
          options.chunk ?? 16384,
          options.maxInFlight ?? 1 << 20,
        ),
      );
    }
    return new EchoLoad(streams);
  }

  /** Bytes read back so far, all streams. */
  get received(): number {
    let n = 0;
    for (const s of this.#streams) n += s.received;
    return n;
  }

  /** Bytes written so far, all streams. */
  get sent(): number {
    let n = 0;
    for (const s of this.#streams) n += s.sent;
    return n;
  }

  /**
   * Stops writing, waits up to `drainMs` for the echoes still in flight, closes the
   * connections and reports each stream.
   */
  async stop(drainMs: number, onWait?: () => void): Promise<StreamResult[]> {
    await Promise.all(this.#streams.map((s) => s.stopWriting()));
    const deadline = performance.now() + drainMs;
    while (!this.#streams.every((s) => s.drained) && performance.now() < deadline) {
      onWait?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    return await Promise.all(this.#streams.map((s) => s.finish()));
  }
}
