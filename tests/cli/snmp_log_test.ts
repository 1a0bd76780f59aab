import { assert, assertEquals } from "../support/assert.ts";
import { Snmp, SNMP_STRUCT_FIELDS } from "../../pipeline/snmp.ts";
import {
  checkSnmpLogPath,
  commandLineMayInspect,
  installSnmpSignal,
  SNMP_DUMP_SIGNALS,
  snmpCsvHeader,
  snmpCsvRow,
  snmpDumpLine,
  snmpExtrasLine,
  type SnmpFiles,
  SnmpLogger,
  snmpLogPath,
  snmpRecordText,
} from "../../cli/snmp_log.ts";
import { goTimeUTC } from "../../cli/go_time.ts";

Deno.test("snmp: the SIGUSR1 line is Go's %+v of the struct", () => {
  const s = new Snmp();
  // kcptun 2021 with all counters zero, captured from the Debian binary (log prefix removed).
  assertEquals(
    snmpDumpLine(s),
    "KCP SNMP:&{BytesSent:0 BytesReceived:0 MaxConn:0 ActiveOpens:0 PassiveOpens:0 CurrEstab:0 InErrs:0 InCsumErrors:0 KCPInErrors:0 InPkts:0 OutPkts:0 InSegs:0 OutSegs:0 InBytes:0 OutBytes:0 RetransSegs:0 FastRetransSegs:0 EarlyRetransSegs:0 LostSegs:0 RepeatSegs:0 FECRecovered:0 FECErrs:0 FECParityShards:0 FECShortShards:0}",
  );
  SNMP_STRUCT_FIELDS.forEach((f, i) => (s[f] = i + 1));
  s.BytesSent = 2 ** 60;
  const line = snmpDumpLine(s);
  assert(line.includes("BytesSent:1152921504606846976 BytesReceived:2 "), line);
  assert(line.endsWith("FECShortShards:24}"), line);
});

Deno.test("snmp: our own counters have a line of their own; kcptun's line and CSV keep theirs", () => {
  const s = new Snmp();
  s.InReplays = 10000;
  assertEquals(snmpExtrasLine(s), "kcptun-ts SNMP:&{InReplays:10000}");
  assert(!snmpDumpLine(s).includes("10000"));
  assert(!snmpCsvHeader().includes("InReplays") && !snmpCsvRow(0, s).includes("10000"));
});

Deno.test("snmp: CSV header and rows in kcptun 2021's order", () => {
  assertEquals(
    snmpCsvHeader(),
    "Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,CurrEstab,InErrs,InCsumErrors,KCPInErrors,InPkts,OutPkts,InSegs,OutSegs,InBytes,OutBytes,RetransSegs,FastRetransSegs,EarlyRetransSegs,LostSegs,RepeatSegs,FECParityShards,FECErrs,FECRecovered,FECShortShards",
  );
  const s = new Snmp();
  s.BytesSent = 1;
  s.FECParityShards = 21;
  s.FECRecovered = 23;
  s.FECShortShards = 24;
  assertEquals(
    snmpCsvRow(1795633106.9, s),
    "1795633106,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,21,0,23,24",
  );
  assertEquals(snmpCsvRow(0, s).split(",").length, 25);
  assertEquals(snmpRecordText(5, new Snmp(), true).split("\n").length, 3);
  assertEquals(
    snmpRecordText(5, new Snmp(), false),
    "5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n",
  );
});

Deno.test("snmp: only the file name part is a layout", () => {
  const t = goTimeUTC(new Date(Date.UTC(2026, 10, 24, 1, 2, 3)));
  assertEquals(snmpLogPath("./snmp-20060102.log", t), "./snmp-20261124.log");
  assertEquals(snmpLogPath("/var/log/2006/kcp-15.csv", t), "/var/log/2006/kcp-01.csv");
  assertEquals(snmpLogPath("snmp.csv", t), "snmp.csv");
  // Digits in a name are tokens too (docs/protocol.md §8.7).
  assertEquals(snmpLogPath("kcp1.csv", t), "kcp11.csv");
});

function memoryFiles(): SnmpFiles & { data: Map<string, string>; fail: boolean } {
  const data = new Map<string, string>();
  const files = {
    data,
    fail: false,
    size: (p: string) => new TextEncoder().encode(data.get(p) ?? "").length,
    append: (p: string, text: string) => {
      if (files.fail) throw new Error("disk full");
      data.set(p, (data.get(p) ?? "") + text);
    },
  };
  return files;
}

Deno.test("snmp logger: header once per file, a row per record, new file when the name changes", () => {
  const files = memoryFiles();
  let now = new Date(Date.UTC(2026, 10, 24, 23, 59, 58));
  const s = new Snmp();
  const errors: string[] = [];
  const logger = new SnmpLogger({
    path: "/logs/snmp-20060102.csv",
    periodSeconds: 60,
    snmp: s,
    now: () => now,
    zone: goTimeUTC,
    files,
    onError: (m) => errors.push(m),
  });
  assert(logger.enabled);
  logger.writeRecord();
  s.InPkts = 5;
  logger.writeRecord();
  now = new Date(Date.UTC(2026, 10, 25, 0, 0, 1));
  logger.writeRecord();
  const day1 = files.data.get("/logs/snmp-20261124.csv")!.split("\n");
  assertEquals(day1.length, 4);
  assertEquals(day1[0], snmpCsvHeader());
  assert(day1[1].startsWith("1795564798,"), day1[1]);
  assertEquals(day1[2].split(",")[10], "5");
  const day2 = files.data.get("/logs/snmp-20261125.csv")!.split("\n");
  assertEquals(day2[0], snmpCsvHeader());
  assert(day2[1].startsWith("1795564801,"), day2[1]);
  files.fail = true;
  logger.writeRecord();
  assertEquals(errors, [
    "snmp logger: /logs/snmp-20261125.csv: disk full (not logged again until a write succeeds)",
  ]);
});

Deno.test("snmp logger: a failure is reported once, and its end once", () => {
  const files = memoryFiles();
  const errors: string[] = [];
  const recovered: string[] = [];
  const logger = new SnmpLogger({
    path: "snmp.csv",
    periodSeconds: 60,
    snmp: new Snmp(),
    files,
    onError: (m) => errors.push(m),
    onRecovered: (m) => recovered.push(m),
  });
  files.fail = true;
  for (let i = 0; i < 5; i++) logger.writeRecord();
  assertEquals(errors.length, 1);
  assert(logger.failing);
  assertEquals(recovered, []);
  files.fail = false;
  logger.writeRecord();
  logger.writeRecord();
  assertEquals(recovered, ["snmp logger: writing snmp.csv again"]);
  assert(!logger.failing);
  // A new failure after the recovery is news again.
  files.fail = true;
  logger.writeRecord();
  logger.writeRecord();
  assertEquals(errors.length, 2);
  assertEquals(files.data.get("snmp.csv")!.split("\n").length, 4); // header, 2 rows, ""
});

Deno.test("snmp logger: real files: the directory goes away and comes back", () => {
  const dir = Deno.makeTempDirSync();
  const lines: string[] = [];
  try {
    const path = `${dir}/sub/snmp.csv`;
    const l = new SnmpLogger({
      path,
      periodSeconds: 60,
      snmp: new Snmp(),
      onError: (m) => lines.push(m),
      onRecovered: (m) => lines.push(m),
    });
    Deno.mkdirSync(`${dir}/sub`);
    l.writeRecord();
    Deno.removeSync(`${dir}/sub`, { recursive: true });
    for (let i = 0; i < 3; i++) l.writeRecord();
    Deno.mkdirSync(`${dir}/sub`);
    l.writeRecord();
    assertEquals(lines, [
      `snmp logger: ${path}: no such file or directory (not logged again until a write succeeds)`,
      `snmp logger: writing ${path} again`,
    ]);
    assertEquals(Deno.readTextFileSync(path).split("\n")[0], snmpCsvHeader());
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("snmp logger: startup check of the path, like -log's", () => {
  const dir = Deno.makeTempDirSync();
  const t = new Date(Date.UTC(2026, 10, 24, 12));
  try {
    // A missing directory: one error naming the flag, the path and the file for now.
    let message = "";
    try {
      checkSnmpLogPath(`${dir}/nope/snmp-20060102.log`, t, goTimeUTC);
    } catch (e) {
      message = (e as Error).message;
    }
    assertEquals(
      message,
      `-snmplog ${dir}/nope/snmp-20060102.log: ${dir}/nope/snmp-20261124.log: ` +
        "no such file or directory",
    );
    // A writable place passes and leaves nothing behind (the first row creates the file).
    checkSnmpLogPath(`${dir}/snmp-20060102.log`, t, goTimeUTC);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
    // An existing file passes and is left as it was.
    Deno.writeTextFileSync(`${dir}/kept.csv`, "x\n");
    checkSnmpLogPath(`${dir}/kept.csv`, t, goTimeUTC);
    assertEquals(Deno.readTextFileSync(`${dir}/kept.csv`), "x\n");
    // A directory where the file should be.
    Deno.mkdirSync(`${dir}/adir`);
    message = "";
    try {
      checkSnmpLogPath(`${dir}/adir`, t, goTimeUTC);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.startsWith(`-snmplog ${dir}/adir: ${dir}/adir: `), message);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("snmp logger: disabled without a path or a positive period", () => {
  const files = memoryFiles();
  for (const [path, periodSeconds] of [["", 60], ["x.csv", 0], ["x.csv", -1]] as const) {
    const l = new SnmpLogger({ path, periodSeconds, snmp: new Snmp(), files });
    assert(!l.enabled);
    l.start();
    assert(!l.running);
    l.stop();
  }
  assertEquals(files.data.size, 0);
});

Deno.test("snmp logger: timer writes each period; stop writes a final row unless told not to", async () => {
  const files = memoryFiles();
  const logger = new SnmpLogger({
    path: "x.csv",
    periodSeconds: 0.01,
    snmp: new Snmp(),
    zone: goTimeUTC,
    files,
  });
  logger.start();
  logger.start(); // idempotent
  assert(logger.running);
  // Wait (bounded) for at least one tick; counts, not timing, are asserted.
  for (let i = 0; i < 200 && (files.data.get("x.csv") ?? "").split("\n").length < 3; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const ticks = files.data.get("x.csv")!.split("\n").length - 2;
  assert(ticks >= 1, "at least one timed row");
  logger.stop();
  assert(!logger.running);
  const after = files.data.get("x.csv")!.split("\n").length - 2;
  assert(after >= ticks + 1, "stop wrote a final row");
  logger.stop(); // idempotent, no extra row
  assertEquals(files.data.get("x.csv")!.split("\n").length - 2, after);

  const quiet = new SnmpLogger({ path: "y.csv", periodSeconds: 3600, snmp: new Snmp(), files });
  quiet.start();
  quiet.stop({ finalRecord: false });
  assertEquals(files.data.has("y.csv"), false);
});

Deno.test("snmp logger: real files, header only when empty", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/snmp.csv`;
    const l = new SnmpLogger({ path, periodSeconds: 60, snmp: new Snmp(), zone: goTimeUTC });
    l.writeRecord();
    l.writeRecord();
    const lines = Deno.readTextFileSync(path).split("\n");
    assertEquals(lines.length, 4);
    assertEquals(lines[0], snmpCsvHeader());
    assertEquals(lines[3], "");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("snmp: both kcptun's SIGUSR1 and SIGUSR2 dump by default", () => {
  assertEquals([...SNMP_DUMP_SIGNALS], ["SIGUSR1", "SIGUSR2"]);
});

Deno.test("snmp: the dump signal logs the line and can be removed", async () => {
  // SIGUSR2, not SIGUSR1: under deno run, SIGUSR1 would also start this test runner's inspector.
  const lines: string[] = [];
  const s = new Snmp();
  s.InPkts = 9;
  const remove = installSnmpSignal((l) => lines.push(l), s, ["SIGUSR2"]);
  try {
    Deno.kill(Deno.pid, "SIGUSR2");
    for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  } finally {
    remove();
  }
  assertEquals(lines, [snmpDumpLine(s)]);
  assert(lines[0].includes(" InPkts:9 "));
  // Unsupported signals are skipped rather than thrown.
  installSnmpSignal(() => {}, s, ["SIGKILL"])();
});

Deno.test("snmp: node:inspector is asked only when the command line may have opened one", () => {
  const may = commandLineMayInspect;
  assertEquals(may(["deno", "run", "-A", "cli/server.ts", "-l", ":29900"]), false);
  assertEquals(may(["/usr/bin/deno", "task", "server"]), false);
  assertEquals(may(["deno", "run", "--inspect", "-A", "cli/server.ts"]), true);
  assertEquals(may(["deno", "run", "--inspect-brk=127.0.0.1:0", "cli/server.ts"]), true);
  assertEquals(may(["/opt/deno", "test", "--inspect-wait", "-A"]), true);
  // A compiled binary may have the flag built in; an unreadable command line says nothing.
  assertEquals(may(["./kcptun-server", "-l", ":29900"]), true);
  assertEquals(may(["denoise", "run"]), true);
  assertEquals(may([]), true);
});

Deno.test("snmp logger: reconfigure takes a new path and period, starts and stops the timer", async () => {
  const files = memoryFiles();
  const l = new SnmpLogger({ path: "", periodSeconds: 60, snmp: new Snmp(), files });
  l.start();
  assert(!l.running, "no path: no timer");
  l.reconfigure("a.csv", 0.01);
  assert(l.running, "a reload that gives a path starts the timer");
  assertEquals([l.path, l.periodSeconds], ["a.csv", 0.01]);
  for (let i = 0; i < 400 && !files.data.has("a.csv"); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert(files.data.has("a.csv"), "rows at the new period");
  l.reconfigure("a.csv", 0);
  assert(!l.running, "period 0 stops it");
  const rows = files.data.get("a.csv")!;
  l.reconfigure("b.csv", 3600);
  assert(l.running);
  l.writeRecord();
  assert(files.data.has("b.csv"), "rows go to the new path");
  assertEquals(files.data.get("a.csv"), rows, "no final row when a reload disables the file");
  l.stop({ finalRecord: false });
  l.reconfigure("c.csv", 0.01);
  assert(!l.running, "a stopped logger stays stopped");
});
