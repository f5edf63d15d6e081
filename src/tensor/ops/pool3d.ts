/**
 * 3-D max and average pooling over NCTHW float32 tensors (PyTorch semantics, floor mode): the
 * video backbones' pools (SlowFast's stem max pool `(1,3,3)` stride `(1,2,2)` padding `(0,1,1)`,
 * its head's and SimpleVQA's average pools).
 *
 * Both are separable, and run as two passes of pool.ts's 2-D kernels (pool.wgsl, forward and
 * backward) on reshaped views, no copies: first over `(H, W)` with `x` seen as
 * `[N, C*T, H, W]`, then over `T` with the result seen as `[N, C, T, OH*OW]` and a `(KT, 1)`
 * window. That is exact: a box's maximum is the maximum over its frames of each frame's window
 * maximum (the first maximum in `(t, h, w)` order still wins ties and takes the gradient, as in
 * PyTorch), and a box's average with `count_include_pad` divides by `KT * KH * KW`, the product of
 * the passes' divisors (likewise the counts inside the video without it). A pass whose window is
 * one element with stride 1 and no padding is skipped.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { type Size3, triple } from "./conv3d.ts";
import { avgPool2d, maxPool2d } from "./pool.ts";

/** Options of {@link maxPool3d} and {@link avgPool3d}. */
export interface Pool3dOptions {
  /** Window size, `[t, h, w]` or one number for all axes. */
  kernel: Size3;
  /** Step between windows (default: the kernel size). */
  stride?: Size3;
  /** Implicit padding on each side (default 0); at most half the kernel, as in PyTorch. */
  padding?: Size3;
  /**
   * Average pooling only: divide every window by `KT * KH * KW`, padding counting as zeros
   * (PyTorch's default, `count_include_pad=True`), or, when false, by the number of its positions
   * inside the video. Default true.
   */
  countIncludePad?: boolean;
}

/** Longest window side (or window area for max pooling's per-frame pass) accepted: each
 * invocation of pool.wgsl loops over it, and lavapipe ends loops after 65535 iterations. */
const MAX_WINDOW = 32768;

interface Plan {
  n: number;
  c: number;
  t: number;
  ot: number;
  oh: number;
  ow: number;
  k: [number, number, number];
  s: [number, number, number];
  p: [number, number, number];
}

function plan(x: Tensor, options: Pool3dOptions, op: string, area: boolean): Plan {
  if (x.rank !== 5) throw new RangeError(`${op}: expects an NCTHW tensor, got [${x.shape}]`);
  const [n, c, t, h, w] = x.shape;
  const k = triple(options.kernel, 1, op, "kernel", 1);
  const s = triple(options.stride ?? options.kernel, 1, op, "stride", 1);
  const p = triple(options.padding, 0, op, "padding", 0);
  if (p.some((v, i) => 2 * v > k[i])) {
    throw new RangeError(`${op}: padding [${p}] must be at most half the kernel [${k}]`);
  }
  const dims = [t, h, w];
  const [ot, oh, ow] = dims.map((d, i) => Math.floor((d + 2 * p[i] - k[i]) / s[i]) + 1);
  if (ot < 1 || oh < 1 || ow < 1) {
    throw new RangeError(
      `${op}: a ${k.join("x")} window does not fit the ${dims.join("x")} input [${x.shape}] ` +
        `with padding [${p}]`,
    );
  }
  if (Math.max(...k) > MAX_WINDOW || (area && k[1] * k[2] > MAX_WINDOW)) {
    throw new RangeError(
      `${op}: a ${k.join("x")} window is too large (at most ${MAX_WINDOW} per axis` +
        `${area ? " and per frame" : ""}; lavapipe's loop limit) for [${x.shape}]`,
    );
  }
  return { n, c, t, ot, oh, ow, k, s, p };
}

type Pool2d = (x: Tensor, o: {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  countIncludePad?: boolean;
}) => Tensor;

function separable(x: Tensor, g: Plan, pool: Pool2d, countIncludePad?: boolean): Tensor {
  const [kt, kh, kw] = g.k;
  const [st, sh, sw] = g.s;
  const [pt, ph, pw] = g.p;
  const [, , , h, w] = x.shape;
  let y = x;
  if (kh > 1 || kw > 1 || sh > 1 || sw > 1 || ph > 0 || pw > 0) {
    y = pool(x.reshape([g.n, g.c * g.t, h, w]), {
      kernel: [kh, kw],
      stride: [sh, sw],
      padding: [ph, pw],
      countIncludePad,
    });
  }
  if (kt > 1 || st > 1 || pt > 0) {
    y = pool(y.reshape([g.n, g.c, g.t, g.oh * g.ow]), {
      kernel: [kt, 1],
      stride: [st, 1],
      padding: [pt, 0],
      countIncludePad,
    });
  }
  return y.reshape([g.n, g.c, g.ot, g.oh, g.ow]);
}

/**
 * 3-D max pooling, as PyTorch's `max_pool3d` (`ceil_mode=False`, dilation 1):
 * `[N,C,T,H,W] -> [N,C,OT,OH,OW]` with `OT = floor((T + 2*padT - KT) / strideT) + 1` (likewise
 * OH, OW); padding counts as -inf, the first maximum in `(t, h, w)` order wins ties and takes the
 * gradient. Two separable passes of `maxPool2d` (frames, then time). Differentiable.
 *
 * @throws {RangeError} for a tensor that is not 5-D, bad options, or a window that does not fit.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { maxPool3d } from "./pool3d.ts";
 * await initGpu();
 * // SlowFast's stem pool: kernel (1,3,3), stride (1,2,2), padding (0,1,1).
 * const x = tensor(Array.from({ length: 2 * 4 * 4 }, (_, i) => i), [1, 1, 2, 4, 4]);
 * const y = maxPool3d(x, { kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1] });
 * assert.deepEqual(y.shape, [1, 1, 2, 2, 2]);
 * assert.deepEqual([...await y.read()], [5, 7, 13, 15, 21, 23, 29, 31]);
 * ```
 */
export function maxPool3d(x: Tensor, options: Pool3dOptions): Tensor {
  return separable(x, plan(x, options, "maxPool3d", true), maxPool2d);
}

/**
 * 3-D average pooling, as PyTorch's `avg_pool3d` (`ceil_mode=False`): by default
 * (`count_include_pad=True`) every window is divided by `KT * KH * KW`, padding counting as zeros;
 * with `countIncludePad: false` by the number of its positions inside the video.
 * `[N,C,T,H,W] -> [N,C,OT,OH,OW]` (sizes as {@link maxPool3d}). A window of the whole input
 * (`kernel: [T, H, W]`) pools globally. Two separable passes of `avgPool2d`. Differentiable.
 *
 * @throws {RangeError} for a tensor that is not 5-D, bad options, or a window that does not fit.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { avgPool3d } from "./pool3d.ts";
 * await initGpu();
 * // SlowFast's head pool over the whole (8, 7, 7) slow-pathway map.
 * const x = full([2, 3, 8, 7, 7], 0.5);
 * const y = avgPool3d(x, { kernel: [8, 7, 7], stride: 1 });
 * assert.deepEqual(y.shape, [2, 3, 1, 1, 1]);
 * assert.ok((await y.read()).every((v) => Math.abs(v - 0.5) < 1e-6));
 * ```
 */
export function avgPool3d(x: Tensor, options: Pool3dOptions): Tensor {
  const g = plan(x, options, "avgPool3d", false);
  return separable(x, g, avgPool2d, options.countIncludePad ?? true);
}
