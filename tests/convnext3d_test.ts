// ConvNeXt3D (DOVER's aesthetic backbone) against a PyTorch float64 reference with random weights
// (tests/fixtures/make_convnext3d_fixture.py): dims [8, 16, 24, 32], depths [2, 1, 3, 1],
// inflate "131", loaded through the real checkpoint reader from a zip-format state dict with
// DOVER's `aesthetic_backbone.` names. Features within 1e-4 of the largest, the input gradient
// within 1e-3. Also: ConvNeXt-T's names and shapes, the config schema, sizes, FLOPs, errors.

import assert from "assert";
import { join } from "path";
import { initGpu } from "../src/gpu/device.ts";
import { readTorchCheckpoint } from "../src/io/torch_checkpoint.ts";
import {
  buildConvNext3dParams,
  CONVNEXT3D_TINY,
  convNext3dChannels,
  ConvNext3dConfigSchema,
  convNext3dFeatures,
  convNext3dFlops,
  convNext3dInflateLength,
  convNext3dOutputSize,
} from "../src/models/victims/convnext3d.ts";
import { ParamBuilder } from "../src/models/victims/victim.ts";
import { mul } from "../src/tensor/ops/elementwise.ts";
import { sum } from "../src/tensor/ops/reduce.ts";
import { type Tensor, tensor } from "../src/tensor/tensor.ts";

const DIR = new URL("./fixtures/convnext3d/", import.meta.url).pathname;
const CKPT = join(DIR, "convnext3d_tiny.pth");
const fixture = JSON.parse(await Deno.readTextFile(join(DIR, "expected.json")));
const CONFIG = ConvNext3dConfigSchema.parse(fixture.config);
const PREFIX: string = fixture.prefix;

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

/** The fixture's frames: frac(i * 0.7548776662 + (i mod 7) * 0.1234567) * 4 - 2, as float32. */
function frames(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 0.7548776662 + (i % 7) * 0.1234567) % 1) * 4 - 2;
  return out;
}

Deno.test("convnext3d: names and shapes at ConvNeXt-T size are DOVER's aesthetic_backbone's", () => {
  const pb = new ParamBuilder(1, { shapesOnly: true });
  buildConvNext3dParams(pb, PREFIX, CONVNEXT3D_TINY);
  assert.equal(Object.keys(fixture.full_shapes).length, 180);
  assert.deepEqual(pb.shapes, fixture.full_shapes);
  assert.equal(convNext3dChannels(CONVNEXT3D_TINY), 768);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((j) => convNext3dInflateLength(CONVNEXT3D_TINY, j)), [
    1,
    3,
    1,
    1,
    3,
    1,
  ]);
  const count = Object.values(pb.shapes).reduce((a, s) => a + s.reduce((p, d) => p * d, 1), 0);
  // ConvNeXt-T without its head (27.8 M) plus the temporal taps and the stem's second frame.
  assert.ok(count > 27.8e6 && count < 28.3e6, `parameters: ${count}`);
});

Deno.test("convnext3d: config schema, output size, FLOPs", () => {
  assert.ok(ConvNext3dConfigSchema.safeParse(CONVNEXT3D_TINY).success);
  const bad = [
    { ...CONVNEXT3D_TINY, inflate: "121" },
    { ...CONVNEXT3D_TINY, inflate: "" },
    { ...CONVNEXT3D_TINY, dims: [96, 192, 384] },
    { ...CONVNEXT3D_TINY, depths: [3, 3, 0, 3] },
    { ...CONVNEXT3D_TINY, extra: 1 },
  ];
  for (const c of bad) assert.equal(ConvNext3dConfigSchema.safeParse(c).success, false);
  assert.deepEqual(convNext3dOutputSize([32, 224, 224]), [16, 7, 7]);
  assert.deepEqual(convNext3dOutputSize([5, 70, 33]), [2, 2, 1]);
  assert.throws(() => convNext3dOutputSize([1, 224, 224]), /\[1,224,224\] .* too small/);
  assert.throws(() => convNext3dOutputSize([4, 224, 31]), /too small/);
  // By hand for one stage of one block: stem + dwconv (1,7,7) + the two linears.
  const one = { dims: [4, 4, 4, 4], depths: [1, 1, 1, 1], inflate: "1" };
  const [d, h, w] = [1, 8, 8];
  const stem = 2 * d * h * w * 4 * 3 * 32;
  const block = (hw: number) => 2 * d * hw * 4 * (49 + 2 * 4 * 4);
  const down = (hw: number) => 2 * d * hw * 4 * 4 * 4;
  const want = stem + block(64) + down(16) + block(16) + down(4) + block(4) + down(1) + block(1);
  assert.equal(convNext3dFlops(one, [2, 32, 32]), want);
  assert.equal(convNext3dFlops(one, [2, 32, 32], 3), 3 * want);
  const gflop = convNext3dFlops(CONVNEXT3D_TINY, [32, 224, 224]) / 1e9;
  assert.ok(gflop > 140 && gflop < 150, `${gflop}`);
});

Deno.test("convnext3d: matches PyTorch (features and input gradient)", async () => {
  const ckpt = await readTorchCheckpoint(CKPT);
  assert.equal(ckpt.format, "zip");
  const pb = new ParamBuilder(3);
  buildConvNext3dParams(pb, PREFIX, CONFIG);
  assert.deepEqual(Object.keys(ckpt.tensors).sort(), Object.keys(pb.shapes).sort());
  for (const [name, t] of Object.entries(ckpt.tensors)) {
    assert.deepEqual(t.shape, pb.shapes[name], name);
    pb.params[name].dispose();
    pb.params[name] = tensor(t.data, t.shape);
  }
  const made: Tensor[] = [];
  try {
    const x = tensor(frames(fixture.input_shape), fixture.input_shape, { requiresGrad: true });
    made.push(x);
    const t0 = performance.now();
    const y = convNext3dFeatures(x, pb.params, PREFIX, CONFIG);
    made.push(y);
    assert.deepEqual(y.shape, fixture.features.shape);
    const ef = relErr(await y.read(), fixture.features.data);
    const { a, b } = fixture.loss;
    const r = tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos(a * i + b)), y.shape);
    const loss = sum(mul(y, r));
    made.push(r, loss);
    const lossValue = (await loss.read())[0];
    loss.backward();
    const eg = relErr(await x.grad!.read(), fixture.grad.data);
    console.log(
      `convnext3d parity: features ${ef.toExponential(2)}, input gradient ${
        eg.toExponential(2)
      }, loss ${lossValue} vs ${fixture.loss_value} (${
        ((performance.now() - t0) / 1000).toFixed(2)
      } s)`,
    );
    // 1e-5 rather than 1e-4: a LayerNorm eps of 1e-5 instead of 1e-6 moves the features by 3e-5.
    assert.ok(ef <= 1e-5, `features: max error ${ef} of the largest`);
    assert.ok(eg <= 1e-3, `input gradient: max error ${eg} of the largest`);
  } finally {
    made.forEach((t) => t.dispose());
    for (const p of Object.values(pb.params)) p.dispose();
  }
});

Deno.test("convnext3d: bad inputs and parameters are refused, naming them", () => {
  const c = { dims: [4, 8, 8, 8], depths: [1, 1, 1, 1], inflate: "3" };
  const pb = new ParamBuilder(1);
  buildConvNext3dParams(pb, "a.", c);
  const x = tensor(new Float32Array(3 * 2 * 32 * 32), [1, 3, 2, 32, 32]);
  try {
    assert.throws(
      () => convNext3dFeatures(x.reshape([1, 6, 1, 32, 32]), pb.params, "a.", c),
      /x must be \[B, 3, D, H, W\], got \[1,6,1,32,32\]/,
    );
    assert.throws(
      () => convNext3dFeatures(x.reshape([1, 3, 1, 64, 32]), pb.params, "a.", c),
      /\[1,64,32\] .* too small/,
    );
    assert.throws(
      () => convNext3dFeatures(x, pb.params, "b.", c),
      /missing parameter b\.downsample_layers\.0\.0\.weight/,
    );
    const wrong = { ...c, inflate: "1" };
    assert.throws(
      () => convNext3dFeatures(x, pb.params, "a.", wrong),
      /parameter a\.stages\.0\.0\.dwconv\.weight is \[4,1,3,7,7\], expected \[4,1,1,7,7\]/,
    );
    const y = convNext3dFeatures(x, pb.params, "a.", c);
    assert.deepEqual(y.shape, [1, 8, 1, 1, 1]);
    y.dispose();
  } finally {
    x.dispose();
    for (const p of Object.values(pb.params)) p.dispose();
  }
});
