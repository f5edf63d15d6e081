/**
 * Shape ops: permute, transpose, slice, split, concat, stack, squeeze and unsqueeze. All are
 * differentiable. Kernels: layout.wgsl (one strided copy serves them all); squeeze and
 * unsqueeze are views (reshape), the rest copy.
 *
 * @module
 */

import { copyBuffer, dispatch, grid1d } from "../../gpu/queue.ts";
import { LAYOUT } from "./_kernels.ts";
import { empty, full, record, type Shape, type Tensor } from "../tensor.ts";
import { normAxes } from "./reduce.ts";
import { contiguousStrides, MAX_RANK, mergeAxes, padTo } from "../_layout.ts";

/** Elements of a row that one invocation of the copy kernel moves (at most). */
const SEG_LEN = 32;

/**
 * A box whose rows are contiguous in both tensors, with at most this many rows of at least
 * {@link COPY_MIN_ROW} elements, is moved with buffer-to-buffer copies (a memcpy each) instead
 * of the copy kernel: concatenating frames or channels of large images.
 */
const COPY_MAX_ROWS = 64;
const COPY_MIN_ROW = 4096;

const fmt = (shape: Shape) => `[${shape.join(",")}]`;

/** Normalises one axis of a tensor of rank `rank` (negative from the end). */
function normAxis(axis: number, rank: number, op: string, shape: Shape): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(
      `${op}: axis ${axis} is out of range for shape ${fmt(shape)} (rank ${rank})`,
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * `dst[dstBase + c . dstStrides] = src[srcBase + c . srcStrides]` for every coordinate `c` of a
 * box of `shape`. Axes of size 1 are dropped and axes contiguous in both tensors merged first.
 */
function stridedCopy(
  op: string,
  src: Tensor,
  srcBase: number,
  srcStrides: number[],
  dst: Tensor,
  dstBase: number,
  dstStrides: number[],
  shape: Shape,
): void {
  const dims = mergeAxes(shape, [srcStrides, dstStrides]);
  if (dims.length > MAX_RANK) {
    throw new RangeError(`${op}: shape ${fmt(shape)} has more than ${MAX_RANK} non-mergeable axes`);
  }
  const n = shape.reduce((p, d) => p * d, 1);
  if (n === 0) return;
  const inner = dims.pop() ?? { size: 1, strides: [1, 1] };
  const rows = n / inner.size;
  if (
    inner.strides[0] === 1 && inner.strides[1] === 1 && inner.size >= COPY_MIN_ROW &&
    rows <= COPY_MAX_ROWS
  ) {
    for (let r = 0; r < rows; r++) {
      let rest = r;
      let from = srcBase;
      let to = dstBase;
      for (let k = dims.length - 1; k >= 0; k--) {
        const c = rest % dims[k].size;
        rest = Math.floor(rest / dims[k].size);
        from += c * dims[k].strides[0];
        to += c * dims[k].strides[1];
      }
      copyBuffer(src.buffer, dst.buffer, 4 * inner.size, 4 * from, 4 * to);
    }
    return;
  }
  const nSegs = Math.ceil(inner.size / SEG_LEN);
  const segLen = Math.ceil(inner.size / nSegs);
  const [gx, gy] = grid1d(rows * nSegs, 64);
  dispatch({
    op,
    kernel: LAYOUT,
    entry: "copy",
    ints: [
      rows,
      inner.size,
      segLen,
      nSegs,
      dims.length,
      srcBase,
      dstBase,
      inner.strides[0],
      inner.strides[1],
      0,
      0,
      0,
      ...padTo(dims.map((d) => d.size)),
      ...padTo(dims.map((d) => d.strides[0])),
      ...padTo(dims.map((d) => d.strides[1])),
    ],
    workgroups: [gx, gy],
  }, [src.buffer, dst.buffer]);
}

/** A tensor of `shape` holding the box of `src` at `base` with `strides` (not differentiable). */
function gather(op: string, src: Tensor, base: number, strides: number[], shape: Shape): Tensor {
  const out = empty(shape);
  stridedCopy(op, src, base, strides, out, 0, contiguousStrides(shape), shape);
  return out;
}

/**
 * Reorders axes: output axis `i` is input axis `axes[i]` (a permutation of `0..rank-1`; negative
 * axes count from the end). Copies. Differentiable (the gradient is the inverse permutation).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { permute } from "./shape.ts";
 * await initGpu();
 * const nchw = tensor(Array.from({ length: 24 }, (_, i) => i), [1, 2, 3, 4]);
 * const nhwc = permute(nchw, [0, 2, 3, 1]); // [N,C,H,W] -> [N,H,W,C]
 * assert.deepEqual(nhwc.shape, [1, 3, 4, 2]);
 * assert.deepEqual([...(await nhwc.read()).slice(0, 4)], [0, 12, 1, 13]);
 * ```
 */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank;
  if (axes.length !== rank) {
    throw new RangeError(
      `permute: axes [${axes.join(",")}] must list all ${rank} axes of shape ${fmt(x.shape)}`,
    );
  }
  const perm = axes.map((a) => normAxis(a, rank, "permute", x.shape));
  if (new Set(perm).size !== rank) {
    throw new RangeError(
      `permute: axes [${axes.join(",")}] repeat an axis (shape ${fmt(x.shape)})`,
    );
  }
  const strides = contiguousStrides(x.shape);
  const outShape = perm.map((a) => x.shape[a]);
  const out = gather("permute", x, 0, perm.map((a) => strides[a]), outShape);
  const inverse = new Array(rank);
  perm.forEach((a, i) => (inverse[a] = i));
  return record(out, "permute", [x], (g) => [permute(g, inverse)]);
}

/**
 * Swaps two axes (by default the last two). Copies. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full, tensor } from "../tensor.ts";
 * import { transpose } from "./shape.ts";
 * await initGpu();
 * const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const at = transpose(a); // [M, K] -> [K, M]
 * assert.deepEqual([...await at.read()], [1, 4, 2, 5, 3, 6]);
 * const x = full([4, 2, 8], 0);
 * const y = transpose(x, 0, 1); // [T, N, C] -> [N, T, C]
 * assert.deepEqual(y.shape, [2, 4, 8]);
 * ```
 */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  if (x.rank < 2 && (a === -2 || b === -2)) {
    throw new RangeError(`transpose: shape ${fmt(x.shape)} has fewer than 2 axes`);
  }
  const i = normAxis(a, x.rank, "transpose", x.shape);
  const j = normAxis(b, x.rank, "transpose", x.shape);
  const perm = [...Array(x.rank).keys()];
  perm[i] = j;
  perm[j] = i;
  return permute(x, perm);
}

/**
 * One axis range of {@link slice}: `start` (inclusive) to `end` (exclusive).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { slice, type SliceRange } from "./shape.ts";
 * await initGpu();
 * const x = tensor([0, 1, 2, 3, 4, 5, 6, 7], [2, 4]);
 * const inner: SliceRange = { axis: -1, start: 1, end: -1 }; // drop the first and last column
 * const y = slice(x, inner);
 * assert.deepEqual([...await y.read()], [1, 2, 5, 6]);
 * ```
 */
export interface SliceRange {
  /** The axis (negative counts from the end). */
  axis: number;
  /** First index, default 0; negative counts from the end of the axis. */
  start?: number;
  /** One past the last index, default the axis size; negative counts from the end. */
  end?: number;
}

/**
 * A contiguous sub-box: for each given axis, indices `start <= i < end` (Python-style negative
 * indices allowed; out-of-range indices are errors, not clamped). Axes not given are kept whole.
 * Copies. Differentiable (the gradient scatters into zeros).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { slice } from "./shape.ts";
 * await initGpu();
 * const frames = full([3, 1, 2, 2], 0);
 * const last = slice(frames, { axis: 0, start: -1 }); // the last frame, axis kept (size 1)
 * assert.deepEqual(last.shape, [1, 1, 2, 2]);
 * const img = full([3, 6, 6], 0);
 * const crop = slice(img, [{ axis: -2, start: 2, end: -2 }, { axis: -1, start: 2, end: -2 }]);
 * assert.deepEqual(crop.shape, [3, 2, 2]);
 * ```
 */
export function slice(x: Tensor, ranges: SliceRange | readonly SliceRange[]): Tensor {
  const list = Array.isArray(ranges) ? ranges : [ranges as SliceRange];
  const starts = new Array(x.rank).fill(0);
  const outShape = [...x.shape];
  const seen = new Set<number>();
  for (const r of list) {
    const axis = normAxis(r.axis, x.rank, "slice", x.shape);
    if (seen.has(axis)) {
      throw new RangeError(`slice: axis ${r.axis} is given twice (shape ${fmt(x.shape)})`);
    }
    seen.add(axis);
    const size = x.shape[axis];
    const resolve = (v: number | undefined, dflt: number, what: string) => {
      const idx = v === undefined ? dflt : v < 0 ? v + size : v;
      if (!Number.isInteger(idx) || idx < 0 || idx > size) {
        throw new RangeError(
          `slice: ${what} ${v} is out of range for axis ${r.axis} of size ${size} ` +
            `(shape ${fmt(x.shape)})`,
        );
      }
      return idx;
    };
    const start = resolve(r.start, 0, "start");
    const end = resolve(r.end, size, "end");
    if (end < start) {
      throw new RangeError(
        `slice: end ${r.end} is before start ${r.start} on axis ${r.axis} ` +
          `(shape ${fmt(x.shape)})`,
      );
    }
    starts[axis] = start;
    outShape[axis] = end - start;
  }
  const strides = contiguousStrides(x.shape);
  const base = starts.reduce((p, s, i) => p + s * strides[i], 0);
  const out = gather("slice", x, base, strides, outShape);
  const write = (g: Tensor, into: Tensor) =>
    stridedCopy(
      "slice.backward",
      g,
      0,
      contiguousStrides(outShape),
      into,
      base,
      strides,
      outShape,
    );
  const end = starts.map((st, i) => st + outShape[i]);
  return record(out, "slice", [x], (g) => {
    const gin = full(x.shape, 0);
    write(g, gin);
    return [gin];
  }, { start: starts, end, write });
}

/**
 * Splits along `axis` into pieces of the given sizes (which must add up to the axis size), or
 * into `count` equal pieces. Each piece is a {@link slice}. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { split } from "./shape.ts";
 * await initGpu();
 * const gates = full([1, 6, 2, 2], 0);
 * const [r, z, n] = split(gates, 3, 1); // [N, 3C, H, W] -> three [N, C, H, W]
 * assert.deepEqual([r.shape, z.shape, n.shape], [[1, 2, 2, 2], [1, 2, 2, 2], [1, 2, 2, 2]]);
 * const x = full([4, 7], 0);
 * const [a, b] = split(x, [2, 5], -1);
 * assert.deepEqual([a.shape, b.shape], [[4, 2], [4, 5]]);
 * ```
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, x.rank, "split", x.shape);
  const total = x.shape[ax];
  let list: number[];
  if (typeof sizes === "number") {
    if (!Number.isInteger(sizes) || sizes < 1 || total % sizes !== 0) {
      throw new RangeError(
        `split: axis ${axis} of shape ${fmt(x.shape)} (size ${total}) does not split into ` +
          `${sizes} equal pieces`,
      );
    }
    list = new Array(sizes).fill(total / sizes);
  } else {
    list = [...sizes];
    const sum = list.reduce((p, s) => p + s, 0);
    if (list.some((s) => !Number.isInteger(s) || s < 0) || sum !== total) {
      throw new RangeError(
        `split: sizes [${list.join(",")}] do not add up to axis ${axis} of shape ` +
          `${fmt(x.shape)} (size ${total})`,
      );
    }
  }
  let start = 0;
  return list.map((s) => {
    const piece = slice(x, { axis: ax, start, end: start + s });
    start += s;
    return piece;
  });
}

function checkSameShapes(op: string, xs: readonly Tensor[], skipAxis: number | null): void {
  if (xs.length === 0) throw new RangeError(`${op}: needs at least one tensor`);
  const ref = xs[0].shape;
  for (const t of xs) {
    const ok = t.rank === ref.length &&
      t.shape.every((d, i) => i === skipAxis || d === ref[i]);
    if (!ok) {
      const shapes = xs.map((u) => fmt(u.shape)).join(", ");
      const rule = skipAxis === null
        ? "must all have the same shape"
        : `must match except on axis ${skipAxis}`;
      throw new RangeError(`${op}: shapes ${shapes} ${rule}`);
    }
  }
}

/**
 * Joins tensors along an existing axis (all other sizes must match). Copies. Differentiable
 * (the gradient is split back).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { concat } from "./shape.ts";
 * await initGpu();
 * const features = full([1, 64, 4, 4], 1);
 * const hidden = full([1, 64, 4, 4], 2);
 * const fused = concat([features, hidden], 1); // [N,64,H,W] + [N,64,H,W] -> [N,128,H,W]
 * assert.deepEqual(fused.shape, [1, 128, 4, 4]);
 * ```
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError("concat: needs at least one tensor");
  const ax = normAxis(axis, xs[0].rank, "concat", xs[0].shape);
  checkSameShapes("concat", xs, ax);
  const sizes = xs.map((t) => t.shape[ax]);
  const outShape = [...xs[0].shape];
  outShape[ax] = sizes.reduce((p, s) => p + s, 0);
  const out = empty(outShape);
  const outStrides = contiguousStrides(outShape);
  const offsets: number[] = [];
  let at = 0;
  for (const t of xs) {
    offsets.push(at);
    const base = at * outStrides[ax];
    stridedCopy("concat", t, 0, contiguousStrides(t.shape), out, base, outStrides, t.shape);
    at += t.shape[ax];
  }
  const inputs = [...xs];
  return record(
    out,
    "concat",
    inputs,
    (g) =>
      inputs.map((t, i) =>
        t.requiresGrad
          ? gather("concat.backward", g, offsets[i] * outStrides[ax], outStrides, t.shape)
          : null
      ),
  );
}

/**
 * Stacks same-shaped tensors along a new axis at position `axis` (in `-(rank+1)..rank`).
 * Copies. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { stack } from "./shape.ts";
 * await initGpu();
 * const frames = [0, 1, 2].map((t) => full([3, 2, 2], t));
 * const clip = stack(frames, 0); // T tensors [C,H,W] -> [T,C,H,W]
 * assert.deepEqual(clip.shape, [3, 3, 2, 2]);
 * assert.equal((await clip.read())[24], 2);
 * ```
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError("stack: needs at least one tensor");
  checkSameShapes("stack", xs, null);
  const inShape = xs[0].shape;
  const rank = inShape.length + 1;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(
      `stack: axis ${axis} is out of range for stacking shape ${fmt(inShape)} (new rank ${rank})`,
    );
  }
  const ax = axis < 0 ? axis + rank : axis;
  const outShape = [...inShape.slice(0, ax), xs.length, ...inShape.slice(ax)];
  const out = empty(outShape);
  const outStrides = contiguousStrides(outShape);
  const dstStrides = outStrides.filter((_, i) => i !== ax);
  const inStrides = contiguousStrides(inShape);
  xs.forEach((t, i) => {
    stridedCopy("stack", t, 0, inStrides, out, i * outStrides[ax], dstStrides, inShape);
  });
  const inputs = [...xs];
  return record(
    out,
    "stack",
    inputs,
    (g) =>
      inputs.map((t, i) =>
        t.requiresGrad ? gather("stack.backward", g, i * outStrides[ax], dstStrides, inShape) : null
      ),
  );
}

/**
 * Removes size-1 axes (the given ones, or all). A view (no copy). Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { squeeze } from "./shape.ts";
 * await initGpu();
 * const x = full([1, 3, 1, 5], 0);
 * const v = squeeze(x); // [1, 3, 1, 5] -> [3, 5]
 * const w = squeeze(x, 0); // [1, 3, 1, 5] -> [3, 1, 5]
 * assert.deepEqual([v.shape, w.shape], [[3, 5], [3, 1, 5]]);
 * ```
 */
export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  const list = axes === undefined
    ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
    : normAxes(axes, x.rank, "squeeze", x.shape);
  for (const a of list) {
    if (x.shape[a] !== 1) {
      throw new RangeError(
        `squeeze: axis ${a} of shape ${fmt(x.shape)} has size ${x.shape[a]}, not 1`,
      );
    }
  }
  return x.reshape(x.shape.filter((_, i) => !list.includes(i)));
}

/**
 * Inserts a size-1 axis at position `axis` (in `-(rank+1)..rank`). A view (no copy).
 * Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { unsqueeze } from "./shape.ts";
 * await initGpu();
 * const img = full([3, 2, 2], 0);
 * const batch = unsqueeze(img, 0); // [C,H,W] -> [1,C,H,W]
 * const v = full([4], 0);
 * const col = unsqueeze(v, -1); // [N] -> [N,1]
 * assert.deepEqual([batch.shape, col.shape], [[1, 3, 2, 2], [4, 1]]);
 * ```
 */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const rank = x.rank + 1;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new RangeError(
      `unsqueeze: axis ${axis} is out of range for shape ${fmt(x.shape)} (new rank ${rank})`,
    );
  }
  const ax = axis < 0 ? axis + rank : axis;
  return x.reshape([...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)]);
}

/**
 * Zeros around `x`: `pads[i] = [before, after]` zeros along axis `i` (axes past the list get
 * none), as `torch.nn.functional.pad` with a constant 0 (but listed from the first axis). Built
 * from {@link concat} with zero blocks. Differentiable (the gradient is the inner box).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { pad } from "./shape.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4], [2, 2]);
 * const y = pad(x, [[0, 1], [1, 0]]); // a zero row below, a zero column on the left
 * assert.deepEqual([...await y.read()], [0, 1, 2, 0, 3, 4, 0, 0, 0]);
 * ```
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[]): Tensor {
  if (pads.length > x.rank) {
    throw new RangeError(`pad: ${pads.length} axes of padding for shape ${fmt(x.shape)}`);
  }
  let y = x;
  pads.forEach(([before, after], axis) => {
    for (const n of [before, after]) {
      if (!Number.isInteger(n) || n < 0) {
        throw new RangeError(
          `pad: padding ${n} on axis ${axis} must be a whole number >= 0 (shape ${fmt(x.shape)})`,
        );
      }
    }
    if (before === 0 && after === 0) return;
    const zeros = (n: number) => {
      const shape = [...y.shape];
      shape[axis] = n;
      return full(shape, 0);
    };
    const parts = [...(before ? [zeros(before)] : []), y, ...(after ? [zeros(after)] : [])];
    y = concat(parts, axis);
  });
  return y;
}
