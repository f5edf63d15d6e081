// The generator trainer's structure penalties on the attack weight maps (src/train/generator.ts:
// isotropyPenalty, latticePenalty, lowpassPenalty): forward values against float64 CPU
// references written here from their JSDoc definitions, on fresh seeded random maps of ranks 2
// to 5 (sizes that are and are not multiples of the period or blocks, non-default periods and
// block-size lists too, sizes that do not fit dropped), gradients through `.backward()` against
// central finite differences of those references (checkOp), and synthetic maps with known
// values: a period-4 grating of amplitude a (lattice a^2, per map: +G and -G in two maps give
// a^2, not 0), a constant map c (lattice c^2, lowpass c^2 times the mean of k^2/16 over the
// usable sizes k), 8x8 blocks of alternating sign (lowpass counts blocks of 4 and 8, not 16),
// i.i.d. noise (lattice about mean(A^2) / blocks per map, lowpass about mean(A^2) / 16 at every
// size), full-amplitude stripes (isotropy 16, the same for the transposed map; noise near 0).
// The penalties are absolute energies, not shares of mean(A^2) (their JSDoc says why).

import assert from "assert";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import {
  chromaMaps,
  isotropyPenalty,
  latticePenalty,
  lowpassPenalty,
} from "../src/train/generator.ts";
import { concat } from "../src/nn/mod.ts";
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
 * Each map (plane of the leading axes) cropped to multiples of `p` (top left) and split into its
 * p^2 polyphase components (y mod p, x mod p); the sum of the components' squared means,
 * divided by `p^2`; the mean of that over the maps.
 */
function latticeRef(shape: readonly number[], p = 4) {
  const { lead, h, w } = planes(shape);
  const hp = Math.floor(h / p) * p, wp = Math.floor(w / p) * p;
  const perPhase = (hp / p) * (wp / p);
  return (a: Float64Array): Float64Array => {
    let total = 0;
    for (let l = 0; l < lead; l++) {
      const phase = new Float64Array(p * p);
      for (let y = 0; y < hp; y++) {
        for (let x = 0; x < wp; x++) phase[(y % p) * p + (x % p)] += a[l * h * w + y * w + x];
      }
      for (const s of phase) total += (s / perPhase) ** 2;
    }
    return Float64Array.of(total / (lead * p * p));
  };
}

/**
 * The mean over the block sizes `k` that fit (`k <= H` and `k <= W`) of
 * `(k^2 / 16) mean(pool_k(A)^2)`: `pool_k` the mean of each whole non-overlapping k x k block (a
 * remainder at the bottom or right is in no block).
 */
function lowpassRef(shape: readonly number[], sizes = [4, 8, 16]) {
  const { lead, h, w } = planes(shape);
  const usable = sizes.filter((k) => k <= h && k <= w);
  return (a: Float64Array): Float64Array => {
    let total = 0;
    for (const k of usable) {
      const bh = Math.floor(h / k), bw = Math.floor(w / k);
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
      total += ((k * k) / 16) * (num / (lead * bh * bw));
    }
    return Float64Array.of(total / usable.length);
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

/** Ranks 2 to 5; sizes multiples of 4 and not (and odd, below 8, and above 16). */
const SHAPES = [
  [8, 12],
  [9, 13],
  [3, 6, 7],
  [2, 4, 16, 8],
  [2, 2, 3, 11, 10],
  [1, 2, 1, 5, 17],
  [2, 17, 18],
];

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

// Block-size lists: the default (4, 8, 16), one size, sizes off the period, and a list out of
// order with a size that fits no shape here (32) and one that fits some (8).
const SIZE_LISTS: (number[] | undefined)[] = [undefined, [4], [2, 3], [3, 32, 8]];

Deno.test("lowpassPenalty: forward and gradient against the float64 reference, block-size lists", async () => {
  for (const [i, shape] of SHAPES.entries()) {
    for (const [j, sizes] of SIZE_LISTS.entries()) {
      const usable = (sizes ?? [4, 8, 16]).filter((k) => k <= shape.at(-1)! && k <= shape.at(-2)!);
      if (!usable.length) continue;
      await checkOp({
        name: `lowpassPenalty sizes ${sizes ?? "default"}`,
        inputs: [{ shape }],
        gpu: (a) => lowpassPenalty(a, sizes),
        ref: lowpassRef(shape, sizes),
        seed: RUN_SEED * 41 + i * 5 + j,
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

Deno.test("latticePenalty is per map: a grating and its negation do not cancel (a^2)", async () => {
  // A signed generator's +A and -A clips carry grids of opposite sign: each map's phase means are
  // squared before the mean over maps, so they add (a^2 each), where phase means pooled over the
  // maps would cancel them (0).
  const [h, w] = [8, 12];
  const r = randn(4, RUN_SEED + 5);
  const a = 0.2 + Math.abs(r[0]);
  const g = Array.from({ length: h * w }, (_, i) => ((i % w) % 4 < 2 ? a : -a));
  const neg = g.map((v) => -v);
  const want = Math.fround(a) ** 2;
  const same = await gpuValue((t) => latticePenalty(t), [...g, ...g], [2, 1, h, w]);
  const mixed = await gpuValue((t) => latticePenalty(t), [...g, ...neg], [2, 1, h, w]);
  assert.ok(Math.abs(same - want) <= 1e-5 * want, withSeed(`G, G: ${same}, expected ${want}`));
  assert.ok(Math.abs(mixed - want) <= 1e-5 * want, withSeed(`G, -G: ${mixed}, expected ${want}`));
  // Amplitudes a and b in two maps: (a^2 + b^2) / 2 (squares averaged), not ((a + b) / 2)^2.
  const b = 0.05 + Math.abs(r[1]) / 2;
  const gb = g.map((v) => (v * b) / a);
  const two = await gpuValue((t) => latticePenalty(t), [...g, ...gb], [2, h, w]);
  const want2 = (Math.fround(a) ** 2 + Math.fround(b) ** 2) / 2;
  assert.ok(
    Math.abs(two - want2) <= 1e-5 * want2,
    withSeed(`amplitudes ${a}, ${b}: ${two}, expected ${want2}`),
  );
  // The other two penalties do not depend on the maps' signs (an offset gives lowpass energy).
  const o = g.map((v, i) => v + 0.3 + 0.01 * r[i % 4]);
  for (const [name, f] of [["isotropy", isotropyPenalty], ["lowpass", lowpassPenalty]] as const) {
    const x = await gpuValue((t) => f(t), [...o, ...o], [2, 1, h, w]);
    const y = await gpuValue((t) => f(t), [...o, ...o.map((v) => -v)], [2, 1, h, w]);
    assert.ok(x > 1e-3 && Math.abs(x - y) <= 1e-6 * x, withSeed(`${name}: ${x} vs ${y}`));
  }
});

Deno.test("latticePenalty of a constant map c is c^2; lowpassPenalty is c^2 times the mean of k^2/16", async () => {
  // The factor is the mean of k^2 / 16 over the sizes that fit, worked out by hand: 4 alone 1;
  // 4 and 8 (1 + 4) / 2; 4, 8 and 16 (1 + 4 + 16) / 3; sizes 2 and 3 (4 + 9) / 16 / 2.
  const cases: [number[], number[] | undefined, number][] = [
    [[4, 4], undefined, 1],
    [[9, 13], undefined, 2.5],
    [[2, 3, 8, 11], undefined, 2.5],
    [[16, 16], undefined, 7],
    [[1, 17, 40], undefined, 7],
    [[9, 13], [2, 3], 13 / 32],
    [[2, 20, 9], [16, 8], 4],
  ];
  for (const [shape, sizes, factor] of cases) {
    for (const c of [0.5, -0.03, 1]) {
      const v = new Array(numel(shape)).fill(c);
      const c2 = Math.fround(c) ** 2;
      const lp = await gpuValue((t) => lowpassPenalty(t, sizes), v, shape);
      const want = factor * c2;
      assert.ok(
        Math.abs(lp - want) <= 1e-5 * want,
        `lowpass of constant ${c} [${shape}] sizes ${sizes ?? "default"}: ${lp}, expected ${want}`,
      );
      const lt = await gpuValue((t) => latticePenalty(t), v, shape);
      assert.ok(Math.abs(lt - c2) <= 1e-5 * c2, `lattice of constant ${c} [${shape}]: ${lt}`);
    }
  }
});

Deno.test("lowpassPenalty: 8x8 blocks of alternating sign count at blocks of 4 and 8, not 16", async () => {
  // Every 4x4 and 8x8 block mean is +-b (terms b^2 and 4 b^2), every 16x16 block holds two
  // blocks of each sign (term 0): (1 + 4 + 0) / 3 b^2.
  for (const [k, shape] of [[16, 16], [2, 32, 16], [1, 16, 48]].entries()) {
    const { lead, h, w } = planes(shape);
    const b = [0.4, -0.7, 1][k];
    const v = new Float64Array(lead * h * w);
    for (let l = 0; l < lead; l++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          v[l * h * w + y * w + x] = ((y >> 3) + (x >> 3)) % 2 ? -b : b;
        }
      }
    }
    const got = await gpuValue((t) => lowpassPenalty(t), v, shape);
    const want = (5 / 3) * Math.fround(b) ** 2;
    assert.ok(Math.abs(got - want) <= 1e-5 * want, `8x8 blocks of ${b} [${shape}]: ${got}`);
  }
});

// For i.i.d. zero-mean noise of variance s^2 each of a map's p^2 = 16 phase means has variance
// s^2 / N (N the number of 4x4 blocks in one map), so that map's lattice * N / s^2 is about
// chi^2(16) / 16: mean 1, relative standard deviation sqrt(2/16) = 0.35. Averaged over 40
// tensors of [4, 32, 32] (160 maps, N = 64) that is 0.028, and the check allows 0.15 (5.3
// standard deviations); phase means pooled over the maps would give 1/4.
// Each of the M block means of size k has variance s^2 / k^2, so (k^2 / 16) mean(pool_k^2) * 16
// / s^2 is about chi^2(M) / M, relative standard deviation sqrt(2/M): on [16, 128, 128], M is
// 16384, 4096 and 1024 for k = 4, 8, 16 (0.011, 0.022, 0.044; the check allows 0.2 at each
// size, 4.5 standard deviations at 16), and the default (their mean) has 0.017 (0.1 allowed).
// Measured over seeds 1-25: lattice x 64 mean 1.006, sd 0.021 (0.957 to 1.051); lowpass x 16
// sd 0.009, 0.018, 0.034 at k = 4, 8, 16 (0.943 to 1.077 at 16), default sd 0.015 (0.972 to 1.030).
/** mean(A^2) of values. */
const meanSquare = (v: ArrayLike<number>) =>
  Array.from(v).reduce((s, x) => s + x * x, 0) / v.length;

Deno.test("lattice and lowpass penalties of i.i.d. noise: mean(A^2) / blocks per map, mean(A^2) / 16 at every size", async () => {
  const shape = [4, 32, 32];
  const blocks = 8 * 8;
  let sum = 0;
  const n = 40;
  for (let k = 0; k < n; k++) {
    const v = randn(numel(shape), RUN_SEED * 101 + k, 0.3);
    sum += (await gpuValue((t) => latticePenalty(t), v, shape)) / meanSquare(v);
  }
  const lattice = (sum / n) * blocks;
  assert.ok(
    Math.abs(lattice - 1) <= 0.15,
    withSeed(`noise: mean lattice x ${blocks} blocks per map is ${lattice}, expected about 1`),
  );
  const big = [16, 128, 128];
  const v = randn(numel(big), RUN_SEED * 103, 0.3);
  const ms = meanSquare(v);
  for (const sizes of [[4], [8], [16], undefined]) {
    const lp = ((await gpuValue((t) => lowpassPenalty(t, sizes), v, big)) * 16) / ms;
    const tol = sizes ? 0.2 : 0.1;
    assert.ok(
      Math.abs(lp - 1) <= tol,
      withSeed(`noise: lowpass (sizes ${sizes ?? "default"}) x 16 is ${lp}, expected about 1`),
    );
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
    (e) => e instanceof RangeError && /\[3,5\].*block size/.test(e.message),
  );
  // Sizes given, none of which fits; one that fits is enough.
  const mid = tensor(new Float32Array(9 * 13), [9, 13]);
  assert.throws(
    () => lowpassPenalty(mid, [16, 32]),
    (e) => e instanceof RangeError && /\[9,13\].*16,32/.test(e.message),
  );
  lowpassPenalty(mid, [16, 8]).dispose();
  small.dispose();
  mid.dispose();
});

/** Float64 reference of chromaMaps for `[..., 3, H, W]`: Cb then Cr, concatenated. */
function chromaRef(shape: number[]) {
  return (a: Float64Array | Float32Array) => {
    const hw = shape.at(-1)! * shape.at(-2)!;
    const lead = numel(shape) / (3 * hw);
    const cb = new Float64Array(lead * hw), cr = new Float64Array(lead * hw);
    for (let l = 0; l < lead; l++) {
      for (let p = 0; p < hw; p++) {
        const r = a[(l * 3) * hw + p], g = a[(l * 3 + 1) * hw + p], b = a[(l * 3 + 2) * hw + p];
        cb[l * hw + p] = -0.168736 * r - 0.331264 * g + 0.5 * b;
        cr[l * hw + p] = 0.5 * r - 0.418688 * g - 0.081312 * b;
      }
    }
    const out = new Float64Array(2 * lead * hw);
    out.set(cb);
    out.set(cr, lead * hw);
    return out;
  };
}

Deno.test("chromaMaps: BT.601 Cb and Cr of the channels, forward and gradient; 0 for equal channels", async () => {
  for (const [i, shape] of [[3, 4, 5], [2, 3, 6, 3], [2, 2, 3, 4, 4]].entries()) {
    await checkOp({
      name: "chromaMaps",
      inputs: [{ shape }],
      gpu: (a) => {
        const [cb, cr] = chromaMaps(a);
        return concat([cb.reshape([numel(cb.shape)]), cr.reshape([numel(cr.shape)])], 0);
      },
      ref: chromaRef(shape),
      seed: RUN_SEED * 37 + i,
      rtol: 1e-5,
      atol: 1e-6,
    });
  }
  const grey = tensor(
    Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, k) => {
      const p = k % 16, f = Math.floor(k / 48);
      return Math.sin(p + 3 * f);
    }),
    [2, 3, 4, 4],
  );
  const [cb, cr] = chromaMaps(grey);
  for (const v of [...await cb.read(), ...await cr.read()]) assert.ok(v === 0, `${v}`);
  assert.throws(() => chromaMaps(tensor(new Float32Array(8), [2, 2, 2])), /\[\.\.\., 3, H, W\]/);
  for (const v of [grey, cb, cr]) v.dispose();
});
