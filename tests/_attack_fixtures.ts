// Tiny inputs for the attack tests: a textured clip on disk and a generator with large output
// maps (as a trained one), saved beside it; and what the tests do with `deno task attack`: run
// it with its console captured, and list what a folder holds.

import { join } from "path";
import { saveGenerator, StqaNet, tensor, writeVideo } from "../mod.ts";
import { attackCommand } from "../src/cli/attack.ts";

export const TINY = { encoder: [2, 3, 4], hidden: 3, decoder: [3, 2] };
export const INFO = {
  victim: "vsfa-mini",
  victimFamily: "vsfa-mini",
  jnd: "namm-st" as const,
  eps: 1,
  qMin: 1,
  qMax: 5,
  median: 3,
};

/** A small textured clip on disk. */
export async function clipFile(
  dir: string,
  name: string,
  frames = 5,
  w = 40,
  h = 24,
  freq = 0.9,
): Promise<string> {
  const v = new Float32Array(frames * 3 * h * w);
  let i = 0;
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++, i++) {
          v[i] = Math.round(255 * (0.5 + 0.35 * Math.sin(freq * x + 0.5 * y + 0.3 * f + c))) / 255;
        }
      }
    }
  }
  const file = join(dir, name);
  await writeVideo(file, tensor(v, [frames, 3, h, w]), { codec: "ffv1", disposeInput: true });
  return file;
}

/** A generator with large output maps (as a trained one) saved in `dir`. */
export async function generatorFile(
  dir: string,
  variant: "untargeted" | "two-branch" = "untargeted",
  info: Partial<typeof INFO> = {},
  name = `gen-${variant}`,
): Promise<string> {
  const net = new StqaNet({ seed: 3, config: { ...TINY, variant } });
  for (const [name, p] of Object.entries(net.parameters())) {
    if (name.endsWith("out.weight")) {
      const { writeBuffer } = await import("../src/gpu/queue.ts");
      writeBuffer(p.buffer, (await p.read()).map((x) => x * 300));
    }
  }
  const stem = join(dir, name);
  await saveGenerator(net, stem, { ...INFO, ...info });
  net.dispose();
  return `${stem}.safetensors`;
}

/**
 * A maker of temporary folders (`<prefix><random>`) that are all removed when the test file's
 * process unloads.
 */
export function tempDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  globalThis.addEventListener("unload", () => {
    for (const d of dirs) {
      try {
        Deno.removeSync(d, { recursive: true });
      } catch { /* gone */ }
    }
  });
  return async () => {
    const d = await Deno.makeTempDir({ prefix });
    dirs.push(d);
    return d;
  };
}

/** The sorted names in `dir`, or none when it does not exist. */
export async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Runs `deno task attack` in process with its console output captured. */
export async function runAttack(
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await attackCommand(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    [console.log, console.error] = [log, error];
  }
}
