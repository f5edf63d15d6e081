/**
 * Batch normalisation in inference form (the frozen BatchNorm layers of ResNet-based VQA models
 * such as VSFA and SimpleVQA): per-channel `(x - mean) / sqrt(var + eps) * weight + bias` with
 * stored running statistics, and its folding into the convolution before it. Kernels:
 * norm.wgsl, one fused dispatch forward; one backward (the input gradient alone, or with the
 * weight's per-element terms) plus reduce.ts's sums for the weight and bias gradients; two for a
 * fold.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { NORM } from "./_kernels.ts";
import { empty, full, record, type Tensor } from "../tensor.ts";
import { sum } from "./reduce.ts";

/** Options of {@link batchNorm2d}: the layer's parameters and running statistics, each `[C]`. */
export interface BatchNormOptions {
  /** Scale (gamma); ones when omitted (`affine=False`). May require a gradient. */
  weight?: Tensor;
  /** Shift (beta); zeros when omitted. May require a gradient. */
  bias?: Tensor;
  /** Running mean: a constant (no gradient reaches it, even if it requires one). */
  runningMean: Tensor;
  /** Running (biased) variance: a constant (no gradient reaches it, even if it requires one). */
  runningVar: Tensor;
  /** Added to the variance before the square root (default 1e-5, PyTorch's). */
  eps?: number;
}

/** Elements per invocation along a plane (SEG in norm.wgsl). */
const SEG = 32;

const s = (shape: readonly number[]) => `[${shape.join(",")}]`;

/** How norm.wgsl sees a tensor: `n` items of `c` channels of `plane` elements each. */
interface Dims {
  n: number;
  c: number;
  plane: number;
}

/** Checks the statistics and parameters against `c` channels; `of` names what they serve. */
function checkStats(op: string, bn: BatchNormOptions, c: number, of: string): number {
  const eps = bn.eps ?? 1e-5;
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  }
  const named: [string, Tensor | undefined][] = [
    ["runningMean", bn.runningMean],
    ["runningVar", bn.runningVar],
    ["weight", bn.weight],
    ["bias", bn.bias],
  ];
  for (const [what, t] of named) {
    if (t && (t.rank !== 1 || t.shape[0] !== c)) {
      throw new RangeError(`${op}: ${what} ${s(t.shape)} must be [${c}] for ${of}`);
    }
  }
  return eps;
}

/**
 * One launch of norm.wgsl over `d`: `entry` with `centre` (bn_apply) or `wantDx` (bn_bwd);
 * `buffers` are b1, then b6 onwards (the statistics go between).
 */
function normPass(
  op: string,
  entry: "bn_apply" | "bn_bwd",
  d: Dims,
  bn: BatchNormOptions,
  eps: number,
  flags: { centre?: boolean; wantDx?: boolean },
  [first, ...rest]: GPUBuffer[],
): void {
  const segs = Math.ceil(d.plane / SEG);
  const count = d.n * d.c * segs;
  // A missing weight or bias binds the mean in its place (read-only bindings), flagged off.
  const stats = [bn.weight ?? bn.runningMean, bn.bias ?? bn.runningMean, bn.runningMean]
    .concat(bn.runningVar).map((t) => t.buffer);
  dispatch({
    op,
    kernel: NORM,
    entry,
    ints: [
      count,
      d.c,
      d.plane,
      segs,
      bn.weight ? 1 : 0,
      bn.bias ? 1 : 0,
      flags.centre ? 1 : 0,
      flags.wantDx ? 1 : 0,
    ],
    floats: [eps],
    workgroups: grid1d(count, 64),
  }, [first, ...stats, ...rest]);
}

/**
 * Batch normalisation with stored statistics, as PyTorch's
 * `F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)` (a
 * BatchNorm layer in `eval()` mode): per channel `c`,
 * `y = (x - runningMean[c]) / sqrt(runningVar[c] + eps) * weight[c] + bias[c]`.
 * `x` is `[N, C, ...]`: `[N, C]`, `[N, C, H, W]` (BatchNorm2d) or `[N, C, T, H, W]`
 * (BatchNorm3d) alike. One fused dispatch forward.
 *
 * Differentiable in `x`, `weight` and `bias`: `dx = g * weight / sqrt(var + eps)` (one
 * dispatch), `dweight = sum(g * xhat)` and `dbias = sum(g)` over every axis but the channel's.
 * The running statistics are constants: no gradient reaches them, even if they require one (as
 * in an inference-mode layer, whose statistics are buffers, not parameters). Training-mode
 * batch statistics are not supported.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { batchNorm2d } from "./norm.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]);
 * const y = batchNorm2d(x, {
 *   weight: tensor([2, 1]),
 *   bias: tensor([0, 1]),
 *   runningMean: tensor([2.5, 25]),
 *   runningVar: tensor([4, 100]),
 *   eps: 0,
 * });
 * // Channel 0: (x - 2.5) / 2 * 2 + 0; channel 1: (x - 25) / 10 + 1.
 * assert.deepEqual([...await y.read()], [-1.5, -0.5, 0.5, 1.5, -0.5, 0.5, 1.5, 2.5]);
 * ```
 */
export function batchNorm2d(x: Tensor, options: BatchNormOptions): Tensor {
  const op = "batchNorm2d";
  const { weight, bias } = options;
  if (x.rank < 2) throw new RangeError(`${op}: x must be [N, C, ...], got ${s(x.shape)}`);
  const [n, c] = x.shape;
  const eps = checkStats(op, options, c, `x ${s(x.shape)} (${c} channels)`);
  const d: Dims = { n, c, plane: x.size / Math.max(1, n * c) };
  const out = empty(x.shape);
  if (x.size === 0) return out;
  normPass(op, "bn_apply", d, options, eps, { centre: true }, [x.buffer, out.buffer]);
  const inputs = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  /** Sum over every axis but the channel's: `[N, C, ...] -> [C]`. */
  const channelSum = (t: Tensor): Tensor => {
    const view = t.reshape([n, c, d.plane]);
    const total = sum(view, { axes: [0, 2] });
    view.dispose();
    return total;
  };
  return record(out, op, inputs, (g) => {
    const name = `${op}.backward`;
    const wantDx = x.requiresGrad;
    const dx = wantDx ? empty(x.shape) : null;
    let dw: Tensor | null = null;
    if (weight?.requiresGrad) {
      // g * xhat per element (and dx in the same pass), summed per channel.
      const terms = empty(x.shape);
      const dxOrDummy = dx ?? empty([1]);
      normPass(name, "bn_bwd", d, options, eps, { wantDx }, [
        x.buffer,
        dxOrDummy.buffer,
        g.buffer,
        terms.buffer,
      ]);
      if (!dx) dxOrDummy.dispose(); // reusable once this batch is submitted
      dw = channelSum(terms);
      terms.dispose();
    } else if (dx) {
      normPass(name, "bn_apply", d, options, eps, {}, [g.buffer, dx.buffer]);
    }
    const grads: (Tensor | null)[] = [dx];
    if (weight) grads.push(dw);
    if (bias) grads.push(bias.requiresGrad ? channelSum(g) : null);
    return grads;
  });
}

/** A convolution's (or linear layer's) parameters, in PyTorch's layout. */
export interface FoldConvParams {
  /**
   * Weight with the output channel outermost: `[Cout, Cin, KH, KW]` (conv2d), `[Cout, Cin, ...]`
   * (any convolution) or `[out, in]` (linear). Not a transposed convolution's, whose output
   * channel is its second axis.
   */
  weight: Tensor;
  /** Bias `[Cout]`; zeros when omitted (ResNet's convolutions have none). */
  bias?: Tensor;
}

/** The result of {@link foldBatchNorm}: new tensors, owned by the caller. */
export interface FoldedParams {
  /** `w * s` per output channel, in the input weight's shape. */
  weight: Tensor;
  /** `(b - mean) * s + beta`, `[Cout]`. */
  bias: Tensor;
}

/**
 * Folds an inference-mode batch normalisation into the convolution before it: with
 * `s = weight / sqrt(runningVar + eps)` per output channel, `w' = w * s` and
 * `b' = (b - runningMean) * s + bias`, so that `conv2d(x, w', b')` equals
 * `batchNorm2d(conv2d(x, w, b), bn)` up to float32 rounding (as
 * `torch.nn.utils.fusion.fuse_conv_bn_weights`, which also computes in float32). Two dispatches
 * of norm.wgsl's `bn_apply` on the GPU (the weight as `[1, Cout, rest]`, the bias as
 * `[1, Cout]`), no read-back: meant for weights once they are loaded.
 *
 * Not differentiable: the results are new constants, recorded in no graph, whatever the inputs
 * require (a folded convolution is differentiable in its input as any convolution, with the same
 * input gradient as the pair; only gradients to the folded parameters are given up).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { foldBatchNorm } from "./norm.ts";
 * await initGpu();
 * // A 1x1 convolution of 2 input channels to 2 output channels, then BatchNorm2d(2).
 * const folded = foldBatchNorm(
 *   { weight: tensor([1, 2, 3, 4], [2, 2, 1, 1]), bias: tensor([1, -1]) },
 *   {
 *     weight: tensor([4, 1]),
 *     bias: tensor([0.5, 0]),
 *     runningMean: tensor([1, 1]),
 *     runningVar: tensor([4, 1]),
 *     eps: 0,
 *   },
 * );
 * // s = [4 / 2, 1 / 1]: w' = w * s, b' = (b - mean) * s + beta.
 * assert.deepEqual([...await folded.weight.read()], [2, 4, 3, 4]);
 * assert.deepEqual([...await folded.bias.read()], [0.5, -2]);
 * ```
 */
export function foldBatchNorm(conv: FoldConvParams, bn: BatchNormOptions): FoldedParams {
  const op = "foldBatchNorm";
  const { weight: w, bias: b } = conv;
  if (w.rank < 1) throw new RangeError(`${op}: the convolution's weight must have an axis`);
  const c = w.shape[0];
  const of = `the convolution's weight ${s(w.shape)} (${c} output channels)`;
  const eps = checkStats(op, bn, c, of);
  if (b && (b.rank !== 1 || b.shape[0] !== c)) {
    throw new RangeError(`${op}: the convolution's bias ${s(b.shape)} must be [${c}] for ${of}`);
  }
  const weight = empty(w.shape);
  const bias = empty([c]);
  if (w.size > 0) {
    const d: Dims = { n: 1, c, plane: w.size / c };
    // w * alpha: the input-gradient form of bn_apply (no centring, no shift).
    normPass(op, "bn_apply", d, bn, eps, {}, [w.buffer, weight.buffer]);
  }
  if (c > 0) {
    const zeros = b ? null : full([c], 0);
    const src = b ?? zeros!;
    normPass(op, "bn_apply", { n: 1, c, plane: 1 }, bn, eps, { centre: true }, [
      src.buffer,
      bias.buffer,
    ]);
    zeros?.dispose(); // reusable once this batch is submitted
  }
  return { weight, bias };
}
