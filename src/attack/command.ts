/**
 * `deno task attack`, the main job: adversarial videos from a trained STQA-Net generator.
 *
 * ```
 * deno task attack [--input data/samples] [--victim vsfa-mini] [--generator stqa-vsfa-mini]
 *                  [--mode untargeted|up|down|both] [--eps e] [--codec ffv1] [--out out] ...
 * ```
 *
 * @module
 */

import { basename, extname, join, relative, resolve } from "path";
import { fileURLToPath } from "url";
import { z } from "zod";
import { commandLine, parseCommand } from "../_cli.ts";
import { formatSeconds } from "../_progress.ts";
import { isDir, isFile } from "../_fs.ts";
import { loadManifest } from "../data/manifest.ts";
import { loadGenericManifest } from "../data/loaders.ts";
import { DatasetError } from "../data/types.ts";
import { correlationReport } from "../eval/metrics.ts";
import { initGpu } from "../gpu/device.ts";
import { bundledGeneratorName, type Generator, loadGenerator } from "../models/generator_io.ts";
import { loadVictim } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { writeFileAtomic } from "../_fs.ts";
import { FfmpegNotFoundError, VideoError } from "../video/mod.ts";
import { attackVideo, isVideoPath } from "./video.ts";

/** The bundled sample clips (the default input). */
export const SAMPLES_DIR: string = fileURLToPath(new URL("../../data/samples/", import.meta.url));

const USAGE = `Usage: deno task attack [options]

Attacks videos with a trained STQA-Net generator against a victim VQA model and writes,
per video, <out>/<name>/adversarial.mkv and <out>/<name>/report.json. With no options it
attacks the bundled sample clips (data/samples) against the bundled vsfa-mini with the
bundled generator stqa-vsfa-mini.

Options:
  -i, --input <path>      a video file, a folder of videos, or a manifest (proxy manifest.json,
                          or a CSV/JSON list of path,mos) (default data/samples)
  --split <name>          for a proxy manifest: train | val | test | all (default test)
  -v, --victim <name>     bundled victim or .safetensors path (default vsfa-mini)
  -g, --generator <name>  bundled generator or path (default stqa-<victim>, or stqa-<victim>-2b
                          for --mode up/down/both)
  --mode <m>              untargeted | up | down | both (default untargeted; up/down/both need
                          a two-branch generator)
  --eps <e>               multiple of the JND allowed (default: the generator's, 1)
  --codec <c>             ffv1 | x264-444 | x264-420 (default ffv1, lossless)
  -o, --out <dir>         output folder (default out)
  --frames <n>            attack at most the first n frames (default all)
  --size <WxH>            scale frames when decoding, e.g. 320x180, 320x or x180 (default: as is)
  --chunk-frames <n>      frames per generator chunk; the GRU state is carried (default 16)
  --seed <n>              recorded in the report (the generator is deterministic) (default 1)
  -h, --help              this text

Exit codes: 0 done, 1 failure, 2 bad usage, 3 no WebGPU adapter.
`;

const SizeArg = z.string().regex(/^(\d+)?x(\d+)?$/, "expected WxH, Wx or xH, e.g. 320x180")
  .transform((s) => {
    const [w, h] = s.split("x");
    return { width: w ? Number(w) : undefined, height: h ? Number(h) : undefined };
  }).refine((s) => s.width !== undefined || s.height !== undefined, "give a width or a height")
  .refine((s) => (s.width ?? 2) > 0 && (s.height ?? 2) > 0, "sizes must be positive");

const ArgsSchema = z.object({
  input: z.string().min(1).optional(),
  split: z.enum(["train", "val", "test", "all"]).default("test"),
  victim: z.string().min(1).default("vsfa-mini"),
  generator: z.string().min(1).optional(),
  mode: z.enum(["untargeted", "up", "down", "both"]).default("untargeted"),
  eps: z.coerce.number().positive().max(16).optional(),
  codec: z.enum(["ffv1", "x264-444", "x264-420"]).default("ffv1"),
  out: z.string().min(1).default("out"),
  frames: z.coerce.number().int().positive().optional(),
  size: SizeArg.optional(),
  "chunk-frames": z.coerce.number().int().positive().max(4096).default(16),
  seed: z.coerce.number().int().nonnegative().default(1),
}).strict();

const FLAGS = {
  input: { type: "string", short: "i" },
  split: { type: "string" },
  victim: { type: "string", short: "v" },
  generator: { type: "string", short: "g" },
  mode: { type: "string" },
  eps: { type: "string" },
  codec: { type: "string" },
  out: { type: "string", short: "o" },
  frames: { type: "string" },
  size: { type: "string" },
  "chunk-frames": { type: "string" },
  seed: { type: "string" },
} as const;

/** A video to attack, with its label when it came from a manifest. */
export interface AttackInput {
  /** The file. */
  path: string;
  /** Its output folder's name (unique within the run). */
  name: string;
  /** Its label, or null. */
  label: number | null;
}

/**
 * The videos an `--input` names: one file, the video files of a folder (sorted), or the items of
 * a manifest (a proxy manifest, filtered by split, or a generic CSV/JSON list of path,mos).
 * Output names are the files' stems, made unique (the proxy's clip paths become
 * `source_motion_clip`).
 *
 * @throws {Error} naming the path when it does not exist, holds no videos, or a manifest lists
 * missing files.
 * @example
 * ```ts
 * import { resolveAttackInputs } from "./command.ts";
 * const inputs = await resolveAttackInputs("data/samples");
 * console.log(inputs.map((i) => i.name));
 * ```
 */
export async function resolveAttackInputs(
  input: string,
  options: { split?: "train" | "val" | "test" | "all" } = {},
): Promise<AttackInput[]> {
  let items: { path: string; label: number | null; name?: string }[];
  if (await isDir(input)) {
    const names: string[] = [];
    for await (const e of Deno.readDir(input)) {
      if (e.isFile && isVideoPath(e.name)) names.push(e.name);
    }
    names.sort();
    if (!names.length) {
      throw new Error(`${input}: no video files in this folder (${"mkv, mp4, avi, mov, ..."})`);
    }
    items = names.map((n) => ({ path: join(input, n), label: null }));
  } else if (!(await isFile(input))) {
    throw new Error(`${input}: no such file or folder`);
  } else if (/\.(json|csv)$/i.test(input)) {
    let proxy = false;
    if (input.toLowerCase().endsWith(".json")) {
      try {
        const j = JSON.parse(await Deno.readTextFile(input));
        proxy = j && typeof j === "object" && !Array.isArray(j) && "clips" in j;
      } catch (e) {
        throw new Error(`${input}: not valid JSON: ${(e as Error).message}`);
      }
    }
    const split = options.split ?? "test";
    const loaded = proxy
      ? await loadManifest(input, split === "all" ? {} : { splits: [split] })
      : await loadGenericManifest(input);
    if (loaded.missing.length) {
      throw new Error(
        `${input}: ${loaded.missing.length} listed video(s) are missing, e.g. ${loaded.missing[0]}`,
      );
    }
    if (!loaded.items.length) {
      throw new Error(`${input}: no videos listed${proxy ? ` in the ${split} split` : ""}`);
    }
    const base = resolve(input, "..");
    items = loaded.items.map((it) => ({
      path: it.path,
      label: it.mos,
      name: relative(base, it.path).replace(/^clips[\\/]/, "").replace(/\.[^.]+$/, "")
        .replaceAll(/[\\/]/g, "_"),
    }));
  } else {
    items = [{ path: input, label: null }];
  }
  const used = new Set<string>();
  return items.map((it) => {
    const stem = (it.name ?? basename(it.path, extname(it.path))).replaceAll(/[^\w.-]/g, "_");
    let name = stem;
    for (let k = 2; used.has(name); k++) name = `${stem}-${k}`;
    used.add(name);
    return { path: it.path, name, label: it.label };
  });
}

/**
 * Checks that a generator can attack a victim: the same family as the victim it was trained
 * against (scores on the same scale). A generator trained against one victim can still be
 * applied to another family for transfer studies, through {@link attackVideo} directly.
 *
 * @example
 * ```ts
 * import { checkPair } from "./command.ts";
 * // checkPair(generator, victim); // throws on a mismatch
 * ```
 */
export function checkPair(generator: Generator, victim: Victim): void {
  if (generator.info.victimFamily !== victim.family) {
    throw new Error(
      `the generator ${generator.path} was trained against ${generator.info.victim} ` +
        `(${generator.info.victimFamily}), not ${victim.family} (${victim.name}); pass ` +
        `--generator ${bundledGeneratorName(victim.name)} or train one with ` +
        `\`deno task train --victim ${victim.name}\``,
    );
  }
}

function fmt(v: number | null, digits = 2): string {
  return v === null ? "inf" : v.toFixed(digits);
}

/**
 * Runs `attack` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { attackCommand } from "./command.ts";
 * const code = await attackCommand(["--input", "data/samples/astronaut_pan.mkv"]);
 * ```
 */
export async function attackCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, { usage: USAGE, flags: FLAGS, schema: ArgsSchema });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  const t0 = performance.now();
  let victim: Victim | undefined;
  let generator: Generator | undefined;
  try {
    const inputs = await resolveAttackInputs(o.input ?? SAMPLES_DIR, { split: o.split });
    await initGpu();
    victim = await loadVictim(o.victim);
    const genName = o.generator ??
      bundledGeneratorName(o.victim, o.mode === "untargeted" ? "untargeted" : "two-branch");
    generator = await loadGenerator(genName);
    checkPair(generator, victim);
    console.error(
      `attacking ${inputs.length} video(s) against ${victim.name} with ${generator.path} ` +
        `(${generator.net.config.variant}, mode ${o.mode}, eps ${o.eps ?? generator.info.eps}, ` +
        `JND ${generator.info.jnd}) -> ${o.out}/`,
    );
    const rows: { label: number | null; clean: number; adv: number[] }[] = [];
    for (const [k, it] of inputs.entries()) {
      const r = await attackVideo(it.path, {
        generator,
        victim,
        mode: o.mode,
        eps: o.eps,
        codec: o.codec,
        outDir: o.out,
        name: it.name,
        frames: o.frames,
        size: o.size,
        chunkFrames: o["chunk-frames"],
        seed: o.seed,
        label: it.label,
      });
      const parts = r.attacks.map((a) =>
        `${a.mode} ${a.score.toFixed(3)} (${a.scoreChange >= 0 ? "+" : ""}${
          a.scoreChange.toFixed(3)
        }) PSNR ${fmt(a.psnr.mean)} dB SSIM ${a.ssim.mean.toFixed(4)} beyond-JND ${
          (100 * a.beyondJnd).toFixed(2)
        }% |d| ${a.meanAbsLevels.toFixed(2)}`
      );
      console.log(
        `[${
          k + 1
        }/${inputs.length}] ${it.name}: ${r.video.frames}x${r.video.width}x${r.video.height} ` +
          `clean ${r.clean.score.toFixed(3)} -> ${parts.join("; ")} (${r.seconds.toFixed(1)} s)`,
      );
      rows.push({ label: it.label, clean: r.clean.score, adv: r.attacks.map((a) => a.score) });
    }
    const summary: Record<string, unknown> = {
      command: commandLine("attack", args),
      videos: inputs.length,
      reports: inputs.map((i) => join(i.name, "report.json")),
      seconds: (performance.now() - t0) / 1000,
    };
    const labelled = rows.filter((r) => r.label !== null);
    if (labelled.length >= 3 && o.mode !== "both") {
      const labels = labelled.map((r) => r.label!);
      const c = correlationReport(labelled.map((r) => r.clean), labels);
      const a = correlationReport(labelled.map((r) => r.adv[0]), labels);
      summary.srccClean = c.srcc;
      summary.srccAdversarial = a.srcc;
      console.log(
        `SRCC against the labels (${labelled.length} videos): clean ${c.srcc.toFixed(3)}, ` +
          `adversarial ${a.srcc.toFixed(3)}`,
      );
    }
    await writeFileAtomic(join(o.out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    console.error(
      `done in ${formatSeconds((performance.now() - t0) / 1000)}; reports in ${o.out}/`,
    );
    return 0;
  } catch (e) {
    if (
      e instanceof VideoError || e instanceof DatasetError || e instanceof FfmpegNotFoundError ||
      e instanceof RangeError || e instanceof Error
    ) {
      console.error(`attack: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  } finally {
    generator?.net.dispose();
    victim?.dispose();
  }
}
