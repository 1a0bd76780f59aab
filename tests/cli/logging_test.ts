import { assert, assertEquals } from "../support/assert.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import {
  describeSources,
  fileSink,
  goSprintln,
  Logger,
  type LogSink,
  logTimestamp,
  openLogger,
  openLogSink,
  startupLines,
  stderrSink,
} from "../../cli/logging.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

function memorySink(): LogSink & { text: string; closed: boolean } {
  const s = {
    text: "",
    closed: false,
    write: (t: string) => (s.text += t),
    close: () => (s.closed = true),
  };
  return s;
}

Deno.test("logging: Go's log.LstdFlags timestamp in local time", () => {
  const d = new Date(2026, 0, 2, 3, 4, 5, 678);
  assertEquals(logTimestamp(d), "2026/01/02 03:04:05 ");
  assertEquals(logTimestamp(new Date(2026, 10, 24, 23, 59, 59)), "2026/11/24 23:59:59 ");
});

Deno.test("logging: Println joins operands with spaces", () => {
  assertEquals(goSprintln("snmplog:", ""), "snmplog: ");
  assertEquals(goSprintln("compression:", true), "compression: true");
  assertEquals(goSprintln("nodelay parameters:", 0, 30, 2, 1), "nodelay parameters: 0 30 2 1");
  assertEquals(goSprintln("x", null, 2 ** 70), "x <nil> 1180591620717411303424");
});

Deno.test("logging: lines, newlines, quiet stream lines and close", () => {
  const sink = memorySink();
  const fixed = new Date(2026, 4, 6, 7, 8, 9);
  const log = new Logger({ sink, now: () => fixed, quiet: true });
  log.log("one");
  log.log("two\n");
  log.println("three:", 3, false);
  log.stream("stream opened", "in:", "a", "out:", "b");
  const bound = log.println;
  bound("bound");
  assertEquals(
    sink.text,
    "2026/05/06 07:08:09 one\n2026/05/06 07:08:09 two\n2026/05/06 07:08:09 three: 3 false\n2026/05/06 07:08:09 bound\n",
  );
  const loud = new Logger({ sink: memorySink(), now: () => fixed });
  loud.stream("stream closed");
  assert(!loud.quiet);
  log.close();
  assert(sink.closed);
});

Deno.test("logging: -log appends to a file; bad paths are one line", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/k.log`;
    Deno.writeTextFileSync(path, "old\n");
    const log = openLogger({ log: path, quiet: false });
    log.log("new");
    log.close();
    log.log("after close is dropped");
    const lines = Deno.readTextFileSync(path).split("\n");
    assertEquals(lines[0], "old");
    assert(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d new$/.test(lines[1]), lines[1]);
    assertEquals(lines.length, 3);
    let msg = "";
    try {
      openLogger({ log: `${dir}/missing/k.log`, quiet: false });
    } catch (e) {
      msg = (e as Error).message;
    }
    assertEquals(msg, `open ${dir}/missing/k.log: no such file or directory`);
    const sink = fileSink(`${dir}/s.log`);
    sink.write("x");
    sink.close?.();
    sink.close?.();
    assertEquals(Deno.readTextFileSync(`${dir}/s.log`), "x");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("logging: client startup lines equal kcptun 2021's for the same flags", () => {
  // fixtures/kcptun_client_startup.txt: the Debian binary's output for these flags, with the
  // timestamp and main.go:NNN prefix and the key derivation lines removed.
  const argv = fixture("kcptun_client_startup.args").trim().split(/\s+/);
  const expected = fixture("kcptun_client_startup.txt").trimEnd().split("\n");
  const r = parseClientConfig(argv, {});
  if (r.kind !== "run") throw new Error(r.stderr);
  const listening = expected[2].slice("listening on: ".length);
  const lines = startupLines(r.config, { listeningOn: listening, version: "SELFBUILD" });
  assertEquals(lines.slice(0, expected.length), expected);
  assertEquals(lines.slice(expected.length), r.config.warnings);
});

Deno.test("logging: server startup lines equal kcptun 2021's for the same flags", () => {
  const argv = fixture("kcptun_server_startup.args").trim().split(/\s+/);
  const expected = fixture("kcptun_server_startup.txt").trimEnd().split("\n");
  const r = parseServerConfig(argv, {});
  if (r.kind !== "run") throw new Error(r.stderr);
  const lines = startupLines(r.config, { version: "SELFBUILD" });
  assertEquals(lines.slice(0, expected.length), expected);
  // Then our warnings: -mode normal overrode -nodelay/-interval; -pprof serves nothing here.
  assertEquals(lines.slice(expected.length), r.config.warnings);
  assertEquals(r.config.warnings.length, 2);
  assert(
    r.config.warnings[0].includes("-nodelay, -interval given is ignored"),
    r.config.warnings[0],
  );
});

Deno.test("logging: 2026 and kcptun-ts options get lines only when not at their defaults", () => {
  const r = parseClientConfig([
    "-ratelimit",
    "1000",
    "-framesize",
    "8192",
    "-closewait",
    "3",
    "-pprof",
    "-pipeline",
    "tcp,smux,kcp,udp",
  ], {});
  if (r.kind !== "run") throw new Error(r.stderr);
  const lines = startupLines(r.config);
  const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
  assertEquals(lines[0].startsWith("version: "), true);
  assertEquals(at("ratelimit: 1000"), at("mtu:") + 1);
  assertEquals(at("framesize: 8192"), at("smuxbuf:") + 1);
  assertEquals(at("closewait: 3"), at("keepalive:") + 1);
  assertEquals(at("pprof: true"), at("tcp:") + 1);
  assertEquals(lines[at("pipeline:")], "pipeline: tcp > smux > kcp > udp");
  assertEquals(at("listening on: :12948"), 2);
  const plain = parseClientConfig([], {});
  if (plain.kind !== "run") throw new Error(plain.stderr);
  const p = startupLines(plain.config);
  for (const k of ["ratelimit:", "framesize:", "closewait:", "pprof:", "pipeline:", "QPP"]) {
    assertEquals(p.some((l) => l.startsWith(k)), false, k);
  }
  assertEquals(p.length, 23);
});

Deno.test("logging: with -QPP, QPP lines after encryption (both roles) and kcptun's warnings last", () => {
  for (const parse of [parseClientConfig, parseServerConfig]) {
    const r = parse(["-QPP", "-QPPCount", "8", "-key", "short"], {});
    if (r.kind !== "run") throw new Error(r.stderr);
    const lines = startupLines(r.config);
    const enc = lines.findIndex((l) => l.startsWith("encryption:"));
    assertEquals(lines.slice(enc + 1, enc + 3), ["QPP: true", "QPP Count: 8"]);
    assertEquals(lines.slice(-2), [
      "QPP Warning: 'key' has size of 5 bytes, required 211 bytes at least",
      "QPP Warning: QPPCount 8, choose a prime number for security",
    ]);
  }
});

Deno.test("logging: the sources line", () => {
  const r = parseClientConfig(["-mtu", "1400", "-c", "f", "-mode", "fast2"], { KCPTUN_KEY: "k" }, {
    readFile: () => '{"sndwnd": 64}',
  });
  if (r.kind !== "run") throw new Error(r.stderr);
  assertEquals(
    describeSources(r.config),
    "settings from environment: key; flag: mode mtu; file f: sndwnd; mode: nodelay interval resend nc",
  );
  const lines = startupLines(r.config, { sources: true });
  assertEquals(lines[lines.length - 1], describeSources(r.config));
  const plain = parseServerConfig(["-mode", "manual"], {});
  if (plain.kind !== "run") throw new Error(plain.stderr);
  assertEquals(describeSources(plain.config), "settings from flag: mode");
});

Deno.test("logging: reopen after a rename writes a fresh file at the path (logrotate)", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/k.log`;
    const log = openLogger({ log: path, quiet: false });
    log.log("before");
    Deno.renameSync(path, `${path}.1`);
    log.log("still the renamed file");
    log.reopen();
    log.log("after");
    log.close();
    const old = Deno.readTextFileSync(`${path}.1`);
    const fresh = Deno.readTextFileSync(path);
    assert(old.includes("before") && old.includes("still the renamed file"), old);
    assert(!old.includes("after"), old);
    assertEquals(fresh.split("\n").length, 2);
    assert(fresh.endsWith(" after\n"), fresh);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("logging: a reopen that fails keeps the old file; stderr has nothing to reopen", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/sub/k.log`;
    Deno.mkdirSync(`${dir}/sub`);
    const log = openLogger({ log: path, quiet: false });
    Deno.renameSync(`${dir}/sub`, `${dir}/moved`);
    let threw = false;
    try {
      log.reopen();
    } catch (e) {
      threw = e instanceof Deno.errors.NotFound;
    }
    assert(threw, "the missing directory is reported");
    log.log("kept");
    log.close();
    assert(Deno.readTextFileSync(`${dir}/moved/k.log`).endsWith(" kept\n"));
    new Logger({ sink: stderrSink() }).reopen(); // no file: nothing happens
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("logging: quiet can change while running; replaceSink moves the log", () => {
  const first = memorySink(), second = memorySink();
  const log = new Logger({ sink: first, quiet: false });
  log.stream("stream opened");
  log.quiet = true;
  log.stream("dropped");
  log.replaceSink(second);
  assert(first.closed, "the old destination is closed");
  log.quiet = false;
  log.stream("stream closed");
  assert(first.text.includes("stream opened") && !first.text.includes("dropped"), first.text);
  assert(second.text.endsWith(" stream closed\n"), second.text);
  assertEquals(second.text.split("\n").length, 2);
  assertEquals(openLogSink("").reopen, undefined);
  const file = openLogSink(`/proc/self/fd/2`);
  assertEquals(typeof file.reopen, "function");
  file.close?.();
});
