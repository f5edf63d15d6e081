// The proxy dataset: a tiny build from two source images (all three motions, all five
// distortions at two levels, 4 frames of 32x32) checked for manifest validity, split disjointness,
// labels that fall with the distortion level, SSIM that a separate ffmpeg run reproduces,
// determinism (byte-identical manifest and clips), up-to-date detection, and clear errors.

import { deepEqual, equal, notEqual, ok, rejects, throws } from "assert";
import * as path from "path";
import { fileURLToPath } from "url";
import {
  buildProxyDataset,
  type BuildProxyOptions,
  DatasetError,
  DISTORTIONS,
  levelStrengths,
  loadManifest,
  measureSsim,
  MOTIONS,
  type ProxyManifest,
  ProxyManifestSchema,
  resolveProxyOptions,
  splitSources,
  ssimToLabel,
} from "../src/data/mod.ts";
import { dataCommand } from "../src/cli/data.ts";
import { freezeLength, parseSsimStats } from "../src/data/proxy.ts";
import { probeVideo } from "../src/video/mod.ts";

const SOURCES = fileURLToPath(new URL("../data/sources", import.meta.url));

const TINY: BuildProxyOptions = {
  sources: SOURCES,
  maxSources: 2,
  testSources: 1,
  valSources: 0,
  frames: 4,
  size: 32,
  motionsPerImage: 3,
  levels: 2,
  seed: 7,
};

const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "stqa_data_" });
  tmpDirs.push(d);
  return d;
}

async function sha(file: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(file));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One shared tiny build (built once, reused by the tests below). */
let built: { dir: string; manifest: ProxyManifest; text: string } | null = null;
async function tinyBuild() {
  if (!built) {
    const dir = await tmp();
    let calls = 0;
    const r = await buildProxyDataset({ ...TINY, out: dir, onProgress: () => calls++ });
    ok(r.built);
    equal(calls, r.manifest.clips.length, "one progress call per clip");
    const text = await Deno.readTextFile(r.manifestPath);
    built = { dir, manifest: r.manifest, text };
  }
  return built;
}

Deno.test("ssimToLabel: the documented formula, clamped to 1..5", () => {
  equal(ssimToLabel(1), 5);
  equal(ssimToLabel(0.25), 1);
  equal(ssimToLabel(0.625), 3);
  equal(ssimToLabel(0.1), 1);
  equal(ssimToLabel(-0.5), 1);
  equal(ssimToLabel(0.9), 4.4667);
  throws(() => ssimToLabel(NaN), /not finite/);
  // Monotone on a grid.
  let prev = -Infinity;
  for (let s = -1; s <= 1; s += 0.01) {
    const l = ssimToLabel(s);
    ok(l >= prev);
    prev = l;
  }
});

Deno.test("levelStrengths: evenly spaced picks including mildest and strongest", () => {
  deepEqual(levelStrengths("h264", 2), [24, 51]);
  deepEqual(levelStrengths("blur", 6), [0.5, 1, 1.5, 2, 2.5, 3]);
  deepEqual(levelStrengths("freeze", 4), [0.125, 0.375, 0.5, 0.75]);
  deepEqual([0.125, 0.375, 0.5, 0.75].map((f) => freezeLength(f, 8)), [1, 3, 4, 6]);
  deepEqual([0.125, 0.75].map((f) => freezeLength(f, 4)), [1, 3]);
  equal(freezeLength(0.99, 3), 2);
  equal(levelStrengths("noise", 1).length, 1);
  throws(() => levelStrengths("scale", 7), /levels must be an integer from 1 to 6/);
  throws(() => levelStrengths("scale", 0), /levels must be/);
});

Deno.test("splitSources: disjoint, complete, seeded", () => {
  const names = Array.from({ length: 11 }, (_, i) => `img${String(i).padStart(2, "0")}`);
  const a = splitSources(names, { seed: 3, test: 3, val: 1 });
  equal(a.test.length, 3);
  equal(a.val.length, 1);
  equal(a.train.length, 7);
  deepEqual([...a.train, ...a.val, ...a.test].sort(), names);
  deepEqual(splitSources([...names].reverse(), { seed: 3, test: 3, val: 1 }), a);
  const others = [1, 2, 4, 5, 6].map((seed) => splitSources(names, { seed, test: 3, val: 1 }).test);
  ok(others.some((t) => JSON.stringify(t) !== JSON.stringify(a.test)), "seed changes the split");
  throws(() => splitSources(names, { seed: 1, test: 6, val: 5 }), /at least one train image/);
});

Deno.test("parseSsimStats: mean of the Y values; frame count checked", () => {
  const stats = "n:1 Y:0.900000 U:1.0 V:1.0 All:0.93 (11.6)\nn:2 Y:0.800000 U:1 V:1 All:0.8 (7)\n";
  ok(Math.abs(parseSsimStats(stats, 2) - 0.85) < 1e-12);
  throws(() => parseSsimStats(stats, 3), /compared 2 frames, expected 3/);
});

Deno.test("proxy build: manifest, files, splits, labels", async () => {
  const { dir, manifest } = await tinyBuild();
  ProxyManifestSchema.parse(JSON.parse(await Deno.readTextFile(path.join(dir, "manifest.json"))));
  const perMotion = 1 + DISTORTIONS.length * 2;
  equal(manifest.motions.length, 2 * 3);
  equal(manifest.clips.length, 2 * 3 * perMotion);
  deepEqual(manifest.motions.slice(0, 3).map((m) => m.type), [...MOTIONS]);
  deepEqual(manifest.sources.map((s) => s.name), ["astronaut", "brick"]);

  // Splits: every source in exactly one split; clips follow their source.
  const all = [...manifest.splits.train, ...manifest.splits.val, ...manifest.splits.test];
  equal(new Set(all).size, all.length);
  deepEqual(all.sort(), ["astronaut", "brick"]);
  equal(manifest.splits.test.length, 1);
  const bySplit = (s: string) =>
    new Set(manifest.clips.filter((c) => c.split === s).map((c) => c.source));
  for (const s of bySplit("train")) ok(!bySplit("test").has(s), `${s} in train and test`);

  // Labels follow the formula; pristine clips are 5.
  for (const c of manifest.clips) {
    equal(c.label, ssimToLabel(c.ssim), c.path);
    if (c.distortion === "none") {
      equal(c.ssim, 1);
      equal(c.level, 0);
    } else {
      ok(c.ssim < 1, `${c.path}: a distortion changed nothing (ssim ${c.ssim})`);
    }
  }

  // Within each motion and distortion, the stronger level has lower SSIM and no higher label.
  for (const mo of manifest.motions) {
    for (const d of DISTORTIONS) {
      const cs = manifest.clips.filter((c) =>
        c.motion === mo.id && c.source === mo.source &&
        c.distortion === d
      ).sort((a, b) => a.level - b.level);
      equal(cs.length, 2);
      ok(
        cs[1].ssim < cs[0].ssim,
        `${mo.source}/${mo.id} ${d}: ssim ${cs[0].ssim} -> ${cs[1].ssim}`,
      );
      ok(cs[1].label <= cs[0].label);
    }
  }

  // Clip files decode to 4 frames of 32x32 (every pristine clip, and every clip of one motion
  // per source; the SSIM stats already checked the frame count of every distorted clip).
  const probed = manifest.clips.filter((c) => c.distortion === "none" || c.motion === "m0_pan");
  for (const c of probed) {
    const info = await probeVideo(path.join(dir, c.path), { countFrames: true });
    equal(info.width, 32, c.path);
    equal(info.height, 32, c.path);
    equal(info.frameCount, 4, c.path);
    if (c.distortion === "none") equal(info.codec, "ffv1");
  }
  // No temporary files are left behind.
  for await (const e of Deno.readDir(dir)) ok(["clips", "manifest.json"].includes(e.name), e.name);
});

Deno.test("proxy build: manifest SSIM equals a separate ffmpeg ssim run on the files", async () => {
  const { dir, manifest } = await tinyBuild();
  for (const d of DISTORTIONS) {
    const c = manifest.clips.find((c) => c.distortion === d && c.level === 2)!;
    const pristine = manifest.clips.find((p) =>
      p.distortion === "none" && p.motion === c.motion && p.source === c.source
    )!;
    const ssim = await measureSsim(path.join(dir, c.path), path.join(dir, pristine.path), 4);
    ok(Math.abs(ssim - c.ssim) < 1e-6, `${c.path}: ${ssim} vs manifest ${c.ssim}`);
  }
});

Deno.test("proxy build: same seed, same bytes; up-to-date builds are skipped", async () => {
  const { dir, manifest, text } = await tinyBuild();
  const dir2 = await tmp();
  const r2 = await buildProxyDataset({ ...TINY, out: dir2, concurrency: 1 });
  equal(await Deno.readTextFile(r2.manifestPath), text);
  for (const c of manifest.clips) {
    equal(await sha(path.join(dir2, c.path)), await sha(path.join(dir, c.path)), c.path);
  }
  // Another seed: other motions (and noise), so another manifest.
  const dir3 = await tmp();
  const small = { ...TINY, out: dir3, seed: 8, distortions: ["blur" as const] };
  const r3 = await buildProxyDataset(small);
  notEqual(JSON.stringify(r3.manifest.motions), JSON.stringify(manifest.motions));
  const text3 = await Deno.readTextFile(r3.manifestPath);
  // Up to date: nothing rebuilt; a missing clip or force rebuilds, to the same bytes.
  equal((await buildProxyDataset(small)).built, false);
  await Deno.remove(path.join(dir3, r3.manifest.clips[2].path));
  const repaired = await buildProxyDataset(small);
  ok(repaired.built);
  equal(await Deno.readTextFile(repaired.manifestPath), text3);
  ok((await buildProxyDataset({ ...small, force: true })).built);
  // A manifest of an older generator (no `generator` field) is ours, stale, and replaced.
  const stale = JSON.parse(text3);
  delete stale.generator;
  await Deno.writeTextFile(r3.manifestPath, JSON.stringify(stale));
  ok((await buildProxyDataset(small)).built);
  equal(await Deno.readTextFile(r3.manifestPath), text3);
  // Other options are not up to date either.
  ok((await buildProxyDataset({ ...small, levels: 1 })).built);
});

Deno.test("loadManifest: items by split, missing files, tampered manifests", async () => {
  const { dir, manifest, text } = await tinyBuild();
  const file = path.join(dir, "manifest.json");
  const all = await loadManifest(file);
  equal(all.items.length, manifest.clips.length);
  deepEqual(all.missing, []);
  const test = await loadManifest(file, { splits: ["test"] });
  ok(test.items.length > 0 && test.items.length < all.items.length);
  for (const it of test.items) {
    equal(it.split, "test");
    ok(path.isAbsolute(it.path));
    ok(it.mos >= 1 && it.mos <= 5);
  }

  const copyDir = await tmp();
  const copy = path.join(copyDir, "manifest.json");
  await Deno.writeTextFile(copy, text);
  const noFiles = await loadManifest(copy, { splits: ["train"] });
  equal(noFiles.missing.length, noFiles.items.length, "clips not copied are listed as missing");

  const bad = JSON.parse(text);
  const victim = bad.clips.find((c: { split: string }) => c.split === "train");
  victim.split = "test";
  await Deno.writeTextFile(copy, JSON.stringify(bad));
  await rejects(loadManifest(copy), (e: Error) => {
    ok(e instanceof DatasetError);
    ok(/not a valid proxy manifest/.test(e.message), e.message);
    ok(e.message.includes(victim.path), e.message);
    return true;
  });
  bad.clips[0].split = "train";
  bad.clips[0].label = 7;
  await Deno.writeTextFile(copy, JSON.stringify(bad));
  await rejects(loadManifest(copy), /clips\.0\.label/);
  await rejects(loadManifest(path.join(copyDir, "none.json")), /deno task data/);
});

Deno.test("proxy options: bad values get clear errors", async () => {
  throws(
    () => resolveProxyOptions({ frames: 1 }),
    /frames: Number must be greater than or equal to 2/,
  );
  throws(() => resolveProxyOptions({ size: 33 }), /size: must be even/);
  throws(() => resolveProxyOptions({ levels: 7 }), /levels/);
  throws(() => resolveProxyOptions({ seed: -1 }), /seed/);
  throws(
    () => resolveProxyOptions({ distortions: ["blur", "blur"] }),
    /distortions: must not repeat/,
  );
  throws(
    () => resolveProxyOptions({ distortions: ["jpeg" as "blur"] }),
    /distortions\.0: Invalid enum value/,
  );
  const out = await tmp();
  await rejects(
    buildProxyDataset({ ...TINY, out, testSources: 2 }),
    /2 source images cannot make 2 test \+ 0 val images/,
  );
  await rejects(
    buildProxyDataset({ ...TINY, out, sources: path.join(out, "nope") }),
    /source folder/,
  );
  // A folder with a `clips` folder and no manifest is not replaced.
  await Deno.mkdir(path.join(out, "clips"));
  await rejects(buildProxyDataset({ ...TINY, out }), /refusing to replace/);
});

Deno.test("dataCommand: usage errors are exit code 2; a tiny build is 0", async () => {
  const out = await tmp();
  const quietly = async (args: string[]) => {
    const log = console.log;
    const err = console.error;
    const said: string[] = [];
    console.log = (...a: unknown[]) => said.push(a.join(" "));
    console.error = (...a: unknown[]) => said.push(a.join(" "));
    try {
      return { code: await dataCommand(args), said: said.join("\n") };
    } finally {
      console.log = log;
      console.error = err;
    }
  };
  let r = await quietly(["--frames", "x"]);
  equal(r.code, 2);
  ok(r.said.includes('--frames: must be a whole number, got "x"'), r.said);
  for (const bad of ["1.5", "8x", "", "1e2"]) {
    r = await quietly(["--seed", bad, "--out", out]);
    equal(r.code, 2, bad);
    ok(r.said.includes(`--seed: must be a whole number, got ${JSON.stringify(bad)}`), r.said);
  }
  r = await quietly(["--distortions", "blur,jpeg"]);
  equal(r.code, 2);
  ok(/unknown distortion jpeg/.test(r.said), r.said);
  r = await quietly(["--size", "31", "--out", out]);
  equal(r.code, 2);
  ok(/size: must be even/.test(r.said), r.said);
  r = await quietly(["--max-sources", "1", "--motions", "0", "--out", out]);
  equal(r.code, 2);
  ok(r.said.includes("--max-sources: Number must be greater than or equal to 2"), r.said);
  ok(r.said.includes("--motions: Number must be greater than or equal to 1"), r.said);
  equal((await quietly(["--bogus"])).code, 2);
  equal((await quietly(["frobnicate"])).code, 2);
  equal((await quietly(["--help"])).code, 0);
  r = await quietly([
    "--out",
    out,
    "--sources",
    SOURCES,
    "--max-sources",
    "2",
    "--test",
    "1",
    "--val",
    "0",
    "--frames",
    "3",
    "--size",
    "16",
    "--motions",
    "1",
    "--levels",
    "1",
    "--distortions",
    "blur,noise",
  ]);
  equal(r.code, 0, r.said);
  ok(/Built 6 clips/.test(r.said), r.said);
  ok(/blur +2 /.test(r.said), r.said);
  const { items } = await loadManifest(path.join(out, "manifest.json"));
  equal(items.length, 6);
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    for (const d of tmpDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  },
});
