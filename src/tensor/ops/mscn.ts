/**
 * Local contrast normalisation (MSCN coefficients) as one op with its own kernels (mscn.wgsl):
 * two dispatches forward and four backward, against about 40 for the same formula composed from
 * pooling and elementwise ops.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { MSCN } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";

/**
 * `(x - mu) / (sqrt(max(m2 - mu², 0) + 1e-6) + c)` per pixel of `x` `[N,C,H,W]`, with `mu` and
 * `m2` the means of `x` and `x²` over the `kernel x kernel` window around the pixel (border
 * windows count only pixels inside the image: `avg_pool2d` with stride 1, padding
 * `(kernel-1)/2`, `count_include_pad=False`). The same values as that formula composed from
 * `avgPool2d`, `square`, `relu`, `sqrt` and the arithmetic ops, in 2 dispatches (6 with the
 * backward). Differentiable in `x`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { localNormalize } from "./mscn.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(2 * 8 * 8).map((_, i) => (i % 7) / 7), [1, 2, 8, 8]);
 * const y = localNormalize(x, { kernel: 5, c: 1 / 64 }); // [1, 2, 8, 8]
 * ```
 */
export function localNormalize(x: Tensor, options: { kernel: number; c: number }): Tensor {
  const { kernel, c } = options;
  if (x.rank !== 4) {
    throw new RangeError(`localNormalize: x must be [N, C, H, W], got [${x.shape.join(",")}]`);
  }
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) {
    throw new RangeError(`localNormalize: kernel must be an odd positive integer, got ${kernel}`);
  }
  const [, , h, w] = x.shape;
  const n = x.size;
  const out = empty(x.shape);
  if (n === 0) return out;
  const run = (entry: string, buffers: GPUBuffer[], backward = false, square = true) =>
    dispatch({
      op: backward ? "localNormalize.backward" : "localNormalize",
      kernel: MSCN,
      entry,
      defines: { SQUARE: String(square) },
      ints: [n, h, w, (kernel - 1) / 2],
      floats: [c],
      workgroups: grid1d(n, 64),
    }, buffers);
  const rows = empty([n, 2]);
  run("mscn_rows", [x.buffer, rows.buffer]);
  run("mscn_fwd", [rows.buffer, x.buffer, out.buffer]);
  rows.dispose(); // reusable once this batch is submitted
  return record(out, "localNormalize", [x], (g) => {
    const sums = empty([n, 2]);
    const maps = empty([n, 2]);
    const gu = empty([n]);
    const mapRows = empty([n, 2]);
    const dx = empty(x.shape);
    run("mscn_rows", [x.buffer, sums.buffer], true);
    run("mscn_grad_maps", [sums.buffer, x.buffer, g.buffer, maps.buffer, gu.buffer], true);
    run("mscn_rows", [maps.buffer, mapRows.buffer], true, false);
    run("mscn_bwd", [mapRows.buffer, x.buffer, gu.buffer, dx.buffer], true);
    [sums, maps, gu, mapRows].forEach((t) => t.dispose());
    return [dx];
  });
}
