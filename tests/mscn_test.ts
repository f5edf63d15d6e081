// Local contrast normalisation (localNormalize, the fused MSCN op): forward against a float64
// reference of the formula, the gradient against finite differences, on odd shapes and windows
// larger than the image; equality with the formula composed from avgPool2d and elementwise ops.

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
const { localNormalize } = nn;
import { assertClose, checkOp, initGpu, randn, RUN_SEED } from "./_helpers.ts";

/** Float64 MSCN of x [N,C,H,W] with a k x k window (border windows count pixels inside). */
function mscnRef(shape: number[], k: number, c: number) {
  const [n, ch, h, w] = shape;
  const r = (k - 1) / 2;
  return (x: Float64Array) => {
    const y = new Float64Array(x.length);
    for (let p = 0; p < n * ch; p++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let s = 0, s2 = 0, cnt = 0;
          for (let a = Math.max(0, i - r); a <= Math.min(h - 1, i + r); a++) {
            for (let b = Math.max(0, j - r); b <= Math.min(w - 1, j + r); b++) {
              const v = x[(p * h + a) * w + b];
              s += v;
              s2 += v * v;
              cnt++;
            }
          }
          const mu = s / cnt;
          const v = Math.max(s2 / cnt - mu * mu, 0);
          const o = (p * h + i) * w + j;
          y[o] = (x[o] - mu) / (Math.sqrt(v + 1e-6) + c);
        }
      }
    }
    return y;
  };
}

const CASES: [number[], number][] = [
  [[2, 3, 7, 5], 5],
  [[1, 2, 3, 9], 5], // the window is taller than the image
  [[1, 1, 6, 6], 3],
  [[2, 1, 4, 5], 1], // one pixel: zero variance, the relu's flat side
];

Deno.test("localNormalize: forward against float64, gradient against finite differences", async () => {
  for (const [shape, k] of CASES) {
    await checkOp({
      name: `localNormalize k${k}`,
      inputs: [{ shape }],
      gpu: (x) => localNormalize(x, { kernel: k, c: 1 / 64 }),
      ref: mscnRef(shape, k, 1 / 64),
      maxFd: 24,
    });
  }
});

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
