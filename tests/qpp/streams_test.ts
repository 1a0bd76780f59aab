/** QPP on Web Streams: the TransformStream pair and the duplex wrapper used for smux streams. */

import type { Duplex } from "../../pipeline/duplex.ts";
import {
  qppDecryptStream,
  qppDuplex,
  QppEncoder,
  qppEncryptStream,
  qppPads,
} from "../../transforms/qpp/mod.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { toHex } from "../support/captures.ts";
import { concat } from "../smux/capture_streams.ts";

const pads = qppPads("test", 61);

async function collect(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of r) parts.push(c);
  return concat(parts);
}

function sample(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24);
}

function cipherOf(data: Uint8Array): Uint8Array {
  const out = data.slice();
  new QppEncoder(pads).process(out);
  return out;
}

Deno.test("qpp streams: encrypt then decrypt TransformStreams round-trip across chunkings", async () => {
  const data = sample(5000);
  const writes = [1, 7, 8, 9, 1000, 3975].map((n, i, a) => {
    const at = a.slice(0, i).reduce((x, y) => x + y, 0);
    return data.slice(at, at + n);
  });
  const wire = await collect(ReadableStream.from(writes).pipeThrough(qppEncryptStream(pads)));
  assertEquals(toHex(wire), toHex(cipherOf(data)));
  const rechunked = [wire.slice(0, 3), wire.slice(3, 4096), wire.slice(4096)];
  const back = await collect(ReadableStream.from(rechunked).pipeThrough(qppDecryptStream(pads)));
  assertEquals(toHex(back), toHex(data));
});

/** An in-memory duplex: records what is written, serves queued chunks, counts closes. */
class MemoryDuplex implements Duplex {
  readonly written: Uint8Array[] = [];
  closes = 0;
  /** Resolves the write in progress (writes complete only when told to). */
  release: (() => void) | null = null;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #rc!: ReadableStreamDefaultController<Uint8Array>;

  constructor() {
    this.readable = new ReadableStream({ start: (c) => void (this.#rc = c) });
    this.writable = new WritableStream({
      write: (chunk) => {
        this.written.push(chunk.slice());
        return new Promise<void>((r) => this.release = r);
      },
    });
  }

  push(chunk: Uint8Array): void {
    this.#rc.enqueue(chunk);
  }

  end(): void {
    this.#rc.close();
  }

  fail(e: Error): void {
    this.#rc.error(e);
  }

  close(): void {
    this.closes++;
  }
}

Deno.test("qpp duplex: writes are encrypted and complete only when the inner write does", async () => {
  const inner = new MemoryDuplex();
  const outer = qppDuplex(inner, pads);
  const data = sample(100);
  const writer = outer.writable.getWriter();
  let done = false;
  const w1 = writer.write(data.slice(0, 30)).then(() => done = true);
  await new Promise((r) => setTimeout(r, 10));
  assert(!done, "outer write waits for the inner one");
  assertEquals(inner.written.length, 1);
  inner.release!();
  await w1;
  const w2 = writer.write(data.slice(30));
  await new Promise((r) => setTimeout(r, 0));
  inner.release!();
  await w2;
  assertEquals(toHex(concat(inner.written)), toHex(cipherOf(data)));
  outer.close();
  assertEquals(inner.closes, 1);
});

Deno.test("qpp duplex: reads are decrypted on demand; the inner end's end and errors come through", async () => {
  const inner = new MemoryDuplex();
  const outer = qppDuplex(inner, pads);
  const data = sample(64);
  const wire = cipherOf(data);
  inner.push(wire.slice(0, 5));
  inner.push(wire.slice(5));
  inner.end();
  assertEquals(toHex(await collect(outer.readable)), toHex(data));

  const failing = new MemoryDuplex();
  const wrapped = qppDuplex(failing, pads);
  failing.fail(new Error("session gone"));
  await assertRejects(() => collect(wrapped.readable), Error, "session gone");
});

Deno.test("qpp duplex: a fresh wrapper starts a fresh keystream, per direction", async () => {
  const a = new MemoryDuplex();
  const outer = qppDuplex(a, pads);
  const data = sample(16);
  // The read direction starts at r_0 no matter what was written.
  const writer = outer.writable.getWriter();
  const w = writer.write(data.slice());
  await new Promise((r) => setTimeout(r, 0));
  a.release!();
  await w;
  a.push(cipherOf(data));
  a.end();
  assertEquals(toHex(await collect(outer.readable)), toHex(data));
  assertEquals(toHex(a.written[0]), toHex(cipherOf(data)));
});
