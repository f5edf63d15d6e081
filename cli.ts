/**
 * The command line behind the deno tasks: `attack`, `data`, `eval`, `info`, `jnd`, `train`, `train-victim`.
 * Exit codes: 0 success, 1 failure, 2 bad usage, 3 no WebGPU adapter.
 *
 * @module
 */

import { EXIT_NO_ADAPTER, initGpu, NoAdapterError } from "./mod.ts";
import { jndCommand } from "./src/jnd/command.ts";
import { dataCommand } from "./src/data/command.ts";
import { trainVictimCommand } from "./src/models/victims/command.ts";
import { attackCommand } from "./src/attack/command.ts";
import { trainCommand } from "./src/attack/train_command.ts";
import { evalCommand } from "./src/eval/command.ts";
import { FfmpegNotFoundError, runTool } from "./src/video/_ffmpeg.ts";

/** Exit code for bad usage (unknown command or option). */
export const EXIT_USAGE = 2;

const USAGE = `Usage: deno task <command> [options]

Commands:
  attack   adversarial videos from a trained STQA-Net generator (attack --help)
  data     build the proxy dataset (cache/proxy), or check a real dataset (data --help)
  eval     robustness tables: every victim x every attack over a dataset (eval --help)
  info     print the WebGPU adapter, its limits and features, and the ffmpeg version
  jnd      JND maps of a video: heat-map video, PNGs, per-frame statistics (jnd --help)
  train    train an STQA-Net generator against a victim (train --help)
  train-victim  train a victim VQA model on the proxy dataset (train-victim --help)
`;

async function ffmpegVersion(): Promise<string> {
  try {
    const r = await runTool("ffmpeg", ["-version"]);
    return new TextDecoder().decode(r.stdout).split("\n")[0] || "(no output)";
  } catch (e) {
    // Not installed or not allowed to run: FfmpegNotFoundError says so, with the install hint.
    return e instanceof FfmpegNotFoundError ? e.message : `cannot run: ${(e as Error).message}`;
  }
}

async function info(): Promise<number> {
  const gpu = await initGpu();
  const a = gpu.adapter;
  console.log(`adapter:      ${a.description}`);
  console.log(`vendor:       ${a.vendor}${a.architecture ? ` (${a.architecture})` : ""}`);
  console.log(`fallback:     ${a.isFallbackAdapter}`);
  console.log(`timestamps:   ${gpu.hasTimestampQuery}`);
  console.log(`features:     ${a.features.join(", ")}`);
  console.log("limits:");
  for (const [k, v] of Object.entries(a.limits).sort()) console.log(`  ${k.padEnd(42)} ${v}`);
  console.log(`ffmpeg:       ${await ffmpegVersion()}`);
  return 0;
}

/** The subcommands: each takes the arguments after its name and returns an exit code. */
const COMMANDS: Record<string, (args: string[]) => Promise<number> | number> = {
  attack: attackCommand,
  data: dataCommand,
  eval: evalCommand,
  info: () => info(),
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
