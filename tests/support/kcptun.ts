/** Starting Debian's Go kcptun binaries for captures, interop tests and benchmarks. */

import { sleep } from "./net.ts";

/** Paths of the Go binaries (Debian package `kcptun`). */
export const GO_CLIENT = "/usr/bin/kcptun-client";
/** See {@link GO_CLIENT}. */
export const GO_SERVER = "/usr/bin/kcptun-server";

/** True when Debian's kcptun is installed. */
export function haveGoKcptun(): boolean {
  try {
    return Deno.statSync(GO_CLIENT).isFile && Deno.statSync(GO_SERVER).isFile;
  } catch {
    return false;
  }
}

/** A running process with its collected stderr. */
export interface RunningProcess {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Everything it wrote to stderr and stdout so far. */
  output(): string;
  /** Kills it (SIGTERM, then SIGKILL) and waits for it. */
  stop(): Promise<void>;
}

/** Spawns `cmd args` collecting its output; kills it on `stop()`. */
export function spawnCollecting(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): RunningProcess {
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.allSettled([pump(child.stdout), pump(child.stderr)]);
  let stopped: Promise<void> | null = null;
  return {
    child,
    output: () => text,
    stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        const t = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        }, 2000);
        await child.status;
        clearTimeout(t);
        await pumps;
      })();
      return stopped;
    },
  };
}

/** Starts Go's kcptun-server listening on UDP `listenPort`, relaying to `target`. */
export function startGoServer(listenPort: number, target: string, flags: string[]): RunningProcess {
  return spawnCollecting(GO_SERVER, ["-l", `127.0.0.1:${listenPort}`, "-t", target, ...flags]);
}

/** Starts Go's kcptun-client listening on TCP `localPort`, dialling UDP `remote`. */
export function startGoClient(localPort: number, remote: string, flags: string[]): RunningProcess {
  return spawnCollecting(GO_CLIENT, ["-l", `127.0.0.1:${localPort}`, "-r", remote, ...flags]);
}

/** Waits until `output()` contains `needle` (or fails after `timeoutMs`). */
export async function waitForOutput(
  p: RunningProcess,
  needle: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!p.output().includes(needle)) {
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${JSON.stringify(needle)}; output:\n${p.output()}`);
    }
    await sleep(20);
  }
}
