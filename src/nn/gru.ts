/**
 * Recurrent cells composed from differentiable ops (no kernels of their own). Like every composite
 * op they make intermediate tensors: call them inside `tidy`, or those intermediates keep their
 * GPU buffers until disposed.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { add, mul, sigmoid, sub, tanh } from "../tensor/ops/elementwise.ts";
import { linear } from "../tensor/ops/matmul.ts";
import { gruRecurrence } from "../tensor/ops/gru_seq.ts";
import { slice } from "../tensor/ops/shape.ts";

/** Parameters of {@link gruCell}, in PyTorch's `torch.nn.GRUCell` layout (gate order r, z, n). */
export interface GruCellWeights {
  /** Input-to-hidden weights `[3H, in]` (PyTorch's `weight_ih`). */
  wIh: Tensor;
  /** Hidden-to-hidden weights `[3H, H]` (PyTorch's `weight_hh`). */
  wHh: Tensor;
  /** Input-to-hidden bias `[3H]` (PyTorch's `bias_ih`); none when omitted. */
  bIh?: Tensor;
  /** Hidden-to-hidden bias `[3H]` (PyTorch's `bias_hh`); none when omitted. */
  bHh?: Tensor;
}

function shapeStr(t: Tensor): string {
  return `[${t.shape.join(",")}]`;
}

function checkGru(x: Tensor, h: Tensor, w: GruCellWeights): number {
  const { wIh, wHh } = w;
  if (x.rank !== 2 || h.rank !== 2 || wIh.rank !== 2 || wHh.rank !== 2) {
    throw new RangeError(
      `gruCell: x ${shapeStr(x)} and h ${shapeStr(h)} must be [N, in] and [N, H], ` +
        `wIh ${shapeStr(wIh)} and wHh ${shapeStr(wHh)} must be [3H, in] and [3H, H]`,
    );
  }
  if (h.shape[0] !== x.shape[0]) {
    throw new RangeError(`gruCell: x ${shapeStr(x)} and h ${shapeStr(h)} differ in batch size`);
  }
  return checkWeights("gruCell", x.shape[1], h.shape[1], w);
}

/** Checks the weights of a GRU with `inp` inputs and `hid` hidden units; returns `hid`. */
function checkWeights(op: string, inp: number, hid: number, w: GruCellWeights): number {
  const { wIh, wHh, bIh, bHh } = w;
  if (wIh.rank !== 2 || wIh.shape[0] !== 3 * hid || wIh.shape[1] !== inp) {
    throw new RangeError(`${op}: wIh is ${shapeStr(wIh)}, expected [${3 * hid},${inp}]`);
  }
  if (wHh.rank !== 2 || wHh.shape[0] !== 3 * hid || wHh.shape[1] !== hid) {
    throw new RangeError(`${op}: wHh is ${shapeStr(wHh)}, expected [${3 * hid},${hid}]`);
  }
  for (const [name, b] of [["bIh", bIh], ["bHh", bHh]] as const) {
    if (b && (b.rank !== 1 || b.shape[0] !== 3 * hid)) {
      throw new RangeError(`${op}: ${name} is ${shapeStr(b)}, expected [${3 * hid}]`);
    }
  }
  return hid;
}

/**
 * One step of a GRU, exactly as PyTorch's `torch.nn.GRUCell` (weights in its layout, gates
 * r, z, n along the `3H` axis):
 *
 * - `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`
 * - `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`
 * - `h' = (1 − z) ⊙ n + z ⊙ h`
 *
 * `x` is `[N, in]`, `h` is `[N, H]`; returns `h'` `[N, H]`. Differentiable in every input and
 * parameter (composed from `linear`, `slice` and elementwise ops).
 *
 * Memory: a composite op like this one makes about 12 intermediate tensors per call (gate
 * pre-activations, slices, products). Run it, as every composite op, inside `tidy`: outside tidy
 * its intermediates keep their GPU buffers until each is disposed, which in a recurrence over
 * many frames adds up fast. The backward pass reads those intermediates, so call `backward` in
 * the same tidy scope, as below (tidy frees them when it returns).
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor, tidy } from "../../mod.ts";
 * await initGpu();
 * const [n, inp, hid] = [2, 3, 4];
 * const x = tensor(new Float32Array(n * inp).fill(0.5), [n, inp]);
 * const h = tensor(new Float32Array(n * hid), [n, hid]);
 * const wIh = tensor(new Float32Array(3 * hid * inp).fill(0.1), [3 * hid, inp], { requiresGrad: true });
 * const wHh = tensor(new Float32Array(3 * hid * hid).fill(0.1), [3 * hid, hid], { requiresGrad: true });
 * // The intermediates are freed when tidy returns; h1 (returned) and wIh.grad are kept.
 * const h1 = tidy(() => {
 *   const h1 = nn.gruCell(x, h, { wIh, wHh });
 *   nn.sum(h1).backward();
 *   return h1;
 * });
 * console.log(await h1.read(), await wIh.grad!.read());
 * h1.dispose();
 * ```
 */
export function gruCell(x: Tensor, h: Tensor, weights: GruCellWeights): Tensor {
  const hid = checkGru(x, h, weights);
  const cols = (t: Tensor, start: number, end: number) => slice(t, { axis: 1, start, end });
  const gi = linear(x, weights.wIh, weights.bIh); // [N, 3H]
  const gh = linear(h, weights.wHh, weights.bHh); // [N, 3H]
  // r and z together: σ over the first 2H columns of gi + gh.
  const rz = sigmoid(add(cols(gi, 0, 2 * hid), cols(gh, 0, 2 * hid)));
  const r = cols(rz, 0, hid);
  const z = cols(rz, hid, 2 * hid);
  const n = tanh(add(cols(gi, 2 * hid, 3 * hid), mul(r, cols(gh, 2 * hid, 3 * hid))));
  // (1 − z) ⊙ n + z ⊙ h  =  n + z ⊙ (h − n)
  return add(n, mul(z, sub(h, n)));
}

/**
 * A GRU layer over a sequence, exactly as PyTorch's `torch.nn.GRU` (one layer,
 * `batch_first=True`) and as {@link gruCell} applied step by step: `x` `[B, T, in]`, `h0`
 * `[B, H]`; returns every step's state `[B, T, H]` (the last one is the final state). The input
 * projections of all steps are one matrix product; the recurrence is one fused kernel each way
 * (`gruRecurrence`), instead of some 30 dispatches per step. Differentiable in every input and
 * parameter.
 *
 * @example
 * ```ts
 * import { initGpu, nn, tensor } from "../../mod.ts";
 * await initGpu();
 * const [b, t, inp, hid] = [1, 6, 3, 4];
 * const x = tensor(new Float32Array(b * t * inp).fill(0.5), [b, t, inp]);
 * const h0 = tensor(new Float32Array(b * hid), [b, hid]);
 * const wIh = tensor(new Float32Array(3 * hid * inp).fill(0.1), [3 * hid, inp]);
 * const wHh = tensor(new Float32Array(3 * hid * hid).fill(0.1), [3 * hid, hid]);
 * const hs = nn.gruSequence(x, h0, { wIh, wHh }); // [1, 6, 4]
 * console.log(await hs.read());
 * ```
 */
export function gruSequence(x: Tensor, h0: Tensor, weights: GruCellWeights): Tensor {
  if (x.rank !== 3 || h0.rank !== 2 || h0.shape[0] !== x.shape[0]) {
    throw new RangeError(
      `gruSequence: x ${shapeStr(x)} and h0 ${shapeStr(h0)} must be [B, T, in] and [B, H]`,
    );
  }
  const [b, t, inp] = x.shape;
  const hid = checkWeights("gruSequence", inp, h0.shape[1], weights);
  const gi = linear(x.reshape([b * t, inp]), weights.wIh, weights.bIh).reshape([b, t, 3 * hid]);
  return gruRecurrence(gi, h0, weights.wHh, weights.bHh);
}
