/**
 * The command line behind the deno tasks: `attack`, `convert`, `data`, `eval`, `info`, `jnd`, `train`,
 * `train-victim`.
 * Exit codes: 0 success, 1 failure, 2 bad usage, 3 no WebGPU adapter.
 *
 * @module
 */

import { EXIT_NO_ADAPTER, NoAdapterError } from "./src/gpu/device.ts";
import { attackCommand } from "./src/cli/attack.ts";
import { convertCommand } from "./src/cli/convert.ts";
import { dataCommand } from "./src/cli/data.ts";
import { evalCommand } from "./src/cli/eval.ts";
import { infoCommand } from "./src/cli/info.ts";
import { jndCommand } from "./src/cli/jnd.ts";
import { trainCommand } from "./src/cli/train.ts";
import { trainVictimCommand } from "./src/cli/train_victim.ts";

/** Exit code for bad usage (unknown command or option). */
export const EXIT_USAGE = 2;

const USAGE = `Usage: deno task <command> [options]

Commands:
  attack   adversarial videos from a trained STQA-Net generator (attack --help)
  convert  a PyTorch checkpoint or safetensors file into float32 safetensors (convert --help)
  data     build the proxy dataset (cache/proxy), or check a real dataset (data --help)
  eval     robustness tables: every victim x every attack over a dataset (eval --help)
  info     print the WebGPU adapter, its limits and features, and the ffmpeg version
  jnd      JND maps of a video: heat-map video, PNGs, per-frame statistics (jnd --help)
  train    train an STQA-Net generator against a victim (train --help)
  train-victim  train a victim VQA model on the proxy dataset (train-victim --help)
`;

/** The subcommands: each takes the arguments after its name and returns an exit code. */
const COMMANDS: Record<string, (args: string[]) => Promise<number> | number> = {
  attack: attackCommand,
  convert: convertCommand,
  data: dataCommand,
  eval: evalCommand,
  info: infoCommand,
  jnd: jndCommand,
  train: trainCommand,
  "train-victim": trainVictimCommand,
};

/** Runs the command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "-h" || command === "--help") {
    console.log(USAGE);
    return command === undefined ? EXIT_USAGE : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`Unknown command '${command}'.\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof NoAdapterError) {
      console.error(e.message);
      return EXIT_NO_ADAPTER;
    }
    // Whatever a command did not turn into its own message: one line, no stack trace (set
    // STQA_DEBUG=1 for it).
    console.error(`${command}: ${e instanceof Error ? e.message : String(e)}`);
    if (debugRequested() && e instanceof Error && e.stack) console.error(e.stack);
    return 1;
  }
}

function debugRequested(): boolean {
  try {
    return !!Deno.env.get("STQA_DEBUG");
  } catch {
    return false; // not allowed to read it
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
