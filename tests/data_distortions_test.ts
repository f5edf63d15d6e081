// The opt-in distortions of the proxy dataset (x265, vp9, av1, drop, banding, chroma): a tiny
// build (two source images copied into a temp folder, one motion each, 4 frames of 32x32, two
// levels) checked for clip size and frame count, finite labels in 1..5 that do not rise with the
// level, the same labels and bytes from a second build with the same seed, and refusal of an
// unknown kind. The default distortion set does not include them. The opt-in `yuv` label (ffmpeg's
// Y/U/V "All" SSIM) lowers the chroma clips' label, which the default luma label leaves at 5.

import { deepEqual, equal, notEqual, ok, throws } from "assert";
import * as path from "path";
import { fileURLToPath } from "url";
import { buildProxyDataset, type BuildProxyOptions, type ProxyManifest } from "../src/data/mod.ts";
import {
  DISTORTION_KINDS,
  DISTORTIONS,
  EXTRA_DISTORTIONS,
  LABEL_FORMULA,
  LABEL_FORMULA_YUV,
} from "../src/data/manifest.ts";
import {
  DISTORTION_LEVELS,
  dropFrameOrder,
  freezeLength,
  parseSsimStats,
  resolveProxyOptions,
} from "../src/data/proxy.ts";
import { dataCommand } from "../src/cli/data.ts";

const DATA = fileURLToPath(new URL("../data/sources", import.meta.url));

const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "stqa_distort_" });
  tmpDirs.push(d);
  return d;
}

async function sha(file: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(file));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Two fixed source images (a colour one for chroma), so new files in data/ change nothing. */
let sourcesDir: string | null = null;
async function sources(): Promise<string> {
  if (!sourcesDir) {
    sourcesDir = await tmp();
    for (const f of ["astronaut.png", "gravel.png"]) {
      await Deno.copyFile(path.join(DATA, f), path.join(sourcesDir, f));
    }
  }
  return sourcesDir;
}

async function tiny(): Promise<BuildProxyOptions> {
  return {
    sources: await sources(),
    testSources: 1,
    valSources: 0,
    frames: 4,
    size: 32,
    motionsPerImage: 1,
    levels: 2,
    seed: 5,
    distortions: [...EXTRA_DISTORTIONS],
  };
}

/** Width, height, decoded frames and codec of a clip (one ffprobe run). */
async function probe(file: string) {
  const r = await new Deno.Command("ffprobe", {
    args: [
      "-v",
      "error",
      "-count_frames",
      "-show_entries",
      "stream=width,height,nb_read_frames,codec_name",
      "-of",
      "json",
      `file:${file}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const st = JSON.parse(new TextDecoder().decode(r.stdout)).streams[0];
  return {
    width: st.width,
    height: st.height,
    frameCount: Number(st.nb_read_frames),
    codec: st.codec_name,
  };
}

let built: { dir: string; manifest: ProxyManifest } | null = null;
async function build() {
  if (!built) {
    const dir = await tmp();
    const { manifest } = await buildProxyDataset({ ...(await tiny()), out: dir });
    built = { dir, manifest };
  }
  return built;
}

Deno.test("extra distortions: opt-in only; every kind has six levels, mild to strong", () => {
  deepEqual(resolveProxyOptions({}).distortions, [...DISTORTIONS]);
  deepEqual(DISTORTIONS, ["h264", "blur", "noise", "scale", "freeze"]);
  deepEqual(DISTORTION_KINDS, [...DISTORTIONS, ...EXTRA_DISTORTIONS]);
  for (const d of DISTORTION_KINDS) {
    const t = DISTORTION_LEVELS[d];
    equal(t.length, 6, d);
    ok(t.every((v, i) => i === 0 || v > t[i - 1]), d);
  }
  deepEqual(resolveProxyOptions({ distortions: ["x265", "blur"] }).distortions, ["x265", "blur"]);
});

Deno.test("extra distortions: unknown kinds are refused by name", async () => {
  throws(
    () => resolveProxyOptions({ distortions: ["x265", "jpeg2000" as "x265"] }),
    /distortions\.1: Invalid enum value.*'jpeg2000'/,
  );
  const said: string[] = [];
  const err = console.error;
  console.error = (...a: unknown[]) => said.push(a.join(" "));
  try {
    equal(await dataCommand(["--distortions", "vp9,jpeg2000", "--out", await tmp()]), 2);
  } finally {
    console.error = err;
  }
  ok(/unknown distortion jpeg2000; use .*vp9/.test(said.join("\n")), said.join("\n"));
});

Deno.test("dropFrameOrder: a seeded order of frames 1..F-1", () => {
  const a = dropFrameOrder(5, "gravel", "m0_pan", 8);
  deepEqual([...a].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7]);
  deepEqual(dropFrameOrder(5, "gravel", "m0_pan", 8), a);
  notEqual(dropFrameOrder(6, "gravel", "m0_pan", 8).join(), a.join());
});

Deno.test("extra distortions: size, frame count, labels in range and not rising", async () => {
  const { dir, manifest } = await build();
  const motions = new Set(manifest.clips.map((c) => `${c.source}/${c.motion}`));
  equal(motions.size, 2);
  equal(manifest.clips.length, 2 * (1 + EXTRA_DISTORTIONS.length * 2));
  const infos = await Promise.all(manifest.clips.map((c) => probe(path.join(dir, c.path))));
  for (const [i, c] of manifest.clips.entries()) {
    const info = infos[i];
    equal(info.width, 32, c.path);
    equal(info.height, 32, c.path);
    equal(info.frameCount, 4, c.path);
    equal(info.codec, "ffv1", c.path);
    ok(Number.isFinite(c.label) && c.label >= 1 && c.label <= 5, `${c.path}: ${c.label}`);
    ok(Number.isFinite(c.ssim) && c.ssim <= 1, `${c.path}: ${c.ssim}`);
  }
  for (const m of motions) {
    for (const d of EXTRA_DISTORTIONS) {
      const cs = manifest.clips.filter((c) => `${c.source}/${c.motion}` === m && c.distortion === d)
        .sort((a, b) => a.level - b.level);
      deepEqual(cs.map((c) => c.level), [1, 2], `${m} ${d}`);
      for (let i = 1; i < cs.length; i++) {
        ok(cs[i].label <= cs[i - 1].label, `${m} ${d}: ${cs.map((c) => c.label)}`);
      }
      if (d === "chroma") {
        // The label is luma SSIM: chroma subsampling leaves it at 1 (documented).
        ok(cs.every((c) => c.ssim === 1 && c.label === 5), `${m} chroma`);
      } else {
        // Every other kind lowers the label at its strongest level.
        ok(cs[1].label < 5, `${m} ${d}: ${cs.map((c) => c.label)}`);
      }
    }
  }
  // Drop levels record the frames dropped (fractions .125 and .75 of 4 frames).
  const drops = manifest.clips.filter((c) => c.distortion === "drop" && c.source === "gravel");
  deepEqual(drops.map((c) => c.strength), [0.125, 0.75].map((f) => freezeLength(f, 4)));
  // Chroma changes the colour source's clip even though its luma label does not move.
  const chroma = manifest.clips.find((c) =>
    c.distortion === "chroma" && c.level === 2 && c.source === "astronaut"
  )!;
  const pristine = manifest.clips.find((c) => c.distortion === "none" && c.source === "astronaut")!;
  notEqual(await sha(path.join(dir, chroma.path)), await sha(path.join(dir, pristine.path)));
});

Deno.test("extra distortions: the same seed gives the same labels and bytes", async () => {
  const first = await build();
  const out = await tmp();
  const { manifest } = await buildProxyDataset({ ...(await tiny()), out, concurrency: 1 });
  deepEqual(
    manifest.clips.map((c) => [c.path, c.ssim, c.label]),
    first.manifest.clips.map((c) => [c.path, c.ssim, c.label]),
  );
  for (const c of manifest.clips) {
    equal(await sha(path.join(out, c.path)), await sha(path.join(first.dir, c.path)), c.path);
  }
});

Deno.test("parseSsimStats: the All value (Y, U, V by pixel count) with value All", () => {
  const stats = "n:1 Y:1.000000 U:0.817247 V:0.836597 All:0.942307 (12.388786)\n" +
    "n:2 Y:1.000000 U:0.814273 V:0.830898 All:0.940862 (12.281321)\n";
  equal(parseSsimStats(stats, 2), 1);
  ok(Math.abs(parseSsimStats(stats, 2, "stats", "All") - (0.942307 + 0.940862) / 2) < 1e-12);
  throws(() => parseSsimStats("n:1 Y:0.9 U:1 V:1\n", 1, "stats", "All"), /compared 0 frames/);
});

Deno.test("label yuv: chroma subsampling lowers the label; the luma label gives it 5", async () => {
  const out = await tmp();
  const opts: BuildProxyOptions = {
    ...(await tiny()),
    out,
    frames: 3,
    levels: 2,
    distortions: ["chroma"],
    label: "yuv",
  };
  const yuv = await buildProxyDataset(opts);
  ok(yuv.built);
  equal(yuv.manifest.label.formula, LABEL_FORMULA_YUV);
  const strongest = (m: ProxyManifest) =>
    m.clips.filter((c) => c.distortion === "chroma" && c.level === 2);
  equal(strongest(yuv.manifest).length, 2);
  for (const c of strongest(yuv.manifest)) ok(c.label < 5, `${c.path}: ${c.label}`);
  // astronaut is a colour image: far below 5.
  ok(strongest(yuv.manifest).some((c) => c.source === "astronaut" && c.label < 4.8));
  for (const c of yuv.manifest.clips.filter((c) => c.distortion === "none")) equal(c.label, 5);
  // The same folder with the default label: a rebuild (the formula changed), chroma at 5.
  const luma = await buildProxyDataset({ ...opts, label: undefined });
  ok(luma.built);
  equal(luma.manifest.label.formula, LABEL_FORMULA);
  for (const c of strongest(luma.manifest)) equal(c.label, 5, c.path);
  equal((await buildProxyDataset({ ...opts, label: "luma" })).built, false);
  throws(() => resolveProxyOptions({ label: "rgb" as "yuv" }), /label: Invalid enum value/);
});

Deno.test({
  name: "extra distortions: cleanup",
  sanitizeResources: false,
  fn: async () => {
    for (const d of tmpDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  },
});
