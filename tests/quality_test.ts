// Imperceptibility metrics: SSIM and PSNR against numpy/scipy float64 references in the
// scikit-image SSIM recipe (fixtures from tests/fixtures/make_quality_fixture.py), a brute-force
// 2-D SSIM on fresh random inputs, hand-worked cases, the per-frame layout of videoQuality,
// perturbationStats on a constructed case, and the error messages.

import assert from "assert";
import { assertClose, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { perturbationStats, psnr, ssim, videoQuality } from "../src/metrics/quality.ts";

function dec(b64: string): Float32Array {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

interface ImageCase {
  name: string;
  height: number;
  width: number;
  a: string;
  b: string;
  ssim: number;
  psnr: number;
  mse: number;
}
interface StatsRef {
  beyondJnd: number;
  meanAbsLevels: number;
  maxAbsLevels: number;
}
const fixture: {
  images: ImageCase[];
  video: {
    shape: number[];
    clean: string;
    adv: string;
    jnd: string;
    psnr: (number | "Infinity")[];
    ssim: number[];
    meanPsnr: number;
    meanSsim: number;
    stats: Record<string, StatsRef>;
  };
} = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/quality_fixture.json", import.meta.url)),
);

for (const c of fixture.images) {
  Deno.test(`ssim and psnr match the numpy/scipy reference: ${c.name}`, () => {
    const a = dec(c.a), b = dec(c.b);
    assert.equal(a.length, c.height * c.width);
    const s = ssim(a, b, { height: c.height, width: c.width });
    assertClose([s], [c.ssim], { rtol: 0, atol: 1e-12, what: "ssim" });
    assertClose([psnr(a, b)], [c.psnr], { rtol: 1e-12, atol: 0, what: "psnr" });
    // Symmetric in its arguments.
    assertClose([ssim(b, a, { height: c.height, width: c.width })], [s], { rtol: 0, atol: 1e-14 });
  });
}

Deno.test("videoQuality and perturbationStats match the numpy reference", () => {
  const v = fixture.video;
  const clean = dec(v.clean), adv = dec(v.adv), jnd = dec(v.jnd);
  const q = videoQuality(clean, adv, v.shape);
  assert.deepEqual(q.psnr.map(Number.isFinite), v.psnr.map((p) => p !== "Infinity"));
  assertClose(q.psnr.filter(Number.isFinite), v.psnr.filter((p) => p !== "Infinity") as number[], {
    rtol: 1e-12,
    atol: 0,
    what: "per-frame psnr",
  });
  assertClose(q.ssim, v.ssim, { rtol: 0, atol: 1e-12, what: "per-frame ssim" });
  assertClose([q.meanPsnr, q.meanSsim], [v.meanPsnr, v.meanSsim], { rtol: 1e-12, atol: 1e-12 });
  for (const [eps, ref] of Object.entries(v.stats)) {
    const s = perturbationStats(clean, adv, jnd, v.shape, { eps: Number(eps) });
    assertClose(
      [s.beyondJnd, s.meanAbsLevels, s.maxAbsLevels],
      [ref.beyondJnd, ref.meanAbsLevels, ref.maxAbsLevels],
      { rtol: 1e-12, atol: 1e-12, what: `perturbationStats eps ${eps}` },
    );
  }
});

/** Direct float64 SSIM: full 121-tap 2-D window at every valid position. */
function bruteSsim(a: ArrayLike<number>, b: ArrayLike<number>, h: number, w: number): number {
  const g: number[] = [];
  for (let k = -5; k <= 5; k++) g.push(Math.exp(-(k * k) / (2 * 1.5 * 1.5)));
  const gs = g.reduce((s, v) => s + v, 0);
  let total = 0;
  for (let i = 0; i + 11 <= h; i++) {
    for (let j = 0; j + 11 <= w; j++) {
      let ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
      for (let p = 0; p < 11; p++) {
        for (let q = 0; q < 11; q++) {
          const wt = (g[p] * g[q]) / (gs * gs);
          const x = a[(i + p) * w + j + q], y = b[(i + p) * w + j + q];
          ux += wt * x;
          uy += wt * y;
          uxx += wt * x * x;
          uyy += wt * y * y;
          uxy += wt * x * y;
        }
      }
      const c1 = 1e-4, c2 = 9e-4;
      total += ((2 * ux * uy + c1) * (2 * (uxy - ux * uy) + c2)) /
        ((ux * ux + uy * uy + c1) * (uxx - ux * ux + uyy - uy * uy + c2));
    }
  }
  return total / ((h - 10) * (w - 10));
}

Deno.test("ssim matches a brute-force 2-D window on fresh random inputs", () => {
  const r = rng(RUN_SEED + 7).uniform;
  for (const [h, w] of [[11, 11], [16, 23], [40, 33], [12, 11], [11, 17]]) {
    const a = Float32Array.from({ length: h * w }, () => r());
    // Correlated with a so SSIM is neither ~0 nor ~1.
    const b = a.map((v) => Math.min(1, Math.max(0, 0.8 * v + 0.1 + 0.2 * (r() - 0.5))));
    const s = ssim(a, b, { height: h, width: w });
    assertClose([s], [bruteSsim(a, b, h, w)], { rtol: 0, atol: 1e-12, what: `ssim ${h}x${w}` });
  }
});

Deno.test("psnr by hand, with peak 1 and 255", () => {
  // MSE = 0.1^2 / 4 = 0.0025 -> 10 log10(400).
  const a = new Float64Array([0, 0.5, 1, 1]), b = new Float64Array([0.1, 0.5, 1, 1]);
  assertClose([psnr(a, b)], [10 * Math.log10(400)], { rtol: 1e-13, atol: 0 });
  // Levels: MSE = (25 + 25) / 2 = 25 -> 10 log10(255^2 / 25) = 34.1514 dB.
  assertClose([psnr([0, 255], [5, 250], { peak: 255 })], [34.15140352195873], {
    rtol: 1e-13,
    atol: 0,
  });
});

Deno.test("identical inputs: ssim 1, psnr Infinity, also per video", () => {
  const r = rng(RUN_SEED + 11).uniform;
  const a = Float32Array.from({ length: 14 * 19 }, () => r());
  assert.equal(psnr(a, a.slice()), Infinity, withSeed("psnr of a copy"));
  assertClose([ssim(a, a.slice(), { height: 14, width: 19 })], [1], { rtol: 0, atol: 1e-14 });
  const v = Float32Array.from({ length: 2 * 3 * 12 * 13 }, () => r());
  const q = videoQuality(v, v.slice(), [2, 3, 12, 13]);
  assert.deepEqual(q.psnr, [Infinity, Infinity], withSeed("per-frame psnr of a copy"));
  assert.equal(q.meanPsnr, Infinity, withSeed("video psnr of a copy"));
  assertClose(q.ssim, [1, 1], { rtol: 0, atol: 1e-14 });
  assertClose([q.meanSsim], [1], { rtol: 0, atol: 1e-14 });
});

Deno.test("constant offset: psnr = -20 log10(c); ssim of flat planes in closed form", () => {
  const r = rng(RUN_SEED + 13).uniform;
  // Multiples of 1/256 below 0.8: a + c is exact in float32, so b - a is exactly c.
  const a = Float32Array.from({ length: 15 * 21 }, () => Math.floor(200 * r()) / 256);
  const c = 0.0625;
  const b = a.map((v) => v + c);
  assertClose([psnr(a, b)], [-20 * Math.log10(c)], { rtol: 1e-12, atol: 0 });
  // Variances and covariance of a and a + c are equal, so only the luminance term remains; with a
  // flat plane it is the same at every position.
  const flatA = new Float32Array(13 * 12).fill(0.25);
  const flatB = new Float32Array(13 * 12).fill(0.75);
  const ux = Math.fround(0.25), uy = Math.fround(0.75);
  const want = (2 * ux * uy + 1e-4) / (ux * ux + uy * uy + 1e-4);
  assertClose([ssim(flatA, flatB, { height: 13, width: 12 })], [want], { rtol: 1e-12, atol: 0 });
  // The offset image: a brighter copy has SSIM below 1 but contrast/structure terms are 1.
  const s = ssim(a, b, { height: 15, width: 21 });
  assert.ok(s < 1 && s > 0.9, withSeed(`ssim of a shifted copy: ${s}`));
});

Deno.test("videoQuality: one frame differs -> only its numbers change", () => {
  const [t, h, w] = [4, 12, 14];
  const hw = h * w;
  const r = rng(RUN_SEED + 17).uniform;
  const clean = Float32Array.from({ length: t * 3 * hw }, () => r());
  const adv = clean.slice();
  const f = 2;
  for (let i = f * 3 * hw; i < (f + 1) * 3 * hw; i++) adv[i] = Math.min(1, clean[i] + 0.02 * r());
  const q = videoQuality(clean, adv, [t, 3, h, w]);
  const frame = (v: Float32Array, k: number) => v.subarray(k * 3 * hw, (k + 1) * 3 * hw);
  const luma = (v: Float32Array) =>
    Float64Array.from(
      { length: hw },
      (_, p) => 0.299 * v[p] + 0.587 * v[p + hw] + 0.114 * v[p + 2 * hw],
    );
  for (let k = 0; k < t; k++) {
    if (k === f) continue;
    assert.equal(q.psnr[k], Infinity, withSeed(`frame ${k} psnr`));
    assertClose([q.ssim[k]], [1], { rtol: 0, atol: 1e-14, what: `frame ${k} ssim` });
  }
  const p2 = psnr(frame(clean, f), frame(adv, f));
  assert.ok(Number.isFinite(p2) && p2 > 30, withSeed(`frame ${f} psnr ${p2}`));
  assert.equal(q.psnr[f], p2, withSeed(`frame ${f} psnr of videoQuality`));
  const s2 = ssim(luma(frame(clean, f)), luma(frame(adv, f)), { height: h, width: w });
  assert.ok(s2 < 1, withSeed(`frame ${f} ssim ${s2}`));
  assertClose([q.ssim[f]], [s2], { rtol: 0, atol: 1e-14, what: "frame 2 ssim" });
  assertClose([q.ssim[f]], [bruteSsim(luma(frame(clean, f)), luma(frame(adv, f)), h, w)], {
    rtol: 0,
    atol: 1e-12,
  });
  // Video PSNR from the mean MSE: frame 2's MSE over four frames -> p2 + 10 log10(4).
  assertClose([q.meanPsnr], [p2 + 10 * Math.log10(4)], { rtol: 1e-12, atol: 0 });
  assertClose([q.meanSsim], [(3 + s2) / 4], { rtol: 0, atol: 1e-14 });
});

Deno.test("perturbationStats on a constructed case", () => {
  // T = 2, H = 1, W = 3; J = 2 levels everywhere except frame 1, pixel 2 (J = 0).
  const shape = [2, 3, 1, 3];
  const clean = new Float32Array(18).fill(0.5);
  const lv = [
    [0, 1, 2],
    [-2, 3, 0],
    [0, 0, -1], // frame 0: channels R G B; one value (3) beyond J
    [1, 0, 1],
    [0, -5, 0],
    [0, 0, 0.5], // frame 1: -5 beyond J = 2; 1 and 0.5 at pixel 2 (J = 0)
  ].flat();
  const adv = Float64Array.from(lv, (d, i) => clean[i] + d / 255);
  const jnd = Float32Array.from([2, 2, 2, 2, 2, 0], (v) => v / 255);
  const s = perturbationStats(clean, adv, jnd, shape);
  assertClose([s.beyondJnd], [4 / 18], { rtol: 1e-15, atol: 0, what: "beyondJnd eps 1" });
  const meanAbs = lv.reduce((t, d) => t + Math.abs(d), 0) / 18;
  assertClose([s.meanAbsLevels, s.maxAbsLevels], [meanAbs, 5], { rtol: 1e-12, atol: 0 });
  // eps 0.5 -> bound 1 level: values with |d| > 1 where J = 2, plus all nonzero at J = 0.
  const half = perturbationStats(clean, adv, jnd, shape, { eps: 0.5 });
  assertClose([half.beyondJnd], [6 / 18], { rtol: 1e-15, atol: 0, what: "beyondJnd eps 0.5" });
  // A perturbation clipped exactly to the box in float32 counts as inside (the 1e-7 slack), though
  // float32 rounding puts some |d| strictly above J; 2e-7 beyond the box counts.
  const n = 2 * 3 * 5 * 7;
  const c32 = Float32Array.from({ length: n }, (_, i) => 0.05 + (0.9 * ((i * 37) % n)) / n);
  const j32 = Float32Array.from({ length: 2 * 35 }, (_, i) => (1 + (i % 6)) / 255);
  const jOf = (i: number) => j32[Math.floor(i / 105) * 35 + (i % 35)];
  const a32 = Float32Array.from(c32, (v, i) => v + jOf(i) * (i % 2 ? 1 : -1));
  assert.ok(
    Array.from(a32).some((v, i) => Math.abs(v - c32[i]) > jOf(i)),
    "the case must hold float32-rounded |d| above J, or the slack is untested",
  );
  assert.equal(perturbationStats(c32, a32, j32, [2, 3, 5, 7]).beyondJnd, 0);
  const out = Float64Array.from(
    c32,
    (v, i) => v + (jOf(i) + (i < 10 ? 2e-7 : 0)) * (i % 2 ? 1 : -1),
  );
  assertClose([perturbationStats(c32, out, j32, [2, 3, 5, 7]).beyondJnd], [10 / n], {
    rtol: 1e-15,
    atol: 0,
  });
});

Deno.test("errors name the argument and both sizes", () => {
  const a = new Float32Array(12 * 12);
  assert.throws(() => psnr(a, new Float32Array(5)), /psnr: b has 5 elements, a's length needs 144/);
  assert.throws(() => psnr([], []), /psnr: a is empty/);
  assert.throws(() => psnr([1], [1], { peak: 0 }), /peak must be a positive/);
  assert.throws(() => ssim(a, a, { height: 12, width: 11 }), /ssim: a has 144 elements.*132/);
  assert.throws(
    () => ssim(new Float32Array(10 * 20), new Float32Array(10 * 20), { height: 10, width: 20 }),
    (e: Error) =>
      e instanceof RangeError && /10x20 plane is smaller than the 11x11/.test(e.message),
  );
  assert.throws(() => ssim(a, a, { height: 12.5, width: 12 }), /height must be a positive integer/);
  const v = new Float32Array(2 * 3 * 12 * 12);
  assert.throws(
    () => videoQuality(v, v.subarray(1), [2, 3, 12, 12]),
    /videoQuality: adv has 863 elements, shape \[2,3,12,12\] needs 864/,
  );
  assert.throws(
    () => videoQuality(v, v, [2, 1, 12, 36]),
    /shape must be \[T,3,H,W\], got \[2,1,12,36\]/,
  );
  assert.throws(
    () =>
      videoQuality(new Float32Array(2 * 3 * 10 * 12), new Float32Array(2 * 3 * 10 * 12), [
        2,
        3,
        10,
        12,
      ]),
    /10x12 frames are smaller than SSIM's 11x11/,
  );
  const j = new Float32Array(2 * 12 * 12);
  assert.throws(
    () => perturbationStats(v, v, j.subarray(2), [2, 3, 12, 12]),
    /perturbationStats: jnd has 286 elements, \[T,1,H,W\] = \[2,1,12,12\] needs 288/,
  );
  assert.throws(
    () => perturbationStats(v.subarray(3), v, j, [2, 3, 12, 12]),
    /perturbationStats: clean has 861 elements/,
  );
  assert.throws(() => perturbationStats(v, v, j, [2, 3, 12, 12], { eps: -1 }), /eps must be/);
});
