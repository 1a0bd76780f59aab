/**
 * The process-wide counters kcptun calls SNMP, in kcp-go v5.6.1 (kcptun 2021) order.
 *
 * Every layer increments the fields it owns (crypt: `InCsumErrors`; FEC: `FEC*`; KCP: segment
 * counters and `KCPInErrors`; transports: packet and byte counters; sessions: connection counters).
 * Counters are cumulative and never reset, as in kcptun.
 *
 * @module
 */

/** Field names in Go struct order (what SIGUSR1 prints, `KCP SNMP:&{...}`). */
export const SNMP_STRUCT_FIELDS = [
  "BytesSent",
  "BytesReceived",
  "MaxConn",
  "ActiveOpens",
  "PassiveOpens",
  "CurrEstab",
  "InErrs",
  "InCsumErrors",
  "KCPInErrors",
  "InPkts",
  "OutPkts",
  "InSegs",
  "OutSegs",
  "InBytes",
  "OutBytes",
  "RetransSegs",
  "FastRetransSegs",
  "EarlyRetransSegs",
  "LostSegs",
  "RepeatSegs",
  "FECRecovered",
  "FECErrs",
  "FECParityShards",
  "FECShortShards",
] as const;

/** Field names in CSV header order (what `-snmplog` writes after the `Unix` column). */
export const SNMP_CSV_FIELDS = [
  "BytesSent",
  "BytesReceived",
  "MaxConn",
  "ActiveOpens",
  "PassiveOpens",
  "CurrEstab",
  "InErrs",
  "InCsumErrors",
  "KCPInErrors",
  "InPkts",
  "OutPkts",
  "InSegs",
  "OutSegs",
  "InBytes",
  "OutBytes",
  "RetransSegs",
  "FastRetransSegs",
  "EarlyRetransSegs",
  "LostSegs",
  "RepeatSegs",
  "FECParityShards",
  "FECErrs",
  "FECRecovered",
  "FECShortShards",
] as const;

/** One counter's name. */
export type SnmpField = typeof SNMP_STRUCT_FIELDS[number];

/**
 * Counters kcptun-ts adds (not kcptun's: neither in its `SIGUSR1` struct nor its CSV, whose
 * formats stay kcptun's). The CLI logs them on a line of their own when a feature that counts
 * them is on.
 */
export const SNMP_EXTRA_FIELDS = ["InReplays"] as const;

/** One of the counters kcptun-ts adds. */
export type SnmpExtraField = typeof SNMP_EXTRA_FIELDS[number];

/** kcptun's counters as plain numeric fields (cheap to increment on hot paths). */
export class Snmp {
  /** Bytes written by applications into sessions. */
  BytesSent = 0;
  /** Bytes delivered by sessions to applications. */
  BytesReceived = 0;
  /** Largest number of sessions open at once. */
  MaxConn = 0;
  /** Sessions opened by dialling (client). */
  ActiveOpens = 0;
  /** Sessions accepted (server). */
  PassiveOpens = 0;
  /** Sessions open now. */
  CurrEstab = 0;
  /** Datagrams from an unexpected source, or malformed at the FEC level. */
  InErrs = 0;
  /** Datagrams failing their CRC32 or AEAD check. */
  InCsumErrors = 0;
  /** Datagrams KCP could not parse (bad conv, length or command). */
  KCPInErrors = 0;
  /** Datagrams received. */
  InPkts = 0;
  /** Datagrams sent. */
  OutPkts = 0;
  /** KCP segments received. */
  InSegs = 0;
  /** KCP segments sent. */
  OutSegs = 0;
  /** Datagram bytes received. */
  InBytes = 0;
  /** Datagram bytes sent. */
  OutBytes = 0;
  /** Segments sent again for any reason. */
  RetransSegs = 0;
  /** Segments sent again after duplicate ACKs. */
  FastRetransSegs = 0;
  /** Segments sent again early (ACK seen with nothing new to send). */
  EarlyRetransSegs = 0;
  /** Segments sent again after their RTO. */
  LostSegs = 0;
  /** Duplicate PUSH segments received. */
  RepeatSegs = 0;
  /** Data shards rebuilt by FEC. */
  FECRecovered = 0;
  /** FEC decode errors and malformed FEC shards. */
  FECErrs = 0;
  /** Parity shards received. */
  FECParityShards = 0;
  /** Data shards evicted before their group could be used. */
  FECShortShards = 0;
  /**
   * kcptun-ts, not one of kcptun's fields (so not in {@link SNMP_STRUCT_FIELDS} nor the CSV):
   * authenticated datagrams dropped because their nonce was accepted before (`-replaywindow`).
   */
  InReplays = 0;

  /** Values in CSV order. */
  csvValues(): number[] {
    return SNMP_CSV_FIELDS.map((f) => this[f]);
  }

  /** A copy of the current values. */
  snapshot(): Record<SnmpField, number> {
    const out = {} as Record<SnmpField, number>;
    for (const f of SNMP_STRUCT_FIELDS) out[f] = this[f];
    return out;
  }
}

/** The counters of this process. */
export const snmp: Snmp = new Snmp();
