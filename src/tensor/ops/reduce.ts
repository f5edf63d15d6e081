/**
 * Reductions: sum and mean over chosen axes, and `sumTo` (the gradient of broadcasting).
 * Kernels: shaders/reduce.wgsl.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, record, type Shape, type Tensor } from "../tensor.ts";

const MAX_RANK = 8;

/** Options of the reductions. */
export interface ReduceOptions {
  /** Axes to reduce (negative counts from the end); all axes when omitted. */
  axes?: number | number[];
  /** Keep reduced axes as size 1. Default false. */
  keepDims?: boolean;
}

/**
 * Normalises axes (negative from the end), checking range and duplicates.
 *
 * @example
 * ```ts
 * import { normAxes } from "./reduce.ts";
 * normAxes([-1, 0], 3, "sum"); // [0, 2]
 * ```
 */
export function normAxes(axes: number | number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = Array.isArray(axes) ? axes : [axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new RangeError(`${op}: axis ${a} is out of range for rank ${rank}`);
    }
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated axis in [${list}]`);
  return out.sort((a, b) => a - b);
}

function contiguousStrides(shape: Shape): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Sums `x` over `axes` (sorted, distinct) times `scale`, into a tensor of `outShape`. */
function reduceSum(x: Tensor, axes: number[], scale: number, outShape: Shape, op: string): Tensor {
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  if (kept.length > MAX_RANK || axes.length > MAX_RANK) throw new RangeError(`${op}: rank above 8`);
  const pad = (v: number[]) => [...v, ...new Array(MAX_RANK - v.length).fill(0)];
  const k = axes.reduce((p, a) => p * x.shape[a], 1);
  const out = empty(outShape);
  const [gx, gy] = grid1d(out.size, 64);
  dispatch({
    op,
    shader: "reduce",
    entry: "sum_axes",
    ints: [
      out.size,
      k,
      kept.length,
      axes.length,
      ...pad(kept.map((i) => x.shape[i])),
      ...pad(kept.map((i) => strides[i])),
      ...pad(axes.map((i) => x.shape[i])),
      ...pad(axes.map((i) => strides[i])),
    ],
    floats: [scale],
    buffers: [x.buffer, out.buffer],
    workgroups: [gx, gy],
  });
  return out;
}

function reducedShape(shape: Shape, axes: number[], keepDims: boolean): number[] {
  return keepDims
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

/**
 * Sum over axes (all by default). Differentiable.
 *
 * @example
 * ```ts
 * import { sum } from "./reduce.ts";
 * const perChannel = sum(x, { axes: [0, 2, 3] }); // [N,C,H,W] -> [C]
 * ```
 */
export function sum(x: Tensor, options: ReduceOptions = {}): Tensor {
  return scaledSum(x, options, "sum", () => 1);
}

/**
 * Mean over axes (all by default). Differentiable.
 *
 * @example
 * ```ts
 * import { mean } from "./reduce.ts";
 * const m = mean(x, { axes: -1, keepDims: true });
 * ```
 */
export function mean(x: Tensor, options: ReduceOptions = {}): Tensor {
  return scaledSum(x, options, "mean", (k) => 1 / k);
}

function scaledSum(
  x: Tensor,
  options: ReduceOptions,
  op: string,
  scaleOf: (k: number) => number,
): Tensor {
  const axes = normAxes(options.axes, x.rank, op);
  const k = axes.reduce((p, a) => p * x.shape[a], 1);
  const scale = scaleOf(k);
  const outShape = reducedShape(x.shape, axes, options.keepDims ?? false);
  const out = reduceSum(x, axes, scale, outShape, op);
  return record(
    out,
    op,
    [x],
    (g) => [broadcastTo(g, reducedShape(x.shape, axes, true), x.shape, scale)],
  );
}

/**
 * Sums `x` down to `shape`, the inverse of broadcasting `shape` up to `x.shape` (leading axes
 * dropped, size-1 axes summed). Differentiable.
 *
 * @example
 * ```ts
 * import { sumTo } from "./reduce.ts";
 * const gBias = sumTo(g, [1, 8, 1, 1]); // from [4, 8, 5, 5]
 * ```
 */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  const lead = x.rank - shape.length;
  if (lead < 0) throw new RangeError(`sumTo: cannot sum [${x.shape}] to [${shape}]`);
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const target = i < lead ? 1 : shape[i - lead];
    if (i < lead || (target === 1 && x.shape[i] !== 1)) axes.push(i);
    else if (target !== x.shape[i]) {
      throw new RangeError(`sumTo: cannot sum [${x.shape}] to [${shape}]`);
    }
  }
  if (!axes.length) return x.reshape(shape);
  const out = reduceSum(x, axes, 1, shape, "sumTo");
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return record(out, "sumTo", [x], (g) => [broadcastTo(g, keptShape, x.shape, 1)]);
}

/**
 * `scale * g` (viewed as `from`, size-1 axes where it was reduced) broadcast to `to`.
 * Not differentiable itself (used in backward passes).
 */
function broadcastTo(g: Tensor, from: Shape, to: Shape, scale: number): Tensor {
  const view = g.reshape(from);
  const out = empty(to);
  const rank = to.length;
  const pad = (v: number[]) => [...v, ...new Array(MAX_RANK - v.length).fill(0)];
  const fromStrides = contiguousStrides(from).map((s, i) => (from[i] === 1 ? 0 : s));
  const [gx, gy] = grid1d(out.size, 256);
  dispatch({
    op: "broadcast",
    shader: "elementwise",
    entry: "binary",
    defines: { BEXPR: "a * params.p0" },
    ints: [
      out.size,
      rank,
      0,
      0,
      ...pad([...to]),
      ...pad(fromStrides),
      ...pad(new Array(rank).fill(0)),
    ],
    floats: [scale, 0],
    buffers: [view.buffer, view.buffer, out.buffer],
    workgroups: [gx, gy],
  });
  view.dispose();
  return out;
}
