/**
 * Loss-adaptive parity (kcptun-ts `-autofec`): how many of a group's parity shards to send, from
 * the loss this session measures. Sans-IO: every method takes counts and an explicit `now`.
 *
 * The layout on the wire never changes: groups stay `ds` data + `ps` parity seqids (`-ds`/`-ps`),
 * so a kcp-go receiver configured with the same numbers never has to re-tune. What changes is how
 * many of the `ps` parity shards of a group are actually sent (the first `level` rows; the others'
 * seqids are used up unsent, which a receiver cannot tell from loss), and at level 0 between groups
 * datagrams leave as bare KCP with no FEC header at all (kcp-go hands any datagram whose bytes 4..5
 * are not 0xF1/0xF2 straight to KCP). Rows of klauspost's code do not depend on how many follow,
 * so the first `level` parity shards of a `ds`+`ps` group are exactly a `ds`+`level` code.
 *
 * Three measurements feed it:
 * - **the peer's shards** ({@link ShardGapMeter}): data-position seqids of the peer's FEC stream that
 *   never arrived, i.e. the loss of the reverse path, FEC-rebuilt or not, with its burst length;
 * - **our retransmissions** ({@link PushMeter}): the share of our PUSH segments that are
 *   retransmissions, a lower bound of the forward loss that FEC did not hide;
 * - **the peer's layout** ({@link LayoutCheck}): whether its FEC stream shows our `ds`/`ps`. Only
 *   then is a partial group sent; otherwise a group carries all `ps` parity or none of them (bare
 *   KCP), so a receiver with other numbers sees exactly a fixed sender's FEC stream.
 *
 * @module
 */

import { readU32, seqDiff } from "./wire.ts";

/**
 * The estimate's weight of one sample: an exponential average over about 1024 samples, long
 * enough to hold a few losses at 0.3 % (shorter windows made the level flap between neighbours).
 */
export const AUTO_ALPHA = 1 / 1024;
/**
 * The run length estimate starts from this many runs of length 1 (in units of one sample's
 * weight), so that one long run among few losses does not swing it.
 */
const BURST_PRIOR = 2 * AUTO_ALPHA;
/** Default residual loss per data shard the level aims at. */
export const AUTO_TARGET = 0.001;
/** Default time a lower level must have been enough before it is taken (ms). */
export const AUTO_HOLD_MS = 3000;
/** Samples (of either meter) needed during the hold before lowering. */
export const AUTO_MIN_SAMPLES = 128;
/** Lowering asks for a level that would still do with this many times the measured loss. */
export const AUTO_MARGIN = 2;
/**
 * A peer FEC stream silent this long (ms) no longer counts: its sender went bare or idle, so its
 * loss estimate can no longer be confirmed or corrected.
 */
export const AUTO_PEER_QUIET_MS = 5000;
/** Longest mean loss run the model uses (datagrams). */
export const AUTO_MAX_BURST = 64;

/**
 * Expected share of data shards a `ds` + `parity` group fails to deliver (lost, and the group lost
 * more than `parity` shards) on a link that drops a fraction `loss` of datagrams in runs averaging
 * `burst` datagrams (a two-state Gilbert chain whose bad state drops everything, the lossy relay's
 * and the simulator's model; `burst` ≤ 1/(1−loss) is independent loss). Shards go out back to back,
 * data first.
 */
export function residualLoss(loss: number, burst: number, ds: number, parity: number): number {
  if (loss <= 0) return 0;
  if (loss >= 1) return 1;
  const b = Math.min(AUTO_MAX_BURST, Math.max(burst, 1 / (1 - loss)));
  const stay = 1 - 1 / b; // P(lost | previous lost)
  const enter = loss / (b * (1 - loss)); // P(lost | previous delivered): keeps the mean at `loss`
  const cap = parity + 1; // counts above parity are all "too many"
  // p[s][t]: probability of chain state s (0 delivered, 1 lost) with t losses so far (capped);
  // w[s][t]: the same weighted by the data shards lost so far.
  let p0 = new Float64Array(cap + 1), p1 = new Float64Array(cap + 1);
  let w0 = new Float64Array(cap + 1), w1 = new Float64Array(cap + 1);
  let q0 = new Float64Array(cap + 1), q1 = new Float64Array(cap + 1);
  let v0 = new Float64Array(cap + 1), v1 = new Float64Array(cap + 1);
  // Before the first shard the chain is in its stationary state.
  const start = [1 - loss, loss];
  const n = ds + parity;
  for (let j = 0; j < n; j++) {
    const data = j < ds ? 1 : 0;
    q0.fill(0), q1.fill(0), v0.fill(0), v1.fill(0);
    if (j === 0) {
      // First shard: lost with the stationary probability.
      q0[0] = start[0];
      q1[1] = start[1];
      v1[1] = start[1] * data;
    } else {
      for (let t = 0; t <= cap; t++) {
        const a = p0[t], c = p1[t];
        if (a === 0 && c === 0) continue;
        const toLost = a * enter + c * stay;
        const toKept = a * (1 - enter) + c * (1 - stay);
        const wl = w0[t] * enter + w1[t] * stay;
        const wk = w0[t] * (1 - enter) + w1[t] * (1 - stay);
        const up = t < cap ? t + 1 : cap;
        q0[t] += toKept;
        v0[t] += wk;
        q1[up] += toLost;
        v1[up] += wl + toLost * data;
      }
    }
    [p0, q0] = [q0, p0];
    [p1, q1] = [q1, p1];
    [w0, v0] = [v0, w0];
    [w1, v1] = [v1, w1];
  }
  return (w0[cap] + w1[cap]) / ds;
}

/**
 * The fewest parity shards (0..`maxParity`) whose {@link residualLoss} is at most `target`, or
 * `maxParity` when none is. Residual loss falls as parity grows, so a binary search finds it.
 */
export function parityFor(
  loss: number,
  burst: number,
  ds: number,
  maxParity: number,
  target: number,
): number {
  if (residualLoss(loss, burst, ds, 0) <= target) return 0;
  let lo = 0, hi = maxParity; // residual(lo) > target; answer in (lo, hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (residualLoss(loss, burst, ds, mid) <= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Settings of a {@link FecAutoController}. */
export interface FecAutoOptions {
  /** Data shards per group (`-ds`). */
  readonly dataShards: number;
  /** Parity shards per group on the wire, the most ever sent (`-ps`). */
  readonly maxParity: number;
  /** Residual loss per data shard to aim at (default {@link AUTO_TARGET}). */
  readonly target?: number;
  /** How long a lower level must have been enough before it is taken (ms, default 3000). */
  readonly holdMs?: number;
}

/**
 * Chooses the parity level from the loss measured so far. Raising is immediate; lowering waits
 * until a lower level would still meet the target at {@link AUTO_MARGIN} times the measured loss,
 * continuously for `holdMs` and {@link AUTO_MIN_SAMPLES} samples. It starts at `maxParity` (what a
 * fixed sender sends) and so needs evidence before it saves anything.
 */
export class FecAutoController {
  /** Data shards per group. */
  readonly dataShards: number;
  /** Most parity shards per group. */
  readonly maxParity: number;
  readonly #target: number;
  readonly #holdMs: number;
  #level: number;
  // Exponential averages per sample: reverse loss and loss-run starts per peer data position,
  // retransmissions per PUSH segment we sent.
  #peerLoss = 0;
  #peerRuns = 0;
  #peerSamples = 0;
  #retrans = 0;
  #pushSamples = 0;
  #peerSeen = 0;
  #peerQuietSince = 0;
  #lowSince = -1;
  #lowSamples = 0;
  #lowBest = 0;
  #changes = 0;

  /** A controller for groups of `options.dataShards` + up to `options.maxParity`. */
  constructor(options: FecAutoOptions) {
    this.dataShards = options.dataShards;
    this.maxParity = options.maxParity;
    this.#target = options.target ?? AUTO_TARGET;
    this.#holdMs = options.holdMs ?? AUTO_HOLD_MS;
    this.#level = options.maxParity;
  }

  /** Parity shards per group wanted now (0 = no FEC at all). */
  get level(): number {
    return this.#level;
  }

  /** Times the level changed. */
  get changes(): number {
    return this.#changes;
  }

  /** The loss estimate the level is chosen from: the larger of the two measurements. */
  get loss(): number {
    return Math.max(this.#peerLoss, this.#retrans);
  }

  /** Mean length of the peer's loss runs (datagrams; 1 before any run was seen). */
  get burst(): number {
    return Math.max(1, (this.#peerLoss + BURST_PRIOR) / (this.#peerRuns + BURST_PRIOR));
  }

  /** Loss of the reverse path, from the peer's FEC seqids. */
  get peerLoss(): number {
    return this.#peerLoss;
  }

  /** Share of our PUSH segments that were retransmissions. */
  get retransmitted(): number {
    return this.#retrans;
  }

  /** A data shard of the peer arrived after `lost` data shards of its stream that never did. */
  peerShard(lost: number): void {
    const keep = 1 - AUTO_ALPHA;
    if (lost > 0) {
      const k = Math.pow(keep, lost);
      this.#peerLoss = 1 - (1 - this.#peerLoss) * k;
      // One run starts at the first of them; the rest of the run and the arrival are not starts.
      this.#peerRuns = (this.#peerRuns + AUTO_ALPHA * (1 - this.#peerRuns)) * Math.pow(keep, lost);
    } else {
      this.#peerRuns *= keep;
    }
    this.#peerLoss *= keep;
    this.#peerSamples += lost + 1;
  }

  /** We sent `first` new PUSH segments and `retransmitted` retransmissions. */
  pushes(first: number, retransmitted: number): void {
    if (first + retransmitted === 0) return;
    const keep = 1 - AUTO_ALPHA;
    // Retransmissions go out after the new segments of a flush; the order barely matters.
    this.#retrans *= Math.pow(keep, first);
    this.#retrans = 1 - (1 - this.#retrans) * Math.pow(keep, retransmitted);
    this.#pushSamples += first + retransmitted;
  }

  /**
   * Re-evaluates the level at `now` (ms) and returns it. When the peer's FEC stream has been
   * silent for {@link AUTO_PEER_QUIET_MS}, its loss estimate is dropped: a stale high value would
   * otherwise keep parity up for good.
   */
  update(now: number): number {
    if (this.#peerSamples !== this.#peerSeen) {
      this.#peerSeen = this.#peerSamples;
      this.#peerQuietSince = now;
    } else if (this.#peerLoss > 0 && now - this.#peerQuietSince >= AUTO_PEER_QUIET_MS) {
      this.#peerLoss = 0;
      this.#peerRuns = 0;
    }
    const loss = this.loss;
    const burst = this.burst;
    const ds = this.dataShards, max = this.maxParity;
    const want = parityFor(loss, burst, ds, max, this.#target);
    if (want > this.#level) {
      this.#set(want);
      return want;
    }
    if (this.#level === 0) return 0;
    const low = parityFor(Math.min(1, loss * AUTO_MARGIN), burst, ds, max, this.#target);
    if (low >= this.#level) {
      this.#lowSince = -1;
      return this.#level;
    }
    const samples = this.#peerSamples + this.#pushSamples;
    if (this.#lowSince < 0) {
      this.#lowSince = now;
      this.#lowSamples = samples;
      this.#lowBest = low;
      return this.#level;
    }
    if (low > this.#lowBest) this.#lowBest = low;
    if (now - this.#lowSince >= this.#holdMs && samples - this.#lowSamples >= AUTO_MIN_SAMPLES) {
      this.#set(this.#lowBest);
    }
    return this.#level;
  }

  #set(level: number): void {
    this.#level = level;
    this.#lowSince = -1;
    this.#changes++;
  }
}

/**
 * Loss of the peer's FEC stream, from its seqids: data-position seqids skipped between two
 * arrivals were lost (or are late: reordering counts as loss here). Parity positions are not
 * counted, because an adaptive peer leaves parity seqids unsent on purpose.
 */
export class ShardGapMeter {
  #highest = 0;
  #started = false;
  #pending = 0;

  /**
   * Records a shard of the peer whose layout is `ds` data + `n − ds` parity. Returns the number of
   * data positions lost since the previous data shard when this one is a data shard that advances
   * the stream, else -1 (parity, a late or repeated seqid, or a jump that restarts counting).
   */
  observe(seqid: number, ds: number, n: number): number {
    const isData = seqid % n < ds;
    if (!this.#started) {
      this.#started = true;
      this.#highest = seqid;
      return isData ? 0 : -1;
    }
    const d = seqDiff(seqid, this.#highest);
    if (d <= 0) return -1;
    if (d > 3 * n || seqid < this.#highest) {
      // A long silence of FEC, or the seqids wrapped at the peer's paws: start afresh.
      this.#highest = seqid;
      this.#pending = 0;
      return isData ? 0 : -1;
    }
    for (let s = this.#highest + 1; s < seqid; s++) if (s % n < ds) this.#pending++;
    this.#highest = seqid;
    if (!isData) return -1;
    const lost = this.#pending;
    this.#pending = 0;
    return lost;
  }
}

/**
 * Counts our PUSH segments and which of them are retransmissions (an sn not above the highest
 * sent), reading the KCP datagrams on their way to the FEC encoder.
 */
export class PushMeter {
  #maxSn = 0;
  #started = false;
  /** New PUSH segments seen since the last {@link PushMeter.take}. */
  first = 0;
  /** Retransmitted PUSH segments seen since the last {@link PushMeter.take}. */
  retransmitted = 0;

  /** Reads the segments of one KCP datagram `buf[start, end)`. */
  observe(buf: Uint8Array, start: number, end: number): void {
    let at = start;
    while (end - at >= 24) {
      const len = readU32(buf, at + 20);
      if (buf[at + 4] === 81) {
        const sn = readU32(buf, at + 12);
        if (!this.#started || seqDiff(sn, this.#maxSn) > 0) {
          this.#started = true;
          this.#maxSn = sn;
          this.first++;
        } else {
          this.retransmitted++;
        }
      }
      if (len > end - at - 24) break;
      at += 24 + len;
    }
  }

  /** Resets the two counts (after handing them to the controller). */
  take(): void {
    this.first = 0;
    this.retransmitted = 0;
  }
}

/**
 * Whether the peer's FEC stream shows our layout (`ds` data, `n − ds` parity per group). A kcp-go
 * peer decodes with the numbers it encodes with, so a stream in our layout means its decoder
 * already uses our groups and never re-tunes on ours: only then may a group go out with some of
 * its parity left unsent. Confirmed after `4n` shards of the peer, every position of a group seen,
 * and no shard of the wrong kind for its position; one such shard and it is never confirmed again.
 */
export class LayoutCheck {
  readonly #ds: number;
  readonly #n: number;
  readonly #seen: Uint8Array;
  #covered = 0;
  #consistent = 0;
  #mismatch = false;

  /** A check for groups of `ds` data shards out of `n`. */
  constructor(ds: number, n: number) {
    this.#ds = ds;
    this.#n = n;
    this.#seen = new Uint8Array(n);
  }

  /** True once the peer's stream has shown our layout (and never contradicted it). */
  get confirmed(): boolean {
    return !this.#mismatch && this.#covered === this.#n && this.#consistent >= 4 * this.#n;
  }

  /** True once a shard of the peer contradicted our layout. */
  get mismatched(): boolean {
    return this.#mismatch;
  }

  /** Records one shard of the peer. */
  observe(seqid: number, isData: boolean): void {
    if (this.#mismatch) return;
    const pos = seqid % this.#n;
    if ((pos < this.#ds) !== isData) {
      this.#mismatch = true;
      return;
    }
    this.#consistent++;
    if (this.#seen[pos] === 0) {
      this.#seen[pos] = 1;
      this.#covered++;
    }
  }
}
