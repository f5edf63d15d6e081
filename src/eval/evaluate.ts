/**
 * One video against one victim and a list of attacks: the clip as the victim reads it and its
 * clean score (once), the JND maps of each model an attack needs (once per model: a generator's
 * own, namm-st for the others), then per attack the adversarial frames quantised to 8 bits, their
 * score, quality and perturbation statistics, and the x264 round trip.
 *
 * @module
 */

import { safeName } from "../_output.ts";
import { quantizeInJnd } from "../attack/stqa.ts";
import type { Attack } from "../attack/types.ts";
import { computeJnd } from "../jnd/mod.ts";
import type { JndModel } from "../jnd/models.ts";
import { readVictimClip } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { attackPanels, type KeptFrame, panelsAsUris, shownFrames } from "../attack/panels.ts";
import type { EvalExample } from "./examples.ts";
import { perturbationStats, videoQuality } from "../metrics/quality.ts";
import {
  type EvalRow,
  type EvalRowSettings,
  msuRobustness,
  type ScoreRange,
  zhangR,
} from "./robustness.ts";
import { roundTrip, writeReference } from "./roundtrip.ts";
import { EVAL_JND_MODEL } from "./settings.ts";

/** A video of the evaluation. */
export interface EvalVideo {
  /** The video file. */
  path: string;
  /** Its safe, distinct name (the rows' `video`). */
  name: string;
  /** Position in the dataset's order. */
  index: number;
  /** Its label (MOS), or null when the dataset has none. */
  label: number | null;
}

/** Options of {@link evaluateVideo}. */
export interface EvaluateVideoOptions {
  /** Multiple of the JND (default 1). */
  eps?: number;
  /** Median of the untargeted boundary. */
  median: number;
  /** Base seed; the attack gets `seed + video.index` (default 1). */
  seed?: number;
  /**
   * The JND model of the attacks that do not name their own (`Attack.jndModel`: the baselines);
   * default {@link EVAL_JND_MODEL} (namm-st). The example panels show its maps.
   */
  jndModel?: JndModel;
  /** Folder for the round trip's temporary files. */
  workDir: string;
  /** Called with each finished row, in order. */
  onRow: (row: EvalRow) => Promise<void> | void;
  /**
   * What else made the rows, per method (dataset, weights' digests, ...): stored as each row's
   * `settings` when given, with `jnd` set to the JND model that boxed the method.
   */
  settings?: (method: string) => EvalRowSettings;
  /**
   * When given, the video is also an example: called once at the end with its frame panels
   * (first, middle, last frame per method) and scores, for report.html.
   */
  onExample?: (example: EvalExample) => Promise<void> | void;
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

async function score(victim: Victim, x: Tensor): Promise<number> {
  const s = tidy(() => noGrad(() => victim.score(x)));
  try {
    return (await s.read())[0];
  } finally {
    s.dispose();
  }
}

async function frameScoresOf(
  victim: Victim,
  v: Float32Array,
  shape: number[],
): Promise<number[] | null> {
  if (!victim.frameScores) return null;
  const x = tensor(v, shape);
  try {
    const s = tidy(() => noGrad(() => victim.frameScores!(x)));
    const out = Array.from(await s.read());
    s.dispose();
    return out;
  } finally {
    x.dispose();
  }
}

async function scoreValues(victim: Victim, v: Float32Array, shape: number[]): Promise<number> {
  const x = tensor(v, shape);
  try {
    return await score(victim, x);
  } finally {
    x.dispose();
  }
}

/**
 * Rounds values in [0,1] to the nearest 8-bit level, clipped to [0,1]. In place.
 *
 * @example
 * ```ts
 * import { quantizeLevels } from "./evaluate.ts";
 * quantizeLevels(new Float32Array([0.5, 1.2])); // [128/255, 1]
 * ```
 */
export function quantizeLevels(v: Float32Array): Float32Array {
  for (let i = 0; i < v.length; i++) {
    v[i] = Math.min(255, Math.max(0, Math.round(v[i] * 255))) / 255;
  }
  return v;
}

/**
 * Evaluates one video against one victim with each attack, calling `onRow` with each finished
 * row (see {@link EvalRow} for the fields). Each attack is given the JND maps of its own model
 * (`attack.jndModel`, else `options.jndModel`), computed once per model; an attack with
 * `jndBox` is quantised to 8 bits inside that box, any other to the nearest level. Round-trip
 * references go to `workDir` and are removed at the end.
 *
 * @example
 * ```ts
 * import { evaluateVideo } from "./evaluate.ts";
 * // await evaluateVideo(video, victim, [fgsm], { median: 3, workDir: "out/.work", onRow });
 * ```
 */
export async function evaluateVideo(
  video: EvalVideo,
  victim: Victim,
  attacks: readonly Attack[],
  options: EvaluateVideoOptions,
): Promise<void> {
  const eps = options.eps ?? 1;
  const seed = (options.seed ?? 1) + video.index;
  const range: ScoreRange = {
    qMin: victim.config.qMin,
    qMax: victim.config.qMax,
    median: options.median,
  };
  const frames = await readVictimClip(victim, video.path);
  const shape = [...frames.shape];
  const [t, , h, w] = shape;
  const stem = `${video.index}-${safeName(victim.name, "victim")}`;
  const reference = `${options.workDir}/${stem}-clean-ref.mkv`;
  const defaultModel = options.jndModel ?? EVAL_JND_MODEL;
  // The clip's JND maps per model, computed when an attack first needs them.
  const boxes = new Map<JndModel, { maps: Tensor; values: Float32Array }>();
  const boxOf = async (model: JndModel) => {
    let box = boxes.get(model);
    if (!box) {
      const maps = tidy(() => noGrad(() => computeJnd(frames, { model })));
      try {
        box = { maps, values: await maps.read() };
      } catch (e) {
        maps.dispose();
        throw e;
      }
      boxes.set(model, box);
    }
    return box;
  };
  try {
    const clean = await frames.read();
    const cleanScore = await score(victim, frames);
    await writeReference(reference, clean, shape);
    const cleanRt = await roundTrip(clean, shape, {
      dir: options.workDir,
      name: `${stem}-clean`,
      reference,
    });
    const cleanRtScore = await scoreValues(victim, cleanRt.decoded, shape);
    const plane = h * w, frameSize = 3 * plane;
    const kept: KeptFrame[] | null = options.onExample
      ? await boxOf(defaultModel).then(({ values }) =>
        shownFrames(t).map((f) => ({
          frame: f,
          clean: clean.slice(f * frameSize, (f + 1) * frameSize),
          jnd: values.slice(f * plane, (f + 1) * plane),
          adversarial: [],
        }))
      )
      : null;
    const exampleScores: number[] = [];
    const exampleFrameScores: (number[] | null)[] = [];
    const exampleMaxAbs: number[] = [];
    for (const attack of attacks) {
      const jndModel = attack.jndModel ?? defaultModel;
      const { maps: jnd, values: jndV } = await boxOf(jndModel);
      const out = await attack.run(frames, victim, {
        jnd,
        eps,
        mode: "untargeted",
        median: options.median,
        seed,
      });
      const adv = await out.adversarial.read();
      out.adversarial.dispose();
      if (attack.jndBox) quantizeInJnd(clean, adv, jndV, shape, eps);
      else quantizeLevels(adv);
      const advScore = await scoreValues(victim, adv, shape);
      const q = videoQuality(clean, adv, shape);
      const p = perturbationStats(clean, adv, jndV, shape, { eps });
      const rt = await roundTrip(adv, shape, {
        dir: options.workDir,
        name: `${stem}-${attack.name}`,
        reference,
      });
      const rtScore = await scoreValues(victim, rt.decoded, shape);
      if (kept) {
        for (const k of kept) {
          k.adversarial.push(adv.slice(k.frame * frameSize, (k.frame + 1) * frameSize));
        }
        exampleScores.push(advScore);
        exampleFrameScores.push(await frameScoresOf(victim, adv, shape));
        exampleMaxAbs.push(p.maxAbsLevels);
      }
      const absChange = Math.abs(advScore - cleanScore);
      await options.onRow({
        video: video.name,
        index: video.index,
        label: video.label,
        victim: victim.name,
        method: attack.name,
        frames: t,
        width: w,
        height: h,
        ...range,
        cleanScore,
        advScore,
        absChange,
        relChange: finiteOrNull(absChange / Math.abs(cleanScore)),
        r: finiteOrNull(zhangR(cleanScore, advScore, range)),
        robustness: finiteOrNull(msuRobustness(cleanScore, advScore, range)),
        psnr: finiteOrNull(q.meanPsnr),
        ssim: q.meanSsim,
        beyondJnd: p.beyondJnd,
        meanAbsLevels: p.meanAbsLevels,
        seconds: out.seconds,
        victimPasses: out.victimPasses,
        rtPsnr: finiteOrNull(rt.psnrY),
        rtSsim: rt.ssimY,
        rtScore,
        cleanRtScore,
        eps,
        seed,
        ...(options.settings
          ? { settings: { ...options.settings(attack.name), jnd: jndModel } }
          : {}),
      });
    }
    if (kept && options.onExample) {
      const images = panelsAsUris(
        await attackPanels(kept, { width: w, height: h }, { maxAbsLevels: exampleMaxAbs }),
      );
      const cleanFrames = await frameScoresOf(victim, clean, shape);
      await options.onExample({
        version: 1,
        video: video.name,
        index: video.index,
        victim: victim.name,
        methods: attacks.map((a) => a.name),
        frames: t,
        width: w,
        height: h,
        jndMaxLevels: images.jndMaxLevels,
        amplify: images.amplify,
        ...(images.crop ? { crop: images.crop } : {}),
        panels: images.panels,
        scores: { clean: cleanScore, methods: exampleScores },
        frameScores: cleanFrames && exampleFrameScores.every((f) => f !== null)
          ? { clean: cleanFrames, methods: exampleFrameScores as number[][] }
          : null,
      });
    }
  } finally {
    for (const { maps } of boxes.values()) maps.dispose();
    frames.dispose();
    await Deno.remove(reference).catch(() => {});
  }
}
