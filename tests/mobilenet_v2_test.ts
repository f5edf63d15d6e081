// Keras' MobileNetV2 feature extractor (src/models/victims/mobilenet_v2.ts) against a PyTorch
// reference (tests/fixtures/make_mobilenet_v2_fixture.py, float64) through the real path: a
// TensorFlow.js model.json with uint8-quantised weights by their Keras names, read by
// readTfjsWeights, transposed by mobileNetV2FromKeras.

import assert from "assert";
import { join } from "path";
import { initGpu } from "../src/gpu/device.ts";
import { decodeTfjsGroup, readTfjsWeights, TfjsWeightsError } from "../src/io/tfjs.ts";
import {
  buildMobileNetV2Params,
  MobileNetV2,
  mobileNetV2FromKeras,
} from "../src/models/victims/mobilenet_v2.ts";
import { ParamBuilder } from "../src/models/victims/victim.ts";
import { mul, sum } from "../src/nn/mod.ts";
import { tensor } from "../src/tensor/tensor.ts";

const DIR = new URL("./fixtures/mobilenet_v2/", import.meta.url).pathname;
const want = JSON.parse(await Deno.readTextFile(join(DIR, "expected.json")));

await initGpu();

function maxRel(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    e = Math.max(e, Math.abs(got[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return e / m;
}

Deno.test("MobileNetV2 (Keras, from a TF.js model.json) matches PyTorch: features and input gradient", async () => {
  const config = { alpha: want.alpha };
  const ours = mobileNetV2FromKeras(await readTfjsWeights(join(DIR, "model.json")), config);
  const pb = new ParamBuilder(0, { shapesOnly: true });
  buildMobileNetV2Params(pb, "", config);
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(pb.shapes).sort());
  const params = Object.fromEntries(
    Object.entries(ours).map(([k, t]) => [k, tensor(t.data, t.shape)]),
  );
  const net = new MobileNetV2(config, params, "");
  try {
    const x = tensor(new Float32Array(want.input), want.input_shape, { requiresGrad: true });
    const y = net.features(x);
    assert.deepEqual(y.shape, want.features_shape);
    const e = maxRel(await y.read(), want.features);
    assert.ok(e <= 1e-4, `features: max error ${e} of the largest`);
    const n = y.size;
    const ramp = tensor(
      Float32Array.from({ length: n }, (_, i) => -1 + (2 * i) / (n - 1)),
      y.shape,
    );
    sum(mul(y, ramp)).backward();
    const g = maxRel(await x.grad!.read(), want.grad);
    assert.ok(g <= 1e-3, `input gradient: max error ${g} of the largest`);
  } finally {
    net.dispose();
    for (const p of Object.values(params)) p.dispose();
  }
});

Deno.test("TF.js weights: dequantisation, float16, and refusals naming the file and weight", () => {
  const group = (weights: unknown[]) => ({ paths: ["s.bin"], weights }) as never;
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer); // 1, -2, ~1/3
  const h = decodeTfjsGroup(
    group([{ name: "h", shape: [3], dtype: "float32", quantization: { dtype: "float16" } }]),
    f16,
    "m.json",
  );
  assert.deepEqual([...h.h.data].map((v) => Number(v.toFixed(4))), [1, -2, 0.3333]);
  const u16 = new Uint8Array(new Uint16Array([0, 65535]).buffer);
  const q = decodeTfjsGroup(
    group([{
      name: "q",
      shape: [2],
      dtype: "float32",
      quantization: { dtype: "uint16", min: 2, scale: 1 / 65535 },
    }]),
    u16,
    "m.json",
  );
  assert.deepEqual([...q.q.data], [2, 3]);
  assert.throws(
    () =>
      decodeTfjsGroup(
        group([{ name: "big", shape: [4], dtype: "float32" }]),
        new Uint8Array(8),
        "m.json",
      ),
    (e: Error) =>
      e instanceof TfjsWeightsError && /m\.json: weight big \[4\] needs 16 bytes/.test(e.message),
  );
  assert.throws(
    () =>
      decodeTfjsGroup(
        group([{ name: "s", shape: [1], dtype: "string" }]),
        new Uint8Array(4),
        "m.json",
      ),
    /weight s: unsupported dtype string/,
  );
  assert.throws(
    () =>
      decodeTfjsGroup(
        group([{ name: "a", shape: [1], dtype: "float32" }]),
        new Uint8Array(6),
        "m.json",
      ),
    /2 bytes after the last weight/,
  );
});
