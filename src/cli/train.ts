/**
 * `deno task train`: trains an STQA-Net generator against a frozen victim on the proxy
 * dataset's train split, then attacks the test split and records the results beside the
 * weights.
 *
 * ```
 * deno task train --victim vsfa-mini [--variant untargeted|two-branch] [--steps 300] [--resume]
 * ```
 *
 * Everything that can be checked is checked before the victim or the clips are loaded: the
 * options, the network config (bounds, and its parameters against the adapter and the memory
 * budget), the output stem (an existing generator is not replaced without `--overwrite`), the
 * checkpoint folder, and with `--resume` the checkpoint itself. Every failure is one line.
 *
 * @module
 */

import { z } from "zod";
import { parseCommand } from "./_args.ts";
import { runTrainingCommand } from "./_train.ts";
import { formatSeconds } from "../_progress.ts";
import { JND_MODELS } from "../jnd/models.ts";
import { checkGeneratorConfig } from "../models/generator_io.ts";
import { trainGenerator } from "../train/generator.ts";

const USAGE = `Usage: deno task train --victim <name> [options]

Trains an STQA-Net generator against a frozen victim on the proxy dataset (deno task data),
attacks the test split with it, and writes <out>.safetensors and <out>.json (config, victim,
eps, median, command, seed, test results).

Options:
  -v, --victim <name>      bundled victim (vsfa-mini, simplevqa-mini, fastvqa-mini) or a path,
                           or a published model (vsfa, mdtvsfa, simplevqa, fast-vqa,
                           faster-vqa, dover) with --weights
  --weights <files>        a published victim's weight files, comma-separated, as its authors
                           publish them (e.g. VSFA.pt,resnet50-19c8e357.pth)
  --variant <v>            untargeted | two-branch | signed (default untargeted)
  --manifest <file>        proxy manifest (default cache/proxy/manifest.json)
  -o, --out <stem>         output stem (default data/models/stqa-<victim> for two-branch,
                           ...-signed, ...-paper for untargeted: the bundled generators)
  --overwrite              replace a generator already at <stem>.safetensors / <stem>.json
                           (without it it is refused before anything is loaded)
  --steps <n>              optimiser steps (default 300)
  --batch <n>              clips per step (default 4)
  --lr <v>                 peak learning rate, cosine decay to lr/10 (default 1e-3)
  --eps <e>                multiple of the JND the perturbation may reach (default 1)
  --penalty <w>            weight of mean(A^2) in the loss at the start (default 1); it decays
                           linearly to --penalty-end over the first --penalty-decay of the steps
  --penalty-end <w>        the weight after the decay (default 0.01)
  --penalty-decay <f>      fraction of the steps the decay takes (default 0.5)
  --shift <n>              crop the adversarial clips by n pixels per axis at a random offset
                           each step before the victim scores them (default 0)
  --isotropy <w>           weight of the isotropy penalty on the maps (default 0)
  --lattice <w>            weight of the lattice penalty on the maps (the share of their
                           energy on the period-4 grid; default 0)
  --lowpass <w>            weight of the low-pass penalty on the maps (the share of their
                           energy in 4x4 block means; default 0)
  --crops <manifest>       a second proxy manifest of larger clips (e.g. built with
                           deno task data --size 480): part of each batch are random windows
                           of its training clips (read at their own size) at the main clips'
                           size (signed and two-branch only)
  --crop-share <f>         share of each batch drawn from --crops (default 0.5)
  --crop-context <px>      cut each crop this much larger on every side, run the generator on
                           all of it and score only the centre (default 0)
  --val-every <n>          every n steps (and at the last) attack --val-clips clips of the val
                           split and print the strength (the curve goes to the JSON's
                           training.validation; default 0: never)
  --val-clips <n>          val clips for --val-every, evenly spaced (default 24)
  --chroma <w>             apply the three structure penalties again, times w, to the maps'
                           Cb and Cr combinations (colour stripes; default 0)
  --test-clips <n>         attack at most n test clips, evenly spaced, after training (default
                           all)
  --jnd <model>            ${JND_MODELS.join(" | ")} (default namm-st)
  --config <json>          network config overrides, e.g. '{"hidden":64}'
  --seed <n>               seed of the weights and the batch order (default 1)
  --max-clips <n>          use only the first n training clips (quick runs)
  --checkpoint-every <n>   steps between checkpoints (default 25)
  --checkpoint-dir <dir>   checkpoint folder (default cache/generators/<out name>)
  --resume                 continue from the checkpoint (same options)
  -h, --help               this text

Exit codes: 0 done, 1 failure (including a non-finite loss, a bad checkpoint or an output
that cannot be written or would replace weights), 2 bad usage (an option or the config),
3 no WebGPU adapter.
`;

const ArgsSchema = z.object({
  victim: z.string({ required_error: "required: a bundled victim name or a path" }).min(1),
  weights: z.string().min(1).transform((s) => s.split(",").filter((f) => f.length > 0))
    .optional(),
  variant: z.enum(["untargeted", "two-branch", "signed"]).default("untargeted"),
  manifest: z.string().min(1).default("cache/proxy/manifest.json"),
  out: z.string().min(1).optional(),
  steps: z.coerce.number().int().positive().default(300),
  batch: z.coerce.number().int().positive().max(64).default(4),
  lr: z.coerce.number().positive().max(1).default(1e-3),
  eps: z.coerce.number().positive().max(16).default(1),
  penalty: z.coerce.number().nonnegative().default(1),
  "penalty-end": z.coerce.number().nonnegative().default(0.01),
  "penalty-decay": z.coerce.number().min(0).max(1).default(0.5),
  shift: z.coerce.number().int().min(0).max(16).default(0),
  isotropy: z.coerce.number().nonnegative().default(0),
  lattice: z.coerce.number().nonnegative().default(0),
  lowpass: z.coerce.number().nonnegative().default(0),
  crops: z.string().min(1).optional(),
  "crop-share": z.coerce.number().min(0).max(1).default(0.5),
  "crop-context": z.coerce.number().int().min(0).max(256).default(0),
  "val-every": z.coerce.number().int().nonnegative().default(0),
  "val-clips": z.coerce.number().int().min(2).default(24),
  chroma: z.coerce.number().nonnegative().default(0),
  "test-clips": z.coerce.number().int().positive().optional(),
  jnd: z.enum(JND_MODELS).default("namm-st"),
  config: z.string().optional(),
  seed: z.coerce.number().int().nonnegative().default(1),
  "max-clips": z.coerce.number().int().positive().optional(),
  "checkpoint-every": z.coerce.number().int().positive().default(25),
  "checkpoint-dir": z.string().min(1).optional(),
  resume: z.boolean().default(false),
  overwrite: z.boolean().default(false),
}).strict();

/** One-letter aliases of the flags. */
const SHORT = { victim: "v", out: "o" };

/**
 * Runs `train` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { trainCommand } from "./train.ts";
 * const code = await trainCommand(["--victim", "vsfa-mini", "--steps", "300"]);
 * ```
 */
export async function trainCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, { usage: USAGE, short: SHORT, schema: ArgsSchema });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  return await runTrainingCommand({
    name: "train",
    args,
    config: o.config,
    checkConfig: (config) => checkGeneratorConfig({ ...config, variant: o.variant }),
    train: async (config, command) => {
      const r = await trainGenerator({
        victim: o.victim,
        victimWeights: o.weights,
        variant: o.variant,
        manifest: o.manifest,
        out: o.out,
        steps: o.steps,
        batch: o.batch,
        lr: o.lr,
        eps: o.eps,
        penalty: o.penalty,
        penaltyEnd: o["penalty-end"],
        penaltyDecay: o["penalty-decay"],
        shift: o.shift,
        isotropy: o.isotropy,
        lattice: o.lattice,
        lowpass: o.lowpass,
        crops: o.crops,
        cropShare: o["crop-share"],
        cropContext: o["crop-context"],
        valEvery: o["val-every"],
        valClips: o["val-clips"],
        chroma: o.chroma,
        testClips: o["test-clips"],
        jnd: o.jnd,
        config,
        seed: o.seed,
        maxClips: o["max-clips"],
        checkpointEvery: o["checkpoint-every"],
        checkpointDir: o["checkpoint-dir"],
        resume: o.resume,
        overwrite: o.overwrite,
        command,
      });
      const t = r.test!;
      const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
      console.log(
        `trained in ${formatSeconds(r.trainSeconds)}; test split (${t.n} clips, eps ${t.eps}): ` +
          `SRCC clean ${t.srccClean.toFixed(3)} -> adversarial ${t.srccAdv.toFixed(3)}, ` +
          `mean |score change| ${t.meanScoreChange.toFixed(3)}, PSNR ${
            t.meanPsnr.toFixed(2)
          } dB, ` +
          `SSIM ${t.meanSsim.toFixed(4)}, beyond JND ${pct(t.beyondJnd)}` +
          (t.bothRight !== undefined
            ? `; up above clean ${pct(t.upAbove!)}, down below ${pct(t.downBelow!)}, both ${
              pct(t.bothRight)
            }`
            : ""),
      );
      console.log(`wrote ${r.weights} and ${r.json}`);
      r.generator?.net.dispose();
    },
  });
}
