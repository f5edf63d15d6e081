/**
 * Attacking a video file with a trained generator: decode (in chunks), JND maps, generator,
 * 8-bit quantisation inside the JND box, encode, score clean and adversarial with the victim,
 * measure PSNR, SSIM and the share beyond the JND, and write `<outDir>/<name>/` with the
 * adversarial video(s) and report.json. Everything is written into a marked temporary folder
 * inside `outDir` that is renamed into place at the end, so a failure or Ctrl-C leaves nothing
 * behind; nothing is written outside `outDir`, and an earlier result is replaced only when asked.
 *
 * Memory: the generator runs `chunkFrames` frames at a time with its GRU state carried, and the
 * decoded video is held on the CPU as 8-bit values (3 bytes per pixel per frame); the victim
 * scores the whole clip at once (its models pool over all frames), which needs the whole clip
 * as floats on the GPU: limit `frames` for very long videos.
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
import { probeVideo, readVideoChunks, type VideoCodec, writeVideo } from "../video/mod.ts";
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
  /** Progress of the stages, for a progress line. */
  onStage?: (stage: string) => void;
}

function toUint8(src: Float32Array, dst: Uint8Array, offset: number): void {
  for (let i = 0; i < src.length; i++) dst[offset + i] = Math.round(src[i] * 255);
}

function toFloat(src: Uint8Array, from: number, to: number): Float32Array {
  const out = new Float32Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = src[i] / 255;
  return out;
}

async function scoreClip(
  victim: Victim,
  frames: Uint8Array,
  shape: number[],
): Promise<{ score: number; frameScores: number[] | null; seconds: number }> {
  const t0 = performance.now();
  const x = tensor(toFloat(frames, 0, frames.length), shape);
  try {
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
  } finally {
    x.dispose();
  }
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
  const two = generator.net.config.variant === "two-branch";
  if (mode === "both" && !two) {
    throw new RangeError(
      `--mode both needs a two-branch generator; ${generator.path} is untargeted`,
    );
  }
  if (mode !== "both" && mode !== "untargeted") branchFor(generator, mode); // throws early
  if (!(eps > 0)) throw new RangeError(`eps must be positive, got ${eps}`);
  const stage = options.onStage ?? (() => {});

  // Decode once; keep 8-bit frames on the CPU. The victim scores the whole clip at once, so
  // a clip whose float tensor cannot be bound is refused from the probe, before decoding.
  stage("decode");
  const info = await probeVideo(input);
  checkClipFits(input, info, options.frames, options.size);
  const parts: Uint8Array[] = [];
  let t = 0, h = 0, w = 0;
  for await (
    const c of readVideoChunks(input, {
      maxFrames: options.frames,
      size: options.size,
      chunkFrames: requested,
    })
  ) {
    [, , h, w] = c.frames.shape;
    const v = await c.frames.read();
    c.frames.dispose();
    const u = new Uint8Array(v.length);
    toUint8(v, u, 0);
    parts.push(u);
    t += c.frames.shape[0];
  }
  if (t === 0) throw new Error(`${input}: no frames decoded`);
  const frameSize = 3 * h * w;
  const chunk = chunkFor(generator.net, h, w, requested);
  const clean = new Uint8Array(t * frameSize);
  parts.reduce((off, p) => (clean.set(p, off), off + p.length), 0);
  parts.length = 0;

  stage("score clean");
  const cleanScore = await scoreClip(victim, clean, [t, 3, h, w]);
  const { qMin, qMax, median } = generator.info;
  const modes: AttackMode[] = mode === "both" ? ["up", "down"] : [mode];
  // The frames report.html shows, kept as they pass.
  const shown = shownFrames(t);
  const kept: KeptFrame[] = shown.map((frame) => ({
    frame,
    clean: toFloat(clean, frame * frameSize, (frame + 1) * frameSize),
    jnd: new Float32Array(0),
    adversarial: [],
  }));

  const tmpDir = await makeWorkDir(root, name);
  try {
    const attacks: AttackRun[] = [];
    for (const m of modes) {
      const branch = branchFor(generator, m, cleanScore.score);
      const file = modes.length === 1 ? "adversarial.mkv" : `adversarial-${m}.mkv`;
      stage(`attack ${m}`);
      const adv = new Uint8Array(clean.length);
      const psnrFrames: (number | null)[] = [];
      const ssimFrames: number[] = [];
      let mseSum = 0, beyond = 0, absSum = 0, maxAbs = 0;
      let genSeconds = 0;
      let state: Tensor | undefined;
      for (let s = 0; s < t; s += chunk) {
        const tg = performance.now();
        const e = Math.min(t, s + chunk);
        const shape = [e - s, 3, h, w];
        const cleanF = toFloat(clean, s * frameSize, e * frameSize);
        const x = tensor(cleanF, shape);
        const prev = s > 0
          ? tensor(toFloat(clean, (s - 1) * frameSize, s * frameSize), [1, 3, h, w])
          : undefined;
        const out = tidy(() =>
          noGrad(() => {
            const j = computeJnd(x, { model: generator.info.jnd, previous: prev });
            const r = generatorPerturb(generator.net, x, j, { eps, state });
            return { adv: r.adversarial[branch], state: r.state, j };
          })
        );
        state?.dispose();
        state = out.state;
        const jnd = await out.j.read();
        const a = quantizeInJnd(cleanF, await out.adv.read(), jnd, shape, eps);
        out.adv.dispose();
        out.j.dispose();
        x.dispose();
        prev?.dispose();
        toUint8(a, adv, s * frameSize);
        for (const k of kept) {
          if (k.frame < s || k.frame >= e) continue;
          const i = k.frame - s;
          if (!k.jnd.length) k.jnd = jnd.slice(i * h * w, (i + 1) * h * w);
          k.adversarial.push(a.slice(i * frameSize, (i + 1) * frameSize));
        }
        genSeconds += (performance.now() - tg) / 1000;
        const q = videoQuality(cleanF, a, shape as [number, number, number, number]);
        const p = perturbationStats(cleanF, a, jnd, shape as [number, number, number, number], {
          eps,
        });
        const n = e - s;
        for (let f = 0; f < n; f++) {
          psnrFrames.push(nullIfInfinite(q.psnr[f]));
          ssimFrames.push(q.ssim[f]);
          mseSum += Number.isFinite(q.psnr[f]) ? 10 ** (-q.psnr[f] / 10) : 0;
        }
        beyond += p.beyondJnd * n;
        absSum += p.meanAbsLevels * n;
        maxAbs = Math.max(maxAbs, p.maxAbsLevels);
      }
      state?.dispose();

      stage(`encode ${m}`);
      const te = performance.now();
      const advChunks = async function* () {
        for (let s = 0; s < t; s += chunk) {
          const e = Math.min(t, s + chunk);
          yield tensor(toFloat(adv, s * frameSize, e * frameSize), [e - s, 3, h, w]);
        }
      };
      await writeVideo(join(tmpDir, file), advChunks(), {
        fps: info.fps,
        codec,
        disposeInput: true,
        oddSize: codec === "x264-420" ? "pad" : "error",
        // The input's audio, copied bit for bit (cut to the attacked frames' duration when only
        // the first frames are attacked).
        audio: {
          from: input,
          ...(options.frames !== undefined ? { seconds: t / info.fps } : {}),
        },
      });
      const encodeSeconds = (performance.now() - te) / 1000;

      stage(`score ${m}`);
      const advScore = await scoreClip(victim, adv, [t, 3, h, w]);
      const mse = mseSum / t;
      attacks.push({
        mode: m,
        branch,
        output: file,
        codec,
        target: attackTarget(cleanScore.score, m, { qMin, qMax, median }),
        score: advScore.score,
        frameScores: advScore.frameScores,
        scoreChange: advScore.score - cleanScore.score,
        psnr: { mean: mse > 0 ? 10 * Math.log10(1 / mse) : null, frames: psnrFrames },
        ssim: { mean: ssimFrames.reduce((a, b) => a + b, 0) / t, frames: ssimFrames },
        beyondJnd: beyond / t,
        meanAbsLevels: absSum / t,
        maxAbsLevels: maxAbs,
        seconds: { generator: genSeconds, victim: advScore.seconds, encode: encodeSeconds },
      });
    }
    const report = parseAttackReport({
      version: 1,
      created: new Date().toISOString(),
      input,
      name,
      label: options.label ?? null,
      video: { frames: t, width: w, height: h, fps: info.fps },
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
      stage("panels");
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
