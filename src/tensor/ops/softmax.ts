/**
 * Softmax along one axis (the attention weights of transformers such as the Swin family).
 * Kernel: softmax.wgsl, over the last axis, one dispatch forward and one backward (one workgroup
 * per row); another axis is moved last around it by permutes.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { SOFTMAX } from "./_kernels.ts";
import { empty, noGrad, record, type Tensor } from "../tensor.ts";
import { permute } from "./shape.ts";

/** Options of {@link softmax}. */
export interface SoftmaxOptions {
  /** The axis the values are normalised along (negative counts from the end; default -1). */
  axis?: number;
}

/**
 * Fewer rows than this, longer than 64, take a 64-wide workgroup each (`sm_fwd`, `sm_bwd`); other
 * shapes one invocation per row (`*_rows`). On lavapipe the workgroup's barriers cost more than
 * they gain whenever there are rows enough to fill the cores: one invocation per row measured 2x
 * (rows of 392) to 5x (rows of 49) faster over tens of thousands of rows, and 2.5x for 2000 rows
 * of 5000.
 */
const FEW_ROWS = 256;

const s = (shape: readonly number[]) => `[${shape.join(",")}]`;

/** One launch of softmax.wgsl over `n` rows of `c` elements. */
function smPass(
  op: string,
  entry: "sm_fwd" | "sm_bwd",
  n: number,
  c: number,
  buffers: GPUBuffer[],
): void {
  const rows = n >= FEW_ROWS || c <= 64;
  dispatch({
    op,
    kernel: SOFTMAX,
    entry: rows ? `${entry}_rows` : entry,
    ints: [n, c],
    workgroups: grid1d(n, rows ? 64 : 1),
  }, buffers);
}

/** The softmax over the last axis, without recording a gradient. */
function softmaxLast(op: string, x: Tensor): Tensor {
  const out = empty(x.shape);
  if (x.size === 0) return out;
  const c = x.shape[x.rank - 1];
  smPass(op, "sm_fwd", x.size / c, c, [x.buffer, out.buffer]);
  return out;
}

/**
 * The input gradient of a softmax over the last axis, from its output `y` and the output's
 * gradient `g`: `y * (g - sum(g * y))` per row (one dispatch of softmax.wgsl). Records nothing: a
 * building block for ops that recompute the softmax in their backward (attention.ts).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { softmaxLastBackward } from "./softmax.ts";
 * await initGpu();
 * // y = [1/4, 3/4], g = [1, 0]: sum(g * y) = 1/4, dx = [1/4 * 3/4, 3/4 * -1/4].
 * const dx = await softmaxLastBackward("demo", tensor([0.25, 0.75]), tensor([1, 0])).read();
 * assert.ok(Math.abs(dx[0] - 0.1875) < 1e-7 && Math.abs(dx[1] + 0.1875) < 1e-7);
 * ```
 */
export function softmaxLastBackward(op: string, y: Tensor, g: Tensor): Tensor {
  const dx = empty(y.shape);
  if (y.size === 0) return dx;
  const c = y.shape[y.rank - 1];
  smPass(op, "sm_bwd", y.size / c, c, [y.buffer, g.buffer, dx.buffer]);
  return dx;
}

/**
 * Softmax along `axis` (default the last), as PyTorch's `torch.softmax(x, dim)`:
 * `y = exp(x - max(x)) / sum(exp(x - max(x)))` over each line of that axis. The row's maximum is
 * subtracted before the exponential, so large values (1e4) do not overflow and masked entries
 * (a large negative such as -100) get weights near 0. One dispatch: one invocation per row, or
 * one 64-wide workgroup per row when there are few (< 256) rows longer than 64; for another axis
 * than the last, the values are permuted so that it is last, and back.
 *
 * Differentiable: `dx = y * (g - sum(g * y))` per row, one dispatch, from the output `y` (kept
 * by the graph; the input is not needed).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { softmax } from "./softmax.ts";
 * await initGpu();
 * // Rows [0, ln 3] and [1e4, 1e4]: weights 1/4, 3/4 and 1/2, 1/2.
 * const x = tensor([0, Math.log(3), 1e4, 1e4], [2, 2]);
 * const y = await softmax(x).read();
 * [0.25, 0.75, 0.5, 0.5].forEach((w, i) => assert.ok(Math.abs(y[i] - w) < 1e-6));
 * // Along the first axis instead: each column sums to 1.
 * const cols = await softmax(tensor([1, 2, 3, 4], [2, 2]), { axis: 0 }).read();
 * assert.ok(Math.abs(cols[0] + cols[2] - 1) < 1e-6);
 * ```
 */
export function softmax(x: Tensor, options: SoftmaxOptions = {}): Tensor {
  const op = "softmax";
  if (x.rank < 1) throw new RangeError(`${op}: x must have at least one axis, got ${s(x.shape)}`);
  const given = options.axis ?? -1;
  const axis = given < 0 ? given + x.rank : given;
  if (!Number.isInteger(given) || axis < 0 || axis >= x.rank) {
    throw new RangeError(`${op}: axis ${given} is out of range for x ${s(x.shape)}`);
  }
  if (axis === x.rank - 1) {
    const out = softmaxLast(op, x);
    return record(out, op, [x], (g) => [softmaxLastBackward(`${op}.backward`, out, g)]);
  }
  // Move `axis` last (perm), and back (inv): permute is its own kind of copy, so the kernels
  // still see contiguous rows.
  const perm = [...Array(x.rank).keys()].filter((i) => i !== axis).concat(axis);
  const inv = perm.map((_, i) => perm.indexOf(i));
  const out = noGrad(() => {
    const xt = permute(x, perm);
    const yt = softmaxLast(op, xt);
    const y = permute(yt, inv);
    xt.dispose();
    yt.dispose();
    return y;
  });
  return record(out, op, [x], (g) => {
    const yt = permute(out, perm);
    const gt = permute(g, perm);
    const dxt = softmaxLastBackward(`${op}.backward`, yt, gt);
    const dx = permute(dxt, inv);
    [yt, gt, dxt].forEach((t) => t.dispose());
    return [dx];
  });
}
