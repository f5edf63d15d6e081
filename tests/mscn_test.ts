// Local contrast normalisation (localNormalize, the fused MSCN op): values and gradients equal to
// the formula composed from avgPool2d and elementwise ops. Its float64 reference and finite
// differences are in tests/victims_test.ts ("mscn matches a float64 reference"), through mscn().

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
const { localNormalize } = nn;
import { assertClose, initGpu, randn, RUN_SEED } from "./_helpers.ts";

Deno.test("localNormalize equals the formula composed from avgPool2d and elementwise ops", async () => {
  await initGpu();
  const shape = [2, 3, 16, 12];
  const data = Float32Array.from(randn(2 * 3 * 16 * 12, RUN_SEED + 5));
  const seed = tensor(Float32Array.from(randn(data.length, RUN_SEED + 6)), shape);
  const run = (f: (x: Tensor) => Tensor) => {
    const x = tensor(data, shape, { requiresGrad: true });
    const y = tidy(() => {
      const y = f(x);
      y.backward(seed);
      return y;
    });
    return { x, y };
  };
  const fused = run((x) => localNormalize(x, { kernel: 5, c: 1 / 64 }));
  const composed = run((x) => {
    const pool = (t: Tensor) =>
      nn.avgPool2d(t, { kernel: 5, stride: 1, padding: 2, countIncludePad: false });
    const mu = pool(x);
    const variance = nn.relu(nn.sub(pool(nn.square(x)), nn.square(mu)));
    return nn.div(nn.sub(x, mu), nn.add(nn.sqrt(nn.add(variance, 1e-6)), 1 / 64));
  });
  assertClose(await fused.y.read(), await composed.y.read(), { rtol: 1e-4, atol: 1e-5, what: "y" });
  assertClose(await fused.x.grad!.read(), await composed.x.grad!.read(), {
    rtol: 1e-4,
    atol: 1e-4,
    what: "dx",
  });
});
