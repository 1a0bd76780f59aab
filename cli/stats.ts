/**
 * The figures the demo's status line shows and `-stats N` logs, and their formatting, in one
 * place: throughput each way, sessions, streams, mean smoothed RTT, retransmissions and FEC
 * recoveries. An end is looked at with {@link sampleEnd} (its counters and live sessions); two
 * looks give the figures of the interval between them ({@link intervalFigures}).
 *
 * ```ts
 * import { Snmp } from "../pipeline/snmp.ts";
 * import { intervalFigures, sampleEnd, statsLine } from "./stats.ts";
 *
 * const snmp = new Snmp();
 * const session = { streamCount: 3, connection: { kcp: { srtt: 41 } } };
 * const before = sampleEnd(snmp, [session], 0);
 * snmp.BytesSent += 2_500_000;
 * snmp.RetransSegs += 12;
 * const line = statsLine(intervalFigures(before, sampleEnd(snmp, [session], 5000)));
 * if (!line.startsWith("stats: sent 0.50 MB/s, received 0.00 MB/s, retrans 12, FEC 0 in 5.0 s;")) {
 *   throw new Error(line);
 * }
 * ```
 *
 * @module
 */

import type { SnmpField } from "../pipeline/snmp.ts";

/** What the figures read of a session (a runtime `TunnelSession` has it). */
export interface StatsSession {
  /** Streams open now. */
  readonly streamCount: number;
  /** The session's state. */
  readonly connection: {
    /** Its KCP core. */
    readonly kcp: {
      /** Smoothed RTT (ms; 0 before the first sample). */
      readonly srtt: number;
    };
  };
}

/** The counters the figures read. */
export type StatsCounters = Readonly<
  Pick<Record<SnmpField, number>, "BytesSent" | "BytesReceived" | "RetransSegs" | "FECRecovered">
>;

/** One look at an end: its cumulative counters and its live sessions at a moment. */
export interface EndSample {
  /** Clock (ms) of the look. */
  readonly at: number;
  /** `BytesSent`: bytes the sessions handed KCP (smux frames, after compression). */
  readonly sentBytes: number;
  /** `BytesReceived`: bytes KCP delivered to the sessions. */
  readonly receivedBytes: number;
  /** `RetransSegs`: KCP segments sent again. */
  readonly retransmits: number;
  /** `FECRecovered`: lost datagrams rebuilt from parity. */
  readonly fecRecovered: number;
  /** Live sessions. */
  readonly sessions: number;
  /** Streams open over all of them. */
  readonly streams: number;
  /** Mean smoothed RTT of the live sessions (ms), 0 without one. */
  readonly srttMs: number;
}

/** Mean smoothed RTT (ms) of `sessions`, 0 without one. */
export function meanSrtt(sessions: Iterable<StatsSession>): number {
  let n = 0, sum = 0;
  for (const s of sessions) {
    sum += s.connection.kcp.srtt;
    n++;
  }
  return n > 0 ? sum / n : 0;
}

/** Looks at an end now (`at`, ms): counters and live sessions. */
export function sampleEnd(
  snmp: StatsCounters,
  sessions: Iterable<StatsSession>,
  at: number,
): EndSample {
  const list = [...sessions];
  let streams = 0;
  for (const s of list) streams += s.streamCount;
  return {
    at,
    sentBytes: snmp.BytesSent,
    receivedBytes: snmp.BytesReceived,
    retransmits: snmp.RetransSegs,
    fecRecovered: snmp.FECRecovered,
    sessions: list.length,
    streams,
    srttMs: meanSrtt(list),
  };
}

/** What happened between two looks, and the state at the second. */
export interface IntervalFigures {
  /** Length of the interval (s). */
  readonly seconds: number;
  /** Bytes sent in it. */
  readonly sentBytes: number;
  /** Bytes received in it. */
  readonly receivedBytes: number;
  /** Segments retransmitted in it. */
  readonly retransmits: number;
  /** Datagrams FEC rebuilt in it. */
  readonly fecRecovered: number;
  /** Live sessions at its end. */
  readonly sessions: number;
  /** Open streams at its end. */
  readonly streams: number;
  /** Mean smoothed RTT at its end (ms). */
  readonly srttMs: number;
}

/** The figures of the interval from `prev` to `cur`. */
export function intervalFigures(prev: EndSample, cur: EndSample): IntervalFigures {
  return {
    seconds: (cur.at - prev.at) / 1000,
    sentBytes: cur.sentBytes - prev.sentBytes,
    receivedBytes: cur.receivedBytes - prev.receivedBytes,
    retransmits: cur.retransmits - prev.retransmits,
    fecRecovered: cur.fecRecovered - prev.fecRecovered,
    sessions: cur.sessions,
    streams: cur.streams,
    srttMs: cur.srttMs,
  };
}

/** `1.23 MB/s` (decimal megabytes), `-` for an empty interval. */
export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? (bytes / 1e6 / seconds).toFixed(2) + " MB/s" : "-";
}

/** `12.3 MB` (decimal megabytes). */
export function formatMegabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1) + " MB";
}

/** `41 ms`. */
export function formatMs(ms: number): string {
  return `${Math.round(ms)} ms`;
}

/**
 * The `-stats` line:
 * `stats: sent 1.23 MB/s, received 0.45 MB/s, retrans 12, FEC 3 in 5.0 s; sessions 1, streams 4, srtt 41 ms`.
 */
export function statsLine(f: IntervalFigures): string {
  return `stats: sent ${formatRate(f.sentBytes, f.seconds)}, ` +
    `received ${formatRate(f.receivedBytes, f.seconds)}, ` +
    `retrans ${f.retransmits}, FEC ${f.fecRecovered} in ${f.seconds.toFixed(1)} s; ` +
    `sessions ${f.sessions}, streams ${f.streams}, srtt ${formatMs(f.srttMs)}`;
}

/** Options of {@link StatsReporter}. */
export interface StatsReporterOptions {
  /** `-stats`: seconds between lines (≤ 0: the reporter does nothing). */
  readonly periodSeconds: number;
  /** The end's counters. */
  readonly snmp: StatsCounters;
  /** The end's live sessions now. */
  readonly sessions: () => Iterable<StatsSession>;
  /** Where lines go (the log). */
  readonly log: (line: string) => void;
  /** Clock in ms (default `performance.now`). */
  readonly clock?: () => number;
}

/** Logs a {@link statsLine} every period; see the module doc. */
export class StatsReporter {
  readonly #o: StatsReporterOptions;
  #timer: ReturnType<typeof setInterval> | null = null;
  #last: EndSample | null = null;

  /** Makes a reporter; nothing happens before {@link StatsReporter.start}. */
  constructor(options: StatsReporterOptions) {
    this.#o = options;
  }

  #sample(): EndSample {
    const o = this.#o;
    return sampleEnd(o.snmp, o.sessions(), (o.clock ?? (() => performance.now()))());
  }

  /** Starts the timer: the first line comes one period from now. */
  start(): void {
    if (this.#o.periodSeconds <= 0 || this.#timer !== null) return;
    this.#last = this.#sample();
    this.#timer = setInterval(() => this.#o.log(this.next()), this.#o.periodSeconds * 1000);
  }

  /** The line for the interval since the last one (or since start), and a new interval begins. */
  next(): string {
    const cur = this.#sample();
    const line = statsLine(intervalFigures(this.#last ?? cur, cur));
    this.#last = cur;
    return line;
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}
