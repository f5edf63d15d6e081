/**
 * Image resizing as torch's `F.interpolate(x, size=(h, w), mode, align_corners=False,
 * antialias)`, bilinear and bicubic, differentiable, and the two torchvision helpers that go with
 * it in published VQA pipelines: {@link centerCrop} and {@link shortSideSize}. Kernel:
 * resize.wgsl, one pass along W then one along H, each with a table of per-output taps computed
 * here in float64 from torch's definitions; the backward pass runs the transposed tables (a
 * gather over the outputs each input fed, no atomics).
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { RESIZE } from "./_kernels.ts";
import { slice } from "./shape.ts";
import { empty, isGradEnabled, record, type Tensor, tensor } from "../tensor.ts";

/** Options of {@link resize}. */
export interface ResizeOptions {
  /** Output height (a positive integer). */
  height: number;
  /** Output width (a positive integer). */
  width: number;
  /**
   * `"bilinear"` or `"bicubic"` (Keys' cubic with torch's A = -0.75, source indices clamped at
   * the borders), both with `align_corners=False`. Default `"bilinear"`.
   */
  mode?: "bilinear" | "bicubic";
  /**
   * torch's `antialias=True`: when an axis shrinks by a factor s, the filter is stretched by s
   * (its support widens to s times 1 or 2 pixels; bicubic then uses A = -0.5, as PIL), and the
   * taps at the borders are dropped and the rest renormalised. This is torchvision's tensor
   * `Resize(..., antialias=True)`, close to PIL's. Default false.
   */
  antialias?: boolean;
  /**
   * The source coordinate scale `[h, w]` (input pixels per output pixel) instead of
   * `in / out`: torch's `interpolate(scale_factor=f)` (without `recompute_scale_factor`) maps
   * coordinates with `1 / f` while its output size is `floor(in · f)`; pass `[1 / fh, 1 / fw]`
   * with those sizes to match it. Both axes are then resampled, even one whose size stays.
   * Without antialias only. Default: `in / out` per axis.
   */
  scale?: readonly [number, number];
}

/** Options of {@link centerCrop}. */
export interface CenterCropOptions {
  /** Crop height, from 1 to the input's height. */
  height: number;
  /** Crop width, from 1 to the input's width. */
  width: number;
}

/** Most taps one table row may hold (keeps each invocation far below lavapipe's loop limit). */
const MAX_TAPS = 4096;

/** One axis's taps: for each output index, (input index, weight) pairs in CSR form. */
interface Taps {
  start: Int32Array; // len_out + 1 offsets
  index: Int32Array;
  weight: Float64Array;
}

function cubic1(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}

function cubic2(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/**
 * The taps of one axis, from torch 1.13's UpSampleKernel.cpp in float64, except where torch
 * rounds to float32 and the rounding shows (at 1080 -> 520 by up to 2e-5 times the image's
 * slope): the scale in / out always, and with antialias the centre, the support, 1 / scale, the
 * window's ends and the filter's argument (found against torch's outputs; without antialias the
 * source coordinates are not rounded).
 *
 * Without antialias: source s = (in / out) * (o + 0.5) - 0.5; bilinear clamps s at 0 and reads
 * floor(s) and the next index (the last one replicated); bicubic reads floor(s) - 1 ..
 * floor(s) + 2 clamped to the axis with Keys' weights (A = -0.75). With antialias
 * (`_compute_weights_aa`): centre c = scale * (o + 0.5), support = (2 or 4) / 2 times
 * max(scale, 1), inputs [max(trunc(c - support + 0.5), 0), min(trunc(c + support + 0.5), in))
 * weighted by the filter (triangle, or Keys' cubic with A = -0.5) at (j - c + 0.5) /
 * max(scale, 1), normalised to sum 1.
 * Repeated indices are merged and zero weights dropped.
 */
function axisTaps(
  inSize: number,
  outSize: number,
  mode: "bilinear" | "bicubic",
  antialias: boolean,
  given?: number,
): Taps {
  const f32 = Math.fround;
  const scale = f32(given ?? inSize / outSize);
  const rows: Map<number, number>[] = [];
  for (let o = 0; o < outSize; o++) {
    const row = new Map<number, number>();
    const add = (i: number, w: number) => row.set(i, (row.get(i) ?? 0) + w);
    if (antialias) {
      const interp = mode === "bilinear" ? 2 : 4;
      const support = scale >= 1 ? f32(interp * 0.5 * scale) : interp * 0.5;
      const invscale = scale >= 1 ? f32(1 / scale) : 1;
      const center = f32(scale * (o + 0.5));
      const lo = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
      const hi = Math.min(Math.trunc(f32(center + support) + 0.5), inSize);
      const ws: number[] = [];
      let total = 0;
      for (let j = lo; j < hi; j++) {
        const x = Math.abs(f32(f32(f32(j - center) + 0.5) * invscale));
        const w = mode === "bilinear"
          ? (x < 1 ? 1 - x : 0)
          : x < 1
          ? cubic1(x, -0.5)
          : x < 2
          ? cubic2(x, -0.5)
          : 0;
        ws.push(w);
        total += w;
      }
      for (let j = lo; j < hi; j++) add(j, total !== 0 ? ws[j - lo] / total : ws[j - lo]);
    } else if (mode === "bilinear") {
      const s = Math.max(scale * (o + 0.5) - 0.5, 0);
      const i0 = Math.floor(s);
      const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
      const l1 = s - i0;
      add(i0, 1 - l1);
      add(i1, l1);
    } else {
      const s = scale * (o + 0.5) - 0.5;
      const i0 = Math.floor(s);
      const t = s - i0;
      const ws = [
        cubic2(t + 1, -0.75),
        cubic1(t, -0.75),
        cubic1(1 - t, -0.75),
        cubic2(2 - t, -0.75),
      ];
      for (let k = 0; k < 4; k++) add(Math.min(Math.max(i0 - 1 + k, 0), inSize - 1), ws[k]);
    }
    rows.push(row);
  }
  return pack(rows);
}

function pack(rows: Map<number, number>[]): Taps {
  const start = new Int32Array(rows.length + 1);
  const index: number[] = [];
  const weight: number[] = [];
  rows.forEach((row, o) => {
    for (const [i, w] of [...row].sort((a, b) => a[0] - b[0])) {
      if (w === 0) continue;
      index.push(i);
      weight.push(w);
    }
    start[o + 1] = index.length;
  });
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

/** The transposed taps: for each input index, the outputs it feeds and with which weights. */
function transpose(taps: Taps, inSize: number): Taps {
  const rows = Array.from({ length: inSize }, () => new Map<number, number>());
  for (let o = 0; o + 1 < taps.start.length; o++) {
    for (let k = taps.start[o]; k < taps.start[o + 1]; k++) {
      rows[taps.index[k]].set(o, taps.weight[k]);
    }
  }
  return pack(rows);
}

/** The table as resize.wgsl reads it: offsets, then (index, weight) pairs, as float32. */
function table(taps: Taps, op: string, what: string): Float32Array {
  const rows = taps.start.length - 1;
  let widest = 0;
  for (let o = 0; o < rows; o++) widest = Math.max(widest, taps.start[o + 1] - taps.start[o]);
  if (widest > MAX_TAPS || rows + 1 + 2 * taps.index.length > 1 << 24) {
    throw new RangeError(
      `${op}: ${what} needs ${widest} taps per row (at most ${MAX_TAPS}); resize in steps`,
    );
  }
  const t = new Float32Array(rows + 1 + 2 * taps.index.length);
  t.set(taps.start);
  for (let k = 0; k < taps.index.length; k++) {
    t[rows + 1 + 2 * k] = taps.index[k];
    t[rows + 2 + 2 * k] = taps.weight[k];
  }
  return t;
}

/** One pass along an axis of `[outer, lenIn, inner]` into `[outer, lenOut, inner]`. */
function axisPass(
  op: string,
  src: Tensor,
  outShape: number[],
  inner: number,
  lenIn: number,
  lenOut: number,
  taps: Float32Array,
): Tensor {
  const out = empty(outShape);
  const t = tensor(taps);
  dispatch({
    op,
    kernel: RESIZE,
    entry: "resize_axis",
    ints: [out.size, inner, lenIn, lenOut],
    workgroups: grid1d(out.size, 64),
  }, [src.buffer, out.buffer, t.buffer]);
  t.dispose(); // reusable once this batch is submitted
  return out;
}

function positiveInt(v: unknown, name: string, op: string, shape: readonly number[]): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new RangeError(
      `${op}: ${name} must be a positive integer, got ${String(v)} for [${shape}]`,
    );
  }
  return v;
}

/**
 * Resizes `[N, C, H, W]` to `[N, C, height, width]` exactly as torch's
 * `F.interpolate(x, size=(height, width), mode, align_corners=False, antialias)` (torch 1.13):
 * upscaling and downscaling, any factors, each axis on its own. Separable: the taps of each
 * axis are computed on the CPU in float64 from torch's definitions (see {@link ResizeOptions}),
 * then one pass along W and one along H run on the GPU; an axis whose size does not change is
 * the identity and skipped. Differentiable (the transposed taps, gathered per input).
 *
 * @throws {RangeError} for an input that is not rank 4 or has an empty axis, a size that is not
 * a positive integer or an unknown mode, or a factor so large that one row of taps would exceed
 * 4096 (a shrink of about 1000x, or with a gradient an enlargement of about 1000x: resize in
 * steps), naming the shapes.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { resize } from "./resize.ts";
 * await initGpu();
 * const x = tensor([0, 1, 2, 3], [1, 1, 1, 4]);
 * const y = resize(x, { height: 1, width: 2, mode: "bilinear" }); // sources 0.5 and 2.5
 * assert.deepEqual([...await y.read()], [0.5, 2.5]);
 * const z = resize(x, { height: 3, width: 224, mode: "bicubic", antialias: true });
 * assert.deepEqual(z.shape, [1, 1, 3, 224]);
 * ```
 */
export function resize(x: Tensor, options: ResizeOptions): Tensor {
  const op = "resize";
  if (x.rank !== 4 || x.shape.some((d) => d < 1)) {
    throw new RangeError(`${op}: expects a non-empty NCHW tensor, got [${x.shape}]`);
  }
  const oh = positiveInt(options.height, "height", op, x.shape);
  const ow = positiveInt(options.width, "width", op, x.shape);
  const mode = options.mode ?? "bilinear";
  if (mode !== "bilinear" && mode !== "bicubic") {
    throw new RangeError(`${op}: mode must be "bilinear" or "bicubic", got ${String(mode)}`);
  }
  const antialias = options.antialias ?? false;
  const [n, c, h, w] = x.shape;
  const name = `${op}.${mode}${antialias ? ".antialias" : ""}`;
  const what = `[${x.shape}] -> [${n},${c},${oh},${ow}]`;
  const scale = options.scale;
  if (scale !== undefined) {
    if (
      scale.length !== 2 || !scale.every((v) => Number.isFinite(v) && v > 0) || antialias
    ) {
      throw new RangeError(
        `${op}: scale must be two positive numbers [h, w], without antialias; got [${scale}]`,
      );
    }
  }
  const tapsW = scale || ow !== w || oh === h ? axisTaps(w, ow, mode, antialias, scale?.[1]) : null;
  const tapsH = scale || oh !== h ? axisTaps(h, oh, mode, antialias, scale?.[0]) : null;
  // Every table is made (and checked) before anything is dispatched: the backward ones too
  // when a gradient will be needed.
  const fwdW = tapsW && table(tapsW, op, what);
  const fwdH = tapsH && table(tapsH, op, what);
  let backW: Float32Array | null = null;
  let backH: Float32Array | null = null;
  const backTables = () => {
    backW ??= tapsW && table(transpose(tapsW, w), op, `${what} (backward)`);
    backH ??= tapsH && table(transpose(tapsH, h), op, `${what} (backward)`);
  };
  if (x.requiresGrad && isGradEnabled()) backTables();
  let mid = x;
  if (fwdW) mid = axisPass(name, x, [n, c, h, ow], 1, w, ow, fwdW);
  let out = mid;
  if (fwdH) {
    out = axisPass(name, mid, [n, c, oh, ow], ow, h, oh, fwdH);
    if (mid !== x) mid.dispose(); // reusable once this batch is submitted
  }
  return record(out, name, [x], (g) => {
    const back = `${name}.backward`;
    backTables();
    let gmid = g;
    if (backH) gmid = axisPass(back, g, [n, c, h, ow], ow, oh, h, backH);
    let gin = gmid;
    if (backW) {
      gin = axisPass(back, gmid, [n, c, h, w], 1, ow, w, backW);
      if (gmid !== g) gmid.dispose(); // reusable once this batch is submitted
    }
    return [gin];
  });
}

/** Python's round(): to the nearest integer, halves to the even one. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Crops the centre `height x width` of the last two axes, as torchvision's `CenterCrop`
 * (`center_crop`): top `round((H - height) / 2)`, left `round((W - width) / 2)` with Python's
 * round (halves to even). A slice, so differentiable. Unlike torchvision, a crop larger than the
 * image is refused rather than zero-padded.
 *
 * @throws {RangeError} for a tensor of rank below 2, or a crop size that is not an integer from
 * 1 to the image's, naming the shapes.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { centerCrop } from "./resize.ts";
 * await initGpu();
 * const x = tensor([...Array(20).keys()], [1, 1, 4, 5]);
 * const y = centerCrop(x, { height: 2, width: 2 }); // top round(1) = 1, left round(1.5) = 2
 * assert.deepEqual([...await y.read()], [7, 8, 12, 13]);
 * ```
 */
export function centerCrop(x: Tensor, options: CenterCropOptions): Tensor {
  const op = "centerCrop";
  if (x.rank < 2) throw new RangeError(`${op}: expects [..., H, W], got [${x.shape}]`);
  const h = x.shape[x.rank - 2];
  const w = x.shape[x.rank - 1];
  const ch = positiveInt(options.height, "height", op, x.shape);
  const cw = positiveInt(options.width, "width", op, x.shape);
  if (ch > h || cw > w) {
    throw new RangeError(`${op}: a ${ch}x${cw} crop does not fit in [${x.shape}] (no padding)`);
  }
  const top = roundHalfEven((h - ch) / 2);
  const left = roundHalfEven((w - cw) / 2);
  return slice(x, [
    { axis: -2, start: top, end: top + ch },
    { axis: -1, start: left, end: left + cw },
  ]);
}

/**
 * The output size of torchvision's `Resize(size)` with an int `size` on an `h x w` image: the
 * shorter side becomes `size`, the other `int(size * long / short)` (truncated), as
 * torchvision's `_compute_resized_output_size` without `max_size`; a square image gives
 * `size x size`. Give the result to {@link resize}.
 *
 * @throws {RangeError} unless all three are positive integers.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { shortSideSize } from "./resize.ts";
 * assert.deepEqual(shortSideSize(1080, 1920, 520), { height: 520, width: 924 });
 * ```
 */
export function shortSideSize(
  h: number,
  w: number,
  size: number,
): { height: number; width: number } {
  for (const [name, v] of [["h", h], ["w", w], ["size", size]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `shortSideSize: ${name} must be a positive integer, got ${v} (${h}x${w} to ${size})`,
      );
    }
  }
  const long = Math.trunc((size * Math.max(h, w)) / Math.min(h, w));
  return w <= h ? { height: long, width: size } : { height: size, width: long };
}
