/**
 * `-replaywindow` end to end, through our two programs (`cli/client.ts`, `cli/server.ts`) with
 * `-crypt aes-128-gcm`: a UDP relay between them records 5,000 genuine datagrams each way in the
 * middle of a transfer and sends them again while the transfer goes on, the copies towards the
 * server half from the client's relayed address and half from another address. Every copy is
 * dropped and counted (`InReplays` on `SIGUSR2`'s `kcptun-ts SNMP:` line, exactly the number each
 * end was sent), no copy opens a session or draws an answer, and the transfer is byte-exact.
 */

import { assert, assertEquals } from "../support/assert.ts";
import { sleep } from "../support/net.ts";
import { describeFailures, echoStreams, EchoTarget, freePort } from "../interop/harness.ts";
import { type Proc, spawnClient, spawnServer, waitFor } from "./harness.ts";

/** Genuine datagrams recorded (and sent again) per direction. */
const COPIES = 5000;
/** Recording starts after this many datagrams of each direction went by. */
const SKIP = 1000;

/**
 * A relay for one client: forwards both ways, records datagrams SKIP..SKIP+COPIES of each
 * direction, and once both are recorded sends them all again, paced, while traffic goes on.
 */
class ReplayRelay {
  readonly port = freePort();
  readonly #front = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: this.port,
  });
  readonly #back = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  /** Another address sending copies towards the server. */
  readonly #attacker = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  readonly #server: Deno.NetAddr;
  #client: Deno.NetAddr | null = null;
  readonly up: Uint8Array[] = [];
  readonly down: Uint8Array[] = [];
  seen = { up: 0, down: 0 };
  sent = { upSame: 0, upOther: 0, down: 0 };
  /** Datagrams the server sent to the other address (it must send none). */
  attackerGot = 0;
  /** Resolves once every copy was sent. */
  readonly replayed: Promise<void>;
  #startReplay!: () => void;
  #closed = false;
  readonly #tasks: Promise<void>[];

  constructor(serverPort: number) {
    this.#server = { transport: "udp", hostname: "127.0.0.1", port: serverPort };
    const start = new Promise<void>((r) => this.#startReplay = r);
    this.replayed = start.then(() => this.#replay());
    this.#tasks = [this.#pumpUp(), this.#pumpDown(), this.#listenAttacker()];
  }

  #record(into: Uint8Array[], n: number, data: Uint8Array): void {
    if (n >= SKIP && into.length < COPIES) into.push(data.slice());
    if (this.up.length === COPIES && this.down.length === COPIES) this.#startReplay();
  }

  async #pumpUp(): Promise<void> {
    try {
      while (!this.#closed) {
        const [data, from] = await this.#front.receive();
        this.#client = from as Deno.NetAddr;
        this.#record(this.up, this.seen.up++, data);
        await this.#back.send(data, this.#server);
      }
    } catch { /* closed */ }
  }

  async #pumpDown(): Promise<void> {
    try {
      while (!this.#closed) {
        const [data] = await this.#back.receive();
        this.#record(this.down, this.seen.down++, data);
        if (this.#client) await this.#front.send(data, this.#client);
      }
    } catch { /* closed */ }
  }

  async #listenAttacker(): Promise<void> {
    try {
      while (!this.#closed) {
        await this.#attacker.receive();
        this.attackerGot++;
      }
    } catch { /* closed */ }
  }

  /** Bursts of 50 each way, 2 ms apart: loopback's socket buffers never overflow. */
  async #replay(): Promise<void> {
    for (let i = 0; i < COPIES; i += 50) {
      for (let j = i; j < Math.min(COPIES, i + 50); j++) {
        if (j % 2 === 0) {
          await this.#back.send(this.up[j], this.#server);
          this.sent.upSame++;
        } else {
          await this.#attacker.send(this.up[j], this.#server);
          this.sent.upOther++;
        }
        await this.#front.send(this.down[j], this.#client!);
        this.sent.down++;
      }
      await sleep(2);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of [this.#front, this.#back, this.#attacker]) {
      try {
        s.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled(this.#tasks);
  }
}

/** `InReplays` from the `kcptun-ts SNMP:` line a SIGUSR2 makes `p` log. */
async function inReplays(p: Proc): Promise<number> {
  const before = p.output().length;
  p.signal("SIGUSR2");
  const re = /kcptun-ts SNMP:&\{InReplays:(\d+)\}/;
  await waitFor(() => p.output().slice(before), re, 10000, "SIGUSR2 output");
  return Number(re.exec(p.output().slice(before))![1]);
}

Deno.test("e2e (subprocess): -replaywindow drops 10,000 replayed aes-128-gcm datagrams mid-transfer", async () => {
  const target = EchoTarget.tcp();
  const sp = freePort(), cp = freePort();
  const common = ["-key", "replay-test", "-crypt", "aes-128-gcm", "-replaywindow", "65536"];
  const server = spawnServer(["-l", `127.0.0.1:${sp}`, "-t", target.address, ...common]);
  let relay: ReplayRelay | null = null;
  let client: Proc | null = null;
  try {
    await waitFor(server.output, "replaywindow: 65536", 15000, "server log");
    relay = new ReplayRelay(sp);
    client = spawnClient(["-l", `127.0.0.1:${cp}`, "-r", `127.0.0.1:${relay.port}`, ...common]);
    await waitFor(client.output, "listening on:", 15000, "client log");
    let transferDone = false;
    let replayStartedMidTransfer = false;
    const r = relay;
    r.replayed.then(() => {}, () => {});
    const startedWatch = (async () => {
      while (!transferDone && r.sent.down === 0) await sleep(5);
      replayStartedMidTransfer = !transferDone;
    })();
    const report = await echoStreams({ port: cp }, {
      streams: 4,
      bytes: 3 * 1024 * 1024,
      seed: 1500,
      timeoutMs: 120_000,
    });
    transferDone = true;
    await startedWatch;
    const failed = describeFailures(report);
    assert(failed === "", `transfer:\n${failed}\n${server.output()}\n${client.output()}`);
    assert(
      replayStartedMidTransfer,
      `replay did not start during the transfer: ${JSON.stringify(relay.seen)}`,
    );
    await relay.replayed;
    await sleep(1000); // the last copies reach the ends
    assertEquals(relay.sent, { upSame: COPIES / 2, upOther: COPIES / 2, down: COPIES });
    // Every copy dropped and counted, and nothing else: no genuine datagram was taken for one.
    assertEquals(await inReplays(server), COPIES, server.output());
    assertEquals(await inReplays(client), COPIES, client.output());
    for (const p of [server, client]) {
      assert(p.output().includes("InCsumErrors:0 "), `integrity failures:\n${p.output()}`);
      assert(/dropped as (a copy|copies) of one already received/.test(p.output()), p.output());
    }
    // The copies from the other address opened no session and drew no answer.
    assertEquals(server.output().split("remote address:").length - 1, 1, server.output());
    assertEquals(relay.attackerGot, 0);
  } finally {
    await client?.kill();
    await server.kill();
    await relay?.close();
    await target.close();
  }
});
