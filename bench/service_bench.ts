/**
 * What a service of ours costs: resident memory and CPU of our server and client started as
 * `deno task server|client -c <deploy example, moved to loopback>` (the V8 flags the tasks
 * carry, cli/v8_flags.ts), idle and under paced echo loads. docs/deploy.md has the readings.
 *
 *   deno run -A bench/service_bench.ts [--idle-s 20] [--load-s 20] [--rates 1,10] [--streams 8]
 *
 * Per run: an echo target, our server, our client. Idle: VmRSS 5 s after start, then CPU over
 * `--idle-s` seconds (smux keepalives and KCP's clock are all that runs) and VmRSS again. Then for
 * each rate R (MiB/s, both ways: every byte sent is echoed back) `--streams` connections each
 * write 16 KiB chunks at R / streams for `--load-s` seconds; CPU over that window as a share of
 * one core, VmRSS at its end and VmHWM (the peak so far). MiB = 1048576 bytes.
 *
 * @module
 */

import { freePort } from "../tests/support/net.ts";
import { spawnTask, type TaskProc, waitFor } from "../tests/e2e/harness.ts";
import { cpuSeconds, residentBytes } from "./tunnel/proc_stats.ts";
import { startEchoTarget } from "./tunnel/run.ts";

const MIB = 1 << 20;
const CHUNK = 16 * 1024;

interface Options {
  idleS: number;
  loadS: number;
  rates: number[];
  streams: number;
}

function parseOptions(args: string[]): Options {
  const o: Options = { idleS: 20, loadS: 20, rates: [1, 10], streams: 8 };
  for (let i = 0; i < args.length; i++) {
    const v = () => args[++i];
    if (args[i] === "--idle-s") o.idleS = Number(v());
    else if (args[i] === "--load-s") o.loadS = Number(v());
    else if (args[i] === "--rates") o.rates = v().split(",").map(Number);
    else if (args[i] === "--streams") o.streams = Number(v());
    else throw new Error(`unknown option ${args[i]}`);
  }
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A dist/ example config with its addresses on loopback, written to `dir`. */
function exampleConfig(dir: string, role: "server" | "client", ports: Record<string, number>) {
  const json = JSON.parse(
    Deno.readTextFileSync(new URL(`../dist/${role}.json`, import.meta.url)),
  );
  if (role === "server") {
    json.listen = `127.0.0.1:${ports.server}`;
    json.target = `127.0.0.1:${ports.target}`;
  } else {
    json.localaddr = `127.0.0.1:${ports.client}`;
    json.remoteaddr = `127.0.0.1:${ports.server}`;
  }
  const path = `${dir}/${role}.json`;
  Deno.writeTextFileSync(path, JSON.stringify(json));
  return path;
}

/**
 * `streams` connections to `port`, each writing 16 KiB chunks at `bytesPerSecond / streams`
 * for `seconds` while reading the echo. Returns the bytes echoed.
 */
async function pacedEcho(
  port: number,
  streams: number,
  bytesPerSecond: number,
  seconds: number,
): Promise<number> {
  const block = new Uint8Array(CHUNK).map((_, i) => (i * 31) & 0xff);
  const intervalMs = CHUNK / (bytesPerSecond / streams) * 1000;
  let echoed = 0;
  const one = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    let sent = 0, got = 0;
    const reader = (async () => {
      const buf = new Uint8Array(65536);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += n;
        echoed += n;
      }
    })().catch(() => {});
    const t0 = performance.now();
    for (let k = 0; performance.now() - t0 < seconds * 1000; k++) {
      let off = 0;
      while (off < CHUNK) off += await conn.write(block.subarray(off));
      sent += CHUNK;
      const wait = t0 + (k + 1) * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
    // The last echoes, for at most 10 s.
    for (let i = 0; i < 1000 && got < sent; i++) await sleep(10);
    conn.close();
    await reader;
  };
  await Promise.all(Array.from({ length: streams }, one));
  return echoed;
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

if (import.meta.main) {
  const o = parseOptions(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "kcptun-service-bench-" });
  const target = await startEchoTarget();
  const ports = { server: freePort(), client: freePort(), target: target.port };
  const procs: TaskProc[] = [];
  try {
    const server = spawnTask("server", ["-c", exampleConfig(dir, "server", ports)], dir);
    procs.push(server);
    await waitFor(server.output, "key derivation done", 30000, "server");
    const client = spawnTask("client", ["-c", exampleConfig(dir, "client", ports)], dir);
    procs.push(client);
    await waitFor(client.output, "key derivation done", 30000, "client");
    const pids = { server: await server.pid(), client: await client.pid() };
    const ends = ["server", "client"] as const;
    const row = (label: string, cells: Record<string, string>) =>
      console.log(`| ${label} | ${cells.server} | ${cells.client} |`);
    console.log(
      `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, dist/ example ` +
        `configs (mode fast3), ${o.streams} streams\n`,
    );
    console.log("| reading | server | client |\n| --- | --- | --- |");

    await sleep(5000);
    const each = (f: (pid: number) => string) =>
      Object.fromEntries(ends.map((e) => [e, f(pids[e])]));
    row("idle VmRSS at 5 s (MiB)", each((p) => mib(residentBytes(p).now)));
    let cpu0 = each((p) => String(cpuSeconds(p)));
    let t0 = performance.now();
    await sleep(o.idleS * 1000);
    const share = (before: Record<string, string>, since: number) =>
      each((p) => {
        const e = ends.find((x) => pids[x] === p)!;
        const used = cpuSeconds(p) - Number(before[e]);
        return `${(used / ((performance.now() - since) / 1000) * 100).toFixed(1)} %`;
      });
    row(`idle CPU over ${o.idleS} s (one core)`, share(cpu0, t0));
    row(`idle VmRSS at ${5 + o.idleS} s (MiB)`, each((p) => mib(residentBytes(p).now)));

    for (const rate of o.rates) {
      cpu0 = each((p) => String(cpuSeconds(p)));
      t0 = performance.now();
      const echoed = await pacedEcho(ports.client, o.streams, rate * MIB, o.loadS);
      const cpu = share(cpu0, t0);
      const got = echoed / ((performance.now() - t0) / 1000) / MIB;
      row(`${rate} MiB/s each way (echoed ${got.toFixed(1)}): CPU`, cpu);
      row(`${rate} MiB/s: VmRSS at the end (MiB)`, each((p) => mib(residentBytes(p).now)));
      row(`${rate} MiB/s: VmHWM so far (MiB)`, each((p) => mib(residentBytes(p).peak)));
    }
    await sleep(5000);
    row("5 s after the load: VmRSS (MiB)", each((p) => mib(residentBytes(p).now)));
  } finally {
    for (const p of procs) p.signal("SIGTERM");
    for (const p of procs) await Promise.race([p.done, sleep(8000)]).then(() => p.kill());
    await target.child.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
