// The trainer's crops of a larger proxy (`--crops`): a window is exactly the region of the clip's
// frames and JND maps its offsets name, crops change what the generator is trained on, the run
// records them, and the combinations that cannot work are refused before anything is trained.

import assert from "assert";
import { join } from "path";
import { tensor, trainGenerator } from "../mod.ts";
import { cropClip } from "../src/train/generator.ts";
import { buildTinyProxy, initGpu } from "./_helpers.ts";
import { tempDirs, TINY } from "./_attack_fixtures.ts";

await initGpu();
const tmp = tempDirs("stqa_crops_");

Deno.test("cropClip: the window its offsets name, in frames and JND maps alike", async () => {
  for (const [T, H, W, t, h, w] of [[3, 7, 9, 2, 4, 5], [2, 5, 5, 2, 5, 3], [4, 6, 8, 1, 1, 1]]) {
    const f = Float32Array.from({ length: T * 3 * H * W }, () => Math.random());
    const j = Float32Array.from({ length: T * H * W }, () => Math.random());
    const draws = [Math.random(), Math.random(), Math.random()];
    let k = 0;
    const frames = tensor(f, [T, 3, H, W]), jnd = tensor(j, [T, 1, H, W]);
    const c = cropClip(
      { frames, jnd, clean: 2, label: 3, path: "p" },
      [t, 3, h, w],
      () => draws[k++],
    );
    assert.equal(k, 3, "three draws: frame, row, column");
    const [f0, y0, x0] = [
      Math.floor(draws[0] * (T - t + 1)),
      Math.floor(draws[1] * (H - h + 1)),
      Math.floor(draws[2] * (W - w + 1)),
    ];
    const want = (src: Float32Array, ch: number) => {
      const out: number[] = [];
      for (let a = 0; a < t; a++) {
        for (let q = 0; q < ch; q++) {
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              out.push(src[(((f0 + a) * ch + q) * H + y0 + y) * W + x0 + x]);
            }
          }
        }
      }
      return out;
    };
    assert.deepEqual(c.frames.shape, [t, 3, h, w]);
    assert.deepEqual(c.jnd.shape, [t, 1, h, w]);
    assert.deepEqual([...await c.frames.read()], want(f, 3));
    assert.deepEqual([...await c.jnd.read()], want(j, 1));
    assert.equal(c.label, 3);
    for (const v of [frames, jnd, c.frames, c.jnd]) v.dispose();
  }
});

Deno.test("train: --crops trains on windows of a larger proxy, records them, refuses what cannot work", async () => {
  const dir = await tmp();
  await buildTinyProxy(join(dir, "small"));
  // vsfa-mini reads the small clips scaled to its 64x64; the large ones are read as they are.
  await buildTinyProxy(join(dir, "large"), { size: 80 });
  const small = join(dir, "small", "manifest.json");
  const large = join(dir, "large", "manifest.json");
  const common = {
    victim: "vsfa-mini",
    variant: "two-branch" as const,
    manifest: small,
    steps: 2,
    batch: 2,
    lr: 1e-2,
    config: TINY,
    testClips: 2,
    onProgress: () => {},
  };
  const plain = await trainGenerator({
    ...common,
    out: join(dir, "g-plain"),
    checkpointDir: join(dir, "ck-plain"),
  });
  const cropped = await trainGenerator({
    ...common,
    crops: large,
    cropShare: 0.5,
    out: join(dir, "g-crops"),
    checkpointDir: join(dir, "ck-crops"),
  });
  // Same seed, same first pick: the second clip of each batch is a crop, so the losses differ.
  assert.notEqual(cropped.losses[0], plain.losses[0]);
  const info = JSON.parse(await Deno.readTextFile(join(dir, "g-crops.json")));
  assert.equal(info.training.crops, large);
  assert.equal(info.training.cropShare, 0.5);
  const largeItems = JSON.parse(await Deno.readTextFile(large)).clips
    .filter((i: { split: string }) => i.split === "train").length;
  assert.equal(info.training.cropClips, largeItems);
  assert.equal(
    JSON.parse(await Deno.readTextFile(join(dir, "g-plain.json"))).training.crops,
    undefined,
  );
  // With context, the generator runs on 80x80 windows and the victim scores their 64x64 centre:
  // another loss from the same draws, recorded in the JSON.
  const context = await trainGenerator({
    ...common,
    crops: large,
    cropShare: 0.5,
    cropContext: 8,
    out: join(dir, "g-context"),
    checkpointDir: join(dir, "ck-context"),
  });
  assert.notEqual(context.losses[0], cropped.losses[0]);
  assert.equal(
    JSON.parse(await Deno.readTextFile(join(dir, "g-context.json"))).training.cropContext,
    8,
  );
  // A window larger than the large clips is refused, naming the sizes.
  await assert.rejects(
    trainGenerator({ ...common, crops: large, cropContext: 9, out: join(dir, "g-9") }),
    /a window of 3x82x82 .* is larger than the clip's 3x80x80/,
  );
  // A share of 0 trains exactly as without crops.
  const none = await trainGenerator({
    ...common,
    crops: large,
    cropShare: 0,
    out: join(dir, "g-none"),
    checkpointDir: join(dir, "ck-none"),
  });
  assert.deepEqual(none.losses, plain.losses);
  await assert.rejects(
    trainGenerator({ ...common, variant: "untargeted", crops: large, out: join(dir, "g-u") }),
    /crops: the untargeted variant's target needs each crop's clean score/,
  );
  await assert.rejects(
    trainGenerator({ ...common, crops: small, out: join(dir, "g-s") }),
    /small.manifest\.json: its clips are 3x32x32 .*not larger than the main clips' 3x64x64/,
  );
  await assert.rejects(
    trainGenerator({ ...common, crops: large, cropShare: 2, out: join(dir, "g-2") }),
    /cropShare must be in \[0, 1\], got 2/,
  );
  for (const r of [plain, cropped, context, none]) r.generator?.net.dispose();
});
