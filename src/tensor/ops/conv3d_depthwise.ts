/**
 * Depthwise 3-D convolution (NCTHW), as `torch.nn.Conv3d(C, C, k, padding=p, groups=C)` with
 * stride 1: the inflated ConvNeXt blocks' `(L, 7, 7)` depthwise layers (DOVER's aesthetic
 * branch).
 *
 * No kernel of its own: a composition of differentiable ops whose gradients are already tested.
 * With the frames folded into the channels (`x` [N, C, T, H, W] seen as [N, C*T, H, W], no copy),
 * temporal tap `k` of the kernel is one depthwise 2-D convolution (conv.ts's depthwise kernel,
 * `groups = C*T`) of the frames `k .. k+OT-1` of the time-padded input, with the tap's `(KH, KW)`
 * weights repeated over the frames; the output is the sum over the KT taps. A `(1, KH, KW)`
 * kernel without temporal padding is a single depthwise 2-D convolution of `x` as it is; other
 * kernels copy the zero-padded input once and one slice of it per tap.
 *
 * @module
 */

import { full, type Tensor } from "../tensor.ts";
import { conv2d } from "./conv.ts";
import { type Size3, triple } from "./conv3d.ts";
import { add, mul } from "./elementwise.ts";
import { pad as padZeros, slice } from "./shape.ts";

/** Options of {@link depthwiseConv3d}. */
export interface DepthwiseConv3dOptions {
  /** Zeros added on each side of the input, per axis `[t, h, w]` or one number. Default 0. */
  padding?: Size3;
}

const s = (shape: readonly number[]) => `[${shape.join(",")}]`;

/** `v` ([C, ...rest]) repeated `times` times after its first axis, as [C*times, ...rest]. */
function repeatPerChannel(v: Tensor, times: number): Tensor {
  if (times === 1) return v;
  const [c, ...rest] = v.shape;
  const ones = full([1, times, ...rest.map(() => 1)], 1);
  return mul(v.reshape([c, 1, ...rest]), ones).reshape([c * times, ...rest]);
}

/**
 * Depthwise 3-D convolution (cross-correlation, as in PyTorch) of `x` [N, C, T, H, W] with `w`
 * [C, 1, KT, KH, KW] and optional bias `b` [C], stride 1: channel `c` of the output
 * [N, C, OT, OH, OW] is channel `c` of `x` convolved with `w[c, 0]`, plus `b[c]`, with
 * `OT = T + 2*padT - KT + 1` (likewise OH, OW). `F.conv3d(x, w, b, padding=p, groups=C)`.
 * Differentiable in `x`, `w` and `b`.
 *
 * Runs as KT depthwise 2-D convolutions of time-shifted frames, summed (see the module's header).
 *
 * @throws {RangeError} for a tensor of the wrong rank, a weight or bias that does not match the
 *   input's channels, a padding that is not a non-negative integer, or a kernel larger than the
 *   padded input, naming the shapes.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { full } from "../tensor.ts";
 * import { depthwiseConv3d } from "./conv3d_depthwise.ts";
 * await initGpu();
 * // A ConvNeXt3D block's (3,7,7) depthwise layer at a toy size, padding (1,3,3): shape kept.
 * const x = full([1, 4, 5, 8, 8], 1);
 * const w = full([4, 1, 3, 7, 7], 0.01, { requiresGrad: true });
 * const y = depthwiseConv3d(x, w, undefined, { padding: [1, 3, 3] });
 * assert.deepEqual(y.shape, [1, 4, 5, 8, 8]);
 * // The centre of a middle frame sees all 3 * 7 * 7 taps.
 * assert.ok(Math.abs((await y.read())[2 * 64 + 3 * 8 + 3] - 1.47) < 1e-5);
 * ```
 */
export function depthwiseConv3d(
  x: Tensor,
  w: Tensor,
  b?: Tensor,
  options: DepthwiseConv3dOptions = {},
): Tensor {
  if (x.rank !== 5) {
    throw new RangeError(`depthwiseConv3d: x must be [N, C, T, H, W], got ${s(x.shape)}`);
  }
  const [nb, c, t, h, wd] = x.shape;
  if (w.rank !== 5 || w.shape[0] !== c || w.shape[1] !== 1) {
    throw new RangeError(
      `depthwiseConv3d: w ${s(w.shape)} must be [${c}, 1, KT, KH, KW] for x ${s(x.shape)}`,
    );
  }
  if (b && (b.rank !== 1 || b.shape[0] !== c)) {
    throw new RangeError(`depthwiseConv3d: bias ${s(b.shape)} must be [${c}] for x ${s(x.shape)}`);
  }
  const [, , kt, kh, kw] = w.shape;
  const pad = triple(options.padding, 0, "depthwiseConv3d", "padding", 0);
  const ot = t + 2 * pad[0] - kt + 1;
  const oh = h + 2 * pad[1] - kh + 1;
  const ow = wd + 2 * pad[2] - kw + 1;
  if (kt < 1 || kh < 1 || kw < 1 || ot < 1 || oh < 1 || ow < 1) {
    throw new RangeError(
      `depthwiseConv3d: kernel ${kt}x${kh}x${kw} (w ${s(w.shape)}) does not fit the input ` +
        `${t}x${h}x${wd} (x ${s(x.shape)}) with padding [${pad}]`,
    );
  }
  if (c === 0) throw new RangeError(`depthwiseConv3d: x ${s(x.shape)} has no channels`);
  const opts = { padding: [pad[1], pad[2]] as const, groups: c * ot };
  const bias = b ? repeatPerChannel(b, ot) : undefined;
  // The frames of tap k: [N, C, OT, H, W] as [N, C*OT, H, W].
  let frames: (k: number) => Tensor;
  if (kt === 1 && pad[0] === 0) {
    frames = () => x.reshape([nb, c * t, h, wd]);
  } else {
    const padded = padZeros(x, [[0, 0], [0, 0], [pad[0], pad[0]]]);
    frames = (k) => slice(padded, { axis: 2, start: k, end: k + ot }).reshape([nb, c * ot, h, wd]);
  }
  let y: Tensor | undefined;
  for (let k = 0; k < kt; k++) {
    const wk = (kt === 1 ? w : slice(w, { axis: 2, start: k, end: k + 1 })).reshape([c, 1, kh, kw]);
    const yk = conv2d(frames(k), repeatPerChannel(wk, ot), k === 0 ? bias : undefined, opts);
    y = y ? add(y, yk) : yk;
  }
  return y!.reshape([nb, c, ot, oh, ow]);
}
