// The streamed evaluation (evaluateVideo by windows): a clip evaluated in windows of 1-2 frames
// (by --window, or forced by a lowered binding limit) against the same clip whole; the whole
// clip against the unwindowed computation (the victim's score of the whole clip, the random
// attack run once on the whole clip); the gradient attacks by windows: what the approximation
// guarantees (the box on the written bytes, the score moved toward the whole video's target).

import assert from "assert";
import { join } from "path";
import { nn, saveGenerator, StqaNet } from "../mod.ts";
import { fgsm, ifgsm } from "../src/attack/baselines/fgsm.ts";
import { randomAttack } from "../src/attack/baselines/random.ts";
import { quantizeInJnd, stqaAttack } from "../src/attack/stqa.ts";
import type { Attack } from "../src/attack/types.ts";
import { evalCommand } from "../src/cli/eval.ts";
import { evaluateVideo, type EvaluateVideoOptions } from "../src/eval/evaluate.ts";
import { readRows } from "../src/eval/rows.ts";
import type { EvalRow } from "../src/eval/robustness.ts";
import { evalWindow, victimBytesPerFrame, windowBytesPerFrame } from "../src/eval/windows.ts";
import { setBindingLimit } from "../src/gpu/device.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { loadGenerator } from "../src/models/generator_io.ts";
import { loadVictim } from "../src/models/victims/mod.ts";
import type { Victim } from "../src/models/victims/victim.ts";
import { noGrad, tensor, tidy } from "../src/tensor/tensor.ts";
import { readVideo } from "../src/video/mod.ts";
import { assertClose, initGpu } from "./_helpers.ts";
import { INFO, tempDirs, TINY } from "./_attack_fixtures.ts";

await initGpu();

const root = await tempDirs("stqa_eval_stream_")();

/** A moving test pattern, `frames` frames of `size` x `size`, lossless. */
async function makeClip(file: string, size: number, frames: number): Promise<string> {
  const r = await new Deno.Command("ffmpeg", {
    args: [
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=${size}x${size}:rate=25`,
      "-frames:v",
      String(frames),
      "-c:v",
      "ffv1",
      "-y",
      file,
    ],
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return file;
}

const CLIP = await makeClip(join(root, "clip.mkv"), 48, 6);

async function tinyGenerator(variant: "untargeted" | "two-branch", family: string) {
  const net = new StqaNet({ seed: 7, config: { ...TINY, variant } });
  const stem = join(root, `gen-${variant}-${family}`);
  await saveGenerator(net, stem, {
    ...INFO,
    victim: family,
    victimFamily: family as "vsfa-mini",
  });
  net.dispose();
  return await loadGenerator(stem);
}

async function evaluate(
  victim: Victim,
  attacks: Attack[],
  extra: Partial<EvaluateVideoOptions> = {},
): Promise<EvalRow[]> {
  const rows: EvalRow[] = [];
  const work = await Deno.makeTempDir({ dir: root, prefix: "work_" });
  await evaluateVideo({ path: CLIP, name: "clip", index: 0, label: null }, victim, attacks, {
    median: 3,
    workDir: work,
    onRow: (r) => void rows.push(r),
    ...extra,
  });
  assert.deepEqual([...Deno.readDirSync(work)], [], "the work folder is left empty");
  return rows;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

/** The fields of two rows that must agree (scores within float tolerance). */
function assertSameRow(a: EvalRow, b: EvalRow, what: string) {
  assert.equal(a.method, b.method);
  assert.equal(a.frames, b.frames, `${what}: frames`);
  for (const k of ["cleanScore", "cleanRtScore", "advScore", "rtScore"] as const) {
    assert.ok(rel(a[k], b[k]) <= 1e-5, `${what} ${a.method}: ${k} ${a[k]} vs ${b[k]}`);
  }
  for (const k of ["psnr", "ssim", "beyondJnd", "meanAbsLevels", "rtPsnr", "rtSsim"] as const) {
    const x = a[k], y = b[k];
    assert.ok(
      x === y || (x !== null && y !== null && rel(x, y) <= 1e-9),
      `${what} ${a.method}: ${k} ${x} vs ${y}`,
    );
  }
}

for (const family of ["vsfa-mini", "fastvqa-mini"] as const) {
  Deno.test(`eval by windows (${family}): windows of 2 and 1 frames give the whole clip's rows for random and stqa-net (state carried)`, async () => {
    const victim = await loadVictim(family);
    const one = await tinyGenerator("untargeted", family);
    const two = await tinyGenerator("two-branch", family);
    try {
      const attacks = [
        randomAttack,
        stqaAttack(one),
        stqaAttack(two, { name: "stqa-net-two-branch" }),
      ];
      const whole = await evaluate(victim, attacks, { window: 6 });
      assert.deepEqual(whole.map((r) => r.frames), [6, 6, 6]);
      for (const window of [2, 1]) {
        const rows = await evaluate(victim, attacks, { window });
        for (const [i, r] of rows.entries()) assertSameRow(r, whole[i], `window ${window}`);
      }
      // Forced by the binding limit: the default window is what fits (2 frames here).
      const size = family === "vsfa-mini" ? 64 : 48;
      const per = windowBytesPerFrame(size, size, [], victimBytesPerFrame(victim));
      const before = setBindingLimit(2 * per + 100);
      try {
        assert.equal(evalWindow(size, size, [], undefined, victimBytesPerFrame(victim)), 2);
        const rows = await evaluate(victim, [randomAttack]);
        assertSameRow(rows[0], whole[0], "binding limit");
      } finally {
        setBindingLimit(before);
      }
    } finally {
      one.net.dispose();
      two.net.dispose();
      victim.dispose();
    }
  });
}

Deno.test("eval by windows: a generator that needs tiles binds a frame's floats per frame, and its windows equal the untiled run", async () => {
  const gen = await tinyGenerator("untargeted", "vsfa-mini");
  const victim = await loadVictim("vsfa-mini");
  const attack = stqaAttack(gen);
  const [h, w] = [40, 56];
  const x = tensor(Float32Array.from({ length: 4 * 3 * h * w }, (_, i) => (i * 37 % 255) / 255), [
    4,
    3,
    h,
    w,
  ]);
  const jnd = tidy(() => noGrad(() => computeJnd(x, { model: "namm-st" })));
  const run = async () => {
    const win = attack.windows!(victim, { eps: 1, mode: "untargeted", cleanScore: 2 });
    const parts: Float32Array[] = [];
    try {
      // Windows of one frame: the tiled run's limit holds a frame's floats, not two.
      for (const [s, e] of [[0, 1], [1, 2], [2, 3], [3, 4]]) {
        const xs = tidy(() => nn.slice(x, { axis: 0, start: s, end: e }));
        const js = tidy(() => nn.slice(jnd, { axis: 0, start: s, end: e }));
        const out = await win.next(xs, js);
        parts.push(await out.adversarial.read());
        for (const t of [xs, js, out.adversarial]) t.dispose();
      }
    } finally {
      win.dispose();
    }
    return parts;
  };
  try {
    assert.equal(attack.bytesPerFrame!(h, w), gen.net.bytesPerFrame(h, w));
    const whole = await run();
    // Below one frame's widest activation but above a frame's floats: the frames go in tiles.
    const before = setBindingLimit(Math.floor((gen.net.bytesPerFrame(h, w) + 12 * h * w) / 2));
    try {
      assert.ok(gen.net.tiling(h, w) !== null, "the lowered limit forces tiles");
      assert.equal(attack.bytesPerFrame!(h, w), 12 * h * w);
      const tiled = await run();
      for (const [k, p] of tiled.entries()) {
        assertClose(p, whole[k], { rtol: 0, atol: 1e-6, what: `window ${k} tiled vs whole` });
      }
    } finally {
      setBindingLimit(before);
    }
  } finally {
    for (const t of [x, jnd]) t.dispose();
    gen.net.dispose();
    victim.dispose();
  }
});

Deno.test("eval by windows: the whole clip agrees with the unwindowed computation (clean score, random attack)", async () => {
  const victim = await loadVictim("vsfa-mini");
  try {
    const [row] = await evaluate(victim, [randomAttack], { window: 2, seed: 4 });
    const frames = await readVideo(CLIP, { size: { width: 64, height: 64 } });
    const jnd = tidy(() => noGrad(() => computeJnd(frames, { model: "namm-st" })));
    const clean = (await tidy(() => noGrad(() => victim.score(frames))).read())[0];
    const out = await randomAttack.run(frames, victim, { jnd, seed: 4, eps: 1 });
    const adv = quantizeInJnd(
      await frames.read(),
      await out.adversarial.read(),
      await jnd.read(),
      frames.shape,
    );
    const advT = tensor(adv, frames.shape);
    const advScore = (await tidy(() => noGrad(() => victim.score(advT))).read())[0];
    for (const x of [frames, jnd, out.adversarial, advT]) x.dispose();
    assert.ok(rel(row.cleanScore, clean) <= 1e-5, `clean ${row.cleanScore} vs ${clean}`);
    assert.ok(rel(row.advScore, advScore) <= 1e-5, `random ${row.advScore} vs ${advScore}`);
  } finally {
    victim.dispose();
  }
});

Deno.test("eval by windows: FGSM and I-FGSM by windows keep the box on the written bytes and move the score toward the target", async () => {
  const victim = await loadVictim("vsfa-mini");
  try {
    for (const mode of ["down", "up", "untargeted"] as const) {
      const whole = await evaluate(victim, [fgsm, ifgsm], { window: 6, mode });
      const windowed = await evaluate(victim, [fgsm, ifgsm], { window: 2, mode });
      assert.ok(rel(windowed[0].cleanScore, whole[0].cleanScore) <= 1e-5);
      const clean = whole[0].cleanScore;
      const target = mode === "up" ? 5 : mode === "down" ? 1 : clean > 3 ? 1 : 5;
      for (const [i, r] of windowed.entries()) {
        assert.equal(r.beyondJnd, 0, `${mode} ${r.method}: bytes outside the box`);
        assert.ok(r.meanAbsLevels > 0, `${mode} ${r.method}: no perturbation`);
        const moved = (r.advScore - clean) * Math.sign(target - clean);
        assert.ok(moved > 0, `${mode} ${r.method}: ${clean} -> ${r.advScore}, target ${target}`);
        console.log(
          `${mode} ${r.method}: clean ${clean.toFixed(4)}, whole ${
            whole[i].advScore.toFixed(4)
          }, windows of 2 ${r.advScore.toFixed(4)}`,
        );
        // Passes per window: the same as the whole clip's (each frame gets that many).
        assert.equal(r.victimPasses, whole[i].victimPasses);
      }
    }
  } finally {
    victim.dispose();
  }
});

Deno.test("eval by windows: a window larger than fits is refused, naming what fits", async () => {
  const victim = await loadVictim("fastvqa-mini");
  // FAST-VQA's widest activation per frame (its fragments' first layer) decides here.
  const per = victimBytesPerFrame(victim);
  assert.ok(per > 12 * 48 * 48, `${per}`);
  const before = setBindingLimit(3 * per);
  try {
    await assert.rejects(
      () => evaluate(victim, [randomAttack], { window: 4 }),
      RangeError,
      "at most 3 fit (--window)",
    );
  } finally {
    setBindingLimit(before);
    victim.dispose();
  }
});

Deno.test("deno task eval --frames all --window 2: every frame, the options recorded, another window refused", async () => {
  const out = join(root, "cli");
  const args = ["--victims", "vsfa-mini", "--methods", "random", "--dataset", CLIP, "--out", out];
  const quiet = async (a: string[]) => {
    const err: string[] = [];
    const orig = console.error, origLog = console.log;
    console.error = (...x: unknown[]) => err.push(x.join(" "));
    console.log = () => {};
    try {
      return { code: await evalCommand(a), err: err.join("\n") };
    } finally {
      console.error = orig;
      console.log = origLog;
    }
  };
  const r = await quiet([...args, "--frames", "all", "--window", "2"]);
  assert.equal(r.code, 0, r.err);
  const rows = await readRows(out);
  assert.deepEqual(rows.map((x) => [x.method, x.frames]), [["random", 6]]);
  assert.deepEqual(rows[0].settings?.methodOptions, { frames: "all", window: 2 });
  const again = await quiet([...args, "--frames", "all", "--window", "3"]);
  assert.equal(again.code, 1);
  assert.match(again.err, /"window":2/);
  // The victim's clip length by default (8 for the bundled victims; this clip has 6).
  const def = await quiet([...args, "--out", join(root, "cli-default"), "--frames", "4"]);
  assert.equal(def.code, 0, def.err);
  assert.equal((await readRows(join(root, "cli-default")))[0].frames, 4);
});
