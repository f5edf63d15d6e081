// SlowFast-R50 (pytorchvideo's slowfast_r50, SimpleVQA's motion branch) against a PyTorch
// reference with random weights (tests/fixtures/make_slowfast_fixture.py): the full [3, 4, 6, 3]
// blocks at slow stem width 8 (fast 1), loaded through the real checkpoint reader from a file laid
// out as the released one ({"model_state": state_dict}, zip format, with blocks.6.proj and
// num_batches_tracked). Outputs within 1e-4 of the largest, the input gradient within 1e-3.

import assert from "assert";
import { join } from "path";
import { initGpu, nn, tensor } from "../mod.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import {
  buildSlowFastParams,
  matchPublishedWeights,
  readPublishedWeights,
  simpleVqaPool,
  SlowFast,
  SLOWFAST_R50,
  slowFastChannels,
  SlowFastConfigSchema,
  slowFastNormalize,
  slowFrameIndices,
  slowPathway,
} from "../src/models/victims/mod.ts";
import { ParamBuilder } from "../src/models/victims/victim.ts";
import { assignPublishedWeights, MOTION_PREFIX } from "../src/models/victims/published.ts";

const DIR = new URL("./fixtures/slowfast/", import.meta.url).pathname;
const CKPT = join(DIR, "slowfast_w8.pyth");
const fixture = JSON.parse(await Deno.readTextFile(join(DIR, "slowfast.json")));
const expected = (await readSafetensorsFile(join(DIR, "expected.safetensors"))).tensors;
const CONFIG = SlowFastConfigSchema.parse(fixture.config);

await initGpu();

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}

/** The fixture's frames: frac(i * 0.7548776662 + (i mod 7) * 0.1234567), as float32. */
function frames(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 0.7548776662 + (i % 7) * 0.1234567) % 1;
  return out;
}

function lossWeights(n: number, a: number, b: number, fn: string): Float32Array {
  const f = fn === "cos" ? Math.cos : Math.sin;
  return Float32Array.from({ length: n }, (_, i) => f(a * i + b));
}

Deno.test("slowfast: names and shapes at full width are pytorchvideo slowfast_r50's", () => {
  const pb = new ParamBuilder(1, { shapesOnly: true });
  buildSlowFastParams(pb, "", SLOWFAST_R50);
  const full = fixture.full_width;
  const theirs = Object.fromEntries(
    Object.entries(full.shapes as Record<string, number[]>)
      .filter(([k]) => !k.endsWith(".num_batches_tracked") && !k.startsWith("blocks.6.proj.")),
  );
  assert.equal(Object.keys(full.shapes).length, full.keys);
  assert.equal(full.keys, 662);
  assert.deepEqual(pb.shapes, theirs);
  for (const [k, v] of Object.entries(full.derived as Record<string, number[]>)) {
    if (!k.startsWith("blocks.6.")) assert.deepEqual(pb.shapes[k], v, k);
  }
  const count = Object.entries(pb.shapes)
    .filter(([k]) => !/running_(mean|var)$/.test(k))
    .reduce((a, [, s]) => a + s.reduce((p, d) => p * d, 1), 0);
  assert.equal(count + 2304 * 400 + 400, full.parameters); // + the unused classifier
  assert.deepEqual(slowFastChannels(SLOWFAST_R50), { slow: 2048, fast: 256 });
});

Deno.test("slowfast: slow frame indices are torch.linspace(0, T-1, T//4).long()", () => {
  for (const [t, idx] of Object.entries(fixture.slow_indices as Record<string, number[]>)) {
    assert.deepEqual(slowFrameIndices(Number(t)), idx, `T = ${t}`);
  }
  assert.throws(() => slowFrameIndices(3), /at least 4 frames/);
});

Deno.test("slowfast: matches PyTorch (both maps, SimpleVQA's pooled features, input gradient)", async () => {
  // The loader every published victim uses: a pytorchvideo file's names go under `motion.`,
  // its Kinetics head and batch-norm counters are dropped.
  const found = await readPublishedWeights([CKPT]);
  assert.ok(![...found.keys()].some((k) => k.startsWith(`${MOTION_PREFIX}blocks.6.`)), "head");
  const pb = new ParamBuilder(3);
  buildSlowFastParams(pb, MOTION_PREFIX, CONFIG);
  assignPublishedWeights("simplevqa", found, pb.params);
  const net = new SlowFast(CONFIG, pb.params, MOTION_PREFIX);
  try {
    const x = tensor(frames(fixture.frames_shape), fixture.frames_shape);
    x.requiresGrad = true;
    const fast = slowFastNormalize(x);
    const maps = net.features(slowPathway(fast), fast);
    const e = {
      slow: relErr(await maps.slow.read(), expected.slow.data),
      fast: relErr(await maps.fast.read(), expected.fast.data),
    };
    assert.deepEqual(maps.slow.shape, expected.slow.shape);
    assert.deepEqual(maps.fast.shape, expected.fast.shape);
    const [ks, kf] = fixture.pool_kernels;
    const pooled = simpleVqaPool(maps, { slowKernel: ks, fastKernel: kf });
    const ep = {
      slow: relErr(await pooled.slow.read(), expected.pooled_slow.data),
      fast: relErr(await pooled.fast.read(), expected.pooled_fast.data),
    };
    const [a, b, fnS] = fixture.loss.slow;
    const [c, d, fnF] = fixture.loss.fast;
    const ws = tensor(lossWeights(maps.slow.size, a, b, fnS), maps.slow.shape);
    const wf = tensor(lossWeights(maps.fast.size, c, d, fnF), maps.fast.shape);
    const loss = nn.add(nn.sum(nn.mul(maps.slow, ws)), nn.sum(nn.mul(maps.fast, wf)));
    const lossValue = (await loss.read())[0];
    loss.backward();
    const eg = relErr(await x.grad!.read(), expected.grad.data);
    console.log(
      `slowfast parity: slow map ${e.slow.toExponential(2)}, fast map ${
        e.fast.toExponential(2)
      }, ` +
        `pooled ${ep.slow.toExponential(2)} / ${ep.fast.toExponential(2)}, ` +
        `loss ${lossValue} vs ${fixture.loss_value}, input gradient ${eg.toExponential(2)}`,
    );
    assert.ok(e.slow <= 1e-4 && e.fast <= 1e-4, `maps: ${JSON.stringify(e)}`);
    assert.ok(ep.slow <= 1e-4 && ep.fast <= 1e-4, `pooled: ${JSON.stringify(ep)}`);
    assert.ok(eg <= 1e-3, `input gradient: max error ${eg} of the largest`);
  } finally {
    net.dispose();
    for (const p of Object.values(pb.params)) p.dispose();
  }
});

Deno.test("slowfast: weights that do not fit are refused, naming tensor and shapes", async () => {
  const found = await readPublishedWeights([CKPT]);
  const shapes = (c: typeof CONFIG) => {
    const pb = new ParamBuilder(1, { shapesOnly: true });
    buildSlowFastParams(pb, MOTION_PREFIX, c);
    return pb.shapes;
  };
  assert.throws(
    () => matchPublishedWeights("simplevqa", found, shapes({ ...CONFIG, width: 16 })),
    /tensor 'blocks\.0\.multipathway_blocks\.0\.conv\.weight' of .*slowfast_w8\.pyth has shape \[8, 3, 1, 7, 7\], but simplevqa needs \[16, 3, 1, 7, 7\]/,
  );
  const extra = new Map(found);
  extra.set(`${MOTION_PREFIX}blocks.9.x`, {
    data: { shape: [1], data: new Float32Array(1) },
    file: CKPT,
    original: "blocks.9.x",
  });
  assert.throws(
    () => matchPublishedWeights("simplevqa", extra, shapes(CONFIG)),
    /slowfast_w8\.pyth has tensor 'blocks\.9\.x' \[1\], which simplevqa does not have/,
  );
});

Deno.test("slowfast: a fast pathway of the wrong length is refused", () => {
  const c = { width: 8, blocks: [1, 1, 1, 1] };
  const pb = new ParamBuilder(1);
  buildSlowFastParams(pb, "", c);
  const net = new SlowFast(c, pb.params, "");
  try {
    const fast = tensor(new Float32Array(3 * 8 * 16 * 16), [1, 3, 8, 16, 16]);
    const slow = tensor(new Float32Array(3 * 3 * 16 * 16), [1, 3, 3, 16, 16]);
    assert.throws(
      () => net.features(slow, fast),
      /fuse into 2 slow frames, but the slow pathway has 3/,
    );
  } finally {
    net.dispose();
    for (const p of Object.values(pb.params)) p.dispose();
  }
});
