// Proxy builds from several source folders: the images of every folder make one dataset (each
// folder sorted by name, the folders in the order given, --max-sources over them all), the
// folders recorded in the manifest and the up-to-date check aware of them; the same dataset name
// from two folders refused naming both files; a single-folder build's manifest as it always was,
// and such a manifest (no folders recorded, or one folder as a string) still loads.

import { deepEqual, equal, ok, rejects, throws } from "assert";
import * as path from "path";
import { fileURLToPath } from "url";
import {
  buildProxyDataset,
  type BuildProxyOptions,
  loadManifest,
  ProxyManifestSchema,
  resolveProxyOptions,
} from "../src/data/mod.ts";
import { dataCommand } from "../src/cli/data.ts";

const DATA = fileURLToPath(new URL("../data/sources", import.meta.url));
const NATURAL = fileURLToPath(new URL("../data/sources_natural", import.meta.url));

const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "stqa_sources_" });
  tmpDirs.push(d);
  return d;
}

/** A folder holding copies of `files` (`[from, name]`). */
async function folder(files: [string, string][]): Promise<string> {
  const dir = await tmp();
  for (const [from, name] of files) await Deno.copyFile(from, path.join(dir, name));
  return dir;
}

const TINY: BuildProxyOptions = {
  testSources: 1,
  valSources: 0,
  frames: 3,
  size: 32,
  motionsPerImage: 1,
  levels: 1,
  distortions: ["blur"],
  seed: 3,
};

/** Runs `dataCommand` with its output captured. */
async function quietly(args: string[]): Promise<{ code: number; said: string }> {
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
}

Deno.test("sources: two folders make one dataset, in order; --max-sources over both; up to date", async () => {
  // Folder a: brick, astronaut (listed sorted); folder b: moss, aqua_drop.
  const a = await folder([[path.join(DATA, "brick.png"), "brick.png"], [
    path.join(DATA, "astronaut.png"),
    "astronaut.png",
  ]]);
  const b = await folder([[path.join(NATURAL, "moss.jpg"), "moss.jpg"], [
    path.join(NATURAL, "aqua_drop.jpg"),
    "aqua_drop.jpg",
  ]]);
  const out = await tmp();
  const opts = { ...TINY, out, sources: [a, b], maxSources: 3 };
  const r = await buildProxyDataset(opts);
  ok(r.built);
  const m = r.manifest;
  deepEqual(m.sources.map((s) => [s.name, s.file, s.folder]), [
    ["astronaut", "astronaut.png", a],
    ["brick", "brick.png", a],
    ["aqua_drop", "aqua_drop.jpg", b],
  ]);
  deepEqual(m.options.sources, [a, b]);
  equal(m.options.maxSources, 3);
  equal(m.clips.length, 3 * 2);
  deepEqual([...m.splits.train, ...m.splits.test].sort(), ["aqua_drop", "astronaut", "brick"]);
  equal((await loadManifest(r.manifestPath)).missing.length, 0);
  // The same folders and images: up to date.
  equal((await buildProxyDataset(opts)).built, false);
  // A changed list: rebuilt (all four images; then the folders in the other order).
  const all = await buildProxyDataset({ ...opts, maxSources: null });
  ok(all.built);
  deepEqual(all.manifest.sources.map((s) => s.name), ["astronaut", "brick", "aqua_drop", "moss"]);
  const swapped = await buildProxyDataset({ ...opts, sources: [b, a], maxSources: null });
  ok(swapped.built);
  deepEqual(swapped.manifest.options.sources, [b, a]);
  deepEqual(swapped.manifest.sources.map((s) => s.name), [
    "aqua_drop",
    "moss",
    "astronaut",
    "brick",
  ]);
  // The command line's comma-separated list writes the same manifest as the API.
  const out2 = await tmp();
  const cli = await quietly([
    ...["--out", out2, "--sources", `${b},${a}`, "--test", "1", "--val", "0", "--frames", "3"],
    ...["--size", "32", "--motions", "1", "--levels", "1", "--distortions", "blur", "--seed", "3"],
  ]);
  equal(cli.code, 0, cli.said);
  equal(
    await Deno.readTextFile(path.join(out2, "manifest.json")),
    await Deno.readTextFile(path.join(out, "manifest.json")),
  );
});

Deno.test("sources: the same dataset name from two folders is refused, naming both files", async () => {
  const a = await folder([[path.join(DATA, "brick.png"), "brick.png"], [
    path.join(DATA, "coins.png"),
    "coins.png",
  ]]);
  // `Coins.jpg` would be `Coins`: the same name as `coins` but for case (clip folders clash on
  // a case-insensitive file system).
  const b = await folder([[path.join(NATURAL, "moss.jpg"), "Coins.jpg"]]);
  const out = await tmp();
  await rejects(buildProxyDataset({ ...TINY, out, sources: [a, b] }), (e: Error) => {
    ok(e instanceof RangeError, String(e));
    ok(e.message.includes(path.join(a, "coins.png")), e.message);
    ok(e.message.includes(path.join(b, "Coins.jpg")), e.message);
    return true;
  });
  // Cut off by --max-sources, the second name is no clash.
  ok((await buildProxyDataset({ ...TINY, out, sources: [a, b], maxSources: 2 })).built);
  // A folder repeated, an empty folder in the list, and the command line's messages.
  throws(() => resolveProxyOptions({ sources: [a, `${a}/`] }), /sources: must not repeat a folder/);
  const empty = await tmp();
  await rejects(
    buildProxyDataset({ ...TINY, out, sources: [a, empty] }),
    new RegExp(`source folder ${empty}: no images`),
  );
  const r = await quietly(["--out", out, "--sources", `${a},${b}`, "--frames", "3"]);
  equal(r.code, 2, r.said);
  ok(/both have the name Coins/.test(r.said), r.said);
  equal((await quietly(["--out", out, "--sources", ","])).code, 2);
});

Deno.test("sources: a single folder's manifest records no folders and still loads", async () => {
  const a = await folder([[path.join(DATA, "brick.png"), "brick.png"], [
    path.join(DATA, "coins.png"),
    "coins.png",
  ]]);
  const out = await tmp();
  const r = await buildProxyDataset({ ...TINY, out, sources: a });
  // As before folders could be listed: no `options.sources`, no `folder` per source.
  const json = JSON.parse(await Deno.readTextFile(r.manifestPath));
  ok(!("sources" in json.options), JSON.stringify(json.options));
  ok(json.sources.every((s: Record<string, unknown>) => !("folder" in s)));
  // A one-element list is the same build.
  equal((await buildProxyDataset({ ...TINY, out, sources: [a] })).built, false);
  // A manifest that names its one folder as a string loads too.
  json.options.sources = a;
  await Deno.writeTextFile(r.manifestPath, JSON.stringify(json));
  const loaded = await loadManifest(r.manifestPath);
  equal(loaded.manifest.options.sources, a);
  equal(loaded.items.length, 4);
  // An older manifest, written by hand as builds did before several folders.
  const old = {
    version: 1,
    kind: "stqa-proxy",
    generator: 4,
    seed: 1,
    ffmpeg: "ffmpeg version 5.1",
    options: {
      seed: 1,
      frames: 3,
      size: 32,
      fps: 25,
      motionsPerImage: 1,
      levels: 1,
      distortions: ["blur"],
      maxSources: null,
      testSources: 1,
      valSources: 0,
    },
    label: { formula: "", ssimFloor: 0.25 },
    sources: [{
      name: "coins",
      file: "coins.png",
      width: 384,
      height: 303,
      sha256: "0".repeat(64),
    }],
    splits: { train: ["coins"], val: [], test: [] },
    motions: [],
    clips: [],
  };
  deepEqual(ProxyManifestSchema.parse(old), old);
});

Deno.test({
  name: "sources: cleanup",
  fn: async () => {
    for (const d of tmpDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  },
});
