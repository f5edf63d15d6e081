// The published SimpleVQA against a PyTorch reference of its test demo's protocol and model
// (tests/fixtures/make_simplevqa_fixture.py, float64) at small sizes, loaded through the real
// loader from files laid out as the authors' (the ResNet and head in one DataParallel-prefixed
// file, pytorchvideo's {"model_state": ...} SlowFast checkpoint).

import assert from "assert";
import { join } from "path";
import { initGpu, loadVictim, tensor } from "../mod.ts";
import type { SimpleVqa } from "../src/models/victims/simplevqa.ts";

const DIR = new URL("./fixtures/", import.meta.url).pathname;
const want = JSON.parse(await Deno.readTextFile(join(DIR, "simplevqa/expected.json")));
const FILES = [join(DIR, "simplevqa/simplevqa_w8.pth"), join(DIR, "slowfast/slowfast_w8.pyth")];

await initGpu();

/** The fixture's frames: ((i * 1103515245 + 12345) mod 2^31) / 2^31, as float32. */
function frames(): Float32Array {
  const n = want.frames_shape.reduce((a: number, d: number) => a * d, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number((BigInt(i) * 1103515245n + 12345n) % 2147483648n) / 2147483648;
  }
  return out;
}

Deno.test("simplevqa matches PyTorch: score, per-second scores, input gradient", async () => {
  const victim = await loadVictim("simplevqa", { weights: FILES, config: want.config });
  try {
    const x = tensor(frames(), want.frames_shape, { requiresGrad: true });
    const s = victim.score(x);
    const got = (await s.read())[0];
    assert.ok(Math.abs(got - want.score) <= 1e-4 * Math.abs(want.score), `${got} vs ${want.score}`);
    s.backward();
    const g = await x.grad!.read();
    let e = 0;
    want.grad.forEach((v: number, k: number) => {
      e = Math.max(e, Math.abs(g[k * want.grad_stride] - v));
    });
    assert.ok(
      e <= 1e-3 * want.grad_max,
      `input gradient: max error ${e / want.grad_max} of the largest`,
    );
    const q = await (victim as SimpleVqa).secondScores(tensor(frames(), want.frames_shape)).read();
    want.second_scores.forEach((v: number, i: number) =>
      assert.ok(Math.abs(q[i] - v) <= 1e-4 * Math.abs(v), `second ${i}: ${q[i]} vs ${v}`)
    );
  } finally {
    victim.dispose();
  }
});

Deno.test("simplevqa: the streamed score equals the whole clip's, any chunks", async () => {
  const victim = await loadVictim("simplevqa", { weights: FILES, config: want.config });
  try {
    const data = frames();
    const [t, c, h, w] = want.frames_shape;
    const f = c * h * w;
    for (const cuts of [[0, 9], [0, 3, 9], [0, 1, 2, 5, 9]]) {
      const stream = victim.stream();
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [a, b] = [cuts[k], cuts[k + 1]];
        stream.push(tensor(data.slice(a * f, b * f), [b - a, c, h, w]));
      }
      const r = await stream.finish();
      assert.equal(r.frames, t);
      assert.ok(
        Math.abs(r.score - want.score) <= 1e-4 * Math.abs(want.score),
        `chunks ${cuts}: ${r.score} vs ${want.score}`,
      );
      assert.equal(r.frameScores.length, want.second_scores.length);
    }
  } finally {
    victim.dispose();
  }
});

Deno.test("simplevqa: a missing motion file is named", async () => {
  await assert.rejects(
    () => loadVictim("simplevqa", { weights: [FILES[0]], config: want.config }),
    /no file gave the motion backbone .*SLOWFAST_8x8_R50/,
  );
});
