/**
 * Imperceptibility metrics of adversarial videos (report.json's and the eval rows' columns; see
 * docs/attack.md and docs/eval.md): PSNR and SSIM of the adversarial video against the clean
 * one, and statistics of the perturbation against its JND map.
 *
 * Everything here runs on the CPU, on frames already read back from the GPU: `Float32Array`s in
 * planar `[T,3,H,W]` layout with values in [0,1] (JND maps `[T,1,H,W]` in levels/255, i.e. the
 * same units as the frames). Sums are accumulated in float64. Call it twice to get both numbers
 * a report gives: once on the float frames, once on the frames read back from the written file.
 *
 * Sizes that do not match throw a `RangeError` naming the argument and both sizes.
 *
 * @module
 */

const WIN = 11;
const RADIUS = 5;
const SIGMA = 1.5;
const C1 = 0.01 ** 2; // (K1 * L)^2 with L = 1
const C2 = 0.03 ** 2; // (K2 * L)^2

/** The 11 normalised Gaussian weights (sigma 1.5, truncated at radius 5), as scipy/skimage. */
const GAUSS: Float64Array = (() => {
  const w = new Float64Array(WIN);
  let s = 0;
  for (let k = 0; k < WIN; k++) {
    w[k] = Math.exp(-0.5 * ((k - RADIUS) / SIGMA) ** 2);
    s += w[k];
  }
  for (let k = 0; k < WIN; k++) w[k] /= s;
  return w;
})();

/** Grown on demand and reused: rolling buffers of horizontally filtered rows, luma planes. */
let ring = new Float64Array(0);
let lumaA = new Float64Array(0);
let lumaB = new Float64Array(0);

function positiveInt(v: number, what: string, fn: string): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`${fn}: ${what} must be a positive integer, got ${v}`);
  }
}

function checkLength(fn: string, name: string, arr: ArrayLike<number>, want: number, of: string) {
  if (arr.length !== want) {
    throw new RangeError(`${fn}: ${name} has ${arr.length} elements, ${of} needs ${want}`);
  }
}

function checkVideoShape(fn: string, shape: readonly number[]): [number, number, number] {
  if (shape.length !== 4 || shape[1] !== 3) {
    throw new RangeError(`${fn}: shape must be [T,3,H,W], got [${shape.join(",")}]`);
  }
  positiveInt(shape[0], "T", fn);
  positiveInt(shape[2], "H", fn);
  positiveInt(shape[3], "W", fn);
  return [shape[0], shape[2], shape[3]];
}

function sqDiffSum(a: ArrayLike<number>, b: ArrayLike<number>, off: number, n: number): number {
  let s = 0;
  for (let i = off, end = off + n; i < end; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

function psnrFromMse(mse: number, peak: number): number {
  return mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse);
}

/** Options of {@linkcode psnr}. */
export interface PsnrOptions {
  /** The largest possible value (1 for frames in [0,1], 255 for 8-bit levels). Default 1. */
  peak?: number;
}

/**
 * Peak signal-to-noise ratio in dB, `10 log10(peak^2 / MSE)`, over all elements of two arrays of
 * the same length (any layout). Returns `Infinity` when the arrays are identical (MSE 0), and NaN
 * when either holds a NaN.
 *
 * @example
 * ```ts
 * import { psnr } from "./quality.ts";
 * psnr(new Float32Array([0, 0.5, 1, 1]), new Float32Array([0.1, 0.5, 1, 1])); // 26.02 dB
 * psnr(new Float32Array([0.2]), new Float32Array([0.2])); // Infinity
 * ```
 */
export function psnr(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: PsnrOptions = {},
): number {
  const { peak = 1 } = options;
  if (!(peak > 0) || !Number.isFinite(peak)) {
    throw new RangeError(`psnr: peak must be a positive finite number, got ${peak}`);
  }
  if (a.length === 0) throw new RangeError("psnr: a is empty");
  checkLength("psnr", "b", b, a.length, "a's length");
  return psnrFromMse(sqDiffSum(a, b, 0, a.length) / a.length, peak);
}

/** Options of {@linkcode ssim}: the plane's size (its length must be `height * width`). */
export interface SsimOptions {
  /** Rows of the plane. */
  height: number;
  /** Columns of the plane. */
  width: number;
}

/** SSIM of two planes starting at offset 0, no checks. Uses and may grow the shared `ring`. */
function ssimPlane(a: ArrayLike<number>, b: ArrayLike<number>, h: number, w: number): number {
  const wv = w - WIN + 1;
  const hv = h - WIN + 1;
  const slot = WIN * wv; // one quantity's rolling buffer: 11 filtered rows of wv values
  if (ring.length < 5 * slot) ring = new Float64Array(5 * slot);
  const mx = ring.subarray(0, slot);
  const my = ring.subarray(slot, 2 * slot);
  const mxx = ring.subarray(2 * slot, 3 * slot);
  const myy = ring.subarray(3 * slot, 4 * slot);
  const mxy = ring.subarray(4 * slot, 5 * slot);
  const g = GAUSS;
  const base = new Int32Array(WIN);
  let total = 0;
  for (let r = 0; r < h; r++) {
    // Horizontal valid filter of row r into ring slot r % 11.
    const row = r * w;
    const o = (r % WIN) * wv;
    for (let j = 0; j < wv; j++) {
      let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
      const p = row + j;
      for (let k = 0; k < WIN; k++) {
        const x = a[p + k];
        const y = b[p + k];
        const gk = g[k];
        const gx = gk * x;
        const gy = gk * y;
        sx += gx;
        sy += gy;
        sxx += gx * x;
        syy += gy * y;
        sxy += gx * y;
      }
      mx[o + j] = sx;
      my[o + j] = sy;
      mxx[o + j] = sxx;
      myy[o + j] = syy;
      mxy[o + j] = sxy;
    }
    if (r < WIN - 1) continue;
    // Vertical filter over rows r-10..r gives valid output row r-10; accumulate its SSIM map.
    const i0 = r - (WIN - 1);
    for (let k = 0; k < WIN; k++) base[k] = ((i0 + k) % WIN) * wv;
    for (let j = 0; j < wv; j++) {
      let ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
      for (let k = 0; k < WIN; k++) {
        const q = base[k] + j;
        const gk = g[k];
        ux += gk * mx[q];
        uy += gk * my[q];
        uxx += gk * mxx[q];
        uyy += gk * myy[q];
        uxy += gk * mxy[q];
      }
      const vx = uxx - ux * ux;
      const vy = uyy - uy * uy;
      const vxy = uxy - ux * uy;
      total += ((2 * ux * uy + C1) * (2 * vxy + C2)) /
        ((ux * ux + uy * uy + C1) * (vx + vy + C2));
    }
  }
  return total / (hv * wv);
}

/**
 * Structural similarity (Wang et al. 2004) of two single-channel planes (row-major, `height *
 * width` values on the [0,1] scale, e.g. luma): Gaussian window 11x11 with sigma 1.5 (separable,
 * truncated at radius 5, normalised), K1 = 0.01, K2 = 0.03, L = 1, population (not sample)
 * covariances, and the mean of the SSIM map over the valid region only (positions whose whole
 * window lies inside the plane, no padding). This is exactly scikit-image's
 * `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 * data_range=1)`. Identical planes give 1.
 *
 * Planes smaller than the window (height or width below 11) throw a `RangeError` naming the size;
 * there is no smaller-window fallback.
 *
 * @example
 * ```ts
 * import { ssim } from "./quality.ts";
 * const a = Float32Array.from({ length: 16 * 16 }, (_, i) => (i % 16) / 16);
 * const b = a.map((v) => v + 0.01);
 * ssim(a, b, { height: 16, width: 16 }); // 0.99974
 * ```
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, options: SsimOptions): number {
  const { height, width } = options;
  positiveInt(height, "height", "ssim");
  positiveInt(width, "width", "ssim");
  if (height < WIN || width < WIN) {
    throw new RangeError(
      `ssim: a ${height}x${width} plane is smaller than the 11x11 Gaussian window ` +
        `(height and width must be at least 11)`,
    );
  }
  const n = height * width;
  checkLength("ssim", "a", a, n, `height*width = ${height}x${width}`);
  checkLength("ssim", "b", b, n, `height*width = ${height}x${width}`);
  return ssimPlane(a, b, height, width);
}

/** Result of {@linkcode videoQuality}. */
export interface VideoQuality {
  /** Per-frame PSNR in dB over the frame's three RGB planes (peak 1); `Infinity` when identical. */
  psnr: number[];
  /** Per-frame SSIM on BT.601 luma `0.299 R + 0.587 G + 0.114 B`. */
  ssim: number[];
  /**
   * PSNR of the whole video: `10 log10(1 / mean over frames of the per-frame MSE)`. This is the
   * usual "video PSNR", finite unless every frame is identical (then `Infinity`), so identical
   * frames count as MSE 0 instead of poisoning an average with `Infinity`. It is never above the
   * arithmetic mean of the per-frame PSNRs (Jensen), and equals it when all frames' MSEs are equal.
   */
  meanPsnr: number;
  /** Arithmetic mean of the per-frame SSIM. */
  meanSsim: number;
}

/**
 * PSNR and SSIM, frame by frame, of an adversarial video against the clean one, both `[T,3,H,W]`
 * planar float frames in [0,1]. PSNR is over RGB with peak 1; SSIM (see {@linkcode ssim}) on BT.601
 * luma computed in float64; H and W must be at least 11. See {@linkcode VideoQuality} for how the
 * means are taken. Scratch memory is reused between calls.
 *
 * @example
 * ```ts
 * import { videoQuality } from "./quality.ts";
 * const shape: [number, number, number, number] = [2, 3, 16, 16];
 * const clean = new Float32Array(2 * 3 * 16 * 16).fill(0.5);
 * const adv = clean.map((v, i) => v + (i % 2 ? 1 : -1) / 255);
 * const q = videoQuality(clean, adv, shape);
 * console.log(q.psnr, q.ssim, q.meanPsnr); // [48.13, 48.13] [0.9832, 0.9832] 48.13
 * ```
 */
export function videoQuality(
  clean: ArrayLike<number>,
  adv: ArrayLike<number>,
  shape: readonly [number, number, number, number] | readonly number[],
): VideoQuality {
  const [t, h, w] = checkVideoShape("videoQuality", shape);
  const n = t * 3 * h * w;
  const of = `shape [${shape.join(",")}]`;
  checkLength("videoQuality", "clean", clean, n, of);
  checkLength("videoQuality", "adv", adv, n, of);
  if (h < WIN || w < WIN) {
    throw new RangeError(
      `videoQuality: ${h}x${w} frames are smaller than SSIM's 11x11 Gaussian window ` +
        `(height and width must be at least 11)`,
    );
  }
  const hw = h * w;
  if (lumaA.length < hw) {
    lumaA = new Float64Array(hw);
    lumaB = new Float64Array(hw);
  }
  const ya = lumaA, yb = lumaB;
  const psnrs: number[] = [];
  const ssims: number[] = [];
  let mseSum = 0;
  for (let f = 0; f < t; f++) {
    const off = f * 3 * hw;
    const mse = sqDiffSum(clean, adv, off, 3 * hw) / (3 * hw);
    mseSum += mse;
    psnrs.push(psnrFromMse(mse, 1));
    for (let p = 0; p < hw; p++) {
      const i = off + p;
      ya[p] = 0.299 * clean[i] + 0.587 * clean[i + hw] + 0.114 * clean[i + 2 * hw];
      yb[p] = 0.299 * adv[i] + 0.587 * adv[i + hw] + 0.114 * adv[i + 2 * hw];
    }
    ssims.push(ssimPlane(ya, yb, h, w));
  }
  return {
    psnr: psnrs,
    ssim: ssims,
    meanPsnr: psnrFromMse(mseSum / t, 1),
    meanSsim: ssims.reduce((s, v) => s + v, 0) / t,
  };
}

/** Options of {@linkcode perturbationStats}. */
export interface PerturbationStatsOptions {
  /** The JND budget multiplier the attack used (`|d| <= eps * J`). Default 1. */
  eps?: number;
}

/** Result of {@linkcode perturbationStats}. */
export interface PerturbationStats {
  /** Share (0..1) of pixel channel values with `|d| > eps * J + 1e-7`. */
  beyondJnd: number;
  /** Mean `|d|` in 8-bit levels (`* 255`) over all pixel channel values. */
  meanAbsLevels: number;
  /** Largest `|d|` in 8-bit levels. */
  maxAbsLevels: number;
}

/** Slack of the JND test: about two float32 ulps at 1, so float32 clipping to the box never counts. */
export const JND_TOLERANCE = 1e-7;

/**
 * How the perturbation `d = adv - clean` (both `[T,3,H,W]`, [0,1] scale) sits against the JND map
 * `jnd` (`[T,1,H,W]`, levels/255, shared by the three channels): the share of pixel channel values
 * with `|d| > eps * J + 1e-7` (the 1e-7 slack, {@linkcode JND_TOLERANCE}, absorbs float32 rounding
 * of a perturbation clipped exactly to the box, so a JND-bounded attack reports 0), and the mean
 * and largest `|d|` in 8-bit levels. `d` is computed in float64 from the given values.
 *
 * @example
 * ```ts
 * import { perturbationStats } from "./quality.ts";
 * const clean = new Float32Array(2 * 3 * 4 * 4).fill(0.5);
 * const adv = clean.map((v, i) => v + (i % 3 ? 1 : 4) / 255);
 * const jnd = new Float32Array(2 * 4 * 4).fill(2 / 255);
 * perturbationStats(clean, adv, jnd, [2, 3, 4, 4]); // beyondJnd 1/3, meanAbsLevels ~2, maxAbsLevels ~4
 * ```
 */
export function perturbationStats(
  clean: ArrayLike<number>,
  adv: ArrayLike<number>,
  jnd: ArrayLike<number>,
  shape: readonly [number, number, number, number] | readonly number[],
  options: PerturbationStatsOptions = {},
): PerturbationStats {
  const { eps = 1 } = options;
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`perturbationStats: eps must be a finite number >= 0, got ${eps}`);
  }
  const [t, h, w] = checkVideoShape("perturbationStats", shape);
  const hw = h * w;
  const n = t * 3 * hw;
  const of = `shape [${shape.join(",")}]`;
  checkLength("perturbationStats", "clean", clean, n, of);
  checkLength("perturbationStats", "adv", adv, n, of);
  checkLength("perturbationStats", "jnd", jnd, t * hw, `[T,1,H,W] = [${t},1,${h},${w}]`);
  let beyond = 0;
  let sum = 0;
  let max = 0;
  for (let f = 0; f < t; f++) {
    const jo = f * hw;
    for (let c = 0; c < 3; c++) {
      const o = (f * 3 + c) * hw;
      for (let p = 0; p < hw; p++) {
        const d = Math.abs(adv[o + p] - clean[o + p]);
        sum += d;
        if (d > max) max = d;
        if (d > eps * jnd[jo + p] + JND_TOLERANCE) beyond++;
      }
    }
  }
  return { beyondJnd: beyond / n, meanAbsLevels: (sum / n) * 255, maxAbsLevels: max * 255 };
}
