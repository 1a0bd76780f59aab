/**
 * The Reed-Solomon erasure code of klauspost/reedsolomon's default constructor, which kcp-go uses:
 * a (ds+ps)×ds Vandermonde matrix V[r][c] = r^c, times the inverse of its top ds×ds square, so
 * the top ds rows are the identity and rows ds.. give the parity coefficients (docs/protocol.md §4.4).
 * Any other construction would produce parity that Go peers cannot use.
 *
 * Bulk work goes through packed tables (see {@link packMulTable}): one 256-entry Uint32Array per
 * (input shard, group of four outputs), so one table load per input byte does up to four
 * multiply-adds.
 *
 * @module
 */

import { gfInv, gfMul, gfPow, packedMulAdd, packMulTable, unpackLane } from "./gf256.ts";

/** Largest ds+ps: seqids and matrix rows are bytes. */
export const MAX_TOTAL_SHARDS = 256;

/** Row-major square matrix inverse over GF(2^8) (Gauss-Jordan); null when singular. */
export function invertMatrix(m: Uint8Array, n: number): Uint8Array | null {
  const w = 2 * n;
  const a = new Uint8Array(n * w);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) a[r * w + c] = m[r * n + c];
    a[r * w + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * w + col] === 0) pivot++;
    if (pivot === n) return null;
    if (pivot !== col) {
      for (let c = 0; c < w; c++) {
        const t = a[pivot * w + c];
        a[pivot * w + c] = a[col * w + c];
        a[col * w + c] = t;
      }
    }
    const inv = gfInv(a[col * w + col]);
    if (inv !== 1) { for (let c = 0; c < w; c++) a[col * w + c] = gfMul(a[col * w + c], inv); }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r * w + col];
      if (f === 0) continue;
      for (let c = 0; c < w; c++) a[r * w + c] ^= gfMul(f, a[col * w + c]);
    }
  }
  const out = new Uint8Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) out[r * n + c] = a[r * w + n + c];
  }
  return out;
}

/** Row-major product of a (rows×inner) and b (inner×cols) over GF(2^8). */
export function multiplyMatrix(
  a: Uint8Array,
  b: Uint8Array,
  rows: number,
  inner: number,
  cols: number,
): Uint8Array {
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let v = 0;
      for (let k = 0; k < inner; k++) v ^= gfMul(a[r * inner + k], b[k * cols + c]);
      out[r * cols + c] = v;
    }
  }
  return out;
}

/**
 * The encoding matrix of klauspost/reedsolomon's default code: (ds+ps) rows × ds columns,
 * row-major. Rows [0, ds) are the identity.
 */
export function buildEncodingMatrix(dataShards: number, parityShards: number): Uint8Array {
  checkShardCounts(dataShards, parityShards);
  const total = dataShards + parityShards;
  const v = new Uint8Array(total * dataShards);
  for (let r = 0; r < total; r++) {
    for (let c = 0; c < dataShards; c++) v[r * dataShards + c] = gfPow(r, c);
  }
  const topInv = invertMatrix(v.subarray(0, dataShards * dataShards), dataShards);
  // The top square of a Vandermonde matrix with distinct rows is always invertible.
  if (topInv === null) throw new Error("unreachable: singular Vandermonde square");
  return multiplyMatrix(v, topInv, total, dataShards, dataShards);
}

function checkShardCounts(dataShards: number, parityShards: number): void {
  if (
    !Number.isInteger(dataShards) || !Number.isInteger(parityShards) || dataShards < 1 ||
    parityShards < 1 || dataShards + parityShards > MAX_TOTAL_SHARDS
  ) {
    throw new RangeError(
      `invalid shard counts ${dataShards}+${parityShards}: need ds ≥ 1, ps ≥ 1, ds+ps ≤ 256`,
    );
  }
}

/**
 * Packed tables for computing `rows.length` outputs from `inputs` inputs: for input j and output
 * group g (outputs 4g..4g+3), entries at `(j * groups + g) * 256`.
 */
function buildPackedTables(rows: Uint8Array, outputs: number, inputs: number): Uint32Array {
  const groups = (outputs + 3) >> 2;
  const t = new Uint32Array(inputs * groups * 256);
  const coef = (o: number, j: number) => (o < outputs ? rows[o * inputs + j] : 0);
  for (let j = 0; j < inputs; j++) {
    for (let g = 0; g < groups; g++) {
      const o = g * 4;
      packMulTable(
        t,
        (j * groups + g) * 256,
        coef(o, j),
        coef(o + 1, j),
        coef(o + 2, j),
        coef(o + 3, j),
      );
    }
  }
  return t;
}

/** What a decode for one erasure pattern needs, cached per pattern. */
interface DecodePlan {
  /** Indices of the ds shards the data is rebuilt from (the first ds present ones). */
  readonly inputs: Int32Array;
  /** Data indices to rebuild. */
  readonly outputs: Int32Array;
  /** Packed tables: inputs × ceil(outputs/4) × 256. */
  readonly tables: Uint32Array;
}

const PLAN_CACHE_LIMIT = 256;
const CODEC_CACHE_LIMIT = 32;
const codecs = new Map<number, ReedSolomon>();

/**
 * One Reed-Solomon code (ds data shards, ps parity shards), with scratch space for shards of up to
 * `maxShardLength` bytes (it grows if a longer shard comes).
 */
export class ReedSolomon {
  /** Number of data shards. */
  readonly dataShards: number;
  /** Number of parity shards. */
  readonly parityShards: number;
  /** ds + ps. */
  readonly totalShards: number;
  /** The encoding matrix, (ds+ps)×ds row-major; rows [0, ds) are the identity. */
  readonly matrix: Uint8Array;
  /** Packed tables for the parity rows: ds × ceil(ps/4) × 256. */
  readonly parityTables: Uint32Array;
  /** ceil(ps/4): packed accumulators needed for parity. */
  readonly parityGroups: number;
  #acc: Uint32Array[] = [];
  readonly #plans = new Map<number | string, DecodePlan>();
  #present: Int32Array;

  /** A code with `dataShards` data and `parityShards` parity shards (both ≥ 1, sum ≤ 256). */
  constructor(dataShards: number, parityShards: number, maxShardLength = 2048) {
    this.matrix = buildEncodingMatrix(dataShards, parityShards);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.parityGroups = (parityShards + 3) >> 2;
    this.parityTables = buildPackedTables(
      this.matrix.subarray(dataShards * dataShards),
      parityShards,
      dataShards,
    );
    this.#present = new Int32Array(this.totalShards);
    this.#ensureScratch(maxShardLength, this.parityGroups);
  }

  /**
   * A process-wide instance for (ds, ps). Building a code costs O((ds+ps)·ds²) table work (tens
   * of ms near 256 shards), and an auto-tuning decoder fed garbage could ask for many; instances
   * are safe to share because JS runs each call to completion.
   */
  static shared(dataShards: number, parityShards: number): ReedSolomon {
    const key = dataShards * 257 + parityShards;
    let rs = codecs.get(key);
    if (rs === undefined) {
      rs = new ReedSolomon(dataShards, parityShards);
      if (codecs.size >= CODEC_CACHE_LIMIT) codecs.clear();
      codecs.set(key, rs);
    }
    return rs;
  }

  /** Parity row k (k in [0, ps)): the coefficients applied to data shards 0..ds-1. */
  parityRow(k: number): Uint8Array {
    const ds = this.dataShards;
    return this.matrix.slice((ds + k) * ds, (ds + k + 1) * ds);
  }

  #ensureScratch(length: number, groups: number): Uint32Array[] {
    const acc = this.#acc;
    if (acc.length > 0 && acc[0].length < length) acc.length = 0;
    const size = Math.max(length, acc.length > 0 ? acc[0].length : 0);
    while (acc.length < groups) acc.push(new Uint32Array(size));
    return acc;
  }

  /**
   * Computes parity: `shards[0, ds)` are the data, `shards[ds, ds+ps)` receive the parity; every
   * shard is read or written at `offset` for `length` bytes (callers zero-pad shorter data).
   */
  encode(shards: readonly Uint8Array[], length: number, offset = 0): void {
    const ds = this.dataShards;
    const ps = this.parityShards;
    const groups = this.parityGroups;
    const acc = this.#ensureScratch(length, groups);
    for (let g = 0; g < groups; g++) acc[g].fill(0, 0, length);
    const t = this.parityTables;
    for (let j = 0; j < ds; j++) {
      for (let g = 0; g < groups; g++) {
        packedMulAdd(acc[g], t, (j * groups + g) * 256, shards[j], offset, length);
      }
    }
    for (let k = 0; k < ps; k++) unpackLane(acc[k >> 2], k & 3, shards[ds + k], offset, length);
  }

  /**
   * Rebuilds missing data shards in place. `present[i]` is nonzero when `shards[i]` holds valid
   * bytes; missing data shards are written (they must be buffers with room for `length` bytes at
   * `offset`); missing parity shards are left alone. Returns false when fewer than ds shards are
   * present. Like klauspost's ReconstructData, it decodes from the first ds present shards.
   */
  reconstructData(
    shards: readonly Uint8Array[],
    present: ArrayLike<number | boolean>,
    length: number,
    offset = 0,
  ): boolean {
    const plan = this.#plan(present);
    if (plan === null) return false;
    const outputs = plan.outputs.length;
    if (outputs === 0) return true;
    const groups = (outputs + 3) >> 2;
    const acc = this.#ensureScratch(length, groups);
    for (let g = 0; g < groups; g++) acc[g].fill(0, 0, length);
    const inputs = plan.inputs;
    const t = plan.tables;
    for (let j = 0; j < inputs.length; j++) {
      const src = shards[inputs[j]];
      for (let g = 0; g < groups; g++) {
        packedMulAdd(acc[g], t, (j * groups + g) * 256, src, offset, length);
      }
    }
    for (let o = 0; o < outputs; o++) {
      unpackLane(acc[o >> 2], o & 3, shards[plan.outputs[o]], offset, length);
    }
    return true;
  }

  /** Decode plan for a presence pattern (cached), or null when too few shards are present. */
  #plan(present: ArrayLike<number | boolean>): DecodePlan | null {
    const ds = this.dataShards;
    const total = this.totalShards;
    const chosen = this.#present;
    let n = 0;
    let missingData = 0;
    // Within 53 shards the chosen set fits exactly in a double; beyond, a string key.
    let key: number | string = 0;
    const numeric = total <= 53;
    for (let i = 0; i < total && n < ds; i++) {
      if (present[i]) {
        chosen[n++] = i;
        if (numeric) key = (key as number) + 2 ** i;
      } else if (i < ds) missingData++;
    }
    if (n < ds) return null;
    if (!numeric) {
      let s = "";
      for (let i = 0; i < ds; i++) s += String.fromCharCode(chosen[i]);
      key = s;
    }
    const cached = this.#plans.get(key);
    if (cached !== undefined) return cached;

    const sub = new Uint8Array(ds * ds);
    for (let r = 0; r < ds; r++) {
      sub.set(this.matrix.subarray(chosen[r] * ds, chosen[r] * ds + ds), r * ds);
    }
    const inv = invertMatrix(sub, ds);
    // Every ds×ds submatrix of this code is invertible (MDS); guard anyway.
    if (inv === null) return null;
    const outputs = new Int32Array(missingData);
    const rows = new Uint8Array(missingData * ds);
    let o = 0;
    for (let i = 0; i < ds; i++) {
      if (present[i]) continue;
      outputs[o] = i;
      rows.set(inv.subarray(i * ds, i * ds + ds), o * ds);
      o++;
    }
    const plan: DecodePlan = {
      inputs: chosen.slice(0, ds),
      outputs,
      tables: buildPackedTables(rows, missingData, ds),
    };
    if (this.#plans.size >= PLAN_CACHE_LIMIT) this.#plans.clear();
    this.#plans.set(key, plan);
    return plan;
  }
}
