/**
 * A GRU's recurrence over time as one op (gru_seq.wgsl: one dispatch forward, one backward, plus
 * a matrix product and a sum for the hidden-side weight gradients), for the victims' per-frame
 * GRUs, which as a loop of `gruCell`s cost some 30 dispatches per frame each way.
 *
 * @module
 */

import { getGpu } from "../../gpu/device.ts";
import { dispatch } from "../../gpu/queue.ts";
import { GRU_SEQ } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import { matmul } from "./matmul.ts";
import { sum } from "./reduce.ts";
import { concat, slice } from "./shape.ts";

const s = (t: Tensor) => `[${t.shape.join(",")}]`;

/**
 * Steps per dispatch: the backward runs two H-long loops per step, so T * (2H + 2) loop
 * iterations per invocation, kept at half of lavapipe's limit of 65535 (beyond it a loop ends
 * silently and the gradients are wrong).
 */
function stepsPerDispatch(hid: number): number {
  return Math.max(1, Math.floor(32768 / (2 * hid + 2)));
}

/**
 * The recurrence of a GRU layer (PyTorch's `torch.nn.GRU`, gates r, z, n) given the input-side
 * gate pre-activations of every step: with `gi` `[B, T, 3H]` (`W_ih x_t + b_ih`), the initial
 * state `h0` `[B, H]`, `wHh` `[3H, H]` and optional `bHh` `[3H]`, per step
 *
 * - `gh = W_hh h + b_hh`, `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r ⊙ gh_n)`
 * - `h' = (1 − z) ⊙ n + z ⊙ h`
 *
 * Returns every step's state `[B, T, H]`. Differentiable in `gi`, `h0`, `wHh` and `bHh`. The
 * backward recomputes the gates (nothing is kept between the passes). H is at most the adapter's
 * largest workgroup (256 on most); longer sequences run as several dispatches.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { gruRecurrence } from "./gru_seq.ts";
 * await initGpu();
 * const [b, t, h] = [1, 5, 4];
 * const gi = tensor(new Float32Array(b * t * 3 * h).fill(0.1), [b, t, 3 * h]);
 * const h0 = tensor(new Float32Array(b * h), [b, h]);
 * const wHh = tensor(new Float32Array(3 * h * h).fill(0.05), [3 * h, h]);
 * const hs = gruRecurrence(gi, h0, wHh); // [1, 5, 4]
 * console.log(await hs.read());
 * ```
 */
export function gruRecurrence(gi: Tensor, h0: Tensor, wHh: Tensor, bHh?: Tensor): Tensor {
  if (h0.rank !== 2 || gi.rank !== 3 || gi.shape[0] !== h0.shape[0]) {
    throw new RangeError(`gruRecurrence: gi ${s(gi)} and h0 ${s(h0)} must be [B,T,3H] and [B,H]`);
  }
  const [b, t] = gi.shape;
  const hid = h0.shape[1];
  if (gi.shape[2] !== 3 * hid) {
    throw new RangeError(`gruRecurrence: gi is ${s(gi)}, expected [${b},${t},${3 * hid}]`);
  }
  if (wHh.rank !== 2 || wHh.shape[0] !== 3 * hid || wHh.shape[1] !== hid) {
    throw new RangeError(`gruRecurrence: wHh is ${s(wHh)}, expected [${3 * hid},${hid}]`);
  }
  if (bHh && (bHh.rank !== 1 || bHh.shape[0] !== 3 * hid)) {
    throw new RangeError(`gruRecurrence: bHh is ${s(bHh)}, expected [${3 * hid}]`);
  }
  const most = Math.min(256, getGpu().limits.maxComputeInvocationsPerWorkgroup);
  if (hid < 1 || hid > most) {
    throw new RangeError(`gruRecurrence: hidden size ${hid} must be 1 to ${most}`);
  }
  if (b > 65535) throw new RangeError(`gruRecurrence: batch ${b} exceeds 65535 (split it)`);
  const per = stepsPerDispatch(hid);
  if (t <= per) return recurrence(gi, h0, wHh, bHh);
  // Longer sequences: pieces, each starting from the last state of the one before.
  const pieces: Tensor[] = [];
  let h = h0;
  for (let t0 = 0; t0 < t; t0 += per) {
    const part = slice(gi, { axis: 1, start: t0, end: Math.min(t, t0 + per) });
    const hs = recurrence(part, h, wHh, bHh);
    pieces.push(hs);
    h = slice(hs, { axis: 1, start: hs.shape[1] - 1 }).reshape([b, hid]);
  }
  return concat(pieces, 1);
}

/** The workgroup size for H hidden units: a power of two from 8. */
function workgroupFor(hid: number): number {
  let wg = 8;
  while (wg < hid) wg *= 2;
  return wg;
}

function recurrence(gi: Tensor, h0: Tensor, wHh: Tensor, bHh?: Tensor): Tensor {
  const [b, t] = gi.shape;
  const hid = h0.shape[1];
  const defines = { WG: workgroupFor(hid) };
  const ints = [b, t, hid, bHh ? 1 : 0];
  const hs = empty([b, t, hid]);
  if (b === 0 || t === 0) return hs;
  dispatch({
    op: "gruRecurrence",
    kernel: GRU_SEQ,
    entry: "gru_seq_fwd",
    defines,
    ints,
    workgroups: [b],
  }, [gi.buffer, h0.buffer, wHh.buffer, (bHh ?? wHh).buffer, hs.buffer]);
  const inputs = bHh ? [gi, h0, wHh, bHh] : [gi, h0, wHh];
  return record(hs, "gruRecurrence", inputs, (g) => {
    const n = b * t * 3 * hid;
    const out = empty([2 * n + b * hid]);
    dispatch({
      op: "gruRecurrence.backward",
      kernel: GRU_SEQ,
      entry: "gru_seq_bwd",
      defines,
      ints,
      workgroups: [b],
    }, [g.buffer, gi.buffer, wHh.buffer, (bHh ?? wHh).buffer, hs.buffer, h0.buffer, out.buffer]);
    const dgi = slice(out, { axis: 0, start: 0, end: n }).reshape([b, t, 3 * hid]);
    const dgh = slice(out, { axis: 0, start: n, end: 2 * n }).reshape([b * t, 3 * hid]);
    const dh0 = slice(out, { axis: 0, start: 2 * n }).reshape([b, hid]);
    let dw: Tensor | null = null, db: Tensor | null = null;
    if (wHh.requiresGrad || bHh?.requiresGrad) {
      // Each step's input state: h0, then every state but the last.
      const prev = t === 1 ? h0.reshape([b, 1, hid]) : concat([
        h0.reshape([b, 1, hid]),
        slice(hs, { axis: 1, start: 0, end: t - 1 }),
      ], 1);
      if (wHh.requiresGrad) dw = matmul(dgh, prev.reshape([b * t, hid]), { transA: true });
      if (bHh?.requiresGrad) db = sum(dgh, { axes: 0 });
    }
    out.dispose();
    return bHh ? [dgi, dh0, dw, db] : [dgi, dh0, dw];
  });
}
