import assert from "node:assert/strict";
import { builtinRegistry, dial, listen, type TunnelStream } from "../mod.ts";
import { StageError, type StreamStage } from "../plugin.ts";
import { assertStreamRoundTrip, fuzzStreamStage, MemoryNetwork, testContext } from "../testing.ts";
import seal from "./sealed_stream.ts";

/** A stage instance as the runtime makes one: `prepare` first, then `create`. */
async function sealFor(key: string): Promise<StreamStage> {
  const options = await seal.prepare!({ key }, testContext());
  return seal.create(options!, testContext());
}

function collect(): { out: (b: Uint8Array) => void; text: () => string } {
  const parts: Uint8Array[] = [];
  return {
    out: (b) => parts.push(b),
    text: () => parts.map((p) => new TextDecoder().decode(p)).join(""),
  };
}

function encodeAll(stage: StreamStage, ...writes: string[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const w of writes) stage.encode(new TextEncoder().encode(w), (b) => chunks.push(b));
  stage.finish!("encode", (b) => chunks.push(b));
  const wire = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    wire.set(c, at);
    at += c.length;
  }
  return wire;
}

Deno.test("seal: decode(encode(x)) = x for arbitrary writes and splits", async () => {
  await assertStreamRoundTrip(seal, { options: { key: "k" }, seed: 11, numRuns: 60 });
});

Deno.test("seal: damaged or garbage streams fail only with a StageError", async () => {
  await fuzzStreamStage(seal, { options: { key: "k" }, seed: 12, numRuns: 100 });
});

Deno.test("seal: a truncated stream fails at its end, a whole one does not", async () => {
  const wire = encodeAll(await sealFor("k"), "hello ", "world");
  const whole = collect();
  const rx = await sealFor("k");
  rx.decode(wire, whole.out);
  rx.finish!("decode", whole.out);
  assert.equal(whole.text(), "hello world");

  for (const cut of [0, 1, 5, wire.length - 6, wire.length - 1]) {
    const r = await sealFor("k");
    const part = collect();
    r.decode(wire.slice(0, cut), part.out);
    assert.throws(() => r.finish!("decode", part.out), StageError, `cut at ${cut}`);
  }
});

Deno.test("seal: another key or a changed byte fails the stream", async () => {
  const wire = encodeAll(await sealFor("k"), "some bytes");
  const other = await sealFor("other key");
  assert.throws(() => other.decode(wire, () => {}), /checksum mismatch after 10 bytes/);

  const changed = wire.slice();
  changed[4] ^= 1;
  const r = await sealFor("k");
  assert.throws(() => r.decode(changed, () => {}), StageError);
});

Deno.test("seal: options are checked by the pipeline and by prepare", async () => {
  await assert.rejects(async () => await seal.prepare!({}, testContext()), /"key" is required/);
  const registry = builtinRegistry().register(seal);
  const net = new MemoryNetwork();
  registry.register(net.stage());
  await assert.rejects(
    () =>
      listen(
        { stages: ["tcp", "seal", "smux", "kcp", "memory"], options: { seal: { seed: 1 } } },
        "127.0.0.1:1",
        { registry },
      ),
    /takes no option "seed"/,
  );
});

/** Reads until the stream's reads end; the text and how they ended. */
async function readAll(stream: TunnelStream): Promise<{ text: string; failure: string | null }> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const chunk = stream.read();
    if (chunk !== null) parts.push(chunk);
    else if (stream.readEnded) break;
    else await stream.waitReadable();
  }
  const text = parts.map((p) => new TextDecoder().decode(p, { stream: true })).join("");
  return { text, failure: stream.readFailure };
}

/** Both ends on one lossy in-memory network; the server end's seal key may differ. */
async function tunnelPair(serverKey: string) {
  const net = new MemoryNetwork({ seed: 3, loss: 0.05, reorder: 0.05, duplicate: 0.05 });
  const registry = builtinRegistry().register(seal).register(net.stage());
  const stages = ["tcp", "seal", "smux", "kcp", "memory"];
  const kcp = { mode: "fast3" };
  const server = await listen(
    { stages, options: { seal: { key: serverKey }, kcp } },
    "127.0.0.1:4000",
    {
      registry,
    },
  );
  const client = await dial({ stages, options: { seal: { key: "k" }, kcp } }, "127.0.0.1:4000", {
    registry,
  });
  return { net, server, client };
}

Deno.test("seal: through a whole tunnel, each stream is sealed and checked at its end", async () => {
  const { net, server, client } = await tunnelPair("k");
  const texts = ["first stream", "x".repeat(200_000), "third"];
  const outs = texts.map((t) => {
    const s = client.openStream();
    s.write(new TextEncoder().encode(t));
    s.closeWrite(); // finish("encode"): the end frame goes before FIN
    return s;
  });
  const session = (await server.accept())!;
  const got = await Promise.all(texts.map(async () => readAll(await session.acceptStream())));
  got.sort((a, b) => a.text.length - b.text.length);
  assert.deepEqual(got.map((g) => g.failure), [null, null, null]);
  assert.deepEqual(got.map((g) => g.text), [...texts].sort((a, b) => a.length - b.length));
  await Promise.all(outs.map((s) => s.waitFinSent()));
  assert.ok(net.stats.lost > 0, "the network lost nothing: the test proves less than it says");
  await client.close();
  await server.close();
});

Deno.test("seal: a key mismatch fails that stream's reads, not the session", async () => {
  const { server, client } = await tunnelPair("not the client's key");
  const out = client.openStream();
  out.write(new TextEncoder().encode("hello"));
  out.closeWrite();
  const session = (await server.accept())!;
  const got = await readAll(await session.acceptStream());
  assert.match(got.failure ?? "", /seal: checksum mismatch after 5 bytes/);
  assert.equal(session.isClosed, false);
  await client.close();
  await server.close();
});
