/**
 * Layer normalisation over the last axis (the LayerNorm of transformers such as the Swin family):
 * `(x - mean) / sqrt(var + eps) * weight + bias` per row of the last axis, with the row's own
 * statistics. Kernels: layer_norm.wgsl, one dispatch forward (one workgroup per row); one
 * backward (the input gradient and the weight's per-element terms together) plus reduce.ts's sums
 * for the weight and bias gradients.
 *
 * @module
 */

import { kernel } from "../../gpu/program.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import { sum } from "./reduce.ts";

/** Layer normalisation, forward and backward (layer_norm.wgsl). */
const LAYER_NORM = kernel(new URL("./layer_norm.wgsl", import.meta.url), {
  storage: [
    { name: "b1", access: "read" as const },
    { name: "b2", access: "read" as const },
    { name: "b3", access: "read" as const },
    "b4",
    "b5",
  ],
});

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5, PyTorch's). */
  eps?: number;
}

const s = (shape: readonly number[]) => `[${shape.join(",")}]`;

/** One launch of layer_norm.wgsl over `n` rows of `c` elements. */
function lnPass(
  op: string,
  entry: "ln_fwd" | "ln_bwd",
  n: number,
  c: number,
  flags: { weight: boolean; bias: boolean; wantDx?: boolean; wantTerms?: boolean },
  eps: number,
  buffers: GPUBuffer[],
): void {
  dispatch({
    op,
    kernel: LAYER_NORM,
    entry,
    ints: [
      n,
      c,
      flags.weight ? 1 : 0,
      flags.bias ? 1 : 0,
      flags.wantDx ? 1 : 0,
      flags.wantTerms ? 1 : 0,
    ],
    floats: [eps],
    workgroups: grid1d(n, 1),
  }, buffers);
}

/**
 * Layer normalisation over the last axis, as PyTorch's
 * `F.layer_norm(x, [C], weight, bias, eps)`: for each row of the last axis (`C` elements),
 * `y = (x - mean) / sqrt(var + eps) * weight + bias`, with the row's mean and biased variance
 * (computed in two passes in float32, the variance from the centred values). `x` has any rank
 * >= 1; `weight` and `bias` are `[C]`, or `null` for none (ones and zeros). One dispatch forward,
 * one workgroup per row.
 *
 * Differentiable in `x`, `weight` and `bias`: with `gw = g * weight`,
 * `dx = (gw - mean(gw) - xhat * mean(gw * xhat)) / sqrt(var + eps)` per row (one dispatch, which
 * recomputes the row's statistics rather than keeping them), `dweight = sum(g * xhat)` and
 * `dbias = sum(g)` over every row.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { layerNorm } from "./layer_norm.ts";
 * await initGpu();
 * // Two rows of 4: mean 2.5 and 25, standard deviations sqrt(1.25) and sqrt(125).
 * const x = tensor([1, 2, 3, 4, 10, 20, 30, 40], [2, 4]);
 * const y = layerNorm(x, tensor([2, 2, 2, 2]), tensor([1, 1, 1, 1]), { eps: 0 });
 * const k = 2 / Math.sqrt(1.25);
 * const want = [-1.5, -0.5, 0.5, 1.5].map((d) => d * k + 1);
 * const got = await y.read();
 * got.forEach((v, i) => assert.ok(Math.abs(v - want[i % 4]) < 1e-5));
 * ```
 */
export function layerNorm(
  x: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  options: LayerNormOptions = {},
): Tensor {
  const op = "layerNorm";
  const eps = options.eps ?? 1e-5;
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  }
  if (x.rank < 1) throw new RangeError(`${op}: x must have at least one axis, got ${s(x.shape)}`);
  const c = x.shape[x.rank - 1];
  const named: [string, Tensor | null][] = [["weight", weight], ["bias", bias]];
  for (const [what, t] of named) {
    if (t && (t.rank !== 1 || t.shape[0] !== c)) {
      throw new RangeError(`${op}: ${what} ${s(t.shape)} must be [${c}] for x ${s(x.shape)}`);
    }
  }
  const out = empty(x.shape);
  if (x.size === 0) return out;
  const n = x.size / c;
  const has = { weight: weight !== null, bias: bias !== null };
  lnPass(op, "ln_fwd", n, c, has, eps, [
    x.buffer,
    (weight ?? x).buffer,
    (bias ?? x).buffer,
    out.buffer,
  ]);
  const inputs = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  /** Sum over the rows: `[..., C] -> [C]`. */
  const rowSum = (t: Tensor): Tensor => {
    const view = t.reshape([n, c]);
    const total = sum(view, { axes: [0] });
    view.dispose();
    return total;
  };
  return record(out, op, inputs, (g) => {
    const name = `${op}.backward`;
    const wantDx = x.requiresGrad;
    const wantTerms = weight?.requiresGrad ?? false;
    const grads: (Tensor | null)[] = [];
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (wantDx || wantTerms) {
      dx = wantDx ? empty(x.shape) : null;
      const terms = wantTerms ? empty(x.shape) : null;
      const dxOrDummy = dx ?? empty([1]);
      const termsOrDummy = terms ?? empty([1]);
      lnPass(name, "ln_bwd", n, c, { ...has, wantDx, wantTerms }, eps, [
        x.buffer,
        (weight ?? x).buffer,
        g.buffer,
        dxOrDummy.buffer,
        termsOrDummy.buffer,
      ]);
      // Dummies are reusable once this batch is submitted.
      if (!dx) dxOrDummy.dispose();
      if (!terms) termsOrDummy.dispose();
      if (terms) {
        dw = rowSum(terms);
        terms.dispose();
      }
    }
    grads.push(dx);
    if (weight) grads.push(dw);
    if (bias) grads.push(bias.requiresGrad ? rowSum(g) : null);
    return grads;
  });
}
