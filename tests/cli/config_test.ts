import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  type ClientConfig,
  defaultPipeline,
  effectivePipeline,
  MODE_PRESETS,
  parseClientConfig,
  parseServerConfig,
  type ServerConfig,
} from "../../cli/config.ts";
import { readJsonSettings } from "../../cli/config_file.ts";
import { foldKey, JsonSyntaxError, jsonToPlain, parseJsonText } from "../../cli/json.ts";
import { CLIENT_DEFAULTS, ConfigError, SERVER_DEFAULTS } from "../../cli/settings.ts";
import { builtinRegistry } from "../../runtime/registry.ts";
import { startupLines } from "../../cli/logging.ts";
import { flagStageOptions } from "../../cli/pipeline.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

/** Resolves a client config that must succeed. */
function client(
  argv: string[],
  files: Record<string, string> = {},
  env: Record<string, string> = {},
): ClientConfig {
  const r = parseClientConfig(argv, env, { readFile: (p) => read(files, p) });
  if (r.kind !== "run") {
    throw new Error(`expected a config, got exit ${r.code}: ${r.stderr}${r.stdout}`);
  }
  return r.config;
}

function server(argv: string[], files: Record<string, string> = {}): ServerConfig {
  const r = parseServerConfig(argv, {}, { readFile: (p) => read(files, p) });
  if (r.kind !== "run") {
    throw new Error(`expected a config, got exit ${r.code}: ${r.stderr}${r.stdout}`);
  }
  return r.config;
}

function read(files: Record<string, string>, path: string): string {
  if (path in files) return files[path];
  throw new Deno.errors.NotFound(`No such file or directory (os error 2): readfile '${path}'`);
}

/** Runs a parse that must exit; returns the one stderr line. */
function fatal(
  role: "client" | "server",
  argv: string[],
  code: number,
  includes: string,
  files: Record<string, string> = {},
): string {
  const parse = role === "client" ? parseClientConfig : parseServerConfig;
  const r = parse(argv, {}, { readFile: (p) => read(files, p) });
  assert(r.kind === "exit", `expected an exit for ${argv.join(" ")}`);
  assertEquals(r.code, code, r.stderr);
  assert(
    r.stderr.includes(includes),
    `stderr ${JSON.stringify(r.stderr)} lacks ${JSON.stringify(includes)}`,
  );
  assertEquals(r.stderr.split("\n").length, 2, "one line and its newline");
  assertEquals(r.stdout, "");
  return r.stderr;
}

Deno.test("config: client defaults are kcptun 2021's", () => {
  const c = client([]);
  assertEquals(c.role, "client");
  assertEquals(c.localaddr, ":12948");
  assertEquals(c.remoteaddr, "vps:29900");
  assertEquals(c.key, "it's a secrect");
  assertEquals(c.crypt, "aes");
  assertEquals(c.mode, "fast");
  assertEquals([c.nodelay, c.interval, c.resend, c.nc], [0, 30, 2, 1]);
  assertEquals([c.sndwnd, c.rcvwnd, c.mtu], [128, 512, 1350]);
  assertEquals([c.datashard, c.parityshard, c.dscp], [10, 3, 0]);
  assertEquals([c.conn, c.autoexpire, c.scavengettl], [1, 0, 600]);
  assertEquals([c.sockbuf, c.smuxbuf, c.streambuf, c.framesize], [
    4194304,
    4194304,
    2097152,
    32768,
  ]);
  assertEquals([c.smuxver, c.keepalive, c.closewait, c.ratelimit], [1, 10, 0, 0]);
  assertEquals([c.snmplog, c.snmpperiod, c.log], ["", 60, ""]);
  assertEquals([c.nocomp, c.acknodelay, c.quiet, c.tcp, c.pprof, c.qpp], [
    false,
    false,
    false,
    false,
    false,
    false,
  ]);
  assertEquals(c.qppcount, 61);
  assertEquals(c.pipeline, null);
  assertEquals(c.configFile, "");
  assertEquals(c.modePreset, true);
  assertEquals(c.warnings, []);
  assertEquals(c.localAddress, {
    kind: "inet",
    host: "",
    minPort: 12948,
    maxPort: 12948,
    text: ":12948",
  });
  assertEquals(c.remoteAddress, {
    kind: "inet",
    host: "vps",
    minPort: 29900,
    maxPort: 29900,
    text: "vps:29900",
  });
  assertEquals(c.sources.mtu, "default");
  assertEquals(c.sources.interval, "mode");
});

Deno.test("config: server defaults are kcptun 2021's", () => {
  const s = server([]);
  assertEquals(s.role, "server");
  assertEquals([s.listen, s.target], [":29900", "127.0.0.1:12948"]);
  assertEquals([s.sndwnd, s.rcvwnd], [1024, 1024]);
  assertEquals([s.smuxver, s.closewait, s.framesize], [1, 0, 32768]);
  assertEquals(s.listenAddress, {
    kind: "inet",
    host: "",
    minPort: 29900,
    maxPort: 29900,
    text: ":29900",
  });
  assertEquals(s.targetAddress.kind, "inet");
  assert(!("conn" in s) && !("localaddr" in s), "no client-only settings");
  assertEquals(Object.keys(SERVER_DEFAULTS).includes("conn"), false);
  assertEquals(Object.keys(CLIENT_DEFAULTS).includes("listen"), false);
});

Deno.test("config: mode presets (applied after flags and the file)", () => {
  for (const [mode, p] of MODE_PRESETS) {
    const c = client(["-mode", mode]);
    assertEquals([c.nodelay, c.interval, c.resend, c.nc], [...p], mode);
    assertEquals(c.sources.nodelay, "mode");
  }
  assertEquals(MODE_PRESETS.get("normal"), [0, 40, 2, 1]);
  assertEquals(MODE_PRESETS.get("fast"), [0, 30, 2, 1]);
  assertEquals(MODE_PRESETS.get("fast2"), [1, 20, 2, 1]);
  assertEquals(MODE_PRESETS.get("fast3"), [1, 10, 2, 1]);

  const manual = client([
    "-mode",
    "manual",
    "-nodelay",
    "1",
    "-interval",
    "20",
    "-resend",
    "2",
    "-nc",
    "1",
  ]);
  assertEquals([manual.nodelay, manual.interval, manual.resend, manual.nc], [1, 20, 2, 1]);
  assertEquals(manual.modePreset, false);
  assertEquals(manual.warnings, []);
  const hidden = client(["-mode", "manual"]);
  assertEquals([hidden.nodelay, hidden.interval, hidden.resend, hidden.nc], [0, 50, 0, 0]);

  // A preset overrides explicit values, as kcptun; we say so.
  const over = client(["-mode", "fast3", "-interval", "99"]);
  assertEquals(over.interval, 10);
  assert(
    over.warnings.some((w) => w.includes("-interval given is ignored")),
    over.warnings.join("|"),
  );
  const fromFile = client(["-c", "f.json"], {
    "f.json": '{"mode": "fast2", "nodelay": 0, "interval": 77}',
  });
  assertEquals([fromFile.nodelay, fromFile.interval], [1, 20]);

  // Unknown mode = manual, with a warning; prototype names are not presets.
  const typo = client(["-mode", "fastt"]);
  assertEquals([typo.nodelay, typo.interval, typo.resend, typo.nc], [0, 50, 0, 0]);
  assert(typo.warnings.some((w) => w.includes('unknown -mode "fastt"')));
  assertEquals(client(["-mode", "toString"]).modePreset, false);
});

Deno.test("config: full client file shaped like kcptun's example loads every key", () => {
  const c = client(["-c", "client.json", "-mtu", "1000", "-conn", "9"], {
    "client.json": fixture("client_full.json"),
  });
  assertEquals(c.localaddr, "127.0.0.1:3000");
  assertEquals(c.remoteAddress, {
    kind: "inet",
    host: "198.51.100.7",
    minPort: 29900,
    maxPort: 29999,
    text: "198.51.100.7:29900-29999",
  });
  assertEquals([c.key, c.crypt, c.mode], ["PASSWORD", "aes-128", "manual"]);
  assertEquals([c.conn, c.autoexpire, c.scavengettl], [4, 300, 120]);
  assertEquals([c.mtu, c.ratelimit, c.sndwnd, c.rcvwnd], [1400, 1048576, 256, 1024]);
  assertEquals([c.datashard, c.parityshard, c.dscp], [5, 2, 46]);
  assertEquals([c.nocomp, c.acknodelay, c.quiet, c.tcp, c.pprof], [true, true, true, false, false]);
  assertEquals([c.nodelay, c.interval, c.resend, c.nc], [1, 40, 2, 1]);
  assertEquals([c.sockbuf, c.smuxver, c.smuxbuf, c.framesize, c.streambuf], [
    16777217,
    2,
    16777217,
    8192,
    2097152,
  ]);
  assertEquals([c.keepalive, c.closewait], [15, 5]);
  assertEquals([c.log, c.snmplog, c.snmpperiod], [
    "/tmp/kcptun-client.log",
    "/tmp/snmp-20060102.log",
    30,
  ]);
  assertEquals([c.qpp, c.qppcount], [false, 61]);
  assertEquals(c.configFile, "client.json");
  // Keys in the file override flags.
  assertEquals(c.sources.mtu, "json");
  assertEquals(c.sources.conn, "json");
  assertEquals(c.warnings, []);
});

Deno.test("config: full server file shaped like kcptun's example loads every key", () => {
  const s = server(["-c", "server.json"], { "server.json": fixture("server_full.json") });
  assertEquals(s.listenAddress, {
    kind: "inet",
    host: "",
    minPort: 29900,
    maxPort: 29999,
    text: ":29900-29999",
  });
  assertEquals(s.targetAddress, {
    kind: "inet",
    host: "127.0.0.1",
    minPort: 2000,
    maxPort: 2000,
    text: "127.0.0.1:2000",
  });
  assertEquals([s.crypt, s.mode, s.nodelay, s.interval], ["salsa20", "fast3", 1, 10]);
  assertEquals([s.sndwnd, s.rcvwnd, s.ratelimit, s.framesize, s.closewait], [
    2048,
    2048,
    104857600,
    16384,
    30,
  ]);
  assertEquals(s.sources.listen, "json");
  assertEquals(s.sources.log, "json");
  assertEquals(s.sources.nodelay, "mode");
  assert(
    s.warnings.some((w) => w.includes("-mode fast3")),
    "the file's nodelay/interval lose to the preset",
  );
});

Deno.test("config: 2026 example with qpp true runs, with kcptun 2026's key-length warning", () => {
  const c = client(["-c", "x.json"], { "x.json": fixture("client_2026_qpp.json") });
  assertEquals([c.qpp, c.qppcount, c.sources.qpp, c.sources.qppcount], [true, 61, "json", "json"]);
  assertEquals(
    c.warnings[0],
    "QPP Warning: 'key' has size of 8 bytes, required 211 bytes at least",
  );
  assertEquals(c.warnings.filter((w) => w.startsWith("QPP")).length, 1);
  const s = server(["-QPP=true", "-QPPCount", "7", "-key", "k".repeat(211)]);
  assertEquals([s.qpp, s.qppcount, s.warnings], [true, 7, []]);
  assertEquals(client(["-QPP=false", "-QPPCount", "7"]).qppcount, 7);
  assertEquals(client(["-QPP"]).qppcount, 61);
});

Deno.test("config: QPP warnings (short key in UTF-8 bytes, few pads, even count) and fatal counts", () => {
  const w = (argv: string[]) => client(["-QPP", ...argv]).warnings;
  // 70 three-byte characters are 210 bytes: one short.
  assertEquals(w(["-key", "€".repeat(70), "-QPPCount", "61"]), [
    "QPP Warning: 'key' has size of 210 bytes, required 211 bytes at least",
  ]);
  assertEquals(w(["-key", "€".repeat(71), "-QPPCount", "4"]), [
    "QPP Warning: QPPCount 4, required 7 at least",
    "QPP Warning: QPPCount 4, choose a prime number for security",
  ]);
  assertEquals(w(["-key", "€".repeat(71), "-QPPCount", "62"]), [
    "QPP Warning: QPPCount 62, choose a prime number for security",
  ]);
  // Without -QPP the count is not looked at, as kcptun.
  assertEquals(client(["-QPPCount", "0"]).warnings, []);
  fatal(
    "client",
    ["-QPP", "-QPPCount", "0"],
    1,
    "QPPCount must be greater than 0 when QPP is enabled",
  );
  fatal("server", ["-QPP", "-QPPCount", "-3"], 1, "QPPCount must be greater than 0");
  fatal("client", ["-c", "x.json"], 1, "QPPCount must be at most 65535, got 65536 (from x.json)", {
    "x.json": '{"qpp": true, "qpp-count": 65536}',
  });
});

Deno.test("config: a shared file with mixed-case and unknown keys", () => {
  const files = { "shared.json": fixture("shared_mixed_case.json") };
  const c = client(["-c", "shared.json"], files);
  assertEquals([c.localaddr, c.remoteaddr, c.key, c.crypt], [
    "127.0.0.1:12000",
    "[::1]:29900",
    "shared secret",
    "twofish",
  ]);
  assertEquals([c.nocomp, c.smuxver, c.mtu, c.sndwnd], [true, 2, 1200, 64]);
  assertEquals(c.remoteAddress.host, "::1");
  assertEquals(c.warnings.length, 1);
  assertEquals(
    c.warnings[0],
    'config file shared.json: ignoring unknown keys: "Listen", "Target", "comment", "QPPCount"',
  );
  assertEquals(c.pipeline, {
    stages: ["tcp", "smux", "kcp", { stage: "./obfs.js", options: { seed: 7 } }, "crypt", "udp"],
  });

  const s = server(["-c", "shared.json"], files);
  assertEquals(s.targetAddress, { kind: "unix", path: "/run/app.sock", text: "/run/app.sock" });
  assertEquals(s.listenAddress.host, "::");
  assert(s.warnings[0].includes('"LocalAddr", "RemoteAddr", "comment", "QPPCount"'), s.warnings[0]);
});

Deno.test("config: JSON keys are matched as Go's encoding/json matches them", () => {
  const v = (json: string) => readJsonSettings(json, "f", "client").values;
  assertEquals(v('{"MTU": 1}').get("mtu"), 1);
  assertEquals(v('{"Qpp-Count": 5}').get("qppcount"), 5);
  assertEquals(v('{"qppcount": 5}').get("qppcount"), undefined);
  // Kelvin sign and long s fold to k and s in Go.
  assertEquals(v('{"\u212aey": "x"}').get("key"), "x");
  assertEquals(v('{"\u017fndwnd": 9}').get("sndwnd"), 9);
  // Later duplicates win, across spellings.
  assertEquals(v('{"mtu": 1, "MTU": 3, "mtu": 2}').get("mtu"), 2);
  // null leaves the flag value alone.
  assertEquals(v('{"mtu": null}').has("mtu"), false);
  assertEquals(
    client(["-mtu", "1000", "-c", "f"], { f: '{"mtu": null, "foo": [1, {"a": 2}]}' }).mtu,
    1000,
  );
  assertEquals(foldKey("NoComp"), "nocomp");
});

Deno.test("config: type mismatches name the key and its position", () => {
  const cases: [string, string][] = [
    ['{"mtu": "1400"}', '"mtu" at line 1, column 9: expected an integer, got string "1400"'],
    ['{\n  "mtu": 1400.0\n}', '"mtu" at line 2, column 10: expected an integer, got number 1400.0'],
    ['{"mtu": 1e3}', "got number 1e3"],
    ['{"mtu": 99999999999999999999}', "expected an integer in range"],
    [
      '{"nocomp": "true"}',
      '"nocomp" at line 1, column 12: expected true or false, got string "true"',
    ],
    ['{"nocomp": 1}', "expected true or false, got number 1"],
    ['{"key": 5}', "expected a string, got number 5"],
    ['{"crypt": ["aes"]}', "expected a string, got an array"],
    ['{"sndwnd": {}}', "expected an integer, got an object"],
    ['{"mtu": "x", "sndwnd": 7}', '"mtu"'],
  ];
  for (const [json, msg] of cases) {
    const line = fatal("client", ["-c", "f.json"], 1, msg, { "f.json": json });
    assert(line.startsWith('config file "f.json": '), line);
  }
});

Deno.test("config: broken JSON gives Go's wording and the position", () => {
  const cases: [string, string][] = [
    [
      '{"mtu": 14,}',
      "invalid character '}' looking for beginning of object key string at line 1, column 12",
    ],
    ['{"mtu" 14}', "invalid character '1' after object key at line 1, column 8"],
    ['{"mtu": 14 "x": 1}', "invalid character '\"' after object key:value pair"],
    [
      '{\n\n  "mtu": tru}',
      "invalid character '}' in literal true (expecting 'e') at line 3, column 13",
    ],
    ['{"mtu": 01}', "invalid character '1' after object key:value pair"],
    ['{"mtu": -}', "invalid character '}' in numeric literal"],
    ['{"mtu": 1.}', "after decimal point in numeric literal"],
    ['{"key": "a\\qb"}', "invalid character 'q' in string escape code"],
    ['{"key": "a\nb"}', "invalid character '\\n' in string literal"],
    ['{"key": "\\u12x4"}', "in \\u hexadecimal character escape"],
    ['{"mtu": 14', "unexpected end of JSON input"],
    ['{"mtu": 14} garbage', "invalid character 'g' after top-level value"],
    ["// comment\n{}", "invalid character '/' looking for beginning of value"],
    ["", "the file is empty"],
    ["  \n", "the file is empty"],
    ["[1]", "expected a JSON object, got an array"],
    ['"x"', "expected a JSON object, got string"],
  ];
  for (const [json, msg] of cases) fatal("client", ["-c", "f.json"], 1, msg, { "f.json": json });
  fatal(
    "client",
    ["-c", "missing.json"],
    1,
    'cannot read config file "missing.json": no such file or directory',
  );
  // A byte order mark is tolerated.
  assertEquals(client(["-c", "f"], { f: '\ufeff{"mtu": 1111}' }).mtu, 1111);
});

Deno.test("config: JSON text round-trips through our parser (fast-check)", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = JSON.stringify(value);
      assertEquals(jsonToPlain(parseJsonText(text)), JSON.parse(text));
      assertEquals(jsonToPlain(parseJsonText(JSON.stringify(value, null, 2))), JSON.parse(text));
    }),
    { seed: 3, numRuns: 300 },
  );
  // Unicode escapes, surrogate pairs, and lone surrogates (U+FFFD, as Go).
  assertEquals(
    jsonToPlain(parseJsonText('"\\u00e9\\ud83d\\ude00\\ud800x\\udc00"')),
    "é😀\ufffdx\ufffd",
  );
  assertThrows(() => parseJsonText("{"), JsonSyntaxError, "unexpected end of JSON input");
});

Deno.test("config: startup checks are fatal with one line", () => {
  const cases: [string[], string][] = [
    [["-conn", "0"], "invalid conn 0: must be between 1 and 65535"],
    [["-conn", "-1"], "invalid conn -1"],
    [["-conn", "65536"], "invalid conn 65536"],
    [["-smuxver", "3"], "unsupported smux version: 3"],
    [["-smuxver", "0"], "-smuxver 0 (answer each client in its own version) is for servers only"],
    [["-smuxver", "-1"], "unsupported smux version: -1 (available: 1, 2)"],
    [["-keepalive", "31"], "invalid keepalive 31: must be between 1 and 30 seconds"],
    [["-keepalive", "0"], "invalid keepalive 0"],
    [["-smuxbuf", "0"], "invalid smuxbuf 0: max receive buffer must be positive"],
    [["-streambuf", "0"], "invalid streambuf 0: max stream buffer must be positive"],
    [
      ["-smuxbuf", "1048576"],
      "invalid streambuf 2097152: max stream buffer must not be larger than max receive buffer (smuxbuf 1048576)",
    ],
    [["-framesize", "0"], "invalid framesize 0: must be between 1 and 65535"],
    [["-framesize", "65536"], "invalid framesize 65536"],
    [["-mtu", "1501"], "invalid mtu 1501: must be at most 1500"],
    [["-mtu", "49"], "invalid mtu 49: must be at least 50, KCP's smallest datagram"],
    [["-sndwnd", "0"], "invalid sndwnd 0: must be between 1 and 65535 packets"],
    [["-rcvwnd", "65536"], "invalid rcvwnd 65536"],
    [["-ds", "-1"], "invalid datashard -1"],
    [["-ps", "-1"], "invalid parityshard -1"],
    [["-ds", "200", "-ps", "57"], "datashard + parityshard must be at most 256"],
    [["-dscp", "64"], "invalid dscp 64: must be between 0 and 63"],
    [["-sockbuf", "-1"], "invalid sockbuf -1"],
    [["-closewait", "-1"], "invalid closewait -1"],
    [["-r", "host"], 'invalid remoteaddr "host": missing port in address'],
    [["-r", "host:0"], "port 0 is not allowed here"],
    [["-r", "host:70000"], "port 70000 is out of range"],
    [["-r", "host:3000-2000"], "invalid port range 3000-2000"],
    [["-r", "::1:29900"], "an IPv6 address needs brackets"],
    [["-l", ":1-2"], 'invalid localaddr ":1-2": a port range is not allowed here'],
    [["-l", "host:http"], 'port "http" is not a number'],
    [["-pipeline", "tcp,,udp"], 'invalid -pipeline "tcp,,udp": empty stage name'],
  ];
  for (const [argv, msg] of cases) fatal("client", argv, 1, msg);
  fatal("server", ["-l", "host"], 1, 'invalid listen "host": missing port in address');
  fatal("server", ["-l", ":0-5"], 1, "port 0 is not allowed here");
  fatal("server", ["-t", "127.0.0.1:0"], 1, 'invalid target "127.0.0.1:0"');
  fatal("server", ["-t", "::1:80"], 1, "an IPv6 address needs brackets");
  fatal("client", ["-c", "f"], 1, "invalid keepalive 40 (from f)", { f: '{"keepalive": 40}' });
  fatal("client", ["-c", "f"], 1, "-smuxver 0 (from f)", { f: '{"smuxver": 0}' });
  fatal("server", ["-smuxver", "3"], 1, "(available: 1, 2, or 0: each client's)");
});

Deno.test("config: -replaywindow needs aes-128-gcm; a startup line; the crypt stage's option", () => {
  const c = client(["-crypt", "aes-128-gcm", "-replaywindow", "65536"]);
  assertEquals(c.replaywindow, 65536);
  assertEquals(client([]).replaywindow, 0);
  assert(startupLines(c).includes("replaywindow: 65536"));
  assert(!startupLines(client([])).some((l) => l.startsWith("replaywindow")));
  assertEquals(flagStageOptions(c).crypt.replayWindow, 65536);
  assertEquals("replayWindow" in flagStageOptions(client([])).crypt, false);
  assertEquals(
    server(["-c", "f"], { f: '{"crypt": "aes-128-gcm", "replaywindow": 9}' }).replaywindow,
    9,
  );
  fatal(
    "server",
    ["-replaywindow", "65536"],
    1,
    "invalid replaywindow 65536: needs -crypt aes-128-gcm, the only method that authenticates its nonce (-crypt is aes)",
  );
  fatal("client", ["-crypt", "nosuch", "-replaywindow", "1"], 1, "(-crypt is aes)");
  fatal("client", ["-crypt", "aes-128-gcm", "-replaywindow", "-1"], 1, "invalid replaywindow -1");
  fatal("client", ["-crypt", "aes-128-gcm", "-replaywindow", "4194305"], 1, "up to 4194304");
});

Deno.test("config: -smuxver 0 is the server's 'answer in the client's version'", () => {
  assertEquals(server(["-smuxver", "0"]).smuxver, 0);
  assertEquals(server(["-c", "f"], { f: '{"smuxver": 0}' }).smuxver, 0);
  assertEquals(
    startupLines(server(["-smuxver", "0"]))[1],
    "smux version: 0 (each session answers in its client's version)",
  );
  assertEquals(startupLines(server([]))[1], "smux version: 1");
});

Deno.test("config: boundaries that are allowed", () => {
  assertEquals(client(["-keepalive", "30"]).keepalive, 30);
  assertEquals(client(["-keepalive", "1"]).keepalive, 1);
  assertEquals(client(["-conn", "65535"]).conn, 65535);
  assertEquals(client(["-mtu", "78"]).mtu, 78);
  // What the packet stages leave KCP is checked at startup, from the built pipeline.
  assertEquals(client(["-mtu", "77"]).mtu, 77);
  assertEquals(client(["-mtu", "50", "-crypt", "null", "-ds", "0", "-ps", "0"]).mtu, 50);
  assertEquals(client(["-mtu", "70", "-crypt", "none", "-ds", "0"]).mtu, 70);
  assertEquals(client(["-streambuf", "4194304"]).streambuf, 4194304);
  assertEquals(client(["-ds", "0", "-ps", "0"]).datashard, 0);
  assertEquals(client(["-ds", "128", "-ps", "128"]).parityshard, 128);
  assertEquals(client(["-ds", "300", "-ps", "0"]).datashard, 300);
  assertEquals(client(["-dscp", "63"]).dscp, 63);
  assertEquals(client(["-l", "127.0.0.1:0"]).localAddress, {
    kind: "inet",
    host: "127.0.0.1",
    minPort: 0,
    maxPort: 0,
    text: "127.0.0.1:0",
  });
  assertEquals(server(["-l", "127.0.0.1:0"]).listenAddress.minPort, 0);
  assertEquals(server(["-l", "[::]:29900-29910"]).listenAddress.maxPort, 29910);
  assertEquals(client(["-r", "[::1]:1-65535"]).remoteAddress.maxPort, 65535);
});

Deno.test("config: non-fatal corrections are warnings", () => {
  const c = client(["-ratelimit", "-5"]);
  assertEquals(c.ratelimit, 0);
  assert(c.warnings.includes("ratelimit -5 is negative, falling back to 0"));
  const typo = client(["-crypt", "aes-256"]);
  assertEquals(typo.crypt, "aes");
  assert(typo.warnings.includes('unknown -crypt "aes-256": using aes, as kcptun does'));
  assert(client(["-crypt", "null"]).warnings[0].includes("kcptun 2026 method"));
  assert(client(["-crypt", "aes-128-gcm"]).warnings[0].includes("kcptun 2026 method"));
  assertEquals(client(["-crypt", "none"]).warnings, []);
  assert(client(["-pprof"]).warnings[0].includes("--inspect"));
  assert(server(["-pprof"]).pprof);
  assert(
    client(["-autoexpire", "60"]).warnings[0].includes(
      "scavengettl 600 is bigger than autoexpire 60",
    ),
  );
  assert(client(["-snmplog", "x.csv", "-snmpperiod", "0"]).warnings[0].includes("is not written"));
  const unix = server(["-t", "app.sock"]);
  assertEquals(unix.targetAddress, { kind: "unix", path: "app.sock", text: "app.sock" });
  assert(unix.warnings[0].includes('target "app.sock" is not host:port'));
  assertEquals(server(["-t", "/tmp/a:b"]).targetAddress.kind, "unix");
  assertEquals(client(["-l", "/tmp/kcp.sock"]).localAddress, {
    kind: "unix",
    path: "/tmp/kcp.sock",
    text: "/tmp/kcp.sock",
  });
  assertEquals(client(["-l", "/tmp/kcp.sock"]).warnings, []);
});

Deno.test("config: KCPTUN_KEY, flags and the file, in that order", () => {
  assertEquals(client([], {}, { KCPTUN_KEY: "env" }).key, "env");
  assertEquals(client([], {}, { KCPTUN_KEY: "env" }).sources.key, "env");
  assertEquals(client(["-key", "flag"], {}, { KCPTUN_KEY: "env" }).key, "flag");
  assertEquals(
    client(["-key", "flag", "-c", "f"], { f: '{"key": "file"}' }, { KCPTUN_KEY: "env" }).key,
    "file",
  );
});

Deno.test("config: -h, help, -v and usage errors become exits", () => {
  for (const argv of [["-h"], ["--help"], ["-help"], ["help"], ["h"], ["-mtu", "5", "-h"]]) {
    const r = parseClientConfig(argv, {}, { programName: "kc" });
    assert(r.kind === "exit" && r.code === 0, argv.join(" "));
    assert(r.stdout.startsWith("NAME:\n   kcptun-ts - client(with SMUX)\n"), r.stdout);
    assert(r.stdout.includes("\n   kc [global options] command"), "program name in USAGE");
    assertEquals(r.stderr, "");
  }
  const noHelp = parseClientConfig(["-h=false"], {});
  assertEquals(noHelp.kind, "run");
  for (const argv of [["-v"], ["--version"], ["-version"]]) {
    const r = parseServerConfig(argv, {});
    assert(r.kind === "exit" && r.code === 0);
    assert(/^kcptun-ts version \d+\.\d+\.\d+/.test(r.stdout), r.stdout);
  }
  fatal("client", ["-x"], 2, "Incorrect Usage. flag provided but not defined: -x");
  fatal("client", ["-listen", ":1"], 2, "flag provided but not defined: -listen");
  fatal("server", ["-conn", "2"], 2, "flag provided but not defined: -conn");
  fatal("server", ["-r", "x:1"], 2, "flag provided but not defined: -r");
  fatal("client", ["-conn", "abc"], 2, 'invalid value "abc" for flag -conn: parse error');
  fatal("client", ["-ds", "1", "-datashard", "1"], 2, "cannot use two forms");
  // Usage errors come before help, as urfave/cli.
  fatal("client", ["-h", "-x"], 2, "-x");
});

Deno.test("config: -pipeline flag, JSON pipeline and pipelineOptions", () => {
  const flag = client(["-pipeline", " tcp , smux,kcp,fec,crypt,udp "]);
  assertEquals(flag.pipeline, { stages: ["tcp", "smux", "kcp", "fec", "crypt", "udp"] });
  assertEquals(flag.pipelineOptions, {});
  assertEquals(flag.sources.pipeline, "flag");
  // The plugin guide's form (docs/plugins.md), keys case-insensitive like every other key.
  const guide = client(["-c", "p.json"], {
    "p.json": JSON.stringify({
      pipeline: ["tcp", "smux", "snappy", "kcp", "fec", "./examples/padding.ts", "crypt", "udp"],
      PipelineOptions: { padding: { max: 64 } },
    }),
  });
  assertEquals(guide.pipeline, {
    stages: ["tcp", "smux", "snappy", "kcp", "fec", "./examples/padding.ts", "crypt", "udp"],
    options: { padding: { max: 64 } },
  });
  assertEquals(guide.sources.pipelineoptions, "json");
  assertEquals(guide.warnings, []);
  // Options alone apply to the pipeline the flags imply.
  const optsOnly = client(["-nocomp", "-c", "o.json"], {
    "o.json": '{"pipelineOptions": {"crypt": {"engine": "js"}}}',
  });
  assertEquals(optsOnly.pipeline, null);
  assertEquals(effectivePipeline(optsOnly), {
    stages: ["tcp", "smux", "kcp", "fec", "crypt", "udp"],
    options: { crypt: { engine: "js" } },
  });
  assertEquals(effectivePipeline(flag), flag.pipeline!);
  // JSON replaces the flag's pipeline; flag stages take the file's options.
  assertEquals(
    client(["-pipeline", "a", "-c", "/etc/k.json"], { "/etc/k.json": '{"pipeline": ["b"]}' })
      .pipeline,
    { stages: ["b"] },
  );
  assertEquals(
    client(["-pipeline", "a,b", "-c", "k"], { k: '{"pipelineOptions": {"a": {"n": 1}}}' }).pipeline,
    { stages: ["a", "b"], options: { a: { n: 1 } } },
  );
  const bad: [string, string][] = [
    ['{"pipeline": "tcp,udp"}', "pipeline must be an array of stages, got string"],
    ['{"pipeline": {"stages": ["x"]}}', "pipeline must be an array of stages, got an object"],
    ['{"pipeline": []}', "pipeline is empty"],
    ['{"pipeline": [""]}', "empty stage name in pipeline"],
    ['{"pipeline": [1]}', "a pipeline entry is a stage name or"],
    ['{"pipeline": [{"options": {}}]}', 'needs "stage"'],
    ['{"pipeline": [{"stage": "x", "opts": {}}]}', 'unknown key "opts" in a pipeline entry'],
    ['{"pipeline": [{"stage": "x", "options": 3}]}', "stage options must be an object"],
    ['{"pipelineOptions": [1]}', "expected an object of per-stage option objects, got an array"],
    ['{"pipelineOptions": {"crypt": 1}}', 'options of stage "crypt" must be an object'],
  ];
  for (const [json, msg] of bad) fatal("client", ["-c", "p.json"], 1, msg, { "p.json": json });
});

Deno.test("config: stage options in the file are checked against what the stage declares", () => {
  const file = (json: string) => ({ "p.json": json });
  // One line naming the file, the key, where, the stage and the option.
  assertEquals(
    fatal(
      "client",
      ["-c", "p.json"],
      1,
      "",
      file('{"pipelineOptions": {"crypt": {"engine": "js", "x": 1}}}'),
    ),
    'config file "p.json": "pipelineOptions" at line 1, column 48: stage "crypt" takes no option' +
      ' "x" (it takes: crypt, key, pass, generation, minPayload, nonces, engine, replayWindow)\n',
  );
  assertEquals(
    fatal(
      "server",
      ["-c", "p.json"],
      1,
      "",
      file('{\n  "pipelineOptions": {"kcp": {"mtu": "1400"}}\n}'),
    ),
    'config file "p.json": "pipelineOptions" at line 2, column 38: option "mtu" of stage "kcp"' +
      ' must be an integer, got string "1400"\n',
  );
  const bad: [string, string][] = [
    [
      '{"pipeline": ["tcp", {"stage": "fec", "options": {"dataShard": 1}}, "udp"]}',
      '"pipeline" at line 1, column 51: stage "fec" takes no option "dataShard" (it takes: dataShards,',
    ],
    [
      '{"pipeline": [{"stage": "kcp", "options": {"mtu": 1.5}}]}',
      "must be an integer, got number 1.5",
    ],
    [
      '{"pipelineOptions": {"udp": {"port": 1}}}',
      'stage "udp" takes no option "port" (it takes none)',
    ],
    ['{"pipelineOptions": {"smux": {"keepAliveDisabled": 1}}}', "must be a boolean, got number 1"],
  ];
  for (const [json, msg] of bad) fatal("client", ["-c", "p.json"], 1, msg, file(json));
  // Declared options of the right type pass, whole numbers written 1.0 included (as for "mtu").
  assertEquals(
    client(["-c", "p.json"], file('{"pipelineOptions": {"fec": {"dataShards": 4.0}}}'))
      .pipelineOptions,
    { fec: { dataShards: 4 } },
  );
  // Plugin modules and names the registry does not know are checked when the pipeline is built.
  assertEquals(
    client(
      ["-c", "p.json"],
      file('{"pipeline": [{"stage": "./p.ts", "options": {"a": 1}}, "udp"]}'),
    )
      .pipeline,
    { stages: [{ stage: "./p.ts", options: { a: 1 } }, "udp"] },
  );
  assertEquals(
    client(["-c", "p.json"], file('{"pipelineOptions": {"nosuch": {"a": 1}}}')).pipelineOptions,
    { nosuch: { a: 1 } },
  );
  // The registry given is the one checked against.
  const registry = builtinRegistry().register({
    name: "pad",
    kind: "packet",
    options: { max: { type: "integer" } },
    create: () => ({ overhead: 0, encode() {}, decode() {} }),
  });
  const parse = (json: string) =>
    parseClientConfig(["-c", "p.json"], {}, { registry, readFile: () => json });
  assertEquals(parse('{"pipelineOptions": {"pad": {"max": 8}}}').kind, "run");
  const r = parse('{"pipelineOptions": {"pad": {"max": "8"}}}');
  assert(r.kind === "exit" && r.stderr.includes('option "max" of stage "pad" must be an integer'));
});

Deno.test("config: the pipeline the flags imply", () => {
  assertEquals(defaultPipeline(client([])).stages, [
    "tcp",
    "smux",
    "snappy",
    "kcp",
    "fec",
    "crypt",
    "udp",
  ]);
  assertEquals(
    defaultPipeline(client(["-nocomp", "-tcp", "-crypt", "null", "-ds", "0", "-ps", "0"])).stages,
    ["tcp", "smux", "kcp", "fec", "faketcp"],
  );
  assertEquals(defaultPipeline(client(["-crypt", "none"])).stages.includes("crypt"), true);
  assertEquals(defaultPipeline(client(["-l", "/tmp/s.sock"])).stages[0], "unix");
  assertEquals(defaultPipeline(server(["-t", "/tmp/s.sock"])).stages[0], "unix");
  assertEquals(defaultPipeline(server([])).stages[0], "tcp");
});

Deno.test("config: ConfigError is what readJsonSettings throws", () => {
  assertThrows(() => readJsonSettings("{", "f", "server"), ConfigError, 'config file "f"');
  const r = readJsonSettings('{"listen": ":1", "conn": 2}', "f", "server");
  assertEquals(r.values.get("listen"), ":1");
  assertEquals(r.unknown, ["conn"]);
});
