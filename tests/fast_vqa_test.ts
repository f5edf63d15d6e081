// FAST-VQA, FasterVQA and DOVER against a float64 PyTorch reference of the authors' models and
// sampling (tests/fixtures/make_fast_vqa_fixture.py) at tiny sizes, loaded through the real
// loader from files laid out as the authors' ({"state_dict": ...} for FAST-VQA and FasterVQA, a
// plain state_dict for DOVER), with the fixture's random draws replayed as explicit plans; the
// gradient through the fragment sampling checked by finite differences; the streamed score.

import assert from "assert";
import { join } from "path";
import { createVictim, initGpu, loadVictim, nn, tensor } from "../mod.ts";
import type { Dover, DoverPlan } from "../src/models/victims/dover.ts";
import type { FastVqa } from "../src/models/victims/fast_vqa.ts";
import { type FragmentPlan, fragmentView } from "../src/models/victims/fragments.ts";
import { imagenetNormalize } from "../src/models/victims/resnet.ts";
import { noGrad, type Tensor } from "../src/tensor/tensor.ts";

const DIR = new URL("./fixtures/fast_vqa/", import.meta.url).pathname;
// deno-lint-ignore no-explicit-any
const cases: any[] = JSON.parse(await Deno.readTextFile(join(DIR, "expected.json")));

await initGpu();

/** The fixture's frames: ((i * 1103515245 + 12345) mod 2^31) / 2^31, as float32. */
function frames(shape: number[]): Float32Array {
  const n = shape.reduce((a, d) => a * d, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number((BigInt(i) * 1103515245n + 12345n) % 2147483648n) / 2147483648;
  }
  return out;
}

// deno-lint-ignore no-explicit-any
function fragmentPlanOf(p: any): FragmentPlan {
  return { indices: p.indices, rndH: p.rnd_h, rndW: p.rnd_w };
}

for (const want of cases) {
  Deno.test(`${want.model} (${want.case}) matches PyTorch: sampled view, score, input gradient`, async () => {
    const victim = await loadVictim(want.model, {
      weights: [join(DIR, want.weights)],
      config: want.config,
    });
    try {
      const technical = fragmentPlanOf(want.plan.technical);
      // The fragments themselves (normalised), every view_stride-th element.
      const grid = want.model === "dover" ? want.config.technical : want.config;
      const view = await noGrad(() =>
        imagenetNormalize(
          fragmentView(tensor(frames(want.frames_shape), want.frames_shape), technical, {
            fragments: grid.fragments,
            fragmentSize: grid.fragmentSize,
            aligned: grid.aligned,
          }),
        )
      );
      // The fixture's view is [C, N, h, w]; ours [N, C, h, w].
      const cnhw = await nn.permute(view, [1, 0, 2, 3]).read();
      let ve = 0;
      want.view.forEach((v: number, k: number) => {
        ve = Math.max(ve, Math.abs(cnhw[k * want.view_stride] - v));
      });
      assert.ok(ve <= 1e-4, `fragments: max error ${ve}`);

      const x = tensor(frames(want.frames_shape), want.frames_shape, { requiresGrad: true });
      const s = want.model === "dover"
        ? (victim as Dover).scoreWithPlan(x, {
          technical,
          aesthetic: { indices: want.plan.aesthetic.indices },
        } as DoverPlan)
        : (victim as FastVqa).scoreWithPlan(x, technical);
      const got = (await s.read())[0];
      assert.ok(
        Math.abs(got - want.score) <= 1e-4 * Math.abs(want.score),
        `score ${got} vs ${want.score}`,
      );
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
    } finally {
      victim.dispose();
    }
  });
}

/** A tiny FAST-VQA (raw score, no sigmoid) for the finite-difference and stream tests. */
const TINY = {
  backbone: {
    embedDim: 8,
    depths: [2, 2],
    heads: [1, 2],
    window: [2, 3, 3],
    patch: [2, 4, 4],
    mlpRatio: 2,
    fragBiases: [true, false],
    baseSize: [4, 32, 32],
    adaptiveWindow: true,
  },
  hidden: 8,
  fragments: [2, 2],
  fragmentSize: [16, 16],
  aligned: 2,
  segments: 2,
  segmentFrames: 2,
  interval: 2,
  repeats: 1,
  clips: 1,
  clipLen: 4,
  rescale: null,
  seed: 5,
};

Deno.test("fast-vqa: the gradient through the fragment sampling matches finite differences", async () => {
  const victim = createVictim("fast-vqa", { seed: 3, config: TINY });
  try {
    for (const [t, h, w] of [[7, 40, 52], [5, 24, 28]]) {
      // 40x52 is cut from; 24x28 is upsampled first (smaller than the 32x32 grid).
      const n = t * 3 * h * w;
      const base = new Float32Array(n).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.37 + t));
      const x = tensor(base, [t, 3, h, w], { requiresGrad: true });
      const s = victim.score(x);
      s.backward();
      const g = await x.grad!.read();
      // Directions: smooth bumps on single frames, where the sampling reads them or not.
      let nonzero = 0;
      for (let d = 0; d < 3; d++) {
        const dir = new Float32Array(n);
        const f = (2 * d + 1) % t;
        const cy = (h * (d + 1)) / 4, cx = (w * (3 - d)) / 4;
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < h; y++) {
            for (let xx = 0; xx < w; xx++) {
              const r2 = ((y - cy) ** 2 + (xx - cx) ** 2) / 36;
              dir[((f * 3 + c) * h + y) * w + xx] = Math.exp(-r2) * (c === 1 ? -1 : 1);
            }
          }
        }
        let exact = 0;
        for (let i = 0; i < n; i++) exact += g[i] * dir[i];
        const eps = 1e-2;
        const at = async (sign: number) => {
          const y = base.map((v, i) => v + sign * eps * dir[i]);
          return (await noGrad(() => victim.score(tensor(y, [t, 3, h, w]))).read())[0];
        };
        const fd = ((await at(1)) - (await at(-1))) / (2 * eps);
        if (Math.abs(exact) > 1e-3) nonzero++;
        const scale = Math.max(Math.abs(exact), Math.abs(fd), 1e-3);
        assert.ok(
          Math.abs(exact - fd) <= 2e-2 * scale,
          `${t}x${h}x${w}, direction ${d}: gradient ${exact} vs finite difference ${fd}`,
        );
      }
      assert.ok(nonzero > 0, `${t}x${h}x${w}: no direction the sampling reads`);
    }
  } finally {
    victim.dispose();
  }
});

const { rescale: _rescale, seed: _seed, ...VIEW } = TINY;

Deno.test("fast-vqa and dover: the streamed score equals the whole clip's; the stream needs the frame count", async () => {
  const fast = createVictim("fast-vqa", { seed: 3, config: TINY });
  const dover = createVictim("dover", {
    seed: 4,
    config: {
      technical: VIEW,
      aesthetic: {
        backbone: { dims: [8, 16, 24, 32], depths: [1, 1, 1, 1], inflate: "131" },
        hidden: 8,
        size: [32, 32],
        segments: 4,
        segmentFrames: 1,
        interval: 2,
        repeats: 1,
        clips: 1,
        clipLen: 4,
      },
    },
  });
  try {
    const [t, h, w] = [9, 36, 44];
    const f = 3 * h * w;
    const data = new Float32Array(t * f).map((_, i) => (i % 251) / 251);
    for (const victim of [fast, dover]) {
      const whole = (await noGrad(() => victim.score(tensor(data, [t, 3, h, w]))).read())[0];
      for (const cuts of [[0, 9], [0, 4, 9], [0, 1, 2, 7, 9]]) {
        const stream = victim.stream({ frames: t });
        for (let k = 0; k + 1 < cuts.length; k++) {
          const [a, b] = [cuts[k], cuts[k + 1]];
          const chunk: Tensor = tensor(data.slice(a * f, b * f), [b - a, 3, h, w]);
          stream.push(chunk);
          chunk.dispose();
        }
        const r = await stream.finish();
        assert.equal(r.frames, t);
        assert.ok(
          Math.abs(r.score - whole) <= 1e-5 * Math.max(1, Math.abs(whole)),
          `${victim.name}, chunks ${cuts}: ${r.score} vs ${whole}`,
        );
      }
      assert.throws(() => victim.stream(), /frame count up front/);
      const short = victim.stream({ frames: t + 1 });
      short.push(tensor(data, [t, 3, h, w]));
      await assert.rejects(
        () => short.finish(),
        /9 frames pushed, but the stream was opened for 10/,
      );
    }
  } finally {
    fast.dispose();
    dover.dispose();
  }
});

Deno.test("fast-vqa: bad configs and frames are named", () => {
  assert.throws(
    () => createVictim("fast-vqa", { config: { ...TINY, clipLen: 3 } }),
    /clipLen: clips · clipLen \(3\) must equal repeats · segments · segmentFrames \(4\)/,
  );
  assert.throws(
    () =>
      createVictim("fast-vqa", {
        config: { ...TINY, backbone: { ...TINY.backbone, heads: [3, 2] } },
      }),
    /stage 0 has 8 channels, not a multiple of 3 heads/,
  );
  const victim = createVictim("fast-vqa", { seed: 1, config: TINY });
  try {
    assert.throws(
      () => victim.score(tensor(new Float32Array(4 * 3 * 12 * 40), [4, 3, 12, 40])),
      /frames of 40x12 are smaller than one 16x16 fragment/,
    );
  } finally {
    victim.dispose();
  }
});
