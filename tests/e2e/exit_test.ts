/**
 * The real entry points refuse bad configuration with one clear line naming the flag or key and
 * a non-zero exit code, and `-h` / `-v` exit 0.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePortRange } from "../support/net.ts";
import { exitWithin, spawnDeno } from "./harness.ts";

interface BadCase {
  name: string;
  script: "cli/client.ts" | "cli/server.ts";
  args: string[];
  /** Files to create in the working directory first. */
  files?: Record<string, string>;
  /** What the one line must contain. */
  mentions: string[];
  code: number;
}

const CLIENT = "cli/client.ts" as const;
const SERVER = "cli/server.ts" as const;
const LOCAL = ["-l", "127.0.0.1:0"];

const CASES: BadCase[] = [
  {
    name: "unknown flag",
    script: CLIENT,
    args: [...LOCAL, "-bogus", "1"],
    mentions: ["-bogus"],
    code: 2,
  },
  {
    name: "-keepalive 31",
    script: SERVER,
    args: [...LOCAL, "-keepalive", "31"],
    mentions: ["keepalive", "31"],
    code: 1,
  },
  {
    name: "-smuxver 3",
    script: CLIENT,
    args: [...LOCAL, "-smuxver", "3"],
    mentions: ["smux version", "3"],
    code: 1,
  },
  {
    name: "-smuxver 0 on a client (only a server may take each peer's version)",
    script: CLIENT,
    args: [...LOCAL, "-smuxver", "0"],
    mentions: ["-smuxver 0", "a client must choose 1 or 2"],
    code: 1,
  },
  { name: "-conn 0", script: CLIENT, args: [...LOCAL, "-conn", "0"], mentions: ["conn"], code: 1 },
  {
    name: "bad port range (server -l)",
    script: SERVER,
    args: ["-l", "127.0.0.1:9000-8000"],
    mentions: ["listen", "9000-8000"],
    code: 1,
  },
  {
    name: "bad port range (client -r)",
    script: CLIENT,
    args: [...LOCAL, "-r", "127.0.0.1:5-3"],
    mentions: ["remoteaddr", "5-3"],
    code: 1,
  },
  {
    name: "broken JSON",
    script: SERVER,
    args: [...LOCAL, "-c", "broken.json"],
    files: { "broken.json": '{\n  "mtu": 1400,\n}\n' },
    mentions: ["broken.json", "line 3"],
    code: 1,
  },
  {
    name: "JSON type mismatch",
    script: CLIENT,
    args: [...LOCAL, "-c", "typed.json"],
    files: { "typed.json": '{ "MTU": "1400" }' },
    mentions: ["typed.json", '"MTU"'],
    code: 1,
  },
  {
    name: "unknown pipeline stage",
    script: SERVER,
    args: [...LOCAL, "-c", "stage.json"],
    files: {
      "stage.json": JSON.stringify({
        pipeline: ["tcp", "smux", "snappy", "kcp", "fec", "nosuch", "crypt", "udp"],
      }),
    },
    mentions: ['"nosuch"'],
    code: 1,
  },
  {
    name: "plugin path that does not exist",
    script: CLIENT,
    args: [...LOCAL, "-c", "plugin.json"],
    files: {
      "plugin.json": JSON.stringify({
        pipeline: ["tcp", "smux", "snappy", "kcp", "fec", "./no-such-plugin.ts", "crypt", "udp"],
      }),
    },
    mentions: ["no-such-plugin.ts"],
    code: 1,
  },
  {
    name: "-log file that cannot be opened",
    script: CLIENT,
    args: [...LOCAL, "-log", "no-such-dir/client.log"],
    mentions: ["open no-such-dir/client.log: no such file or directory"],
    code: 1,
  },
  {
    name: "-snmplog into a missing directory (client)",
    script: CLIENT,
    args: [...LOCAL, "-snmplog", "no-such-dir/snmp-20060102.log"],
    mentions: ["-snmplog no-such-dir/snmp-20060102.log: no-such-dir/snmp-", "no such file"],
    code: 1,
  },
  {
    name: "-snmplog into a missing directory (server, from the JSON file)",
    script: SERVER,
    args: [...LOCAL, "-c", "snmp.json"],
    files: { "snmp.json": '{ "snmplog": "gone/kcp.csv", "snmpperiod": 5 }' },
    mentions: ["-snmplog gone/kcp.csv: gone/kcp.csv: no such file or directory"],
    code: 1,
  },
  {
    name: "-smuxbuf < -streambuf",
    script: CLIENT,
    args: [...LOCAL, "-smuxbuf", "1024", "-streambuf", "2048"],
    mentions: ["streambuf"],
    code: 1,
  },
];

Deno.test("e2e (subprocess): bad configuration: one line naming the flag or key, non-zero exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-bad-" });
  try {
    for (const c of CASES) {
      for (const [name, text] of Object.entries(c.files ?? {})) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
    }
    const procs = CASES.map((c) => spawnDeno(c.script, c.args, dir));
    try {
      const results = await Promise.all(procs.map((p) => exitWithin(p, 20000)));
      CASES.forEach((c, i) => {
        const p = procs[i];
        const what = `${c.name}: code ${results[i].code}, stderr ${JSON.stringify(p.stderr())}`;
        assertEquals(results[i].code, c.code, what);
        assertEquals(p.stdout(), "", what);
        const err = p.stderr();
        assert(err.endsWith("\n") && err.indexOf("\n") === err.length - 1, `one line: ${what}`);
        for (const m of c.mentions) assert(err.includes(m), `mentions ${m}: ${what}`);
      });
    } finally {
      for (const p of procs) await p.kill();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e (subprocess): a port in use: one line naming it, exit 1, on both ends", async () => {
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = freePortRange(2);
  // The second port of the server's range is taken.
  const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: base + 1 });
  const tcpPort = (tcp.addr as Deno.NetAddr).port;
  const runs = [
    spawnDeno(CLIENT, ["-l", `127.0.0.1:${tcpPort}`]),
    spawnDeno(SERVER, ["-l", `127.0.0.1:${base}-${base + 1}`]),
  ];
  try {
    const st = await Promise.all(runs.map((p) => exitWithin(p, 20000)));
    for (const s of st) assertEquals(s.code, 1);
    const clientErr = runs[0].stderr();
    assert(/^listen 127\.0\.0\.1:(\d+): .*in use.*\n$/i.test(clientErr), clientErr);
    assert(clientErr.includes(String(tcpPort)), clientErr);
    // The server logs its settings first, as kcptun; the fatal line is the last one, alone.
    const lines = runs[1].stderr().trimEnd().split("\n");
    const last = lines[lines.length - 1];
    assert(/^listen .*127\.0\.0\.1:(\d+): .*in use/i.test(last), last);
    assert(last.includes(`:${base + 1}:`), last);
    assertEquals(last.match(/listen/g)?.length, 1, last);
  } finally {
    for (const p of runs) await p.kill();
    tcp.close();
    udp.close();
  }
});

Deno.test("e2e (subprocess): -h and -v exit 0", async () => {
  const runs = [
    spawnDeno(CLIENT, ["-h"]),
    spawnDeno(SERVER, ["--help"]),
    spawnDeno(CLIENT, ["-v"]),
    spawnDeno(SERVER, ["--version"]),
  ];
  try {
    const st = await Promise.all(runs.map((p) => exitWithin(p, 20000)));
    for (const s of st) assertEquals(s.code, 0);
    assert(runs[0].stdout().includes("USAGE:") && runs[0].stdout().includes("--remoteaddr"));
    assert(runs[1].stdout().includes("USAGE:") && runs[1].stdout().includes("--target"));
    for (const p of runs.slice(2)) {
      assert(/^kcptun-ts version \S+\n$/.test(p.stdout()), p.stdout());
    }
    for (const p of runs) assertEquals(p.stderr(), "");
  } finally {
    for (const p of runs) await p.kill();
  }
});
