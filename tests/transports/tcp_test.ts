/**
 * The TCP/unix listener wrapper: which accept errors end accepting (only the listener's own
 * close), which skip one connection, which pause accepting, and what is logged.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { sleep } from "../support/net.ts";
import { isConnectionGone, wrapListener } from "../../transports/tcp.ts";
import { UnixEndpoint } from "../../transports/unix.ts";

function osError(code: string, message: string): Error {
  return Object.assign(new Error(`${message} (os error 24)`), { code });
}

/** A `Deno.Listener` stand-in whose `accept` replays a script of errors, then a real connection. */
function scriptedListener(script: Array<Error | "conn">, real: Deno.Listener): Deno.Listener {
  let closed = false;
  return {
    addr: real.addr,
    async accept() {
      if (closed) throw new Deno.errors.BadResource("Listener has been closed");
      const next = script.shift();
      if (next === undefined) return await real.accept();
      if (next === "conn") return await real.accept();
      throw next;
    },
    close() {
      closed = true;
      real.close();
    },
  } as unknown as Deno.Listener;
}

Deno.test("tcp listener: errors about one connection are skipped, silently", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lines: string[] = [];
  const l = wrapListener(
    scriptedListener([
      new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)"),
      new Deno.errors.ConnectionAborted("Software caused connection abort (os error 103)"),
      new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
      osError("EPROTO", "Protocol error"),
    ], real),
    "127.0.0.1:1",
    1,
    { log: (s) => lines.push(s) },
  );
  const port = (real.addr as Deno.NetAddr).port;
  const dial = Deno.connect({ hostname: "127.0.0.1", port });
  const conn = await l.accept();
  assert(conn !== null, "accept ended");
  conn.close();
  (await dial).close();
  assertEquals(l.stats, { accepted: 1, connectionsGone: 4, errors: 0 });
  assertEquals(lines, []);
  l.close();
  assertEquals(await l.accept(), null);
});

Deno.test("tcp listener: running out of descriptors pauses accepting, logs once, goes on", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lines: string[] = [];
  const emfile = () => osError("EMFILE", "Too many open files");
  const l = wrapListener(
    scriptedListener([
      emfile(),
      emfile(),
      emfile(),
      osError("ENFILE", "Too many open files in system"),
    ], real),
    "127.0.0.1:1",
    1,
    { log: (s) => lines.push(s) },
  );
  const port = (real.addr as Deno.NetAddr).port;
  const dial = Deno.connect({ hostname: "127.0.0.1", port });
  const t0 = performance.now();
  const conn = await l.accept();
  const took = performance.now() - t0;
  assert(conn !== null, "accept ended");
  conn.close();
  (await dial).close();
  assertEquals(l.stats, { accepted: 1, connectionsGone: 0, errors: 4 });
  // Pauses of 5, 10, 20 and 40 ms: it waited, and not for long.
  assert(took >= 70, `no back-off: ${took} ms`);
  assertEquals(lines, ["accept 127.0.0.1:1: Too many open files; accepting again in 5 ms"]);
  l.close();
});

Deno.test("tcp listener: close during a back-off pause ends accept with null at once", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const errors = Array.from({ length: 20 }, () => osError("EMFILE", "Too many open files"));
  const l = wrapListener(scriptedListener(errors, real), "127.0.0.1:1", 1);
  const pending = l.accept();
  await sleep(300); // deep into the back-off (5 + 10 + … ms)
  const t0 = performance.now();
  l.close();
  assertEquals(await pending, null);
  assert(performance.now() - t0 < 500, "close waited for the pause");
});

Deno.test("tcp listener: a closed Deno listener ends accept with null", async () => {
  const real = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const l = wrapListener(real, "127.0.0.1:1", 1);
  const pending = l.accept();
  real.close(); // closed underneath the wrapper: BadResource
  assertEquals(await pending, null);
  l.close();
});

Deno.test("unix listener: accepts after a connection that went away unaccepted", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/s.sock`;
  const l = await new UnixEndpoint().listen(path);
  try {
    const gone = await Deno.connect({ transport: "unix", path });
    gone.close();
    const next = await Deno.connect({ transport: "unix", path });
    const a = await l.accept();
    const b = await l.accept();
    assert(a !== null && b !== null);
    a.close();
    b.close();
    next.close();
  } finally {
    l.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("isConnectionGone: per-connection errors, not resource or closing errors", () => {
  assert(isConnectionGone(new Deno.errors.NotConnected("x")));
  assert(isConnectionGone(osError("ENETUNREACH", "x")));
  assert(!isConnectionGone(osError("EMFILE", "x")));
  assert(!isConnectionGone(new Deno.errors.BadResource("x")));
  assert(!isConnectionGone(new Error("other")));
});
