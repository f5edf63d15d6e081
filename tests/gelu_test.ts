// gelu (exact erf form): forward against a float64 reference (erf by its Taylor series and
// erfc by its continued fraction, not the kernel's fit) and the gradient against finite
// differences on fresh random inputs of rank 1 to 4, on a grid over [-10, 10] (the negative tail
// in relative terms); PyTorch's F.gelu (float64) on fixed inputs: outputs and gradients.

import assert from "assert";
import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu, withSeed } from "./_helpers.ts";

/** erfc(z) in float64 from erf's Taylor series (relative error 1e-11 at z = 2.5, growing beyond). */
function erfcSeries(z: number): number {
  let term = z;
  let s = z;
  for (let n = 1; n < 200; n++) {
    term *= -z * z / n;
    const add = term / (2 * n + 1);
    s += add;
    if (Math.abs(add) < 1e-17 * Math.abs(s)) break;
  }
  return 1 - (2 / Math.sqrt(Math.PI)) * s;
}

/** erfc(z) in float64 from its continued fraction (to double precision from z = 2 up). */
function erfcFraction(z: number): number {
  // erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...)))).
  let f = z;
  for (let k = 120; k >= 1; k--) f = z + (k / 2) / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** erfc(z) for z >= 0 in float64: the series below 2, else the continued fraction. */
const erfc = (z: number) => z < 2 ? erfcSeries(z) : erfcFraction(z);

/** The standard normal CDF, float64. */
const phiCdf = (x: number) => x < 0 ? 0.5 * erfc(-x / Math.SQRT2) : 1 - 0.5 * erfc(x / Math.SQRT2);
const geluRef = (x: Float64Array) => x.map((v) => v * phiCdf(v));

Deno.test("gelu: the float64 reference's erf", () => {
  // Known values: erf(0.5), erf(1), erfc(3), erfc(5).
  assert.ok(Math.abs(1 - erfc(0.5) - 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(1 - erfc(1) - 0.8427007929497149) < 1e-15);
  assert.ok(Math.abs(erfc(3) / 2.209049699858544e-5 - 1) < 1e-13);
  assert.ok(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1) < 1e-13);
  // The two forms agree where they meet.
  for (const z of [2, 2.5]) assert.ok(Math.abs(erfcSeries(z) / erfcFraction(z) - 1) < 1e-9);
});

Deno.test("gelu: forward and gradient", async () => {
  for (const shape of [[7], [3, 5], [2, 3, 7], [2, 3, 7, 5], [1000]]) {
    for (const range of [undefined, [-6, 6] as [number, number]]) {
      await checkOp({
        name: `gelu ${shape.join("x")} ${range ? "uniform +-6" : "normal"}`,
        inputs: [{ shape, range }],
        gpu: nn.gelu,
        ref: geluRef,
        rtol: 1e-5,
        atol: 1e-6,
      });
    }
  }
});

Deno.test("gelu: relative accuracy over [-10, 10], the negative tail included", async () => {
  await initGpu();
  const xs = Float32Array.from({ length: 2001 }, (_, i) => -10 + i / 100);
  const x = tensor(xs, [xs.length], { requiresGrad: true });
  const y = tidy(() => {
    const y = nn.gelu(x);
    y.backward(tensor(new Float32Array(xs.length).fill(1), [xs.length]));
    return y;
  });
  try {
    const x64 = Float64Array.from(xs);
    const want = geluRef(x64);
    // Down to x = -10 (gelu = -7.6e-23): float32 exp's own rounding bounds what is reachable.
    assertClose(await y.read(), want, { rtol: 1e-5, atol: 1e-30, what: withSeed("gelu grid") });
    const dwant = x64.map((v) => phiCdf(v) + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI));
    assertClose(await x.grad!.read(), dwant, { rtol: 1e-4, atol: 1e-7, what: "gelu' grid" });
  } finally {
    x.dispose();
    y.dispose();
  }
});

interface Packed {
  shape: number[];
  data: number[];
}

Deno.test("gelu: against PyTorch's F.gelu (float64)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/layer_norm_torch.json", import.meta.url)),
  ) as { cases: { op: string; x: Packed; out: Packed; w: Packed; grad_x: Packed }[] };
  const cases = fixture.cases.filter((k) => k.op === "gelu");
  assert.ok(cases.length >= 2);
  let worstY = 0;
  let worstG = 0;
  for (const k of cases) {
    const x = tensor(Float32Array.from(k.x.data), k.x.shape, { requiresGrad: true });
    const y = tidy(() => {
      const y = nn.gelu(x);
      y.backward(tensor(Float32Array.from(k.w.data), k.w.shape));
      return y;
    });
    try {
      const got = await y.read();
      const g = await x.grad!.read();
      const name = `gelu torch ${k.x.shape.join("x")}`;
      assertClose(got, k.out.data, { rtol: 1e-5, atol: 1e-12, what: `${name} forward` });
      assertClose(g, k.grad_x.data, { rtol: 1e-4, atol: 1e-9, what: `${name} gradient` });
      // Relative to max(|e|, 1e-6): below that, torch's own float64 1 + erf(x / sqrt(2))
      // cancels (about 10% off at x = -8, where this kernel's erfc form is the more accurate).
      for (let i = 0; i < got.length; i++) {
        const e = k.out.data[i];
        worstY = Math.max(worstY, Math.abs(got[i] - e) / Math.max(Math.abs(e), 1e-6));
        const ge = k.grad_x.data[i];
        worstG = Math.max(worstG, Math.abs(g[i] - ge) / Math.max(Math.abs(ge), 1e-6));
      }
    } finally {
      x.dispose();
      y.dispose();
    }
  }
  console.log(
    `gelu vs torch: worst relative error (floor 1e-6) forward ${worstY.toExponential(2)}, ` +
      `gradient ${worstG.toExponential(2)}`,
  );
});
