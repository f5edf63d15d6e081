// Structure statistics of a perturbation (src/metrics/structure.ts): every value, on luma and on
// the chroma planes, against a float64 reference computed differently here (pixel loops instead of
// column sums, a naive 2-D DFT of the tile instead of the FFT, conjugate pairs found by index
// instead of the half-plane rule, Cb and Cr by the BT.601 weights directly) on fresh random inputs
// of several shapes; the luma noise reference against normals of the seed rebuilt here; chunked
// pushes against one push;
// white noise against the expected values; stripes, a sinusoidal grating and a period-4 column
// pattern found where they are; a chroma grating with luma exactly 0 found in its plane only; a
// grey (luma-only) perturbation without chroma; chromaSummary by hand; the error messages;
// report.json's optional fields and report.html's tables.

import assert from "assert";
import { assertClose, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { parseAttackReport, structureFields } from "../src/attack/report.ts";
import { attackReportHtml } from "../src/report/attack_html.ts";
import {
  chromaSummary,
  perturbationStructure,
  STRUCTURE_TARGETS,
  StructureAccumulator,
  type StructureStats,
} from "../src/metrics/structure.ts";
import { seededRandom } from "../src/_random.ts";

type Shape = [number, number, number, number];
const LEVEL = 1 / 255;

/**
 * Clean frames in [0.2, 0.8) (`flat`: all 0.5, so float32 rounding of `clean + d` is the same
 * everywhere and a perturbation constant down a column stays exactly so) and adv = clean + the
 * given per-channel perturbation.
 */
function video(
  shape: Shape,
  d: (t: number, c: number, y: number, x: number) => number,
  seed: number,
  flat = false,
) {
  const [t, , h, w] = shape;
  const r = rng(seed);
  const clean = new Float32Array(t * 3 * h * w);
  const adv = new Float32Array(clean.length);
  let i = 0;
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++, i++) {
          clean[i] = flat ? 0.5 : 0.2 + 0.6 * r.uniform();
          adv[i] = clean[i] + d(f, c, y, x);
        }
      }
    }
  }
  return { clean, adv };
}

/** BT.601 weights of (dR, dG, dB): luma, and full-range Cb and Cr. */
const LUMA = [0.299, 0.587, 0.114];
const CB = [-0.168736, -0.331264, 0.5];
const CR = [0.5, -0.418688, -0.081312];

/** The luma of adv - clean as nested arrays [t][y][x], from the float32 values. */
function lumaOf(clean: Float32Array, adv: Float32Array, shape: Shape): number[][][] {
  return planeOf(clean, adv, shape, LUMA);
}

/** The plane `wts . (adv - clean)` as nested arrays [t][y][x], from the float32 values. */
function planeOf(
  clean: Float32Array,
  adv: Float32Array,
  shape: Shape,
  wts: number[],
): number[][][] {
  const [t, , h, w] = shape;
  const at = (a: Float32Array, f: number, c: number, y: number, x: number) =>
    a[((f * 3 + c) * h + y) * w + x];
  return Array.from(
    { length: t },
    (_, f) =>
      Array.from(
        { length: h },
        (_, y) =>
          Array.from({ length: w }, (_, x) =>
            wts.reduce((s, k, c) =>
              s + k * (at(adv, f, c, y, x) - at(clean, f, c, y, x)), 0)),
      ),
  );
}

interface Reference {
  direction: number;
  horizontal: number;
  vertical: number;
  phases: { axis: "column" | "row"; period: number; phase: number; ratio: number; mean: number }[];
  line: number;
  fx: number;
  fy: number;
  tile: [number, number];
}

/** The statistics by direct loops over the pixels and a naive DFT. */
function reference(d: number[][][]): Reference {
  const h = d[0].length, w = d[0][0].length;
  let hs = 0, hn = 0, vs = 0, vn = 0;
  for (const fr of d) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (x > 0) (hs += Math.abs(fr[y][x] - fr[y][x - 1]), hn++);
        if (y > 0) (vs += Math.abs(fr[y][x] - fr[y - 1][x]), vn++);
      }
    }
  }
  const phases: Reference["phases"] = [];
  for (const axis of ["column", "row"] as const) {
    const len = axis === "column" ? w : h;
    for (let p = 2; p <= Math.min(16, len / 2); p++) {
      for (let k = 0; k < p; k++) {
        let s1 = 0, n1 = 0, s0 = 0, n0 = 0;
        for (const fr of d) {
          fr.forEach((row, y) =>
            row.forEach((v, x) => {
              if ((axis === "column" ? x : y) % p === k) (s1 += Math.abs(v), n1++);
              else (s0 += Math.abs(v), n0++);
            })
          );
        }
        phases.push({ axis, period: p, phase: k, ratio: (s1 / n1) / (s0 / n0), mean: s1 / n1 });
      }
    }
  }
  const th = Math.min(256, 2 ** Math.floor(Math.log2(h)));
  const tw = Math.min(256, 2 ** Math.floor(Math.log2(w)));
  const y0 = Math.floor((h - th) / 2), x0 = Math.floor((w - tw) / 2);
  const power = new Float64Array(th * tw);
  for (const fr of d) {
    for (let u = 0; u < th; u++) {
      for (let v = 0; v < tw; v++) {
        let re = 0, im = 0;
        for (let y = 0; y < th; y++) {
          for (let x = 0; x < tw; x++) {
            const a = -2 * Math.PI * (u * y / th + v * x / tw);
            re += fr[y0 + y][x0 + x] * Math.cos(a);
            im += fr[y0 + y][x0 + x] * Math.sin(a);
          }
        }
        power[u * tw + v] += re * re + im * im;
      }
    }
  }
  // One value per conjugate pair {(u,v), (-u,-v)}, DC left out.
  const seen = new Set<number>();
  const values: number[] = [];
  let best = -1, bu = 0, bv = 0;
  for (let u = 0; u < th; u++) {
    for (let v = 0; v < tw; v++) {
      const i = u * tw + v;
      const j = ((th - u) % th) * tw + (tw - v) % tw;
      if (i === 0 || seen.has(Math.min(i, j))) continue;
      seen.add(Math.min(i, j));
      values.push(power[i]);
      if (power[i] > best * (1 + 1e-9)) (best = power[i], bu = u, bv = v);
    }
  }
  values.sort((a, b) => a - b);
  const m = values.length;
  assert.equal(m, th * tw / 2 + 1);
  const median = m % 2 ? values[(m - 1) / 2] : (values[m / 2 - 1] + values[m / 2]) / 2;
  // The frequency, signed in (-1/2, 1/2], then the representative with fx > 0 (or fx on 0 or
  // 1/2 and fy >= 0).
  const signed = (k: number, n: number) => (k > n / 2 ? k - n : k) / n;
  let fx = signed(bv, tw), fy = signed(bu, th);
  const wrap = (f: number) => (f === -0.5 ? 0.5 : f);
  if (fx < 0 || ((fx === 0 || fx === 0.5) && fy < 0)) (fx = wrap(-fx), fy = wrap(-fy));
  return {
    direction: (hs / hn) / (vs / vn),
    horizontal: (hs / hn) * 255,
    vertical: (vs / vn) * 255,
    phases,
    line: Math.sqrt(best / median), // amplitudes
    fx,
    fy,
    tile: [tw, th],
  };
}

function strongest(ref: Reference) {
  let b = ref.phases[0];
  for (const p of ref.phases) if (p.ratio > b.ratio * (1 + 1e-9)) b = p;
  return b;
}

function checkAgainst(s: StructureStats, ref: Reference, what: string): void {
  const tol = { rtol: 1e-9, atol: 0 };
  assertClose([s.direction.ratio!], [ref.direction], { ...tol, what: `${what} direction` });
  assertClose([s.direction.horizontalLevels, s.direction.verticalLevels], [
    ref.horizontal,
    ref.vertical,
  ], { ...tol, what: `${what} neighbour differences` });
  const b = strongest(ref);
  assertClose([s.phase.ratio!], [b.ratio], { ...tol, what: `${what} phase ratio` });
  assert.deepEqual(
    [s.phase.axis, s.phase.period, s.phase.phase],
    [b.axis, b.period, b.phase],
    withSeed(`${what} phase location`),
  );
  assertClose([s.line.ratio!], [ref.line], { rtol: 1e-8, atol: 0, what: `${what} line ratio` });
  assert.deepEqual(
    [s.line.fx, s.line.fy, s.line.tileWidth, s.line.tileHeight],
    [ref.fx, ref.fy, ...ref.tile],
    withSeed(`${what} line location`),
  );
  const t = STRUCTURE_TARGETS;
  assert.deepEqual(s.targets, {
    direction: ref.direction >= t.directionMin && ref.direction <= t.directionMax,
    phase: b.ratio <= t.phaseMax,
    line: ref.line <= t.lineMax,
    all: ref.direction >= t.directionMin && ref.direction <= t.directionMax &&
      b.ratio <= t.phaseMax && ref.line <= t.lineMax,
  }, withSeed(`${what} targets`));
}

Deno.test("structure: every statistic against pixel loops and a naive DFT, several shapes", () => {
  const shapes: Shape[] = [[2, 3, 12, 20], [1, 3, 16, 16], [3, 3, 9, 33], [2, 3, 21, 8]];
  for (const [k, shape] of shapes.entries()) {
    const seed = RUN_SEED + 100 * k;
    const r = rng(seed + 1);
    // Noise, plus a grating and a stripe of random strength, so each statistic has something to
    // find and no ratio is infinite.
    const g = {
      a: r.uniform() * 3,
      fx: r.uniform(),
      fy: r.uniform(),
      col: Math.floor(r.uniform() * 5),
    };
    const { clean, adv } = video(
      shape,
      (_t, _c, y, x) =>
        LEVEL * (r.normal() + g.a * Math.sin(2 * Math.PI * (g.fx * x + g.fy * y)) +
          (x % 5 === g.col ? g.a : 0)),
      seed,
    );
    const { structure, structureNoise, chroma, chromaNoise } = perturbationStructure(
      clean,
      adv,
      shape,
      { seed },
    );
    const what = withSeed(`[${shape.join(",")}]`);
    checkAgainst(structure, reference(lumaOf(clean, adv, shape)), what);
    for (const [plane, wts] of [["cb", CB], ["cr", CR]] as const) {
      const d = planeOf(clean, adv, shape, wts);
      checkAgainst(chroma[plane], reference(d), `${what} ${plane}`);
      const mean = d.flat(2).reduce((s, v) => s + Math.abs(v), 0) / d.flat(2).length;
      assertClose([chroma[plane].meanAbsLevels, chromaNoise[plane].meanAbsLevels], [
        mean * 255,
        mean * 255,
      ], { rtol: 1e-9, atol: 0, what: `${what} ${plane} mean |d| and its noise reference's` });
      assert.equal(chromaNoise[plane].frames, shape[0]);
    }
    assert.equal(structure.frames, shape[0]);
    assert.equal(structureNoise.frames, shape[0]);
    // The noise reference has the same mean |luma d|.
    assertClose([structureNoise.meanAbsLevels], [structure.meanAbsLevels], {
      rtol: 1e-9,
      atol: 0,
      what: `${what} noise reference mean |d|`,
    });
    const ref = lumaOf(clean, adv, shape);
    const mean = ref.flat(2).reduce((s, v) => s + Math.abs(v), 0) / ref.flat(2).length;
    assertClose([structure.meanAbsLevels], [mean * 255], { rtol: 1e-9, atol: 0, what });
  }
});

Deno.test("structure: chunk by chunk equals one push, noise reference included", () => {
  const shape: Shape = [5, 3, 10, 14];
  const seed = RUN_SEED + 7;
  const r = rng(seed);
  const { clean, adv } = video(shape, () => LEVEL * r.normal(), seed);
  const once = perturbationStructure(clean, adv, shape, { seed: 3 });
  const acc = new StructureAccumulator({ seed: 3 });
  const fs = 3 * 10 * 14;
  for (const [a, b] of [[0, 2], [2, 3], [3, 5]]) {
    acc.push(clean.subarray(a * fs, b * fs), adv.subarray(a * fs, b * fs), [b - a, 3, 10, 14]);
  }
  assert.deepEqual(acc.result(), once);
  // Another seed gives other noise references, the same perturbation statistics.
  const other = perturbationStructure(clean, adv, shape, { seed: 4 });
  assert.deepEqual(other.structure, once.structure);
  assert.deepEqual(other.chroma, once.chroma);
  assert.notDeepEqual(other.structureNoise, once.structureNoise);
  assert.notDeepEqual(other.chromaNoise.cb, once.chromaNoise.cb);
  assert.notDeepEqual(other.chromaNoise.cr, once.chromaNoise.cr);
  // Three different streams: the Cb and Cr references are not copies of the luma one or of each
  // other (scale-free statistics of the same normals would be equal).
  const n = once.chromaNoise;
  const lines = [once.structureNoise.line.ratio, n.cb.line.ratio, n.cr.line.ratio];
  assert.equal(new Set(lines).size, 3, `noise lines ${lines}`);
  const phases = [once.structureNoise.phase.ratio, n.cb.phase.ratio, n.cr.phase.ratio];
  assert.equal(new Set(phases).size, 3, `noise phases ${phases}`);
  // Nor do they start where the luma stream does: on one frame, a chroma reference drawn from the
  // luma's own stream would repeat the luma reference's normals (and so its ratios, up to the
  // rounding of another scale).
  const one = perturbationStructure(clean.subarray(0, fs), adv.subarray(0, fs), [1, 3, 10, 14]);
  for (const p of ["cb", "cr"] as const) {
    const [l, c] = [one.structureNoise, one.chromaNoise[p]];
    const ratios = (s: StructureStats) => [s.direction.ratio!, s.phase.ratio!, s.line.ratio!];
    const gaps = ratios(c).map((v, k) => Math.abs(v / ratios(l)[k] - 1));
    assert.ok(Math.max(...gaps) > 1e-6, `${p} noise reference against the luma one: ${gaps}`);
  }
});

Deno.test("structure: the luma noise reference is the seed's normals, frame by frame, scaled to each frame's mean |luma d|", () => {
  // The contract that keeps luma noise references comparable across versions (and unchanged by
  // the chroma planes, which draw from a stream of their own): per frame, H*W normals of
  // seededRandom(seed) in pixel order, scaled to the frame's mean |luma d|. Rebuilt here and
  // measured with the pixel-loop reference.
  const shapes: Shape[] = [[3, 3, 12, 20], [2, 3, 40, 36], [4, 3, 9, 33]];
  for (const [k, shape] of shapes.entries()) {
    const seed = RUN_SEED + 300 + k;
    const r = rng(seed);
    const fx = r.uniform();
    const { clean, adv } = video(
      shape,
      (_t, c, y, x) =>
        LEVEL * ((1 + c) * r.normal() + 2 * Math.sin(2 * Math.PI * fx * x) + (y % 3 ? 0 : 1)),
      seed,
    );
    const luma = lumaOf(clean, adv, shape);
    const normals = seededRandom(k);
    const noise = luma.map((frame) => {
      const z = frame.map((row) => row.map(() => normals.normal()));
      const abs = (a: number[][]) => a.flat().reduce((s, v) => s + Math.abs(v), 0);
      const scale = abs(frame) / abs(z);
      return z.map((row) => row.map((v) => v * scale));
    });
    const what = withSeed(`[${shape.join(",")}] noise reference`);
    const { structureNoise } = perturbationStructure(clean, adv, shape, { seed: k });
    checkAgainst(structureNoise, reference(noise), what);
  }
});

Deno.test("structure: white noise gives ~1, ~1 and the expected line of exponential bins", () => {
  // Direction and phase: 64x64, 4 frames of Gaussian noise on each channel.
  const shape: Shape = [4, 3, 64, 64];
  const r = rng(RUN_SEED + 11);
  const { clean, adv } = video(shape, () => 2 * LEVEL * r.normal(), RUN_SEED + 12);
  const res = perturbationStructure(clean, adv, shape);
  const { structure: s, structureNoise: n } = res;
  for (
    const [x, what] of [
      [s, "noise"],
      [n, "noise reference"],
      [res.chroma.cb, "noise's Cb"],
      [res.chroma.cr, "noise's Cr"],
      [res.chromaNoise.cb, "Cb noise reference"],
      [res.chromaNoise.cr, "Cr noise reference"],
    ] as const
  ) {
    assert.ok(Math.abs(x.direction.ratio! - 1) < 0.05, withSeed(`${what}: ${x.direction.ratio}`));
    assert.ok(x.phase.ratio! < 1.15, withSeed(`${what} phase: ${JSON.stringify(x.phase)}`));
    assert.ok(x.line.ratio! < Math.sqrt(8), withSeed(`${what} line: ${x.line.ratio}`));
    assert.ok(x.targets.all, withSeed(`${what} meets the targets: ${JSON.stringify(x.targets)}`));
  }
  // The chroma of noise is near its noise reference (the same bounds, two sided).
  for (const p of ["cb", "cr"] as const) {
    const [c, r] = [res.chroma[p], res.chromaNoise[p]];
    assert.ok(
      Math.abs(c.direction.ratio! - r.direction.ratio!) < 0.1 &&
        Math.abs(c.phase.ratio! - r.phase.ratio!) < 0.15 &&
        Math.abs(c.line.ratio! - r.line.ratio!) < Math.sqrt(8) - 1,
      withSeed(`${p} against its noise reference: ${JSON.stringify([c, r])}`),
    );
  }
  // The squared line of one frame (amplitudes squared: powers): the largest of M = 32*32/2 + 1 =
  // 513 exponential bins over their median, E ~ H_M / ln 2 = 9.84; averaged over 40 frames'
  // worth of seeds (std of one ~1.9).
  const hm = Array.from({ length: 513 }, (_, k) => 1 / (k + 1)).reduce((a, b) => a + b, 0);
  const expected = hm / Math.LN2;
  let sum = 0;
  const runs = 40;
  for (let k = 0; k < runs; k++) {
    const rr = rng(RUN_SEED + 1000 + k);
    const sh: Shape = [1, 3, 32, 32];
    const v = video(sh, () => LEVEL * rr.normal(), RUN_SEED + 2000 + k);
    sum += perturbationStructure(v.clean, v.adv, sh).structure.line.ratio! ** 2;
  }
  assert.ok(
    Math.abs(sum / runs - expected) < 1.2,
    withSeed(`mean squared line of white noise ${sum / runs}, expected ~${expected.toFixed(2)}`),
  );
});

Deno.test("structure: vertical stripes give a large direction ratio and the stripes' period", () => {
  const shape: Shape = [2, 3, 24, 48];
  const r = rng(RUN_SEED + 21);
  // Every sixth column (x mod 6 == 2) carries +-3 levels, the rest noise of 0.2 levels.
  const { clean, adv } = video(
    shape,
    (_t, _c, _y, x) => LEVEL * (0.2 * r.normal() + (x % 6 === 2 ? 3 : 0)),
    RUN_SEED + 22,
  );
  const { structure: s, structureNoise: n } = perturbationStructure(clean, adv, shape);
  assert.ok(s.direction.ratio! > 3, withSeed(`direction ${s.direction.ratio}`));
  assert.deepEqual([s.phase.axis, s.phase.period, s.phase.phase], ["column", 6, 2]);
  assert.ok(s.phase.ratio! > 5, withSeed(`phase ${s.phase.ratio}`));
  assert.equal(s.targets.direction, false);
  assert.equal(s.targets.phase, false);
  assert.ok(Math.abs(n.direction.ratio! - 1) < 0.15, withSeed(`noise ${n.direction.ratio}`));
  // The same pattern turned: horizontal stripes, rows of period 6.
  const turned: Shape = [2, 3, 48, 24];
  const v = video(turned, (_t, _c, y) => LEVEL * (0.2 * r.normal() + (y % 6 === 2 ? 3 : 0)), 5);
  const t = perturbationStructure(v.clean, v.adv, turned).structure;
  assert.ok(t.direction.ratio! < 1 / 3, withSeed(`turned direction ${t.direction.ratio}`));
  assert.deepEqual([t.phase.axis, t.phase.period, t.phase.phase], ["row", 6, 2]);
  // Pure stripes (nothing changes down a column): infinite, written as null, target missed.
  const p = video([1, 3, 8, 8], (_t, _c, _y, x) => LEVEL * (x % 2 ? 1 : -1), 6, true);
  const ps = perturbationStructure(p.clean, p.adv, [1, 3, 8, 8]).structure;
  assert.equal(ps.direction.ratio, null);
  assert.equal(ps.direction.verticalLevels, 0);
  assert.equal(ps.targets.direction, false);
});

Deno.test("structure: a sinusoidal grating gives a huge line at its frequency", () => {
  // 5 cycles across and -3 down a 32x32 tile (frames 40x36: a centred crop), plus weak noise.
  const shape: Shape = [2, 3, 40, 36];
  const r = rng(RUN_SEED + 31);
  const { clean, adv } = video(
    shape,
    (_t, _c, y, x) =>
      LEVEL * (2 * Math.sin(2 * Math.PI * (5 * x / 32 - 3 * y / 32)) + 0.05 * r.normal()),
    RUN_SEED + 32,
  );
  const { structure: s, structureNoise: n } = perturbationStructure(clean, adv, shape);
  assert.deepEqual([s.line.fx, s.line.fy], [5 / 32, -3 / 32]);
  assert.ok(s.line.ratio! > 100, withSeed(`line ${s.line.ratio}`));
  assert.equal(s.targets.line, false);
  assert.ok(n.line.ratio! < 30, withSeed(`noise reference line ${n.line.ratio}`));
  // Off the bins (period 7.3 columns on a 64-wide tile): leakage, still above 30.
  const sh2: Shape = [1, 3, 64, 70];
  const v = video(
    sh2,
    (_t, _c, _y, x) => LEVEL * (Math.sin(2 * Math.PI * x / 7.3) + 0.05 * r.normal()),
    9,
  );
  const s2 = perturbationStructure(v.clean, v.adv, sh2).structure;
  assert.ok(s2.line.ratio! > 30, withSeed(`off-bin line ${s2.line.ratio}`));
  assert.ok(Math.abs(s2.line.fx - 1 / 7.3) <= 1 / 64, `line at fx ${s2.line.fx}`);
  assert.equal(s2.line.fy, 0);
});

Deno.test("structure: a period-4 column pattern is found with period 4, not 2 or 8", () => {
  // |d| = 1.5 levels on columns x mod 4 == 1 and 1 level elsewhere, random signs: phase ratios
  // exactly 1.5 (period 4), 1.25 (period 2), 1.5 / (7.5 / 7) = 1.4 (period 8), 1.38 (period 12).
  const shape: Shape = [2, 3, 16, 32];
  const r = rng(RUN_SEED + 41);
  const sign = Array.from({ length: 2 * 16 * 32 }, () => (r.uniform() < 0.5 ? -1 : 1));
  // The same value on the three channels, so the luma is the value itself.
  const { clean, adv } = video(
    shape,
    (t, _c, y, x) => sign[(t * 16 + y) * 32 + x] * LEVEL * (x % 4 === 1 ? 1.5 : 1),
    RUN_SEED + 42,
  );
  const s = perturbationStructure(clean, adv, shape).structure;
  assert.deepEqual([s.phase.axis, s.phase.period, s.phase.phase], ["column", 4, 1]);
  // float32 frames: the luma's values carry float32 rounding of clean and adv.
  assertClose([s.phase.ratio!], [1.5], { rtol: 1e-5, atol: 0, what: "period-4 phase" });
  const ref = reference(lumaOf(clean, adv, shape)).phases;
  const at = (p: number, k: number) =>
    ref.find((x) => x.axis === "column" && x.period === p && x.phase === k)!;
  assertClose([at(2, 1).ratio, at(8, 1).ratio, at(8, 5).ratio, at(12, 1).ratio], [
    1.25,
    1.4,
    1.4,
    1.5 / (31.5 / 29), // period 12 on 32 columns: 3 columns at 1.5; of the 29 others, 5 at 1.5
  ], { rtol: 1e-5, atol: 0, what: "divisor and multiples" });
  // Zero outside the phase: periods 4, 8, 12 and 2 are all infinite or large; the tie between
  // periods 2 and 4 (both infinite) goes to the larger mean |d|, period 4.
  const sparse = video([1, 3, 8, 16], (_t, _c, _y, x) => (x % 4 === 0 ? LEVEL : 0), 43, true);
  const sp = perturbationStructure(sparse.clean, sparse.adv, [1, 3, 8, 16]).structure;
  assert.deepEqual(sp.phase, { ratio: null, axis: "column", period: 4, phase: 0 });
  assert.equal(sp.targets.phase, false);
});

Deno.test("structure: no perturbation counts as no structure; the errors name what is wrong", () => {
  const shape: Shape = [1, 3, 8, 8];
  const z = new Float32Array(3 * 64).fill(0.5);
  const { structure, structureNoise } = perturbationStructure(z, z, shape);
  for (const s of [structure, structureNoise]) {
    assert.equal(s.direction.ratio, 1);
    assert.equal(s.phase.ratio, 1);
    assert.equal(s.line.ratio, 1);
    assert.equal(s.meanAbsLevels, 0);
    assert.equal(s.targets.all, true);
  }
  assert.throws(
    () => perturbationStructure(z, z, [1, 1, 8, 8]),
    /shape must be \[T,3,H,W\], got \[1,1,8,8\]/,
  );
  assert.throws(
    () => perturbationStructure(z, z.subarray(1), shape),
    /StructureAccumulator\.push: adv has 191 elements, shape \[1,3,8,8\] needs 192/,
  );
  assert.throws(
    () => perturbationStructure(new Float32Array(36), new Float32Array(36), [1, 3, 3, 4]),
    /frames must be at least 4x4, got 4x3/,
  );
  const acc = new StructureAccumulator();
  assert.throws(() => acc.result(), /no frames pushed/);
  acc.push(z, z, shape);
  assert.throws(
    () => acc.push(new Float32Array(3 * 80), new Float32Array(3 * 80), [1, 3, 8, 10]),
    /frames of 10x8 after frames of 8x8 \(frame 1\)/,
  );
  const bad = z.slice();
  bad[64 + 8 * 2 + 5] = NaN;
  assert.throws(
    () => acc.push(z, bad, shape),
    /non-finite perturbation in frame 1 \(chunk frame 0\) at y 2, x 5: NaN/,
  );
});

/**
 * Two (dR, dG, dB) directions, in units of 2^-14, whose luma `0.299 dR + 0.587 dG + 0.114 dB` is
 * 0 exactly (299 dR + 587 dG + 114 dB = 0) and also evaluates to exactly 0 in float64, in the
 * order structure.ts evaluates it (checked below; a power-of-two multiple or the negation keeps
 * it so): CB_HEAVY is mostly Cb (Cb 88.6, Cr 0.71 units), CR_HEAVY mostly Cr (Cb 13.0, Cr 154.8).
 * Found by enumerating small integer solutions of the relation.
 */
const CB_HEAVY = [1, -31, 157];
const CR_HEAVY = [217, -115, 23];
const UNIT = 2 ** -14;

/**
 * Flat clean frames (0.5) and adv = clean + `m * dir * UNIT` per pixel, `pixel` giving `[m, dir]`
 * with m in {0, +-1, +-2}: every value exact in float32, and the luma of every pixel exactly 0.
 */
function chromaVideo(
  shape: Shape,
  pixel: (t: number, y: number, x: number) => [number, number[]],
) {
  const [t, , h, w] = shape;
  const clean = new Float32Array(t * 3 * h * w).fill(0.5);
  const adv = clean.slice();
  for (let f = 0; f < t; f++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [m, dir] = pixel(f, y, x);
        assert.ok([0, 1, 2].includes(Math.abs(m)));
        for (let c = 0; c < 3; c++) adv[((f * 3 + c) * h + y) * w + x] += m * dir[c] * UNIT;
      }
    }
  }
  return { clean, adv };
}

Deno.test("structure: a chroma grating with luma exactly 0 shows in its chroma plane only", () => {
  for (const dir of [CB_HEAVY, CR_HEAVY]) {
    assert.equal(299 * dir[0] + 587 * dir[1] + 114 * dir[2], 0);
    for (const m of [1, -1, 2, -2]) {
      const [r, g, b] = dir.map((v) => m * v * UNIT);
      assert.equal(0.299 * r + 0.587 * g + 0.114 * b, 0, `luma of ${m} x [${dir}] in float64`);
    }
  }
  // 9 cycles across and -5 down the 64x64 tile of 72x68 frames, 2 sin quantised to {0, +-1, +-2}
  // units of one direction; 20 % of the pixels replaced by +-1 or +-2 units of the other
  // direction at random (noise, so that the median bin is not 0). Expected lines (amplitudes over
  // the median): about 100 in the grating's plane (the holes' noise), 1 to 12 in the other plane
  // (the grating direction's small share of it against the other direction's noise).
  const shape: Shape = [2, 3, 68, 72];
  for (
    const [grating, other, plane, rest] of [
      [CB_HEAVY, CR_HEAVY, "cb", "cr"],
      [CR_HEAVY, CB_HEAVY, "cr", "cb"],
    ] as const
  ) {
    const r = rng(RUN_SEED + (plane === "cb" ? 71 : 72));
    const { clean, adv } = chromaVideo(shape, (_t, y, x) => {
      if (r.uniform() < 0.2) {
        return [(r.uniform() < 0.5 ? -1 : 1) * (r.uniform() < 0.5 ? 1 : 2), other];
      }
      return [Math.round(2 * Math.sin(2 * Math.PI * (9 * x / 64 - 5 * y / 64))), grating];
    });
    const res = perturbationStructure(clean, adv, shape, { seed: 2 });
    const none = perturbationStructure(clean, clean, shape, { seed: 2 });
    const what = withSeed(`grating in ${plane}`);
    // Luma: no perturbation at all (0 / 0 = 1 everywhere, mean |d| 0), noise reference included.
    assert.equal(res.structure.meanAbsLevels, 0, what);
    assert.deepEqual(res.structure, none.structure, what);
    assert.deepEqual(res.structureNoise, none.structureNoise, what);
    // Its plane: a huge line at the grating's frequency; the other plane: below the target.
    const s = res.chroma[plane];
    assert.deepEqual([s.line.fx, s.line.fy], [9 / 64, -5 / 64], what);
    assert.ok(s.line.ratio! > 50, `${what}: line ${s.line.ratio}`);
    assert.equal(s.targets.line, false);
    const o = res.chroma[rest];
    assert.ok(o.line.ratio! < STRUCTURE_TARGETS.lineMax, `${what}: ${rest} line ${o.line.ratio}`);
    assert.ok(s.line.ratio! > 5 * o.line.ratio!, `${what}: ${s.line.ratio}, ${o.line.ratio}`);
    assert.ok(res.chromaNoise[plane].line.ratio! < 10, `${what}: noise ${res.chromaNoise[plane]}`);
    assert.equal(chromaSummary(res.chroma).line, s.line.ratio);
    assert.equal(chromaSummary(res.chroma).ok, false);
  }
});

Deno.test("structure: a grey perturbation (the same on R, G and B) has no chroma: 0 / 0 = 1", () => {
  const shape: Shape = [2, 3, 16, 24];
  const r = rng(RUN_SEED + 81);
  // Stripes of period 3 and noise, the same value on the three channels of a pixel.
  const values = Array.from(
    { length: 2 * 16 * 24 },
    (_, i) => LEVEL * (r.normal() + (i % 24 % 3 === 0 ? 3 : 0)),
  );
  const { clean, adv } = video(shape, (t, _c, y, x) => values[(t * 16 + y) * 24 + x], 82, true);
  const res = perturbationStructure(clean, adv, shape, { seed: 5 });
  const none = perturbationStructure(clean, clean, shape, { seed: 5 });
  assert.ok(res.structure.meanAbsLevels > 0.5, `luma mean |d| ${res.structure.meanAbsLevels}`);
  assert.deepEqual(res.structure.phase.axis, "column");
  for (const p of ["cb", "cr"] as const) {
    const c = res.chroma[p];
    assert.equal(c.meanAbsLevels, 0, p);
    assert.deepEqual(
      [c.direction.ratio, c.phase.ratio, c.line.ratio, c.targets.all],
      [1, 1, 1, true],
      p,
    );
    assert.deepEqual(c, none.chroma[p], p);
    assert.deepEqual(res.chromaNoise[p], none.chromaNoise[p], `${p} noise reference`);
  }
  assert.deepEqual(chromaSummary(res.chroma), { direction: 1, phase: 1, line: 1, ok: true });
});

Deno.test("structure: chromaSummary keeps the worse plane per statistic", () => {
  const shape: Shape = [1, 3, 8, 8];
  const z = new Float32Array(3 * 64).fill(0.5);
  const base = perturbationStructure(z, z, shape).chroma.cb;
  /** Stats with the given ratios and verdicts as the targets give them. */
  const stats = (direction: number | null, phase: number | null, line: number | null) => {
    const s = structuredClone(base);
    s.direction.ratio = direction;
    s.phase.ratio = phase;
    s.line.ratio = line;
    const t = STRUCTURE_TARGETS;
    const inf = (v: number | null) => v ?? Infinity;
    s.targets.direction = inf(direction) >= t.directionMin && inf(direction) <= t.directionMax;
    s.targets.phase = inf(phase) <= t.phaseMax;
    s.targets.line = inf(line) <= t.lineMax;
    s.targets.all = s.targets.direction && s.targets.phase && s.targets.line;
    return s;
  };
  const cases: [StructureStats, StructureStats, unknown][] = [
    // |ln 2| = 0.69 < |ln 0.4| = 0.92: Cr's 0.4; phase and line the larger.
    [stats(2, 1.1, 5), stats(0.4, 1.3, 4), { direction: 0.4, phase: 1.3, line: 5, ok: false }],
    // |ln 1.2| = 0.18 > |ln 0.9| = 0.11: Cb's 1.2; both meet every target.
    [stats(1.2, 1.1, 5), stats(0.9, 1.0, 29), { direction: 1.2, phase: 1.1, line: 29, ok: true }],
    // Infinite (null) beats any finite value; 0 is as far as infinity (a tie keeps Cb's).
    [stats(5, null, 3), stats(null, 7, null), {
      direction: null,
      phase: null,
      line: null,
      ok: false,
    }],
    [stats(0, 1, 1), stats(null, 1, 1), { direction: 0, phase: 1, line: 1, ok: false }],
    [stats(2, 1, 1), stats(0.5, 1, 1), { direction: 2, phase: 1, line: 1, ok: false }],
  ];
  for (const [cb, cr, want] of cases) {
    assert.deepEqual(chromaSummary({ cb, cr }), want, JSON.stringify([cb, cr]));
  }
});

/** A report.json with one run, the given structure fields on it. */
function reportWith(run: object): Record<string, unknown> {
  return {
    version: 1,
    created: "2026-01-01T00:00:00.000Z",
    input: "in.mkv",
    name: "in",
    label: null,
    video: { frames: 2, width: 24, height: 16, fps: 25 },
    victim: { name: "vsfa-mini", family: "vsfa" },
    generator: { path: "g.safetensors", variant: "untargeted", trainedAgainst: "vsfa-mini" },
    jnd: "namm-st",
    eps: 1,
    seed: 0,
    chunkFrames: 16,
    clean: { score: 50, frameScores: null },
    attacks: [{
      mode: "untargeted",
      branch: 0,
      output: "adversarial.mkv",
      codec: "ffv1",
      target: 10,
      score: 40,
      frameScores: null,
      scoreChange: -10,
      psnr: { mean: 45, frames: [45, 45] },
      ssim: { mean: 0.99, frames: [0.99, 0.99] },
      beyondJnd: 0,
      meanAbsLevels: 1,
      maxAbsLevels: 3,
      seconds: { generator: 1, victim: 1, encode: 1 },
      ...run,
    }],
    seconds: 3,
  };
}

Deno.test("structure in report.json: optional, JSON round trip, verdicts that agree with values", () => {
  // Stripes of period 4 (infinite direction ratio and phase) with their noise reference.
  const shape: Shape = [2, 3, 16, 24];
  const { clean, adv } = video(shape, (_t, _c, _y, x) => (x % 4 === 0 ? LEVEL : 0), 51, true);
  const res = perturbationStructure(clean, adv, shape);
  assert.equal(res.structure.direction.ratio, null);
  const text = JSON.stringify(reportWith(structureFields(res)));
  const back = parseAttackReport(text, "r.json");
  assert.deepEqual(back.attacks[0].structure, res.structure);
  assert.deepEqual(back.attacks[0].structureNoise, res.structureNoise);
  assert.deepEqual(back.attacks[0].structureChroma, res.chroma);
  assert.deepEqual(back.attacks[0].structureChromaNoise, res.chromaNoise);
  // Reports without them (or with the luma ones only, as before chroma) still read.
  const old = parseAttackReport(reportWith({}));
  assert.equal(old.attacks[0].structure, undefined);
  assert.equal(old.attacks[0].structureChroma, undefined);
  const lumaOnly = { structure: res.structure, structureNoise: res.structureNoise };
  assert.equal(parseAttackReport(reportWith(lumaOnly)).attacks[0].structureChroma, undefined);
  // The chroma statistics are checked as the luma ones are, plane by plane.
  const badChroma = structuredClone(res.chroma);
  badChroma.cr.targets.phase = !badChroma.cr.targets.phase;
  assert.throws(
    () => parseAttackReport(reportWith({ structureChroma: badChroma }), "r.json"),
    /attacks\.0\.structureChroma\.cr\.targets\.phase: (true|false) disagrees/,
  );
  assert.throws(
    () => parseAttackReport(reportWith({ structureChromaNoise: { cb: res.chromaNoise.cb } })),
    /attacks\.0\.structureChromaNoise\.cr/,
  );
  // A verdict that disagrees with its ratio, a phase beyond its period, a negative ratio.
  const bad = structuredClone(res.structureNoise);
  bad.targets.line = !bad.targets.line;
  assert.throws(
    () => parseAttackReport(reportWith({ structure: bad }), "r.json"),
    /r\.json: invalid attack report: attacks\.0\.structure\.targets\.line: (true|false) disagrees/,
  );
  const bad2 = structuredClone(res.structure);
  bad2.phase.phase = 4;
  assert.throws(
    () => parseAttackReport(reportWith({ structureNoise: bad2 })),
    /attacks\.0\.structureNoise\.phase\.phase: phase 4 is not below period 4/,
  );
  const bad3 = structuredClone(res.structure);
  bad3.line.ratio = -1;
  assert.throws(() => parseAttackReport(reportWith({ structure: bad3 })), /structure\.line\.ratio/);
});

Deno.test("structure in report.html: a table per run with the verdicts; absent without them", () => {
  const shape: Shape = [2, 3, 16, 24];
  const { clean, adv } = video(shape, (_t, _c, _y, x) => (x % 4 === 0 ? LEVEL : 0), 61, true);
  const res = perturbationStructure(clean, adv, shape);
  const images = { panels: [], amplify: 16, jndMaxLevels: 8 };
  const lumaOnly = { structure: res.structure, structureNoise: res.structureNoise };
  const html = attackReportHtml(parseAttackReport(reportWith(lumaOnly)), images);
  const table = html.match(/<table id="structure-untargeted">.*?<\/table>/s)?.[0];
  assert.ok(table, "a structure table for the run");
  const rows = [...table.matchAll(/<tr>(.*?)<\/tr>/gs)].slice(1).map((m) =>
    [...m[1].matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((c) => c[1])
  );
  assert.equal(rows.length, 3);
  // Perturbation, where, noise reference, target, verdict.
  assert.deepEqual(rows[0].slice(1, 2), ["inf"]);
  assert.deepEqual(rows[1].slice(1, 3), ["inf", "columns x mod 4 = 0"]);
  assert.equal(rows[2][2], `fx 0.25, fy 0 cycles/px, period 4.0 px`);
  assert.deepEqual(rows.map((r) => r[4]), ["0.67 to 1.5", "at most 1.25", "at most 30"]);
  assert.deepEqual(rows.map((r) => r[5]), ["MISSED", "MISSED", "MISSED"]);
  assert.equal(rows[0][3], res.structureNoise.direction.ratio!.toFixed(2));
  assert.match(html, /untargeted: structure found \(direction, phase, line\)<\/h3>/);
  assert.ok(!html.includes("structure-chroma-"), "no chroma table without chroma statistics");
  const none = attackReportHtml(parseAttackReport(reportWith({})), images);
  assert.ok(!none.includes("structure-untargeted") && !none.includes("Structure of the"));
});

Deno.test("structure in report.html: the chroma table beside the luma one, Cb and Cr with their noise references", () => {
  // Period-4 stripes of red only (the luma's as above) and, in the second test, grey stripes
  // (no chroma at all).
  const shape: Shape = [2, 3, 16, 24];
  const images = { panels: [], amplify: 16, jndMaxLevels: 8 };
  const cellsOf = (html: string, id: string) => {
    const table = html.match(new RegExp(`<table id="${id}">.*?</table>`, "s"))?.[0];
    assert.ok(table, `table ${id}`);
    return [...table.matchAll(/<tr>(.*?)<\/tr>/gs)].map((m) =>
      [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/gs)].map((c) => c[1])
    );
  };
  const red = video(shape, (_t, c, _y, x) => (c === 0 && x % 4 === 0 ? LEVEL : 0), 91, true);
  const res = perturbationStructure(red.clean, red.adv, shape);
  const html = attackReportHtml(parseAttackReport(reportWith(structureFields(res))), images);
  const [head, ...rows] = cellsOf(html, "structure-chroma-untargeted");
  assert.deepEqual(head, [
    "statistic",
    "Cb",
    "Cb where",
    "Cb noise",
    "Cr",
    "Cr where",
    "Cr noise",
    "target",
    "verdict",
  ]);
  assert.deepEqual(rows.map((r) => r[0]), [
    "direction ratio",
    "strongest phase",
    "strongest spectral line",
  ]);
  // Nothing changes down a column in either plane: infinite direction and phase; the Cb and Cr
  // noise references' own values.
  assert.deepEqual([rows[0][1], rows[0][4]], ["inf", "inf"]);
  assert.deepEqual([rows[1][2], rows[1][5]], ["columns x mod 4 = 0", "columns x mod 4 = 0"]);
  assert.equal(rows[0][3], res.chromaNoise.cb.direction.ratio!.toFixed(2));
  assert.equal(rows[0][6], res.chromaNoise.cr.direction.ratio!.toFixed(2));
  assert.deepEqual(rows.map((r) => r[8]), [
    "MISSED (Cb, Cr)",
    "MISSED (Cb, Cr)",
    "MISSED (Cb, Cr)",
  ]);
  assert.match(
    html,
    /untargeted: structure found \(direction, phase, line\); chroma: structure found \(Cb: direction, phase, line; Cr: direction, phase, line\)<\/h3>/,
  );
  // The luma table comes first, the chroma one right after it.
  assert.ok(html.indexOf("structure-untargeted") < html.indexOf("structure-chroma-untargeted"));
  const grey = video(shape, (_t, _c, _y, x) => (x % 4 === 0 ? LEVEL : 0), 92, true);
  const g = perturbationStructure(grey.clean, grey.adv, shape);
  const gh = attackReportHtml(parseAttackReport(reportWith(structureFields(g))), images);
  assert.match(
    gh,
    /untargeted: structure found \(direction, phase, line\); chroma: none found<\/h3>/,
  );
  assert.deepEqual(cellsOf(gh, "structure-chroma-untargeted").slice(1).map((r) => r[8]), [
    "met",
    "met",
    "met",
  ]);
});
