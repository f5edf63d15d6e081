/**
 * `deno task data`: builds the proxy dataset (default), or checks a real dataset's label file
 * and videos.
 *
 * ```
 * deno task data [--out cache/proxy] [--sources data/sources,data/sources_natural] [--force]
 * deno task data check --format konvid --root /data/KoNViD-1k
 * ```
 *
 * @module
 */

import { z } from "zod";
import { PathError } from "../_fs.ts";
import { prepareOutputDir } from "../_output.ts";
import { integerArg } from "../_zod.ts";
import { checkFlags, flagsOf, readFlags, usageError } from "./_args.ts";
import { FfmpegNotFoundError, VideoError } from "../video/mod.ts";
import {
  type Distortion,
  DISTORTION_KINDS,
  DISTORTIONS,
  EXTRA_DISTORTIONS,
  labelSummary,
} from "../data/manifest.ts";
import {
  buildProxyDataset,
  DEFAULT_PROXY_DIR,
  DEFAULT_SOURCES_DIR,
  MAX_LEVELS,
  type ProxyProgress,
} from "../data/proxy.ts";
import {
  DATASET_FORMATS,
  type DatasetFormat,
  DEFAULT_MOS_RANGE,
  loadDataset,
} from "../data/loaders.ts";
import { DatasetError } from "../data/types.ts";

const USAGE = `Usage: deno task data [options]
       deno task data check --format <format> --root <dir> [--labels <file>] [--videos <dir>]
                            [--mos-range <low,high>]

Builds the proxy dataset: clips with camera motion made from the source images, distorted with
ffmpeg (${DISTORTIONS.join(", ")}; on request also
${EXTRA_DISTORTIONS.join(", ")}), labelled 1..5 from their SSIM against the
pristine clip (see docs/data.md). Writes <out>/manifest.json and <out>/clips/ and nothing
outside <out>. A build whose manifest is up to date is skipped. Source images are named in the
dataset by their file name made safe (letters, digits, '.', '_', '-'; never hidden, '.' or '..'),
and distinct; a changed name is printed.

Build options:
  --out <dir>            output folder (default ${DEFAULT_PROXY_DIR})
  --sources <dirs>       source image folder, or a comma-separated list of folders whose
                         images make one dataset (each sorted by name, in the order
                         given; a name in two folders is refused) (default
                         ${DEFAULT_SOURCES_DIR})
  --seed <n>             seed of motions, noise and split (default 1)
  --frames <n>           frames per clip (default 8)
  --size <n>             clip width and height, even (default 64)
  --fps <n>              frame rate written in the clips (default 25)
  --motions <n>          camera motions per image (default 9)
  --levels <n>           levels per distortion, 1..${MAX_LEVELS} (default 4)
  --distortions <list>   comma-separated list of ${DISTORTIONS.join(",")} (the default)
                         and the opt-in ${EXTRA_DISTORTIONS.join(",")}
  --max-sources <n>      use only the first n images by name, of all the folders
                         (default all)
  --test <n>             images in the test split (default 3)
  --val <n>              images in the val split (default 1)
  --label <luma|yuv>     the SSIM the label comes from: luma (Y, the default) or yuv
                         (ffmpeg's All value, Y, U and V; chroma distortions count)
  -j, --jobs <n>         ffmpeg processes at a time (default 2)
  --force                rebuild even if up to date
  -q, --quiet            no progress line

Check options (loads a real dataset and lists missing videos):
  --format <f>           ${DATASET_FORMATS.join(" | ")}
  --root <dir>           the dataset folder as its authors ship it
  --labels <file>        the label file, when not in its usual place (required for manifest)
  --videos <dir>         the video folder, when not in its usual place
  --mos-range <lo,hi>    the range every MOS must lie in (default ${DEFAULT_MOS_RANGE.join(",")})
  -h, --help             this text
`;

/** How usage errors are printed: `deno task data: --frames: must be a whole number, got "x"`. */
const BUILD = { usage: USAGE, name: "deno task data", separator: "; " };
/** The same for `data check`. */
const CHECK = { usage: USAGE, name: "deno task data check", separator: "; " };

const BuildArgs = z.object({
  out: z.string().min(1).optional(),
  sources: z.string().min(1).optional(),
  seed: integerArg().optional(),
  frames: integerArg().optional(),
  size: integerArg().optional(),
  fps: integerArg().optional(),
  motions: integerArg().optional(),
  levels: integerArg().optional(),
  distortions: z.string().optional(),
  "max-sources": integerArg().optional(),
  test: integerArg().optional(),
  val: integerArg().optional(),
  jobs: integerArg().optional(),
  label: z.enum(["luma", "yuv"]).optional(),
  force: z.boolean().default(false),
  quiet: z.boolean().default(false),
});

/** `--mos-range 1,5`: two finite numbers, low <= high. */
const mosRangeArg = z.string().transform((s, ctx): [number, number] => {
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  const nums = s.split(",").map((p) => p.trim()).map((p) => NUMBER.test(p) ? Number(p) : NaN);
  if (nums.length !== 2 || !nums.every(Number.isFinite) || nums[0] > nums[1]) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `expected two numbers low,high with low <= high, got ${JSON.stringify(s)}`,
    });
    return z.NEVER;
  }
  return [nums[0], nums[1]];
});

const CheckArgs = z.object({
  format: z.enum(DATASET_FORMATS),
  root: z.string().min(1),
  labels: z.string().min(1).optional(),
  videos: z.string().min(1).optional(),
  "mos-range": mosRangeArg.optional(),
});

function progressPrinter(quiet: boolean): (p: ProxyProgress) => void {
  if (quiet) return () => {};
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let lastPct = -1;
  return (p) => {
    if (tty) {
      Deno.stderr.writeSync(enc.encode(`\r${p.done}/${p.total} clips`));
      if (p.done === p.total) Deno.stderr.writeSync(enc.encode("\n"));
    } else {
      const pct = Math.floor(p.done * 10 / p.total) * 10;
      if (pct !== lastPct) {
        lastPct = pct;
        console.error(`${p.done}/${p.total} clips (${pct}%)`);
      }
    }
  };
}

/** The flags of both subcommands. */
const FLAGS = {
  ...flagsOf(BuildArgs, { out: "o", jobs: "j", quiet: "q" }),
  ...flagsOf(CheckArgs),
};

/** Option names of `buildProxyDataset` as the command line spells them. */
const OPTION_FLAGS: Record<string, string> = {
  sources: "--sources",
  out: "--out",
  seed: "--seed",
  frames: "--frames",
  size: "--size",
  fps: "--fps",
  motionsPerImage: "--motions",
  levels: "--levels",
  distortions: "--distortions",
  maxSources: "--max-sources",
  testSources: "--test",
  valSources: "--val",
  concurrency: "--jobs",
  label: "--label",
};

/** Rewrites `proxy dataset options: maxSources: ...` as `--max-sources: ...`. */
function flagNames(message: string): string {
  return message.replace(/^proxy dataset options: /, "").replace(
    /(^|; )(\w+)(?=[.:])/g,
    (m, sep: string, key: string) => OPTION_FLAGS[key] ? `${sep}${OPTION_FLAGS[key]}` : m,
  );
}

async function build(raw: Record<string, unknown>): Promise<number> {
  const parsed = checkFlags(raw, BuildArgs, BUILD);
  if (!parsed.ok) return parsed.code;
  const a = parsed.values;
  const distortions = a.distortions?.split(",").map((s) => s.trim()).filter((s) => s);
  const bad = distortions?.filter((d) => !(DISTORTION_KINDS as readonly string[]).includes(d));
  if (bad?.length) {
    console.error(
      `deno task data: unknown distortion ${bad.join(", ")}; use ${DISTORTION_KINDS}`,
    );
    return 2;
  }
  // `--sources a,b`: several folders (one stays a plain string, as before).
  const folders = a.sources?.split(",").map((s) => s.trim()).filter((s) => s);
  if (folders !== undefined && folders.length === 0) {
    return usageError(`--sources: no folder in ${JSON.stringify(a.sources)}`, BUILD);
  }
  let result;
  try {
    // The output folder is checked (and made) before any work.
    await prepareOutputDir(a.out ?? DEFAULT_PROXY_DIR, { option: "--out" });
    result = await buildProxyDataset({
      out: a.out,
      sources: folders && folders.length === 1 ? folders[0] : folders,
      seed: a.seed,
      frames: a.frames,
      size: a.size,
      fps: a.fps,
      motionsPerImage: a.motions,
      levels: a.levels,
      distortions: distortions as Distortion[] | undefined,
      maxSources: a["max-sources"],
      testSources: a.test,
      valSources: a.val,
      concurrency: a.jobs,
      label: a.label,
      force: a.force,
      onProgress: progressPrinter(a.quiet),
      onNote: (m) => console.error(`note: ${m}`),
    });
  } catch (e) {
    if (e instanceof RangeError) {
      console.error(`deno task data: ${flagNames(e.message)}`);
      return 2;
    }
    if (
      e instanceof VideoError || e instanceof FfmpegNotFoundError || e instanceof PathError ||
      e instanceof DatasetError
    ) {
      console.error(`deno task data: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const m = result.manifest;
  console.log(
    result.built
      ? `Built ${m.clips.length} clips in ${result.seconds.toFixed(1)} s: ${result.manifestPath}`
      : `Up to date (${m.clips.length} clips): ${result.manifestPath} (--force rebuilds)`,
  );
  if (!a.quiet) console.log(labelSummary(m).join("\n"));
  return 0;
}

async function check(raw: Record<string, unknown>): Promise<number> {
  const parsed = checkFlags(raw, CheckArgs, CHECK);
  if (!parsed.ok) return parsed.code;
  const a = parsed.values;
  try {
    const d = await loadDataset(a.format as DatasetFormat, a.root, {
      labels: a.labels,
      videos: a.videos,
      mosRange: a["mos-range"],
    });
    const mos = d.items.map((i) => i.mos);
    console.log(`${d.items.length} videos with labels, ${d.missing.length} missing`);
    if (mos.length) {
      const mean = mos.reduce((x, y) => x + y, 0) / mos.length;
      console.log(
        `MOS min ${Math.min(...mos)}, mean ${mean.toFixed(3)}, max ${Math.max(...mos)}`,
      );
    }
    for (const p of d.missing.slice(0, 20)) console.log(`missing: ${p}`);
    if (d.missing.length > 20) console.log(`... and ${d.missing.length - 20} more`);
    return d.missing.length ? 1 : 0;
  } catch (e) {
    if (e instanceof DatasetError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
}

/**
 * Runs `deno task data` with its arguments (after the command name); returns the exit code
 * (0 success, 1 failure or missing videos, 2 bad usage).
 *
 * @example
 * ```ts
 * import { dataCommand } from "./data.ts";
 * const code = await dataCommand(["--frames", "8", "--size", "64"]);
 * ```
 */
export async function dataCommand(args: string[]): Promise<number> {
  const parsed = readFlags(args, { ...BUILD, flags: FLAGS, positionals: true });
  if (!parsed.ok) return parsed.code;
  const { values, positionals } = parsed;
  const sub = positionals[0] ?? "build";
  const checkOnly = ["format", "root", "labels", "videos", "mos-range"];
  if (sub === "build") {
    const stray = checkOnly.filter((k) => k in values);
    if (stray.length) {
      return usageError(`--${stray[0]} belongs to 'data check'`, BUILD);
    }
    return await build(values);
  }
  if (sub === "check") {
    const { format, root, labels, videos } = values;
    return await check({ format, root, labels, videos, "mos-range": values["mos-range"] });
  }
  return usageError(`unknown subcommand '${sub}' (build or check)`, BUILD);
}
