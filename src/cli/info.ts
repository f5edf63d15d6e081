/**
 * `deno task info`: the WebGPU adapter, its limits and features, and the ffmpeg version.
 *
 * @module
 */

import { initGpu, kernelFamily } from "../gpu/device.ts";
import { FfmpegNotFoundError, runTool } from "../video/_ffmpeg.ts";

async function ffmpegVersion(): Promise<string> {
  try {
    const r = await runTool("ffmpeg", ["-version"]);
    return new TextDecoder().decode(r.stdout).split("\n")[0] || "(no output)";
  } catch (e) {
    // Not installed or not allowed to run: FfmpegNotFoundError says so, with the install hint.
    return e instanceof FfmpegNotFoundError ? e.message : `cannot run: ${(e as Error).message}`;
  }
}

/**
 * Runs `info`: prints the adapter, its limits and features, and the ffmpeg version; returns the
 * exit code.
 *
 * @example
 * ```ts
 * import { infoCommand } from "./info.ts";
 * const code = await infoCommand([]);
 * ```
 */
export async function infoCommand(_args: string[] = []): Promise<number> {
  const gpu = await initGpu();
  const a = gpu.adapter;
  console.log(`adapter:      ${a.description}`);
  console.log(`vendor:       ${a.vendor}${a.architecture ? ` (${a.architecture})` : ""}`);
  console.log(`fallback:     ${a.isFallbackAdapter}`);
  console.log(`timestamps:   ${gpu.hasTimestampQuery}`);
  console.log(
    `kernels:      ${kernelFamily()} (workgroup-memory tiles on GPUs, register blocks on CPU adapters)`,
  );
  console.log(`features:     ${a.features.join(", ")}`);
  console.log("limits:");
  for (const [k, v] of Object.entries(a.limits).sort()) console.log(`  ${k.padEnd(42)} ${v}`);
  console.log(`ffmpeg:       ${await ffmpegVersion()}`);
  return 0;
}
