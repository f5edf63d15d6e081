/**
 * 2-D convolution (NCHW) with forward, input-gradient and weight-gradient kernels in
 * conv2d_gemm.wgsl, conv2d_window.wgsl and conv2d_dw_window.wgsl (shared part: conv2d_common.wgsl); the bias gradient is a sum over batch and pixels.
 *
 * Which kernel runs (chosen per shape):
 * - 3-wide kernels with horizontal padding 1 and stride 1 or 2, widths multiples of 4 (every
 *   3x3 layer of STQA-Net): `conv_win`, a direct convolution over aligned vec4 row windows with
 *   packed weights. 3-row kernels at stride 1 or 2 compute eight output rows per invocation from
 *   shared input rows (`conv_win3s1r8`, `conv_win3s2r8` with 8-channel blocks, `conv_win3r8`
 *   with 4-channel blocks at stride 1 for at most 4 output channels); `conv_win3` (two rows) is
 *   left for the stride phases of the input gradient. The input gradient at stride 1 is the same
 *   kernel on dy with the flipped, transposed weights; at stride 2 it runs once per stride phase
 *   of dx with only the taps that reach that phase. The 3x3 weight gradient is `conv_dw_win`.
 * - 1x1, stride 1, no padding: batched GEMMs (matmul.wgsl).
 * - Anything else: implicit GEMMs (`conv_fwd`, `conv_dx`, `conv_dw`) whose loaders compute the
 *   im2col coordinates (no im2col buffer); the input gradient visits only the taps that divide
 *   the stride, and the weight gradient splits its long reduction over pixels.
 *
 * Grouped convolutions (`groups` > 1):
 * - Depthwise (groups = Cin, Cout = m * Cin for a channel multiplier m >= 1): conv2d_depthwise.wgsl
 *   (`dw_fwd`, `dw_dx`, `dw_dw`), in both kernel families: 8 output pixels of a row per
 *   invocation, the input window slid along the row one column per tap; the weight gradient
 *   split over (batch, output row) and its partial sums added up.
 * - Other groups (1 < groups < Cin): each group runs through the paths above on its channel
 *   slices of x, w, bias and dy (copies), and the results are concatenated along the channels.
 *
 * @module
 */

import { kernelFamily } from "../../gpu/device.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import {
  CONV2D_DEPTHWISE,
  CONV2D_DW_WINDOW,
  CONV2D_GEMM,
  CONV2D_TILED,
  CONV2D_WINDOW,
} from "./_kernels.ts";
import { empty, noGrad, record, type Shape, type Tensor } from "../tensor.ts";
import { gemm } from "./matmul.ts";
import type { Size2 } from "./pool.ts";
import { sum } from "./reduce.ts";
import { concat, slice } from "./shape.ts";

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Step between output pixels, per axis. Default 1. */
  stride?: Size2;
  /** Zeros added on each side of the input, per axis. Default 0. */
  padding?: Size2;
  /**
   * Channel groups, as PyTorch's `groups`: input channels `[k*Cin/groups, (k+1)*Cin/groups)`
   * feed only output channels `[k*Cout/groups, (k+1)*Cout/groups)`; w is
   * `[Cout, Cin/groups, KH, KW]`. Cin and Cout must be divisible by it. `groups` = Cin is a
   * depthwise convolution (its own kernel). Default 1.
   */
  groups?: number;
}

function pair(v: Size2 | undefined, fallback: number, what: string, min: number): [number, number] {
  const p: [number, number] = v === undefined
    ? [fallback, fallback]
    : typeof v === "number"
    ? [v, v]
    : [v[0], v[1]];
  if (p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new RangeError(`conv2d: ${what} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

const s = (shape: Shape) => `[${shape.join(",")}]`;

/** Geometry of one convolution. */
interface Geometry {
  nb: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
}

function defines(g: Geometry, wg: number, bias = false) {
  return {
    KH: g.kh,
    KW: g.kw,
    SH: g.sh,
    SW: g.sw,
    PH: g.ph,
    PW: g.pw,
    WG: wg,
    BIAS: String(bias),
  };
}

/** Rows and columns of the output block of one invocation in the general kernels. */
const RM = 8;
const RN = 16;

/** Workgroup size and counts for a GEMM with `m` rows and `n` columns. */
function tile(m: number, n: number): { wg: number; gx: number; gy: number } {
  const wg = 8; // one SIMD row on lavapipe (fewer lanes cost the same); one pipeline per shape
  return { wg, gx: Math.ceil(n / (RN * wg)), gy: Math.ceil(m / RM) };
}

/** Where a stride phase of the input gradient lands: full dx size and the phase. */
interface Phase {
  fh: number;
  fw: number;
  py: number;
  px: number;
}

function ints(g: Geometry, chunk = 0, phase?: Phase): number[] {
  const p = phase ?? { fh: 0, fw: 0, py: 0, px: 0 };
  return [g.nb, g.cin, g.h, g.w, g.cout, g.oh, g.ow, chunk, p.fh, p.fw, p.py, p.px];
}

/** Whether the direct 3-tap kernel (conv_win) applies: KW 3, padding 1 and stride 1 or 2 along
 * the width, widths multiples of 4. */
function windowed(g: Geometry): boolean {
  return g.kw === 3 && g.pw === 1 && (g.sw === 1 || g.sw === 2) && g.w % 4 === 0 &&
    g.ow % 4 === 0;
}

/** Packs weights for conv_win as vec4s of 4 output channels per (ci, ky, kx); `flip` packs the
 * transposed, flipped kernel of the input gradient. */
function packWeights(w: Tensor, g: Geometry, flip: boolean): Tensor {
  const [cin, cout] = flip ? [g.cout, g.cin] : [g.cin, g.cout];
  const n = cin * g.kh * 3 * Math.ceil(cout / 8) * 2;
  const packed = empty([n, 4]);
  dispatch({
    op: "conv2d.pack_weights",
    kernel: CONV2D_WINDOW,
    entry: "pack_w3",
    defines: { KH: g.kh },
    ints: [0, cin, 0, 0, cout, 0, 0, flip ? 1 : 0],
    workgroups: grid1d(n, 64),
  }, [w.buffer, packed.buffer]);
  return packed;
}

/** conv_win: `x` [nb, cin, h, w] with packed weights into [nb, cout, oh, ow]. */
function windowConv(
  op: string,
  x: Tensor,
  packed: Tensor,
  b: Tensor | undefined,
  g: Geometry,
  out: Tensor,
  phase?: Phase,
): void {
  // Output channels per invocation: 4 when there are few (the final RGB layer), else 8.
  const cb = g.cout <= 4 ? 4 : 8;
  // 3-row kernels at stride 1 or 2 (stride 1 only with 4-channel blocks): eight output rows per
  // invocation (conv_win3r8, conv_win3s1r8, conv_win3s2r8), input rows shared between them.
  const rows8 = g.kh === 3 && !phase && (g.sh === 1 || (cb === 8 && g.sh === 2));
  // Two output rows per invocation: each weight load serves twice the FMAs.
  const rows2 = true;
  const rows = rows8 ? 8 : rows2 ? 2 : 1;
  const groups = g.nb * Math.ceil(g.oh / rows) * Math.ceil(g.ow / 16);
  const wg = 8;
  // 3x3 (and 3-row) kernels at vertical stride 1 or 2 with 8-channel blocks share input rows.
  const shared = cb === 8 && g.kh === 3 && (g.sh === 1 || g.sh === 2);
  dispatch({
    op,
    kernel: CONV2D_WINDOW,
    entry: rows8
      ? (cb === 4 ? "conv_win3r8" : `conv_win3s${g.sh}r8`)
      : shared
      ? "conv_win3"
      : "conv_win",
    defines: {
      KH: g.kh,
      SH: g.sh,
      PH: g.ph,
      SW2: String(g.sw === 2),
      CB: cb,
      C3: String(g.cout === 3),
      ROWS2: String(rows2),
      PHASE: String(!!phase),
      WG: wg,
      BIAS: String(!!b),
    },
    ints: ints(g, 0, phase),
    workgroups: [Math.ceil(groups / wg), Math.ceil(g.cout / cb)],
  }, [x.buffer, packed.buffer, out.buffer, (b ?? out).buffer]);
}

/** A 1x1 convolution with stride 1 and no padding is a batched GEMM over the pixels. */
function pointwise(g: Geometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

function forward(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geometry): Tensor {
  if (pointwise(g)) {
    // y[b] = w [Cout, Cin] x[b] [Cin, H*W] + bias on the rows
    return gemm({
      op: "conv2d",
      a: w,
      transA: false,
      b: x,
      transB: false,
      m: g.cout,
      n: g.h * g.w,
      k: g.cin,
      batch: g.nb,
      aBatched: false,
      bBatched: true,
      bias: b,
      biasRows: true,
      outShape: [g.nb, g.cout, g.oh, g.ow],
    });
  }
  if (kernelFamily() === "gpu") return tiled(0, x, w, b, g);
  const out = empty([g.nb, g.cout, g.oh, g.ow]);
  if (windowed(g)) {
    const packed = packWeights(w, g, false);
    windowConv("conv2d", x, packed, b, g, out);
    packed.dispose();
    return out;
  }
  const npix = g.nb * g.oh * g.ow;
  const { wg, gx, gy } = tile(g.cout, npix);
  dispatch({
    op: "conv2d",
    kernel: CONV2D_GEMM,
    entry: "conv_fwd",
    defines: defines(g, wg, !!b),
    ints: ints(g),
    workgroups: [gx, gy],
  }, [x.buffer, w.buffer, out.buffer, (b ?? out).buffer]);
  return out;
}

function inputGrad(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  if (pointwise(g)) {
    // dx[b] = w^T dy[b]
    return gemm({
      op: "conv2d.backward_input",
      a: w,
      transA: true,
      b: dy,
      transB: false,
      m: g.cin,
      n: g.h * g.w,
      k: g.cout,
      batch: g.nb,
      aBatched: false,
      bBatched: true,
      outShape: [g.nb, g.cin, g.h, g.w],
    });
  }
  if (kernelFamily() === "gpu") return tiled(1, dy, w, undefined, g);
  if (g.sh === 2 && g.sw === 2 && g.kw === 3 && g.pw === 1 && g.ow % 4 === 0) {
    return inputGradPhases(dy, w, g);
  }
  if (g.sh === 1 && g.sw === 1 && g.ph <= g.kh - 1) {
    // Stride 1: dx is the convolution of dy with the flipped, transposed kernel and padding
    // KH-1-PH (KW-1-PW = 1 horizontally), which the window kernel runs.
    const t: Geometry = {
      ...g,
      cin: g.cout,
      h: g.oh,
      w: g.ow,
      cout: g.cin,
      ph: g.kh - 1 - g.ph,
      oh: g.h,
      ow: g.w,
    };
    if (windowed(t)) {
      const packed = packWeights(w, g, true);
      const dx = empty([g.nb, g.cin, g.h, g.w]);
      windowConv("conv2d.backward_input", dy, packed, undefined, t, dx);
      packed.dispose();
      return dx;
    }
  }
  const dx = empty([g.nb, g.cin, g.h, g.w]);
  // One layer of workgroups per stride phase (iy % sh, ix % sw); phase (0, 0) is the largest.
  const npix = g.nb * Math.ceil(g.h / g.sh) * Math.ceil(g.w / g.sw);
  const { wg, gx, gy } = tile(g.cin, npix);
  dispatch({
    op: "conv2d.backward_input",
    kernel: CONV2D_GEMM,
    entry: "conv_dx",
    defines: defines(g, wg),
    ints: ints(g),
    workgroups: [gx, gy, g.sh * g.sw],
  }, [dy.buffer, w.buffer, dx.buffer]);
  return dx;
}

/**
 * Input gradient of a stride-2 convolution with KW = 3, PW = 1: each of the four stride phases
 * (iy % 2, ix % 2) of dx is a stride-1 convolution of dy with the taps that reach it (1 or 2
 * per axis), run by the window kernel, which writes the phase's pixels into dx.
 */
function inputGradPhases(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const dx = empty([g.nb, g.cin, g.h, g.w]);
  const q = Math.ceil(g.cin / 8) * 2;
  for (let py = 0; py < 2; py++) {
    for (let px = 0; px < 2; px++) {
      const hc = Math.ceil((g.h - py) / 2);
      const wc = Math.ceil((g.w - px) / 2);
      if (hc <= 0 || wc <= 0) continue;
      // Kernel rows that reach this phase, as dy row offsets r = (py + PH - ky) / 2.
      const offsets: number[] = [];
      for (let ky = 0; ky < g.kh; ky++) {
        if ((py + g.ph - ky) % 2 === 0) offsets.push((py + g.ph - ky) / 2);
      }
      const first = offsets.length ? Math.min(...offsets) : 0;
      const khc = offsets.length ? Math.max(...offsets) - first + 1 : 0;
      const n = g.cout * khc * 3 * q;
      const packed = empty([Math.max(n, 1), 4]);
      if (n > 0) {
        dispatch({
          op: "conv2d.pack_weights",
          kernel: CONV2D_WINDOW,
          entry: "pack_w3_phase",
          defines: { KH: g.kh, PH: g.ph },
          ints: [0, g.cout, khc, first, g.cin, 0, 0, 0, 0, 0, py, px],
          workgroups: grid1d(n, 64),
        }, [w.buffer, packed.buffer]);
      }
      const t: Geometry = {
        nb: g.nb,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: khc,
        kw: 3,
        sh: 1,
        sw: 1,
        ph: -first,
        pw: 1,
        oh: hc,
        ow: wc,
      };
      windowConv("conv2d.backward_input", dy, packed, undefined, t, dx, {
        fh: g.h,
        fw: g.w,
        py,
        px,
      });
      packed.dispose();
    }
  }
  return dx;
}

function weightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  if (g.kh === 3 && windowed(g)) return weightGradWindow(dy, x, g);
  if (pointwise(g)) {
    // dw = sum over b of dy[b] x[b]^T
    const per = gemm({
      op: "conv2d.backward_weight",
      a: dy,
      transA: false,
      b: x,
      transB: true,
      m: g.cout,
      n: g.cin,
      k: g.h * g.w,
      batch: g.nb,
      aBatched: true,
      bBatched: true,
      outShape: [g.nb, g.cout, g.cin, 1, 1],
    });
    if (g.nb === 1) {
      const r = per.reshape([g.cout, g.cin, 1, 1]);
      per.dispose();
      return r;
    }
    const dw = sum(per, { axes: 0 });
    per.dispose();
    return dw;
  }
  if (kernelFamily() === "gpu") return tiled(2, x, dy, undefined, g);
  const ncol = g.cin * g.kh * g.kw;
  const total = g.nb * g.oh * g.ow;
  const { wg, gx, gy } = tile(g.cout, ncol);
  // Split the long reduction over pixels so that enough workgroups run; each split stays far
  // below lavapipe's 65535-iteration loop limit.
  const want = Math.max(1, Math.ceil(256 / (gx * gy)));
  const chunk = Math.min(16384, Math.max(256, Math.ceil(total / want)));
  const splits = Math.ceil(total / chunk);
  const partial = empty(
    splits > 1 ? [splits, g.cout, g.cin, g.kh, g.kw] : [g.cout, g.cin, g.kh, g.kw],
  );
  dispatch({
    op: "conv2d.backward_weight",
    kernel: CONV2D_GEMM,
    entry: "conv_dw",
    defines: defines(g, wg),
    ints: ints(g, chunk),
    workgroups: [gx, gy, splits],
  }, [x.buffer, dy.buffer, partial.buffer]);
  if (splits === 1) return partial;
  const dw = sum(partial, { axes: 0 });
  partial.dispose();
  return dw;
}

/** Workgroups of the tiled kernel's 64 x 64 tiles that a GPU keeps busy with (weight gradient). */
const TILED_TARGET_GROUPS = 256;

/**
 * conv2d_tiled.wgsl (the "gpu" kernel family): mode 0 the forward (`a` = x, `b` = w), 1 the
 * input gradient (`a` = dy, `b` = w), 2 the weight gradient (`a` = x, `b` = dy; split along the
 * pixels, partial sums added up).
 */
function tiled(mode: 0 | 1 | 2, a: Tensor, b: Tensor, bias: Tensor | undefined, g: Geometry) {
  const khw = g.kh * g.kw;
  const [m, n, k] = mode === 0
    ? [g.cout, g.nb * g.oh * g.ow, g.cin * khw]
    : mode === 1
    ? [g.cin, g.nb * g.h * g.w, g.cout * khw]
    : [g.cout, g.cin * khw, g.nb * g.oh * g.ow];
  const gx = Math.ceil(n / 64), gy = Math.ceil(m / 64);
  let splits = 1, chunk = 0;
  if (mode === 2) {
    const want = Math.max(1, Math.ceil(TILED_TARGET_GROUPS / (gx * gy)));
    chunk = Math.max(16, Math.ceil(k / want / 16) * 16);
    splits = Math.ceil(k / chunk);
  }
  const shape = mode === 0
    ? [g.nb, g.cout, g.oh, g.ow]
    : mode === 1
    ? [g.nb, g.cin, g.h, g.w]
    : splits > 1
    ? [splits, g.cout, g.cin, g.kh, g.kw]
    : [g.cout, g.cin, g.kh, g.kw];
  const out = empty(shape);
  dispatch({
    op: ["conv2d", "conv2d.backward_input", "conv2d.backward_weight"][mode],
    kernel: CONV2D_TILED,
    entry: "conv_tiled",
    defines: { ...defines(g, 1, !!bias), MODE: mode },
    ints: ints(g, chunk),
    workgroups: [gx, gy, splits],
  }, [a.buffer, b.buffer, out.buffer, (bias ?? out).buffer]);
  if (splits === 1) return out;
  const dw = sum(out, { axes: 0 });
  out.dispose();
  return dw;
}

/** conv_dw_win: 3x3 weight gradient, split over output rows, partial sums added up. */
function weightGradWindow(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  // Output channels per invocation: 16 (each x load serves more products), fewer when there are
  // few.
  const cbw = g.cout <= 4 ? 4 : g.cout <= 8 ? 8 : 16;
  const lanes = g.cin * Math.ceil(g.cout / cbw);
  const wg = 8;
  const rows = g.nb * g.oh;
  // Enough splits for about 1024 invocations in all (more only adds partial sums to add up:
  // a 2-core CPU adapter is busy with far fewer).
  const want = Math.max(1, Math.min(rows, Math.ceil(1024 / lanes)));
  // At most 16384 rows per split: lavapipe ends loops after 65535 iterations.
  const chunk = Math.min(16384, Math.ceil(rows / want));
  const splits = Math.ceil(rows / chunk);
  const shape = [g.cout, g.cin, 3, 3];
  const partial = empty(splits > 1 ? [splits, ...shape] : shape);
  dispatch({
    op: "conv2d.backward_weight",
    kernel: CONV2D_DW_WINDOW,
    entry: "conv_dw_win",
    defines: { KH: 3, SH: g.sh, PH: g.ph, SW2: String(g.sw === 2), CBW: cbw, WG: wg },
    ints: ints(g, chunk),
    workgroups: [Math.ceil((lanes * splits) / wg)],
  }, [x.buffer, dy.buffer, partial.buffer]);
  if (splits === 1) return partial;
  const dw = sum(partial, { axes: 0 });
  partial.dispose();
  return dw;
}

/** Whether the depthwise kernel takes this grouped convolution (groups = Cin): its loops stay
 * far below lavapipe's 65535 iterations per invocation. */
function depthwiseFits(g: Geometry, groups: number): boolean {
  const m = g.cout / g.cin;
  return groups === g.cin && g.kh * g.kw <= 4096 &&
    m * Math.ceil(g.kh / g.sh) * Math.ceil(g.kw / g.sw) <= 16384 && Math.ceil(g.ow / 8) <= 8192;
}

/** Invocations per workgroup of the depthwise kernels (one SIMD row on lavapipe). */
const DW_WG = 64;

/** dw_fwd: the depthwise forward. */
function depthwiseForward(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geometry): Tensor {
  const out = empty([g.nb, g.cout, g.oh, g.ow]);
  dispatch({
    op: "conv2d",
    kernel: CONV2D_DEPTHWISE,
    entry: "dw_fwd",
    defines: defines(g, DW_WG, !!b),
    ints: ints(g),
    workgroups: grid1d(g.nb * g.cout * g.oh * Math.ceil(g.ow / 8), DW_WG),
  }, [x.buffer, w.buffer, out.buffer, (b ?? out).buffer]);
  return out;
}

/** dw_dx: the depthwise input gradient (per stride phase of the columns). */
function depthwiseInputGrad(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const dx = empty([g.nb, g.cin, g.h, g.w]);
  const segs = Math.ceil(Math.ceil(g.w / g.sw) / 8);
  dispatch({
    op: "conv2d.backward_input",
    kernel: CONV2D_DEPTHWISE,
    entry: "dw_dx",
    defines: defines(g, DW_WG),
    ints: ints(g),
    workgroups: grid1d(g.nb * g.cin * g.h * g.sw * segs, DW_WG),
  }, [dy.buffer, w.buffer, dx.buffer]);
  return dx;
}

/** dw_dw: the depthwise weight gradient, split over (batch, output row), partial sums added. */
function depthwiseWeightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const lanes = g.cout * g.kh * Math.ceil(g.kw / 7);
  const rows = g.nb * g.oh;
  const segs = Math.ceil(g.ow / 8);
  // About 2048 invocations in all; at most 4096 row segments per invocation (lavapipe's loop
  // limit is 65535 iterations).
  const want = Math.max(1, Math.min(rows, Math.ceil(2048 / lanes)));
  const chunk = Math.max(1, Math.min(Math.ceil(rows / want), Math.floor(4096 / segs)));
  const splits = Math.ceil(rows / chunk);
  const shape = [g.cout, 1, g.kh, g.kw];
  const partial = empty(splits > 1 ? [splits, ...shape] : shape);
  dispatch({
    op: "conv2d.backward_weight",
    kernel: CONV2D_DEPTHWISE,
    entry: "dw_dw",
    defines: defines(g, DW_WG),
    ints: ints(g, chunk),
    workgroups: grid1d(lanes * splits, DW_WG),
  }, [x.buffer, dy.buffer, partial.buffer]);
  if (splits === 1) return partial;
  const dw = sum(partial, { axes: 0 });
  partial.dispose();
  return dw;
}

/**
 * Runs `part(k, gk)` for each of `groups` groups (gk: the group's geometry, Cin/groups input and
 * Cout/groups output channels) and concatenates the results along `axis`; the pieces are freed.
 */
function perGroup(
  groups: number,
  g: Geometry,
  axis: number,
  part: (k: number, gk: Geometry) => Tensor,
): Tensor {
  const gk: Geometry = { ...g, cin: g.cin / groups, cout: g.cout / groups };
  return noGrad(() => {
    const parts: Tensor[] = [];
    for (let k = 0; k < groups; k++) parts.push(part(k, gk));
    const out = concat(parts, axis);
    parts.forEach((t) => t.dispose());
    return out;
  });
}

/** Channels [k*n, (k+1)*n) of `t` along `axis` (a copy). */
function channels(t: Tensor, axis: number, k: number, n: number): Tensor {
  return slice(t, { axis, start: k * n, end: (k + 1) * n });
}

/** Calls `fn` on the slices and frees them. */
function withSlices(slices: (Tensor | undefined)[], fn: () => Tensor): Tensor {
  try {
    return fn();
  } finally {
    slices.forEach((t) => t?.dispose());
  }
}

function groupedForward(
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  g: Geometry,
  groups: number,
): Tensor {
  if (depthwiseFits(g, groups)) return depthwiseForward(x, w, b, g);
  return perGroup(groups, g, 1, (k, gk) => {
    const xs = channels(x, 1, k, gk.cin);
    const ws = channels(w, 0, k, gk.cout);
    const bs = b ? channels(b, 0, k, gk.cout) : undefined;
    return withSlices([xs, ws, bs], () => forward(xs, ws, bs, gk));
  });
}

function groupedInputGrad(dy: Tensor, w: Tensor, g: Geometry, groups: number): Tensor {
  if (depthwiseFits(g, groups)) return depthwiseInputGrad(dy, w, g);
  return perGroup(groups, g, 1, (k, gk) => {
    const dys = channels(dy, 1, k, gk.cout);
    const ws = channels(w, 0, k, gk.cout);
    return withSlices([dys, ws], () => inputGrad(dys, ws, gk));
  });
}

function groupedWeightGrad(dy: Tensor, x: Tensor, g: Geometry, groups: number): Tensor {
  if (depthwiseFits(g, groups)) return depthwiseWeightGrad(dy, x, g);
  return perGroup(groups, g, 0, (k, gk) => {
    const dys = channels(dy, 1, k, gk.cout);
    const xs = channels(x, 1, k, gk.cin);
    return withSlices([dys, xs], () => weightGrad(dys, xs, gk));
  });
}

let flopCount = 0;

/**
 * Multiply-add FLOPs (2 per product) of every convolution pass run so far in this process:
 * forward, input gradient and weight gradient each count 2·N·Cout·OH·OW·(Cin/groups)·KH·KW. For benches,
 * which divide work by time (read it before and after).
 *
 * @example
 * ```ts
 * import { convFlops } from "./conv.ts";
 * const before = convFlops();
 * // ... work ...
 * console.log(`${(convFlops() - before) / 1e9} GFLOP of convolutions`);
 * ```
 */
export function convFlops(): number {
  return flopCount;
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch) of `x` [N, Cin, H, W] with `w`
 * [Cout, Cin/groups, KH, KW] and optional bias `b` [Cout], giving [N, Cout, OH, OW] with
 * `OH = floor((H + 2*padH - KH) / strideH) + 1` (likewise OW). Any kernel size; stride and
 * zero padding per axis; channel groups as `torch.nn.functional.conv2d(..., groups)`
 * (`groups: Cin` is a depthwise convolution, with `Cout = m * Cin` a channel multiplier).
 * Differentiable in `x`, `w` and `b`.
 *
 * @example
 * ```ts
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { conv2d } from "./conv.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(2 * 3 * 8 * 8).fill(1), [2, 3, 8, 8]);
 * const w = tensor(new Float32Array(16 * 3 * 3 * 3).fill(0.1), [16, 3, 3, 3], { requiresGrad: true });
 * const y = conv2d(x, w, undefined, { stride: 2, padding: 1 }); // [2, 16, 4, 4]
 * // depthwise 3x3 (MobileNetV2): one 3x3 filter per channel, w [Cin, 1, 3, 3]
 * const wd = tensor(new Float32Array(3 * 9).fill(0.1), [3, 1, 3, 3]);
 * const yd = conv2d(x, wd, undefined, { padding: 1, groups: 3 }); // [2, 3, 8, 8]
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor, options: Conv2dOptions = {}): Tensor {
  if (x.rank !== 4) throw new RangeError(`conv2d: x must be [N, Cin, H, W], got ${s(x.shape)}`);
  if (w.rank !== 4) {
    throw new RangeError(`conv2d: w must be [Cout, Cin, KH, KW], got ${s(w.shape)}`);
  }
  const [nb, cin, h, wd] = x.shape;
  const [cout, wcin, kh, kw] = w.shape;
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new RangeError(`conv2d: groups must be an integer >= 1, got ${groups}`);
  }
  if (groups === 1 && wcin !== cin) {
    throw new RangeError(
      `conv2d: x ${s(x.shape)} has ${cin} channels but w ${s(w.shape)} expects ${wcin}`,
    );
  }
  if (groups > 1) {
    if (cin % groups !== 0 || cout % groups !== 0) {
      throw new RangeError(
        `conv2d: groups ${groups} must divide the input channels of x ${s(x.shape)} (${cin}) ` +
          `and the output channels of w ${s(w.shape)} (${cout})`,
      );
    }
    if (wcin * groups !== cin) {
      throw new RangeError(
        `conv2d: x ${s(x.shape)} has ${cin} channels in ${groups} groups, so w ${s(w.shape)} ` +
          `must have ${cin / groups} (Cin/groups) in its second dimension, not ${wcin}`,
      );
    }
  }
  if (b && (b.rank !== 1 || b.shape[0] !== cout)) {
    throw new RangeError(`conv2d: bias ${s(b.shape)} must be [${cout}] for w ${s(w.shape)}`);
  }
  const [sh, sw] = pair(options.stride, 1, "stride", 1);
  const [ph, pw] = pair(options.padding, 0, "padding", 0);
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((wd + 2 * pw - kw) / sw) + 1;
  if (kh < 1 || kw < 1 || oh < 1 || ow < 1) {
    throw new RangeError(
      `conv2d: kernel ${kh}x${kw} (w ${s(w.shape)}) does not fit the input ${h}x${wd} ` +
        `(x ${s(x.shape)}) with padding [${ph},${pw}]`,
    );
  }
  const g: Geometry = { nb, cin, h, w: wd, cout, kh, kw, sh, sw, ph, pw, oh, ow };
  const flops = 2 * nb * cout * oh * ow * (cin / groups) * kh * kw;
  const out = nb === 0 || cout === 0
    ? empty([nb, cout, oh, ow])
    : groups === 1
    ? forward(x, w, b, g)
    : groupedForward(x, w, b, g, groups);
  flopCount += flops;
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, "conv2d", inputs, (dy) => {
    flopCount += (x.requiresGrad ? flops : 0) + (w.requiresGrad ? flops : 0);
    const grads: (Tensor | null)[] = [
      !x.requiresGrad
        ? null
        : groups === 1
        ? inputGrad(dy, w, g)
        : groupedInputGrad(dy, w, g, groups),
      !w.requiresGrad
        ? null
        : groups === 1
        ? weightGrad(dy, x, g)
        : groupedWeightGrad(dy, x, g, groups),
    ];
    if (b) grads.push(b.requiresGrad ? sum(dy, { axes: [0, 2, 3] }) : null);
    return grads;
  });
}
