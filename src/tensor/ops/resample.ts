/**
 * Resampling of NCHW float32 tensors: 2x upsampling (nearest or bilinear), as STQA-Net's decoder
 * uses it. Kernels: resample.wgsl; the backward kernels gather (each input sums the
 * outputs it fed, with the forward weights), so they need no atomics.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { RESAMPLE } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";

/** Options of {@link upsample2x}. */
export interface UpsampleOptions {
  /**
   * `"nearest"` repeats each pixel 2x2 (PyTorch's `mode="nearest"`); `"bilinear"` interpolates as
   * PyTorch's `F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`.
   * Default `"nearest"`.
   */
  mode?: "nearest" | "bilinear";
}

/**
 * Upsamples `[N,C,H,W]` to `[N,C,2H,2W]`. Bilinear mode matches PyTorch's
 * `F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)`: output coordinate `d`
 * reads source coordinate `max((d + 0.5) / 2 - 0.5, 0)` between its two nearest rows/columns,
 * the last row/column replicated. Differentiable.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { upsample2x } from "./resample.ts";
 * await initGpu();
 * const x = full([1, 2, 3, 3], 1);
 * const y = upsample2x(x, { mode: "bilinear" }); // [N, C, 2H, 2W]
 * assert.deepEqual(y.shape, [1, 2, 6, 6]);
 * assert.ok((await y.read()).every((v) => Math.abs(v - 1) < 1e-6));
 * ```
 */
export function upsample2x(x: Tensor, options: UpsampleOptions = {}): Tensor {
  const mode = options.mode ?? "nearest";
  if (mode !== "nearest" && mode !== "bilinear") {
    throw new RangeError(`upsample2x: mode must be "nearest" or "bilinear", got ${String(mode)}`);
  }
  if (x.rank !== 4) throw new RangeError(`upsample2x: expects an NCHW tensor, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  const op = `upsample2x.${mode}`;
  const out = empty([n, c, 2 * h, 2 * w]);
  dispatch({
    op,
    kernel: RESAMPLE,
    entry: `${mode}_fwd`,
    ints: [x.size, n * c, h, w],
    workgroups: grid1d(x.size, 64),
  }, [x.buffer, out.buffer]);
  return record(out, op, [x], (g) => {
    const gin = empty(x.shape);
    dispatch({
      op: `${op}.backward`,
      kernel: RESAMPLE,
      entry: `${mode}_bwd`,
      ints: [x.size, n * c, h, w],
      workgroups: grid1d(x.size, 64),
    }, [g.buffer, gin.buffer]);
    return [gin];
  });
}
