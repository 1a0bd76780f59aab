/**
 * A small kcptun-compatible client and server for the fake-TCP interop tests, built by the
 * runtime from a pipeline list (`tcp > smux > snappy > kcp > fec > crypt > faketcp`): the test
 * talks to smux streams directly instead of going through local TCP sockets.
 */

import type { PipelineSpec } from "../../pipeline/pipeline.ts";
import { Snmp } from "../../pipeline/snmp.ts";
import type { DatagramSocket } from "../../pipeline/transport.ts";
import type { PeerAddress } from "../../pipeline/packet.ts";
import { buildTunnel } from "../../runtime/api.ts";
import { dialSession } from "../../runtime/dial.ts";
import { listenSessions, type TunnelListener } from "../../runtime/listen.ts";
import type { TunnelSession } from "../../runtime/session.ts";
import type { TunnelStream } from "../../runtime/stream.ts";
import type { Tunnel } from "../../runtime/tunnel.ts";

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

const SOCKBUF = 4194304;

/**
 * The pipeline kcptun 2021 runs for `f` over fake TCP, with its windows (client 128/512,
 * server 1024/1024) and mode fast.
 */
export function miniPipeline(f: TunnelFlags, role: "client" | "server"): PipelineSpec {
  const wnd = role === "client" ? { sndwnd: 128, rcvwnd: 512 } : { sndwnd: 1024, rcvwnd: 1024 };
  return {
    stages: ["tcp", "smux", ...(f.nocomp ? [] : ["snappy"]), "kcp", "fec", "crypt", "faketcp"],
    options: {
      crypt: { crypt: f.crypt, key: f.key, generation: "2021" },
      fec: { dataShards: f.ds, parityShards: f.ps },
      kcp: { mode: "fast", mtu: 1350, ...wnd },
    },
  };
}

/** One client session (kcptun `-conn 1`) over a fake-TCP socket dialled to the server. */
export class MiniClient {
  /** The dialled socket (its stats show what crossed as TCP segments). */
  readonly socket: DatagramSocket;
  /** The session. */
  readonly session: TunnelSession;
  /** Counters. */
  readonly snmp: Snmp;
  readonly #tunnel: Tunnel;

  private constructor(tunnel: Tunnel, socket: DatagramSocket, session: TunnelSession) {
    this.#tunnel = tunnel;
    this.socket = socket;
    this.session = session;
    this.snmp = tunnel.snmp;
  }

  /** Dials `host:port`; rejects when the fake-TCP handshake fails. */
  static async dial(host: string, port: number, f: TunnelFlags): Promise<MiniClient> {
    const tunnel = await buildTunnel(miniPipeline(f, "client"), "client", { snmp: new Snmp() });
    try {
      // Dialled here rather than by dialSession, to keep the socket for its counters.
      const socket = await tunnel.transport.dial(host, port, { sockbuf: SOCKBUF });
      const peer = (socket as DatagramSocket & { remoteAddr: PeerAddress }).remoteAddr;
      const session = await dialSession(tunnel, host, port, { via: { socket, peer } });
      return new MiniClient(tunnel, socket, session);
    } catch (e) {
      tunnel.close();
      throw e;
    }
  }

  /** Opens a stream (kcptun opens one per accepted TCP connection). */
  open(): TunnelStream {
    return this.session.openStream();
  }

  /** Closes the session (and with it the socket) and the tunnel end. */
  async close(): Promise<void> {
    await this.session.close();
    this.#tunnel.close();
  }
}

/**
 * A server listening on fake TCP at `host:port` (and, as Go's `-tcp` server, plain UDP on the
 * same port), every smux stream of every session echoed back.
 */
export class MiniEchoServer {
  /** The listener (its sockets: fake TCP first, then UDP). */
  readonly listener: TunnelListener;
  /** Counters. */
  readonly snmp: Snmp;
  /** Streams echoed so far. */
  streams = 0;
  /** Why each session ended (for failure messages). */
  readonly endings: string[] = [];
  readonly #tunnel: Tunnel;
  readonly #loop: Promise<void>;

  private constructor(tunnel: Tunnel, listener: TunnelListener) {
    this.#tunnel = tunnel;
    this.listener = listener;
    this.snmp = tunnel.snmp;
    this.#loop = (async () => {
      for (;;) {
        const session = await listener.accept();
        if (session === null) return;
        session.closed.then((c) => this.endings.push(c.reason));
        void this.#serve(session);
      }
    })();
  }

  /** Listens at `host:port` with the pipeline `f` gives. */
  static async listen(host: string, port: number, f: TunnelFlags): Promise<MiniEchoServer> {
    const tunnel = await buildTunnel(miniPipeline(f, "server"), "server", { snmp: new Snmp() });
    try {
      const listener = await listenSessions(tunnel, host, port, port, { sockbuf: SOCKBUF });
      return new MiniEchoServer(tunnel, listener);
    } catch (e) {
      tunnel.close();
      throw e;
    }
  }

  /** The fake-TCP socket. */
  get socket(): DatagramSocket {
    return this.listener.sockets[0];
  }

  async #serve(session: TunnelSession): Promise<void> {
    for (;;) {
      let s: TunnelStream;
      try {
        s = await session.acceptStream();
      } catch {
        return;
      }
      this.streams++;
      // A stream piped into itself: what the client writes comes back; its FIN ends the pipe,
      // which closes the stream.
      s.readable.pipeTo(s.writable).catch(() => s.close());
    }
  }

  /** Closes every session and socket, then the tunnel end. */
  async close(): Promise<void> {
    await this.listener.close();
    await this.#loop;
    this.#tunnel.close();
  }
}
