/**
 * The interop matrix (issue 7): every case runs our client against Go's server or Go's client
 * against our server, 4 MiB or more of seeded random data through 8 (or more) parallel streams,
 * each echo checked by sha256. `docs/interop.md` lists these cases (regenerate its table with
 * `deno run -A tests/interop/doc_table.ts`; `docs_test.ts` checks it is current).
 *
 * Case names read `<topic> <client>→<server>`: `ts→go` is our client with Go's server.
 *
 * @module
 */

import { CRYPT_METHODS_2021 } from "../../transforms/crypt/mod.ts";
import {
  BYTES_PER_STREAM,
  type CaseSpec,
  expectLine,
  freePortRange,
  type Impl,
  type Proc,
  startServer,
  STREAMS,
  waitUdpBound,
} from "./harness.ts";

/** The two directions: [client, server]. */
export const DIRECTIONS: ReadonlyArray<readonly [Impl, Impl]> = [["ts", "go"], ["go", "ts"]];

function dir(client: Impl, server: Impl): string {
  return `${client}→${server}`;
}

/** The 2021 crypt methods (Debian's kcptun 20210922 knows exactly these). */
export const CRYPTS_2021 = CRYPT_METHODS_2021;

function both(...lines: string[]): { client: string[]; server: string[] } {
  return { client: lines, server: lines };
}

function assertLog(p: Proc, needle: string, times: number): void {
  const n = p.count(needle);
  if (n !== times) {
    throw new Error(`${p.label}: expected ${times}x ${JSON.stringify(needle)}, saw ${n}`);
  }
}

/** Crypt methods: each in both directions. */
export function cryptCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const m of CRYPTS_2021) {
    for (const [c, s] of DIRECTIONS) {
      out.push({
        name: `crypt ${m} ${dir(c, s)}`,
        proves: `-crypt ${m} encrypts and checks datagrams exactly as Go does`,
        client: c,
        server: s,
        flags: ["-crypt", m],
        expect: both(`encryption: ${m}`),
      });
    }
  }
  return out;
}

/** FEC shapes, matched and mismatched, both directions. */
export function fecCases(): CaseSpec[] {
  const shapes: Array<
    { tag: string; client: [number, number]; server: [number, number]; proves: string }
  > = [
    { tag: "10/3", client: [10, 3], server: [10, 3], proves: "kcptun's default FEC shards" },
    { tag: "0/0", client: [0, 0], server: [0, 0], proves: "no FEC framing at all" },
    { tag: "7/2", client: [7, 2], server: [7, 2], proves: "an odd shard pair" },
    {
      tag: "client 10/3 server 0/0",
      client: [10, 3],
      server: [0, 0],
      proves: "mismatched FEC: one end sends FEC framing, the other bare KCP",
    },
    {
      tag: "client 4/2 server 10/3",
      client: [4, 2],
      server: [10, 3],
      proves: "mismatched FEC: different shard counts each way",
    },
  ];
  const out: CaseSpec[] = [];
  for (const f of shapes) {
    for (const [c, s] of DIRECTIONS) {
      out.push({
        name: `fec ${f.tag} ${dir(c, s)}`,
        proves: f.proves,
        client: c,
        server: s,
        clientFlags: ["-ds", String(f.client[0]), "-ps", String(f.client[1])],
        serverFlags: ["-ds", String(f.server[0]), "-ps", String(f.server[1])],
        expect: {
          client: [`datashard: ${f.client[0]} parityshard: ${f.client[1]}`],
          server: [`datashard: ${f.server[0]} parityshard: ${f.server[1]}`],
        },
      });
    }
  }
  return out;
}

/** Compression on (default) and off, and smux v2, both directions. */
export function streamCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const [c, s] of DIRECTIONS) {
    out.push({
      name: `comp compressible ${dir(c, s)}`,
      proves: "snappy framing with data that compresses (Go writes compressed chunks)",
      client: c,
      server: s,
      flags: ["-nocomp=false"],
      compressible: true,
      expect: both("compression: true"),
    });
    out.push({
      name: `nocomp ${dir(c, s)}`,
      proves: "-nocomp: bare smux frames over KCP",
      client: c,
      server: s,
      flags: ["-nocomp"],
      expect: both("compression: false"),
    });
    out.push({
      name: `smuxver 2 ${dir(c, s)}`,
      proves: "smux v2 (UPD window updates) with compression",
      client: c,
      server: s,
      flags: ["-smuxver", "2"],
      expect: both("smux version: 2", "compression: true"),
    });
    out.push({
      name: `smuxver 2 nocomp ${dir(c, s)}`,
      proves: "smux v2 without snappy",
      client: c,
      server: s,
      flags: ["-smuxver", "2", "-nocomp"],
      expect: both("smux version: 2", "compression: false"),
    });
  }
  return out;
}

/** `-mode` presets and manual parameters, both directions. */
export function modeCases(): CaseSpec[] {
  const modes: Array<{ tag: string; flags: string[]; nodelay: string; proves: string }> = [
    { tag: "normal", flags: ["-mode", "normal"], nodelay: "0 40 2 1", proves: "nodelay 0 40 2 1" },
    { tag: "fast", flags: ["-mode", "fast"], nodelay: "0 30 2 1", proves: "nodelay 0 30 2 1" },
    { tag: "fast2", flags: ["-mode", "fast2"], nodelay: "1 20 2 1", proves: "nodelay 1 20 2 1" },
    { tag: "fast3", flags: ["-mode", "fast3"], nodelay: "1 10 2 1", proves: "nodelay 1 10 2 1" },
    {
      tag: "manual",
      flags: ["-mode", "manual", "-nodelay", "1", "-interval", "15", "-resend", "3", "-nc", "1"],
      nodelay: "1 15 3 1",
      proves: "explicit -nodelay 1 -interval 15 -resend 3 -nc 1",
    },
  ];
  const out: CaseSpec[] = [];
  for (const m of modes) {
    for (const [c, s] of DIRECTIONS) {
      out.push({
        name: `mode ${m.tag} ${dir(c, s)}`,
        proves: `-mode ${m.tag}: ${m.proves}`,
        client: c,
        server: s,
        flags: m.flags,
        expect: both(`nodelay parameters: ${m.nodelay}`),
      });
    }
  }
  return out;
}

/** -conn 3, JSON configs, unix-socket targets, port ranges. */
export function topologyCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const [c, s] of DIRECTIONS) {
    out.push({
      name: `conn 3 ${dir(c, s)}`,
      proves: "-conn 3: streams spread round-robin over three KCP sessions (server saw 3)",
      client: c,
      server: s,
      clientFlags: ["-conn", "3"],
      check: ({ servers }) => assertLog(servers[0], "remote address:", 3),
    });
  }
  // JSON on both sides; flags the file overrides prove the file wins.
  out.push({
    name: `json config ${dir("ts", "go")}`,
    proves: "-c JSON on both sides (crypt, mode, FEC, nocomp, smuxver, windows; flags overridden)",
    client: "ts",
    server: "go",
    flags: ["-crypt", "tea", "-nocomp=false"],
    clientJson: {
      crypt: "salsa20",
      mode: "fast2",
      nocomp: true,
      smuxver: 2,
      datashard: 5,
      parityshard: 1,
      sndwnd: 256,
      rcvwnd: 256,
      mtu: 1200,
    },
    serverJson: { crypt: "salsa20", mode: "fast2", nocomp: true, smuxver: 2, sndwnd: 512 },
    expect: {
      client: [
        "encryption: salsa20",
        "nodelay parameters: 1 20 2 1",
        "compression: false",
        "smux version: 2",
        "datashard: 5 parityshard: 1",
        "sndwnd: 256 rcvwnd: 256",
        "mtu: 1200",
      ],
      server: [
        "encryption: salsa20",
        "nodelay parameters: 1 20 2 1",
        "compression: false",
        "smux version: 2",
        "sndwnd: 512 rcvwnd: 1024",
      ],
    },
  });
  out.push({
    name: `json config ${dir("go", "ts")}`,
    proves: "-c JSON on both sides, case-insensitive keys (crypt, mode, FEC, nocomp, smuxver)",
    client: "go",
    server: "ts",
    flags: ["-crypt", "tea"],
    clientJson: { crypt: "cast5", mode: "fast3", nocomp: true, smuxver: 2, datashard: 3 },
    serverJson: { Crypt: "cast5", MODE: "normal", NoComp: true, smuxver: 2, parityshard: 0 },
    expect: {
      client: [
        "encryption: cast5",
        "nodelay parameters: 1 10 2 1",
        "compression: false",
        "smux version: 2",
        "datashard: 3 parityshard: 3",
      ],
      server: [
        "encryption: cast5",
        "nodelay parameters: 0 40 2 1",
        "compression: false",
        "smux version: 2",
        "datashard: 10 parityshard: 0",
      ],
    },
  });
  for (const [c, s] of DIRECTIONS) {
    out.push({
      name: `unix target ${dir(c, s)}`,
      proves: "server -t /path: streams reach a unix-socket target",
      client: c,
      server: s,
      target: "unix",
      check: ({ servers, target }) => expectLine(servers[0], `target: ${target.address}`),
    });
  }
  out.push({
    name: `unix listen ${dir("ts", "go")}`,
    proves: "our client listening on a unix socket (-l /path, a 2026 feature) with Go's server",
    client: "ts",
    server: "go",
    unixEntry: true,
    check: ({ client }) => {
      if (!/listening on: \/\S+\/c\.sock/.test(client.output())) {
        throw new Error("the client did not listen on the socket path");
      }
    },
  });
  out.push({
    name: `port range client ts→go×3`,
    proves: "our -r 127.0.0.1:P-P+2 with -conn 36: sessions spread over three Go servers",
    client: "ts",
    server: "go",
    clientFlags: ["-conn", "36"],
    streams: 36,
    bytesPerStream: 128 * 1024,
    servers: async ({ target, key }) => {
      const base = freePortRange(3);
      const procs: Proc[] = [];
      for (let i = 0; i < 3; i++) {
        const p = startServer(
          "go",
          ["-l", `127.0.0.1:${base + i}`, "-t", target.address, "-key", key],
          `go server :${base + i}`,
        );
        procs.push(p);
      }
      for (let i = 0; i < 3; i++) await waitUdpBound(procs[i], base + i);
      return { procs, remote: `127.0.0.1:${base}-${base + 2}` };
    },
    check: ({ servers }) => {
      const n = servers.map((p) => p.count("remote address:"));
      if (n.some((x) => x === 0) || n.reduce((a, b) => a + b) !== 36) {
        throw new Error(`sessions per Go server ${n.join("/")}: want all > 0, sum 36`);
      }
    },
  });
  out.push({
    name: `port range server go→ts`,
    proves: "Go's client against the middle port of our -l 127.0.0.1:P-P+2 server",
    client: "go",
    server: "ts",
    servers: async ({ target, key }) => {
      const base = freePortRange(3);
      const p = startServer("ts", [
        "-l",
        `127.0.0.1:${base}-${base + 2}`,
        "-t",
        target.address,
        "-key",
        key,
      ]);
      for (let i = 0; i < 3; i++) await waitUdpBound(p, base + i);
      return { procs: [p], remote: `127.0.0.1:${base + 1}` };
    },
    check: ({ servers }) => assertLog(servers[0], "remote address:", 1),
  });
  return out;
}

/** Tuning flags and load shapes beyond the list, both directions. */
export function tuningCases(): CaseSpec[] {
  const shapes: Array<Omit<CaseSpec, "client" | "server"> & { tag: string }> = [
    {
      tag: "mtu 576",
      name: "",
      proves: "small datagrams (-mtu 576): more segments per stream, FEC shards of 576 bytes",
      flags: ["-mtu", "576"],
      expect: both("mtu: 576"),
    },
    {
      tag: "mtu 1500",
      name: "",
      proves: "the largest datagrams kcp-go accepts",
      flags: ["-mtu", "1500"],
      expect: both("mtu: 1500"),
    },
    {
      tag: "windows 32",
      name: "",
      proves: "-sndwnd 32 -rcvwnd 32: KCP flow control with small windows both ways",
      flags: ["-sndwnd", "32", "-rcvwnd", "32"],
      expect: both("sndwnd: 32 rcvwnd: 32"),
    },
    {
      tag: "smuxver 2 streambuf 64k",
      name: "",
      proves: "smux v2 per-stream flow control with a 64 KiB window (many UPD frames)",
      flags: ["-smuxver", "2", "-streambuf", "65536", "-smuxbuf", "1048576"],
      expect: both("streambuf: 65536"),
    },
    {
      tag: "acknodelay",
      name: "",
      proves: "-acknodelay: ACKs flushed at once",
      flags: ["-acknodelay"],
      expect: both("acknodelay: true"),
    },
    {
      tag: "ipv6 [::1]",
      name: "",
      proves: "the UDP side over IPv6 loopback (server -l [::1]:P, client -r [::1]:P)",
      host: "::1",
      check: ({ servers }) => {
        if (servers[0].count("remote address: [::1]:") !== 1) {
          throw new Error(`${servers[0].label} did not see one session from [::1]`);
        }
      },
    },
    {
      tag: "100 streams",
      name: "",
      proves: "100 parallel streams on one session (stream ids, accept backlog, fairness)",
      streams: 100,
      bytesPerStream: 48 * 1024,
    },
    {
      tag: "1 stream 16 MiB",
      name: "",
      proves: "one bulk stream of 16 MiB each way (windows, back-pressure, long runs)",
      streams: 1,
      bytesPerStream: 16 * 1024 * 1024,
    },
  ];
  const out: CaseSpec[] = [];
  for (const { tag, ...shape } of shapes) {
    for (const [c, s] of DIRECTIONS) {
      out.push({ ...shape, name: `${tag} ${dir(c, s)}`, client: c, server: s });
    }
  }
  return out;
}

function atLeast(row: Record<string, number>, field: string, min: number, who: string): void {
  if (!(row[field] >= min)) {
    throw new Error(
      `${who} ${field} = ${row[field]}, want at least ${min}: ${JSON.stringify(row)}`,
    );
  }
}

/**
 * A lossy path (a relay dropping datagrams at random, seeded) between the ends: FEC recovery with
 * the other implementation's parity, retransmissions, both directions. The SNMP counters of both
 * ends prove which mechanism did the work.
 */
export function lossyCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const [c, s] of DIRECTIONS) {
    out.push({
      name: `lossy 3% fec 10/3 ${dir(c, s)}`,
      proves: "each end rebuilds lost datagrams from the other's parity (FECRecovered > 0 on " +
        "both); both -snmplog CSV files have the same columns",
      client: c,
      server: s,
      loss: 0.03,
      snmp: true,
      check: ({ snmp }) => {
        const a = Object.keys(snmp.client).join(","), b = Object.keys(snmp.server).join(",");
        if (a !== b) throw new Error(`-snmplog columns differ:\n  client ${a}\n  server ${b}`);
        atLeast(snmp.client, "FECRecovered", 1, "client");
        atLeast(snmp.server, "FECRecovered", 1, "server");
      },
    });
    out.push({
      name: `lossy 3% no fec ${dir(c, s)}`,
      proves: "KCP retransmission alone repairs losses (RetransSegs > 0 on both, no FEC)",
      client: c,
      server: s,
      flags: ["-ds", "0", "-ps", "0"],
      loss: 0.03,
      snmp: true,
      check: ({ snmp }) => {
        atLeast(snmp.client, "RetransSegs", 1, "client");
        atLeast(snmp.server, "RetransSegs", 1, "server");
      },
    });
    out.push({
      name: `lossy 10% fast3 smuxver 2 ${dir(c, s)}`,
      proves: "heavy loss with aggressive retransmission, FEC and smux v2 together",
      client: c,
      server: s,
      flags: ["-mode", "fast3", "-smuxver", "2"],
      loss: 0.1,
    });
  }
  return out;
}

/**
 * kcptun-ts `-autofec` on our end only (Go has no such flag): Go keeps its fixed 10/3 and must
 * decode whatever parity count we send, and bare KCP at level 0. A short hold (JSON
 * `pipelineOptions`) lets the level fall within the transfer.
 */
export function autofecCases(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const json = { pipelineOptions: { fec: { autoHoldMs: 300 } } };
  const ours = (impl: Impl) => impl === "ts" ? ["-autofec"] : [];
  const oursJson = (impl: Impl) => impl === "ts" ? json : undefined;
  const fell = /fec: (no parity|[0-2] of 3 parity shards)/;
  const lowered = (p: Proc, what: string) => {
    if (!fell.test(p.output())) throw new Error(`${p.label} never lowered its parity (${what})`);
  };
  for (const [c, s] of DIRECTIONS) {
    const ts = (ctx: { client: Proc; servers: Proc[] }) => c === "ts" ? ctx.client : ctx.servers[0];
    out.push({
      name: `autofec clean ${dir(c, s)}`,
      proves:
        "-autofec on our end on a clean path: the Go peer's 10/3 stream confirms our layout, " +
        "our parity falls to none (bare KCP between groups) and Go reads it",
      client: c,
      server: s,
      clientFlags: ours(c),
      serverFlags: ours(s),
      clientJson: oursJson(c),
      serverJson: oursJson(s),
      bytesPerStream: 1024 * 1024,
      check: (ctx) => {
        expectLine(ts(ctx), "autofec: true");
        const out = ts(ctx).output();
        if (!out.includes("fec: the peer sends 10/3 too")) {
          throw new Error("the Go peer's layout was never confirmed");
        }
        if (!out.includes("fec: no parity")) throw new Error("parity never fell to none");
      },
    });
    out.push({
      name: `autofec lossy 1% ${dir(c, s)}`,
      proves: "-autofec under loss: Go rebuilds datagrams from our partial parity groups " +
        "(FECRecovered > 0 on the Go end) while our end sends fewer than 3 parity per group",
      client: c,
      server: s,
      clientFlags: ours(c),
      serverFlags: ours(s),
      clientJson: oursJson(c),
      serverJson: oursJson(s),
      // Small windows keep the relay and the sockets from dropping more than the 1 % it is
      // told to (a loopback burst at full rate overflows them, and the level rightly stays up).
      flags: ["-sndwnd", "64", "-rcvwnd", "64"],
      loss: 0.01,
      streams: 2,
      bytesPerStream: 2 * 1024 * 1024,
      timeoutMs: 90000,
      snmp: true,
      check: (ctx) => {
        lowered(ts(ctx), "1% loss");
        atLeast(c === "go" ? ctx.snmp.client : ctx.snmp.server, "FECRecovered", 1, "go");
      },
    });
  }
  out.push({
    name: "autofec lossy 3% ts→ts",
    proves: "-autofec on both of our ends under loss: each rebuilds from the other's adaptive " +
      "parity (FECRecovered > 0 on both)",
    client: "ts",
    server: "ts",
    flags: ["-autofec"],
    clientJson: json,
    serverJson: json,
    loss: 0.03,
    snmp: true,
    check: ({ snmp }) => {
      atLeast(snmp.client, "FECRecovered", 1, "client");
      atLeast(snmp.server, "FECRecovered", 1, "server");
    },
  });
  return out;
}

/** Every matrix case. */
export function allCases(): CaseSpec[] {
  return [
    ...cryptCases(),
    ...fecCases(),
    ...streamCases(),
    ...modeCases(),
    ...topologyCases(),
    ...tuningCases(),
    ...lossyCases(),
    ...autofecCases(),
  ];
}

/** Data per case in MiB (one direction). */
export function caseMiB(c: CaseSpec): number {
  return ((c.streams ?? STREAMS) * (c.bytesPerStream ?? BYTES_PER_STREAM)) / 1048576;
}
