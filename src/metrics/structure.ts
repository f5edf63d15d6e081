/**
 * Structure statistics of a perturbation `d = adv - clean`: whether it carries a grid, stripes or
 * another regular pattern that the eye picks up although its amplitude is small (report.json's
 * `structure`, `structureNoise`, `structureChroma` and `structureChromaNoise`; see docs/attack.md,
 * "Structure statistics").
 *
 * The statistics are computed on three planes of `d`, each on its own: the luma (BT.601:
 * `0.299 dR + 0.587 dG + 0.114 dB`, the weights SSIM uses in quality.ts; report.json's `structure`)
 * and the two chroma planes (BT.601 full range, `Cb = -0.168736 dR - 0.331264 dG + 0.5 dB` and
 * `Cr = 0.5 dR - 0.418688 dG - 0.081312 dB`; `structureChroma`), since a perturbation can be
 * invisible in luma and still show as colour bands (faint red/cyan bands on flat red areas). The
 * chroma planes are evaluated as `Cb = -0.168736 (dR - dB) - 0.331264 (dG - dB)` and
 * `Cr = 0.418688 (dR - dG) + 0.081312 (dR - dB)` (the same values up to rounding: each row of weights sums to 0),
 * so that a perturbation equal on the three channels has chroma exactly 0. All in float64, frame
 * by frame, from planar `[T,3,H,W]` float frames on the [0,1] scale as quality.ts takes them, so a
 * streamed attack pushes chunk after chunk ({@linkcode StructureAccumulator}); memory is one plane
 * of `d` and one of noise (reused for luma, Cb and Cr) and, for each of the six sets of statistics
 * (the three planes and their noise references), the per-column and per-row sums and one spectrum
 * tile (three float64 tiles of at most 256x256).
 *
 * On each plane:
 *
 * - Direction ratio: `mean |d(y,x+1) - d(y,x)| / mean |d(y+1,x) - d(y,x)|` over every pair of
 *   horizontal (resp. vertical) neighbours of every frame. 1 for isotropic noise; vertical stripes
 *   make it large, horizontal ones small.
 * - Strongest phase: for an axis (columns or rows), a period `p` in 2..16 (at most half the
 *   frame's width or height) and a phase `k < p`, the mean `|d|` of the columns (rows) with
 *   `x mod p == k`, divided by the mean `|d|` of all the others; the largest over axes, periods
 *   and phases, with where it is. 1 for noise. A multiple `m p` of a pattern's period never
 *   outranks `p`: its phase holds the same columns' mean but its "others" include `m - 1` copies
 *   of the strong phase. Equal ratios (infinite ones: a pattern that is zero outside one phase)
 *   go to the phase with the larger mean `|d|` (so period 4, not 2, for every fourth column),
 *   then to the first found (columns before rows, smaller periods first).
 * - Strongest spectral line: the 2-D amplitude spectrum of the plane on the central crop whose
 *   sides are the largest powers of two not above the frame's (at most 256, no window, radix-2
 *   FFT; the amplitude of a bin is the root of its power summed over frames); over the
 *   non-redundant half plane without DC (`tw * th / 2 + 1` bins for a `tw x th` tile: each bin
 *   with `fx > 0`, or `fx == 0` and `fy > 0`, or `fx == 1/2` and `fy >= 0`), the largest bin's
 *   amplitude over the median bin's, and the largest bin's frequency in cycles per pixel. For
 *   white noise every bin's power is an independent exponential variable (per frame), so the
 *   squared ratio of one frame is about `(ln M + 0.577) / ln 2` for `M` bins: the ratio is about
 *   4.0 on a 256x256 tile (15.8 squared), 3.1 on 32x32; averaging over frames brings it toward 1.
 *   A grating gives a huge line.
 *
 * Ratios with a zero denominator are `null` (infinite, as report.json writes PSNR); `0 / 0` (no
 * perturbation there at all) counts as 1, no structure. The targets ({@linkcode STRUCTURE_TARGETS})
 * are a direction ratio in 0.67..1.5, no phase above 1.25 and no line above 30 times the median.
 *
 * The noise reference (`structureNoise`) is the same statistics of i.i.d. Gaussian luma noise,
 * seeded (src/_random.ts), drawn per frame and scaled to the same mean `|d|` as that frame's luma
 * (not quantised). All three statistics are scale-free, so the reference is what pure noise of
 * that size and frame count gives: the values a reader compares against, since small frames or few
 * frames give noise itself phases and lines well above their large-video limits. Each chroma plane
 * has its own reference (`chromaNoise.cb`, `chromaNoise.cr`), scaled per frame to that plane's mean
 * `|d|`, drawn from a second stream of the same seed (a generator seeded with the first 53-bit
 * uniform of the luma stream's seed, each frame's Cb noise then its Cr noise), so the luma results
 * and the luma reference are those of the luma-only statistics, bit for bit.
 * {@linkcode chromaSummary} reduces the two chroma planes to the worse of each statistic.
 *
 * @module
 */

import { type SeededRandom, seededRandom } from "../_random.ts";

/**
 * BT.601 full-range chroma as differences of channels, so that equal channels give exactly 0:
 * `Cb = -cbRB (R - B) - cbGB (G - B)`, `Cr = crRG (R - G) + crRB (R - B)`. The one home of these
 * weights (the trainer's chroma penalty uses them too).
 *
 * @example
 * ```ts
 * import { CHROMA_WEIGHTS } from "./structure.ts";
 * const [r, g, b] = [1, 0, 0];
 * const cb = -CHROMA_WEIGHTS.cbRB * (r - b) - CHROMA_WEIGHTS.cbGB * (g - b); // -0.168736
 * ```
 */
export const CHROMA_WEIGHTS = {
  cbRB: 0.168736,
  cbGB: 0.331264,
  crRG: 0.418688,
  crRB: 0.081312,
} as const;

/** The targets of an imperceptible perturbation (issue #15). */
export const STRUCTURE_TARGETS: {
  readonly directionMin: number;
  readonly directionMax: number;
  readonly phaseMax: number;
  readonly lineMax: number;
} = { directionMin: 0.67, directionMax: 1.5, phaseMax: 1.25, lineMax: 30 };

/** The longest period the phase statistic tries. */
const MAX_PERIOD = 16;
/** The spectrum tile's largest side. */
const MAX_TILE = 256;

/** The statistics of one perturbation (or of its noise reference); see the module doc. */
export interface StructureStats {
  /** Frames measured. */
  frames: number;
  /** Mean `|d|` of the plane (luma, Cb or Cr) in 8-bit levels. */
  meanAbsLevels: number;
  /**
   * Direction ratio: mean |horizontal neighbour difference| / mean |vertical|; null when the
   * vertical one is 0 and the horizontal is not (infinite). Both means in 8-bit levels.
   */
  direction: { ratio: number | null; horizontalLevels: number; verticalLevels: number };
  /**
   * The strongest phase: mean |d| of the columns (rows) with index mod `period` == `phase` over
   * the mean |d| of the others (null: infinite).
   */
  phase: { ratio: number | null; axis: "column" | "row"; period: number; phase: number };
  /**
   * The strongest spectral line: its amplitude over the median bin's (null: infinite), its frequency
   * in cycles per pixel (`fx` in 0..0.5, `fy` in -0.5..0.5) and the tile's size.
   */
  line: { ratio: number | null; fx: number; fy: number; tileWidth: number; tileHeight: number };
  /** Whether each target is met ({@linkcode STRUCTURE_TARGETS}), and all three. */
  targets: { direction: boolean; phase: boolean; line: boolean; all: boolean };
}

/** The statistics of the two chroma planes of a perturbation (or of their noise references). */
export interface ChromaStructure {
  /** Of the Cb plane. */
  cb: StructureStats;
  /** Of the Cr plane. */
  cr: StructureStats;
}

/** The statistics of a perturbation and of its noise references. */
export interface StructureResult {
  /** The perturbation's luma. */
  structure: StructureStats;
  /** Those of i.i.d. noise with the same mean |luma d| per frame. */
  structureNoise: StructureStats;
  /** The perturbation's chroma planes. */
  chroma: ChromaStructure;
  /** Those of i.i.d. noise with the same mean |d| per frame as each chroma plane. */
  chromaNoise: ChromaStructure;
}

/** Options of {@linkcode StructureAccumulator} and {@linkcode perturbationStructure}. */
export interface StructureOptions {
  /** Seed of the noise reference (default 0). */
  seed?: number;
}

const pow2Floor = (n: number) => 2 ** Math.floor(Math.log2(n));
/** Quotient with `0 / 0 = 1`. */
const ratioOf = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b);
const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

/** Bit-reversal permutation and twiddles of one FFT size, cached. */
const fftPlans = new Map<number, { rev: Uint32Array; cos: Float64Array; sin: Float64Array }>();

function fftPlan(n: number) {
  let plan = fftPlans.get(n);
  if (!plan) {
    const bits = Math.log2(n);
    const rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      rev[i] = r;
    }
    const cos = new Float64Array(n / 2);
    const sin = new Float64Array(n / 2);
    for (let k = 0; k < n / 2; k++) {
      cos[k] = Math.cos((2 * Math.PI * k) / n);
      sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    plan = { rev, cos, sin };
    fftPlans.set(n, plan);
  }
  return plan;
}

/** In-place forward DFT `X[k] = sum x[j] e^{-2 pi i jk/n}` of `n` (a power of two) values. */
function fft(re: Float64Array, im: Float64Array, n: number): void {
  if (n === 1) return;
  const { rev, cos, sin } = fftPlan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let size = 2; size <= n; size *= 2) {
    const half = size / 2;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step];
        const wi = sin[k * step];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/** The statistics of a stream of planes (luma, Cb or Cr) of one size. */
class PlaneStructure {
  readonly h: number;
  readonly w: number;
  readonly th: number;
  readonly tw: number;
  frames = 0;
  absSum = 0;
  hSum = 0;
  vSum = 0;
  readonly colSum: Float64Array;
  readonly rowSum: Float64Array;
  readonly power: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly colRe: Float64Array;
  private readonly colIm: Float64Array;

  constructor(h: number, w: number) {
    this.h = h;
    this.w = w;
    this.th = Math.min(MAX_TILE, pow2Floor(h));
    this.tw = Math.min(MAX_TILE, pow2Floor(w));
    this.colSum = new Float64Array(w);
    this.rowSum = new Float64Array(h);
    const n = this.th * this.tw;
    this.power = new Float64Array(n);
    this.re = new Float64Array(n);
    this.im = new Float64Array(n);
    this.colRe = new Float64Array(this.th);
    this.colIm = new Float64Array(this.th);
  }

  push(d: Float64Array): void {
    const { h, w, th, tw, re, im, colRe, colIm, colSum, rowSum, power } = this;
    let abs = 0, hs = 0, vs = 0;
    for (let y = 0; y < h; y++) {
      const o = y * w;
      let row = 0;
      for (let x = 0; x < w; x++) {
        const v = d[o + x];
        const a = Math.abs(v);
        row += a;
        colSum[x] += a;
        if (x + 1 < w) hs += Math.abs(d[o + x + 1] - v);
        if (y + 1 < h) vs += Math.abs(d[o + w + x] - v);
      }
      rowSum[y] += row;
      abs += row;
    }
    this.absSum += abs;
    this.hSum += hs;
    this.vSum += vs;
    // The central th x tw crop: FFT of each row, then of each column.
    const y0 = (h - th) >> 1;
    const x0 = (w - tw) >> 1;
    for (let u = 0; u < th; u++) {
      const src = (y0 + u) * w + x0;
      const o = u * tw;
      for (let v = 0; v < tw; v++) {
        re[o + v] = d[src + v];
        im[o + v] = 0;
      }
      fft(re.subarray(o, o + tw), im.subarray(o, o + tw), tw);
    }
    for (let v = 0; v < tw; v++) {
      for (let u = 0; u < th; u++) {
        colRe[u] = re[u * tw + v];
        colIm[u] = im[u * tw + v];
      }
      fft(colRe, colIm, th);
      for (let u = 0; u < th; u++) power[u * tw + v] += colRe[u] * colRe[u] + colIm[u] * colIm[u];
    }
    this.frames++;
  }

  result(): StructureStats {
    const { h, w, th, tw, frames } = this;
    const hMean = this.hSum / (frames * h * (w - 1));
    const vMean = this.vSum / (frames * (h - 1) * w);
    const direction = ratioOf(hMean, vMean);
    // Phases: columns first, then rows; a later one must be strictly stronger to replace.
    let phase = { ratio: -1, axis: "column" as "column" | "row", period: 2, phase: 0 };
    let phaseMean = -1;
    for (const [axis, sums] of [["column", this.colSum], ["row", this.rowSum]] as const) {
      const len = sums.length;
      let total = 0;
      for (let i = 0; i < len; i++) total += sums[i];
      for (let p = 2; p <= Math.min(MAX_PERIOD, Math.floor(len / 2)); p++) {
        for (let k = 0; k < p; k++) {
          let s = 0, n = 0;
          for (let i = k; i < len; i += p) {
            s += sums[i];
            n++;
          }
          const r = ratioOf(s / n, (total - s) / (len - n));
          if (r > phase.ratio || (r === phase.ratio && s / n > phaseMean)) {
            phase = { ratio: r, axis, period: p, phase: k };
            phaseMean = s / n;
          }
        }
      }
    }
    // Spectral line over the non-redundant half plane without DC.
    const bins = new Float64Array((th * tw) / 2 + 1);
    let m = 0, best = -1, bu = 0, bv = 0;
    const halfW = tw / 2;
    const halfH = th / 2;
    for (let v = 0; v <= halfW; v++) {
      const edge = v === 0 || v === halfW;
      for (let u = 0; u < th; u++) {
        if (edge && (u > halfH || (v === 0 && u === 0))) continue;
        const p = this.power[u * tw + v];
        bins[m++] = p;
        if (p > best) {
          best = p;
          bu = u;
          bv = v;
        }
      }
    }
    if (m !== bins.length) {
      throw new Error(`structure: ${m} spectrum bins, expected ${bins.length}`);
    }
    bins.sort();
    const median = m % 2 ? bins[(m - 1) / 2] : (bins[m / 2 - 1] + bins[m / 2]) / 2;
    // Amplitudes: the square root of the frames' summed power per bin.
    const line = Math.sqrt(ratioOf(best, median));
    const t = STRUCTURE_TARGETS;
    const targets = {
      direction: direction >= t.directionMin && direction <= t.directionMax,
      phase: phase.ratio <= t.phaseMax,
      line: line <= t.lineMax,
    };
    return {
      frames,
      meanAbsLevels: (this.absSum / (frames * h * w)) * 255,
      direction: {
        ratio: finiteOrNull(direction),
        horizontalLevels: hMean * 255,
        verticalLevels: vMean * 255,
      },
      phase: { ...phase, ratio: finiteOrNull(phase.ratio) },
      line: {
        ratio: finiteOrNull(line),
        fx: bv / tw,
        fy: (bu <= halfH ? bu : bu - th) / th,
        tileWidth: tw,
        tileHeight: th,
      },
      targets: { ...targets, all: targets.direction && targets.phase && targets.line },
    };
  }
}

/** The chroma noise's stream: seeded with the first uniform of a fresh luma stream of `seed`. */
function chromaRandom(seed: number): SeededRandom {
  return seededRandom(seededRandom(seed).uniform() * 2 ** 53);
}

/** The six sets of statistics of one accumulator. */
interface Planes {
  luma: PlaneStructure;
  lumaNoise: PlaneStructure;
  cb: PlaneStructure;
  cbNoise: PlaneStructure;
  cr: PlaneStructure;
  crNoise: PlaneStructure;
}

/**
 * Accumulates the structure statistics of a perturbation, chunk by chunk: `push(clean, adv,
 * shape)` for each chunk of planar `[T,3,H,W]` frames (all chunks the same H and W, at least 4
 * each), then `result()` (callable at any point after the first push). See the module doc for the
 * definitions, the chroma planes and the noise references.
 *
 * @example
 * ```ts
 * import { StructureAccumulator } from "./structure.ts";
 * const shape = [2, 3, 32, 32] as const;
 * const clean = new Float32Array(2 * 3 * 32 * 32).fill(0.5);
 * // Vertical stripes: +1 level on every fourth column, on all three channels (grey: no chroma).
 * const adv = clean.map((v, i) => v + (i % 32 % 4 === 0 ? 1 / 255 : 0));
 * const acc = new StructureAccumulator({ seed: 1 });
 * acc.push(clean, adv, shape);
 * const { structure, structureNoise, chroma } = acc.result();
 * console.log(structure.direction.ratio); // null (infinite: no vertical differences)
 * console.log(structure.phase); // { ratio: null, axis: "column", period: 4, phase: 0 }
 * console.log(structure.targets.all, structureNoise.targets.direction); // false true
 * console.log(chroma.cb.meanAbsLevels, chroma.cr.targets.all); // 0 true
 * ```
 */
export class StructureAccumulator {
  private sets: Planes | null = null;
  private plane = new Float64Array(0);
  private noisePlane = new Float64Array(0);
  private readonly rng: SeededRandom;
  private readonly chromaRng: SeededRandom;

  /** A new accumulator; `seed` seeds the noise references (default 0). */
  constructor(options: StructureOptions = {}) {
    const seed = options.seed ?? 0;
    this.rng = seededRandom(seed);
    this.chromaRng = chromaRandom(seed);
  }

  /** Adds the frames of one chunk: `clean` and `adv` planar `[T,3,H,W]` on the [0,1] scale. */
  push(
    clean: ArrayLike<number>,
    adv: ArrayLike<number>,
    shape: readonly [number, number, number, number] | readonly number[],
  ): void {
    const fn = "StructureAccumulator.push";
    if (shape.length !== 4 || shape[1] !== 3) {
      throw new RangeError(`${fn}: shape must be [T,3,H,W], got [${shape.join(",")}]`);
    }
    const [t, , h, w] = shape;
    for (const [v, what] of [[t, "T"], [h, "H"], [w, "W"]] as const) {
      if (!Number.isInteger(v) || v <= 0) {
        throw new RangeError(`${fn}: ${what} must be a positive integer, got ${v}`);
      }
    }
    if (h < 4 || w < 4) throw new RangeError(`${fn}: frames must be at least 4x4, got ${w}x${h}`);
    const n = t * 3 * h * w;
    for (const [arr, name] of [[clean, "clean"], [adv, "adv"]] as const) {
      if (arr.length !== n) {
        throw new RangeError(
          `${fn}: ${name} has ${arr.length} elements, shape [${shape.join(",")}] needs ${n}`,
        );
      }
    }
    if (!this.sets) {
      const set = () => new PlaneStructure(h, w);
      this.sets = {
        luma: set(),
        lumaNoise: set(),
        cb: set(),
        cbNoise: set(),
        cr: set(),
        crNoise: set(),
      };
      this.plane = new Float64Array(h * w);
      this.noisePlane = new Float64Array(h * w);
    } else if (this.sets.luma.h !== h || this.sets.luma.w !== w) {
      const { luma } = this.sets;
      throw new RangeError(
        `${fn}: frames of ${w}x${h} after frames of ${luma.w}x${luma.h} (frame ${luma.frames})`,
      );
    }
    const sets = this.sets;
    const hw = h * w;
    const d = this.plane;
    for (let f = 0; f < t; f++) {
      const o = f * 3 * hw;
      let abs = 0;
      for (let p = 0; p < hw; p++) {
        const i = o + p;
        const v = 0.299 * (adv[i] - clean[i]) + 0.587 * (adv[i + hw] - clean[i + hw]) +
          0.114 * (adv[i + 2 * hw] - clean[i + 2 * hw]);
        if (!Number.isFinite(v)) {
          throw new RangeError(
            `${fn}: non-finite perturbation in frame ${sets.luma.frames} (chunk frame ${f}) at ` +
              `y ${Math.floor(p / w)}, x ${p % w}: ${v}`,
          );
        }
        d[p] = v;
        abs += Math.abs(v);
      }
      this.pushPlane(sets.luma, sets.lumaNoise, abs, this.rng);
      // Cb, then Cr (finite: the luma check above saw every channel).
      const { cbRB, cbGB, crRG, crRB } = CHROMA_WEIGHTS;
      abs = 0;
      for (let p = 0; p < hw; p++) {
        const i = o + p;
        const b = adv[i + 2 * hw] - clean[i + 2 * hw];
        const v = -cbRB * (adv[i] - clean[i] - b) - cbGB * (adv[i + hw] - clean[i + hw] - b);
        d[p] = v;
        abs += Math.abs(v);
      }
      this.pushPlane(sets.cb, sets.cbNoise, abs, this.chromaRng);
      abs = 0;
      for (let p = 0; p < hw; p++) {
        const i = o + p;
        const r = adv[i] - clean[i];
        const v = crRG * (r - (adv[i + hw] - clean[i + hw])) +
          crRB * (r - (adv[i + 2 * hw] - clean[i + 2 * hw]));
        d[p] = v;
        abs += Math.abs(v);
      }
      this.pushPlane(sets.cr, sets.crNoise, abs, this.chromaRng);
    }
  }

  /**
   * Pushes the plane now in `this.plane` (its sum of |d| is `abs`) into `set`, and a plane of
   * i.i.d. normals drawn from `rng`, scaled to the same mean |d|, into `noise`.
   */
  private pushPlane(
    set: PlaneStructure,
    noise: PlaneStructure,
    abs: number,
    rng: SeededRandom,
  ): void {
    const z = this.noisePlane;
    const hw = z.length;
    let zAbs = 0;
    for (let p = 0; p < hw; p++) {
      z[p] = rng.normal();
      zAbs += Math.abs(z[p]);
    }
    const scale = zAbs > 0 ? abs / zAbs : 0;
    for (let p = 0; p < hw; p++) z[p] *= scale;
    set.push(this.plane);
    noise.push(z);
  }

  /** The statistics of the frames pushed so far, and of their noise references. */
  result(): StructureResult {
    if (!this.sets) throw new Error("StructureAccumulator.result: no frames pushed");
    const s = this.sets;
    return {
      structure: s.luma.result(),
      structureNoise: s.lumaNoise.result(),
      chroma: { cb: s.cb.result(), cr: s.cr.result() },
      chromaNoise: { cb: s.cbNoise.result(), cr: s.crNoise.result() },
    };
  }
}

/** The two chroma planes' statistics reduced to the worse of each (see {@linkcode chromaSummary}). */
export interface ChromaSummary {
  /** The direction ratio further from 1 in log terms (null: infinite). */
  direction: number | null;
  /** The larger strongest-phase ratio (null: infinite). */
  phase: number | null;
  /** The larger strongest-line ratio (null: infinite). */
  line: number | null;
  /** Whether both planes meet all three targets. */
  ok: boolean;
}

/**
 * The worse of the Cb and Cr statistics, one number per statistic: the direction ratio further
 * from 1 in log terms (`|ln r|`; null, infinite, is furthest, and 0 as far), the larger phase and
 * line ratios (null counting as infinite), and whether both planes meet all three targets. On a
 * tie Cb's value is kept.
 *
 * @example
 * ```ts
 * import { chromaSummary, perturbationStructure } from "./structure.ts";
 * const shape = [1, 3, 16, 16] as const;
 * const clean = new Float32Array(3 * 256).fill(0.5);
 * // +1 level of red on every other column: Cb and Cr stripes.
 * const adv = clean.map((v, i) => v + (i < 256 && i % 2 === 0 ? 1 / 255 : 0));
 * const s = chromaSummary(perturbationStructure(clean, adv, shape).chroma);
 * console.log(s.direction, s.ok); // null false (nothing changes down a column)
 * ```
 */
export function chromaSummary(chroma: ChromaStructure): ChromaSummary {
  const { cb, cr } = chroma;
  const inf = (v: number | null) => v ?? Infinity;
  const far = (v: number | null) => Math.abs(Math.log(inf(v)));
  const larger = (a: number | null, b: number | null) => (inf(b) > inf(a) ? b : a);
  return {
    direction: far(cr.direction.ratio) > far(cb.direction.ratio)
      ? cr.direction.ratio
      : cb.direction.ratio,
    phase: larger(cb.phase.ratio, cr.phase.ratio),
    line: larger(cb.line.ratio, cr.line.ratio),
    ok: cb.targets.all && cr.targets.all,
  };
}

/**
 * The structure statistics of a whole perturbation at once (see {@linkcode StructureAccumulator}).
 *
 * @example
 * ```ts
 * import { perturbationStructure } from "./structure.ts";
 * const shape = [1, 3, 64, 64] as const;
 * const clean = new Float32Array(3 * 64 * 64).fill(0.5);
 * // A sinusoidal grating of period 8 columns, 2 levels.
 * const adv = clean.map((v, i) => v + (2 / 255) * Math.sin((2 * Math.PI * (i % 64)) / 8));
 * const { structure, chroma } = perturbationStructure(clean, adv, shape);
 * console.log(structure.line.fx); // 0.125 (and a huge, possibly infinite, ratio)
 * console.log(chroma.cr.meanAbsLevels); // 0 (the same on the three channels: no chroma)
 * ```
 */
export function perturbationStructure(
  clean: ArrayLike<number>,
  adv: ArrayLike<number>,
  shape: readonly [number, number, number, number] | readonly number[],
  options: StructureOptions = {},
): StructureResult {
  const acc = new StructureAccumulator(options);
  acc.push(clean, adv, shape);
  return acc.result();
}
