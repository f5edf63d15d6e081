/**
 * Regression losses between a prediction and a target of the same shape, as PyTorch's
 * `F.l1_loss` and `F.mse_loss`. Kernels: loss.wgsl (one fused pass for the elementwise
 * loss, a two-level tree reduction for `"mean"` and `"sum"`, and one fused backward pass that
 * writes the gradients of both arguments).
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { LOSS } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";

/** Options of {@link l1Loss} and {@link mseLoss}. */
export interface LossOptions {
  /**
   * `"mean"` (default) averages over all elements, `"sum"` adds them, `"none"` returns the
   * elementwise loss with the inputs' shape. Mean and sum return a tensor of shape `[]`.
   */
  reduction?: "mean" | "sum" | "none";
}

interface LossDef {
  f: string;
  df: string;
}

const L1: LossDef = { f: "abs(d)", df: "sign(d)" };
const MSE: LossDef = { f: "d * d", df: "2.0 * d" };

const WG = 256;
/** Elements each workgroup of the first reduction level sums (at least). */
const CHUNK = 4096;
/** Partial sums at most (one workgroup sums them at the second level). */
const MAX_PARTIALS = 1024;

function runLoss(
  op: string,
  def: LossDef,
  pred: Tensor,
  target: Tensor,
  options: LossOptions,
): Tensor {
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new RangeError(`${op}: reduction must be "mean", "sum" or "none", got ${reduction}`);
  }
  if (pred.shape.join() !== target.shape.join()) {
    throw new RangeError(
      `${op}: prediction [${pred.shape}] and target [${target.shape}] must have the same shape`,
    );
  }
  const n = pred.size;
  if (n === 0) throw new RangeError(`${op}: empty inputs [${pred.shape}]`);
  const defines = { F: def.f, DF: def.df };
  const reduced = reduction !== "none";
  const scale = reduction === "mean" ? 1 / n : 1;
  let out: Tensor;
  if (!reduced) {
    out = empty(pred.shape);
    dispatch({
      op,
      kernel: LOSS,
      entry: "loss_none",
      defines,
      ints: [n, 0, 0, 0],
      floats: [1, 1],
      workgroups: grid1d(n, WG),
    }, [pred.buffer, target.buffer, out.buffer]);
  } else {
    const groups = Math.min(Math.ceil(n / CHUNK), MAX_PARTIALS);
    const chunk = Math.ceil(n / groups);
    const partial = empty([groups]);
    dispatch({
      op: `${op}.partial`,
      kernel: LOSS,
      entry: "loss_partial",
      defines,
      ints: [n, 0, chunk, 0],
      floats: [1, 1],
      workgroups: [groups],
    }, [pred.buffer, target.buffer, partial.buffer]);
    out = empty([]);
    dispatch({
      op: `${op}.final`,
      kernel: LOSS,
      entry: "loss_final",
      defines,
      ints: [1, 0, 0, groups],
      floats: [scale, 1],
      workgroups: [1],
    }, [partial.buffer, out.buffer]);
    partial.dispose();
  }
  return record(out, op, [pred, target], (g) => {
    const ints = [n, reduced ? 1 : 0, 0, 0];
    const workgroups = grid1d(n, WG);
    if (pred.requiresGrad && target.requiresGrad) {
      const gp = empty(pred.shape);
      const gt = empty(target.shape);
      dispatch({
        op: `${op}.backward`,
        kernel: LOSS,
        entry: "loss_bwd_both",
        defines,
        ints,
        floats: [scale, 1],
        workgroups,
      }, [pred.buffer, target.buffer, g.buffer, gp.buffer, gt.buffer]);
      return [gp, gt];
    }
    const forPred = pred.requiresGrad;
    const gin = empty(pred.shape);
    dispatch({
      op: `${op}.backward`,
      kernel: LOSS,
      entry: "loss_bwd_one",
      defines,
      ints,
      floats: [scale, forPred ? 1 : -1],
      workgroups,
    }, [pred.buffer, target.buffer, g.buffer, gin.buffer]);
    return forPred ? [gin, null] : [null, gin];
  });
}

/**
 * Mean (or summed, or elementwise) absolute error `|pred - target|`, as PyTorch's `F.l1_loss`.
 * Gradients flow to both arguments (the target's only if it requires one); the gradient of
 * `|d|` at `d = 0` is 0, as in PyTorch.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { l1Loss } from "./loss.ts";
 * await initGpu();
 * const score = tensor([3, 1], [2], { requiresGrad: true });
 * const target = tensor([2.5, 2], [2]);
 * const loss = l1Loss(score, target); // shape [], the mean
 * assert.deepEqual([...await loss.read()], [0.75]);
 * loss.backward();
 * assert.deepEqual([...await score.grad!.read()], [0.5, -0.5]);
 * ```
 */
export function l1Loss(pred: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  return runLoss("l1Loss", L1, pred, target, options);
}

/**
 * Mean (or summed, or elementwise) squared error `(pred - target)^2`, as PyTorch's
 * `F.mse_loss`. Gradients flow to both arguments (the target's only if it requires one).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { mseLoss } from "./loss.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3]);
 * const y = tensor([1, 0, 1]);
 * const perPixel = mseLoss(x, y, { reduction: "none" });
 * assert.deepEqual([...await perPixel.read()], [0, 4, 4]);
 * ```
 */
export function mseLoss(pred: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  return runLoss("mseLoss", MSE, pred, target, options);
}
