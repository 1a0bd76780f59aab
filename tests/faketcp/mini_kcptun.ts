/**
 * A small kcptun-compatible client and server built straight from our layers (transport, crypt,
 * FEC, KCP, snappy, smux), for the fake-TCP interop tests: the test talks to smux streams
 * directly instead of going through local TCP sockets.
 */

import { PacketChain } from "../../pipeline/chain.ts";
import { defaultPool } from "../../pipeline/packet.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { StageContext } from "../../pipeline/stage.ts";
import type { DatagramSocket, DatagramTransport } from "../../pipeline/transport.ts";
import { createCryptStage } from "../../transforms/crypt/stage.ts";
import { fecStage } from "../../transforms/fec/mod.ts";
import { clientSession } from "../../transforms/kcp/dial.ts";
import { KcpListener } from "../../transforms/kcp/listener.ts";
import { KCP_MODES } from "../../transforms/kcp/modes.ts";
import { KcpSession } from "../../transforms/kcp/session.ts";
import { KCPTUN_2021_SMUX } from "../../transforms/smux/config.ts";
import { type ByteStreamPair, SmuxDriver, type SmuxStream } from "../../transforms/smux/driver.ts";
import { withSnappy } from "../../transforms/snappy/mod.ts";

/** The kcptun flags the tests vary. */
export interface TunnelFlags {
  /** `-crypt` */
  crypt: string;
  /** `-key` */
  key: string;
  /** `-datashard` */
  ds: number;
  /** `-parityshard` */
  ps: number;
  /** `-nocomp` */
  nocomp: boolean;
}

/** The same flags on Go's command line. */
export function goFlags(f: TunnelFlags): string[] {
  const a = ["-crypt", f.crypt, "-key", f.key, "-ds", String(f.ds), "-ps", String(f.ps)];
  if (f.nocomp) a.push("-nocomp");
  return a;
}

const MTU = 1350;
const FAST = KCP_MODES.fast;

function stages(f: TunnelFlags, ctx: StageContext) {
  const crypt = createCryptStage({ crypt: f.crypt, key: f.key, generation: "2021" }, ctx);
  const fec = fecStage.create({ dataShards: f.ds, parityShards: f.ps }, ctx);
  return { crypt, fec };
}

function mux(stream: ByteStreamPair, f: TunnelFlags, role: "client" | "server"): SmuxDriver {
  return new SmuxDriver(f.nocomp ? stream : withSnappy(stream), { ...KCPTUN_2021_SMUX, role });
}

/** One client session (kcptun `-conn 1`): smux over KCP over a dialled socket. */
export class MiniClient {
  /** The dialled socket. */
  readonly socket: DatagramSocket;
  /** The KCP session. */
  readonly session: KcpSession;
  /** The smux session. */
  readonly smux: SmuxDriver;
  /** Counters. */
  readonly snmp: Snmp;

  private constructor(socket: DatagramSocket, session: KcpSession, smux: SmuxDriver, snmp: Snmp) {
    this.socket = socket;
    this.session = session;
    this.smux = smux;
    this.snmp = snmp;
  }

  /** Dials `host:port` through `transport` (kcptun 2021 client windows: 128/512, mode fast). */
  static async dial(
    transport: DatagramTransport,
    host: string,
    port: number,
    f: TunnelFlags,
  ): Promise<MiniClient> {
    const snmp = new Snmp();
    const ctx: StageContext = { role: "client", pool: defaultPool, snmp, log: () => {} };
    const socket = await transport.dial(host, port, { sockbuf: 4194304 });
    const { crypt, fec } = stages(f, ctx);
    const session = clientSession(socket, new PacketChain([fec, crypt]), {
      mtu: MTU,
      kcp: { ...FAST, sndWnd: 128, rcvWnd: 512 },
      pool: defaultPool,
      snmp,
    });
    return new MiniClient(socket, session, mux(session, f, "client"), snmp);
  }

  /** Opens a stream (kcptun opens one per accepted TCP connection). */
  open(): SmuxStream {
    return this.smux.openStream();
  }

  /** Closes smux, KCP and the socket. */
  async close(): Promise<void> {
    await this.smux.close().catch(() => {});
    this.session.close();
    await this.socket.close();
  }
}

/** A server: a KCP listener on `socket`, each session's smux streams echoed back. */
export class MiniEchoServer {
  /** The listener. */
  readonly listener: KcpListener;
  /** Counters. */
  readonly snmp: Snmp;
  /** Streams echoed so far. */
  streams = 0;
  /** Why each smux session ended (for failure messages). */
  readonly endings: string[] = [];
  readonly #drivers: SmuxDriver[] = [];
  readonly #loop: Promise<void>;

  /** Serves on `socket` (kcptun 2021 server windows: 1024/1024, mode fast). */
  constructor(socket: DatagramSocket, f: TunnelFlags) {
    const snmp = new Snmp();
    this.snmp = snmp;
    const ctx: StageContext = { role: "server", pool: defaultPool, snmp, log: () => {} };
    const { crypt } = stages(f, ctx);
    this.listener = new KcpListener(socket, {
      shared: new PacketChain([crypt]),
      locator: "fec",
      snmp,
      createSession: (sock, peer, conv) => {
        const fec = fecStage.create({ dataShards: f.ds, parityShards: f.ps }, ctx);
        return new KcpSession(sock, peer, new PacketChain([fec, crypt]), {
          conv,
          mtu: MTU,
          kcp: { ...FAST, sndWnd: 1024, rcvWnd: 1024 },
          pool: defaultPool,
          snmp,
          decodeChain: new PacketChain([fec]),
        });
      },
    });
    const listener = this.listener;
    this.#loop = (async () => {
      for (;;) {
        const session = await listener.accept();
        if (session === null) return;
        const driver = mux(session, f, "server");
        this.#drivers.push(driver);
        driver.closed.then((c) => this.endings.push(c.reason));
        void (async () => {
          for (;;) {
            let s: SmuxStream;
            try {
              s = await driver.acceptStream();
            } catch {
              return;
            }
            this.streams++;
            void echoStream(s);
          }
        })();
      }
    })();
  }

  /** Closes every session and the socket. */
  async close(): Promise<void> {
    await Promise.all(this.#drivers.map((d) => d.close().catch(() => {})));
    await this.listener.close();
    await this.#loop;
  }
}

/**
 * Echoes a stream with an explicit read/write loop. `s.readable.pipeTo(s.writable)` on the same
 * smux stream fails now and then with "wake is not a function": the pipe's write runs inside the
 * driver's `update()` of that very stream, which re-enters `update()` (reported to the lead).
 */
async function echoStream(s: SmuxStream): Promise<void> {
  const r = s.readable.getReader(), w = s.writable.getWriter();
  try {
    for (;;) {
      const { value, done } = await r.read();
      if (done) break;
      await w.write(value);
    }
    await w.close();
  } catch {
    s.close();
  }
}
