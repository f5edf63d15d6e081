/**
 * `deno task train-victim`: trains one victim family on the proxy dataset's train split and
 * reports SRCC, KRCC, PLCC and RMSE on its test split.
 *
 * ```
 * deno task train-victim --model vsfa-mini [--steps 400] [--seed 1] [--resume] [--overwrite]
 * ```
 *
 * Everything that can be checked is checked before clips are loaded or training starts: the
 * options, the config (bounds, and sizes against the adapter and the memory budget), the output
 * stem (existing weights are not replaced without `--overwrite`), the checkpoint folder, and with
 * `--resume` the checkpoint itself. Every failure is one line; exit codes 0 done, 1 failure,
 * 2 bad usage (a bad option value or config), 3 no WebGPU adapter; an output that cannot be
 * written or would replace weights is a failure (1), as for the other commands.
 *
 * @module
 */

import { z } from "zod";
import { parseCommand } from "./_args.ts";
import { runTrainingCommand } from "./_train.ts";
import { checkVictimConfig } from "../models/victims/mod.ts";
import { trainVictim } from "../train/victim.ts";
import { TRAINABLE_FAMILIES } from "../models/victims/victim.ts";

const USAGE = `Usage: deno task train-victim --model <name> [options]

Trains a victim VQA model on the proxy dataset (deno task data) and writes
<out>.safetensors and <out>.json (config, command, seed, date, test metrics).

Options:
  -m, --model <name>       ${TRAINABLE_FAMILIES.join(" | ")}
  --manifest <file>        proxy manifest (default cache/proxy/manifest.json)
  -o, --out <stem>         output stem (default data/models/<model>, the bundled weights)
  --overwrite              replace weights already at <stem>.safetensors / <stem>.json
                           (without it they are refused before training starts)
  --steps <n>              optimiser steps (default 400)
  --batch <n>              clips per step (default 8)
  --lr <v>                 peak learning rate, cosine decay to lr/10 (default 2e-3)
  --loss <mse|l1>          loss on the label (default mse)
  --seed <n>               seed of the weights and the batch order (default 1)
  --checkpoint-every <n>   steps between checkpoints (default 50)
  --checkpoint-dir <dir>   checkpoint folder (default cache/victims/<model>)
  --resume                 continue from the checkpoint (same options)
  --rank-weight <v>        weight of a pairwise ranking term added to the loss (default 0)
  --rank-margin <v>        margin of the ranking term (default 0.1)
  --weight-decay <v>       Adam L2 weight decay (default 0)
  --augment                random transposes of the training clips
  --eval-every <n>         validate on the val split every n steps and keep the best
                           step's weights (default 0: keep the last)
  --config <json>          config overrides of the family, e.g. '{"input":"rgb+mscn"}'
  -h, --help               this text

Exit codes: 0 done, 1 failure (including a non-finite loss, a bad checkpoint or an output
that cannot be written or would replace weights), 2 bad usage (an option or the config),
3 no WebGPU adapter.
`;

const ArgsSchema = z.object({
  model: z.enum(TRAINABLE_FAMILIES, {
    errorMap: () => ({ message: `required: one of ${TRAINABLE_FAMILIES.join(", ")}` }),
  }),
  manifest: z.string().min(1).default("cache/proxy/manifest.json"),
  out: z.string().min(1).optional(),
  steps: z.coerce.number().int().positive().default(400),
  batch: z.coerce.number().int().positive().max(256).default(8),
  lr: z.coerce.number().positive().max(1).default(2e-3),
  loss: z.enum(["mse", "l1"]).default("mse"),
  seed: z.coerce.number().int().nonnegative().default(1),
  "checkpoint-every": z.coerce.number().int().positive().default(50),
  "checkpoint-dir": z.string().min(1).optional(),
  resume: z.boolean().default(false),
  "rank-weight": z.coerce.number().nonnegative().default(0),
  "rank-margin": z.coerce.number().nonnegative().default(0.1),
  "weight-decay": z.coerce.number().nonnegative().default(0),
  augment: z.boolean().default(false),
  "eval-every": z.coerce.number().int().nonnegative().default(0),
  overwrite: z.boolean().default(false),
  config: z.string().optional(),
}).strict();

/** One-letter aliases of the flags. */
const SHORT = { model: "m", out: "o" };

/**
 * Runs `train-victim` with its arguments (after the command name); returns the exit code.
 *
 * @example
 * ```ts
 * import { trainVictimCommand } from "./train_victim.ts";
 * const code = await trainVictimCommand(["--model", "vsfa-mini", "--steps", "400"]);
 * ```
 */
export async function trainVictimCommand(args: string[]): Promise<number> {
  const parsed = parseCommand(args, { usage: USAGE, short: SHORT, schema: ArgsSchema });
  if (!parsed.ok) return parsed.code;
  const o = parsed.values;
  return await runTrainingCommand({
    name: "train-victim",
    args,
    config: o.config,
    configPrefix: o.config !== undefined ? "--config: " : "",
    checkConfig: (config) => checkVictimConfig(o.model, config, { batch: o.batch }),
    train: async (config, command) => {
      const r = await trainVictim({
        model: o.model,
        manifest: o.manifest,
        out: o.out,
        steps: o.steps,
        batch: o.batch,
        lr: o.lr,
        loss: o.loss,
        seed: o.seed,
        checkpointEvery: o["checkpoint-every"],
        checkpointDir: o["checkpoint-dir"],
        resume: o.resume,
        command,
        rankWeight: o["rank-weight"],
        rankMargin: o["rank-margin"],
        weightDecay: o["weight-decay"],
        augment: o.augment,
        evalEvery: o["eval-every"],
        config,
        overwrite: o.overwrite,
      });
      const t = r.test;
      console.log(
        `${o.model}: test split (${t.n} clips): SRCC ${t.srcc.toFixed(4)}  KRCC ${
          t.krcc.toFixed(4)
        }  PLCC ${t.plcc.toFixed(4)} (raw ${t.plccRaw.toFixed(4)})  RMSE ${t.rmse.toFixed(4)} ` +
          `(raw ${t.rmseRaw.toFixed(4)})`,
      );
      console.log(`trained in ${r.trainSeconds.toFixed(0)} s; wrote ${r.weights} and ${r.json}`);
      r.victim.dispose();
    },
  });
}
