/**
 * Convolutional GRU: the fused gate kernel (conv_gru.wgsl, one dispatch forward, one
 * backward) and the cell composed from two `conv2d`s and that kernel. Gate order r, z, n along the
 * channel axis, as PyTorch's `torch.nn.GRUCell` along its `3H` axis.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { CONV_GRU } from "./_kernels.ts";
import { empty, record, type Tensor } from "../tensor.ts";
import { conv2d } from "./conv.ts";

/** Invocations per workgroup (the shader's `@workgroup_size`). */
const WG = 64;

const s = (t: Tensor) => `[${t.shape.join(",")}]`;

function checkGates(gx: Tensor, gh: Tensor, h: Tensor): void {
  if (h.rank !== 4) {
    throw new RangeError(`convGruGates: h is ${s(h)}, expected [N, C, H, W]`);
  }
  const [n, c, hh, ww] = h.shape;
  const want = [n, 3 * c, hh, ww];
  for (const [name, t] of [["gx", gx], ["gh", gh]] as const) {
    if (t.rank !== 4 || t.shape.some((d, i) => d !== want[i])) {
      throw new RangeError(
        `convGruGates: ${name} is ${s(t)} but h is ${s(h)}; expected ${name} [${want.join(",")}]`,
      );
    }
  }
  if (n > 65535) {
    throw new RangeError(`convGruGates: batch size ${n} exceeds 65535 (split the batch)`);
  }
}

/**
 * The ConvGRU gate arithmetic, fused into one kernel: from the gate pre-activations of the input
 * convolution `gx` and of the hidden convolution `gh` (both `[N, 3C, H, W]`, biases included,
 * channel blocks `[r | z | n]`) and the hidden state `h` `[N, C, H, W]`, per element
 *
 * - `r = σ(xr + hr)`, `z = σ(xz + hz)`, `n = tanh(xn + r ⊙ hn)`
 * - `h' = (1 − z) ⊙ n + z ⊙ h`
 *
 * Returns `h'` `[N, C, H, W]`. Differentiable in all three inputs: the backward is one fused
 * dispatch that recomputes the gates and writes the gradients of `gx`, `gh` and `h` (for `h` the
 * direct path `z ⊙ g`; the paths through the convolutions are their own ops' backward).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { convGruGates } from "./conv_gru.ts";
 * await initGpu();
 * const [n, c, h, w] = [1, 2, 4, 4];
 * const gx = tensor(new Float32Array(n * 3 * c * h * w).fill(0.1), [n, 3 * c, h, w]);
 * const gh = tensor(new Float32Array(n * 3 * c * h * w).fill(-0.2), [n, 3 * c, h, w]);
 * const hPrev = tensor(new Float32Array(n * c * h * w).fill(0.5), [n, c, h, w]);
 * const hNext = convGruGates(gx, gh, hPrev); // [1, 2, 4, 4]
 * console.log(await hNext.read());
 * ```
 */
export function convGruGates(gx: Tensor, gh: Tensor, h: Tensor): Tensor {
  checkGates(gx, gh, h);
  const [n, c, hh, ww] = h.shape;
  const perItem = c * hh * ww;
  const vec = perItem % 4 === 0;
  const units = vec ? perItem / 4 : perItem;
  const defines = { T: vec ? "vec4<f32>" : "f32" };
  const [wx, wy] = grid1d(units, WG);
  const out = empty(h.shape);
  dispatch({
    op: "convGruGates",
    kernel: CONV_GRU,
    entry: "gates",
    defines,
    ints: [units, 0, 0, 0],
    workgroups: [wx, wy, n],
  }, [gx.buffer, gh.buffer, h.buffer, out.buffer]);
  return record(out, "convGruGates", [gx, gh, h], (g) => {
    const dgx = empty(gx.shape);
    const dgh = empty(gh.shape);
    const dh = empty(h.shape);
    dispatch({
      op: "convGruGates.backward",
      kernel: CONV_GRU,
      entry: "gates_grad",
      defines,
      ints: [units, 0, 0, 0],
      workgroups: [wx, wy, n],
    }, [gx.buffer, gh.buffer, h.buffer, g.buffer, dgx.buffer, dgh.buffer, dh.buffer]);
    return [dgx, dgh, dh].map((d, i) => {
      if ([gx, gh, h][i].requiresGrad) return d;
      d.dispose();
      return null;
    });
  });
}

/** Parameters of {@link convGruCell}: two convolutions with `3C` output channels (r, z, n). */
export interface ConvGruCellWeights {
  /** Input-to-gates kernel `[3C, Cin, k, k]` (k odd). */
  wx: Tensor;
  /** Input-to-gates bias `[3C]`; none when omitted. */
  bx?: Tensor;
  /** Hidden-to-gates kernel `[3C, C, k, k]` (the same k). */
  wh: Tensor;
  /** Hidden-to-gates bias `[3C]`; none when omitted. */
  bh?: Tensor;
}

function checkCell(x: Tensor, h: Tensor, w: ConvGruCellWeights): number {
  const { wx, wh, bx, bh } = w;
  if (x.rank !== 4 || h.rank !== 4) {
    throw new RangeError(
      `convGruCell: x ${s(x)} and h ${s(h)} must be [N, Cin, H, W] and [N, C, H, W]`,
    );
  }
  const [n, cin, hh, ww] = x.shape;
  const c = h.shape[1];
  if (h.shape[0] !== n || h.shape[2] !== hh || h.shape[3] !== ww) {
    throw new RangeError(
      `convGruCell: x ${s(x)} and h ${s(h)} differ in batch size or spatial size`,
    );
  }
  if (wx.rank !== 4 || wx.shape[0] !== 3 * c || wx.shape[1] !== cin) {
    throw new RangeError(
      `convGruCell: wx is ${s(wx)}, expected [${3 * c},${cin},k,k] for x ${s(x)} and h ${s(h)}`,
    );
  }
  const k = wx.shape[2];
  if (wx.shape[3] !== k || k % 2 !== 1) {
    throw new RangeError(`convGruCell: wx is ${s(wx)}; the kernel must be square with odd size`);
  }
  if (
    wh.rank !== 4 || wh.shape[0] !== 3 * c || wh.shape[1] !== c || wh.shape[2] !== k ||
    wh.shape[3] !== k
  ) {
    throw new RangeError(
      `convGruCell: wh is ${s(wh)}, expected [${3 * c},${c},${k},${k}] for h ${s(h)} and wx ${
        s(wx)
      }`,
    );
  }
  for (const [name, b] of [["bx", bx], ["bh", bh]] as const) {
    if (b && (b.rank !== 1 || b.shape[0] !== 3 * c)) {
      throw new RangeError(`convGruCell: ${name} is ${s(b)}, expected [${3 * c}] for h ${s(h)}`);
    }
  }
  return k;
}

/**
 * One step of a convolutional GRU: `gx = conv2d(x, wx, bx)`, `gh = conv2d(h, wh, bh)` (stride 1,
 * zero padding `k/2`, so the spatial size is kept), then {@link convGruGates}`(gx, gh, h)`:
 *
 * - `r = σ(Wxr∗x + bxr + Whr∗h + bhr)`, `z = σ(Wxz∗x + bxz + Whz∗h + bhz)`
 * - `n = tanh(Wxn∗x + bxn + r ⊙ (Whn∗h + bhn))`, `h' = (1 − z) ⊙ n + z ⊙ h`
 *
 * `x` is `[N, Cin, H, W]`, `h` is `[N, C, H, W]`; returns `h'` `[N, C, H, W]`. Differentiable in
 * every input and parameter. It makes two intermediate tensors (`gx`, `gh`) that the backward
 * reads: call it inside `tidy`, with `backward` in the same scope.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor, tidy } from "../tensor.ts";
 * import { sum } from "./reduce.ts";
 * import { convGruCell } from "./conv_gru.ts";
 * await initGpu();
 * const [n, cin, c, k] = [1, 3, 4, 3];
 * const x = tensor(new Float32Array(n * cin * 8 * 8).fill(0.5), [n, cin, 8, 8]);
 * const h = tensor(new Float32Array(n * c * 8 * 8), [n, c, 8, 8]);
 * const wx = tensor(new Float32Array(3 * c * cin * k * k).fill(0.05), [3 * c, cin, k, k], { requiresGrad: true });
 * const wh = tensor(new Float32Array(3 * c * c * k * k).fill(0.05), [3 * c, c, k, k], { requiresGrad: true });
 * const h1 = tidy(() => {
 *   const h1 = convGruCell(x, h, { wx, wh });
 *   sum(h1).backward();
 *   return h1;
 * });
 * console.log(await h1.read(), await wx.grad!.read());
 * ```
 */
export function convGruCell(x: Tensor, h: Tensor, weights: ConvGruCellWeights): Tensor {
  const k = checkCell(x, h, weights);
  const padding = (k - 1) / 2;
  const gx = conv2d(x, weights.wx, weights.bx, { padding });
  const gh = conv2d(h, weights.wh, weights.bh, { padding });
  return convGruGates(gx, gh, h);
}
