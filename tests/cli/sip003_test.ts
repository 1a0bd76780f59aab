import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  type ClientConfig,
  parseClientConfig,
  parseServerConfig,
  type ServerConfig,
} from "../../cli/config.ts";
import { UsageError } from "../../cli/flags.ts";
import { describeSources, startupLines } from "../../cli/logging.ts";
import { CLIENT_FLAGS, ConfigError, SERVER_FLAGS } from "../../cli/settings.ts";
import { parsePluginOptions, readPluginEnvironment } from "../../cli/sip003.ts";
import { renderHelp } from "../../cli/usage.ts";

/** What ss-local gives a plugin: its own port for us, the ss server for the far side. */
const SS_LOCAL_ENV = {
  SS_REMOTE_HOST: "203.0.113.7",
  SS_REMOTE_PORT: "8388",
  SS_LOCAL_HOST: "127.0.0.1",
  SS_LOCAL_PORT: "40123",
};

/** What ss-server gives a plugin: the public address for us, its own local port as target. */
const SS_SERVER_ENV = {
  SS_REMOTE_HOST: "0.0.0.0",
  SS_REMOTE_PORT: "8388",
  SS_LOCAL_HOST: "127.0.0.1",
  SS_LOCAL_PORT: "40456",
};

type Env = Record<string, string>;

function read(files: Record<string, string>, path: string): string {
  if (path in files) return files[path];
  throw new Deno.errors.NotFound(`No such file or directory: ${path}`);
}

function client(argv: string[], env: Env, files: Record<string, string> = {}): ClientConfig {
  const r = parseClientConfig(argv, env, { readFile: (p) => read(files, p) });
  if (r.kind !== "run") throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r.config;
}

function server(argv: string[], env: Env, files: Record<string, string> = {}): ServerConfig {
  const r = parseServerConfig(argv, env, { readFile: (p) => read(files, p) });
  if (r.kind !== "run") throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r.config;
}

/** A parse that must exit with `code` and one stderr line containing `includes`. */
function fatal(role: "client" | "server", env: Env, code: number, includes: string): string {
  const parse = role === "client" ? parseClientConfig : parseServerConfig;
  const r = parse([], env);
  assert(r.kind === "exit", `expected an exit for ${JSON.stringify(env)}`);
  assertEquals(r.code, code, r.stderr);
  assert(r.stderr.includes(includes), `stderr ${JSON.stringify(r.stderr)} lacks ${includes}`);
  assertEquals(r.stderr.split("\n").length, 2, "one line and its newline");
  return r.stderr;
}

/** SIP003's escaping, the inverse of the parser (for the round trip). */
function escape(s: string): string {
  return s.replace(/[\\;=]/g, (c) => "\\" + c);
}

Deno.test("sip003: options split on ; and =, backslash escapes, bare keys", () => {
  assertEquals(parsePluginOptions(""), []);
  assertEquals(parsePluginOptions("key=secret;crypt=aes;mode=fast3;nocomp"), [
    { key: "key", value: "secret" },
    { key: "crypt", value: "aes" },
    { key: "mode", value: "fast3" },
    { key: "nocomp", value: null },
  ]);
  // Escaped separators and backslashes are literal, in values and in names.
  assertEquals(parsePluginOptions("key=a\\;b\\=c\\\\d;x\\=y=1"), [
    { key: "key", value: "a;b=c\\d" },
    { key: "x=y", value: "1" },
  ]);
  // Only the first unescaped = splits; later ones belong to the value.
  assertEquals(parsePluginOptions("key=a=b"), [{ key: "key", value: "a=b" }]);
  // An empty value is a value; empty entries are skipped.
  assertEquals(parsePluginOptions(";a=;;b;"), [{ key: "a", value: "" }, { key: "b", value: null }]);
  // A backslash before an ordinary character just keeps it.
  assertEquals(parsePluginOptions("log=\\/tmp\\/x"), [{ key: "log", value: "/tmp/x" }]);
  assertThrows(() => parsePluginOptions("=x"), UsageError, "empty option name");
  assertThrows(() => parsePluginOptions("a=1;=x;b=2"), UsageError, 'empty option name in "=x"');
  assertThrows(() => parsePluginOptions("key=abc\\"), UsageError, "nothing follows the last");
});

Deno.test("sip003: any option list survives escaping and parsing", () => {
  const name = fc.string({ minLength: 1, maxLength: 12 });
  const value = fc.option(fc.string({ maxLength: 20 }), { nil: null });
  fc.assert(
    fc.property(fc.array(fc.record({ key: name, value }), { maxLength: 8 }), (opts) => {
      const text = opts.map((o) => escape(o.key) + (o.value === null ? "" : "=" + escape(o.value)))
        .join(";");
      assertEquals(parsePluginOptions(text), opts.map((o) => ({ key: o.key, value: o.value })));
    }),
    { numRuns: 300 },
  );
});

Deno.test("sip003: not a plugin without the variables; partial environments are errors", () => {
  assertEquals(readPluginEnvironment({}), null);
  assertEquals(readPluginEnvironment({ SS_PLUGIN_OPTIONS: "" }), null);
  assertEquals(readPluginEnvironment(SS_LOCAL_ENV), {
    remote: "203.0.113.7:8388",
    local: "127.0.0.1:40123",
    options: [],
  });
  // A lookup function works as the object does.
  const lookup = (n: string) => (SS_LOCAL_ENV as Env)[n];
  assertEquals(readPluginEnvironment(lookup)?.local, "127.0.0.1:40123");
  assertThrows(
    () => readPluginEnvironment({ ...SS_LOCAL_ENV, SS_LOCAL_PORT: "" }),
    ConfigError,
    "SS_LOCAL_PORT is not set",
  );
  assertThrows(
    () => readPluginEnvironment({ SS_PLUGIN_OPTIONS: "key=x" }),
    ConfigError,
    "SS_PLUGIN_OPTIONS is set but not SS_REMOTE_HOST",
  );
  // IPv6 hosts get brackets (SIP003 passes bare literals).
  const v6 = readPluginEnvironment({ ...SS_LOCAL_ENV, SS_REMOTE_HOST: "2001:db8::1" })!;
  assertEquals(v6.remote, "[2001:db8::1]:8388");
});

Deno.test("sip003: client takes -l from SS_LOCAL_*, -r from SS_REMOTE_*, options as flags", () => {
  const c = client([], {
    ...SS_LOCAL_ENV,
    SS_PLUGIN_OPTIONS: "key=se\\;cr\\=et;crypt=aes-128;mode=fast3;nocomp;ds=5;ps=2;conn=0x2",
  });
  assertEquals([c.localaddr, c.remoteaddr], ["127.0.0.1:40123", "203.0.113.7:8388"]);
  assertEquals(c.localAddress.kind === "inet" && c.localAddress.minPort, 40123);
  assertEquals(c.key, "se;cr=et");
  assertEquals([c.crypt, c.mode, c.nocomp], ["aes-128", "fast3", true]);
  assertEquals([c.nodelay, c.interval, c.resend, c.nc], [1, 10, 2, 1]);
  assertEquals([c.datashard, c.parityshard, c.conn], [5, 2, 2]);
  assertEquals([c.sources.localaddr, c.sources.key, c.sources.datashard], [
    "plugin",
    "plugin",
    "plugin",
  ]);
  assertEquals(c.sources.interval, "mode");
  assertEquals(c.sources.mtu, "default");
  // The startup log says where the addresses came from and which options were given, never
  // their values (the key).
  const note = c.warnings[0];
  assertEquals(
    note,
    "shadowsocks plugin (SIP003) for ss-local: -l 127.0.0.1:40123, -r 203.0.113.7:8388; " +
      "from SS_PLUGIN_OPTIONS: key crypt mode nocomp ds ps conn",
  );
  const lines = startupLines(c, { sources: true });
  assert(lines.includes(note));
  assert(!lines.some((l) => l.includes("se;cr=et")), "the key is not logged");
  assert(lines.some((l) => l.startsWith("listening on: 127.0.0.1:40123")));
  const sources = describeSources(c);
  assertEquals(
    sources,
    "settings from shadowsocks plugin environment: key crypt mode datashard parityshard nocomp " +
      "localaddr remoteaddr conn; mode: nodelay interval resend nc",
  );
});

Deno.test("sip003: server takes -l from SS_REMOTE_*, -t from SS_LOCAL_*", () => {
  const s = server([], { ...SS_SERVER_ENV, SS_PLUGIN_OPTIONS: "key=k;smuxver=2;QPP;QPPCount=7" });
  assertEquals([s.listen, s.target], ["0.0.0.0:8388", "127.0.0.1:40456"]);
  assertEquals(s.listenAddress.minPort, 8388);
  assertEquals([s.key, s.smuxver, s.qpp, s.qppcount], ["k", 2, true, 7]);
  assertEquals(
    s.warnings[0],
    "shadowsocks plugin (SIP003) for ss-server: -l 0.0.0.0:8388, -t 127.0.0.1:40456; " +
      "from SS_PLUGIN_OPTIONS: key smuxver QPP QPPCount",
  );
  // The far side may be given as an option (a port range ss cannot express); the last note
  // shows what is used.
  const range = server([], { ...SS_SERVER_ENV, SS_PLUGIN_OPTIONS: "listen=:29900-29910" });
  assertEquals([range.listenAddress.minPort, range.listenAddress.maxPort], [29900, 29910]);
  assert(range.warnings[0].includes("-l :29900-29910, -t 127.0.0.1:40456"));
  const c = client([], { ...SS_LOCAL_ENV, SS_PLUGIN_OPTIONS: "r=vps:4000-4010" });
  assertEquals([c.remoteAddress.minPort, c.remoteAddress.maxPort], [4000, 4010]);
  assertEquals(c.sources.remoteaddr, "plugin");
});

Deno.test("sip003: the plugin environment overrides flags and the -c file; -mode still wins", () => {
  const files = {
    "/etc/k.json": '{"key": "from-file", "mtu": 1200, "sndwnd": 256, "mode": "fast"}',
  };
  const c = client(
    ["-c", "/etc/k.json", "-key", "from-flag", "-l", ":9999", "-r", "x:1", "-rcvwnd", "1000"],
    { ...SS_LOCAL_ENV, SS_PLUGIN_OPTIONS: "key=from-plugin;mtu=1300;mode=normal;interval=99" },
    files,
  );
  assertEquals(c.key, "from-plugin");
  assertEquals([c.localaddr, c.remoteaddr], ["127.0.0.1:40123", "203.0.113.7:8388"]);
  assertEquals(c.mtu, 1300);
  assertEquals([c.sndwnd, c.sources.sndwnd], [256, "json"]);
  assertEquals([c.rcvwnd, c.sources.rcvwnd], [1000, "flag"]);
  // The preset comes last, as for flags and the file, and says the option was overridden.
  assertEquals([c.mode, c.interval], ["normal", 40]);
  assert(c.warnings.some((w) => w.includes("the -interval given is ignored")));
  // KCPTUN_KEY is below everything.
  assertEquals(client([], { ...SS_LOCAL_ENV, KCPTUN_KEY: "env" }).key, "env");
  assertEquals(
    client([], { ...SS_LOCAL_ENV, KCPTUN_KEY: "env", SS_PLUGIN_OPTIONS: "key=opt" }).key,
    "opt",
  );
  // The file can be named in the options; its keys then sit under the other options.
  const fromOpt = client(
    [],
    { ...SS_LOCAL_ENV, SS_PLUGIN_OPTIONS: "c=/etc/k.json;mtu=1250" },
    files,
  );
  assertEquals([fromOpt.configFile, fromOpt.key, fromOpt.mtu], ["/etc/k.json", "from-file", 1250]);
});

Deno.test("sip003: bad options are one line naming the option", () => {
  const opts = (o: string) => ({ ...SS_LOCAL_ENV, SS_PLUGIN_OPTIONS: o });
  fatal(
    "client",
    opts("nosuch=1"),
    2,
    'SS_PLUGIN_OPTIONS: option provided but not defined: "nosuch"',
  );
  fatal("client", opts("help"), 2, 'option provided but not defined: "help"');
  fatal("client", opts("conn=many"), 2, 'invalid value "many" for option conn: parse error');
  fatal("client", opts("nocomp=maybe"), 2, 'invalid boolean value "maybe" for option nocomp');
  fatal("client", opts("mtu"), 2, "option mtu needs a value (mtu=...)");
  fatal("client", opts("key=a;key=b"), 2, "option key given twice");
  fatal(
    "client",
    opts("ds=1;datashard=2"),
    2,
    "option datashard given twice (as ds and datashard)",
  );
  fatal("client", opts("l=:1"), 2, "option l cannot be set: ss-local gives that address");
  fatal("server", { ...SS_SERVER_ENV, SS_PLUGIN_OPTIONS: "target=x:1" }, 2, "ss-server gives");
  fatal("client", opts("key=a\\"), 2, "nothing follows the last backslash");
  // Values that parse but fail the setting's check say where they came from.
  fatal("client", opts("conn=0"), 1, "invalid conn 0 (from SS_PLUGIN_OPTIONS): must be between");
  fatal("client", opts("smuxver=3"), 1, "unsupported smux version: 3 (from SS_PLUGIN_OPTIONS)");
  fatal(
    "server",
    { ...SS_SERVER_ENV, SS_LOCAL_PORT: "abc" },
    1,
    'invalid target "127.0.0.1:abc" (from SS_LOCAL_HOST and SS_LOCAL_PORT): port "abc"',
  );
  fatal(
    "client",
    { SS_LOCAL_HOST: "127.0.0.1" },
    1,
    "SS_REMOTE_HOST, SS_REMOTE_PORT, SS_LOCAL_PORT are not set",
  );
  // Command-line mistakes are still reported first.
  const r = parseClientConfig(["-nosuch"], opts("nosuch=1"));
  assert(r.kind === "exit" && r.stderr.includes("flag provided but not defined: -nosuch"));
});

Deno.test("sip003: -V and __android_vpn (shadowsocks-android VPN mode) on the client", () => {
  const plain = client([], {});
  assertEquals(plain.vpn, false);
  const flag = client(["-V"], SS_LOCAL_ENV);
  assertEquals([flag.vpn, flag.sources.vpn], [true, "flag"]);
  const opt = client([], { ...SS_LOCAL_ENV, SS_PLUGIN_OPTIONS: "__android_vpn" });
  assertEquals([opt.vpn, opt.sources.vpn], [true, "plugin"]);
  assert(opt.warnings.some((w) => w.startsWith("-V (shadowsocks-android VPN mode)")));
  // The server has no VPN mode: ss-server never passes it.
  fatal("server", { ...SS_SERVER_ENV, SS_PLUGIN_OPTIONS: "__android_vpn" }, 2, '"__android_vpn"');
  const r = parseServerConfig(["-V"], {});
  assert(r.kind === "exit" && r.code === 2 && r.stderr.includes("-V"));
  // -V is in the client's help, -v is still the version.
  const help = renderHelp("client", CLIENT_FLAGS, "kcptun-client");
  assert(/\n {3}-V {2,}shadowsocks-android VPN mode/.test(help), help);
  assert(!renderHelp("server", SERVER_FLAGS, "kcptun-server").includes("   -V "));
  const v = parseClientConfig(["-v"], {});
  assert(v.kind === "exit" && v.stdout.startsWith("kcptun-ts version"));
});
