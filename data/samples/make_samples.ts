/**
 * Makes the bundled sample clips in data/samples from three images of the proxy dataset's test
 * split (never seen when the victims and generators were trained): one pan, one zoom and one
 * rotation, 16 frames of 128x128 at 25 fps, H.264 4:2:0 at crf 16 in Matroska.
 *
 * ```
 * deno run --allow-read --allow-write --allow-run=ffmpeg,ffprobe data/samples/make_samples.ts
 * ```
 *
 * @module
 */

import { join } from "path";
import { fileURLToPath } from "url";
import { imageSize, makeMotion } from "../../src/data/proxy.ts";
import { inputArgs, runTool } from "../../src/video/_ffmpeg.ts";
import { writeFileAtomic } from "../../src/_fs.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SOURCES = join(HERE, "..", "sources");
const SAMPLES: { image: string; motion: number; name: string }[] = [
  { image: "astronaut.png", motion: 0, name: "astronaut_pan" },
  { image: "gravel.png", motion: 1, name: "gravel_zoom" },
  { image: "brick.png", motion: 2, name: "brick_rotate" },
];
const O = { seed: 7, frames: 16, size: 128, fps: 25 };

const lines = ["name,image,motion,frames,size,fps,filter"];
for (const s of SAMPLES) {
  const src = join(SOURCES, s.image);
  const m = makeMotion(
    { name: s.image.replace(/\.\w+$/, ""), ...(await imageSize(src)) },
    s.motion,
    O,
  );
  const out = join(HERE, `${s.name}.mkv`);
  const tmp = join(HERE, `.${s.name}.tmp.mkv`);
  const r = await runTool("ffmpeg", [
    "-nostdin",
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    ...(m.loop ? ["-loop", "1", "-framerate", String(O.fps)] : []),
    ...inputArgs(src),
    "-vf",
    m.filter,
    "-frames:v",
    String(O.frames),
    "-c:v",
    "libx264",
    "-preset",
    "medium",
    "-crf",
    "16",
    "-pix_fmt",
    "yuv420p",
    "-bitexact",
    tmp,
  ]);
  if (r.code !== 0) throw new Error(`${s.name}: ffmpeg failed: ${r.stderr}`);
  await Deno.rename(tmp, out);
  lines.push(`${s.name},${s.image},${m.type},${O.frames},${O.size},${O.fps},"${m.filter}"`);
  console.log(`${out}: ${m.type}`);
}
await writeFileAtomic(join(HERE, "samples.csv"), lines.join("\n") + "\n");
