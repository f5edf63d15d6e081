/**
 * One video against one victim and a list of attacks, streamed by windows of frames so that
 * memory is bounded by the window, not the clip: the video is decoded window by window (the
 * victim's clip length and size by default, `frames: "all"` for every frame); per window the JND
 * maps of each model an attack needs (namm-st's previous frame carried across windows), each
 * attack on the window ({@link attackWindows}), the adversarial frames quantised to 8 bits,
 * pushed into the victim's streaming scorers (one per attack and one clean: their temporal state
 * carried, pooled over the whole clip at the end) and into the round trip's encoders, and the
 * quality, perturbation and structure statistics (`StructureAccumulator`: luma and chroma, its
 * noise references seeded with the row's seed) accumulated frame by frame. When an attack needs the clean
 * score (untargeted gradient attacks, a two-branch generator), a first streamed pass scores the
 * clean video, so that the direction is the whole video's. docs/eval.md ("Long videos:
 * windows") says what a window changes for the gradient attacks.
 *
 * @module
 */

import { safeName } from "../_output.ts";
import { quantizeInJnd } from "../attack/stqa.ts";
import type { Attack, AttackMode, AttackWindows } from "../attack/types.ts";
import { computeJnd } from "../jnd/mod.ts";
import type { JndModel } from "../jnd/models.ts";
import type { Victim, VictimStream, VictimStreamResult } from "../models/victims/victim.ts";
import { slice } from "../nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { attackPanels, type KeptFrame, panelsAsUris, shownFrames } from "../attack/panels.ts";
import {
  decodedSize,
  openVideoEncoder,
  probeVideo,
  readVideoChunks,
  type VideoEncoder,
} from "../video/mod.ts";
import type { EvalExample } from "./examples.ts";
import { perturbationStats, videoQuality } from "../metrics/quality.ts";
import { chromaSummary, StructureAccumulator } from "../metrics/structure.ts";
import {
  type EvalRow,
  type EvalRowSettings,
  msuRobustness,
  type ScoreRange,
  zhangR,
} from "./robustness.ts";
import { compareLuma, ROUND_TRIP_CRF, scoreVideoFile } from "./roundtrip.ts";
import { EVAL_JND_MODEL } from "./settings.ts";
import { attackWindows, evalWindow, victimBytesPerFrame } from "./windows.ts";

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
  /**
   * Frames to evaluate: at most this many from the start, or `"all"` (default: the victim's
   * clip length, `victim.config.frames`, as the victim was trained).
   */
  frames?: number | "all";
  /**
   * Frames per window (default: as many as fit the adapter's binding limit, {@link evalWindow}).
   * A clip no longer than the window is evaluated whole.
   */
  window?: number;
  /** Direction of every attack (default `untargeted`). */
  mode?: AttackMode;
  /**
   * Decode the video at its own size (default false: at the victim's trained size,
   * `victim.config.width x height`, where it has one).
   */
  native?: boolean;
}

const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);

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
 * Quality and perturbation statistics of a clip summed window by window: the same numbers as
 * `videoQuality` and `perturbationStats` of the whole clip (the video PSNR from the mean of the
 * per-frame MSEs, the SSIM's mean, the shares and means over every value).
 */
class StatsSum {
  #frames = 0;
  #mse = 0;
  #ssim = 0;
  #beyond = 0;
  #abs = 0;
  #max = 0;
  #values = 0;

  add(clean: Float32Array, adv: Float32Array, jnd: Float32Array, shape: number[], eps: number) {
    const q = videoQuality(clean, adv, shape);
    const p = perturbationStats(clean, adv, jnd, shape, { eps });
    const n = shape.reduce((a, b) => a * b, 1);
    for (const db of q.psnr) this.#mse += Number.isFinite(db) ? 10 ** (-db / 10) : 0;
    for (const v of q.ssim) this.#ssim += v;
    this.#frames += shape[0];
    this.#beyond += Math.round(p.beyondJnd * n);
    this.#abs += p.meanAbsLevels * n;
    this.#max = Math.max(this.#max, p.maxAbsLevels);
    this.#values += n;
  }

  get result() {
    const mse = this.#mse / this.#frames;
    return {
      meanPsnr: mse === 0 ? Infinity : 10 * Math.log10(1 / mse),
      meanSsim: this.#ssim / this.#frames,
      beyondJnd: this.#beyond / this.#values,
      meanAbsLevels: this.#abs / this.#values,
      maxAbsLevels: this.#max,
    };
  }
}

/** One attack's work in progress over the windows. */
interface Method {
  attack: Attack;
  jndModel: JndModel;
  runner: AttackWindows;
  stream: VictimStream;
  encoder: VideoEncoder;
  file: string;
  stats: StatsSum;
  /** The 8-bit perturbation's structure statistics, frame by frame. */
  structure: StructureAccumulator;
  seconds: number;
  passes: number;
}

function cropFrame(values: Float32Array, f: number, size: number): Float32Array {
  return values.slice(f * size, (f + 1) * size);
}

/**
 * Evaluates one video against one victim with each attack, calling `onRow` with each finished
 * row (see {@link EvalRow} for the fields), streamed by windows of `options.window` frames (by
 * default as many as fit the adapter's binding limit). Each attack is given the JND maps of its
 * own model (`attack.jndModel`, else `options.jndModel`), computed once per model and window; an
 * attack with `jndBox` is quantised to 8 bits inside that box, any other to the nearest level.
 * Attacks with {@link Attack.windows} (the random control, the generator's `stqaAttack`) carry their
 * state across windows and give the frames of the whole clip; the others attack each window
 * alone with the whole video's clean score (docs/eval.md, "Long videos: windows"). Scores come
 * from the victim's streaming scorers (whole-clip pooling); `victimPasses` counts passes per
 * window (every frame gets that many), plus the clean pass when the attack needed the clean
 * score. Round-trip files go to `workDir` and are removed at the end. When the clip fits one
 * window the rows are those of the whole clip.
 *
 * @throws {RangeError} naming the video when a window cannot fit the adapter, and the frame
 * when a decoded frame has another size.
 * @example
 * ```ts
 * import { evaluateVideo } from "./evaluate.ts";
 * // await evaluateVideo(video, victim, [fgsm], { median: 3, workDir: "out/.work", onRow,
 * //   frames: "all", window: 4 });
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
  const mode = options.mode ?? "untargeted";
  const range: ScoreRange = {
    qMin: victim.config.qMin,
    qMax: victim.config.qMax,
    median: options.median,
  };
  const c = victim.config;
  const size = c.width && c.height && !options.native
    ? { width: c.width, height: c.height }
    : undefined;
  const maxFrames = options.frames === "all" ? undefined : options.frames ?? c.frames;
  if (maxFrames !== undefined && !(Number.isInteger(maxFrames) && maxFrames >= 1)) {
    throw new RangeError(`frames must be a whole number >= 1 or "all", got ${options.frames}`);
  }
  const source = await probeVideo(video.path);
  const { w, h } = decodedSize(source, size);
  let win: number;
  try {
    win = evalWindow(w, h, attacks, options.window, victimBytesPerFrame(victim));
  } catch (e) {
    throw e instanceof RangeError ? new RangeError(`${video.path}: ${e.message}`) : e;
  }
  const expected = Math.min(source.frameCount ?? Infinity, maxFrames ?? Infinity);
  // Families that sample across the whole video (fast-vqa, dover) need the count up front.
  const streamOptions = { frames: Number.isFinite(expected) ? expected : undefined };
  const decode = () => readVideoChunks(video.path, { maxFrames, size, chunkFrames: win });
  const plane = h * w, frameSize = 3 * plane;
  const stem = `${video.index}-${safeName(victim.name, "victim")}`;
  const fileOf = (what: string) => `${options.workDir}/${stem}-${what}.mkv`;
  const reference = fileOf("clean-ref");
  const cleanRtFile = fileOf("clean");
  const rtOptions = {
    codec: "x264-420" as const,
    crf: ROUND_TRIP_CRF,
    fps: 25,
    oddSize: "pad" as const,
  };
  const defaultModel = options.jndModel ?? EVAL_JND_MODEL;
  const models = new Set<JndModel>(attacks.map((a) => a.jndModel ?? defaultModel));
  if (options.onExample) models.add(defaultModel);
  const checkSize = (x: Tensor, at: number) => {
    if (x.shape[2] !== h || x.shape[3] !== w) {
      throw new RangeError(
        `${video.path}: frame ${at} decoded as ${x.shape[3]}x${x.shape[2]}, expected ${w}x${h}`,
      );
    }
  };

  const streams: VictimStream[] = [];
  const encoders: VideoEncoder[] = [];
  const methods: Method[] = [];
  const files = [reference, cleanRtFile];
  let single: Tensor | null = null; // the clip, when the clean pass found it is one window
  let previous: Tensor | null = null; // the last frame of the previous window (namm-st)
  try {
    // The whole video's clean score first, when an attack's direction depends on it.
    let clean: VictimStreamResult | null = null;
    const needsClean = mode === "untargeted" && attacks.some((a) => a.usesCleanScore !== false);
    if (needsClean) {
      const s = victim.stream(streamOptions);
      streams.push(s);
      let windows = 0;
      for await (const { frames, start } of decode()) {
        windows++;
        checkSize(frames, start);
        s.push(frames);
        if (windows === 1) single = frames;
        else {
          single?.dispose();
          single = null;
          frames.dispose();
        }
      }
      clean = await s.finish();
    }
    const cleanStream = clean ? null : victim.stream(streamOptions);
    if (cleanStream) streams.push(cleanStream);
    const refEncoder = openVideoEncoder(reference, { codec: "ffv1", fps: 25 });
    const cleanRtEncoder = openVideoEncoder(cleanRtFile, rtOptions);
    encoders.push(refEncoder, cleanRtEncoder);
    for (const attack of attacks) {
      const file = fileOf(attack.name);
      files.push(file);
      const stream = victim.stream(streamOptions);
      streams.push(stream);
      const encoder = openVideoEncoder(file, rtOptions);
      encoders.push(encoder);
      const runner = attackWindows(attack, victim, {
        eps,
        mode,
        median: options.median,
        seed,
        ...(clean ? { cleanScore: clean.score } : {}),
      });
      methods.push({
        attack,
        jndModel: attack.jndModel ?? defaultModel,
        runner,
        stream,
        encoder,
        file,
        stats: new StatsSum(),
        structure: new StructureAccumulator({ seed }),
        seconds: 0,
        passes: 0,
      });
    }
    // The example's frames (first, middle, last), kept as they pass; the last frame of each
    // window too, in case the probe's frame count was wrong.
    const shown = new Set(Number.isFinite(expected) ? shownFrames(expected) : [0]);
    const kept: KeptFrame[] = [];
    let lastKept: KeptFrame | null = null;
    let total = 0;
    const windows: AsyncIterable<{ frames: Tensor; start: number }> = single
      ? (async function* () {
        yield { frames: single!, start: 0 };
      })()
      : decode();
    for await (const { frames: x, start } of windows) {
      if (x === single) single = null; // owned by this loop now
      try {
        checkSize(x, start);
        const t = x.shape[0];
        const shape = [...x.shape];
        total = start + t;
        const cleanV = await x.read();
        const boxes = new Map<JndModel, { maps: Tensor; values: Float32Array }>();
        try {
          for (const model of models) {
            const prev = previous;
            const maps = tidy(() =>
              noGrad(() => computeJnd(x, { model, ...(prev ? { previous: prev } : {}) }))
            );
            boxes.set(model, { maps, values: await maps.read() });
          }
          previous?.dispose();
          previous = tidy(() => noGrad(() => slice(x, { axis: 0, start: t - 1, end: t }))).keep();
          cleanStream?.push(x);
          await refEncoder.push(tensor(cleanV, shape));
          await cleanRtEncoder.push(tensor(cleanV, shape));
          const keepHere = options.onExample
            ? [...Array(t).keys()].map((i) => start + i).filter((f) =>
              shown.has(f) || f === start + t - 1
            )
            : [];
          const jndShown = boxes.get(defaultModel)?.values;
          const here: KeptFrame[] = keepHere.map((f) => ({
            frame: f,
            clean: cropFrame(cleanV, f - start, frameSize),
            jnd: cropFrame(jndShown!, f - start, plane),
            adversarial: [],
          }));
          for (const m of methods) {
            const { maps, values: jndV } = boxes.get(m.jndModel)!;
            const out = await m.runner.next(x, maps);
            const adv = await out.adversarial.read();
            out.adversarial.dispose();
            m.seconds += out.seconds;
            m.passes = Math.max(m.passes, out.victimPasses);
            if (m.attack.jndBox) quantizeInJnd(cleanV, adv, jndV, shape, eps);
            else quantizeLevels(adv);
            const advT = tensor(adv, shape);
            try {
              m.stream.push(advT);
            } catch (e) {
              advT.dispose();
              throw e;
            }
            await m.encoder.push(advT);
            m.stats.add(cleanV, adv, jndV, shape, eps);
            m.structure.push(cleanV, adv, shape);
            for (const k of here) k.adversarial.push(cropFrame(adv, k.frame - start, frameSize));
          }
          for (const k of here) {
            if (shown.has(k.frame)) kept.push(k);
            else lastKept = k;
          }
        } finally {
          for (const { maps } of boxes.values()) maps.dispose();
        }
      } finally {
        x.dispose();
      }
    }
    if (total === 0) throw new RangeError(`${video.path}: no frames decoded`);
    if (lastKept && !kept.some((k) => k.frame === total - 1) && lastKept.frame === total - 1) {
      kept.push(lastKept);
    }
    if (!clean) clean = await cleanStream!.finish();
    await refEncoder.close();
    await cleanRtEncoder.close();
    const rtSize = { width: w, height: h, frames: total };
    const cleanRtScore = (await scoreVideoFile(victim, cleanRtFile, { ...rtSize, window: win }))
      .score;
    const cleanScore = clean.score;
    const exampleScores: number[] = [];
    const exampleFrameScores: number[][] = [];
    const exampleMaxAbs: number[] = [];
    for (const m of methods) {
      const advResult = await m.stream.finish();
      await m.encoder.close();
      const rt = await compareLuma(m.file, reference, rtSize);
      const rtScore = (await scoreVideoFile(victim, m.file, { ...rtSize, window: win })).score;
      await Deno.remove(m.file).catch(() => {});
      const q = m.stats.result;
      const advScore = advResult.score;
      exampleScores.push(advScore);
      exampleFrameScores.push(advResult.frameScores);
      exampleMaxAbs.push(q.maxAbsLevels);
      const absChange = Math.abs(advScore - cleanScore);
      const { structure: st, structureNoise: sn, chroma } = m.structure.result();
      const ch = chromaSummary(chroma);
      const usedClean = mode === "untargeted" && m.attack.usesCleanScore !== false;
      await options.onRow({
        video: video.name,
        index: video.index,
        label: video.label,
        victim: victim.name,
        method: m.attack.name,
        frames: total,
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
        beyondJnd: q.beyondJnd,
        meanAbsLevels: q.meanAbsLevels,
        seconds: m.seconds,
        victimPasses: m.passes + (usedClean ? 1 : 0),
        rtPsnr: finiteOrNull(rt.psnrY),
        rtSsim: rt.ssimY,
        rtScore,
        cleanRtScore,
        eps,
        seed,
        structureDirection: st.direction.ratio,
        structurePhase: st.phase.ratio,
        structureLine: st.line.ratio,
        noiseDirection: sn.direction.ratio,
        noisePhase: sn.phase.ratio,
        noiseLine: sn.line.ratio,
        structureOk: st.targets.all,
        chromaDirection: ch.direction,
        chromaPhase: ch.phase,
        chromaLine: ch.line,
        chromaOk: ch.ok,
        ...(options.settings
          ? { settings: { ...options.settings(m.attack.name), jnd: m.jndModel } }
          : {}),
      });
    }
    if (options.onExample) {
      kept.sort((a, b) => a.frame - b.frame);
      const images = panelsAsUris(
        await attackPanels(kept, { width: w, height: h }, { maxAbsLevels: exampleMaxAbs }),
      );
      const withFrameScores = victim.frameScores !== undefined;
      await options.onExample({
        version: 1,
        video: video.name,
        index: video.index,
        victim: victim.name,
        methods: attacks.map((a) => a.name),
        frames: total,
        width: w,
        height: h,
        jndMaxLevels: images.jndMaxLevels,
        amplify: images.amplify,
        ...(images.crop ? { crop: images.crop } : {}),
        panels: images.panels,
        scores: { clean: cleanScore, methods: exampleScores },
        frameScores: withFrameScores
          ? { clean: clean.frameScores, methods: exampleFrameScores }
          : null,
      });
    }
  } finally {
    for (const m of methods) m.runner.dispose();
    for (const s of streams) s.dispose();
    for (const e of encoders) await e.abort();
    single?.dispose();
    previous?.dispose();
    for (const f of files) await Deno.remove(f).catch(() => {});
  }
}
