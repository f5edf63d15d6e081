/**
 * Attacking a video file with a trained generator, streamed chunk by chunk: decode, JND maps,
 * generator, 8-bit quantisation inside the JND box, encode, and the victim scoring the clean and
 * adversarial streams in the same pass; PSNR, SSIM and the share beyond the JND are measured on
 * the way, and `<outDir>/<name>/` gets the adversarial video(s) and report.json. Everything is
 * written into a marked temporary folder inside `outDir` that is renamed into place at the end,
 * so a failure or Ctrl-C leaves nothing behind; nothing is written outside `outDir`, and an
 * earlier result is replaced only when asked.
 *
 * Memory is bounded by the chunk, not the video: a chunk of `chunkFrames` frames is decoded,
 * attacked (the generator's GRU state and the JND's previous frame carried to the next chunk),
 * pushed into the victim's streaming scorers (their temporal state carried, pooled over the whole
 * video at the end) and handed to the encoder, which holds at most one chunk ahead per mode.
 * Across the video only the shown frames of report.html and a few numbers per frame are kept.
 * Only one chunk (and the victim's per-chunk work) must fit the adapter's binding limit.
 *
 * Crossings between CPU and GPU per frame: the decoder's bytes go up once; the clean frame, its
 * JND map and the generator's output for every mode come back in one read-back per chunk
 * (quantisation and the quality measures run on the CPU); each mode's quantised frame becomes
 * packed rgb24 bytes on the CPU, which the encoder sends to ffmpeg as they are and which go up
 * once (one byte per value, unpacked on the GPU) for the victim. Every mode shares one
 * generator pass.
 *
 * @module
 */

import { basename, extname, join } from "path";
import { PathError } from "../_fs.ts";
import {
  commitWorkDir,
  discardWorkDir,
  insideOutput,
  makeWorkDir,
  prepareOutputDir,
  safeName,
} from "../_output.ts";
import { bindingLimit } from "../gpu/device.ts";
import { perturbationStats, videoQuality } from "../metrics/quality.ts";
import { StructureAccumulator } from "../metrics/structure.ts";
import { computeJnd } from "../jnd/mod.ts";
import type { Generator } from "../models/generator_io.ts";
import type { Victim, VictimStream, VictimStreamResult } from "../models/victims/victim.ts";
import { type AttackPanels, attackPanels, type KeptFrame, shownFrames } from "./panels.ts";
import {
  type AttackReport,
  type AttackRun,
  type AttackSettings,
  parseAttackReport,
  structureFields,
} from "./report.ts";
import { noGrad, type Tensor, tidy } from "../tensor/tensor.ts";
import { concat, slice } from "../tensor/ops/shape.ts";
import {
  openVideoEncoder,
  probeVideo,
  readVideoChunks,
  type Rgb24Frames,
  rgb24Frames,
  rgb24Tensor,
  type VideoCodec,
  writableColour,
} from "../video/mod.ts";
import { decodedSize } from "../video/read.ts";
import { attackTarget } from "./losses.ts";
import { branchFor, chunkFor, generatorPerturb, quantizeInJnd, steerable } from "./stqa.ts";
import type { AttackMode } from "./types.ts";

/** Options of {@link attackVideo}. */
export interface AttackVideoOptions {
  /** The loaded generator. */
  generator: Generator;
  /** The loaded victim (frozen). */
  victim: Victim;
  /** `untargeted` (default), `up`, `down` or `both` (up and down, two outputs). */
  mode?: AttackMode | "both";
  /** Multiple of the JND (default: the generator's training eps). */
  eps?: number;
  /** Codec of the adversarial video (default `ffv1`, lossless). */
  codec?: VideoCodec;
  /** Output folder; the video's results go to `<outDir>/<name>/` (default `out`). */
  outDir?: string;
  /** Name of the video's folder (default: the file's stem); made safe with `safeName`. */
  name?: string;
  /**
   * Replace `<outDir>/<name>/` when it exists (default false: refused before any work). The
   * caller has checked that it is an earlier result of this tool.
   */
  replace?: boolean;
  /** The options that decide the result, recorded in report.json for reruns to compare. */
  settings?: AttackSettings;
  /**
   * More files to write beside report.json, made from the report and the frames' images (the
   * panels), inside the same temporary folder so they appear together. `deno task attack` adds
   * `report.html` here (`attackReportHtml` in src/report/attack_html.ts): the attack layer
   * makes the data, the report layer above it renders it.
   */
  extraFiles?: (report: AttackReport, panels: AttackPanels) => Record<string, string>;
  /** At most this many frames from the start (default all). */
  frames?: number;
  /** Scale frames to this size when decoding (either side alone keeps the aspect ratio). */
  size?: { width?: number; height?: number };
  /** Frames per generator chunk (default 16). */
  chunkFrames?: number;
  /** Recorded in the report (default 1); the generator is deterministic. */
  seed?: number;
  /** The video's label, when it comes from a manifest. */
  label?: number | null;
  /** Called as each stage starts (`score clean`, `attack`, `panels`). */
  onStage?: (stage: string) => void;
  /**
   * Progress within the stages, for a progress line: frames done of the stage's total (null
   * while the probe cannot tell the frame count). Stages in order: `score clean` (only for the
   * untargeted mode of a two-branch generator, whose branch needs the whole video's clean
   * score: a first pass that decodes and scores the clean stream, per chunk), then `attack`
   * (per chunk: decoded, attacked for every mode, scored clean and adversarial, and handed to
   * the encoders). Within a stage `done` only grows and ends at the frame count.
   */
  onProgress?: (progress: { stage: string; done: number; total: number | null }) => void;
}

/** One update of {@link AttackVideoOptions.onProgress} (the type it is called with). */
export interface AttackProgress {
  /** The stage: `score clean` (a first pass, for some modes) or `attack` (the one pass). */
  stage: string;
  /** Frames done in this stage. */
  done: number;
  /** Frames the stage does, or null while unknown (decoding a clip of unknown length). */
  total: number | null;
}

/** `x` as one flat [N] view (its buffer shared), to concatenate tensors of any shapes. */
function flat(x: Tensor): Tensor {
  return x.reshape([x.shape.reduce((a, b) => a * b, 1)]);
}

/** Arrays end to end in one. */
function joinValues(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Wraps a failure of a victim's per-chunk work in one line naming the victim and the size. */
function victimError(victim: Victim, n: number, h: number, w: number, e: unknown): Error {
  return new RangeError(
    `${victim.name} cannot score a chunk of ${n} frames of ${w}x${h} ` +
      `(${(e as Error).message}); attack smaller frames (--size) or fewer per chunk ` +
      "(--chunk-frames)",
  );
}

/**
 * Refuses, from the probe, frames whose chunk (`chunk` frames as one float tensor, the largest
 * tensor the pipeline binds per chunk) would pass the adapter's storage binding limit, naming
 * the video, the size and the way out. Only a chunk must fit: the video is streamed, so its
 * length does not matter.
 */
function checkChunkFits(input: string, w: number, h: number, chunk: number): void {
  const bytes = chunk * 3 * w * h * 4;
  const limit = bindingLimit();
  if (bytes > limit) {
    const fit = Math.max(0, Math.floor(limit / (3 * w * h * 4)));
    throw new RangeError(
      `${input}: a chunk of ${chunk} frames of ${w}x${h} needs ${(bytes / 2 ** 20).toFixed(0)} ` +
        `MiB as one tensor, more than this adapter's binding limit of ` +
        `${(limit / 2 ** 20).toFixed(0)} MiB; ` +
        (fit > 0 ? `attack at most ${fit} frames per chunk (--chunk-frames ${fit}) or ` : "") +
        "smaller frames (--size)",
    );
  }
}

const nullIfInfinite = (v: number) => (Number.isFinite(v) ? v : null);

/**
 * Attacks one video file and writes `<outDir>/<name>/adversarial.mkv` (or
 * `adversarial-up.mkv` and `adversarial-down.mkv` for `both`), `report.json`, and the files
 * `extraFiles` makes from the report and the shown frames' panels (`deno task attack` adds
 * report.html). Returns the report (validated against its schema).
 *
 * Streamed: one pass decodes the video chunk by chunk and, per chunk, computes the JND maps,
 * the generator's output (its GRU state and the JND's previous frame carried), quantises,
 * hands each mode's frames to its encoder and pushes the clean and adversarial frames into the
 * victim's streaming scorers ({@link Victim.stream}, their temporal state carried, pooled over
 * the whole video at the end), so memory is bounded by the chunk, not the video. The untargeted
 * mode of a two-branch generator picks its branch from the clean score of the whole video:
 * for it alone a first pass decodes and scores the clean stream (stage `score clean`).
 *
 * @throws {Error} naming the file for an unreadable video, and a RangeError for a mode the
 * generator cannot do; nothing is left in `outDir` then.
 * @example
 * ```ts
 * import { attackVideo, initGpu, loadGenerator, loadVictim } from "../../mod.ts";
 * await initGpu();
 * const report = await attackVideo("data/samples/astronaut_pan.mkv", {
 *   generator: await loadGenerator("stqa-vsfa-mini"),
 *   victim: await loadVictim("vsfa-mini"),
 *   outDir: "out",
 *   // extraFiles: attackReportFiles (from src/report/attack_html.ts) adds report.html
 * });
 * console.log(report.clean.score, report.attacks[0].score, report.attacks[0].psnr.mean);
 * ```
 */
export async function attackVideo(
  input: string,
  options: AttackVideoOptions,
): Promise<AttackReport> {
  const t0 = performance.now();
  const { generator, victim } = options;
  const mode = options.mode ?? "untargeted";
  const eps = options.eps ?? generator.info.eps;
  const codec = options.codec ?? "ffv1";
  const requested = options.chunkFrames ?? 16;
  const root = await prepareOutputDir(options.outDir ?? "out");
  const name = safeName(options.name ?? basename(input, extname(input)));
  const finalDir = await insideOutput(root, name);
  if (!options.replace && await Deno.lstat(finalDir).then(() => true, () => false)) {
    throw new PathError(
      finalDir,
      `${finalDir}: already exists; choose another output folder or replace it (--overwrite)`,
    );
  }
  const two = steerable(generator.net);
  if (mode === "both" && !two) {
    throw new RangeError(
      `--mode both needs a two-branch or signed generator; ${generator.path} is untargeted`,
    );
  }
  if (mode !== "both" && mode !== "untargeted") branchFor(generator, mode); // throws early
  if (!(eps > 0)) throw new RangeError(`eps must be positive, got ${eps}`);
  const onStage = options.onStage ?? (() => {});
  const onProgress = options.onProgress ?? (() => {});
  const progress = (stage: string, done: number, total: number | null) => {
    if (done === 0) onStage(stage);
    onProgress({ stage, done, total });
  };

  const source = await probeVideo(input);
  const { w, h } = decodedSize(source, options.size);
  let chunk: number;
  try {
    chunk = chunkFor(generator.net, h, w, requested);
  } catch (e) {
    if (!(e instanceof RangeError) || /chunkFrames/.test(e.message)) throw e;
    throw new RangeError(`${input}: ${e.message}`); // a frame too large for the generator
  }
  checkChunkFits(input, w, h, chunk);
  const expected = Math.min(source.frameCount ?? Infinity, options.frames ?? Infinity);
  const total = Number.isFinite(expected) ? expected : null;
  // A stage's total: the probe's count, or what is done so far while it is unknown.
  const totalFor = (done: number) => total === null ? null : Math.max(total, done);
  const decode = () =>
    readVideoChunks(input, { maxFrames: options.frames, size: options.size, chunkFrames: chunk });
  const checkSize = (x: Tensor, at: number) => {
    if (x.shape[2] !== h || x.shape[3] !== w) {
      throw new Error(
        `${input}: frame ${at} decoded as ${x.shape[3]}x${x.shape[2]}, expected ${w}x${h}`,
      );
    }
  };
  let victimSeconds = 0;
  const push = (s: VictimStream, x: Tensor) => {
    const tv = performance.now();
    try {
      s.push(x);
    } catch (e) {
      throw victimError(victim, x.shape[0], h, w, e);
    }
    victimSeconds += (performance.now() - tv) / 1000;
  };
  const finish = async (s: VictimStream) => {
    const tv = performance.now();
    const r = await s.finish();
    victimSeconds += (performance.now() - tv) / 1000;
    return r;
  };

  // The untargeted direction of a two-branch or signed generator depends on the whole video's clean score:
  // a first pass scores the clean stream (decode and victim only).
  let cleanFirst: VictimStreamResult | null = null;
  if (mode === "untargeted" && two) {
    const s = victim.stream({ frames: total ?? undefined });
    try {
      progress("score clean", 0, total);
      for await (const c of decode()) {
        try {
          checkSize(c.frames, c.start);
          push(s, c.frames);
        } finally {
          c.frames.dispose();
        }
        progress("score clean", s.frames, totalFor(s.frames));
      }
      if (s.frames === 0) throw new Error(`${input}: no frames decoded`);
      if (total !== s.frames) progress("score clean", s.frames, s.frames);
      cleanFirst = await finish(s);
    } finally {
      s.dispose();
    }
  }

  // A variable frame rate is written as its average constant rate (stated in the report).
  const fps = source.fps;
  const frameSize = 3 * h * w;
  const { qMin, qMax, median } = generator.info;
  const modes: AttackMode[] = mode === "both" ? ["up", "down"] : [mode];
  const branches = modes.map((m) => branchFor(generator, m, cleanFirst?.score));
  const files = modes.map((m) => modes.length === 1 ? "adversarial.mkv" : `adversarial-${m}.mkv`);
  // The frames report.html shows (first, middle, last), kept as they pass; the last frame seen
  // is kept too, for a video whose length the probe could not tell.
  const wanted = new Set(total === null ? [0] : shownFrames(total));
  const kept = new Map<number, KeptFrame>();
  let lastKept: KeptFrame | null = null;
  const stats = modes.map(() => ({
    psnrFrames: [] as (number | null)[],
    ssimFrames: [] as number[],
    mseSum: 0,
    beyond: 0,
    absSum: 0,
    maxAbs: 0,
    // Grid, stripes, spectral lines of the quantised perturbation, with a seeded noise reference.
    structure: new StructureAccumulator({ seed: options.seed ?? 1 }),
  }));

  const tmpDir = await makeWorkDir(root, name);
  const cleanStream = cleanFirst ? null : victim.stream({ frames: total ?? undefined });
  const advStreams = modes.map(() => victim.stream({ frames: total ?? undefined }));
  try {
    let genSeconds = 0;
    let t = 0;
    const tp = performance.now();
    // One pass: each chunk is decoded, attacked (one generator pass for every mode: the JND,
    // the GRU state and the frames are the same, only the branch read differs), scored and
    // handed to each mode's encoder, which holds at most one chunk ahead.
    const encoders = modes.map((_, mi) =>
      openVideoEncoder(join(tmpDir, files[mi]), {
        fps,
        codec,
        oddSize: codec === "x264-420" ? "pad" : "error",
        // The input's colour tags (an RGB codec keeps primaries and transfer).
        colour: writableColour(source.colour, codec),
        // The input's audio, copied bit for bit (cut to the attacked frames' duration when
        // only the first frames are attacked; the probe's count, as the encoder starts first).
        audio: {
          from: input,
          ...(options.frames !== undefined ? { seconds: (total ?? options.frames) / fps } : {}),
        },
      })
    );
    const produce = async () => {
      let state: Tensor | undefined;
      let prev: Tensor | undefined;
      try {
        progress("attack", 0, total);
        for await (const c of decode()) {
          const x = c.frames;
          const s = t;
          const n = x.shape[0];
          const e = s + n;
          let all: Float32Array;
          const tg = performance.now();
          try {
            checkSize(x, s);
            if (cleanStream) push(cleanStream, x);
            const out = tidy(() =>
              noGrad(() => {
                const j = computeJnd(x, { model: generator.info.jnd, previous: prev });
                const r = generatorPerturb(generator.net, x, j, {
                  eps,
                  state,
                  directions: branches,
                });
                // The clean frames, the JND maps and each mode's frames in one read-back where
                // they fit one binding together (else one read-back each: 4K frames).
                const parts = [x, j, ...r.adversarial].map(flat);
                const bytes = 4 * parts.reduce((sum, p) => sum + p.size, 0);
                const all = bytes <= bindingLimit() ? [concat(parts, 0)] : parts;
                return { all, state: r.state, last: slice(x, { axis: 0, start: n - 1, end: n }) };
              })
            );
            state?.dispose();
            prev?.dispose();
            state = out.state;
            prev = out.last;
            try {
              const read = await Promise.all(out.all.map((a) => a.read()));
              all = read.length === 1 ? read[0] : joinValues(read);
            } finally {
              for (const a of out.all) a.dispose();
            }
          } finally {
            x.dispose();
          }
          const shape = [n, 3, h, w] as [number, number, number, number];
          const values = n * frameSize;
          const cleanF = all.subarray(0, values);
          const jnd = all.subarray(values, values + n * h * w);
          const keptHere: KeptFrame[] = [];
          for (let f = s; f < e; f++) {
            if (!wanted.has(f) && f !== e - 1) continue;
            const i = f - s;
            const k: KeptFrame = {
              frame: f,
              clean: cleanF.slice(i * frameSize, (i + 1) * frameSize),
              jnd: jnd.slice(i * h * w, (i + 1) * h * w),
              adversarial: [],
            };
            keptHere.push(k);
            if (wanted.has(f)) kept.set(f, k);
            if (f === e - 1) lastKept = k;
          }
          const packed: Rgb24Frames[] = [];
          for (const [mi, st] of stats.entries()) {
            const from = values + n * h * w + mi * values;
            const a = quantizeInJnd(cleanF, all.subarray(from, from + values), jnd, shape, eps);
            // The quantised frames as rgb24 bytes: the encoder sends them as they are, and the
            // victim gets them up once (one byte per value) and unpacked on the GPU.
            packed.push(rgb24Frames(a, n, h, w));
            for (const k of keptHere) {
              const i = k.frame - s;
              k.adversarial.push(a.slice(i * frameSize, (i + 1) * frameSize));
            }
            const q = videoQuality(cleanF, a, shape);
            const p = perturbationStats(cleanF, a, jnd, shape, { eps });
            for (let f = 0; f < n; f++) {
              st.psnrFrames.push(nullIfInfinite(q.psnr[f]));
              st.ssimFrames.push(q.ssim[f]);
              st.mseSum += Number.isFinite(q.psnr[f]) ? 10 ** (-q.psnr[f] / 10) : 0;
            }
            st.beyond += p.beyondJnd * n;
            st.absSum += p.meanAbsLevels * n;
            st.maxAbs = Math.max(st.maxAbs, p.maxAbsLevels);
            st.structure.push(cleanF, a, shape);
          }
          genSeconds += (performance.now() - tg) / 1000;
          for (const [mi, p] of packed.entries()) {
            const adv = rgb24Tensor(p);
            try {
              push(advStreams[mi], adv);
            } finally {
              adv.dispose();
            }
          }
          for (const [mi, p] of packed.entries()) await encoders[mi].push(p);
          t = e;
          progress("attack", t, totalFor(t));
        }
        if (t === 0) throw new Error(`${input}: no frames decoded`);
        if (total !== t) progress("attack", t, t);
      } finally {
        state?.dispose();
        prev?.dispose();
      }
    };
    try {
      await produce();
      await Promise.all(encoders.map((enc) => enc.close()));
    } catch (err) {
      await Promise.all(encoders.map((enc) => enc.abort()));
      throw err;
    }
    const passSeconds = (performance.now() - tp) / 1000;

    const clean = cleanFirst ?? await finish(cleanStream!);
    const attacks: AttackRun[] = [];
    for (const [mi, m] of modes.entries()) {
      const st = stats[mi];
      const adv = await finish(advStreams[mi]);
      const mse = st.mseSum / t;
      attacks.push({
        mode: m,
        branch: branches[mi],
        output: files[mi],
        codec,
        target: attackTarget(clean.score, m, { qMin, qMax, median }),
        score: adv.score,
        // Sampled-view victims (fast-vqa, dover) have no per-frame scores.
        frameScores: adv.frameScores.length ? adv.frameScores : null,
        scoreChange: adv.score - clean.score,
        psnr: { mean: mse > 0 ? 10 * Math.log10(1 / mse) : null, frames: st.psnrFrames },
        ssim: { mean: st.ssimFrames.reduce((a, b) => a + b, 0) / t, frames: st.ssimFrames },
        beyondJnd: st.beyond / t,
        meanAbsLevels: st.absSum / t,
        maxAbsLevels: st.maxAbs,
        // Luma and chroma structure with their noise references (docs/attack.md, "Structure
        // statistics").
        ...structureFields(st.structure.result()),
        // The pass interleaves the stages: the encoder's share is what the generator and the
        // victim leave of it (decoding included).
        seconds: {
          generator: genSeconds,
          victim: victimSeconds,
          encode: Math.max(0, passSeconds - genSeconds - victimSeconds),
        },
      });
    }
    const report = parseAttackReport({
      version: 1,
      created: new Date().toISOString(),
      input,
      name,
      label: options.label ?? null,
      video: {
        frames: t,
        width: w,
        height: h,
        fps,
        ...(source.variableFrameRate ? { variableFrameRate: true } : {}),
      },
      victim: { name: victim.name, family: victim.family },
      generator: {
        path: generator.path,
        variant: generator.net.config.variant,
        trainedAgainst: generator.info.victim,
      },
      jnd: generator.info.jnd,
      eps,
      seed: options.seed ?? 1,
      chunkFrames: chunk,
      clean: {
        score: clean.score,
        frameScores: clean.frameScores.length ? clean.frameScores : null,
      },
      attacks,
      seconds: (performance.now() - t0) / 1000,
      ...(options.settings ? { settings: options.settings } : {}),
    }, join(finalDir, "report.json"));
    await Deno.writeTextFile(join(tmpDir, "report.json"), JSON.stringify(report, null, 2) + "\n");
    if (options.extraFiles) {
      onStage("panels");
      const shown = shownFrames(t).map((f) => kept.get(f) ?? (f === t - 1 ? lastKept : null))
        .filter((k): k is KeptFrame => k !== null);
      const images = await attackPanels(shown, { width: w, height: h }, {
        maxAbsLevels: Math.max(...attacks.map((r) => r.maxAbsLevels)),
      });
      for (const [file, text] of Object.entries(options.extraFiles(report, images))) {
        await Deno.writeTextFile(await insideOutput(tmpDir, safeName(file)), text);
      }
    }
    await commitWorkDir(tmpDir, root, name, { replace: options.replace });
    return report;
  } catch (e) {
    await discardWorkDir(tmpDir);
    throw e;
  } finally {
    cleanStream?.dispose();
    for (const s of advStreams) s.dispose();
  }
}
