/**
 * The kernel's own UDP counters (`/proc/net/snmp` `Udp:` and `/proc/net/snmp6` `Udp6*`), for
 * benchmarks and diagnostics: `RcvbufErrors` counts datagrams the kernel dropped because a
 * socket's receive buffer was full, which is what an event-loop stall or a small `-sockbuf` costs.
 *
 * Counters are system-wide, so take a delta around the work being measured and keep other UDP
 * traffic away. Linux only; elsewhere (or without read permission) the functions return `null`.
 *
 * @module
 */

/** One family's UDP counters, named as the kernel names them (without the `Udp6` prefix). */
export interface KernelUdpCounters {
  /** Datagrams delivered to sockets. */
  InDatagrams: number;
  /** Datagrams to a port nobody listens on. */
  NoPorts: number;
  /** Datagrams dropped on receive (includes `RcvbufErrors`). */
  InErrors: number;
  /** Datagrams sent; a segmented (UDP GSO) message counts once, however many it carries. */
  OutDatagrams: number;
  /** Datagrams dropped because the receive buffer was full. */
  RcvbufErrors: number;
  /** Datagrams dropped because the send buffer was full. */
  SndbufErrors: number;
  /** Datagrams with a bad checksum. */
  InCsumErrors: number;
}

/** IPv4 and IPv6 counters, and their sum. */
export interface KernelUdpSnapshot {
  /** `/proc/net/snmp` `Udp:` (IPv4, including IPv4 peers of dual-stack sockets). */
  udp4: KernelUdpCounters;
  /** `/proc/net/snmp6` `Udp6*` (zeros when IPv6 is off). */
  udp6: KernelUdpCounters;
  /** Field-wise sum of the two. */
  total: KernelUdpCounters;
}

const FIELDS = [
  "InDatagrams",
  "NoPorts",
  "InErrors",
  "OutDatagrams",
  "RcvbufErrors",
  "SndbufErrors",
  "InCsumErrors",
] as const;

function zero(): KernelUdpCounters {
  return {
    InDatagrams: 0,
    NoPorts: 0,
    InErrors: 0,
    OutDatagrams: 0,
    RcvbufErrors: 0,
    SndbufErrors: 0,
    InCsumErrors: 0,
  };
}

/** Parses the text of `/proc/net/snmp` (the `Udp:` header and value lines). */
export function parseSnmpUdp(text: string): KernelUdpCounters | null {
  const lines = text.split("\n").filter((l) => l.startsWith("Udp: "));
  if (lines.length < 2) return null;
  const names = lines[0].trim().split(/\s+/), values = lines[1].trim().split(/\s+/);
  const out = zero();
  for (let i = 1; i < names.length; i++) {
    const f = names[i] as typeof FIELDS[number];
    if ((FIELDS as readonly string[]).includes(f)) out[f] = Number(values[i]);
  }
  return out;
}

/** Parses the text of `/proc/net/snmp6` (`Udp6<Name> <value>` lines). */
export function parseSnmp6Udp(text: string): KernelUdpCounters {
  const out = zero();
  for (const line of text.split("\n")) {
    const m = /^Udp6(\w+)\s+(\d+)/.exec(line);
    if (m && (FIELDS as readonly string[]).includes(m[1])) {
      out[m[1] as typeof FIELDS[number]] = Number(m[2]);
    }
  }
  return out;
}

/** Reads the kernel's UDP counters now, or `null` when `/proc/net/snmp` cannot be read. */
export function readKernelUdpCounters(): KernelUdpSnapshot | null {
  let udp4: KernelUdpCounters | null;
  try {
    udp4 = parseSnmpUdp(Deno.readTextFileSync("/proc/net/snmp"));
  } catch {
    return null;
  }
  if (udp4 === null) return null;
  let udp6 = zero();
  try {
    udp6 = parseSnmp6Udp(Deno.readTextFileSync("/proc/net/snmp6"));
  } catch {
    // no IPv6
  }
  const total = zero();
  for (const f of FIELDS) total[f] = udp4[f] + udp6[f];
  return { udp4, udp6, total };
}

/** `after - before`, field by field, on the totals. */
export function diffKernelUdpCounters(
  before: KernelUdpSnapshot,
  after: KernelUdpSnapshot,
): KernelUdpCounters {
  const d = zero();
  for (const f of FIELDS) d[f] = after.total[f] - before.total[f];
  return d;
}
