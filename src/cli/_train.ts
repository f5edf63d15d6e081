/**
 * What `deno task train` and `deno task train-victim` share around their trainer: the
 * `--config` JSON read and its bounds checked without the GPU, the command line recorded beside
 * the weights (without `--resume` and `--overwrite`), and every failure as one line with its
 * exit code: 2 for a bad config, 1 for anything else (an output that cannot be written or would
 * replace weights, a non-finite loss, a bad checkpoint, a missing dataset or victim, ffmpeg, a
 * GPU limit). A missing WebGPU adapter is rethrown for cli.ts (exit 3).
 *
 * @module
 */

import { commandLine, failLine, jsonObjectOption } from "./_args.ts";
import { initGpu, NoAdapterError } from "../gpu/device.ts";
import { ModelConfigError } from "../models/victims/victim.ts";

/** What {@link runTrainingCommand} runs. */
export interface TrainingCommand {
  /** The command's name (`train`, `train-victim`): before each error line and in the task. */
  name: string;
  /** The command's arguments, as typed. */
  args: string[];
  /** `--config`'s text, if given. */
  config: string | undefined;
  /** Put before a config error's message (default `--config: `). */
  configPrefix?: string;
  /** Checks the config's bounds without the GPU; throws a `ModelConfigError`. */
  checkConfig: (config: Record<string, unknown>) => void;
  /** Trains and prints the results, given the config and the command line to record. */
  train: (config: Record<string, unknown>, command: string) => Promise<void>;
}

/**
 * Runs a training command (see the module documentation); returns its exit code.
 *
 * @example
 * ```ts
 * import { runTrainingCommand } from "./_train.ts";
 * const code = await runTrainingCommand({
 *   name: "demo",
 *   args: ["--config", "[1]"],
 *   config: "[1]",
 *   checkConfig: () => {},
 *   train: () => Promise.resolve(),
 * });
 * console.log(code); // 2: "demo: --config: must be a JSON object ..."
 * ```
 */
export async function runTrainingCommand(c: TrainingCommand): Promise<number> {
  const fail = (message: string, code: number) => failLine(c.name, message, code);
  const config = jsonObjectOption(c.config, "--config");
  if (typeof config === "string") return fail(config, 2);
  const configFail = (e: ModelConfigError) =>
    fail(`${c.configPrefix ?? "--config: "}${e.message}`, 2);
  // Bounds first, without the GPU; the trainer checks the sizes against the adapter.
  try {
    c.checkConfig(config);
  } catch (e) {
    if (e instanceof ModelConfigError) return configFail(e);
    throw e;
  }
  await initGpu();
  // The recorded command is the one that makes these weights: not --resume or --overwrite.
  const command = commandLine(
    c.name,
    c.args.filter((a) => a !== "--resume" && a !== "--overwrite"),
  );
  try {
    await c.train(config, command);
    return 0;
  } catch (e) {
    if (e instanceof NoAdapterError) throw e;
    if (e instanceof ModelConfigError) return configFail(e);
    return fail(e instanceof Error ? e.message : String(e), 1);
  }
}
