/**
 * Example program: a kcptun tunnel used as a library, both ends in one process on loopback.
 *
 * The server end listens for tunnel sessions on a UDP port and echoes every stream; the client
 * end dials it, opens one stream, sends a line and reads the echo. Then both close and the
 * program exits 0.
 *
 * ```sh
 * deno run -A examples/tunnel.ts            # the same pipeline kcptun's flags give
 * deno run -A examples/tunnel.ts "a message"
 * ```
 *
 * Outside this repository, import from `@kcptun-ts/kcptun-ts`.
 *
 * @module
 */

import { dial, listen, type PipelineSpec, type TunnelStream } from "../mod.ts";

/** What kcptun's default flags expand to, with a key and a faster mode. */
const pipeline: PipelineSpec = {
  stages: ["tcp", "smux", "snappy", "kcp", "fec", "crypt", "udp"],
  options: {
    crypt: { key: "example key" },
    kcp: { mode: "fast3" },
    fec: { dataShards: 10, parityShards: 3 },
  },
};

/** Reads from `stream` until `n` bytes came or its reads ended. */
async function readBytes(stream: TunnelStream, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = stream.readInto(buf, at);
    at += got;
    if (got > 0) continue;
    if (stream.readEnded) break;
    await stream.waitReadable();
  }
  return buf.subarray(0, at);
}

/** Echoes every stream of every session until the listener closes. */
async function echoServer(server: Awaited<ReturnType<typeof listen>>): Promise<void> {
  for (let session; (session = await server.accept()) !== null;) {
    (async () => {
      for (;;) {
        const stream = await session.acceptStream().catch(() => null);
        if (stream === null) return;
        (async () => {
          for (;;) {
            const chunk = stream.read();
            if (chunk !== null) stream.write(chunk);
            else if (stream.readEnded) return stream.closeWrite();
            else await stream.waitReadable();
          }
        })();
      }
    })();
  }
}

const message = new TextEncoder().encode(Deno.args[0] ?? "hello through the tunnel");

const server = await listen(pipeline, "127.0.0.1:0");
const address = server.sockets[0].localAddr.key;
console.log(`server listening on ${address}`);
const serving = echoServer(server);

const client = await dial(pipeline, address);
console.log(`client session ${client.local} -> ${client.remote}`);

const stream = client.openStream();
stream.write(message);
const echo = await readBytes(stream, message.length);
console.log(
  `stream ${stream.id}: sent ${message.length} bytes, echoed "${new TextDecoder().decode(echo)}"`,
);

stream.close();
await client.close();
await server.close();
await serving;
console.log("closed");
