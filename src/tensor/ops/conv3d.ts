/**
 * 3-D convolution (NCTHW), as `torch.nn.functional.conv3d` with dilation 1 and groups 1: the
 * video backbones' layers (SlowFast-R50's stems, temporal and spatial convolutions, its lateral
 * time-strided fusion).
 *
 * Which kernels run (chosen per shape; both give the same values up to float32 rounding):
 * - Kernels `(KT, 1, 1)` with spatial stride 1 and no spatial padding (pointwise layers,
 *   temporal `(3,1,1)` / `(5,1,1)` layers, the lateral `(5,1,1)`/`(7,1,1)` stride `(4|8,1,1)`
 *   fusion): exactly a 2-D convolution of `x` seen as `[N, Cin, T, H*W]` with a `(KT, 1)`
 *   kernel, so conv.ts's {@link conv2d} runs it on the reshaped tensors (no copy).
 * - Kernels `(1, KH, KW)` with temporal stride 1 and no temporal padding (`(1,3,3)` layers, the
 *   `(1,7,7)` stem, strided pointwise shortcuts): the frames as a batch of images, `conv2d` on
 *   `x` permuted to `[N*T, Cin, H, W]` (one copy in, one out).
 * - Anything else (the `(5,7,7)` stem, temporal and spatial kernels together): conv3d.wgsl's
 *   direct loops, `conv3d_fwd`, `conv3d_dx` (taps visited only where the stride divides) and
 *   `conv3d_dw` (split along the output rows, partial sums added by reduce.ts's `sum`).
 *
 * {@link setConv3dDirect} sends every shape to conv3d.wgsl (for tests and benches).
 *
 * @module
 */

import { bindingLimit } from "../../gpu/device.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { CONV3D } from "./_kernels.ts";
import { empty, record, type Shape, type Tensor } from "../tensor.ts";
import { conv2d } from "./conv.ts";
import { sum } from "./reduce.ts";
import { permute } from "./shape.ts";

/** A size given once for the three axes, or as `[time, height, width]`. */
export type Size3 = number | readonly [number, number, number];

/** Options of {@link conv3d}. */
export interface Conv3dOptions {
  /** Step between outputs, per axis `[t, h, w]` or one number for all. Default 1. */
  stride?: Size3;
  /** Zeros added on each side of the input, per axis `[t, h, w]` or one number. Default 0. */
  padding?: Size3;
}

/** Checks a size option: `[t, h, w]` integers >= `min` (`op` and `what` name it in errors). */
export function triple(
  v: Size3 | undefined,
  fallback: number,
  op: string,
  what: string,
  min: number,
): [number, number, number] {
  const p: [number, number, number] = v === undefined
    ? [fallback, fallback, fallback]
    : typeof v === "number"
    ? [v, v, v]
    : [v[0], v[1], v[2]];
  if ((typeof v === "object" && v.length !== 3) || p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new RangeError(
      `${op}: ${what} must be integers >= ${min} (one or [t, h, w]), got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

const s = (shape: Shape) => `[${shape.join(",")}]`;

/** Geometry of one 3-D convolution. */
interface Geometry {
  nb: number;
  cin: number;
  t: number;
  h: number;
  w: number;
  cout: number;
  k: [number, number, number];
  st: [number, number, number];
  pad: [number, number, number];
  ot: number;
  oh: number;
  ow: number;
  /** The call's shapes and options, for error messages. */
  desc: string;
}

/** Most loop iterations one invocation runs (lavapipe ends loops after 65535 in total). */
const LOOP_BUDGET = 16384;

let direct = false;

/**
 * Sends every {@link conv3d} to conv3d.wgsl's direct kernels (`true`) rather than to `conv2d`
 * where a shape reduces to one exactly (`false`, the default); returns the previous setting. For
 * tests (each path against the same references) and benches.
 *
 * @example
 * ```ts
 * import { setConv3dDirect } from "./conv3d.ts";
 * const before = setConv3dDirect(true);
 * try {
 *   // ... conv3d calls run on conv3d.wgsl ...
 * } finally {
 *   setConv3dDirect(before);
 * }
 * ```
 */
export function setConv3dDirect(on: boolean): boolean {
  const before = direct;
  direct = on;
  return before;
}

let flopCount = 0;

/**
 * Multiply-add FLOPs (2 per product) of the 3-D convolution passes run on conv3d.wgsl so far in
 * this process: forward, input gradient and weight gradient each count
 * 2·N·Cout·OT·OH·OW·Cin·KT·KH·KW, as conv.ts's `convFlops()` counts. A `conv3d` that runs as a
 * `conv2d` is counted by `convFlops()` instead, so the two add up without double counting.
 *
 * @example
 * ```ts
 * import { conv3dFlops } from "./conv3d.ts";
 * import { convFlops } from "./conv.ts";
 * const before = conv3dFlops() + convFlops();
 * // ... work ...
 * console.log(`${(conv3dFlops() + convFlops() - before) / 1e9} GFLOP of convolutions`);
 * ```
 */
export function conv3dFlops(): number {
  return flopCount;
}

function defines(g: Geometry, bias = false) {
  return {
    KT: g.k[0],
    KH: g.k[1],
    KW: g.k[2],
    ST: g.st[0],
    SH: g.st[1],
    SW: g.st[2],
    PT: g.pad[0],
    PH: g.pad[1],
    PW: g.pad[2],
    BIAS: String(bias),
  };
}

function ints(g: Geometry, n: number, chunk: number, total: number): number[] {
  return [n, g.nb, g.cin, g.cout, g.t, g.h, g.w, g.ot, g.oh, g.ow, chunk, total];
}

/** Channels per gid.z layer so that one invocation's loops stay within LOOP_BUDGET. */
function channelChunk(g: Geometry, channels: number): number {
  const [kt, kh, kw] = g.k;
  const perChannel = kt * kh * kw + kt * kh + kt + 1;
  return Math.max(1, Math.min(channels, Math.floor(LOOP_BUDGET / perChannel)));
}

/** Partial sums [layers, ...shape] (or `shape` for one layer), summed by the caller. */
function partials(layers: number, shape: Shape, what: string, g: Geometry): Tensor {
  const full = layers > 1 ? [layers, ...shape] : [...shape];
  checkBinding(full, `${what} partial sums`, g);
  return empty(full);
}

function reduceLayers(t: Tensor, layers: number): Tensor {
  if (layers === 1) return t;
  const r = sum(t, { axes: 0 });
  t.dispose();
  return r;
}

function checkBinding(shape: Shape, what: string, g: Geometry): void {
  const bytes = 4 * shape.reduce((a, b) => a * b, 1);
  const limit = bindingLimit();
  if (bytes > limit) {
    throw new RangeError(
      `conv3d: the ${what} ${s(shape)} (${bytes} bytes) exceed one binding's ` +
        `${limit} bytes (${g.desc}); split the batch or the frames`,
    );
  }
}

function forwardDirect(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geometry): Tensor {
  const shape = [g.nb, g.cout, g.ot, g.oh, g.ow];
  const chunk = channelChunk(g, g.cin);
  const layers = Math.ceil(g.cin / chunk);
  const out = partials(layers, shape, "output", g);
  const n = g.nb * g.ot * g.oh * Math.ceil(g.ow / 4) * Math.ceil(g.cout / 4);
  const total = g.nb * g.cout * g.ot * g.oh * g.ow;
  dispatch({
    op: "conv3d",
    kernel: CONV3D,
    entry: "conv3d_fwd",
    defines: defines(g, !!b),
    ints: ints(g, n, chunk, total),
    workgroups: [...grid1d(n, 64), layers],
  }, [x.buffer, w.buffer, out.buffer, (b ?? out).buffer]);
  return reduceLayers(out, layers);
}

function inputGradDirect(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const shape = [g.nb, g.cin, g.t, g.h, g.w];
  const chunk = channelChunk(g, g.cout);
  const layers = Math.ceil(g.cout / chunk);
  const out = partials(layers, shape, "input gradient", g);
  const segs = Math.ceil(Math.ceil(g.w / g.st[2]) / 4);
  const n = g.nb * g.t * g.h * g.st[2] * segs * Math.ceil(g.cin / 4);
  const total = g.nb * g.cin * g.t * g.h * g.w;
  dispatch({
    op: "conv3d.backward_input",
    kernel: CONV3D,
    entry: "conv3d_dx",
    defines: defines(g),
    ints: ints(g, n, chunk, total),
    workgroups: [...grid1d(n, 64), layers],
  }, [dy.buffer, w.buffer, out.buffer]);
  return reduceLayers(out, layers);
}

function weightGradDirect(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const [kt, kh, kw] = g.k;
  const shape = [g.cout, g.cin, kt, kh, kw];
  const lanes = Math.ceil(g.cout / 4) * g.cin * kt * kh * Math.ceil(kw / 4);
  const rows = g.nb * g.ot * g.oh;
  // At most LOOP_BUDGET iterations per invocation (each row loops over its output columns), and
  // enough splits for about 2048 invocations in all.
  const maxChunk = Math.max(1, Math.floor(LOOP_BUDGET / (g.ow + 1)));
  const want = Math.max(1, Math.ceil(2048 / lanes));
  const chunk = Math.min(maxChunk, Math.max(1, Math.ceil(rows / want)));
  const layers = Math.ceil(rows / chunk);
  const out = partials(layers, shape, "weight gradient", g);
  dispatch({
    op: "conv3d.backward_weight",
    kernel: CONV3D,
    entry: "conv3d_dw",
    defines: defines(g),
    ints: ints(g, lanes, chunk, g.cout * g.cin * kt * kh * kw),
    workgroups: [...grid1d(lanes, 64), layers],
  }, [x.buffer, dy.buffer, out.buffer]);
  return reduceLayers(out, layers);
}

/** Which conv2d a shape reduces to exactly, if any. */
function asConv2d(g: Geometry): "time" | "frames" | null {
  if (direct) return null;
  const [kt, kh, kw] = g.k;
  if (kh === 1 && kw === 1 && g.st[1] === 1 && g.st[2] === 1 && g.pad[1] === 0 && g.pad[2] === 0) {
    return "time";
  }
  if (kt === 1 && g.st[0] === 1 && g.pad[0] === 0) return "frames";
  return null;
}

/** conv3d through conv2d (see the module's header); recorded by the ops it composes. */
function viaConv2d(
  mode: "time" | "frames",
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  g: Geometry,
): Tensor {
  const [kt, kh, kw] = g.k;
  if (mode === "time") {
    const y = conv2d(
      x.reshape([g.nb, g.cin, g.t, g.h * g.w]),
      w.reshape([g.cout, g.cin, kt, 1]),
      b,
      {
        stride: [g.st[0], 1],
        padding: [g.pad[0], 0],
      },
    );
    return y.reshape([g.nb, g.cout, g.ot, g.oh, g.ow]);
  }
  const w2 = w.reshape([g.cout, g.cin, kh, kw]);
  const opts = { stride: [g.st[1], g.st[2]] as const, padding: [g.pad[1], g.pad[2]] as const };
  if (g.t === 1) {
    const y = conv2d(x.reshape([g.nb, g.cin, g.h, g.w]), w2, b, opts);
    return y.reshape([g.nb, g.cout, 1, g.oh, g.ow]);
  }
  const frames = permute(x, [0, 2, 1, 3, 4]).reshape([g.nb * g.t, g.cin, g.h, g.w]);
  const y = conv2d(frames, w2, b, opts).reshape([g.nb, g.t, g.cout, g.oh, g.ow]);
  return permute(y, [0, 2, 1, 3, 4]);
}

/**
 * 3-D convolution (cross-correlation, as in PyTorch) of `x` [N, Cin, T, H, W] with `w`
 * [Cout, Cin, KT, KH, KW] and optional bias `b` [Cout], giving [N, Cout, OT, OH, OW] with
 * `OT = floor((T + 2*padT - KT) / strideT) + 1` (likewise OH, OW): `F.conv3d` with dilation 1
 * and groups 1. Stride and zero padding per axis (`[t, h, w]`) or one number for all.
 * Differentiable in `x`, `w` and `b`.
 *
 * Shapes that are exactly a 2-D convolution (`(KT,1,1)` kernels without spatial stride or
 * padding; `(1,KH,KW)` kernels without temporal stride or padding) run on conv2d's kernels;
 * others on conv3d.wgsl's direct loops.
 *
 * @throws {RangeError} for inconsistent shapes or options, and for a tensor (input, output,
 *   gradient or partial sums) larger than one binding ({@link bindingLimit}), naming the shapes.
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { conv3d } from "./conv3d.ts";
 * await initGpu();
 * // SlowFast's fast-pathway stem at a toy size: kernel (5,7,7), stride (1,2,2), padding (2,3,3).
 * const x = tensor(new Float32Array(1 * 3 * 4 * 8 * 8).fill(1), [1, 3, 4, 8, 8]);
 * const w = tensor(new Float32Array(8 * 3 * 5 * 7 * 7).fill(0.01), [8, 3, 5, 7, 7], {
 *   requiresGrad: true,
 * });
 * const y = conv3d(x, w, undefined, { stride: [1, 2, 2], padding: [2, 3, 3] });
 * assert.deepEqual(y.shape, [1, 8, 4, 4, 4]);
 * ```
 */
export function conv3d(x: Tensor, w: Tensor, b?: Tensor, options: Conv3dOptions = {}): Tensor {
  if (x.rank !== 5) {
    throw new RangeError(`conv3d: x must be [N, Cin, T, H, W], got ${s(x.shape)}`);
  }
  if (w.rank !== 5) {
    throw new RangeError(`conv3d: w must be [Cout, Cin, KT, KH, KW], got ${s(w.shape)}`);
  }
  const [nb, cin, t, h, wd] = x.shape;
  const [cout, wcin, kt, kh, kw] = w.shape;
  if (wcin !== cin) {
    throw new RangeError(
      `conv3d: x ${s(x.shape)} has ${cin} channels but w ${s(w.shape)} expects ${wcin}`,
    );
  }
  if (b && (b.rank !== 1 || b.shape[0] !== cout)) {
    throw new RangeError(`conv3d: bias ${s(b.shape)} must be [${cout}] for w ${s(w.shape)}`);
  }
  const st = triple(options.stride, 1, "conv3d", "stride", 1);
  const pad = triple(options.padding, 0, "conv3d", "padding", 0);
  const ot = Math.floor((t + 2 * pad[0] - kt) / st[0]) + 1;
  const oh = Math.floor((h + 2 * pad[1] - kh) / st[1]) + 1;
  const ow = Math.floor((wd + 2 * pad[2] - kw) / st[2]) + 1;
  if (kt < 1 || kh < 1 || kw < 1 || ot < 1 || oh < 1 || ow < 1) {
    throw new RangeError(
      `conv3d: kernel ${kt}x${kh}x${kw} (w ${s(w.shape)}) does not fit the input ${t}x${h}x${wd} ` +
        `(x ${s(x.shape)}) with padding [${pad}]`,
    );
  }
  const desc = `x ${s(x.shape)}, w ${s(w.shape)}, stride [${st}], padding [${pad}]`;
  const g: Geometry = { nb, cin, t, h, w: wd, cout, k: [kt, kh, kw], st, pad, ot, oh, ow, desc };
  checkBinding(x.shape, "input", g);
  checkBinding(w.shape, "weights", g);
  checkBinding([nb, cout, ot, oh, ow], "output", g);
  if (cin === 0) throw new RangeError(`conv3d: no input channels (${desc})`);
  if (nb === 0 || cout === 0) return empty([nb, cout, ot, oh, ow]);
  const mode = asConv2d(g);
  if (mode) return viaConv2d(mode, x, w, b, g);
  const flops = 2 * nb * cout * ot * oh * ow * cin * kt * kh * kw;
  const out = forwardDirect(x, w, b, g);
  flopCount += flops;
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, "conv3d", inputs, (dy) => {
    flopCount += (x.requiresGrad ? flops : 0) + (w.requiresGrad ? flops : 0);
    const grads: (Tensor | null)[] = [
      x.requiresGrad ? inputGradDirect(dy, w, g) : null,
      w.requiresGrad ? weightGradDirect(dy, x, g) : null,
    ];
    if (b) grads.push(b.requiresGrad ? sum(dy, { axes: [0, 2, 3, 4] }) : null);
    return grads;
  });
}
