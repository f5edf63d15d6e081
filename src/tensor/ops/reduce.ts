/**
 * Reductions: sum, mean, variance and standard deviation over chosen axes, and `sumTo` (the
 * gradient of broadcasting). Kernels: reduce.wgsl.
 *
 * How a reduction runs: the input's axes are merged into "kept" and "reduced" runs. When the
 * innermost run is reduced and contiguous, a workgroup tree sum (shared memory) handles each
 * output, or each chunk of a long output; otherwise one invocation per output and chunk walks
 * the reduced runs. Long reductions are split into chunks whose partial sums a second pass adds,
 * and every invocation uses Kahan summation, so sums of millions of f32 values stay accurate.
 * Each invocation sums at most 4096 elements: lavapipe silently ends loops after 65535
 * iterations per invocation (all loops together).
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { REDUCE } from "./_kernels.ts";
import { empty, full, record, type Shape, sizeOf, type Tensor } from "../tensor.ts";
import { contiguousStrides, MAX_RANK, mergeAxes, padTo } from "../_layout.ts";

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
 * import assert from "assert";
 * import { normAxes } from "./reduce.ts";
 * assert.deepEqual(normAxes([-1, 0], 3, "sum"), [0, 2]);
 * assert.throws(
 *   () => normAxes(3, 3, "sum", [2, 3, 4]),
 *   /axis 3 is out of range for shape \[2,3,4\] \(rank 3\)/,
 * );
 * ```
 */
export function normAxes(
  axes: number | number[] | undefined,
  rank: number,
  op: string,
  shape?: Shape,
): number[] {
  const of = shape ? `shape [${shape.join(",")}]` : `rank ${rank}`;
  if (axes === undefined) return [...Array(rank).keys()];
  const list = Array.isArray(axes) ? axes : [axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new RangeError(`${op}: axis ${a} is out of range for ${of} (rank ${rank})`);
    }
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) {
    throw new RangeError(`${op}: repeated axis in [${list}] for ${of}`);
  }
  return out.sort((a, b) => a - b);
}

/** A run of input axes: total size and stride of its innermost axis. */
interface Dim {
  size: number;
  stride: number;
}

/**
 * Splits a contiguous shape into kept and reduced axis runs, dropping size-1 axes and merging
 * neighbouring axes of the same kind (a reduction over the innermost axes becomes one reduced run
 * of stride 1).
 */
function splitDims(shape: Shape, axes: number[]): { kept: Dim[]; red: Dim[] } {
  const strides = contiguousStrides(shape);
  const kept: Dim[] = [];
  const red: Dim[] = [];
  let lastKind: boolean | null = null;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const isRed = axes.includes(i);
    const list = isRed ? red : kept;
    if (lastKind === isRed) {
      const d = list[list.length - 1];
      d.size *= shape[i];
      d.stride = strides[i];
    } else list.push({ size: shape[i], stride: strides[i] });
    lastKind = isRed;
  }
  return { kept, red };
}

const TREE_WG = 64;
/** Fewest elements per tree workgroup chunk (16 per invocation). */
const TREE_CHUNK_MIN = TREE_WG * 16;
/**
 * Most elements one invocation sums. Lavapipe (Mesa's CPU Vulkan) ends any loop nest after 65535
 * iterations in total (its infinite-loop guard) and silently returns a short sum; with up to 8
 * reduced runs (a nested loop on each wrap) this bound keeps every loop nest below that.
 */
const MAX_PER_INVOCATION = 4096;
/** Workgroups worth launching for a tree reduction with few outputs. */
const TREE_TARGET_GROUPS = 512;
/** Fewest elements per invocation of the per-output kernel when it splits. */
const AXES_CHUNK_MIN = 256;
/** Innermost contiguous reduced runs at least this long are reduced in a pass of their own. */
const SPLIT_INNER_MIN = 256;
/** Invocations worth launching for the per-output kernel with few outputs. */
const AXES_TARGET_THREADS = 8192;

interface ReducePass {
  /** MODE of reduce.wgsl: 0 plain sum, 1 squared deviations from `aux`, 2 `x - aux`. */
  mode?: 0 | 1 | 2;
  aux?: Tensor;
  /** Outputs of this pass per element of `aux` (default 1). */
  auxDiv?: number;
  /** Take the square root of the final result. */
  sqrt?: boolean;
}

/** Integer params of reduce.wgsl's reduction kernels (its `Params` struct, in order). */
function reduceInts(
  nOut: number,
  k: number,
  kept: Dim[],
  red: Dim[],
  chunks: number,
  chunkLen: number,
  auxDiv: number,
): number[] {
  return [
    nOut,
    k,
    kept.length,
    red.length,
    chunks,
    chunkLen,
    auxDiv,
    0,
    ...padTo(kept.map((d) => d.size)),
    ...padTo(kept.map((d) => d.stride)),
    ...padTo(red.map((d) => d.size)),
    ...padTo(red.map((d) => d.stride)),
  ];
}

/**
 * Sums the elements of `src` (laid out by `kept` and `red` runs) over the reduced runs, times
 * `scale`, into a new flat tensor of prod(kept sizes) elements. Long reductions are split into
 * chunks whose partial sums a second pass adds.
 */
/** Longest leading axis that `sum_lead` sums in one loop (lavapipe ends loops at 65535). */
const LEAD_MAX = 4096;

function reduceDims(
  src: Tensor,
  kept: Dim[],
  red: Dim[],
  scale: number,
  op: string,
  pass: ReducePass = {},
): Tensor {
  if (kept.length > MAX_RANK || red.length > MAX_RANK) {
    throw new RangeError(`${op}: more than ${MAX_RANK} non-adjacent axis runs`);
  }
  const nOut = kept.reduce((p, d) => p * d.size, 1);
  const k = red.reduce((p, d) => p * d.size, 1);
  if (nOut === 0) return empty([0]);
  if (k === 0) return full([nOut], pass.sqrt ? Math.sqrt(0 * scale) : 0 * scale);
  if (red.length === 0) red = [{ size: 1, stride: 1 }];
  if (
    (pass.mode ?? 0) === 0 && kept.length === 1 && kept[0].stride === 1 && red.length === 1 &&
    red[0].stride === nOut && k <= LEAD_MAX
  ) {
    // The leading axis of a contiguous [k, nOut]: one invocation per output, no index arithmetic.
    const out = empty([nOut]);
    dispatch({
      op,
      kernel: REDUCE,
      entry: "sum_lead",
      defines: { SQRT: String(pass.sqrt ?? false) },
      ints: reduceInts(nOut, k, kept, red, 1, k, 1),
      floats: [scale],
      workgroups: grid1d(nOut, 64),
    }, [src.buffer, out.buffer]);
    return out;
  }
  const inner = red[red.length - 1];
  if (red.length > 1 && inner.stride === 1 && inner.size >= SPLIT_INNER_MIN) {
    // Reduce the long contiguous innermost run first (fast path), with the outer reduced runs
    // kept as extra outputs placed innermost, then those partial sums.
    const outer = red.slice(0, -1);
    const outerCount = k / inner.size;
    const rows = reduceDims(src, [...kept, ...outer], [inner], 1, op, {
      mode: pass.mode,
      aux: pass.aux,
      auxDiv: (pass.auxDiv ?? 1) * outerCount,
    });
    const result = reduceDims(
      rows,
      [{ size: nOut, stride: outerCount }],
      [{ size: outerCount, stride: 1 }],
      scale,
      op,
      { sqrt: pass.sqrt },
    );
    rows.dispose();
    return result;
  }
  const tree = inner.stride === 1 && k >= 32;
  let chunks: number;
  if (tree) {
    chunks = Math.max(
      Math.min(Math.ceil(k / TREE_CHUNK_MIN), Math.ceil(TREE_TARGET_GROUPS / nOut)),
      Math.ceil(k / (TREE_WG * MAX_PER_INVOCATION)),
    );
  } else {
    chunks = Math.max(
      Math.min(Math.ceil(k / AXES_CHUNK_MIN), Math.ceil(AXES_TARGET_THREADS / nOut)),
      Math.ceil(k / MAX_PER_INVOCATION),
    );
  }
  const chunkLen = Math.ceil(k / chunks);
  chunks = Math.ceil(k / chunkLen);
  const last = chunks === 1;
  const out = empty([nOut * chunks]);
  const mode = pass.mode ?? 0;
  const [gx, gy] = tree ? grid1d(nOut * chunks, 1) : grid1d(nOut * chunks, 64);
  dispatch({
    op,
    kernel: REDUCE,
    entry: tree ? "sum_tree" : "sum_axes",
    defines: {
      MODE: mode,
      SQRT: String(last && (pass.sqrt ?? false)),
      CONTIG: String(red.length === 1 && red[0].stride === 1),
      WG: tree ? TREE_WG : 64,
    },
    ints: reduceInts(nOut, k, kept, red, chunks, chunkLen, pass.auxDiv ?? 1),
    floats: [last ? scale : 1],
    workgroups: [gx, gy],
  }, [src.buffer, out.buffer, (mode !== 0 ? pass.aux! : src).buffer]);
  if (last) return out;
  // Second pass over the partial sums.
  const next = tree
    ? reduceDims(out, [{ size: nOut, stride: chunks }], [{ size: chunks, stride: 1 }], scale, op, {
      sqrt: pass.sqrt,
    })
    : reduceDims(out, [{ size: nOut, stride: 1 }], [{ size: chunks, stride: nOut }], scale, op, {
      sqrt: pass.sqrt,
    });
  out.dispose();
  return next;
}

/** Sums `x` over `axes` (sorted, distinct) times `scale`, into a tensor of `outShape`. */
function reduceSum(
  x: Tensor,
  axes: number[],
  scale: number,
  outShape: Shape,
  op: string,
  pass: ReducePass = {},
): Tensor {
  const { kept, red } = splitDims(x.shape, axes);
  const flat = reduceDims(x, kept, red, scale, op, pass);
  const out = flat.reshape(outShape);
  flat.dispose();
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
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { sum } from "./reduce.ts";
 * await initGpu();
 * const x = full([2, 3, 2, 2], 1);
 * const perChannel = sum(x, { axes: [0, 2, 3] }); // [N,C,H,W] -> [C]
 * assert.deepEqual([...await perChannel.read()], [8, 8, 8]);
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
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { mean } from "./reduce.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const m = mean(x, { axes: -1, keepDims: true });
 * assert.deepEqual(m.shape, [2, 1]);
 * assert.deepEqual([...await m.read()], [2, 5]);
 * ```
 */
export function mean(x: Tensor, options: ReduceOptions = {}): Tensor {
  return scaledSum(x, options, "mean", (k) => 1 / k);
}

/**
 * Options of {@link variance} and {@link std}.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { type MomentOptions, std } from "./reduce.ts";
 * await initGpu();
 * const x = tensor([1, 3, 1, 3], [1, 2, 2]);
 * const opts: MomentOptions = { axes: [-2, -1], keepDims: true, unbiased: false };
 * const s = std(x, opts);
 * assert.deepEqual(s.shape, [1, 1, 1]);
 * assert.ok(Math.abs((await s.read())[0] - 1) < 1e-6);
 * ```
 */
export interface MomentOptions extends ReduceOptions {
  /**
   * Divide by `k - 1` (Bessel's correction, the default, as in `torch.var`) rather than by `k`,
   * the number of elements reduced per output.
   */
  unbiased?: boolean;
}

/**
 * Variance over axes (all by default); unbiased (divides by `k - 1`) unless
 * `{ unbiased: false }`. Computed in two passes (mean, then the mean of squared deviations) with
 * compensated sums. Differentiable. Exported from `nn` as both `variance` and `var`.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { variance } from "./reduce.ts";
 * await initGpu();
 * const x = tensor([1, 3, 5, 5], [1, 2, 1, 2]);
 * const v = variance(x, { axes: [0, 2, 3], keepDims: true }); // per-channel variance of NCHW
 * assert.deepEqual(v.shape, [1, 2, 1, 1]);
 * const [v0, v1] = await v.read();
 * assert.ok(Math.abs(v0 - 2) < 1e-6 && Math.abs(v1) < 1e-6);
 * ```
 */
export function variance(x: Tensor, options: MomentOptions = {}): Tensor {
  return moments(x, options, "var", false);
}

/**
 * Standard deviation over axes (all by default): `sqrt(variance(x, options))`, unbiased by
 * default. Differentiable; where the deviation is 0 its gradient is taken as 0 (not NaN).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { std } from "./reduce.ts";
 * await initGpu();
 * const frames = full([2, 3, 4, 4], 0.5);
 * const s = std(frames, { axes: [-2, -1] }); // per-frame, per-channel spatial std
 * assert.deepEqual(s.shape, [2, 3]);
 * assert.ok((await s.read()).every((v) => Math.abs(v) < 1e-6));
 * ```
 */
export function std(x: Tensor, options: MomentOptions = {}): Tensor {
  return moments(x, options, "std", true);
}

/**
 * Mean of `x` over the reduced runs as `shift + mean(x - shift)`, where `shift` is each output's
 * first reduced element: exact for constant inputs (so their variance and its gradient are exactly
 * 0) and accurate when the mean is far from 0. A flat tensor of prod(kept sizes) elements; `k`
 * (the reduced count) must be at least 1.
 */
function shiftedMean(x: Tensor, kept: Dim[], red: Dim[], k: number, op: string): Tensor {
  const nOut = kept.reduce((p, d) => p * d.size, 1);
  if (nOut === 0) return empty([0]);
  if (kept.length > MAX_RANK || red.length > MAX_RANK) {
    throw new RangeError(`${op}: more than ${MAX_RANK} non-adjacent axis runs`);
  }
  const ints = reduceInts(nOut, k, kept, red, 1, k, 1);
  const shift = empty([nOut]);
  dispatch({
    op: `${op}.shift`,
    kernel: REDUCE,
    entry: "first_of",
    ints,
    floats: [1],
    workgroups: grid1d(nOut, 64),
  }, [x.buffer, shift.buffer]);
  const m = reduceDims(x, kept, red, 1 / k, op, { mode: 2, aux: shift });
  dispatch({
    op: `${op}.unshift`,
    kernel: REDUCE,
    entry: "add_src",
    ints,
    floats: [1],
    workgroups: grid1d(nOut, 64),
  }, [shift.buffer, m.buffer]);
  shift.dispose();
  return m;
}

function moments(x: Tensor, options: MomentOptions, op: string, isStd: boolean): Tensor {
  const axes = normAxes(options.axes, x.rank, op, x.shape);
  const k = axes.reduce((p, a) => p * x.shape[a], 1);
  const unbiased = options.unbiased ?? true;
  if (k < (unbiased ? 2 : 1)) {
    throw new RangeError(
      `${op}: reducing axes [${axes}] of [${x.shape}] leaves ${k} element(s) per output; ` +
        (unbiased ? "the unbiased estimate needs at least 2" : "at least 1 is needed"),
    );
  }
  const keptShape = reducedShape(x.shape, axes, true);
  const outShape = reducedShape(x.shape, axes, options.keepDims ?? false);
  const divisor = unbiased ? k - 1 : k;
  const { kept, red } = splitDims(x.shape, axes);
  const m = shiftedMean(x, kept, red, k, `${op}.mean`);
  const out = reduceSum(x, axes, 1 / divisor, outShape, op, { mode: 1, aux: m, sqrt: isStd });
  m.dispose();
  return record(out, op, [x], (g) => {
    const mean = shiftedMean(x, kept, red, k, `${op}.backward`);
    const gin = empty(x.shape);
    segmentPass(`${op}.backward`, "moments_grad", x.shape, keptShape, (isStd ? 1 : 2) / divisor, [
      x.buffer,
      gin.buffer,
      mean.buffer,
      g.buffer,
      (isStd ? out : g).buffer,
    ], isStd ? 1 : 0);
    mean.dispose();
    return [gin];
  });
}

function scaledSum(
  x: Tensor,
  options: ReduceOptions,
  op: string,
  scaleOf: (k: number) => number,
): Tensor {
  const axes = normAxes(options.axes, x.rank, op, x.shape);
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
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { sumTo } from "./reduce.ts";
 * await initGpu();
 * const g = full([4, 8, 5, 5], 1);
 * const gBias = sumTo(g, [1, 8, 1, 1]); // from [4, 8, 5, 5]
 * assert.deepEqual(gBias.shape, [1, 8, 1, 1]);
 * assert.ok((await gBias.read()).every((v) => v === 100));
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

/** Elements of a row that one invocation of the gradient kernels writes (at most). */
const SEG_LEN = 32;

/**
 * Runs a gradient kernel of reduce.wgsl (broadcast_scaled, moments_grad) over a contiguous
 * tensor of shape `to`, alongside tensors of shape `from` (`to` with size-1 axes where it was
 * reduced). Axes are merged where both layouts allow, and each invocation walks a segment of a row.
 */
function segmentPass(
  op: string,
  entry: string,
  to: Shape,
  from: Shape,
  scale: number,
  buffers: GPUBuffer[],
  mode = 0,
): void {
  const xStrides = contiguousStrides(to);
  const rStrides = contiguousStrides(from).map((s, i) => (from[i] === 1 ? 0 : s));
  const dims = mergeAxes(to, [xStrides, rStrides]);
  const n = sizeOf(to);
  if (n === 0) return;
  const inner = dims.pop() ?? { size: 1, strides: [1, 0] };
  const rows = n / inner.size;
  const nSegs = Math.ceil(inner.size / SEG_LEN);
  const segLen = Math.ceil(inner.size / nSegs);
  const [gx, gy] = grid1d(rows * nSegs, 64);
  dispatch({
    op,
    kernel: REDUCE,
    entry,
    defines: { MODE: mode },
    ints: [
      rows,
      inner.size,
      dims.length,
      nSegs,
      segLen,
      inner.strides[1],
      0,
      0,
      ...padTo(dims.map((d) => d.size)),
      ...padTo(dims.map((d) => d.strides[0])),
      ...padTo(dims.map((d) => d.strides[1])),
      ...padTo([]),
    ],
    floats: [scale],
    workgroups: [gx, gy],
  }, buffers);
}

/**
 * `scale * g` (viewed as `from`, size-1 axes where it was reduced) broadcast to `to`.
 * Not differentiable itself (used in backward passes).
 */
function broadcastTo(g: Tensor, from: Shape, to: Shape, scale: number): Tensor {
  const out = empty(to);
  segmentPass("broadcast", "broadcast_scaled", to, from, scale, [g.buffer, out.buffer]);
  return out;
}
