/**
 * The server's target end to end: a refused target closes only that stream (with Go's
 * `dial …` log line) and the session keeps serving; close propagation both ways.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { freePort, sleep, startEchoServer } from "../support/net.ts";
import { dialErrorText } from "../../cli/dial_error.ts";
import { echoTransfer, seededBytes, sha256, startPair, startUnixEcho } from "./harness.ts";

async function readToEnd(conn: Deno.Conn, timeoutMs: number): Promise<number | "timeout"> {
  const buf = new Uint8Array(65536);
  let n = 0;
  const deadline = performance.now() + timeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), timeoutMs);
  });
  try {
    while (performance.now() < deadline) {
      const r = await Promise.race([conn.read(buf), timeout]);
      if (r === "timeout") return r;
      if (r === null) return n;
      n += r;
    }
    return "timeout";
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("e2e: a refused TCP target closes that stream at once; the session keeps serving", async () => {
  const targetPort = freePort();
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${targetPort}`],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER"],
  );
  let echo;
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
    await conn.write(new Uint8Array(1000));
    assertEquals(await readToEnd(conn, 5000), 0);
    conn.close();
    assert(
      pair.serverLog.lines.includes(
        `dial tcp 127.0.0.1:${targetPort}: connect: connection refused`,
      ),
      pair.serverLog.text(),
    );
    // The target comes up: the same session carries new streams.
    echo = startEchoServer("127.0.0.1", targetPort);
    assertEquals(
      await echoTransfer({ port: pair.clientPort }, { streams: 3, bytes: 256 << 10 }),
      3 * (256 << 10),
    );
    assertEquals(pair.clientSnmp.ActiveOpens, 1);
  } finally {
    await pair.stop();
    await echo?.close();
  }
});

Deno.test("e2e: a missing unix target closes the stream with Go's line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kcptun-e2e-target-" });
  const path = `${dir}/missing.sock`;
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", path],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER"],
  );
  let echo;
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
    assertEquals(await readToEnd(conn, 5000), 0);
    conn.close();
    assert(
      pair.serverLog.lines.includes(`dial unix ${path}: connect: no such file or directory`),
      pair.serverLog.text(),
    );
    echo = startUnixEcho(path);
    assertEquals(
      await echoTransfer({ port: pair.clientPort }, { streams: 2, bytes: 64 << 10 }),
      128 << 10,
    );
  } finally {
    await pair.stop();
    await echo?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e: closes propagate: target closes after 1 MiB, client closes mid-upload", async () => {
  const big = new Uint8Array(1 << 20).fill(7);
  let sawEof = 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const c of listener) {
      (async () => {
        // A connection that sends a byte gets 1 MiB and a close; one that ends is counted.
        if ((await c.read(new Uint8Array(1))) === null) {
          sawEof++;
          c.close();
          return;
        }
        let o = 0;
        while (o < big.length) o += await c.write(big.subarray(o));
        c.close();
      })().catch(() => {});
    }
  })();
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER"],
  );
  try {
    // Everything the target wrote before closing arrives, then EOF.
    const a = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
    await a.write(new Uint8Array([1]));
    assertEquals(await readToEnd(a, 10000), 1 << 20);
    a.close();
    // The client closes without writing: the target sees EOF.
    const b = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
    b.close();
    const deadline = performance.now() + 5000;
    while (sawEof === 0 && performance.now() < deadline) await sleep(20);
    assertEquals(sawEof, 1);
  } finally {
    await pair.stop();
    listener.close();
    await serving;
  }
});

Deno.test("dialErrorText: Go's net.OpError text", () => {
  assertEquals(
    dialErrorText("inet", "127.0.0.1:1", new Deno.errors.ConnectionRefused("x (os error 111)")),
    "dial tcp 127.0.0.1:1: connect: connection refused",
  );
  assertEquals(
    dialErrorText("unix", "/x.sock", new Deno.errors.NotFound("x")),
    "dial unix /x.sock: connect: no such file or directory",
  );
  assertEquals(
    dialErrorText("inet", "h:1", new Error("Network is unreachable (os error 101)")),
    "dial tcp h:1: network is unreachable",
  );
});

Deno.test("e2e: -closewait 1 delivers the reply to a client that half-closed; without it (2021) both close at once", async () => {
  // The target answers 300 ms after the request; it never sees an EOF before that.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const c of listener) {
      (async () => {
        if ((await c.read(new Uint8Array(100))) === null) return;
        await sleep(300);
        await c.write(new TextEncoder().encode("reply"));
      })().catch(() => {}).finally(() => {
        try {
          c.close();
        } catch { /* closed */ }
      });
    }
  })();
  const target = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const ask = async (closewait: string) => {
    const pair = await startPair(
      ["-l", "127.0.0.1:0", "-t", target, "-closewait", closewait],
      ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER", "-closewait", closewait],
    );
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
      await c.write(new TextEncoder().encode("request"));
      await sleep(100);
      await c.closeWrite();
      const t0 = performance.now();
      let text = "";
      const buf = new Uint8Array(100);
      while (true) {
        const n = await c.read(buf).catch(() => null);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      c.close();
      return { text, ms: performance.now() - t0 };
    } finally {
      await pair.stop();
    }
  };
  try {
    const old = await ask("0");
    // Closed before the reply (300 ms later) could come back.
    assertEquals(old.text, "");
    const waited = await ask("1");
    assertEquals(waited.text, "reply");
    assert(waited.ms >= 900 && waited.ms < 6000, `closed after ${waited.ms} ms`);
  } finally {
    listener.close();
    await serving;
  }
});

Deno.test("e2e: a client that uploads and closes: the target gets every byte, then EOF", async () => {
  const received: Array<[number, string]> = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const c of listener) {
      (async () => {
        const buf = new Uint8Array(65536);
        const all: Uint8Array[] = [];
        let n = 0;
        while (true) {
          const r = await c.read(buf).catch(() => null);
          if (r === null) break;
          all.push(buf.slice(0, r));
          n += r;
        }
        const joined = new Uint8Array(n);
        let at = 0;
        for (const part of all) {
          joined.set(part, at);
          at += part.length;
        }
        received.push([n, await sha256(joined)]);
        c.close();
      })();
    }
  })();
  const pair = await startPair(
    ["-l", "127.0.0.1:0", "-t", `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`],
    ["-l", "127.0.0.1:0", "-r", "127.0.0.1:SERVER"],
  );
  try {
    const size = 2 << 20;
    const sent = await Promise.all([0, 1, 2].map(async (i) => {
      const data = seededBytes(size, 40 + i);
      const c = await Deno.connect({ hostname: "127.0.0.1", port: pair.clientPort });
      let o = 0;
      while (o < size) o += await c.write(data.subarray(o));
      c.close();
      return [size, await sha256(data)] as [number, string];
    }));
    const deadline = performance.now() + 10000;
    while (received.length < 3 && performance.now() < deadline) await sleep(20);
    assertEquals(received.map((r) => r[1]).sort(), sent.map((s) => s[1]).sort());
  } finally {
    await pair.stop();
    listener.close();
    await serving;
  }
});
