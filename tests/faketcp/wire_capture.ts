/**
 * A small packet recorder for the fake-TCP tests: raw sockets (root) that see every TCP or UDP
 * packet delivered on this host, recording those with a watched port at either end. On loopback
 * both directions of a flow are delivered locally, so one recorder sees the whole conversation.
 */

import { attachFilter, eitherPortFilter } from "../../transports/faketcp/bpf.ts";
import { C, type Libc, loadLibc } from "../../transports/libc.ts";
import { sharedPoller } from "../../transports/poller.ts";

/** One recorded packet. */
export interface WirePacket {
  /** 4 or 6. */
  family: 4 | 6;
  /** Source and destination ports. */
  sport: number;
  /** See `sport`. */
  dport: number;
  /** TCP flags (0 for UDP). */
  flags: number;
  /** Transport payload bytes. */
  payload: number;
  /** IPv4 TTL (IPv6 hop limits are not visible to a raw socket: -1). */
  ttl: number;
  /** IPv4 TOS byte (-1 for IPv6). */
  tos: number;
}

/** Records TCP or UDP packets touching `ports`, on IPv4 and IPv6, until stopped. */
export class WireCapture {
  readonly packets: WirePacket[] = [];
  readonly #libc: Libc = loadLibc();
  readonly #fds: { fd: number; family: 4 | 6; token: number }[] = [];
  readonly #buf = new Uint8Array(new ArrayBuffer(70000));
  readonly #ports: Set<number>;
  readonly #udp: boolean;

  /** Records `protocol` packets to or from `port`. */
  constructor(protocol: "tcp" | "udp", port: number) {
    this.#ports = new Set([port]);
    this.#udp = protocol === "udp";
    const proto = this.#udp ? C.IPPROTO_UDP : C.IPPROTO_TCP;
    const poller = sharedPoller(this.#libc);
    for (const family of [4, 6] as const) {
      const fd = this.#libc.symbols.socket(
        family === 4 ? C.AF_INET : C.AF_INET6,
        C.SOCK_RAW | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC,
        proto,
      );
      if (fd < 0) throw new Error(this.#libc.describe("raw socket"));
      // Filtered in the kernel and with room to spare, so that a busy host (other tests moving
      // megabytes over loopback) cannot overflow the queue and hide packets.
      if (attachFilter(this.#libc, fd, eitherPortFilter(family === 4, port)) !== 0) {
        throw new Error(this.#libc.describe("attach filter"));
      }
      const big = new Uint8Array(4);
      new DataView(big.buffer).setInt32(0, 8 << 20, true);
      this.#libc.symbols.setsockopt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, big, 4);
      // What was queued before the filter is unfiltered: drop it.
      while (
        Number(this.#libc.symbols.recvfrom(fd, this.#buf, 70000n, C.MSG_DONTWAIT, null, null)) > 0
      );
      const rec = { fd, family, token: 0 };
      rec.token = poller.add(fd, () => this.#read(rec.fd, family));
      this.#fds.push(rec);
    }
  }

  #read(fd: number, family: 4 | 6): void {
    const sym = this.#libc.symbols, b = this.#buf;
    for (let i = 0; i < 256; i++) {
      const n = Number(sym.recvfrom(fd, b, BigInt(b.length), C.MSG_DONTWAIT, null, null));
      if (n <= 0) return;
      let t = 0, ttl = -1, tos = -1, end = n;
      if (family === 4) {
        t = (b[0] & 15) * 4;
        ttl = b[8];
        tos = b[1];
        end = (b[2] << 8) | b[3];
      }
      const sport = (b[t] << 8) | b[t + 1], dport = (b[t + 2] << 8) | b[t + 3];
      if (!this.#ports.has(sport) && !this.#ports.has(dport)) continue;
      const hl = this.#udp ? 8 : (b[t + 12] >>> 4) * 4;
      this.packets.push({
        family,
        sport,
        dport,
        flags: this.#udp ? 0 : b[t + 13],
        payload: end - t - hl,
        ttl,
        tos,
      });
    }
  }

  /** Stops recording (reads what is queued first) and closes the sockets. */
  async stop(): Promise<WirePacket[]> {
    const poller = sharedPoller(this.#libc);
    for (const r of this.#fds) this.#read(r.fd, r.family);
    for (const r of this.#fds) {
      await poller.remove(r.fd, r.token);
      this.#libc.symbols.close(r.fd);
    }
    this.#fds.length = 0;
    return this.packets;
  }
}
