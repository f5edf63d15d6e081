/**
 * FAST-VQA's sampling (Wu et al. 2022; FasterVQA and DOVER use the same code): which frames a
 * clip is made of, and the "fragments", mini-patches cut from a grid over each frame and
 * spliced together, as the authors' `FragmentSampleFrames` / `UnifiedFrameSampler` and
 * `get_spatial_fragments` (fallback "upsample") do (read for the protocol; our own code).
 *
 * - **Frames** ({@link sampleFrameIndices}): a video of `T` frames is cut into `segments` equal
 *   parts; from each, `segmentFrames` frames every `interval` frames from a random start within
 *   the part (0 when the part is too short), all indices modulo `T`; the whole is repeated
 *   `repeats` times. FAST-VQA-B: 4 segments of 32 frames (the four clips); FasterVQA: 8 segments
 *   of 4 frames (one clip of 32); DOVER's technical view: 3 of 32; its aesthetic view: 32 of 1.
 * - **Fragments** ({@link fragmentView}): the sampled frames `[N, 3, H, W]` become
 *   `[N, 3, fh·sh, fw·sw]`. The grid is `fh x fw` cells of `H // fh x W // fw` pixels, its
 *   starts `min(i · (H // fh), H - sh)`; each cell gives an `sh x sw` patch at a random offset
 *   within the cell (0 when the cell is no larger than the patch), the same for `aligned`
 *   consecutive frames. When the frames are smaller than the fragment grid (`fh·sh x fw·sw`), they
 *   are first upsampled by `1 / ratio`, `ratio = min(H / (fh·sh), W / (fw·sw))`, with torch's
 *   `interpolate(scale_factor)` (bilinear, output `floor(size / ratio)`, coordinates scaled by
 *   `ratio`), while the grid keeps the original size's cells, as the authors' code computes it.
 * - **Randomness**: the authors draw the offsets with NumPy at every call; here a
 *   {@link FragmentPlan} holds them, drawn once from a seed ({@link fragmentPlan}), so that a
 *   clean and an adversarial video are looked at through the same fragments and gradients are
 *   exact.
 *
 * The sampling is differentiable: the fragments are copies (slices) of the frames' pixels, and
 * the upsampling is linear, so the gradient of a score reaches the full-resolution frames.
 *
 * @module
 */

import { type SeededRandom, seededRandom } from "../../_random.ts";
import { concat, resize, slice } from "../../nn/mod.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/**
 * How a view samples frames in time (see the module's documentation).
 *
 * @example
 * ```ts
 * import type { TemporalSampling } from "./fragments.ts";
 * const fastVqa: TemporalSampling = { segments: 4, segmentFrames: 32, interval: 2, repeats: 1 };
 * ```
 */
export interface TemporalSampling {
  /** Equal parts the video is cut into. */
  segments: number;
  /** Frames taken from each part. */
  segmentFrames: number;
  /** Step between them. */
  interval: number;
  /** Times the whole is drawn. */
  repeats: number;
}

/** The fragment grid of a view (see the module's documentation). */
export interface FragmentGrid {
  /** Cells `[fh, fw]` ([7, 7]). */
  fragments: [number, number];
  /** Patch size `[sh, sw]` ([32, 32]). */
  fragmentSize: [number, number];
  /** Consecutive sampled frames sharing one set of offsets (32; FasterVQA 8). */
  aligned: number;
}

/**
 * The random draws of one view: the frame indices and the patch offsets
 * `rndH[i][j][g]`, `rndW[i][j][g]` of cell (i, j) for group g of `aligned` frames.
 */
export interface FragmentPlan {
  /** Sampled frame indices (`repeats · segments · segmentFrames` of them). */
  indices: number[];
  /** Row offsets within the cells, `[fh][fw][groups]` (empty for a view without fragments). */
  rndH: number[][][];
  /** Column offsets within the cells, `[fh][fw][groups]`. */
  rndW: number[][][];
}

/** `floor(u · n)` for a uniform draw: an integer in [0, n). */
function randInt(r: SeededRandom, n: number): number {
  return Math.min(n - 1, Math.floor(r.uniform() * n));
}

/**
 * The sampled frame indices of a `t`-frame video (see the module's documentation).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { seededRandom } from "../../_random.ts";
 * import { sampleFrameIndices } from "./fragments.ts";
 * const s = { segments: 2, segmentFrames: 3, interval: 2, repeats: 1 };
 * assert.deepEqual(sampleFrameIndices(8, s, seededRandom(1)), [0, 2, 4, 4, 6, 0]);
 * ```
 */
export function sampleFrameIndices(t: number, s: TemporalSampling, r: SeededRandom): number[] {
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`frame sampling: ${t} frames`);
  const part = Math.floor(t / s.segments);
  const span = s.segmentFrames * s.interval;
  const out: number[] = [];
  for (let rep = 0; rep < s.repeats; rep++) {
    const starts = Array.from(
      { length: s.segments },
      () => part > span ? randInt(r, part - span) : 0,
    );
    for (let k = 0; k < s.segments; k++) {
      for (let f = 0; f < s.segmentFrames; f++) {
        out.push((part * k + starts[k] + f * s.interval) % t);
      }
    }
  }
  return out;
}

/** The grid starts `min(i · (size // n), size - patch)` of one axis. */
function gridStarts(size: number, n: number, patch: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.min(Math.floor(size / n) * i, size - patch));
}

/**
 * Checks that frames of `height x width` can be cut into the grid (at least one patch tall and
 * wide, as the authors' slicing needs).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { checkFragmentFrames } from "./fragments.ts";
 * const grid = { fragments: [7, 7] as [number, number], fragmentSize: [32, 32] as [number, number], aligned: 32 };
 * assert.throws(() => checkFragmentFrames("fast-vqa", 24, 64, grid), /smaller than one 32x32 fragment/);
 * ```
 */
export function checkFragmentFrames(
  who: string,
  height: number,
  width: number,
  g: FragmentGrid,
): void {
  const [sh, sw] = g.fragmentSize;
  if (height < sh || width < sw) {
    throw new RangeError(
      `${who}: frames of ${width}x${height} are smaller than one ${sw}x${sh} fragment`,
    );
  }
}

/**
 * Draws a view's plan for a `t`-frame video of `height x width` from `seed`: the frame indices,
 * then the offsets, in the authors' order. A grid of null gives a plan without fragments (a
 * resized view such as DOVER's aesthetic one).
 *
 * @example
 * ```ts
 * import { fragmentPlan } from "./fragments.ts";
 * const plan = fragmentPlan(40, 360, 640, {
 *   sampling: { segments: 1, segmentFrames: 8, interval: 2, repeats: 1 },
 *   grid: { fragments: [7, 7], fragmentSize: [32, 32], aligned: 8 },
 *   seed: 1,
 * });
 * console.log(plan.indices.length, plan.rndH[0][0].length); // 8 1
 * ```
 */
export function fragmentPlan(
  t: number,
  height: number,
  width: number,
  options: { sampling: TemporalSampling; grid: FragmentGrid | null; seed: number },
): FragmentPlan {
  const r = seededRandom(options.seed);
  const indices = sampleFrameIndices(t, options.sampling, r);
  const g = options.grid;
  if (!g) return { indices, rndH: [], rndW: [] };
  if (indices.length % g.aligned !== 0) {
    throw new RangeError(
      `fragments: ${indices.length} sampled frames are not a multiple of aligned ${g.aligned}`,
    );
  }
  const groups = indices.length / g.aligned;
  const [fh, fw] = g.fragments;
  const [sh, sw] = g.fragmentSize;
  const draw = (cell: number, patch: number) =>
    Array.from(
      { length: fh },
      () =>
        Array.from(
          { length: fw },
          () => Array.from({ length: groups }, () => cell > patch ? randInt(r, cell - patch) : 0),
        ),
    );
  const rndH = draw(Math.floor(height / fh), sh);
  const rndW = draw(Math.floor(width / fw), sw);
  return { indices, rndH, rndW };
}

/**
 * Cuts the fragments of single frames under a plan, for frames of one size: {@link FragmentCutter.frame}
 * upsamples a frame when the protocol does, {@link FragmentCutter.cut} gives sampled frame
 * `n`'s fragments from it. {@link fragmentView} and the victims' streams use it.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { FragmentCutter, fragmentPlan } from "./fragments.ts";
 * await initGpu();
 * const grid = { fragments: [2, 2] as [number, number], fragmentSize: [8, 8] as [number, number], aligned: 1 };
 * const plan = fragmentPlan(3, 12, 30, {
 *   sampling: { segments: 1, segmentFrames: 1, interval: 1, repeats: 1 }, grid, seed: 3,
 * });
 * const cutter = new FragmentCutter(12, 30, plan, grid);
 * const f = cutter.frame(tensor(new Float32Array(3 * 12 * 30).fill(0.5), [1, 3, 12, 30]));
 * console.log(f.shape, cutter.cut(f, 0).shape); // [1, 3, 16, 40] [1, 3, 16, 16]
 * ```
 */
export class FragmentCutter {
  readonly #plan: FragmentPlan;
  readonly #g: FragmentGrid;
  readonly #up: { height: number; width: number; ratio: number } | null;
  readonly #hs: number[];
  readonly #ws: number[];
  readonly #size: [number, number];

  /** A cutter for frames of `height x width` (checked against the grid). */
  constructor(height: number, width: number, plan: FragmentPlan, g: FragmentGrid) {
    checkFragmentFrames("fragments", height, width, g);
    const [fh, fw] = g.fragments;
    const [sh, sw] = g.fragmentSize;
    const groups = plan.indices.length / g.aligned;
    for (const [name, rnd] of [["rndH", plan.rndH], ["rndW", plan.rndW]] as const) {
      if (
        rnd.length !== fh ||
        rnd.some((row) => row.length !== fw || row.some((c) => c.length !== groups))
      ) {
        throw new RangeError(`fragments: plan.${name} must be [${fh}][${fw}][${groups}]`);
      }
    }
    const ratio = Math.min(height / (fh * sh), width / (fw * sw));
    this.#up = ratio < 1
      ? { height: Math.floor(height * (1 / ratio)), width: Math.floor(width * (1 / ratio)), ratio }
      : null;
    this.#hs = gridStarts(height, fh, sh);
    this.#ws = gridStarts(width, fw, sw);
    this.#plan = plan;
    this.#g = g;
    this.#size = [height, width];
  }

  /** A frame `[1, 3, H, W]` as the fragments are cut from it (upsampled when too small). */
  frame(f: Tensor): Tensor {
    if (f.rank !== 4 || f.shape[0] !== 1 || f.shape[1] !== 3) {
      throw new RangeError(`fragments: a frame must be [1, 3, H, W], got [${f.shape}]`);
    }
    if (f.shape[2] !== this.#size[0] || f.shape[3] !== this.#size[1]) {
      throw new RangeError(
        `fragments: a ${f.shape[3]}x${f.shape[2]} frame for a plan of ${this.#size[1]}x${
          this.#size[0]
        }`,
      );
    }
    const up = this.#up;
    if (!up) return f;
    return resize(f, {
      height: up.height,
      width: up.width,
      mode: "bilinear",
      scale: [up.ratio, up.ratio],
    });
  }

  /** Sampled frame `n`'s fragments `[1, 3, fh·sh, fw·sw]` from its {@link FragmentCutter.frame}. */
  cut(f: Tensor, n: number): Tensor {
    const g = this.#g;
    const [fh, fw] = g.fragments;
    const [sh, sw] = g.fragmentSize;
    const grp = Math.floor(n / g.aligned);
    const rows: Tensor[] = [];
    for (let i = 0; i < fh; i++) {
      const cells: Tensor[] = [];
      for (let j = 0; j < fw; j++) {
        const y = this.#hs[i] + this.#plan.rndH[i][j][grp];
        const x = this.#ws[j] + this.#plan.rndW[i][j][grp];
        cells.push(
          slice(f, [{ axis: 2, start: y, end: y + sh }, { axis: 3, start: x, end: x + sw }]),
        );
      }
      rows.push(cells.length === 1 ? cells[0] : concat(cells, 3));
    }
    return rows.length === 1 ? rows[0] : concat(rows, 2);
  }
}

/**
 * The fragments `[N, 3, fh·sh, fw·sw]` of frames `[T, 3, H, W]` under a plan (see the module's
 * documentation). Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { fragmentPlan, fragmentView } from "./fragments.ts";
 * await initGpu();
 * const grid = { fragments: [2, 2] as [number, number], fragmentSize: [8, 8] as [number, number], aligned: 2 };
 * const plan = fragmentPlan(4, 20, 30, {
 *   sampling: { segments: 1, segmentFrames: 2, interval: 2, repeats: 1 }, grid, seed: 3,
 * });
 * const frames = tensor(new Float32Array(4 * 3 * 20 * 30).fill(0.5), [4, 3, 20, 30]);
 * console.log(fragmentView(frames, plan, grid).shape); // [2, 3, 16, 16]
 * ```
 */
export function fragmentView(frames: Tensor, plan: FragmentPlan, g: FragmentGrid): Tensor {
  if (frames.rank !== 4 || frames.shape[1] !== 3) {
    throw new RangeError(`fragments: frames must be [T, 3, H, W], got [${frames.shape}]`);
  }
  const [t, , h, w] = frames.shape;
  const cutter = new FragmentCutter(h, w, plan, g);
  const byIndex = new Map<number, Tensor>();
  const out = plan.indices.map((index, n) => {
    if (!Number.isInteger(index) || index < 0 || index >= t) {
      throw new RangeError(`fragments: plan frame ${index} outside the clip's ${t} frames`);
    }
    let f = byIndex.get(index);
    if (!f) {
      f = cutter.frame(slice(frames, { axis: 0, start: index, end: index + 1 }));
      byIndex.set(index, f);
    }
    return cutter.cut(f, n);
  });
  return out.length === 1 ? out[0] : concat(out, 0);
}
