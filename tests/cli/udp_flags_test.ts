/** The `-udp` and `-udptimeout` settings (kcptun-ts UDP forwarding): parsing, checks, JSON, log. */

import { assert, assertEquals } from "../support/assert.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import { startupLines } from "../../cli/logging.ts";
import { CLIENT_DEFAULTS, SERVER_DEFAULTS } from "../../cli/settings.ts";

function stderrOf(r: { kind: "run" } | { kind: "exit"; stderr: string }): string {
  return r.kind === "exit" ? r.stderr : "";
}

Deno.test("udp flags: off by default, so the startup log is kcptun's", () => {
  assertEquals([CLIENT_DEFAULTS.udp, CLIENT_DEFAULTS.udptimeout], ["", 60]);
  assertEquals([SERVER_DEFAULTS.udp, SERVER_DEFAULTS.udptimeout], ["", 60]);
  const c = parseClientConfig([], {});
  const s = parseServerConfig([], {});
  assert(c.kind === "run" && s.kind === "run");
  for (const line of [...startupLines(c.config), ...startupLines(s.config)]) {
    assert(!line.startsWith("udp"), line);
  }
});

Deno.test("udp flags: client listens, server targets; both log them last", () => {
  const c = parseClientConfig(["-udp", ":5353", "-udptimeout", "30"], {});
  assert(c.kind === "run");
  assertEquals([c.config.udp, c.config.udptimeout], [":5353", 30]);
  const lines = startupLines(c.config, { udpListeningOn: "[::]:5353" });
  assertEquals(lines.slice(-2), ["udp listening on: [::]:5353", "udptimeout: 30"]);
  const s = parseServerConfig(["--udp", "[::1]:53"], {});
  assert(s.kind === "run");
  assertEquals(startupLines(s.config).slice(-2), ["udp target: [::1]:53", "udptimeout: 60"]);
  // Port 0 picks a free port on the client; the server's target needs a port.
  assert(parseClientConfig(["-udp", "127.0.0.1:0"], {}).kind === "run");
  assertEquals(
    stderrOf(parseServerConfig(["-udp", "127.0.0.1:0"], {})),
    'invalid udp "127.0.0.1:0": port 0 is not allowed here (1-65535)\n',
  );
});

Deno.test("udp flags: bad values are one line, exit code 1", () => {
  const bad: Array<[string[], string]> = [
    [["-udp", "5353"], 'invalid udp "5353": missing port in address (expected host:port)\n'],
    [
      ["-udp", "/tmp/sock"],
      'invalid udp "/tmp/sock": missing port in address (expected host:port)\n',
    ],
    [["-udp", ":5000-5010"], 'invalid udp ":5000-5010": a port range is not allowed here\n'],
    [
      ["-udp", "::1:53"],
      'invalid udp "::1:53": too many colons in address: an IPv6 address needs brackets, as in [::1]:29900\n',
    ],
    [["-udptimeout", "0"], "invalid udptimeout 0: must be between 1 and 86400 seconds\n"],
  ];
  for (const [argv, line] of bad) {
    const r = parseClientConfig(argv, {});
    assert(r.kind === "exit" && r.code === 1, argv.join(" "));
    assertEquals(r.stderr, line);
  }
});

Deno.test("udp flags: JSON keys udp and udptimeout", () => {
  const files: Record<string, string> = {
    "c.json": '{"udp": "127.0.0.1:5353", "UDPTimeout": 5}',
    "s.json": '{"udp": "127.0.0.1:53"}',
  };
  const readFile = (p: string) => files[p];
  const c = parseClientConfig(["-c", "c.json"], {}, { readFile });
  assert(c.kind === "run");
  assertEquals([c.config.udp, c.config.udptimeout, c.config.sources.udp], [
    "127.0.0.1:5353",
    5,
    "json",
  ]);
  const s = parseServerConfig(["-c", "s.json"], {}, { readFile });
  assert(s.kind === "run");
  assertEquals(s.config.udp, "127.0.0.1:53");
});
