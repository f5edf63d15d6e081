/**
 * Training an STQA-Net generator against one frozen victim on the proxy dataset's train split
 * (the losses and the penalty schedule are described in docs/attack.md): Adam on seeded
 * mini-batches of clips held in memory with their JND maps, the score-reversed boundary loss
 * (untargeted) or the up/down targets (two-branch) plus a weight on `mean(A^2)`, with the shared
 * training loop (`trainLoop` in loop.ts: atomic checkpoints that `resume` continues from, and a
 * clear stop on a non-finite loss that keeps the last good checkpoint). At the end the generator
 * attacks the test split (8-bit output, eps as trained) and the results go into the JSON beside
 * the weights.
 *
 * @module
 */

import { dirname, join } from "path";
import { z } from "zod";
import { writeFileAtomic } from "../_fs.ts";
import { formatSeconds } from "../_progress.ts";
import { loadManifest } from "../data/manifest.ts";
import { correlationReport } from "../metrics/correlation.ts";
import { perturbationStats, videoQuality } from "../metrics/quality.ts";
import { CHROMA_WEIGHTS } from "../metrics/structure.ts";
import { computeJnd } from "../jnd/mod.ts";
import { DEFAULT_VIDEO_JND_MODEL, type JndModel } from "../jnd/models.ts";
import {
  bundledGeneratorName,
  checkGeneratorConfig,
  type Generator,
  saveGenerator,
  stqaNetSize,
} from "../models/generator_io.ts";
import { type GeneratorVariant, StqaNet } from "../models/stqa_net.ts";
import { loadVictim } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { prepareCheckpointDir, prepareWeightsOutput } from "../io/checkpoint.ts";
import { decodeVictimClips, splitItems } from "./clips.ts";
import {
  checkpointStateSchema,
  finiteNumber,
  NonFiniteLossError,
  readRunCheckpoint,
  recentLoss,
  round4,
  type RunCheckpoint,
  trainLoop,
  type TrainProgress,
} from "./loop.ts";
import {
  add,
  avgPool2d,
  concat,
  div,
  mean,
  mul,
  slice,
  square,
  stack,
  sub,
  sum,
} from "../nn/mod.ts";
import { Adam } from "../optim/optimizers.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { attackTarget, boundaryLoss, weightPenalty } from "../attack/losses.ts";
import {
  attackWithGenerator,
  branchFor,
  generatorPerturb,
  quantizeInJnd,
  steerable,
} from "../attack/stqa.ts";
import { seededRandom } from "../_random.ts";

/** A clip in memory with its JND maps and the victim's clean score. */
export interface TrainClip {
  /** Frames `[T,3,H,W]`. */
  frames: Tensor;
  /** JND maps `[T,1,H,W]`. */
  jnd: Tensor;
  /** The victim's score of the clean clip. */
  clean: number;
  /** The label (MOS). */
  label: number;
  /** Path, for messages. */
  path: string;
}

/** Options of {@link trainGenerator}. */
export interface TrainGeneratorOptions {
  /** The victim: a bundled name or a path (default `vsfa-mini`), or a published family. */
  victim?: string;
  /**
   * A published victim's weight files as its authors publish them (with `victim` `vsfa`,
   * `mdtvsfa` or `simplevqa`; see `loadVictim`). Recorded in the checkpoint, so a resumed run
   * uses the same files.
   */
  victimWeights?: string[];
  /** `untargeted` (default) or `two-branch`. */
  variant?: GeneratorVariant;
  /** The proxy manifest (default `cache/proxy/manifest.json`). */
  manifest?: string;
  /**
   * Output stem (default `data/models/stqa-<victim>` (two-branch), `...-signed` or `...-paper`
   * (untargeted), the bundled generators: pass
   * `overwrite` to replace them).
   */
  out?: string;
  /** Optimiser steps (default 300). */
  steps?: number;
  /** Clips per step (default 4). */
  batch?: number;
  /** Peak learning rate, cosine decay to a tenth (default 1e-3). */
  lr?: number;
  /** The eps the perturbation is trained at (default 1). */
  eps?: number;
  /**
   * Weight of `mean(A^2)` in the loss at the start (default 1). It decays linearly to
   * `penaltyEnd` over the first `penaltyDecay` of the steps: a large weight at first keeps the
   * tanh out of saturation while the network learns where perturbation pays, then the maps grow
   * toward the full JND budget along that direction. (With a small constant weight the maps
   * saturate within a few steps on a global pattern and learning stalls; see the README.)
   */
  penalty?: number;
  /** The weight of `mean(A^2)` after the decay (default 0.01). */
  penaltyEnd?: number;
  /**
   * Grid shifts: each step the adversarial clips are cropped by `shift` pixels in each axis, at
   * an offset drawn in `0..shift` per axis, before the victim scores them, so the generator's
   * output grid meets the victim's stride-2 sampling grids at a random phase and a periodic
   * pattern locked to them does not pay (default 0: no shift).
   */
  shift?: number;
  /**
   * Weight of the isotropy penalty `(ln Ex - ln Ey)^2` on the maps, `Ex` and `Ey` the mean squared
   * differences of horizontal and vertical neighbours (stripes make it large; default 0).
   */
  isotropy?: number;
  /**
   * Weight of the lattice penalty ({@link latticePenalty}: the share of the maps' energy on the
   * period-4 lattice of the generator's quarter-resolution grid; a grid or a period-4 stripe
   * makes it about 1, noise about 0; default 0).
   */
  lattice?: number;
  /**
   * Weight of the low-pass penalty ({@link lowpassPenalty}: the share of the maps' energy in
   * their 4x4 block means; smooth fields and blobs make it about 1, noise 1/16; default 0).
   */
  lowpass?: number;
  /**
   * Multiplier of the three structure penalties applied again to the maps' chroma combinations
   * ({@link chromaMaps}: BT.601 Cb and Cr of the three channels), so that colour stripes cost as
   * luma ones do (default 0: the penalties see the channels only).
   */
  chroma?: number;
  /** Fraction of the steps over which the weight decays (default 0.5). */
  penaltyDecay?: number;
  /** JND model (default `namm-st`). */
  jnd?: JndModel;
  /** Seed of the weights and the batch order (default 1). */
  seed?: number;
  /** Network config overrides (see `StqaNetConfigSchema`). */
  config?: Record<string, unknown>;
  /** Steps between checkpoints (default 25). */
  checkpointEvery?: number;
  /** Checkpoint folder (default `cache/generators/<out's name>`). */
  checkpointDir?: string;
  /** Continue from the checkpoint. */
  resume?: boolean;
  /**
   * Replace a generator already at `<out>.safetensors` / `<out>.json` (default false: an
   * existing file is refused before anything is loaded).
   */
  overwrite?: boolean;
  /** Stop after this many steps in this run (for tests of resuming). */
  stopAfter?: number;
  /** Use at most this many training clips, evenly spaced through the split (default all). */
  maxClips?: number;
  /**
   * A second proxy manifest of larger clips (e.g. `deno task data --size 480`): each step,
   * `cropShare` of the batch are crops of its training clips, each a random window of the main
   * manifest's clip size (JND maps computed on the whole frames, then cropped), so that the
   * generator also learns the pixel statistics of full-resolution video, where a generator trained
   * only on small whole-image clips loses most of its effect. The clips are read at their own
   * size whatever the victim's trained size (as `deno task attack` gives the victim a video).
   * Signed and two-branch variants only (the untargeted target needs each crop's clean score).
   * Default: none.
   */
  crops?: string;
  /** Share of each batch drawn from `crops` (default 0.5; rounded to whole clips). */
  cropShare?: number;
  /**
   * Pixels of context around each crop (default 0): the window is cut that much larger on every
   * side, the generator runs on all of it and the victim scores only its centre, so that the
   * generator is trained on what it does inside a large frame, not near a border (where zero
   * padding and the per-frame centring of its maps differ).
   */
  cropContext?: number;
  /**
   * Validate every this many steps (and at the last): the generator attacks `valClips` clips
   * of the manifest's val split as after training ({@link evaluateGenerator}), and the point
   * goes to the progress output, to `<checkpointDir>/validation.jsonl` (kept across a resume)
   * and to the JSON's `training.validation`: the curve of validation strength against steps.
   * Default 0: none.
   */
  valEvery?: number;
  /** Val clips, evenly spaced through the split (default 24). */
  valClips?: number;
  /** Attack at most this many test clips, evenly spaced, after training (default all). */
  testClips?: number;
  /** The command line recorded in the JSON. */
  command?: string;
  /** Progress callback (default: a progress line on stderr). */
  onProgress?: (p: TrainProgress) => void;
}

/** The generator's results on the test split. */
export interface GeneratorTestResult {
  /** Test clips. */
  n: number;
  /** eps of the attack. */
  eps: number;
  /** SRCC of the clean scores against the labels. */
  srccClean: number;
  /** SRCC of the adversarial scores against the labels (untargeted). */
  srccAdv: number;
  /** PLCC (logistic) clean and adversarial. */
  plccClean: number;
  /** PLCC (logistic) of the adversarial scores. */
  plccAdv: number;
  /** Mean |score change|. */
  meanScoreChange: number;
  /**
   * Mean score change toward each clip's untargeted target (the score-reversed boundary at the
   * generator's median): positive when the attack moves scores the way it should.
   */
  meanTowardTarget: number;
  /** Mean over clips of each clip's PSNR (dB, from its mean MSE) of the 8-bit adversarial clip. */
  meanPsnr: number;
  /** Mean SSIM (luma) of the 8-bit adversarial clips against the clean ones. */
  meanSsim: number;
  /** Share of values with |d| beyond eps * J (must be 0). */
  beyondJnd: number;
  /** Mean |d| in 8-bit levels. */
  meanAbsLevels: number;
  /** Two-branch: share of clips whose up version scores above the clean one. */
  upAbove?: number;
  /** Two-branch: share of clips whose down version scores below the clean one. */
  downBelow?: number;
  /** Two-branch: share of clips with both. */
  bothRight?: number;
  /** Two-branch: mean score change of the up branch (positive: up). */
  meanUpChange?: number;
  /** Two-branch: mean score change of the down branch, negated (positive: down). */
  meanDownChange?: number;
}

/** A point of the validation curve ({@link TrainGeneratorOptions.valEvery}). */
export interface ValidationPoint {
  /** Steps done. */
  step: number;
  /** Val clips attacked. */
  n: number;
  /** Mean change toward each clip's untargeted target. */
  meanTowardTarget: number;
  /** Mean |score change| (untargeted). */
  meanScoreChange: number;
  /** Two-branch or signed: the mean up move and the mean down move. */
  meanUpChange?: number;
  /** See `meanUpChange`. */
  meanDownChange?: number;
  /** Mean PSNR (dB) of the 8-bit untargeted clips. */
  meanPsnr: number;
}

/**
 * The generator's training loss became NaN or infinite (a {@link NonFiniteLossError}); the
 * message names the step and the checkpoint.
 *
 * @example
 * ```ts
 * import { GeneratorLossError } from "./generator.ts";
 * const e = new GeneratorLossError("the loss is NaN at step 3");
 * console.log(e.name); // "GeneratorLossError"
 * ```
 */
export class GeneratorLossError extends NonFiniteLossError {
  /** Creates the error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "GeneratorLossError";
  }
}

/**
 * Reads a split's clips for a victim with their JND maps and clean scores.
 *
 * @example
 * ```ts
 * import { initGpu, loadVictim } from "../../mod.ts";
 * import { loadTrainClips } from "./generator.ts";
 * await initGpu();
 * const v = await loadVictim("vsfa-mini");
 * const clips = await loadTrainClips(v, "cache/proxy/manifest.json", "test");
 * ```
 */
export async function loadTrainClips(
  victim: Victim,
  manifest: string,
  split: "train" | "val" | "test",
  options: {
    jnd?: JndModel;
    maxClips?: number;
    /** Score each clean clip (default true; `clean` is NaN without). */
    score?: boolean;
    /** Read the clips at their own size, not the victim's trained size (default false). */
    native?: boolean;
  } = {},
): Promise<TrainClip[]> {
  const { items, stored } = await splitItems(manifest, split);
  if (!items.length) throw new Error(`${manifest}: the ${split} split is empty`);
  const max = options.maxClips ?? items.length;
  const picked = max >= items.length
    ? items
    : Array.from({ length: max }, (_, k) => items[Math.floor((k * items.length) / max)]);
  const clips: TrainClip[] = new Array(picked.length);
  await decodeVictimClips(victim, picked, stored, async (k, frames) => {
    frames.keep();
    const { jnd, score } = tidy(() =>
      noGrad(() => ({
        jnd: computeJnd(frames, { model: options.jnd ?? DEFAULT_VIDEO_JND_MODEL }).keep(),
        score: options.score === false ? null : victim.score(frames).keep(),
      }))
    );
    const clean = score ? (await score.read())[0] : NaN;
    score?.dispose();
    clips[k] = { frames, jnd, clean, label: picked[k].mos, path: picked[k].path };
  }, { native: options.native });
  return clips;
}

/** Frees the tensors of loaded clips.
 *
 * @example
 * ```ts
 * import { disposeClips } from "./generator.ts";
 * disposeClips([]);
 * ```
 */
export function disposeClips(clips: TrainClip[]): void {
  for (const c of clips) {
    c.frames.dispose();
    c.jnd.dispose();
  }
}

/**
 * Adversarial clips `[B,T,3,H,W]` cropped by `shift` pixels in each axis at `offset` `[dy, dx]`
 * (the training's grid shifts; the clips as they are for `shift` 0).
 */
function shifted(adv: Tensor, shift: number, offset: number[]): Tensor {
  if (shift === 0) return adv;
  const [h, w] = adv.shape.slice(-2);
  return slice(adv, [
    { axis: 3, start: offset[0], end: offset[0] + h - shift },
    { axis: 4, start: offset[1], end: offset[1] + w - shift },
  ]);
}

/**
 * The validation curve written so far (`validation.jsonl` in the checkpoint folder) when a run
 * resumes; otherwise an empty one (a fresh run starts a new curve).
 */
async function readCurve(file: string, resume: boolean): Promise<ValidationPoint[]> {
  if (!resume) return [];
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l) as ValidationPoint;
    } catch {
      throw new Error(`${file}: line ${i + 1} is not JSON`);
    }
  });
}

/**
 * Reads the training clips of a manifest of larger clips at their own size for crops of `shape`'s
 * size (`[T,3,h,w]`, the main clips'): JND maps on the whole frames, no clean scores. Refused
 * (naming the manifest and the sizes) when they are no larger than the crop.
 */
async function loadCropClips(
  victim: Victim,
  manifest: string,
  shape: readonly number[],
  context: number,
): Promise<TrainClip[]> {
  const clips = await loadTrainClips(victim, manifest, "train", { score: false, native: true });
  const [t, , h, w] = shape;
  const [T, , H, W] = clips[0].frames.shape;
  const fail = (msg: string) => {
    disposeClips(clips);
    return new RangeError(`${manifest}: ${msg}`);
  };
  if (T < t || H < h || W < w || (H === h && W === w)) {
    throw fail(
      `its clips are ${T}x${H}x${W} (frames x height x width), not larger than the main clips' ${t}x${h}x${w}`,
    );
  }
  if (H < h + 2 * context || W < w + 2 * context) {
    throw fail(
      `a window of ${t}x${h + 2 * context}x${
        w + 2 * context
      } (the main clips' size plus cropContext ${context} on every side) is larger than the clip's ${T}x${H}x${W}`,
    );
  }
  console.error(
    `${victim.name}: ${clips.length} clips of ${T}x${H}x${W} for crops from ${manifest}`,
  );
  return clips;
}

/**
 * A random window of `shape`'s size (`[T,3,h,w]`) of a clip: frames and JND maps, the offsets
 * drawn from `rng` (frames, then rows, then columns; each `floor(rng() * (extent - size + 1))`).
 * The crops are new tensors (tidy-scoped); the clip's other fields are kept.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { cropClip } from "./generator.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
 * const jnd = tensor(new Float32Array(2 * 4 * 4), [2, 1, 4, 4]);
 * const c = cropClip({ frames, jnd, clean: NaN, label: 3, path: "x" }, [1, 3, 2, 2], () => 0.5);
 * console.log(c.frames.shape); // [1, 3, 2, 2]
 * ```
 */
export function cropClip(c: TrainClip, shape: readonly number[], rng: () => number): TrainClip {
  const [t, , h, w] = shape;
  const [T, , H, W] = c.frames.shape;
  const f = Math.floor(rng() * (T - t + 1));
  const y = Math.floor(rng() * (H - h + 1));
  const x = Math.floor(rng() * (W - w + 1));
  const window = (v: Tensor) =>
    slice(v, [
      { axis: 0, start: f, end: f + t },
      { axis: 2, start: y, end: y + h },
      { axis: 3, start: x, end: x + w },
    ]);
  return { ...c, frames: window(c.frames), jnd: window(c.jnd) };
}

/**
 * `(Ex - Ey)^2` of maps `[..., H, W]`: `Ex` and `Ey` the mean squared differences of horizontal
 * and vertical neighbours; 0 for isotropic maps, up to 16 for full-amplitude stripes. (Absolute,
 * not a ratio: a scale-free ratio's gradient grows as the maps shrink, and in training it drove
 * the maps to zero.)
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { isotropyPenalty } from "./generator.ts";
 * await initGpu();
 * // Vertical stripes: every horizontal neighbour differs, no vertical one.
 * const p = isotropyPenalty(tensor([1, -1, 1, -1, 1, -1, 1, -1], [2, 4]));
 * ```
 */
export function isotropyPenalty(maps: Tensor): Tensor {
  const r = maps.rank;
  const [h, w] = maps.shape.slice(-2);
  const dx = sub(
    slice(maps, { axis: r - 1, start: 1, end: w }),
    slice(maps, { axis: r - 1, start: 0, end: w - 1 }),
  );
  const dy = sub(
    slice(maps, { axis: r - 2, start: 1, end: h }),
    slice(maps, { axis: r - 2, start: 0, end: h - 1 }),
  );
  return square(sub(mean(square(dx)), mean(square(dy))));
}

/**
 * The maps' energy on the lattice of period `period` (default 4, the generator's
 * quarter-resolution grid): each map `[H, W]` of `[..., H, W]` (cropped to multiples of the
 * period) is split into its `period^2` polyphase components (`y mod p`, `x mod p`); the squared
 * mean of each component, summed and divided by `p^2`, is the map's mean power at the
 * frequencies `k/p` in both axes (DC included); the penalty is its mean over the maps:
 * `mean(A^2)` for a grating or grid locked to the lattice (1 at full amplitude, whatever its
 * sign or phase in each map), about `mean(A^2) / (p x p blocks per map)` for noise. (Absolute, not a share of
 * `mean(A^2)`: see {@link isotropyPenalty}.)
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { latticePenalty } from "./generator.ts";
 * await initGpu();
 * // Columns +1, +1, -1, -1 repeated: all of it on the lattice.
 * const row = [1, 1, -1, -1, 1, 1, -1, -1];
 * const p = latticePenalty(tensor([...row, ...row, ...row, ...row], [4, 8])); // 1
 * ```
 */
export function latticePenalty(maps: Tensor, period = 4): Tensor {
  const r = maps.rank;
  const [h, w] = maps.shape.slice(-2);
  const hp = Math.floor(h / period) * period;
  const wp = Math.floor(w / period) * period;
  if (hp === 0 || wp === 0) {
    throw new RangeError(
      `latticePenalty: maps [${maps.shape}] are smaller than the period ${period}`,
    );
  }
  const lead = maps.shape.slice(0, r - 2).reduce((a, b) => a * b, 1);
  const a = hp === h && wp === w ? maps : slice(maps, [
    { axis: r - 2, start: 0, end: hp },
    { axis: r - 1, start: 0, end: wp },
  ]);
  // Per map (every leading index: clip, frame, channel), so that grids of opposite sign or phase
  // in different maps do not cancel.
  const phases = mean(a.reshape([lead, hp / period, period, wp / period, period]), {
    axes: [1, 3],
  });
  return div(sum(square(phases)), lead * period * period);
}

/**
 * The BT.601 chroma combinations of 3-channel maps `[..., 3, H, W]` (the generator's `A`, whose
 * perturbation `J * A` has the same chroma up to the per-pixel factor `J`): `[Cb, Cr]`, each
 * `[..., 1, H, W]`, with the weights of {@link CHROMA_WEIGHTS} (src/metrics/structure.ts's forms:
 * `Cb = -0.168736 (R - B) - 0.331264 (G - B)`, `Cr = 0.418688 (R - G) + 0.081312 (R - B)`; exactly 0 for
 * equal channels). Differentiable.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { chromaMaps } from "./generator.ts";
 * await initGpu();
 * // One pixel, R = 1, G = B = 0: Cb = -0.168736, Cr = 0.5.
 * const [cb, cr] = chromaMaps(tensor([1, 0, 0], [3, 1, 1]));
 * ```
 */
export function chromaMaps(maps: Tensor): [Tensor, Tensor] {
  const axis = maps.rank - 3;
  if (maps.rank < 3 || maps.shape[axis] !== 3) {
    throw new RangeError(`chromaMaps: maps must be [..., 3, H, W], got [${maps.shape}]`);
  }
  const ch = (k: number) => slice(maps, [{ axis, start: k, end: k + 1 }]);
  const [r, g, b] = [ch(0), ch(1), ch(2)];
  const rb = sub(r, b);
  const { cbRB, cbGB, crRG, crRB } = CHROMA_WEIGHTS;
  const cb = add(mul(rb, -cbRB), mul(sub(g, b), -cbGB));
  const cr = add(mul(sub(r, g), crRG), mul(rb, crRB));
  return [cb, cr];
}

/**
 * The maps' energy at low spatial frequencies, over block sizes `k` (default 4, 8 and 16): the
 * mean over the sizes of `(k^2 / 16) mean(pool_k(A)^2)`, with `pool_k` the mean of each
 * non-overlapping `k x k` block. White noise of variance `s^2` gives `s^2 / 16` at every size
 * (its block means shrink as `1/k^2`), while a bias `b` shared by a block of side `k` gives
 * `k^2 b^2 / 16`: blobs and smooth fields of one sign, what gives a perturbation a spectral line
 * near DC or a visible tint, cost more the larger they are (a constant map of 1 gives 7); a
 * pattern of period 4 (zero mean per block) gives 0 (the lattice penalty covers it). Absolute, as
 * {@link isotropyPenalty}.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { lowpassPenalty } from "./generator.ts";
 * await initGpu();
 * // A constant 0.5 on 8x8 (blocks of 4 and 8): (1 + 4) / 2 * 0.25 = 0.625.
 * const p = lowpassPenalty(tensor(new Array(64).fill(0.5), [8, 8]));
 * ```
 */
export function lowpassPenalty(maps: Tensor, sizes: number[] = [4, 8, 16]): Tensor {
  const r = maps.rank;
  const [h, w] = maps.shape.slice(-2);
  const usable = sizes.filter((k) => k <= h && k <= w);
  if (!usable.length) {
    throw new RangeError(
      `lowpassPenalty: maps [${maps.shape}] are smaller than every block size (${sizes})`,
    );
  }
  const lead = maps.shape.slice(0, r - 2).reduce((a, b) => a * b, 1);
  const a = maps.reshape([lead, 1, h, w]);
  const terms = usable.map((k) =>
    mul(mean(square(avgPool2d(a, { kernel: k }))), (k * k) / 16 / usable.length)
  );
  return terms.reduce((s, t) => add(s, t));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Attacks clips with a generator (8-bit output inside the JND box) and scores them: the
 * numbers of the acceptance table. For a two-branch generator it also runs both branches and
 * counts how often up scores above clean and down below.
 *
 * @example
 * ```ts
 * import { evaluateGenerator } from "./generator.ts";
 * // const r = await evaluateGenerator(generator, victim, testClips, { eps: 1 });
 * // console.log(r.srccClean, r.srccAdv, r.meanPsnr);
 * ```
 */
export async function evaluateGenerator(
  generator: Generator,
  victim: Victim,
  clips: TrainClip[],
  options: { eps?: number } = {},
): Promise<GeneratorTestResult> {
  const eps = options.eps ?? generator.info.eps;
  const two = steerable(generator.net);
  const advScores: number[] = [];
  const upScores: number[] = [];
  const downScores: number[] = [];
  let psnrSum = 0, ssimSum = 0, beyond = 0, absSum = 0;
  for (const c of clips) {
    const runs = two ? [0, 1] : [0];
    const untargetedBranch = branchFor(generator, "untargeted", c.clean);
    const clean = await c.frames.read();
    const jnd = await c.jnd.read();
    const shape = c.frames.shape as [number, number, number, number];
    for (const br of runs) {
      // Quantised here from the arrays read once above (attackWithGenerator's own 8-bit step
      // would read the clean frames and JND maps back again for every branch).
      const raw = await attackWithGenerator(generator, c.frames, {
        eps,
        branch: br,
        jnd: c.jnd,
        quantize: false,
      });
      const a = quantizeInJnd(clean, await raw.read(), jnd, shape, eps);
      raw.dispose();
      const adv = tensor(a, shape);
      const s = tidy(() => noGrad(() => victim.score(adv)));
      const score = (await s.read())[0];
      s.dispose();
      adv.dispose();
      if (br === untargetedBranch) {
        advScores.push(score);
        const q = videoQuality(clean, a, shape);
        const p = perturbationStats(clean, a, jnd, shape, { eps });
        psnrSum += q.meanPsnr;
        ssimSum += q.meanSsim;
        beyond += p.beyondJnd;
        absSum += p.meanAbsLevels;
      }
      if (two) (br === 0 ? upScores : downScores).push(score);
    }
  }
  const labels = clips.map((c) => c.label);
  const cleanScores = clips.map((c) => c.clean);
  const rc = correlationReport(cleanScores, labels);
  const ra = correlationReport(advScores, labels);
  const result: GeneratorTestResult = {
    n: clips.length,
    eps,
    srccClean: rc.srcc,
    srccAdv: ra.srcc,
    plccClean: rc.plcc,
    plccAdv: ra.plcc,
    meanScoreChange: advScores.reduce((s, v, i) => s + Math.abs(v - cleanScores[i]), 0) /
      clips.length,
    meanTowardTarget: advScores.reduce((s, v, i) => {
      const { qMin, qMax, median } = generator.info;
      const up = attackTarget(cleanScores[i], "untargeted", { qMin, qMax, median }) === qMax;
      return s + (up ? v - cleanScores[i] : cleanScores[i] - v);
    }, 0) / clips.length,
    meanPsnr: psnrSum / clips.length,
    meanSsim: ssimSum / clips.length,
    beyondJnd: beyond / clips.length,
    meanAbsLevels: absSum / clips.length,
  };
  if (two) {
    const up = upScores.map((u, i) => u > cleanScores[i]);
    const down = downScores.map((d, i) => d < cleanScores[i]);
    result.upAbove = up.filter(Boolean).length / clips.length;
    result.downBelow = down.filter(Boolean).length / clips.length;
    result.bothRight = up.filter((u, i) => u && down[i]).length / clips.length;
    result.meanUpChange = upScores.reduce((a, u, i) => a + u - cleanScores[i], 0) / clips.length;
    result.meanDownChange = downScores.reduce((a, d, i) => a + cleanScores[i] - d, 0) /
      clips.length;
  }
  return result;
}

/** The state a generator checkpoint records (validated when it is read back). */
const GenCheckpointStateSchema = checkpointStateSchema({
  eps: finiteNumber,
  // Not finite: a run with a NaN penalty stops at its first step, so none is ever saved.
  penalty: z.number(),
  penaltyEnd: z.number(),
  penaltyDecay: z.number(),
  shift: z.number().int().min(0),
  isotropy: z.number(),
  lattice: z.number(),
  lowpass: z.number(),
  victim: z.string(),
  victimWeights: z.array(z.string()).optional(),
  variant: z.string(),
});

type GenCheckpointState = z.infer<typeof GenCheckpointStateSchema>;

/** What {@link trainGenerator} returns. */
export interface TrainGeneratorResult {
  /** The generator (the caller disposes `net`), undefined when stopped early (`stopAfter`). */
  generator?: Generator;
  /** Test-split results (undefined when stopped early). */
  test?: GeneratorTestResult;
  /** Files written. */
  weights?: string;
  /** The JSON. */
  json?: string;
  /** Steps done in total. */
  step: number;
  /** Losses of every step. */
  losses: number[];
  /** Training seconds in total (loading and evaluation excluded). */
  trainSeconds: number;
}

/**
 * Trains a generator against a frozen victim; see the module documentation. Before anything is
 * loaded it checks the config (`checkGeneratorConfig`), the manifest, the output stem
 * (`prepareWeightsOutput`: an existing generator is refused unless `overwrite`), the checkpoint
 * folder, and with `resume` the checkpoint itself (one line naming the file when it is missing,
 * truncated, corrupt or of other options).
 *
 * @example
 * ```ts
 * import { initGpu } from "../../mod.ts";
 * import { trainGenerator } from "./generator.ts";
 * await initGpu();
 * const r = await trainGenerator({ victim: "vsfa-mini", steps: 300, seed: 1, out: "out/g" });
 * console.log(r.test?.srccClean, r.test?.srccAdv, r.test?.meanPsnr);
 * ```
 */
export async function trainGenerator(
  options: TrainGeneratorOptions = {},
): Promise<TrainGeneratorResult> {
  const {
    victim: victimName = "vsfa-mini",
    variant = "untargeted",
    manifest = "cache/proxy/manifest.json",
    steps = 300,
    batch = 4,
    lr = 1e-3,
    eps = 1,
    penalty = 1,
    penaltyEnd = 0.01,
    penaltyDecay = 0.5,
    shift = 0,
    isotropy = 0,
    lattice = 0,
    lowpass = 0,
    jnd: jndModel = DEFAULT_VIDEO_JND_MODEL,
    seed = 1,
    checkpointEvery = 25,
  } = options;
  if (!Number.isInteger(shift) || shift < 0) {
    throw new RangeError(`shift must be a whole number >= 0, got ${shift}`);
  }
  if (!(isotropy >= 0)) throw new RangeError(`isotropy must be >= 0, got ${isotropy}`);
  if (!(lattice >= 0)) throw new RangeError(`lattice must be >= 0, got ${lattice}`);
  if (!(lowpass >= 0)) throw new RangeError(`lowpass must be >= 0, got ${lowpass}`);
  const cropShare = options.cropShare ?? 0.5;
  const cropContext = options.cropContext ?? 0;
  const chroma = options.chroma ?? 0;
  if (!(chroma >= 0)) throw new RangeError(`chroma must be >= 0, got ${chroma}`);
  if (!Number.isInteger(cropContext) || cropContext < 0) {
    throw new RangeError(`cropContext must be a whole number >= 0, got ${cropContext}`);
  }
  const valEvery = options.valEvery ?? 0;
  const valClips = options.valClips ?? 24;
  if (!Number.isInteger(valEvery) || valEvery < 0) {
    throw new RangeError(`valEvery must be a whole number >= 0, got ${valEvery}`);
  }
  if (!Number.isInteger(valClips) || valClips < 2) {
    throw new RangeError(`valClips must be a whole number >= 2, got ${valClips}`);
  }
  if (!(cropShare >= 0 && cropShare <= 1)) {
    throw new RangeError(`cropShare must be in [0, 1], got ${cropShare}`);
  }
  if (options.crops && variant === "untargeted") {
    throw new RangeError(
      "crops: the untargeted variant's target needs each crop's clean score; use --variant signed or two-branch",
    );
  }
  const out = options.out ?? join("data", "models", bundledGeneratorName(victimName, variant));
  const checkpointDir = options.checkpointDir ??
    join("cache", "generators", out.replace(/\.(json|safetensors)$/, "").split(/[\\/]/).pop()!);
  const overwrite = options.overwrite ?? false;
  // Before anything is created, loaded or trained: the config fits, the manifest is there, the
  // checkpoint folder can be written (with resume, its checkpoint is sound and of these
  // options), and the weights can be written and replace nothing unasked.
  const netConfig = checkGeneratorConfig({ ...options.config, variant });
  await loadManifest(manifest, { splits: ["train"] }); // a missing or invalid one fails now
  if (options.crops) await loadManifest(options.crops, { splits: ["train"] });
  if (valEvery > 0 && !(await splitItems(manifest, "val")).items.length) {
    throw new Error(`${manifest}: the val split is empty (valEvery needs it)`);
  }
  // The options a checkpoint records and a resume must repeat.
  const checkpoint: RunCheckpoint<GenCheckpointState> = {
    file: await prepareCheckpointDir(checkpointDir),
    run: {
      seed,
      steps,
      batch,
      lr,
      eps,
      penalty,
      penaltyEnd,
      penaltyDecay,
      shift,
      isotropy,
      lattice,
      lowpass,
      victim: victimName,
      ...(options.victimWeights?.length ? { victimWeights: options.victimWeights } : {}),
      variant,
      // Recorded only when set, so that checkpoints of runs without crops still resume.
      ...(options.crops ? { crops: options.crops, cropShare } : {}),
      ...(options.crops && cropContext ? { cropContext } : {}),
      ...(chroma ? { chroma } : {}),
    },
    schema: GenCheckpointStateSchema,
  };
  if (options.resume) {
    // A bad checkpoint is refused now, before the victim and the clips are loaded.
    await readRunCheckpoint(checkpoint, stqaNetSize(netConfig).shapes);
  }
  await prepareWeightsOutput(out, { option: "--out", overwrite });
  const victim = await loadVictim(victimName, { weights: options.victimWeights });
  const net = new StqaNet({ seed, config: netConfig });
  let train: TrainClip[] = [];
  let large: TrainClip[] = [];
  let val: TrainClip[] = [];
  const opt = new Adam(Object.values(net.parameters()), { lr });
  try {
    const tl = performance.now();
    train = await loadTrainClips(victim, manifest, "train", {
      jnd: jndModel,
      maxClips: options.maxClips,
    });
    if (options.crops) {
      large = await loadCropClips(victim, options.crops, train[0].frames.shape, cropContext);
    }
    const nLarge = large.length ? Math.round(cropShare * batch) : 0;
    const { qMin, qMax } = victim.config;
    const med = median(train.map((c) => c.clean));
    console.error(
      `${victim.name}: ${train.length} train clips with JND maps in ${
        formatSeconds((performance.now() - tl) / 1000)
      }; clean median score ${med.toFixed(3)}; generator ${net.parameterCount()} parameters`,
    );
    const info = {
      victim: victimName,
      victimFamily: victim.family,
      jnd: jndModel,
      eps,
      qMin,
      qMax,
      median: med,
    };
    if (valEvery > 0) {
      val = await loadTrainClips(victim, manifest, "val", { jnd: jndModel, maxClips: valClips });
    }
    const curveFile = join(dirname(checkpoint.file), "validation.jsonl");
    const curve = await readCurve(curveFile, options.resume ?? false);
    const validate = async (step: number) => {
      const generator: Generator = {
        net,
        info: { kind: "stqa-net", config: { ...net.config }, ...info },
        path: out,
      };
      const r = await evaluateGenerator(generator, victim, val, { eps });
      const point: ValidationPoint = {
        step,
        n: r.n,
        meanTowardTarget: round4(r.meanTowardTarget),
        meanScoreChange: round4(r.meanScoreChange),
        ...(r.meanUpChange !== undefined
          ? { meanUpChange: round4(r.meanUpChange), meanDownChange: round4(r.meanDownChange!) }
          : {}),
        meanPsnr: round4(r.meanPsnr),
      };
      const at = curve.findIndex((p) => p.step >= step);
      if (at >= 0) curve.splice(at); // a resumed run repeats the steps after its checkpoint
      curve.push(point);
      await writeFileAtomic(curveFile, curve.map((p) => JSON.stringify(p)).join("\n") + "\n");
      console.error(
        `validation at step ${step} (${r.n} val clips): toward target ${
          r.meanTowardTarget.toFixed(3)
        }, |change| ${r.meanScoreChange.toFixed(3)}${
          r.meanUpChange !== undefined
            ? `, up ${r.meanUpChange.toFixed(3)}, down ${r.meanDownChange!.toFixed(3)}`
            : ""
        }, PSNR ${r.meanPsnr.toFixed(2)} dB`,
      );
    };
    const targets = train.map((c) =>
      attackTarget(c.clean, "untargeted", { qMin, qMax, median: med })
    );
    const penaltyAt = (s: number) =>
      penaltyEnd + (penalty - penaltyEnd) * Math.max(0, 1 - s / Math.max(1, penaltyDecay * steps));
    const { step: stopAt, losses, trainSeconds } = await trainLoop({
      params: net.parameters(),
      opt,
      clips: train.length,
      steps,
      batch,
      lr,
      seed,
      checkpoint: { ...checkpoint, every: checkpointEvery, config: net.config },
      resume: options.resume,
      onResume: (st) => console.error(`resuming from ${checkpoint.file} at step ${st.step}`),
      stopAfter: options.stopAfter,
      onProgress: options.onProgress,
      lossError: GeneratorLossError,
      afterStep: async (step) => {
        if (valEvery > 0 && (step % valEvery === 0 || step === steps)) await validate(step);
      },
      loss: (pick, _sampler, step) => {
        const lam = penaltyAt(step);
        // Per step, from the seed and the step alone (so a resumed run draws the same): the
        // grid shift's offsets and a signed generator's direction per clip.
        const rng = seededRandom(seed * 1_000_003 + step).uniform;
        const offset = [Math.floor(rng() * (shift + 1)), Math.floor(rng() * (shift + 1))];
        const signs = pick.map(() => (rng() < 0.5 ? 1 : -1));
        // The last nLarge clips of the batch: random windows of random large clips.
        // With cropContext, each window is taken that much larger on every side, the generator
        // runs on all of it and only its centre (the main clips' size) goes on.
        const nSmall = pick.length - nLarge;
        const [t, , h, w] = train[0].frames.shape;
        const windowShape = [t, 3, h + 2 * cropContext, w + 2 * cropContext];
        const small = pick.slice(0, nSmall).map((i) => train[i]);
        const crops = pick.slice(nSmall).map(() =>
          cropClip(large[Math.floor(rng() * large.length)], windowShape, rng)
        );
        // One generator pass over the batch when the crops are of the main clips' size; two
        // (frames of two sizes) with context.
        const groups = (cropContext
          ? [{ clips: small, margin: 0 }, { clips: crops, margin: cropContext }]
          : [{ clips: [...small, ...crops], margin: 0 }]).filter((g) =>
            g.clips.length
          );
        let first = 0;
        const results = groups.map((g) => {
          const sg = signs.slice(first, first + g.clips.length);
          first += g.clips.length;
          const out = generatorPerturb(
            net,
            stack(g.clips.map((c) => c.frames), 0),
            stack(g.clips.map((c) => c.jnd), 0),
            { eps, signs: variant === "signed" ? sg : undefined },
          );
          const centre = (v: Tensor) =>
            g.margin
              ? slice(v, [
                { axis: 3, start: g.margin, end: g.margin + h },
                { axis: 4, start: g.margin, end: g.margin + w },
              ])
              : v;
          return { adversarial: out.adversarial.map(centre), weights: out.weights.map(centre) };
        });
        const join2 = (vs: Tensor[]) => vs.length === 1 ? vs[0] : concat(vs, 0);
        const r = {
          adversarial: results[0].adversarial.map((_, k) =>
            join2(results.map((q) => q.adversarial[k]))
          ),
          weights: results[0].weights.map((_, k) => join2(results.map((q) => q.weights[k]))),
        };
        const score = (adv: Tensor) => victim.scoreBatch(shifted(adv, shift, offset));
        const plus = (a: Tensor, b: Tensor | undefined) => b ? add(a, b) : a;
        // The structure penalties on the maps (the first branch's; both for two-branch).
        const structureOf = (a: Tensor, w: number): Tensor[] => [
          ...(isotropy > 0 ? [mul(isotropyPenalty(a), isotropy * w)] : []),
          ...(lattice > 0 ? [mul(latticePenalty(a), lattice * w)] : []),
          ...(lowpass > 0 ? [mul(lowpassPenalty(a), lowpass * w)] : []),
        ];
        const iso = (a: Tensor, w = 1): Tensor | undefined => {
          const terms = [
            ...structureOf(a, w),
            ...(chroma > 0 ? chromaMaps(a).flatMap((c) => structureOf(c, chroma * w)) : []),
          ];
          return terms.length ? terms.reduce((s, v) => add(s, v)) : undefined;
        };
        if (variant === "two-branch") {
          const up = boundaryLoss(score(r.adversarial[0]), pick.map(() => qMax));
          const down = boundaryLoss(score(r.adversarial[1]), pick.map(() => qMin));
          const pen = add(weightPenalty(r.weights[0]), weightPenalty(r.weights[1]));
          const main = add(add(up, down), mul(pen, lam / 2));
          return plus(plus(main, iso(r.weights[0], 0.5)), iso(r.weights[1], 0.5));
        }
        const s = score(r.adversarial[0]);
        const goal = variant === "signed"
          ? signs.map((v) => (v > 0 ? qMax : qMin))
          : pick.map((i) => targets[i]);
        return plus(
          add(boundaryLoss(s, goal), mul(weightPenalty(r.weights[0]), lam)),
          iso(r.weights[0]),
        );
      },
    });
    const trainClips = train.length;
    const cropClips = large.length;
    disposeClips(train);
    disposeClips(large);
    train = [];
    large = [];
    if (stopAt < steps) {
      net.dispose();
      return { step: stopAt, losses, trainSeconds };
    }
    disposeClips(val);
    val = [];
    for (const p of Object.values(net.parameters())) p.requiresGrad = false;
    const generator: Generator = {
      net,
      info: { kind: "stqa-net", config: { ...net.config }, ...info },
      path: out,
    };
    console.error("attacking the test split ...");
    const test = await loadTrainClips(victim, manifest, "test", {
      jnd: jndModel,
      maxClips: options.testClips,
    });
    const result = await evaluateGenerator(generator, victim, test, { eps });
    disposeClips(test);
    // Checked again: something may have appeared at the stem while training ran.
    const target = await prepareWeightsOutput(out, { option: "--out", overwrite });
    await saveGenerator(net, target.weights, {
      ...info,
      training: {
        command: options.command ??
          `deno task train --victim ${victimName} --variant ${variant} --steps ${steps} --seed ${seed}`,
        seed,
        steps,
        batch,
        lr,
        penalty,
        penaltyEnd,
        penaltyDecay,
        shift,
        isotropy,
        lattice,
        lowpass,
        manifest,
        trainClips,
        ...(options.crops ? { crops: options.crops, cropShare, cropClips } : {}),
        ...(options.crops && cropContext ? { cropContext } : {}),
        ...(chroma ? { chroma } : {}),
        ...(curve.length ? { validation: curve } : {}),
        date: new Date().toISOString(),
        trainSeconds: Math.round(trainSeconds),
        finalLoss: round4(recentLoss(losses)),
      },
      test: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, round4(v as number)])),
    });
    generator.path = target.weights;
    return { generator, test: result, ...target.display, step: stopAt, losses, trainSeconds };
  } catch (e) {
    disposeClips(train);
    disposeClips(large);
    disposeClips(val);
    net.dispose();
    throw e;
  } finally {
    opt.dispose();
    victim.dispose();
  }
}
