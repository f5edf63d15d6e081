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

import { join } from "path";
import { fileURLToPath } from "url";
import { z } from "zod";
import { commandLine, parseCommand } from "./_args.ts";
import { formatSeconds, ProgressLine } from "../_progress.ts";
import { checkRegularFile, fileSha256, PathError } from "../_fs.ts";
import { insideOutput, prepareOutputDir, removeStaleWorkDirs } from "../_output.ts";
import { resolveVideoInputs, type VideoInput } from "../data/inputs.ts";
import { correlationReport } from "../metrics/correlation.ts";
import { initGpu, NoAdapterError } from "../gpu/device.ts";
import { bundledGeneratorName, type Generator, loadGenerator } from "../models/generator_io.ts";
import { loadVictim } from "../models/victims/mod.ts";
import type { Victim } from "../models/victims/victim.ts";
import { writeFileAtomic } from "../_fs.ts";
import { victimWeightsId } from "./_victim.ts";
import {
  type AttackReport,
  type AttackSettings,
  attackSettingsDiff,
  parseAttackReport,
} from "../attack/report.ts";
import { branchFor, checkPair, steerable } from "../attack/stqa.ts";
import { attackVideo } from "../attack/video.ts";
import { attackReportFiles } from "../report/attack_html.ts";

/** The bundled sample clips (the default input). */
export const SAMPLES_DIR: string = fileURLToPath(new URL("../../data/samples/", import.meta.url));

const USAGE = `Usage: deno task attack [options]

Attacks videos with a trained STQA-Net generator against a victim VQA model and writes,
per video, <out>/<name>/adversarial.mkv and <out>/<name>/report.json. With no options it
attacks the bundled sample clips (data/samples) against the bundled vsfa-mini with the
bundled generator stqa-vsfa-mini. Each video is streamed chunk by chunk (any length), the
input's audio copied bit for bit.

Options:
  -i, --input <path>      a video file, a folder of videos, or a manifest (proxy manifest.json,
                          or a CSV/JSON list of path,mos) (default data/samples)
  --split <name>          for a proxy manifest: train | val | test | all (default test)
  -v, --victim <name>     bundled victim or .safetensors path (default vsfa-mini), or a
                          published model (vsfa, mdtvsfa, simplevqa, fast-vqa, faster-vqa,
                          dover) with --weights
  --weights <files>       a published victim's weight files as its authors publish them,
                          comma-separated (e.g. VSFA.pt,resnet50-19c8e357.pth)
  -g, --generator <name>  bundled generator or path (default stqa-<victim>, two-branch; also
                          stqa-<victim>-signed, signed, and stqa-<victim>-paper, the paper's)
  --mode <m>              untargeted | up | down | both (default untargeted; up/down/both need
                          a signed or two-branch generator; untargeted with one of them scores
                          the clean video first to pick the direction)
  --eps <e>               multiple of the JND allowed (default: the generator's, 1)
  --codec <c>             ffv1 | x264-444 | x264-420 (default ffv1, lossless)
  -o, --out <dir>         output folder (default out)
  --frames <n>            attack at most the first n frames (default all)
  --size <WxH>            scale frames when decoding, e.g. 320x180, 320x or x180 (default: as is)
  --chunk-frames <n>      frames per chunk of the streamed pass (decode, JND, generator, encode
                          and the victim's scores, their state carried); memory grows with
                          the chunk, not the video (default 16)
  --seed <n>              recorded in the report (the generator is deterministic) (default 1)
  --overwrite             redo videos whose earlier result in --out was made with other options
  --keep-going            record a video that fails in summary.json and go on with the next
  -h, --help              this text

Reruns: a video whose <out>/<name>/report.json was made with the same options is skipped; one
made with other options is refused (before any work) unless --overwrite. Nothing outside --out
is written, and inside it only the video folders and summary.json; output names come from the
videos' names, made safe and distinct (the mapping is printed where it differs).

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
  weights: z.string().min(1).transform((s) => s.split(",").filter((f) => f.length > 0))
    .optional(),
  generator: z.string().min(1).optional(),
  mode: z.enum(["untargeted", "up", "down", "both"]).default("untargeted"),
  eps: z.coerce.number().positive().max(16).optional(),
  codec: z.enum(["ffv1", "x264-444", "x264-420"]).default("ffv1"),
  out: z.string().min(1).default("out"),
  frames: z.coerce.number().int().positive().optional(),
  size: SizeArg.optional(),
  "chunk-frames": z.coerce.number().int().positive().max(4096).default(16),
  seed: z.coerce.number().int().nonnegative().default(1),
  overwrite: z.boolean().default(false),
  "keep-going": z.boolean().default(false),
}).strict();

const FLAGS = {
  input: { type: "string", short: "i" },
  split: { type: "string" },
  victim: { type: "string", short: "v" },
  weights: { type: "string" },
  generator: { type: "string", short: "g" },
  mode: { type: "string" },
  eps: { type: "string" },
  codec: { type: "string" },
  out: { type: "string", short: "o" },
  frames: { type: "string" },
  size: { type: "string" },
  "chunk-frames": { type: "string" },
  seed: { type: "string" },
  overwrite: { type: "boolean" },
  "keep-going": { type: "boolean" },
} as const;

function fmt(v: number | null, digits = 2): string {
  return v === null ? "inf" : v.toFixed(digits);
}

/**
 * Runs `attack` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { attackCommand } from "./attack.ts";
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
    // Everything that can be checked before the long work: the output folder, the inputs,
    // the models, the mode, earlier results in --out.
    const root = await prepareOutputDir(o.out);
    const stale = await removeStaleWorkDirs(root);
    if (stale.length) {
      console.error(`removed ${stale.length} unfinished folder(s) of interrupted runs in ${o.out}`);
    }
    for (const legacy of await legacyWorkDirs(root)) {
      console.error(
        `note: ${join(o.out, legacy)} looks like an unfinished folder of an earlier version ` +
          "(unmarked, so left alone): remove it by hand",
      );
    }
    const inputs = await resolveVideoInputs(o.input ?? SAMPLES_DIR, {
      split: o.split,
      reserved: ["summary.json"],
    });
    for (const it of inputs) {
      if (it.renamedFrom !== undefined) {
        console.error(`output name: ${it.path} -> ${join(o.out, it.name)}/`);
      }
    }
    await initGpu();
    victim = await loadVictim(o.victim, { weights: o.weights });
    const genName = o.generator ?? bundledGeneratorName(o.victim);
    generator = await loadGenerator(genName);
    checkPair(generator, victim);
    checkMode(generator, o.mode);
    const eps = o.eps ?? generator.info.eps;
    const common = {
      victim: { name: victim.name, weights: await victimWeightsId(o.victim, o.weights) },
      generator: { path: generator.path, weights: await fileSha256(generator.path) },
      mode: o.mode,
      eps,
      codec: o.codec,
      frames: o.frames ?? null,
      size: o.size ? { width: o.size.width ?? null, height: o.size.height ?? null } : null,
      jnd: generator.info.jnd,
    };
    const summaryFile = await checkSummary(root);
    const plan = await planAttacks(root, o.out, inputs, common, o.overwrite);
    const todo = plan.filter((p) => p.action !== "skip").length;
    console.error(
      `attacking ${todo} video(s) against ${victim.name} with ${generator.path} ` +
        `(${generator.net.config.variant}, mode ${o.mode}, eps ${eps}, ` +
        `JND ${generator.info.jnd}) -> ${o.out}/` +
        (todo < inputs.length ? ` (${inputs.length - todo} already done with these options)` : ""),
    );
    // Frames done, frames per second and time left of the streamed pass (and of the clean
    // pass that comes first for a two-branch untargeted attack): one line redrawn in place on
    // a terminal, a line every few seconds at most in a log.
    const line = new ProgressLine();
    const rows: { label: number | null; clean: number; adv: number[] }[] = [];
    const failures: { input: string; name: string; error: string }[] = [];
    for (const [k, p] of plan.entries()) {
      const it = p.input;
      const head = `[${k + 1}/${inputs.length}] ${it.name}`;
      let r: AttackReport;
      if (p.action === "skip") {
        r = p.report!;
        console.log(`${head}: already done with these options (clean ${r.clean.score.toFixed(3)})`);
      } else {
        try {
          r = await attackVideo(it.path, {
            generator,
            victim,
            mode: o.mode,
            eps: o.eps,
            codec: o.codec,
            outDir: root,
            name: it.name,
            replace: p.action === "replace",
            settings: p.record,
            extraFiles: attackReportFiles,
            frames: o.frames,
            size: o.size,
            chunkFrames: o["chunk-frames"],
            seed: o.seed,
            label: it.label,
            onProgress: (p) => line.update(p, head),
          });
        } catch (e) {
          line.end();
          if (!o["keep-going"] || e instanceof NoAdapterError) throw e;
          const error = (e as Error).message;
          console.error(`${head}: failed: ${error}`);
          failures.push({ input: it.path, name: it.name, error });
          continue;
        }
        line.end();
        const parts = r.attacks.map((a) =>
          `${a.mode} ${a.score.toFixed(3)} (${a.scoreChange >= 0 ? "+" : ""}${
            a.scoreChange.toFixed(3)
          }) PSNR ${fmt(a.psnr.mean)} dB SSIM ${a.ssim.mean.toFixed(4)} beyond-JND ${
            (100 * a.beyondJnd).toFixed(2)
          }% |d| ${a.meanAbsLevels.toFixed(2)}`
        );
        console.log(
          `${head}: ${r.video.frames}x${r.video.width}x${r.video.height} ` +
            `clean ${r.clean.score.toFixed(3)} -> ${parts.join("; ")} (${r.seconds.toFixed(1)} s)` +
            (r.video.variableFrameRate
              ? `; variable frame rate written as constant ${r.video.fps.toFixed(3)} fps`
              : ""),
        );
      }
      rows.push({ label: it.label, clean: r.clean.score, adv: r.attacks.map((a) => a.score) });
    }
    const done = new Set(failures.map((f) => f.name));
    const summary: Record<string, unknown> = {
      tool: "stqa attack",
      command: commandLine("attack", args),
      videos: inputs.length,
      reports: inputs.filter((i) => !done.has(i.name)).map((i) => join(i.name, "report.json")),
      failures,
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
    await writeFileAtomic(summaryFile, JSON.stringify(summary, null, 2) + "\n");
    if (failures.length) {
      console.error(
        `attack: ${failures.length} of ${inputs.length} video(s) failed (listed in ` +
          `${join(o.out, "summary.json")}); the others are done`,
      );
      return 1;
    }
    console.error(
      `done in ${formatSeconds((performance.now() - t0) / 1000)}; reports in ${o.out}/`,
    );
    return 0;
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    console.error(`attack: ${(e as Error).message}`);
    return 1;
  } finally {
    generator?.net.dispose();
    victim?.dispose();
  }
}

/**
 * Hidden folders `.<name>.<random>` holding only what an attack of an earlier version wrote
 * there before its final rename (it did not mark its temporary folders).
 */
async function legacyWorkDirs(root: string): Promise<string[]> {
  const found: string[] = [];
  const known = /^(adversarial(-up|-down)?\.mkv|report\.(json|html)|\..*\.tmp)$/;
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory || !/^\.[^.].*\.\w{6,}$/.test(e.name) || e.name.startsWith(".stqa-tmp-")) {
      continue;
    }
    let ours = true;
    for await (const f of Deno.readDir(join(root, e.name))) ours &&= known.test(f.name);
    if (ours) found.push(e.name);
  }
  return found.sort();
}

/** Refuses a mode the generator cannot do, before any video is read. */
function checkMode(generator: Generator, mode: "untargeted" | "up" | "down" | "both"): void {
  if (mode === "both") {
    if (!steerable(generator.net)) {
      throw new RangeError(
        `--mode both needs a two-branch or signed generator; ${generator.path} is untargeted`,
      );
    }
  } else if (mode !== "untargeted") branchFor(generator, mode);
}

/** What the run does with one video. */
interface PlannedAttack {
  input: VideoInput;
  action: "attack" | "replace" | "skip";
  record: AttackSettings;
  /** The earlier report, for a skipped video. */
  report?: AttackReport;
}

/**
 * Decides, before any work, what to do with each video given what --out holds: attack it (no
 * earlier result), skip it (an earlier result made with the same options), replace it
 * (`--overwrite`, an earlier result of this command made otherwise). Refuses a folder in the way
 * that is not an attack result, and earlier results made otherwise without `--overwrite`,
 * naming the differences.
 */
async function planAttacks(
  root: string,
  shownOut: string,
  inputs: VideoInput[],
  common: Omit<AttackSettings, "input">,
  overwrite: boolean,
): Promise<PlannedAttack[]> {
  const plan: PlannedAttack[] = [];
  const conflicts: string[] = [];
  for (const input of inputs) {
    await checkRegularFile(input.path, "video");
    const real = await Deno.realPath(input.path);
    const info = await Deno.stat(real);
    const record: AttackSettings = {
      input: { path: real, bytes: info.size, modified: info.mtime?.toISOString() ?? null },
      ...common,
    };
    const dir = await insideOutput(root, input.name);
    if (!(await Deno.lstat(dir).then(() => true, () => false))) {
      plan.push({ input, action: "attack", record });
      continue;
    }
    const shown = join(shownOut, input.name);
    if (real.startsWith(dir + "/")) {
      throw new PathError(
        dir,
        `${input.path}: the input is inside ${shown}/, which it would replace`,
      );
    }
    let earlier: AttackReport;
    try {
      if (!(await Deno.lstat(dir)).isDirectory) throw new Error("not a folder");
      earlier = parseAttackReport(
        await Deno.readTextFile(join(dir, "report.json")),
        join(shown, "report.json"),
      );
    } catch {
      throw new PathError(
        dir,
        `${shown}: exists and is not a result of \`deno task attack\`; it is left alone: ` +
          "choose another --out or move it away",
      );
    }
    const diff = earlier.settings
      ? attackSettingsDiff(earlier.settings, record)
      : ["options not recorded (an earlier version)"];
    if (!diff.length && !overwrite) plan.push({ input, action: "skip", record, report: earlier });
    else if (overwrite) plan.push({ input, action: "replace", record });
    else {
      conflicts.push(`${shown}: ${diff.join(", ")}`);
      plan.push({ input, action: "skip", record, report: earlier });
    }
  }
  if (conflicts.length) {
    throw new Error(
      `${shownOut} holds result(s) made with other options: ${conflicts.slice(0, 3).join("; ")}` +
        (conflicts.length > 3 ? `; and ${conflicts.length - 3} more` : "") +
        `; pass --overwrite to replace them, or choose another --out`,
    );
  }
  return plan;
}

/**
 * The path of <root>/summary.json, checked before any work: a summary there must be one that an
 * earlier attack run wrote (it is replaced); anything else is left alone and refused.
 */
async function checkSummary(root: string): Promise<string> {
  const file = await insideOutput(root, "summary.json");
  if (await Deno.lstat(file).then(() => true, () => false)) {
    let ours = false;
    try {
      const j = JSON.parse(await Deno.readTextFile(file));
      ours = j?.tool === "stqa attack" || String(j?.command ?? "").startsWith("deno task attack");
    } catch { /* not ours */ }
    if (!ours) {
      throw new PathError(
        file,
        `${file}: exists and was not written by \`deno task attack\`; it is left alone: ` +
          "choose another --out or move it away",
      );
    }
  }
  return file;
}
