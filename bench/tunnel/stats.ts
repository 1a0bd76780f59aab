/**
 * Small statistics for the tunnel benchmark's summaries.
 *
 * @module
 */

/** The median of the finite values (NaN when there are none). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * The `p`-th percentile (0..100) of the finite values, nearest-rank on the sorted values
 * (NaN when there are none). Nearest-rank keeps p99 an observed sample, never an interpolation.
 */
export function percentile(values: readonly number[], p: number): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * v.length);
  return v[Math.min(v.length - 1, Math.max(0, rank - 1))];
}

/** Sum of the finite values (NaN when there are none). */
export function sum(values: readonly number[]): number {
  const v = values.filter(Number.isFinite);
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0);
}

/** `a / b`, NaN unless both are finite and `b` is not zero. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
