/**
 * A model of what kcp-go v5.6.1 (Debian's kcptun 20210922) does with FEC datagrams, for tests:
 * the session's FEC input (decoder created with its own ds/ps, or lazily as a 1/1 guess when its
 * FEC is off), the v5.6.1 decoder (one seqid-ordered queue, grouping and rebuilding with whatever
 * parameters it currently believes, even wrong ones), and the checks a rebuilt shard passes before
 * KCP gets it, down to which KCP segments `KCP.Input` would take.
 *
 * Unlike our `FecDecoder`, it keeps v5.6.1's flaw: while the parameters are wrong it still groups
 * and rebuilds. Written from the v5.6.1 behaviour described in docs/protocol.md §4.6 and read in kcp-go's
 * fec.go / sess.go / kcp.go at tag v5.6.1; the 60 s expiry is left out (tests take no time).
 *
 * @module
 */

import { AutoTune } from "../../transforms/fec/autotune.ts";
import { ReedSolomon } from "../../transforms/fec/reed_solomon.ts";
import { readU16, readU32, seqDiff } from "../../transforms/fec/wire.ts";

interface Entry {
  seqid: number;
  isData: boolean;
  /** Bytes after seqid/flag (data: size ‖ KCP bytes; parity: parity bytes). */
  body: Uint8Array;
}

/** One KCP segment as `KCP.Input` parses it. */
export interface KcpSegmentView {
  cmd: number;
  sn: number;
  /** Header and data, as hex: what identifies the segment. */
  hex: string;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * The segments kcp-go v5.6.1's `KCP.Input` would act on, in order, for datagram `kcp` of session
 * `conv`: it stops at the first segment with another conv, a length past the end, or an unknown
 * cmd, but segments before that one have already been processed.
 */
export function kcpAccepts(kcp: Uint8Array, conv: number): KcpSegmentView[] {
  const out: KcpSegmentView[] = [];
  let at = 0;
  while (kcp.length - at >= 24) {
    if (readU32(kcp, at) !== conv) break;
    const cmd = kcp[at + 4];
    const len = readU32(kcp, at + 20);
    if (kcp.length - at - 24 < len) break;
    if (cmd < 81 || cmd > 84) break;
    out.push({ cmd, sn: readU32(kcp, at + 12), hex: hex(kcp.subarray(at, at + 24 + len)) });
    at += 24 + len;
  }
  return out;
}

/** What one datagram made the session hand to KCP. */
export interface ReceiverOutput {
  /** Data shard KCP bytes, given to KCP as a regular packet (everything after the header). */
  regular: Uint8Array | null;
  /** Rebuilt shards that passed the size check: the bytes KCP gets (`r[2:size]`). */
  rebuilt: Uint8Array[];
  /** Rebuilt shards dropped by the size check (kcp-go's FECErrs). */
  rejected: number;
}

/** The receiving side of one kcp-go v5.6.1 session, FEC part. */
export class KcpGo2021Receiver {
  #ds = 0;
  #ps = 0;
  #codec: ReedSolomon | null = null;
  #rx: Entry[] = [];
  readonly #tune = new AutoTune(2021);
  /** Times the parameters changed by auto-tuning, with the seqid that triggered it. */
  readonly tunes: { seqid: number; ds: number; ps: number }[] = [];

  /** A session configured with `ds`/`ps` (0/0: FEC off, decoder made on the first FEC datagram). */
  constructor(ds: number, ps: number) {
    if (ds > 0 && ps > 0) this.#setParams(ds, ps);
  }

  /** Current (ds, ps) of the decoder, or null before it exists. */
  get params(): [number, number] | null {
    return this.#codec ? [this.#ds, this.#ps] : null;
  }

  #setParams(ds: number, ps: number): void {
    this.#ds = ds;
    this.#ps = ps;
    this.#codec = new ReedSolomon(ds, ps);
  }

  /**
   * Feeds one datagram (no crypt header): an FEC one (seqid ‖ flag ‖ body), or, as `kcpInput`
   * does with anything whose bytes 4..5 are not 0xF1/0xF2, bare KCP handed to KCP as it is.
   */
  input(dgram: Uint8Array): ReceiverOutput {
    const out: ReceiverOutput = { regular: null, rebuilt: [], rejected: 0 };
    const flag = readU16(dgram, 4);
    if (flag !== 0xf1 && flag !== 0xf2) {
      if (dgram.length >= 24) out.regular = dgram.slice();
      return out;
    }
    if (dgram.length < 8) return out;
    if (this.#codec === null) this.#setParams(1, 1);
    for (const r of this.#decode(dgram)) {
      const size = r.length >= 2 ? readU16(r, 0) : 0;
      if (size >= 2 && size <= r.length) out.rebuilt.push(r.slice(2, size));
      else out.rejected++;
    }
    if (flag === 0xf1) out.regular = dgram.slice(8);
    return out;
  }

  #decode(dgram: Uint8Array): Uint8Array[] {
    const seqid = readU32(dgram, 0);
    const isData = readU16(dgram, 4) === 0xf1;
    this.#tune.sample(isData, seqid);
    let n = this.#ds + this.#ps;
    if ((seqid % n < this.#ds) !== isData) {
      const ds = this.#tune.findPeriod(true);
      const ps = this.#tune.findPeriod(false);
      if (ds > 0 && ps > 0 && ds < 256 && ps < 256 && (ds !== this.#ds || ps !== this.#ps)) {
        this.#setParams(ds, ps);
        this.tunes.push({ seqid, ds, ps });
        n = ds + ps;
      }
    }
    const ds = this.#ds;
    const rx = this.#rx;

    let insertAt = 0;
    for (let i = rx.length - 1; i >= 0; i--) {
      if (rx[i].seqid === seqid) return [];
      if (seqDiff(seqid, rx[i].seqid) > 0) {
        insertAt = i + 1;
        break;
      }
    }
    rx.splice(insertAt, 0, { seqid, isData, body: dgram.slice(6) });

    const pos = seqid % n;
    const begin = (seqid - pos) >>> 0;
    const end = (begin + n - 1) >>> 0;
    const searchBegin = Math.max(0, insertAt - pos);
    const searchEnd = Math.min(searchBegin + n - 1, rx.length - 1);
    const rebuilt: Uint8Array[] = [];
    if (searchEnd - searchBegin + 1 >= ds) {
      const shards: (Uint8Array | null)[] = new Array(n).fill(null);
      let count = 0, dataCount = 0, first = 0, maxLength = 0;
      for (let i = searchBegin; i <= searchEnd; i++) {
        const e = rx[i];
        if (seqDiff(e.seqid, end) > 0) break;
        if (seqDiff(e.seqid, begin) < 0) continue;
        shards[e.seqid % n] = e.body;
        if (count === 0) first = i;
        count++;
        if (e.isData) dataCount++;
        maxLength = Math.max(maxLength, e.body.length);
      }
      if (dataCount === ds) {
        rx.splice(first, count);
      } else if (count >= ds) {
        const padded = shards.map((s) => {
          const b = new Uint8Array(maxLength);
          if (s) b.set(s);
          return b;
        });
        const present = shards.map((s) => s !== null);
        if (this.#codec!.reconstructData(padded, present, maxLength)) {
          for (let k = 0; k < ds; k++) if (!present[k]) rebuilt.push(padded[k]);
        }
        rx.splice(first, count);
      }
    }
    if (rx.length > 3 * n) rx.shift();
    return rebuilt;
  }
}
