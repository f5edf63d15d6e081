/**
 * Pooling over NCHW float32 tensors: windowed average and max pooling (PyTorch semantics, floor
 * mode), adaptive average pooling, and global mean and standard-deviation pooling (VSFA's and
 * SimpleVQA's feature pooling).
 * Kernels: pool.wgsl. Every op has a WGSL forward and backward; backward passes gather
 * (each input element sums the outputs that depend on it), so no atomics are needed.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { POOL } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import { mean, std } from "./reduce.ts";

/** A size given once for both spatial axes, or as `[height, width]`. */
export type Size2 = number | readonly [number, number];

/** Options of {@link avgPool2d} and {@link maxPool2d}. */
export interface Pool2dOptions {
  /** Window size. */
  kernel: Size2;
  /** Step between windows (default: the kernel size). */
  stride?: Size2;
  /** Implicit padding on each side (default 0); at most half the kernel, as in PyTorch. */
  padding?: Size2;
  /**
   * Average pooling only: divide every window by `kernelH * kernelW`, padding counting as zeros
   * (PyTorch's default, `count_include_pad=True`), or, when false, by the number of window
   * positions inside the image. Default true.
   */
  countIncludePad?: boolean;
}

/** Options of {@link globalStdPool}. */
export interface GlobalStdOptions {
  /**
   * Divide the squared deviations by `H*W - 1` (Bessel's correction, torch.std's default) rather
   * than by `H*W`. Default true.
   */
  unbiased?: boolean;
}

/**
 * Workgroup layout of the global pools for planes of `hw <= MEDIUM_PLANE` elements: one invocation
 * per plane for small planes, else a 64-wide workgroup per plane. Measured on lavapipe: 70000
 * planes of 2 elements took 630 ms with a 256-wide workgroup each.
 */
function globalLayout(hw: number, planes: number): {
  suffix: string;
  defines: { WG: number };
  workgroups: [number, number];
} {
  if (hw <= SMALL_PLANE) {
    return { suffix: "_small", defines: { WG: 64 }, workgroups: grid1d(planes, 64) };
  }
  return { suffix: "", defines: { WG: 64 }, workgroups: grid1d(planes, 1) };
}
/** Largest plane reduced by one invocation. */
const SMALL_PLANE = 64;
/**
 * Largest plane reduced by one workgroup of 64 invocations (64 elements per invocation in each of
 * the backward pass's three loops). Larger planes go through reduce.ts's chunked reductions: one
 * workgroup walking a whole plane would pass lavapipe's limit of 65535 loop iterations per
 * invocation (its infinite-loop guard), beyond which loops silently stop.
 */
const MEDIUM_PLANE = 4096;
/** Largest plane whose argmax indices max pooling stores exactly (as float32). */
const MAX_PLANE = 2 ** 24;

function pair(v: Size2, what: string, op: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new RangeError(`${op}: ${what} ${JSON.stringify(v)} must be integers >= ${min}`);
  }
  return p;
}

function checkNchw(x: Tensor, op: string): [number, number, number, number] {
  if (x.rank !== 4) throw new RangeError(`${op}: expects an NCHW tensor, got [${x.shape}]`);
  return x.shape as unknown as [number, number, number, number];
}

interface Geometry {
  n: number;
  c: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
  ints: (count: number) => number[];
}

function geometry(x: Tensor, options: Pool2dOptions, op: string): Geometry {
  const [n, c, h, w] = checkNchw(x, op);
  const [kh, kw] = pair(options.kernel, "kernel", op, 1);
  const [sh, sw] = pair(options.stride ?? options.kernel, "stride", op, 1);
  const [ph, pw] = pair(options.padding ?? 0, "padding", op, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new RangeError(
      `${op}: padding [${ph},${pw}] must be at most half the kernel [${kh},${kw}]`,
    );
  }
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1) {
    throw new RangeError(
      `${op}: a ${kh}x${kw} window does not fit the ${h}x${w} input with padding [${ph},${pw}]`,
    );
  }
  return {
    n,
    c,
    h,
    w,
    oh,
    ow,
    ints: (count) => [
      count,
      n * c,
      h,
      w,
      oh,
      ow,
      kh,
      kw,
      sh,
      sw,
      ph,
      pw,
      options.countIncludePad === false ? 0 : 1,
    ],
  };
}

/** One launch of a windowed kernel (pool.wgsl) over `count` elements. */
function windowPass(
  op: string,
  entry: string,
  geo: Geometry,
  count: number,
  buffers: GPUBuffer[],
): void {
  dispatch({
    op,
    kernel: POOL,
    entry,
    ints: geo.ints(count),
    floats: [0],
    workgroups: grid1d(count, 64),
  }, buffers);
}

/**
 * 2-D average pooling, as PyTorch's `avg_pool2d` with `ceil_mode=False`: by default
 * (`count_include_pad=True`) every window is divided by `kernelH * kernelW`, padding counting as
 * zeros; with `countIncludePad: false` by the number of its positions inside the image.
 * `[N,C,H,W] -> [N,C,OH,OW]` with `OH = floor((H + 2*padding - kernel) / stride) + 1`.
 * Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { avgPool2d } from "./pool.ts";
 * await initGpu();
 * const x = full([1, 1, 4, 4], 1);
 * const y = avgPool2d(x, { kernel: 3, stride: 2, padding: 1 });
 * assert.deepEqual(y.shape, [1, 1, 2, 2]);
 * ```
 */
export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const op = "avgPool2d";
  const geo = geometry(x, options, op);
  const { n, c, h, oh, ow } = geo;
  const out = empty([n, c, oh, ow]);
  const [kh, kw] = pair(options.kernel, "kernel", op, 1);
  if (kh > 1 && kw > 1) {
    // Separable: each window's rows summed once per output column, then the rows added (the
    // same terms, summed by rows first: KH + KW loads per output instead of KH * KW).
    const rows = empty([n, c, h, ow]);
    windowPass(op, "avg_pool_rows", geo, rows.size, [x.buffer, rows.buffer]);
    windowPass(op, "avg_pool_cols", geo, out.size, [rows.buffer, out.buffer]);
    rows.dispose(); // reusable once this batch is submitted
  } else {
    windowPass(op, "avg_pool_fwd", geo, out.size, [x.buffer, out.buffer]);
  }
  return record(out, op, [x], (g) => {
    const gin = empty(x.shape);
    if (kh > 1 && kw > 1) {
      // Separable, as the forward: the covering output rows first, then the output columns.
      const cols = empty([n, c, h, ow]);
      windowPass(`${op}.backward`, "avg_pool_bwd_cols", geo, cols.size, [g.buffer, cols.buffer]);
      windowPass(`${op}.backward`, "avg_pool_bwd_rows", geo, x.size, [cols.buffer, gin.buffer]);
      cols.dispose(); // reusable once this batch is submitted
    } else {
      windowPass(`${op}.backward`, "avg_pool_bwd", geo, x.size, [g.buffer, gin.buffer]);
    }
    return [gin];
  });
}

/**
 * 2-D max pooling, as PyTorch's `max_pool2d` (`ceil_mode=False`, dilation 1): padding counts as
 * -inf, the first maximum in row-major window order wins ties, NaN propagates. The gradient goes
 * to each window's argmax. The argmax is recomputed in the backward pass (one kernel per output)
 * rather than saved by the forward pass, so the op keeps no buffer alive between the passes.
 * Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { maxPool2d } from "./pool.ts";
 * await initGpu();
 * const x = tensor([1, 5, 2, 0, 3, 4, 8, 7], [1, 1, 2, 4]);
 * const y = maxPool2d(x, { kernel: 2 }); // halves H and W
 * assert.deepEqual(y.shape, [1, 1, 1, 2]);
 * assert.deepEqual([...await y.read()], [5, 8]);
 * ```
 */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const op = "maxPool2d";
  const geo = geometry(x, options, op);
  const { n, c, h, w, oh, ow } = geo;
  if (h * w > MAX_PLANE) {
    throw new RangeError(`${op}: planes of ${h}x${w} exceed ${MAX_PLANE} elements`);
  }
  const out = empty([n, c, oh, ow]);
  windowPass(op, "max_pool_fwd", geo, out.size, [x.buffer, out.buffer]);
  return record(out, op, [x], (g) => {
    const arg = empty(out.shape);
    windowPass(`${op}.argmax`, "max_pool_arg", geo, out.size, [x.buffer, arg.buffer]);
    const gin = empty(x.shape);
    windowPass(`${op}.backward`, "max_pool_bwd", geo, x.size, [g.buffer, arg.buffer, gin.buffer]);
    arg.dispose(); // reusable once this batch is submitted
    return [gin];
  });
}

/**
 * 2-D adaptive average pooling, as PyTorch's `adaptive_avg_pool2d`: `[N,C,H,W] -> [N,C,OH,OW]`,
 * output `(i, j)` the mean of input rows `[floor(i*H/OH), ceil((i+1)*H/OH))` and columns
 * `[floor(j*W/OW), ceil((j+1)*W/OW))` (windows of neighbouring outputs may overlap; `OH > H`
 * repeats rows). `output` is `[OH, OW]`, or one number for both. ResNet's head is
 * `adaptiveAvgPool2d(x, 1)`. Separable: two dispatches forward (row sums, then columns) and two
 * backward. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { adaptiveAvgPool2d } from "./pool.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [1, 1, 1, 6]);
 * // Windows of 6 columns into 4: [0, 2), [1, 3), [3, 5), [4, 6).
 * const y = adaptiveAvgPool2d(x, [1, 4]);
 * assert.deepEqual(y.shape, [1, 1, 1, 4]);
 * assert.deepEqual([...await y.read()], [1.5, 2.5, 4.5, 5.5]);
 * ```
 */
export function adaptiveAvgPool2d(x: Tensor, output: Size2): Tensor {
  const op = "adaptiveAvgPool2d";
  const [n, c, h, w] = checkNchw(x, op);
  const [oh, ow] = pair(output, "output size", op, 1);
  if (h === 0 || w === 0) throw new RangeError(`${op}: empty planes in [${x.shape}]`);
  // Each invocation loops over at most one row or column (or the outputs covering a pixel):
  // below lavapipe's 65535 iterations, and the products o * H in i32.
  const limit = 32768;
  if (Math.max(h, w, oh, ow) > limit) {
    throw new RangeError(`${op}: sizes ${h}x${w} -> ${oh}x${ow} must be at most ${limit}`);
  }
  const ints = (count: number) => [count, n * c, h, w, oh, ow, 0, 0, 0, 0, 0, 0, 0];
  const run = (name: string, entry: string, count: number, buffers: GPUBuffer[]) =>
    dispatch({
      op: name,
      kernel: POOL,
      entry,
      ints: ints(count),
      floats: [0],
      workgroups: grid1d(count, 64),
    }, buffers);
  const out = empty([n, c, oh, ow]);
  if (out.size === 0) return out;
  const rows = empty([n, c, h, ow]);
  run(op, "adaptive_rows", rows.size, [x.buffer, rows.buffer]);
  run(op, "adaptive_cols", out.size, [rows.buffer, out.buffer]);
  rows.dispose(); // reusable once this batch is submitted
  return record(out, op, [x], (g) => {
    const cols = empty([n, c, h, ow]);
    const gin = empty(x.shape);
    run(`${op}.backward`, "adaptive_bwd_cols", cols.size, [g.buffer, cols.buffer]);
    run(`${op}.backward`, "adaptive_bwd_rows", gin.size, [cols.buffer, gin.buffer]);
    cols.dispose(); // reusable once this batch is submitted
    return [gin];
  });
}

/** Integer params of the global kernels (the windowed fields unused). */
function globalInts(count: number, planes: number, h: number, w: number): number[] {
  return [count, planes, h, w, 0, 0, 0, 0, 0, 0, 0, 0, 0];
}

function checkGlobal(x: Tensor, op: string): [number, number, number, number] {
  const dims = checkNchw(x, op);
  if (dims[2] * dims[3] === 0) throw new RangeError(`${op}: empty planes in [${x.shape}]`);
  return dims;
}

/**
 * Mean over each `(n, c)` plane: `[N,C,H,W] -> [N,C]`. Planes of up to 4096 elements are summed
 * by one invocation or one workgroup per plane; larger ones by reduce.ts's {@link mean}, which
 * splits each plane over many workgroups. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { globalMeanPool } from "./pool.ts";
 * await initGpu();
 * const x = full([2, 3, 4, 4], 0.5);
 * const features = globalMeanPool(x); // [N, C]
 * assert.deepEqual(features.shape, [2, 3]);
 * assert.ok((await features.read()).every((v) => v === 0.5));
 * ```
 */
export function globalMeanPool(x: Tensor): Tensor {
  const op = "globalMeanPool";
  const [n, c, h, w] = checkGlobal(x, op);
  if (h * w > MEDIUM_PLANE) return mean(x, { axes: [2, 3] });
  const planes = n * c;
  const layout = globalLayout(h * w, planes);
  const out = empty([n, c]);
  dispatch({
    op,
    kernel: POOL,
    entry: `global_mean_fwd${layout.suffix}`,
    defines: layout.defines,
    ints: globalInts(planes, planes, h, w),
    floats: [0],
    workgroups: layout.workgroups,
  }, [x.buffer, out.buffer]);
  return record(out, op, [x], (g) => {
    const gin = empty(x.shape);
    dispatch({
      op: `${op}.backward`,
      kernel: POOL,
      entry: "global_mean_bwd",
      ints: globalInts(x.size, planes, h, w),
      floats: [0],
      workgroups: grid1d(x.size, 64),
    }, [g.buffer, gin.buffer]);
    return [gin];
  });
}

/**
 * Standard deviation over each `(n, c)` plane: `[N,C,H,W] -> [N,C]`, as `torch.std(x, dim=(2, 3))`
 * (unbiased by default, as VSFA's pooling uses it). Computed in two passes (mean, then squared
 * deviations from a mean taken as `x[0] + mean(x - x[0])`, exact for constant planes) for
 * accuracy: one invocation or workgroup per plane for planes of up to 4096 elements, reduce.ts's
 * chunked {@link std} beyond. The gradient is
 * `(x - mean) / (divisor * std)`, and 0 where the std is 0 (as torch's `std_backward` masks it).
 *
 * A plane of one element has no unbiased std: torch returns NaN (with a warning); this op throws
 * a RangeError instead, so that a NaN does not flow silently into a model. With
 * `{ unbiased: false }` such a plane gives 0. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { globalStdPool } from "./pool.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
 * const features = globalStdPool(x); // [N, C]
 * assert.deepEqual(features.shape, [1, 1]);
 * assert.ok(Math.abs((await features.read())[0] - Math.sqrt(5 / 3)) < 1e-5);
 * ```
 */
export function globalStdPool(x: Tensor, options: GlobalStdOptions = {}): Tensor {
  const op = "globalStdPool";
  const [n, c, h, w] = checkGlobal(x, op);
  const unbiased = options.unbiased ?? true;
  const hw = h * w;
  if (unbiased && hw < 2) {
    throw new RangeError(
      `${op}: the unbiased std of a ${h}x${w} plane is undefined (torch returns NaN); ` +
        `use a larger map or { unbiased: false }`,
    );
  }
  if (hw > MEDIUM_PLANE) return std(x, { axes: [2, 3], unbiased });
  const divisor = unbiased ? hw - 1 : hw;
  const planes = n * c;
  const layout = globalLayout(hw, planes);
  const out = empty([n, c]);
  dispatch({
    op,
    kernel: POOL,
    entry: `global_std_fwd${layout.suffix}`,
    defines: layout.defines,
    ints: globalInts(planes, planes, h, w),
    floats: [divisor],
    workgroups: layout.workgroups,
  }, [x.buffer, out.buffer]);
  return record(out, op, [x], (g) => {
    const gin = empty(x.shape);
    dispatch({
      op: `${op}.backward`,
      kernel: POOL,
      entry: `global_std_bwd${layout.suffix}`,
      defines: layout.defines,
      ints: globalInts(planes, planes, h, w),
      floats: [divisor],
      workgroups: layout.workgroups,
    }, [x.buffer, g.buffer, gin.buffer]);
    return [gin];
  });
}
