// The generator trainer's validation curve (`--val-every`): points at the right steps, each the
// strength that evaluateGenerator measures on the val clips for the weights of that step, kept
// across a resume, written to the JSON; a manifest without a val split is refused up front.

import assert from "assert";
import { join } from "path";
import { loadGenerator, loadVictim, trainGenerator } from "../mod.ts";
import {
  disposeClips,
  evaluateGenerator,
  loadTrainClips,
  type ValidationPoint,
} from "../src/train/generator.ts";
import { buildTinyProxy, initGpu } from "./_helpers.ts";
import { tempDirs, TINY } from "./_attack_fixtures.ts";

await initGpu();
const tmp = tempDirs("stqa_val_");

Deno.test("train: --val-every measures the val split at its steps, survives a resume, lands in the JSON", async () => {
  const dir = await tmp();
  await buildTinyProxy(join(dir, "p"), { valSources: 1 });
  const manifest = join(dir, "p", "manifest.json");
  const common = {
    victim: "vsfa-mini",
    variant: "two-branch" as const,
    manifest,
    steps: 4,
    batch: 2,
    lr: 2e-2,
    config: TINY,
    testClips: 2,
    valEvery: 2,
    valClips: 2,
    checkpointEvery: 1,
    onProgress: () => {},
  };
  const whole = await trainGenerator({
    ...common,
    out: join(dir, "g"),
    checkpointDir: join(dir, "ck"),
  });
  const info = JSON.parse(await Deno.readTextFile(join(dir, "g.json")));
  const curve: ValidationPoint[] = info.training.validation;
  assert.deepEqual(curve.map((p) => p.step), [2, 4]);
  const file = (await Deno.readTextFile(join(dir, "ck", "validation.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(file, curve);
  // The last point is what evaluateGenerator measures, independently, on the saved weights.
  const victim = await loadVictim("vsfa-mini");
  const val = await loadTrainClips(victim, manifest, "val", { maxClips: 2 });
  const g = await loadGenerator(join(dir, "g"));
  const r = await evaluateGenerator(g, victim, val, {});
  const last = curve[1];
  assert.equal(last.n, 2);
  for (
    const [k, v] of [
      ["meanTowardTarget", r.meanTowardTarget],
      ["meanScoreChange", r.meanScoreChange],
      ["meanUpChange", r.meanUpChange!],
      ["meanDownChange", r.meanDownChange!],
      ["meanPsnr", r.meanPsnr],
    ] as const
  ) {
    assert.ok(Math.abs(last[k]! - v) <= 6e-5, `${k}: curve ${last[k]} vs evaluated ${v}`);
  }
  // The up and down means agree with the shares' signs' meaning: positive means the right way.
  assert.ok(Number.isFinite(last.meanUpChange!) && Number.isFinite(last.meanDownChange!));
  disposeClips(val);
  g.net.dispose();
  victim.dispose();
  // Interrupted after 3 steps, then resumed: the same curve.
  await trainGenerator({
    ...common,
    out: join(dir, "g2"),
    checkpointDir: join(dir, "ck2"),
    stopAfter: 3,
  });
  const partial = (await Deno.readTextFile(join(dir, "ck2", "validation.jsonl"))).trim()
    .split("\n");
  assert.equal(partial.length, 1);
  const resumed = await trainGenerator({
    ...common,
    out: join(dir, "g2"),
    checkpointDir: join(dir, "ck2"),
    resume: true,
  });
  const curve2: ValidationPoint[] = JSON.parse(await Deno.readTextFile(join(dir, "g2.json")))
    .training.validation;
  assert.deepEqual(curve2.map((p) => p.step), [2, 4]);
  for (const [i, p] of curve2.entries()) {
    assert.ok(Math.abs(p.meanTowardTarget - curve[i].meanTowardTarget) <= 2e-4, `point ${i}`);
  }
  // No val split: refused before anything is trained.
  const noVal = join(dir, "q");
  await buildTinyProxy(noVal);
  await assert.rejects(
    trainGenerator({ ...common, manifest: join(noVal, "manifest.json"), out: join(dir, "g3") }),
    /q.manifest\.json: the val split is empty/,
  );
  for (const x of [whole, resumed]) x.generator?.net.dispose();
});
