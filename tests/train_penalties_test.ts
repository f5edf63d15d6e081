// The generator trainer's structure penalties on the attack weight maps (src/train/generator.ts:
// isotropyPenalty, latticePenalty, lowpassPenalty): forward values against float64 CPU
// references written here from their JSDoc definitions, on fresh seeded random maps of ranks 2
// to 5 (sizes that are and are not multiples of the period or block, non-default periods and
// blocks too), gradients through `.backward()` against central finite differences of those
// references (checkOp), and synthetic maps with known values: a period-4 grating of amplitude a
// (lattice a^2), a constant map c (lowpass and lattice c^2), i.i.d. noise (lattice about
// mean(A^2) / blocks, lowpass about mean(A^2) / 16), full-amplitude stripes (isotropy 16, the
// same for the transposed map; noise near 0). The penalties are absolute energies, not shares of
// mean(A^2) (their JSDoc says why).

import assert from "assert";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { isotropyPenalty, latticePenalty, lowpassPenalty } from "../src/train/generator.ts";
import { checkOp, initGpu, numel, randn, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

// ---- float64 references, from the JSDoc definitions ----

/** Maps `[..., H, W]` as `lead` planes of `h x w`. */
function planes(shape: readonly number[]): { lead: number; h: number; w: number } {
  const [h, w] = shape.slice(-2);
  return { lead: numel(shape.slice(0, -2)), h, w };
}

/** `(Ex - Ey)^2`, Ex / Ey the mean squared differences of horizontal / vertical neighbours. */
function isotropyRef(shape: readonly number[]) {
  const { lead, h, w } = planes(shape);
  return (a: Float64Array): Float64Array => {
    let sx = 0, sy = 0;
    for (let l = 0; l < lead; l++) {
      const o = l * h * w;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = a[o + y * w + x];
          if (x + 1 < w) sx += (a[o + y * w + x + 1] - v) ** 2;
          if (y + 1 < h) sy += (a[o + (y + 1) * w + x] - v) ** 2;
        }
      }
    }
    const ex = sx / (lead * h * (w - 1));
    const ey = sy / (lead * (h - 1) * w);
    return Float64Array.of((ex - ey) ** 2);
  };
}

/**
 * The maps cropped to multiples of `p` (top left), split into the p^2 polyphase components
 * (y mod p, x mod p, pooled over the leading axes too); the sum of each component's squared
 * mean, divided by `p^2`.
 */
function latticeRef(shape: readonly number[], p = 4) {
  const { lead, h, w } = planes(shape);
  const hp = Math.floor(h / p) * p, wp = Math.floor(w / p) * p;
  return (a: Float64Array): Float64Array => {
    const phase = new Float64Array(p * p);
    for (let l = 0; l < lead; l++) {
      for (let y = 0; y < hp; y++) {
        for (let x = 0; x < wp; x++) phase[(y % p) * p + (x % p)] += a[l * h * w + y * w + x];
      }
    }
    const perPhase = lead * (hp / p) * (wp / p);
    let num = 0;
    for (const s of phase) num += (s / perPhase) ** 2;
    return Float64Array.of(num / (p * p));
  };
}

/**
 * `mean(pool(A)^2)`: `pool` the mean of each whole non-overlapping k x k block (a remainder at
 * the bottom or right is in no block).
 */
function lowpassRef(shape: readonly number[], k = 4) {
  const { lead, h, w } = planes(shape);
  const bh = Math.floor(h / k), bw = Math.floor(w / k);
  return (a: Float64Array): Float64Array => {
    let num = 0;
    for (let l = 0; l < lead; l++) {
      const o = l * h * w;
      for (let by = 0; by < bh; by++) {
        for (let bx = 0; bx < bw; bx++) {
          let s = 0;
          for (let y = 0; y < k; y++) {
            for (let x = 0; x < k; x++) s += a[o + (by * k + y) * w + bx * k + x];
          }
          num += (s / (k * k)) ** 2;
        }
      }
    }
    return Float64Array.of(num / (lead * bh * bw));
  };
}

/** The penalty of maps given as values and shape, read back (one GPU call). */
async function gpuValue(
  f: (t: Tensor) => Tensor,
  values: ArrayLike<number>,
  shape: number[],
): Promise<number> {
  const out = tidy(() => f(tensor(Float32Array.from(values), shape)).keep());
  const v = (await out.read())[0];
  out.dispose();
  return v;
}

/** Maps `[..., H, W]` with each plane transposed (`[..., W, H]`). */
function transposed(
  a: ArrayLike<number>,
  shape: number[],
): { data: Float64Array; shape: number[] } {
  const { lead, h, w } = planes(shape);
  const out = new Float64Array(a.length);
  for (let l = 0; l < lead; l++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[l * h * w + x * h + y] = a[l * h * w + y * w + x];
    }
  }
  return { data: out, shape: [...shape.slice(0, -2), w, h] };
}

/** Ranks 2 to 5; sizes multiples of 4 and not (and odd, and below 8). */
const SHAPES = [[8, 12], [9, 13], [3, 6, 7], [2, 4, 16, 8], [2, 2, 3, 11, 10], [1, 2, 1, 5, 17]];

// Gradient tolerances: absolute ones scaled to the gradient's size (about value / elements);
// the checker's default 1e-4 would pass a zero gradient on maps of a few hundred values.
const gradTol = (shape: number[]) => ({ gradRtol: 2e-3, gradAtol: 2e-3 / numel(shape) });

Deno.test("isotropyPenalty: forward and gradient against the float64 reference, ranks 2-5", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    await checkOp({
      name: "isotropyPenalty",
      inputs: [{ shape }],
      gpu: (a) => isotropyPenalty(a),
      ref: isotropyRef(shape),
      seed: RUN_SEED * 31 + i,
      // A squared difference of two float32 means of about 2: absolute error about 1e-7.
      rtol: 1e-4,
      atol: 1e-6,
      ...gradTol(shape),
    });
  }
});

Deno.test("latticePenalty: forward and gradient against the float64 reference, periods 4, 2, 3", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    for (const period of [4, 2, 3]) {
      if (shape.at(-1)! < period || shape.at(-2)! < period) continue;
      await checkOp({
        name: `latticePenalty period ${period}`,
        inputs: [{ shape }],
        gpu: (a) => latticePenalty(a, period),
        ref: latticeRef(shape, period),
        seed: RUN_SEED * 37 + i * 5 + period,
        rtol: 1e-4,
        atol: 1e-6,
        ...gradTol(shape),
      });
    }
  }
});

Deno.test("lowpassPenalty: forward and gradient against the float64 reference, blocks 4, 2, 3", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    for (const k of [4, 2, 3]) {
      if (shape.at(-1)! < k || shape.at(-2)! < k) continue;
      await checkOp({
        name: `lowpassPenalty block ${k}`,
        inputs: [{ shape }],
        gpu: (a) => lowpassPenalty(a, k),
        ref: lowpassRef(shape, k),
        seed: RUN_SEED * 41 + i * 5 + k,
        rtol: 1e-4,
        atol: 1e-6,
        ...gradTol(shape),
      });
    }
  }
});

Deno.test("latticePenalty: a period-4 grating of amplitude a is all on the lattice (a^2), in any phase and crop", async () => {
  const r = randn(64, RUN_SEED + 3);
  for (const [k, shape] of [[4, 8], [2, 12, 16], [3, 2, 13, 9], [1, 1, 2, 7, 10]].entries()) {
    const { lead, h, w } = planes(shape);
    const phase = Math.abs(Math.floor(r[k] * 10)) % 4;
    const amp = 0.1 + Math.abs(r[k + 8]);
    for (const axis of ["columns", "rows"] as const) {
      const v = new Float64Array(lead * h * w);
      for (let l = 0; l < lead; l++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const c = (axis === "columns" ? x : y) + phase;
            v[l * h * w + y * w + x] = c % 4 < 2 ? amp : -amp; // +a, +a, -a, -a, ...
          }
        }
      }
      const got = await gpuValue((t) => latticePenalty(t), v, shape);
      const want = Math.fround(amp) ** 2;
      assert.ok(
        Math.abs(got - want) <= 1e-5 * want,
        `${axis} grating [${shape}] phase ${phase}: ${got}, expected ${want}`,
      );
      // Zero mean in every aligned 4x4 block (phase 0, whole blocks): no low-pass energy.
      if (phase === 0 && h % 4 === 0 && w % 4 === 0) {
        const lp = await gpuValue((t) => lowpassPenalty(t), v, shape);
        assert.ok(Math.abs(lp) <= 1e-6, `${axis} grating [${shape}]: lowpass ${lp}, expected 0`);
      }
    }
  }
});

Deno.test("latticePenalty pools the phases over every map: a grating and its negation cancel", async () => {
  // What a caller must know: the phase means are taken over the leading axes too, so maps that
  // carry opposite signs (a signed generator's +A and -A clips) cancel a grid they share.
  const [h, w] = [8, 12];
  const r = randn(h * w, RUN_SEED + 5);
  const g = Array.from({ length: h * w }, (_, i) => ((i % w) % 4 < 2 ? 1 : -1) + 0.3 + 0.01 * r[i]);
  const same = await gpuValue((t) => latticePenalty(t), [...g, ...g], [2, 1, h, w]);
  const mixed = await gpuValue((t) => latticePenalty(t), [...g, ...g.map((v) => -v)], [2, 1, h, w]);
  const ref = latticeRef([2, 1, h, w])(Float64Array.from([...g, ...g.map((v) => -v)]))[0];
  assert.ok(same > 0.99, withSeed(`a grating twice: ${same}`));
  assert.ok(mixed < 1e-3 && Math.abs(mixed - ref) <= 1e-6, withSeed(`+G, -G: ${mixed} (${ref})`));
  // The other two penalties do not depend on the maps' signs.
  for (const [name, f] of [["isotropy", isotropyPenalty], ["lowpass", lowpassPenalty]] as const) {
    const a = await gpuValue((t) => f(t), [...g, ...g], [2, 1, h, w]);
    const b = await gpuValue((t) => f(t), [...g, ...g.map((v) => -v)], [2, 1, h, w]);
    assert.ok(a > 1e-3 && Math.abs(a - b) <= 1e-6 * a, withSeed(`${name}: ${a} vs ${b}`));
  }
});

Deno.test("lowpassPenalty and latticePenalty: a constant map c is all DC (c^2)", async () => {
  for (const shape of [[4, 4], [9, 13], [2, 3, 8, 11]]) {
    for (const c of [0.5, -0.03, 1]) {
      const v = new Array(numel(shape)).fill(c);
      const want = Math.fround(c) ** 2;
      const lp = await gpuValue((t) => lowpassPenalty(t), v, shape);
      assert.ok(Math.abs(lp - want) <= 1e-5 * want, `lowpass of constant ${c} [${shape}]: ${lp}`);
      const lt = await gpuValue((t) => latticePenalty(t), v, shape);
      assert.ok(Math.abs(lt - want) <= 1e-5 * want, `lattice of constant ${c} [${shape}]: ${lt}`);
    }
  }
});

// For i.i.d. zero-mean noise each of the p^2 = 16 phase means has variance s^2 / N (N the number
// of 4x4 blocks, the leading axes included), so lattice * N / mean(A^2) (mean(A^2) of the map,
// about s^2) is about chi^2(16) / 16: mean 1,
// relative standard deviation sqrt(2/16) = 0.35 for one map. Averaged over 40 maps of
// [4, 32, 32] (N = 256) that is 0.056, and the check allows 0.25 (4.5 standard deviations).
// Likewise each of the M block means has variance s^2 / 16, so lowpass * 16 / mean(A^2) is about
// chi^2(M) / M:
// relative standard deviation sqrt(2/M) = 0.044 for one [4, 64, 64] map (M = 1024); the check
// allows 0.2 (4.5 standard deviations) on each of 3 maps.
/** mean(A^2) of values. */
const meanSquare = (v: ArrayLike<number>) =>
  Array.from(v).reduce((s, x) => s + x * x, 0) / v.length;

Deno.test("lattice and lowpass penalties of i.i.d. noise: about mean(A^2) / blocks and mean(A^2) / 16", async () => {
  const shape = [4, 32, 32];
  const blocks = 4 * 8 * 8;
  let sum = 0;
  const n = 40;
  for (let k = 0; k < n; k++) {
    const v = randn(numel(shape), RUN_SEED * 101 + k, 0.3);
    sum += (await gpuValue((t) => latticePenalty(t), v, shape)) / meanSquare(v);
  }
  const lattice = (sum / n) * blocks;
  assert.ok(
    Math.abs(lattice - 1) <= 0.25,
    withSeed(`noise: mean lattice x ${blocks} blocks is ${lattice}, expected about 1`),
  );
  const big = [4, 64, 64];
  for (let k = 0; k < 3; k++) {
    const v = randn(numel(big), RUN_SEED * 103 + k, 0.3);
    const lp = ((await gpuValue((t) => lowpassPenalty(t), v, big)) * 16) / meanSquare(v);
    assert.ok(Math.abs(lp - 1) <= 0.2, withSeed(`noise: lowpass x 16 is ${lp}, expected about 1`));
  }
});

Deno.test("isotropyPenalty: stripes give a large value, noise a small one; transposing changes nothing", async () => {
  // Vertical stripes +a, -a: every horizontal difference is 2a (Ex = 4a^2), no vertical one
  // (Ey = 0), so the value is 16 a^4 (16 at full amplitude).
  const [h, w] = [6, 10];
  for (const amp of [0.5, 0.8]) {
    const st = Array.from({ length: 2 * h * w }, (_, i) => (i % w) % 2 ? -amp : amp);
    const got = await gpuValue(isotropyPenalty, st, [2, h, w]);
    assert.ok(Math.abs(got - 16 * amp ** 4) <= 1e-5, `stripes of ${amp}: ${got}`);
  }
  const stripes = Array.from({ length: 2 * h * w }, (_, i) => (i % w) % 2 ? -1 : 1);
  const vert = await gpuValue(isotropyPenalty, stripes, [2, h, w]);
  assert.ok(Math.abs(vert - 16) <= 1e-5, `vertical stripes: ${vert}, expected 16`);
  const t = transposed(stripes, [2, h, w]);
  const horiz = await gpuValue(isotropyPenalty, t.data, t.shape);
  assert.ok(
    Math.abs(horiz - vert) <= 1e-4 * vert,
    `horizontal stripes ${horiz} vs vertical ${vert}`,
  );
  // Unit normal noise: Ex and Ey both about 2; on 4x64x64 values Ex - Ey has a standard
  // deviation of 0.023 (2000 draws with numpy), so the value is below 0.01 (|Ex - Ey| < 0.1,
  // 4.3 standard deviations), 1600 times below the stripes'.
  for (let k = 0; k < 3; k++) {
    const shape = [4, 64, 64];
    const v = randn(numel(shape), RUN_SEED * 107 + k);
    const noise = await gpuValue(isotropyPenalty, v, shape);
    assert.ok(noise < 0.01, withSeed(`noise: isotropy ${noise}`));
    // Symmetry on random maps of other shapes: the transposed map gives the same value.
    const s2 = [[7, 12], [3, 5, 9], [2, 1, 6, 13]][k];
    const r = randn(numel(s2), RUN_SEED * 109 + k);
    const a = await gpuValue(isotropyPenalty, r, s2);
    const tr = transposed(r, s2);
    const b = await gpuValue(isotropyPenalty, tr.data, tr.shape);
    assert.ok(Math.abs(a - b) <= 1e-4 * a + 1e-6, withSeed(`[${s2}]: ${a}, transposed ${b}`));
    const ref = isotropyRef(s2)(r)[0];
    assert.ok(
      Math.abs(a - ref) <= 1e-3 * ref + 1e-5,
      withSeed(`[${s2}]: ${a} vs reference ${ref}`),
    );
  }
});

Deno.test("lattice and lowpass penalties: maps smaller than the period or block are refused", () => {
  const small = tensor(new Float32Array(3 * 5), [3, 5]);
  assert.throws(
    () => latticePenalty(small),
    (e) => e instanceof RangeError && /\[3,5\].*period 4/.test(e.message),
  );
  assert.throws(
    () => lowpassPenalty(small),
    (e) => e instanceof RangeError && /\[3,5\].*block 4/.test(e.message),
  );
  small.dispose();
});
