/**
 * Interop over fake TCP (`-tcp`), through our CLI and Debian's: our client with Go's
 * `kcptun-server -tcp`, Go's `kcptun-client -tcp` with our server, each with kcptun's defaults
 * (aes, FEC 10/3, snappy) and bare (`-crypt none -ds 0 -ps 0 -nocomp`): 4 streams of 1 MiB,
 * sha256-checked. Needs root (raw sockets) and Debian's kcptun. That no UDP datagram carries the
 * tunnel is shown at the transport level in tests/faketcp/interop_test.ts.
 */

import { missing } from "../support/requires.ts";
import { type Impl, runCase } from "./harness.ts";

const profiles: Array<[string, string[]]> = [
  ["aes, FEC 10/3, snappy", []],
  ["none, no FEC, no compression", ["-crypt", "none", "-ds", "0", "-ps", "0", "-nocomp"]],
];
const pairs: Array<[Impl, Impl]> = [["ts", "go"], ["go", "ts"]];

for (const [client, server] of pairs) {
  for (const [label, flags] of profiles) {
    Deno.test({
      name: `interop -tcp: ${client} client -> ${server} server, ${label}`,
      ignore: missing("kcptun", "root"),
      async fn() {
        await runCase({
          name: `-tcp ${client}->${server} ${label}`,
          proves: "fake TCP interoperates with Go's tcpraw",
          client,
          server,
          flags: ["-tcp", ...flags],
          streams: 4,
          bytesPerStream: 1024 * 1024,
          expect: { client: ["tcp: true"], server: ["tcp: true"] },
        });
      },
    });
  }
}
