/**
 * Attacking a video file with a trained generator: decode (in chunks), JND maps, generator,
 * 8-bit quantisation inside the JND box, encode, score clean and adversarial with the victim,
 * measure PSNR, SSIM and the share beyond the JND, and write `<outDir>/<name>/` with the
 * adversarial video(s) and report.json. Everything is written into a marked temporary folder
 * inside `outDir` that is renamed into place at the end, so a failure or Ctrl-C leaves nothing
 * behind; nothing is written outside `outDir`, and an earlier result is replaced only when asked.
 *
 * Memory: the decoded clip stays on the GPU as one float tensor (the victim scores the whole
 * clip at once, its models pool over all frames), so limit `frames` for very long videos; the
 * generator runs `chunkFrames` frames at a time sliced from it, with its GRU state and the JND's
 * previous frame carried, and the adversarial frames wait on the CPU as 8-bit values (3 bytes
 * per pixel per frame and mode) until they are encoded and scored.
 *
 * Crossings between CPU and GPU per frame: the decoder's bytes go up once; the clean frame, its
 * JND map and the generator's output for every mode come back in one read-back per chunk
 * (quantisation and the quality measures run on the CPU); each mode's quantised frame goes up
 * once, and the encoder and the victim read it there; the encoder reads its bytes back. Every
 * mode shares one generator pass.
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
import { getGpu } from "../gpu/device.ts";
import { perturbationStats, videoQuality } from "../metrics/quality.ts";
import { computeJnd } from "../jnd/mod.ts";
import type { Generator } from "../models/generator_io.ts";
import type { Victim } from "../models/victims/victim.ts";
import { type AttackPanels, attackPanels, type KeptFrame, shownFrames } from "./panels.ts";
import {
  type AttackReport,
  type AttackRun,
  type AttackSettings,
  parseAttackReport,
} from "./report.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { concat, slice } from "../tensor/ops/shape.ts";
import {
  probeVideo,
  readVideoChunks,
  type VideoCodec,
  type VideoInfo,
  writableColour,
  writeVideo,
} from "../video/mod.ts";
import { decodedSize } from "../video/read.ts";
import { attackTarget } from "./losses.ts";
import { branchFor, chunkFor, generatorPerturb, quantizeInJnd } from "./stqa.ts";
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
  /** Called as each stage starts (`decode`, `score clean`, `attack`, `encode <mode>`, ...). */
  onStage?: (stage: string) => void;
  /**
   * Progress within the stages, for a progress line: frames done of the stage's total (null
   * while decoding a video whose frame count the probe cannot tell). Stages in order: `decode`
   * (per decoded chunk), `score clean` (0, then all: the victim scores the clip at once),
   * `attack` (per generator chunk, every mode at once), then per mode `encode <mode>` (per
   * chunk) and `score <mode>`. Within a stage `done` only grows and ends at the frame count.
   */
  onProgress?: (progress: { stage: string; done: number; total: number | null }) => void;
}

/** One update of {@link AttackVideoOptions.onProgress} (the type it is called with). */
export interface AttackProgress {
  /** The stage: `decode`, `score clean`, `attack`, `encode <mode>`, `score <mode>`. */
  stage: string;
  /** Frames done in this stage. */
  done: number;
  /** Frames the stage does, or null while unknown (decoding a clip of unknown length). */
  total: number | null;
}

function toUint8(src: Float32Array, dst: Uint8Array, offset: number): void {
  for (let i = 0; i < src.length; i++) dst[offset + i] = Math.round(src[i] * 255);
}

function toFloat(src: Uint8Array, from: number, to: number): Float32Array {
  const out = new Float32Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = src[i] / 255;
  return out;
}

/** `x` as one flat [N] view (its buffer shared), to concatenate tensors of any shapes. */
function flat(x: Tensor): Tensor {
  return x.reshape([x.shape.reduce((a, b) => a * b, 1)]);
}

/** The victim's score of the clip `x` [T,3,H,W] already on the GPU (not disposed here). */
async function scoreClip(
  victim: Victim,
  x: Tensor,
): Promise<{ score: number; frameScores: number[] | null; seconds: number }> {
  const t0 = performance.now();
  const shape = x.shape;
  let s: Tensor, f: Tensor | null;
  try {
    [s, f] = tidy(() =>
      noGrad(() => [victim.score(x), victim.frameScores ? victim.frameScores(x) : null])
    );
  } catch (e) {
    throw new RangeError(
      `${victim.name} cannot score ${shape[0]} frames of ${shape[3]}x${shape[2]} at once ` +
        `(${(e as Error).message}); attack fewer frames (--frames) or smaller ones (--size)`,
    );
  }
  const score = (await s.read())[0];
  const frameScores = f ? Array.from(await f.read()) : null;
  s.dispose();
  f?.dispose();
  return { score, frameScores, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Refuses, from the probe, a clip whose frames as one float tensor (the victim scores the whole
 * clip at once) would pass the adapter's storage binding limit, naming the video, the size and
 * the way out. A clip whose frame count the probe cannot tell is checked as it is decoded.
 */
function checkClipFits(
  input: string,
  info: { width: number; height: number; frameCount: number | null },
  frames: number | undefined,
  size: { width?: number; height?: number } | undefined,
): void {
  const t = Math.min(info.frameCount ?? Infinity, frames ?? Infinity);
  if (!Number.isFinite(t)) return;
  const { w, h } = decodedSize(info, size);
  const bytes = t * 3 * w * h * 4;
  const limit = getGpu().limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    const fit = Math.max(0, Math.floor(limit / (3 * w * h * 4)));
    throw new RangeError(
      `${input}: ${t} frames of ${w}x${h} need ${(bytes / 2 ** 20).toFixed(0)} MiB as one ` +
        `tensor, more than this adapter's binding limit of ${(limit / 2 ** 20).toFixed(0)} MiB; ` +
        (fit > 0 ? `attack at most ${fit} frames (--frames ${fit}) or ` : "") +
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
  const { generator } = options;
  const mode = options.mode ?? "untargeted";
  const eps = options.eps ?? generator.info.eps;
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
  const two = generator.net.config.variant === "two-branch";
  if (mode === "both" && !two) {
    throw new RangeError(
      `--mode both needs a two-branch generator; ${generator.path} is untargeted`,
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

  // Decode in chunks into one clip tensor that stays on the GPU: the victim scores the whole
  // clip at once, and the generator's chunks are sliced from it (no frame goes back to the CPU
  // and up again). A clip whose float tensor cannot be bound is refused from the probe, before
  // decoding (and after it, when the probe could not count the frames).
  const info = await probeVideo(input);
  checkClipFits(input, info, options.frames, options.size);
  const expected = Math.min(info.frameCount ?? Infinity, options.frames ?? Infinity);
  const decodeTotal = Number.isFinite(expected) ? expected : null;
  progress("decode", 0, decodeTotal);
  let clip: Tensor | undefined;
  const parts: Tensor[] = [];
  let t = 0, h = 0, w = 0;
  try {
    for await (
      const c of readVideoChunks(input, {
        maxFrames: options.frames,
        size: options.size,
        chunkFrames: requested,
      })
    ) {
      parts.push(c.frames);
      [, , h, w] = c.frames.shape;
      t += c.frames.shape[0];
      progress("decode", t, decodeTotal === null ? null : Math.max(decodeTotal, t));
    }
    if (t === 0) throw new Error(`${input}: no frames decoded`);
    if (decodeTotal !== t) progress("decode", t, t);
    checkClipFits(input, { width: w, height: h, frameCount: t }, undefined, undefined);
    clip = parts.length === 1 ? parts[0] : concat(parts, 0);
  } finally {
    for (const p of parts) if (p !== clip) p.dispose();
  }
  const decoded = clip!;
  try {
    return await attackClip(input, decoded, info, options, { t0, root, name, finalDir, eps });
  } finally {
    decoded.dispose();
  }
}

/** What {@link attackVideo} has settled before the attack proper. */
interface Settled {
  t0: number;
  root: string;
  name: string;
  finalDir: string;
  eps: number;
}

/**
 * The attack of a decoded clip (disposed by the caller once this returns): crossings between
 * CPU and GPU per frame and mode are one read-back of the clean frame, its JND map and the
 * generator's output(s) together, one upload of the quantised frame (encoded and scored from
 * there), and the encoder's read-back of its bytes.
 */
async function attackClip(
  input: string,
  clip: Tensor,
  source: Pick<VideoInfo, "fps" | "colour" | "variableFrameRate">,
  options: AttackVideoOptions,
  { t0, root, name, finalDir, eps }: Settled,
): Promise<AttackReport> {
  // A variable frame rate is written as its average constant rate (stated in the report).
  const fps = source.fps;
  const { generator, victim } = options;
  const mode = options.mode ?? "untargeted";
  const codec = options.codec ?? "ffv1";
  const onStage = options.onStage ?? (() => {});
  const onProgress = options.onProgress ?? (() => {});
  const progress = (stage: string, done: number, total: number) => {
    if (done === 0) onStage(stage);
    onProgress({ stage, done, total });
  };
  const [t, , h, w] = clip.shape;
  const frameSize = 3 * h * w;
  const chunk = chunkFor(generator.net, h, w, options.chunkFrames ?? 16);

  progress("score clean", 0, t);
  const cleanScore = await scoreClip(victim, clip);
  progress("score clean", t, t);
  const { qMin, qMax, median } = generator.info;
  const modes: AttackMode[] = mode === "both" ? ["up", "down"] : [mode];
  const branches = modes.map((m) => branchFor(generator, m, cleanScore.score));
  // The frames report.html shows, kept as they pass.
  const kept: KeptFrame[] = shownFrames(t).map((frame) => ({
    frame,
    clean: new Float32Array(0),
    jnd: new Float32Array(0),
    adversarial: [],
  }));

  const tmpDir = await makeWorkDir(root, name);
  try {
    // One generator pass for every mode: the JND, the GRU state and the frames are the same,
    // only the branch read differs.
    progress("attack", 0, t);
    const advs = modes.map(() => new Uint8Array(t * frameSize));
    const stats = modes.map(() => ({
      psnrFrames: [] as (number | null)[],
      ssimFrames: [] as number[],
      mseSum: 0,
      beyond: 0,
      absSum: 0,
      maxAbs: 0,
    }));
    let genSeconds = 0;
    let state: Tensor | undefined;
    try {
      for (let s = 0; s < t; s += chunk) {
        const tg = performance.now();
        const e = Math.min(t, s + chunk);
        const n = e - s;
        const shape = [n, 3, h, w] as [number, number, number, number];
        const out = tidy(() =>
          noGrad(() => {
            const x = slice(clip, { axis: 0, start: s, end: e });
            const prev = s > 0 ? slice(clip, { axis: 0, start: s - 1, end: s }) : undefined;
            const j = computeJnd(x, { model: generator.info.jnd, previous: prev });
            const r = generatorPerturb(generator.net, x, j, { eps, state });
            // The clean frames, the JND maps and each mode's frames in one read-back.
            const all = concat([x, j, ...branches.map((b) => r.adversarial[b])].map(flat), 0);
            return { all, state: r.state };
          })
        );
        state?.dispose();
        state = out.state;
        const all = await out.all.read();
        out.all.dispose();
        const values = n * frameSize;
        const cleanF = all.subarray(0, values);
        const jnd = all.subarray(values, values + n * h * w);
        for (const k of kept) {
          if (k.frame < s || k.frame >= e) continue;
          const i = k.frame - s;
          k.clean = cleanF.slice(i * frameSize, (i + 1) * frameSize);
          k.jnd = jnd.slice(i * h * w, (i + 1) * h * w);
        }
        for (const [mi, st] of stats.entries()) {
          const from = values + n * h * w + mi * values;
          const a = quantizeInJnd(cleanF, all.subarray(from, from + values), jnd, shape, eps);
          toUint8(a, advs[mi], s * frameSize);
          for (const k of kept) {
            if (k.frame < s || k.frame >= e) continue;
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
        }
        genSeconds += (performance.now() - tg) / 1000;
        progress("attack", e, t);
      }
    } finally {
      state?.dispose();
    }

    const attacks: AttackRun[] = [];
    for (const [mi, m] of modes.entries()) {
      const branch = branches[mi];
      const st = stats[mi];
      const file = modes.length === 1 ? "adversarial.mkv" : `adversarial-${m}.mkv`;
      // The quantised frames go up once; the encoder and the victim take them from there.
      const adv = tensor(toFloat(advs[mi], 0, advs[mi].length), [t, 3, h, w]);
      advs[mi] = new Uint8Array(0);
      try {
        progress(`encode ${m}`, 0, t);
        const te = performance.now();
        const advChunks = async function* () {
          for (let s = 0; s < t; s += chunk) {
            const e = Math.min(t, s + chunk);
            yield slice(adv, { axis: 0, start: s, end: e });
            progress(`encode ${m}`, e, t);
          }
        };
        await writeVideo(join(tmpDir, file), advChunks(), {
          fps,
          codec,
          disposeInput: true,
          oddSize: codec === "x264-420" ? "pad" : "error",
          // The input's colour tags (an RGB codec keeps primaries and transfer).
          colour: writableColour(source.colour, codec),
          // The input's audio, copied bit for bit (cut to the attacked frames' duration when
          // only the first frames are attacked).
          audio: {
            from: input,
            ...(options.frames !== undefined ? { seconds: t / fps } : {}),
          },
        });
        const encodeSeconds = (performance.now() - te) / 1000;

        progress(`score ${m}`, 0, t);
        const advScore = await scoreClip(victim, adv);
        progress(`score ${m}`, t, t);
        const mse = st.mseSum / t;
        attacks.push({
          mode: m,
          branch,
          output: file,
          codec,
          target: attackTarget(cleanScore.score, m, { qMin, qMax, median }),
          score: advScore.score,
          frameScores: advScore.frameScores,
          scoreChange: advScore.score - cleanScore.score,
          psnr: { mean: mse > 0 ? 10 * Math.log10(1 / mse) : null, frames: st.psnrFrames },
          ssim: { mean: st.ssimFrames.reduce((a, b) => a + b, 0) / t, frames: st.ssimFrames },
          beyondJnd: st.beyond / t,
          meanAbsLevels: st.absSum / t,
          maxAbsLevels: st.maxAbs,
          seconds: { generator: genSeconds, victim: advScore.seconds, encode: encodeSeconds },
        });
      } finally {
        adv.dispose();
      }
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
      clean: { score: cleanScore.score, frameScores: cleanScore.frameScores },
      attacks,
      seconds: (performance.now() - t0) / 1000,
      ...(options.settings ? { settings: options.settings } : {}),
    }, join(finalDir, "report.json"));
    await Deno.writeTextFile(join(tmpDir, "report.json"), JSON.stringify(report, null, 2) + "\n");
    if (options.extraFiles) {
      onStage("panels");
      const images = await attackPanels(kept, { width: w, height: h }, {
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
  }
}
