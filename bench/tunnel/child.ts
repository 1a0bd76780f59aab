/**
 * Child processes of the tunnel benchmark: spawned with their output collected (bounded), waited
 * for by a line they print, and stopped by SIGTERM then SIGKILL.
 *
 * @module
 */

/** Keep at most this much of a child's output (the tail), so long runs stay bounded. */
const OUTPUT_LIMIT = 256 * 1024;

/** A running child. */
export interface Child {
  /** A short name for messages (`ours client`, `relay`). */
  readonly name: string;
  /** Its process id. */
  readonly pid: number;
  /** Its command line, as run. */
  readonly commandLine: string;
  /** The collected stdout and stderr (the last {@link OUTPUT_LIMIT} characters). */
  output(): string;
  /** Resolves with the exit code when it ends. */
  readonly exited: Promise<number>;
  /** True once it has ended. */
  readonly done: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has ended. */
  stop(graceMs?: number): Promise<void>;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Spawns `cmd args` (in `cwd`), collecting its output. */
export function spawnChild(
  name: string,
  cmd: string,
  args: string[],
  cwd?: string,
): Child {
  const proc = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let done = false;
  const decoder = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > OUTPUT_LIMIT * 2) text = text.slice(-OUTPUT_LIMIT);
    }
  };
  const pumps = Promise.allSettled([pump(proc.stdout), pump(proc.stderr)]);
  const exited = proc.status.then(async (s) => {
    done = true;
    await pumps;
    return s.code;
  });
  let stopping: Promise<void> | null = null;
  return {
    name,
    pid: proc.pid,
    commandLine: [cmd, ...args].map(shellQuote).join(" "),
    output: () => text.length > OUTPUT_LIMIT ? text.slice(-OUTPUT_LIMIT) : text,
    exited,
    get done() {
      return done;
    },
    stop(graceMs = 3000) {
      if (stopping) return stopping;
      stopping = (async () => {
        if (!done) {
          try {
            proc.kill("SIGTERM");
          } catch { /* already gone */ }
        }
        const t = setTimeout(() => {
          try {
            proc.kill("SIGKILL");
          } catch { /* already gone */ }
        }, graceMs);
        await exited;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}

/**
 * Waits until the child's output matches `pattern` and returns the match; fails with the output
 * if the child ends first or `timeoutMs` passes.
 */
export async function waitForLine(
  child: Child,
  pattern: RegExp,
  timeoutMs = 15000,
): Promise<RegExpExecArray> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const m = pattern.exec(child.output());
    if (m) return m;
    if (child.done) {
      throw new Error(
        `${child.name} exited before printing ${pattern}\n  command: ${child.commandLine}\n` +
          indent(child.output()),
      );
    }
    if (performance.now() > deadline) {
      throw new Error(
        `${child.name} did not print ${pattern} within ${timeoutMs} ms\n  command: ${child.commandLine}\n` +
          indent(child.output()),
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The last lines of `text`, indented, for error messages. */
export function indent(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).map((l) => "    | " + l).join("\n");
}
