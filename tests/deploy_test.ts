/**
 * The service files in `dist/`, checked as far as this machine allows: the systemd units with
 * `systemd-analyze verify` (no running systemd needed) and their command lines run for real (as
 * an unprivileged user on the checkout, with the example configs moved to loopback), the
 * logrotate example against a running end, and the Dockerfile parsed and its final stage
 * assembled and run without Docker (no engine here).
 *
 * Tools a test needs are installed by CI (`.ci/run`: systemd, logrotate); elsewhere a missing
 * one skips its test with a line saying so, and with `CI=true` the test runs and fails.
 */

import { assert, assertEquals } from "./support/assert.ts";
import { freePort, startEchoServer } from "./support/net.ts";
import { echoTransfer, exitWithin, type Proc, REPO, spawnClient, waitFor } from "./e2e/harness.ts";
import { V8_FLAGS_ARG } from "../cli/v8_flags.ts";
import { ensureBundles } from "../cli/bundle.ts";

const DEPLOY = `${REPO}dist/`;
const read = (name: string) => Deno.readTextFileSync(DEPLOY + name);

/** The least permissions the README gives for `deno run`. */
const PERMISSIONS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];

function which(tool: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      if (Deno.statSync(`${dir}/${tool}`).isFile) return `${dir}/${tool}`;
    } catch { /* not here */ }
  }
  return null;
}

/** tests/support/requires.ts's rule for a tool: skipped (saying so) unless CI=true. */
function lacks(tool: string, install: string): boolean {
  if (Deno.env.get("CI") === "true" || which(tool) !== null) return false;
  console.error(`skipping a deploy test: ${tool} is not installed (${install})`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// systemd units

/** `[Section]` → key → values (a key may repeat), as systemd reads a unit file. */
type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const s = line.match(/^\[(.+)\]$/);
    if (s) {
      section = unit.get(s[1]) ?? new Map();
      unit.set(s[1], section);
      continue;
    }
    const eq = line.indexOf("=");
    assert(section !== null && eq > 0, `not a unit line: ${line}`);
    const key = line.slice(0, eq).trim(), value = line.slice(eq + 1).trim();
    section.set(key, [...(section.get(key) ?? []), value]);
  }
  return unit;
}

/** The one value of `key` in [Service]. */
function service(unit: Unit, key: string): string {
  const v = unit.get("Service")?.get(key);
  assert(v !== undefined && v.length === 1, `[Service] ${key}: ${v}`);
  return v[0];
}

const ROLES = ["server", "client"] as const;

Deno.test("deploy: the units run the Deno process itself, sandboxed, with the tasks' V8 flags", () => {
  for (const role of ROLES) {
    const unit = parseUnit(read(`kcptun-ts-${role}.service`));
    const exec = service(unit, "ExecStart").split(/\s+/);
    assertEquals(exec.slice(0, 2), ["deno", "run"], `${role}: no shell or deno task in between`);
    for (const p of PERMISSIONS) assert(exec.includes(p), `${role}: ${p}`);
    assert(!exec.includes("-A") && !exec.includes("--allow-all"), `${role}: least permissions`);
    assert(exec.includes(V8_FLAGS_ARG), `${role}: ${V8_FLAGS_ARG}`);
    assertEquals(exec.slice(-3), [
      `/opt/kcptun-ts/dist/kcptun-ts-${role}.js`,
      "-c",
      `/etc/kcptun-ts/${role}.json`,
    ]);
    const want: Record<string, string> = {
      Type: "exec",
      DynamicUser: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      PrivateTmp: "yes",
      NoNewPrivileges: "yes",
      CapabilityBoundingSet: "",
      AmbientCapabilities: "",
      Restart: "on-failure",
      KillMode: "mixed",
      LimitNOFILE: "65536",
      ExecReload: "/bin/kill -HUP $MAINPID",
      EnvironmentFile: "/etc/kcptun-ts/key.env",
    };
    for (const [k, v] of Object.entries(want)) assertEquals(service(unit, k), v, `${role}: ${k}`);
    assertEquals(unit.get("Install")?.get("WantedBy"), ["multi-user.target"]);
  }
  const dropIn = parseUnit(read("faketcp.conf"));
  assertEquals([...dropIn.keys()], ["Service"]);
  assertEquals(
    [...dropIn.get("Service")!.entries()],
    [["CapabilityBoundingSet", ["CAP_NET_RAW"]], ["AmbientCapabilities", ["CAP_NET_RAW"]]],
  );
});

Deno.test({
  name: "deploy: systemd-analyze verify accepts both units, with and without the -tcp drop-in",
  ignore: lacks("systemd-analyze", "apt-get install -y systemd"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kcptun-units-" });
    try {
      const verify = async (units: string[]) => {
        const r = await new Deno.Command("systemd-analyze", {
          args: ["verify", ...units],
          cwd: dir,
          env: { SYSTEMD_LOG_COLOR: "0" },
        }).output();
        const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        // Unknown keys and bad values are warnings with exit status 0: the output must be empty.
        assertEquals({ code: r.code, out }, { code: 0, out: "" });
      };
      const units = ROLES.map((r) => `kcptun-ts-${r}.service`);
      for (const u of units) Deno.copyFileSync(DEPLOY + u, `${dir}/${u}`);
      await verify(units.map((u) => `./${u}`));
      // systemd-analyze reads drop-ins from `<unit>.d/` next to the unit.
      for (const u of units) {
        Deno.mkdirSync(`${dir}/${u}.d`);
        Deno.copyFileSync(DEPLOY + "faketcp.conf", `${dir}/${u}.d/faketcp.conf`);
      }
      await verify(units.map((u) => `./${u}`));
      // And it does read them: a broken drop-in is reported.
      Deno.writeTextFileSync(`${dir}/${units[0]}.d/faketcp.conf`, "[Service]\nNoSuchKey=1\n");
      const r = await new Deno.Command("systemd-analyze", {
        args: ["verify", `./${units[0]}`],
        cwd: dir,
      }).output();
      assert(new TextDecoder().decode(r.stderr).includes("NoSuchKey"), "drop-in not read");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The example config of `role` with its addresses moved to loopback. */
function loopbackConfig(role: "server" | "client", ports: Record<string, number>): string {
  const json = JSON.parse(read(`${role}.json`));
  if (role === "server") {
    assertEquals([json.listen, json.target], [":29900", "127.0.0.1:8388"]);
    json.listen = `127.0.0.1:${ports.server}`;
    json.target = `127.0.0.1:${ports.target}`;
  } else {
    assertEquals([json.localaddr, json.remoteaddr], ["127.0.0.1:8388", "vps.example.com:29900"]);
    json.localaddr = `127.0.0.1:${ports.client}`;
    json.remoteaddr = `127.0.0.1:${ports.server}`;
  }
  assert(!("key" in json), "the key belongs in key.env, not in a file the service user reads");
  return JSON.stringify(json);
}

/**
 * Runs `args[0] args...` with only `env` (and PATH), as user nobody when we are root and
 * `asNobody` (what DynamicUser and the image's USER give: a user who cannot write the checkout).
 */
function spawnAs(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  asNobody = Deno.uid() === 0 && which("setpriv") !== null,
): Proc {
  const cmd = asNobody
    ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...args]
    : args;
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let all = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) all += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.allSettled([pump(child.stdout), pump(child.stderr)]);
  let ended = false;
  const done = child.status.then(async (s) => {
    ended = true;
    await pumps;
    return s;
  });
  return {
    child,
    stdout: () => all,
    stderr: () => all,
    output: () => all,
    done,
    signal(sig) {
      if (!ended) {
        try {
          child.kill(sig);
        } catch { /* gone */ }
      }
    },
    async kill() {
      if (!ended) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await done;
    },
  };
}

Deno.test("deploy: each unit's command line starts its end with the example config (loopback) and they carry data", async () => {
  // The units run the bundles `deno task build` makes in the checkout.
  await ensureBundles();
  const dir = await Deno.makeTempDir({ prefix: "kcptun-svc-" });
  // What the unit's directories give an unprivileged user: a cache and a log directory it owns.
  for (const d of ["cache", "logs", "etc"]) Deno.mkdirSync(`${dir}/${d}`);
  if (Deno.uid() === 0) {
    for (const d of ["cache", "logs"]) Deno.chownSync(`${dir}/${d}`, 65534, 65534);
    Deno.chmodSync(dir, 0o755);
  }
  const echo = startEchoServer();
  const ports = { server: freePort(), client: freePort(), target: echo.port };
  const procs: Proc[] = [];
  try {
    for (const role of ROLES) {
      const unit = parseUnit(read(`kcptun-ts-${role}.service`));
      const conf = `${dir}/etc/${role}.json`;
      Deno.writeTextFileSync(conf, loopbackConfig(role, ports));
      Deno.chmodSync(conf, 0o644);
      const args = service(unit, "ExecStart").split(/\s+/).map((a) =>
        a === "deno"
          ? Deno.execPath()
          : a.replace("/opt/kcptun-ts/", REPO).replace(`/etc/kcptun-ts/${role}.json`, conf)
      );
      const env: Record<string, string> = { KCPTUN_KEY: "deploy test key" };
      for (const e of unit.get("Service")!.get("Environment")!) {
        const [k, v] = [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)];
        env[k] = k === "DENO_DIR" ? `${dir}/cache` : v;
      }
      assertEquals(service(unit, "WorkingDirectory"), "/var/log/kcptun-ts");
      const p = spawnAs(args, env, `${dir}/logs`);
      procs.push(p);
      // A first start transpiles into the empty cache: generous bounds.
      await waitFor(p.output, "key derivation done", 60000, `${role} output`);
    }
    assert(procs[1].output().includes(`listening on: 127.0.0.1:${ports.client}\n`));
    const echoed = await echoTransfer({ port: ports.client }, {
      streams: 2,
      bytes: 256 * 1024,
      timeoutMs: 30000,
    });
    assertEquals(echoed, 2 * 256 * 1024);
    // What KillMode=mixed sends first: SIGTERM to the main process, which exits 0 by itself,
    // so Restart=on-failure leaves a stopped service stopped.
    for (const p of procs.toReversed()) p.signal("SIGTERM");
    for (const p of procs) assertEquals((await exitWithin(p, 10000)).code, 0, p.output());
  } finally {
    for (const p of procs) await p.kill();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// logrotate

Deno.test({
  name:
    "deploy: the logrotate example rotates a running end's -log; its SIGHUP starts a fresh file",
  ignore: lacks("logrotate", "apt-get install -y logrotate"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kcptun-rotate-" });
    const log = `${dir}/server.log`;
    let server: Proc | null = null;
    try {
      server = spawnAs(
        [
          Deno.execPath(),
          "run",
          "-A",
          `${REPO}cli/server.ts`,
          ...["-l", `127.0.0.1:${freePort()}`, "-t", "127.0.0.1:9", "-log", log],
        ],
        { HOME: Deno.env.get("HOME") ?? "/root" },
        dir,
        false,
      );
      await waitFor(() => readText(log), "key derivation done", 20000, "server.log");
      // The example as shipped, but for this directory and this process: systemctl cannot
      // reach a process that no systemd started.
      const example = read("kcptun-ts.logrotate");
      const postrotate = example.match(/postrotate\n\s*(.*)\n\s*endscript/)![1];
      assert(postrotate.startsWith("systemctl kill --signal=HUP --kill-whom=main "), postrotate);
      const conf = example.replace("/var/log/kcptun-ts/*.log", `${dir}/*.log`).replace(
        postrotate,
        `kill -HUP ${server.child.pid}`,
      );
      const confPath = `${dir}/logrotate.conf`;
      Deno.writeTextFileSync(confPath, conf);
      Deno.chmodSync(confPath, 0o644);
      const r = await new Deno.Command("logrotate", {
        args: ["--force", "--state", `${dir}/state`, confPath],
      }).output();
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      const fresh = await waitFor(() => readText(log), /SIGHUP: reopened .*\n/, 10000, "log");
      assert(fresh.includes(log), fresh);
      // delaycompress: the first rotation stays uncompressed, with everything before it.
      const rotated = readText(`${log}.1`);
      assert(rotated.includes("key derivation done") && !rotated.includes("SIGHUP"), rotated);
      server.signal("SIGTERM");
      assertEquals((await exitWithin(server, 8000)).code, 0, server.output());
    } finally {
      await server?.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions with their continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    if (pending === "" && (raw.trim() === "" || raw.trim().startsWith("#"))) continue;
    if (raw.trim().startsWith("#")) continue;
    pending += raw.replace(/\\$/, " ");
    if (raw.endsWith("\\")) continue;
    const m = pending.trim().match(/^([A-Za-z]+)\s+(.*)$/s);
    assert(m !== null, `not an instruction: ${pending}`);
    out.push({ op: m[1].toUpperCase(), args: m[2].replace(/\s+/g, " ").trim() });
    pending = "";
  }
  assertEquals(pending, "", "a continuation ends the file");
  return out;
}

/** The instructions of the last stage (after its FROM). */
function finalStage(ins: Instruction[]): Instruction[] {
  const from = ins.findLastIndex((i) => i.op === "FROM");
  return ins.slice(from);
}

Deno.test("deploy: Dockerfile: Debian images, Deno from npm at the CI's version, COPY sources present", () => {
  const ins = parseDockerfile(read("Dockerfile"));
  const known = new Set([
    "FROM",
    "RUN",
    "COPY",
    "ENV",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "ENTRYPOINT",
    "CMD",
  ]);
  for (const i of ins) assert(known.has(i.op), `unexpected instruction ${i.op}`);
  const froms = ins.filter((i) => i.op === "FROM").map((i) => i.args);
  assertEquals(froms.length, 2);
  assert(/^node:\d+-bookworm-slim AS deno$/.test(froms[0]), froms[0]);
  assertEquals(froms[1], "debian:bookworm-slim");
  // The same Deno as CI installs and these tests run on.
  const ci = Deno.readTextFileSync(`${REPO}.ci/run`);
  const version = ci.match(/npm i -g deno@(\d+\.\d+\.\d+)/)![1];
  assertEquals(version, Deno.version.deno);
  assert(ins[1].op === "RUN" && ins[1].args.includes(`npm install --global deno@${version}`));

  const ignored = Deno.readTextFileSync(`${REPO}.dockerignore`).split("\n")
    .map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  for (const c of ins.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
    const parts = c.args.split(" ");
    for (const src of parts.slice(0, -1)) {
      Deno.statSync(REPO + src); // throws when the build context lacks it
      const top = src.replace(/\/$/, "").split("/")[0];
      assert(!ignored.includes(top), `${src} is excluded by .dockerignore`);
    }
  }

  const last = finalStage(ins);
  const user = last.findLast((i) => i.op === "USER")!.args;
  assert(user !== "root" && user !== "0", `runs as ${user}`);
  const entry: string[] = JSON.parse(last.find((i) => i.op === "ENTRYPOINT")!.args);
  const cmd: string[] = JSON.parse(last.find((i) => i.op === "CMD")!.args);
  assertEquals(entry.slice(0, 2), ["deno", "run"], "exec form, Deno as PID 1");
  for (const p of PERMISSIONS) assert(entry.includes(p), p);
  assert(entry.includes(V8_FLAGS_ARG), V8_FLAGS_ARG);
  assertEquals(cmd, ["cli/server.ts", "-c", "/etc/kcptun-ts/server.json"]);
  const port = JSON.parse(read("server.json")).listen.split(":").pop();
  assert(last.some((i) => i.op === "EXPOSE" && i.args === `${port}/udp`), "EXPOSE the listen port");
});

Deno.test("deploy: Dockerfile: its final stage, assembled without Docker, runs a server that carries data", async () => {
  const ins = finalStage(parseDockerfile(read("Dockerfile")));
  const root = await Deno.makeTempDir({ prefix: "kcptun-image-" });
  const echo = startEchoServer();
  let server: Proc | null = null, client: Proc | null = null;
  try {
    // The image's files: what each COPY puts where (WORKDIR-relative or absolute).
    let workdir = "/";
    for (const i of ins) {
      if (i.op === "WORKDIR") workdir = i.args;
      if (i.op !== "COPY" || i.args.startsWith("--from")) continue;
      const parts = i.args.split(" ");
      const dest = parts.at(-1)!;
      assert(dest.endsWith("/"), `COPY into a directory: ${i.args}`);
      const into = root + (dest.startsWith("/") ? dest : `${workdir}/${dest}`).replace("/./", "/");
      Deno.mkdirSync(into, { recursive: true });
      for (const src of parts.slice(0, -1)) {
        // A directory's contents go into the destination, as Docker copies them.
        const from = src.endsWith("/") ? `${REPO}${src}.` : REPO + src;
        const c = await new Deno.Command("cp", { args: ["-r", from, into] }).output();
        assertEquals(c.code, 0, new TextDecoder().decode(c.stderr));
      }
    }
    const app = root + workdir;
    // The RUN's `deno install` into the image's (here: a fresh) Deno cache, then the cache
    // handed to the unprivileged user, as the RUN's chown does.
    const cache = `${root}/cache`;
    const run = ins.find((i) => i.op === "RUN" && i.args.includes("deno install"))!.args;
    const install = run.match(/deno install [^&]*/)![0].trim().split(" ");
    const r = await new Deno.Command(Deno.execPath(), {
      args: install.slice(1),
      cwd: app,
      env: { DENO_DIR: cache },
    }).output();
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    Deno.chmodSync(root, 0o755);
    if (Deno.uid() === 0) {
      await new Deno.Command("chown", { args: ["-R", "65534:65534", cache] }).output();
    }
    // ENTRYPOINT + CMD with the image's config moved to loopback.
    const entry: string[] = JSON.parse(ins.find((i) => i.op === "ENTRYPOINT")!.args);
    const cmd: string[] = JSON.parse(ins.find((i) => i.op === "CMD")!.args);
    const conf = root + cmd[2];
    const port = freePort();
    Deno.writeTextFileSync(conf, loopbackConfig("server", { server: port, target: echo.port }));
    Deno.chmodSync(conf, 0o644);
    const env: Record<string, string> = { KCPTUN_KEY: "image test key" };
    for (const i of ins.filter((i) => i.op === "ENV")) {
      for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
    }
    assertEquals(env.DENO_DIR, "/var/cache/kcptun-ts");
    env.DENO_DIR = cache;
    server = spawnAs([Deno.execPath(), ...entry.slice(1), cmd[0], cmd[1], conf], env, app);
    await waitFor(server.output, "key derivation done", 60000, "server output");
    assert(server.output().includes(`listening on: 127.0.0.1:${port}\n`), server.output());
    // Our client from the checkout, through the image's server, to the echo target.
    const cport = freePort();
    client = spawnClient([
      ...["-l", `127.0.0.1:${cport}`, "-r", `127.0.0.1:${port}`, "-key", "image test key"],
      ...["-mode", "fast3"],
    ]);
    await waitFor(client.output, "key derivation done", 30000, "client output");
    const echoed = await echoTransfer({ port: cport }, { streams: 2, bytes: 128 * 1024 });
    assertEquals(echoed, 2 * 128 * 1024);
    for (const p of [client, server]) p.signal("SIGTERM");
    for (const p of [client, server]) {
      assertEquals((await exitWithin(p, 8000)).code, 0, p.output());
    }
  } finally {
    await client?.kill();
    await server?.kill();
    await echo.close();
    await Deno.remove(root, { recursive: true });
  }
});
