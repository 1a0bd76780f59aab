import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  type FlagSpec,
  goQuote,
  parseArgs,
  parseGoBool,
  parseGoInt,
  UsageError,
} from "../../cli/flags.ts";

const SPECS: FlagSpec[] = [
  { names: ["localaddr", "l"], kind: "string", defaultValue: ":12948", usage: "" },
  { names: ["key"], kind: "string", defaultValue: "it's a secrect", usage: "", env: "KCPTUN_KEY" },
  { names: ["conn"], kind: "int", defaultValue: 1, usage: "" },
  { names: ["mtu"], kind: "int", defaultValue: 1350, usage: "" },
  { names: ["datashard", "ds"], kind: "int", defaultValue: 10, usage: "" },
  { names: ["nocomp"], kind: "bool", defaultValue: false, usage: "" },
  { names: ["quiet"], kind: "bool", defaultValue: false, usage: "" },
  { names: ["QPP"], kind: "bool", defaultValue: false, usage: "" },
  { names: ["c"], kind: "string", defaultValue: "", usage: "" },
];

function parse(argv: string[], env: Record<string, string> = {}) {
  return parseArgs(SPECS, argv, env);
}

function usageError(argv: string[], includes: string, env: Record<string, string> = {}) {
  return assertThrows(() => parse(argv, env), UsageError, includes);
}

Deno.test("flags: every spelling of a valued flag", () => {
  for (
    const argv of [
      ["-conn", "3"],
      ["--conn", "3"],
      ["-conn=3"],
      ["--conn=3"],
    ]
  ) {
    const p = parse(argv);
    assertEquals(p.values.get("conn"), 3, argv.join(" "));
    assertEquals(p.sources.get("conn"), "flag");
  }
  assertEquals(parse([]).values.get("conn"), 1);
  assertEquals(parse([]).sources.get("conn"), "default");
});

Deno.test("flags: aliases take one or two dashes and land on the canonical name", () => {
  for (const argv of [["-l", ":1"], ["--l", ":1"], ["-localaddr", ":1"], ["--localaddr=:1"]]) {
    assertEquals(parse(argv).values.get("localaddr"), ":1");
  }
  assertEquals(parse(["--ds", "4"]).values.get("datashard"), 4);
  assertEquals(parse(["-ds=4"]).spelled.get("datashard"), "ds");
  assertEquals(parse(["-c", "x.json"]).values.get("c"), "x.json");
  assertEquals(parse(["--c=x.json"]).values.get("c"), "x.json");
});

Deno.test("flags: booleans never consume the next argument; =value uses Go's ParseBool", () => {
  assertEquals(parse(["-nocomp"]).values.get("nocomp"), true);
  assertEquals(parse(["-nocomp", "-quiet"]).values.get("quiet"), true);
  for (const t of ["1", "t", "T", "TRUE", "true", "True"]) {
    assertEquals(parse([`-nocomp=${t}`]).values.get("nocomp"), true, t);
  }
  for (const f of ["0", "f", "F", "FALSE", "false", "False"]) {
    assertEquals(parse([`--nocomp=${f}`]).values.get("nocomp"), false, f);
  }
  usageError(["-nocomp=maybe"], 'invalid boolean value "maybe" for -nocomp: parse error');
  usageError(["-nocomp="], 'invalid boolean value "" for -nocomp: parse error');
  usageError(["-nocomp=yes"], "for -nocomp");
});

Deno.test("flags: a bare boolean followed by a boolean word is refused with the fix", () => {
  const e = usageError(
    ["-nocomp", "false", "-l", ":1"],
    'unexpected argument "false" after -nocomp',
  );
  assert(e.message.includes("write -nocomp=false"), e.message);
});

Deno.test("flags: a valued flag consumes the next argument whatever it looks like", () => {
  assertEquals(parse(["-key", "-secret"]).values.get("key"), "-secret");
  assertEquals(parse(["-mtu", "-5"]).values.get("mtu"), -5);
  assertEquals(parse(["-key", "--"]).values.get("key"), "--");
  usageError(["-conn", "-l"], 'invalid value "-l" for flag -conn: parse error');
  assertEquals(parse(["-key=a=b"]).values.get("key"), "a=b");
  assertEquals(parse(["-key="]).values.get("key"), "");
});

Deno.test("flags: Go base-0 integers", () => {
  const cases: [string, number][] = [
    ["0x10", 16],
    ["0X1f", 31],
    ["010", 8],
    ["0o17", 15],
    ["0O17", 15],
    ["0b101", 5],
    ["1_000", 1000],
    ["0x_10", 16],
    ["0_7", 7],
    ["+5", 5],
    ["-5", -5],
    ["-0x10", -16],
    ["0", 0],
    ["00", 0],
    ["9007199254740991", Number.MAX_SAFE_INTEGER],
  ];
  for (const [text, n] of cases) assertEquals(parseGoInt(text), n, text);
  for (
    const bad of [
      "",
      "+",
      "-",
      "abc",
      "1.5",
      "1e3",
      "0x",
      "08",
      "0b2",
      "_1",
      "1_",
      "1__0",
      "0x_",
      " 1",
      "1 ",
      "--1",
    ]
  ) {
    assertEquals(parseGoInt(bad), "parse error", JSON.stringify(bad));
  }
  for (
    const big of [
      "99999999999999999999",
      "9223372036854775808",
      "9007199254740992",
      "-9007199254740992",
    ]
  ) {
    assertEquals(parseGoInt(big), "value out of range", big);
  }
  assertEquals(parse(["-mtu", "0x10"]).values.get("mtu"), 16);
  assertEquals(parse(["-mtu=010"]).values.get("mtu"), 8);
  usageError(["-mtu", "99999999999999999999"], "value out of range");
  usageError(["-mtu="], 'invalid value "" for flag -mtu: parse error');
});

Deno.test("flags: integers written in any Go base parse back (fast-check)", () => {
  const n = fc.integer({ min: -1_000_000_000, max: 1_000_000_000 });
  fc.assert(
    fc.property(n, fc.constantFrom(2, 8, 10, 16), fc.boolean(), (v, base, underscore) => {
      const digits = Math.abs(v).toString(base);
      const spaced = underscore && digits.length > 1 ? digits.split("").join("_") : digits;
      const prefix = base === 2 ? "0b" : base === 8 ? "0o" : base === 16 ? "0x" : "";
      const text = (v < 0 ? "-" : "") + prefix + spaced;
      assertEquals(parseGoInt(text), v, text);
    }),
    { seed: 7, numRuns: 1000 },
  );
});

Deno.test("flags: ParseBool accepts exactly Go's spellings", () => {
  assertEquals(parseGoBool("TrUe"), undefined);
  assertEquals(parseGoBool("yes"), undefined);
  assertEquals(parseGoBool("T"), true);
  assertEquals(parseGoBool("F"), false);
});

Deno.test("flags: names are case-sensitive; unknown flags and bad syntax are named", () => {
  assertEquals(parse(["-QPP"]).values.get("QPP"), true);
  usageError(["-qpp"], "flag provided but not defined: -qpp");
  usageError(["-Conn", "3"], "flag provided but not defined: -Conn");
  usageError(["--nosuch=1"], "flag provided but not defined: -nosuch");
  usageError(["---mtu", "3"], "bad flag syntax: ---mtu");
  usageError(["-=x"], "bad flag syntax: -=x");
  usageError(["--=x"], "bad flag syntax: --=x");
  usageError(["-mtu"], "flag needs an argument: -mtu");
  usageError(["-l", ":1", "-key"], "flag needs an argument: -key");
});

Deno.test("flags: a repeated flag keeps the last value; two aliases together are refused", () => {
  assertEquals(parse(["-mtu", "1", "-mtu", "2"]).values.get("mtu"), 2);
  assertEquals(parse(["-ds", "1", "--ds=2"]).values.get("datashard"), 2);
  usageError(
    ["-ds", "1", "-datashard", "2"],
    "cannot use two forms of the same flag: -datashard and -ds",
  );
  usageError(["-l", ":1", "--localaddr", ":2"], "-localaddr and -l");
});

Deno.test("flags: -- ends the flags; stray arguments are errors except help/h", () => {
  assertEquals(parse(["-mtu", "7", "--"]).values.get("mtu"), 7);
  usageError(["--", "-mtu", "5"], 'unexpected argument "-mtu"');
  usageError(["foo", "-mtu", "77"], 'unexpected argument "foo"');
  usageError(["-"], 'unexpected argument "-"');
  assertEquals(parse(["help"]).args, ["help"]);
  assertEquals(parse(["-mtu", "3", "h"]).args, ["h"]);
  // A boolean word after -- is not blamed on the boolean before it.
  const e = usageError(["-nocomp", "--", "false"], 'unexpected argument "false"');
  assert(!e.message.includes("write -nocomp"), e.message);
});

Deno.test("flags: KCPTUN_KEY sets the default; the command line wins; empty counts", () => {
  assertEquals(parse([], { KCPTUN_KEY: "env-key" }).values.get("key"), "env-key");
  assertEquals(parse([], { KCPTUN_KEY: "env-key" }).sources.get("key"), "env");
  assertEquals(parse(["-key", "cli"], { KCPTUN_KEY: "env-key" }).values.get("key"), "cli");
  assertEquals(parse([], { KCPTUN_KEY: "" }).values.get("key"), "");
  assertEquals(
    parseArgs(SPECS, [], (n) => n === "KCPTUN_KEY" ? "fn" : undefined).values.get("key"),
    "fn",
  );
  assertEquals(parse([]).values.get("key"), "it's a secrect");
});

Deno.test("flags: env values of int and bool flags are checked", () => {
  const specs: FlagSpec[] = [
    { names: ["n"], kind: "int", defaultValue: 0, usage: "", env: "N" },
    { names: ["b"], kind: "bool", defaultValue: false, usage: "", env: "B" },
  ];
  assertEquals(parseArgs(specs, [], { N: "0x20" }).values.get("n"), 32);
  assertEquals(parseArgs(specs, [], { B: "" }).values.get("b"), false);
  assertEquals(parseArgs(specs, [], { B: "1" }).values.get("b"), true);
  assertThrows(() => parseArgs(specs, [], { N: "x" }), UsageError, "could not parse");
  assertThrows(() => parseArgs(specs, [], { B: "x" }), UsageError, "as bool value");
});

Deno.test("flags: goQuote escapes like strconv.Quote", () => {
  assertEquals(goQuote(`a"b\\c`), `"a\\"b\\\\c"`);
  assertEquals(goQuote("\n\t\x01\x7f"), '"\\n\\t\\x01\\x7f"');
  assertEquals(goQuote("日本"), '"日本"');
});
