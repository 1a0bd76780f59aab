import { assert, assertEquals } from "../support/assert.ts";
import { parseClientConfig, parseServerConfig } from "../../cli/config.ts";
import {
  compareConfigs,
  describeChange,
  newWarnings,
  RELOADABLE_SETTINGS,
} from "../../cli/reload.ts";
import type { AnyConfig } from "../../cli/reload.ts";

function server(json: Record<string, unknown>, args: string[] = []): AnyConfig {
  const text = JSON.stringify(json);
  const r = parseServerConfig([...args, "-c", "s.json"], {}, { readFile: () => text });
  if (r.kind !== "run") throw new Error(r.stderr);
  return r.config;
}

Deno.test("reload: the reloadable settings are the log, the SNMP file and -quiet", () => {
  assertEquals([...RELOADABLE_SETTINGS].sort(), ["log", "quiet", "snmplog", "snmpperiod"]);
});

Deno.test("reload: an unchanged file changes nothing", () => {
  const a = server({ listen: ":4000", mtu: 1200, pipeline: ["tcp", "smux", "kcp", "fec", "udp"] });
  const b = server({ listen: ":4000", mtu: 1200, pipeline: ["tcp", "smux", "kcp", "fec", "udp"] });
  assertEquals(compareConfigs(a, b), { reloadable: [], restart: [] });
});

Deno.test("reload: reloadable changes carry their values; others only their JSON names", () => {
  const a = server({ quiet: false, snmpperiod: 60, key: "old secret", mtu: 1350 });
  const b = server({
    quiet: true,
    snmpperiod: 10,
    log: "/var/log/k.log",
    key: "new secret",
    mtu: 1200,
    "qpp-count": 7,
    pipelineOptions: { kcp: { mtu: 1000 } },
  });
  const diff = compareConfigs(a, b);
  assertEquals(diff.reloadable.map(describeChange), [
    "snmpperiod 60 -> 10",
    'log "" -> "/var/log/k.log"',
    "quiet false -> true",
  ]);
  // Table order, JSON spelling, and no value anywhere: a key must not reach the log.
  assertEquals(diff.restart, ["key", "qpp-count", "mtu", "pipelineOptions"]);
  assert(!JSON.stringify(diff.restart).includes("secret"));
});

Deno.test("reload: a -mode preset in the file changes the KCP parameters it sets", () => {
  // fast (0 30 2 1) to fast3 (1 10 2 1): resend and nc stay.
  const diff = compareConfigs(server({ mode: "fast" }), server({ mode: "fast3" }));
  assertEquals(diff.reloadable, []);
  assertEquals(diff.restart, ["mode", "nodelay", "interval"]);
});

Deno.test("reload: client settings, and flags the file does not override stay equal", () => {
  const parse = (json: string) => {
    const r = parseClientConfig(["-r", "127.0.0.1:4000", "-conn", "2", "-c", "c.json"], {}, {
      readFile: () => json,
    });
    if (r.kind !== "run") throw new Error(r.stderr);
    return r.config;
  };
  const diff = compareConfigs(parse('{"quiet": true}'), parse('{"conn": 3, "autoexpire": 60}'));
  assertEquals(diff.reloadable.map(describeChange), ["quiet true -> false"]);
  assertEquals(diff.restart, ["conn", "autoexpire"]);
});

Deno.test("reload: warnings the new file brings, not the ones the running config had", () => {
  const a = server({ comment: "x" });
  const b = server({ comment: "x", quite: true });
  assertEquals(newWarnings(a, b), [
    'config file s.json: ignoring unknown keys: "comment", "quite"',
  ]);
  assertEquals(newWarnings(a, server({ comment: "x" })), []);
});
