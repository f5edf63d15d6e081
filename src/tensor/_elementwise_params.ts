// The integer block of ops/elementwise.wgsl's Params: [n, rank, inner, n_segs, inner_a,
// inner_b, pad, pad, shape[8], strides_a[8], strides_b[8]]; the float params p0, p1 follow it.

/** Number of integer slots before the float params. */
export const ELEMENTWISE_INTS = 32;

/** The integer block for a plain 1-D range of `n` items. */
export function rangeInts(n: number): number[] {
  const ints = new Array(ELEMENTWISE_INTS).fill(0);
  ints[0] = n;
  return ints;
}
