/** Tests of the tunnel benchmark's own parts: loss pattern, relay, statistics, options, profiles. */

import { assert, assertEquals, assertThrows } from "../../tests/support/assert.ts";
import { selfByFile, summariseProfile } from "./cpuprofile_top.ts";
import { echoLoad, pingPong, randomBlock } from "./load.ts";
import { LossPattern, startRelay } from "./lossy_relay.ts";
import { parseBenchOptions } from "./options.ts";
import { median, percentile, ratio, sum } from "./stats.ts";
import { startEchoTarget } from "./run.ts";

function drops(p: LossPattern, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (p.drop()) out.push(i);
  return out;
}

Deno.test("LossPattern: a pure function of seed, direction and index", () => {
  assertEquals(drops(new LossPattern(7, 0, 0.02), 5000), drops(new LossPattern(7, 0, 0.02), 5000));
  const a = drops(new LossPattern(7, 0, 0.02), 5000);
  assert(a.join() !== drops(new LossPattern(7, 1, 0.02), 5000).join(), "directions differ");
  assert(a.join() !== drops(new LossPattern(8, 0, 0.02), 5000).join(), "seeds differ");
  assertEquals(drops(new LossPattern(7, 0, 0), 10000).length, 0);
  assertEquals(drops(new LossPattern(7, 0, 1), 1000).length, 1000);
});

Deno.test("LossPattern: the drop rate is the one asked for", () => {
  // 100,000 draws at 2%: mean 2000, standard deviation about 44; 6 sigma either way.
  for (const seed of [1, 2, 3]) {
    const n = drops(new LossPattern(seed, 0, 0.02), 100000).length;
    assert(n > 1730 && n < 2270, `seed ${seed}: ${n} drops`);
  }
});

Deno.test("LossPattern: bursty drops keep the rate and come in runs of the mean length", () => {
  for (const [rate, burst] of [[0.1, 4], [0.02, 8]]) {
    const p = new LossPattern(3, 0, rate, burst);
    let dropped = 0, runs = 0, prev = false;
    const n = 400000;
    for (let i = 0; i < n; i++) {
      const d = p.drop();
      if (d) dropped++;
      if (d && !prev) runs++;
      prev = d;
    }
    // Runs are geometric: the rate's spread is about burst times a Bernoulli one's; 15% is wide.
    assert(Math.abs(dropped / n - rate) < rate * 0.15, `rate ${rate}: ${dropped / n}`);
    const mean = dropped / runs;
    assert(Math.abs(mean - burst) < burst * 0.15, `burst ${burst}: mean run ${mean}`);
  }
  // burst 1 is the independent pattern, datagram for datagram.
  assertEquals(
    drops(new LossPattern(9, 1, 0.05, 1), 3000),
    drops(new LossPattern(9, 1, 0.05), 3000),
  );
});

/** A datagram, or a failure after 5 s (so a wrong drop fails the test instead of hanging it). */
async function recv(sock: Deno.DatagramConn): Promise<[Uint8Array, Deno.Addr]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      sock.receive(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no datagram within 5 s")), 5000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("lossy relay: drops exactly the pattern's datagrams, after the delay, both ways", async () => {
  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const serverPort = (server.addr as Deno.NetAddr).port;
  const relay = await startRelay({ port: 0, serverPort, loss: 0.3, delayMs: 20, seed: 5 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: relay.port };
  const N = 60;
  try {
    // Client to server: one datagram at a time, so arrival order is send order.
    const c2sPattern = new LossPattern(5, 0, 0.3);
    const expected: number[] = [];
    const sentAt: number[] = [];
    for (let i = 0; i < N; i++) {
      if (!c2sPattern.drop()) expected.push(i);
      sentAt.push(performance.now());
      await client.send(new Uint8Array([i]), to);
    }
    const got: number[] = [];
    let from: Deno.NetAddr | null = null;
    while (got.length < expected.length) {
      const [data, addr] = await recv(server);
      got.push(data[0]);
      from = addr as Deno.NetAddr;
      assert(performance.now() - sentAt[data[0]] >= 19, "delivered before the delay");
    }
    assertEquals(got, expected);
    // Server back to the client, through the relay's upstream socket.
    const s2cPattern = new LossPattern(5, 1, 0.3);
    const back: number[] = [];
    for (let i = 0; i < N; i++) {
      if (!s2cPattern.drop()) back.push(i);
      await server.send(new Uint8Array([i]), from!);
    }
    const gotBack: number[] = [];
    while (gotBack.length < back.length) gotBack.push((await recv(client))[0][0]);
    assertEquals(gotBack, back);
    const s = relay.stats;
    assertEquals([s.c2sIn, s.c2sDropped, s.s2cIn, s.s2cDropped, s.clients], [
      N,
      N - expected.length,
      N,
      N - back.length,
      1,
    ]);
    // After a reset the pattern starts again at index 0.
    relay.resetPattern();
    const again: number[] = [];
    const pattern = new LossPattern(5, 0, 0.3);
    for (let i = 0; i < 20; i++) {
      if (!pattern.drop()) again.push(100 + i);
      await client.send(new Uint8Array([100 + i]), to);
    }
    const gotAgain: number[] = [];
    while (gotAgain.length < again.length) gotAgain.push((await recv(server))[0][0]);
    assertEquals(gotAgain, again);
  } finally {
    client.close();
    server.close();
    await relay.close();
  }
});

Deno.test("load generator: echo and ping-pong through the echo target, every byte checked", async () => {
  const target = await startEchoTarget();
  try {
    const block = randomBlock(1 << 20);
    const one = await echoLoad(target.port, block, 1, 0.2);
    assert(one.bytes > 0 && one.streams === 1, JSON.stringify(one));
    const many = await echoLoad(target.port, block, 10, 0.2);
    assert(many.bytes > 0 && many.streams === 10, JSON.stringify(many));
    const ping = await pingPong(target.port, 50, 5);
    assertEquals(ping.rttMs.length, 50);
  } finally {
    await target.child.stop();
  }
});

Deno.test("stats: nearest-rank percentiles, median, sum, ratio", () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1
  assertEquals(percentile(v, 50), 50);
  assertEquals(percentile(v, 99), 99);
  assertEquals(percentile(v, 100), 100);
  assertEquals(percentile([3], 99), 3);
  assert(Number.isNaN(percentile([], 50)));
  assertEquals(median([5, NaN, 1, 3]), 3);
  assertEquals(sum([1, NaN, 2]), 3);
  assert(Number.isNaN(ratio(1, 0)));
  assertEquals(ratio(3, 2), 1.5);
});

Deno.test("options: defaults, --quick, profiles, mistakes", () => {
  const d = parseBenchOptions([]);
  assert(d !== "help");
  assertEquals(d.runs, 3);
  assertEquals(d.cases.map((c) => `${c.path}/${c.profile}`), [
    "direct/default",
    "direct/none",
    "lossy/default",
  ]);
  assertEquals(d.profiles.none, ["-crypt", "none", "-nocomp", "-ds", "0", "-ps", "0"]);
  const q = parseBenchOptions(["--quick", "--runs", "4", "--profile", "f3=-mode fast3"]);
  assert(q !== "help");
  assertEquals([q.runs, q.seconds, q.profiles.f3], [4, 1, ["-mode", "fast3"]]);
  assertEquals(parseBenchOptions(["-h"]), "help");
  assertThrows(() => parseBenchOptions(["--cases", "lossy/x"]));
  assertThrows(() => parseBenchOptions(["--tcp", "--cases", "lossy/default"]));
  assertThrows(() => parseBenchOptions(["--runs"]));
  assertThrows(() => parseBenchOptions(["--bogus"]));
  const t = parseBenchOptions(["--tcp"]);
  assert(t !== "help" && t.cases.every((c) => c.path === "direct"));
});

Deno.test("cpuprofile_top: self and total time per function", () => {
  const frame = (functionName: string) => ({ functionName, url: "", lineNumber: 0 });
  const r = summariseProfile({
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 4] },
      { id: 2, callFrame: frame("outer"), children: [3] },
      { id: 3, callFrame: frame("inner") },
      { id: 4, callFrame: frame("(idle)") },
    ],
    samples: [3, 3, 2, 4],
    timeDeltas: [0, 1000, 1000, 1000, 1000],
  });
  const by = Object.fromEntries(r.functions.map((f) => [f.name, f]));
  assertEquals([by.inner.selfMs, by.inner.totalMs], [2, 2]);
  assertEquals([by.outer.selfMs, by.outer.totalMs], [1, 3]);
  assertEquals(by["(idle)"].selfMs, 1);
  assertEquals(r.totalMs, 4);
  assertEquals(
    selfByFile([
      { name: "a ext:x.js:3", selfMs: 2, totalMs: 2 },
      { name: "b ext:x.js:9", selfMs: 3, totalMs: 3 },
      { name: "op_read", selfMs: 4, totalMs: 4 },
    ]),
    [{ file: "ext:x.js", selfMs: 5 }, { file: "op_read", selfMs: 4 }],
  );
});
