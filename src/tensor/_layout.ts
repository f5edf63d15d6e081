/**
 * Private rank and stride helpers shared by the ops that describe tensors to their kernels as
 * sizes and strides (reduce.ts, shape.ts): the largest rank a kernel's params hold, contiguous
 * strides, padding of per-axis params to that rank, and merging of axes that are contiguous in
 * every tensor involved. Not part of the public API.
 *
 * @module
 */

/**
 * Most axes a kernel's params describe per layout (two `vec4<u32>` per array in the WGSL params).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { MAX_RANK, padTo } from "./_layout.ts";
 * const dims = [2, 3, 4];
 * if (dims.length > MAX_RANK) throw new RangeError("too many axes");
 * assert.equal(padTo(dims).length, MAX_RANK);
 * ```
 */
export const MAX_RANK = 8;

/**
 * Row-major (C-order) strides of a contiguous tensor of `shape`, in elements.
 *
 * @example
 * ```ts
 * import { contiguousStrides } from "./_layout.ts";
 * contiguousStrides([2, 3, 4]); // [12, 4, 1]
 * contiguousStrides([]); // []
 * ```
 */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/**
 * `values` followed by zeros up to `length` entries (default {@link MAX_RANK}): the fixed-size
 * per-axis arrays of a kernel's params. Throws a RangeError when `values` is longer.
 *
 * @example
 * ```ts
 * import { padTo } from "./_layout.ts";
 * padTo([3, 5]); // [3, 5, 0, 0, 0, 0, 0, 0]
 * padTo([1, 2, 3], 4); // [1, 2, 3, 0]
 * ```
 */
export function padTo(values: readonly number[], length: number = MAX_RANK): number[] {
  if (values.length > length) {
    throw new RangeError(`padTo: ${values.length} values do not fit in ${length}`);
  }
  return [...values, ...new Array(length - values.length).fill(0)];
}

/** A run of merged axes: its total size and, per layout, the stride of its innermost axis. */
export interface MergedAxis {
  /** Product of the sizes of the merged axes. */
  size: number;
  /** One stride per layout given to {@link mergeAxes}, in the same order. */
  strides: number[];
}

/**
 * Walks a box of `shape` as seen by several layouts (`strides[k][i]`: the stride of axis `i` in
 * layout `k`) and returns the fewest axis runs that address the same elements in every layout:
 * size-1 axes are dropped, and an axis is merged into the run before it when, in every layout,
 * that run's stride equals the axis's size times its stride (the two are contiguous there).
 * The result may be empty (a box of one element).
 *
 * @example
 * ```ts
 * import { contiguousStrides, mergeAxes } from "./_layout.ts";
 * // Copying [2,3,4] between two contiguous tensors: one run of 24.
 * mergeAxes([2, 3, 4], [contiguousStrides([2, 3, 4]), contiguousStrides([2, 3, 4])]);
 * // [{ size: 24, strides: [1, 1] }]
 * // The same box read transposed ([4,3,2] source): nothing merges.
 * mergeAxes([2, 3, 4], [[1, 2, 6], [12, 4, 1]]);
 * // [{ size: 2, strides: [1, 12] }, { size: 3, strides: [2, 4] }, { size: 4, strides: [6, 1] }]
 * ```
 */
export function mergeAxes(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): MergedAxis[] {
  const runs: MergedAxis[] = [];
  shape.forEach((size, i) => {
    if (size === 1) return;
    const prev = runs[runs.length - 1];
    if (prev && strides.every((s, k) => prev.strides[k] === size * s[i])) {
      prev.size *= size;
      prev.strides = strides.map((s) => s[i]);
    } else runs.push({ size, strides: strides.map((s) => s[i]) });
  });
  return runs;
}
