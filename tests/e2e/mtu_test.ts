/**
 * The smallest `-mtu` the startup check lets through moves data, and no datagram on the wire is
 * larger: KCP gets exactly its 50 bytes after the packet stages' headers (cli/preflight.ts). In
 * process, through the real flag parser, with a UDP relay between the ends that measures.
 */

import { assertEquals } from "../support/assert.ts";
import { startEchoServer } from "../support/net.ts";
import { echoTransfer, startPair } from "./harness.ts";

/** Forwards datagrams between one client and the server, remembering the largest. */
function udpRelay(serverPort: number) {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const server: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: serverPort };
  let client: Deno.NetAddr | null = null;
  let largest = 0;
  const done = (async () => {
    try {
      for await (const [data, from] of sock) {
        largest = Math.max(largest, data.length);
        const f = from as Deno.NetAddr;
        if (f.port === serverPort) {
          if (client !== null) await sock.send(data, client);
        } else {
          client = f;
          await sock.send(data, server);
        }
      }
    } catch { /* closed */ }
  })();
  return {
    port: (sock.addr as Deno.NetAddr).port,
    largest: () => largest,
    close: () => {
      sock.close();
      return done;
    },
  };
}

const CASES: Array<[string, string[]]> = [
  // crypt 20 + FEC 8 bytes of headers.
  ["-mtu 78 (aes, FEC)", ["-mtu", "78"]],
  // No packet stage adds a byte: -crypt null drops crypt, and FEC without shards adds none.
  ["-mtu 50 (no headers)", ["-mtu", "50", "-crypt", "null", "-ds", "0", "-ps", "0"]],
];

for (const [name, flags] of CASES) {
  Deno.test(`e2e: ${name}: 2 streams x 128 KiB echoed intact in datagrams within -mtu`, async () => {
    const mtu = Number(flags[1]);
    const echo = startEchoServer();
    const relays: ReturnType<typeof udpRelay>[] = [];
    const pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${echo.port}`, "-key", "k", "-nocomp", ...flags],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-key", "k", "-nocomp", ...flags],
      {
        route: (port) => {
          relays.push(udpRelay(port));
          return relays[0].port;
        },
      },
    );
    try {
      const moved = await echoTransfer({ port: pair.clientPort }, {
        streams: 2,
        bytes: 128 << 10,
        seed: name.length,
      });
      assertEquals(moved, 2 * (128 << 10));
      const largest = relays[0].largest();
      assertEquals(largest, mtu, `the largest datagram is ${largest} bytes`);
    } finally {
      await pair.stop();
      for (const r of relays) await r.close();
      await echo.close();
    }
  });
}
