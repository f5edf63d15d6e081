// JND maps: hand-computed check values of the luminance adaptation (Chou and Li 1995) and the
// temporal factor (Chou and Chen 1996) of src/jnd/models.ts, a step edge, constant frames, and
// per-pixel agreement of the GPU with the float64 CPU reference (src/jnd/reference.ts) on random
// and natural images.

import { deepEqual as assertEquals, ok as assert } from "assert";
import { initGpu, randu, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { tensor, tidy } from "../src/tensor/tensor.ts";
import { computeJnd, JND_MODELS, jndHeatmap, type JndModel } from "../src/jnd/mod.ts";
import { luminanceAdaptation, temporalFactor } from "../src/jnd/models.ts";
import { jndReference } from "../src/jnd/reference.ts";
import { jndCommand } from "../src/cli/jnd.ts";
import { mapStats, planJndFrames } from "../src/jnd/stats.ts";
import { probeVideo, readVideo, VideoError } from "../src/video/mod.ts";
import { makeSandbox } from "./_sandbox.ts";

/** Agreement required between GPU and reference, in 8-bit levels. */
const TOL_LEVELS = 1e-3;

/** Runs computeJnd on CPU data and returns the map in levels. */
async function gpuLevels(
  frames: Float64Array | Float32Array,
  shape: [number, number, number, number],
  model: JndModel,
  previous?: Float64Array,
): Promise<Float64Array> {
  await initGpu();
  const out = tidy(() => {
    const x = tensor(Float32Array.from(frames), shape);
    const prev = previous
      ? tensor(Float32Array.from(previous), [3, shape[2], shape[3]])
      : undefined;
    return computeJnd(x, { model, previous: prev });
  });
  try {
    assertEquals([...out.shape], [shape[0], 1, shape[2], shape[3]]);
    return Float64Array.from(await out.read(), (v) => v * 255);
  } finally {
    out.dispose();
  }
}

function assertLevelsClose(actual: Float64Array, expected: Float64Array, what: string): void {
  assertEquals(actual.length, expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert(
    worst <= TOL_LEVELS,
    `${what}: element ${at} is ${actual[at]} levels, reference ${expected[at]} ` +
      `(difference ${worst}; tolerance ${TOL_LEVELS}; run seed ${RUN_SEED})`,
  );
}

/** Frames filled with grey levels `values[t]` (0..255). */
function greyFrames(values: number[], h: number, w: number): Float64Array {
  const n = h * w;
  const out = new Float64Array(values.length * 3 * n);
  values.forEach((v, t) => out.fill(Math.fround(v / 255), t * 3 * n, (t + 1) * 3 * n));
  return out;
}

const FLAT_TL: [number, number][] = [
  [0, 20.0],
  [32, 11.4666],
  [64, 7.9320],
  [127, 3.0],
  [128, 3.0234],
  [200, 4.7109],
  [255, 6.0],
];

Deno.test("jnd: luminance adaptation and temporal factor check values (computed by hand)", () => {
  for (const [v, tl] of FLAT_TL) {
    assert(Math.abs(luminanceAdaptation(v) - tl) < 1e-4, `T_l(${v}) = ${luminanceAdaptation(v)}`);
  }
  for (const [ild, f] of [[-255, 4.8], [0, 0.80908], [255, 2.4]]) {
    assert(Math.abs(temporalFactor(ild) - f) < 1e-5, `f(${ild}) = ${temporalFactor(ild)}`);
  }
});

Deno.test("jnd: flat fields on the GPU give T_l (chou-li) and the NAMM combination", async () => {
  const [h, w] = [9, 11];
  const frames = greyFrames(FLAT_TL.map(([v]) => v), h, w);
  const shape: [number, number, number, number] = [FLAT_TL.length, 3, h, w];
  const chou = await gpuLevels(frames, shape, "chou-li");
  const namm = await gpuLevels(frames, shape, "namm");
  const wu = await gpuLevels(frames, shape, "wu2017");
  FLAT_TL.forEach(([v, tl], t) => {
    const tt = Math.max(0, 0.5 - 0.01 * v); // mg = 0 and W = 1 on a flat field
    const expectNamm = tl + tt - 0.3 * Math.min(tl, tt);
    for (let i = t * h * w; i < (t + 1) * h * w; i++) {
      assert(Math.abs(chou[i] - tl) < 1e-3, `chou-li flat ${v}: ${chou[i]}, expected ${tl}`);
      assert(Math.abs(namm[i] - expectNamm) < 1e-3, `namm flat ${v}: ${namm[i]}`);
      // No contrast, so no visual masking: wu2017 is the luminance adaptation alone.
      assert(Math.abs(wu[i] - tl) < 1e-3, `wu2017 flat ${v}: ${wu[i]}, expected ${tl}`);
    }
  });
});

Deno.test("jnd: temporal factor on the GPU at ild = -255, 0, 255", async () => {
  const [h, w] = [6, 7];
  const n = h * w;
  // Pairs of flat frames: ild = v1 - v0 (luma and background both change by it).
  for (const [v0, v1, f] of [[255, 0, 4.8], [90, 90, 0.80908], [0, 255, 2.4]]) {
    const frames = greyFrames([v0, v1], h, w);
    const st = await gpuLevels(frames, [2, 3, h, w], "namm-st");
    const sp = await gpuLevels(frames, [2, 3, h, w], "namm");
    for (let i = 0; i < n; i++) {
      assert(Math.abs(st[i] - sp[i]) < 1e-4, `frame 0 has no factor: ${st[i]} vs ${sp[i]}`);
      const ratio = st[n + i] / sp[n + i];
      assert(Math.abs(ratio - f) < 1e-4, `ild ${v1 - v0}: factor ${ratio}, expected ${f}`);
    }
    // The same pair split across batches: frame 1 alone with frame 0 as `previous`.
    const alone = await gpuLevels(
      frames.subarray(3 * n),
      [1, 3, h, w],
      "namm-st",
      frames.slice(0, 3 * n),
    );
    for (let i = 0; i < n; i++) {
      assert(Math.abs(alone[i] - st[n + i]) < 1e-4, `previous frame: ${alone[i]} vs ${st[n + i]}`);
    }
  }
});

Deno.test("jnd: vertical step edge (analytic mg and bg, edge protection, reference)", async () => {
  const [h, w, s] = [12, 20, 10]; // columns < s are a, columns >= s are b
  const [a, b] = [50, 200];
  const frames = new Float64Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        frames[c * h * w + y * w + x] = Math.fround((x < s ? a : b) / 255);
      }
    }
  }
  const shape: [number, number, number, number] = [1, 3, h, w];
  const chou = await gpuLevels(frames, shape, "chou-li");
  const namm = await gpuLevels(frames, shape, "namm");
  // Next to the step (x = s-1 and x = s), G4 gives mg = |a - b| = 150; the 5x5 background is
  // (19a + 13b) / 32 at x = s-1 and (13a + 19b) / 32 at x = s.
  for (const [x, bg] of [[s - 1, (19 * a + 13 * b) / 32], [s, (13 * a + 19 * b) / 32]]) {
    const tl = luminanceAdaptation(bg);
    const texture = (0.0001 * bg + 0.115) * 150 + 0.5 - 0.01 * bg;
    const unprotected = tl + texture - 0.3 * Math.min(tl, texture);
    for (let y = 0; y < h; y++) {
      const i = y * w + x;
      assert(Math.abs(chou[i] - Math.max(tl, texture)) < 1e-3, `chou-li at the step: ${chou[i]}`);
      // The edge is detected, dilated and smoothed: W is small there, so NAMM is far below the
      // unprotected texture threshold.
      assert(namm[i] < 0.5 * unprotected, `namm at the step ${namm[i]} vs ${unprotected}`);
    }
  }
  // Far from the step the maps are the flat-field values.
  for (const [x, v] of [[0, a], [w - 1, b]]) {
    const tl = luminanceAdaptation(v);
    const tt = Math.max(0, 0.5 - 0.01 * v);
    assert(Math.abs(namm[x] - (tl + tt - 0.3 * Math.min(tl, tt))) < 1e-3, `namm far: ${namm[x]}`);
  }
  const ref = jndReference(frames, shape, { model: "namm" });
  assertLevelsClose(namm, ref.jnd, "step edge namm");
  assert(ref.edges[s] === 1 && ref.edges[0] === 0, "the reference marks the step as an edge");
});

Deno.test("jnd: wu2017 masks less in a regular pattern than in a disordered one", async () => {
  // Same luminance contrast (a 24-level step, weak for the edge detector): vertical stripes (one
  // orientation) and random dots around grey.
  const [h, w] = [24, 28];
  const n = h * w;
  const r = rng(RUN_SEED + 5);
  const frames = new Float64Array(2 * 3 * n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const stripe = (x % 4 < 2 ? 116 : 140) / 255;
      const dots = (r.uniform() < 0.5 ? 116 : 140) / 255;
      for (let c = 0; c < 3; c++) {
        frames[c * n + y * w + x] = Math.fround(stripe);
        frames[(3 + c) * n + y * w + x] = Math.fround(dots);
      }
    }
  }
  const shape: [number, number, number, number] = [2, 3, h, w];
  const gpu = await gpuLevels(frames, shape, "wu2017");
  assertLevelsClose(gpu, jndReference(frames, shape, { model: "wu2017" }).jnd, "wu2017 patterns");
  const interior = (f: number) => {
    let s = 0;
    let k = 0;
    for (let y = 4; y < h - 4; y++) {
      for (let x = 4; x < w - 4; x++, k++) s += gpu[f * n + y * w + x];
    }
    return s / k;
  };
  assert(
    interior(1) > 2 * interior(0),
    withSeed(`disordered ${interior(1)} vs regular ${interior(0)}`),
  );
});

Deno.test("jnd: constant frames give constant maps", async () => {
  const [t, h, w] = [3, 13, 17];
  const r = rng(RUN_SEED);
  const n = h * w;
  const frames = new Float64Array(t * 3 * n);
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      frames.fill(Math.fround(r.uniform()), (f * 3 + c) * n, (f * 3 + c + 1) * n);
    }
  }
  for (const model of JND_MODELS) {
    const out = await gpuLevels(frames, [t, 3, h, w], model);
    for (let f = 0; f < t; f++) {
      const frame = out.subarray(f * n, (f + 1) * n);
      const lo = Math.min(...frame);
      const hi = Math.max(...frame);
      assert(hi - lo < 1e-4, withSeed(`${model} frame ${f}: ${lo}..${hi}`));
      assert(
        lo >= 3 / 255 * 0.8 * 255 - 1e-6,
        withSeed(`${model} frame ${f}: ${lo} below any threshold`),
      );
    }
  }
});

/** The natural-image fixture: sequences of [T,3,H,W] frames in [0,1] (float32 values). */
function naturalSequences(): {
  name: string;
  frames: Float64Array;
  shape: [number, number, number, number];
}[] {
  const dir = new URL("./fixtures/", import.meta.url);
  const meta = JSON.parse(Deno.readTextFileSync(new URL("jnd_natural.json", dir)));
  const bytes = Deno.readFileSync(new URL("jnd_natural.rgb", dir));
  const { width: w, height: h, frames: t } = meta;
  const n = w * h;
  return meta.crops.map((crop: { file: string }, s: number) => {
    const frames = new Float64Array(t * 3 * n);
    for (let f = 0; f < t; f++) {
      const src = (s * t + f) * 3 * n;
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < 3; c++) {
          frames[(f * 3 + c) * n + i] = Math.fround(bytes[src + 3 * i + c] / 255);
        }
      }
    }
    return { name: crop.file, frames, shape: [t, 3, h, w] };
  });
}

/** Smooth random frames (bilinear upsampling of a coarse grid) with small frame-to-frame noise. */
function smoothRandom(t: number, h: number, w: number, seed: number): Float64Array {
  const r = rng(seed);
  const gh = 5;
  const gw = 6;
  const grid = Array.from({ length: 3 * gh * gw }, () => r.uniform());
  const n = h * w;
  const out = new Float64Array(t * 3 * n);
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const gy = (y / (h - 1)) * (gh - 1);
          const gx = (x / (w - 1)) * (gw - 1);
          const y0 = Math.min(Math.floor(gy), gh - 2);
          const x0 = Math.min(Math.floor(gx), gw - 2);
          const fy = gy - y0;
          const fx = gx - x0;
          const g = (yy: number, xx: number) => grid[c * gh * gw + yy * gw + xx];
          const v = (1 - fy) * ((1 - fx) * g(y0, x0) + fx * g(y0, x0 + 1)) +
            fy * ((1 - fx) * g(y0 + 1, x0) + fx * g(y0 + 1, x0 + 1));
          const noise = (r.uniform() - 0.5) * 0.02;
          out[(f * 3 + c) * n + y * w + x] = Math.fround(Math.min(1, Math.max(0, v + noise)));
        }
      }
    }
  }
  return out;
}

Deno.test("jnd: GPU agrees with the float64 reference on random images (all models)", async () => {
  const cases: { name: string; frames: Float64Array; shape: [number, number, number, number] }[] = [
    { name: "uniform 37x29", frames: randu(3 * 3 * 29 * 37, RUN_SEED), shape: [3, 3, 29, 37] },
    { name: "smooth 37x29", frames: smoothRandom(3, 29, 37, RUN_SEED + 1), shape: [3, 3, 29, 37] },
    { name: "smooth 7x5", frames: smoothRandom(2, 5, 7, RUN_SEED + 2), shape: [2, 3, 5, 7] },
  ];
  for (const c of cases) {
    for (const model of JND_MODELS) {
      const gpu = await gpuLevels(c.frames, c.shape, model);
      const ref = jndReference(c.frames, c.shape, { model });
      assertLevelsClose(gpu, ref.jnd, `${c.name} ${model}`);
    }
  }
});

Deno.test("jnd: GPU agrees with the float64 reference on natural images (all models)", async () => {
  let edgeFractions = 0;
  for (const s of naturalSequences()) {
    for (const model of JND_MODELS) {
      const gpu = await gpuLevels(s.frames, s.shape, model);
      const ref = jndReference(s.frames, s.shape, { model });
      assertLevelsClose(gpu, ref.jnd, `${s.name} ${model}`);
      if (model === "namm") {
        const frac = ref.edges.reduce((a, b) => a + b, 0) / ref.edges.length;
        if (frac > 0.02 && frac < 0.9) edgeFractions++;
      }
    }
    // namm-st with the frame before as `previous` (batched video).
    const [t, , h, w] = s.shape;
    const n = 3 * h * w;
    const rest = s.frames.slice(n);
    const restShape: [number, number, number, number] = [t - 1, 3, h, w];
    const prev = s.frames.slice(0, n);
    const gpu = await gpuLevels(rest, restShape, "namm-st", prev);
    const ref = jndReference(rest, restShape, { model: "namm-st", previous: prev });
    assertLevelsClose(gpu, ref.jnd, `${s.name} namm-st with previous`);
  }
  // The edge detector must be exercised: partial edge maps on the natural crops.
  assert(edgeFractions >= 2, `edge maps trivially empty or full on ${3 - edgeFractions} crops`);
});

Deno.test("jnd: no gradient flows through the JND; bad input is rejected", async () => {
  await initGpu();
  tidy(() => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 5).fill(0.3), [2, 3, 4, 5], {
      requiresGrad: true,
    });
    const j = computeJnd(x, { model: "namm-st" });
    assert(!j.requiresGrad && j.node === null, "JND is a constant");
    let threw = false;
    try {
      computeJnd(tensor(new Float32Array(2 * 4 * 5), [2, 1, 4, 5]));
    } catch {
      threw = true;
    }
    assert(threw, "a one-channel input is rejected");
    threw = false;
    try {
      computeJnd(x, { model: "nope" as JndModel });
    } catch {
      threw = true;
    }
    assert(threw, "an unknown model is rejected");
  });
});

Deno.test("jnd command: heat-map video, PNGs and stats; batches chain the temporal factor", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir({ prefix: "stqa_jnd_test_" });
  try {
    const clip = `${dir}/clip.mkv`;
    const made = await new Deno.Command("ffmpeg", {
      args: [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=36x22:rate=10",
        "-frames:v",
        "5",
        "-c:v",
        "ffv1",
        clip,
      ],
      stderr: "piped",
    }).output();
    assert(made.success, new TextDecoder().decode(made.stderr));
    const out = `${dir}/out`;
    const code = await jndCommand(["-i", clip, "-o", out, "--batch", "2", "--quiet"]);
    assertEquals(code, 0);
    for (const f of ["jnd_heatmap.mkv", "jnd_first.png", "jnd_middle.png", "jnd_last.png"]) {
      assert((await Deno.stat(`${out}/${f}`)).size > 0, f);
    }
    const rows = (await Deno.readTextFile(`${out}/stats.csv`)).trim().split("\n").slice(1);
    assertEquals(rows.length, 5);
    // The same frames in one batch give the same statistics (namm-st across batch borders).
    const frames = await readVideo(clip);
    const jnd = computeJnd(frames, { model: "namm-st" });
    const values = await jnd.read();
    frames.dispose();
    jnd.dispose();
    const n = 36 * 22;
    rows.forEach((row, k) => {
      const [frame, mean, p5, p95] = row.split(",").map(Number);
      const want = mapStats(values.subarray(k * n, (k + 1) * n).map((v) => v * 255), k);
      assertEquals(frame, k);
      for (const [a, b] of [[mean, want.mean], [p5, want.p5], [p95, want.p95]]) {
        assert(Math.abs(a - b) < 1e-4, `frame ${k}: ${a} vs ${b}`);
      }
    });
    assertEquals(await jndCommand(["--out", out]), 2); // no --input
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("jnd command: bad numbers are usage errors naming the option and the value", async () => {
  const usage = async (args: string[]) => {
    const err = console.error;
    const said: string[] = [];
    console.error = (...a: unknown[]) => said.push(a.join(" "));
    try {
      return { code: await jndCommand(args), said: said.join("\n") };
    } finally {
      console.error = err;
    }
  };
  const cases: [string, string, string][] = [
    ["--frames", "abc", 'must be a whole number, got "abc"'],
    ["--frames", "2.5", 'must be a whole number, got "2.5"'],
    ["--batch", "", 'must be a whole number, got ""'],
    ["--batch", "1e1", 'must be a whole number, got "1e1"'],
    ["--frames", "0", "Number must be greater than 0"],
    ["--max-levels", "lots", 'must be a number, got "lots"'],
    ["--edge-low", " ", 'must be a number, got " "'],
  ];
  for (const [flag, value, message] of cases) {
    const r = await usage(["-i", "in.mkv", "-o", "out", flag, value]);
    assertEquals(r.code, 2, `${flag} ${value}`);
    assert(r.said.includes(`${flag}: ${message}`), r.said);
  }
  const r = await usage(["-i", "in.mkv", "-o", "out", "--edge-low", "9", "--edge-high", "8.5"]);
  assertEquals(r.code, 2);
  assert(r.said.startsWith("--edge-high must be at least --edge-low"), r.said);
});

Deno.test("jnd: mapStats percentiles interpolate like numpy", () => {
  const s = mapStats(new Float32Array([4, 1, 3, 2]), 7);
  assertEquals(s.frame, 7);
  assert(Math.abs(s.mean - 2.5) < 1e-12);
  assert(Math.abs(s.p5 - 1.15) < 1e-6 && Math.abs(s.p95 - 3.85) < 1e-6, JSON.stringify(s));
});

Deno.test("jnd: heat map colours 0 and maxLevels at the ends of the ramp, clipping above", async () => {
  await initGpu();
  const levels = [0, 16, 32, 64, 8];
  const rgb = await tidy(() =>
    jndHeatmap(tensor(levels.map((v) => v / 255), [5, 1, 1, 1]), { maxLevels: 32 })
  ).read();
  const colour = (t: number) => [rgb[t * 3], rgb[t * 3 + 1], rgb[t * 3 + 2]];
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-4);
  assert(near(colour(0), [0.0015, 0.0005, 0.0139]), `0 levels: ${colour(0)}`);
  assert(near(colour(1), [0.7350, 0.2158, 0.3300]), `half: ${colour(1)}`);
  assert(near(colour(2), [0.9884, 0.9984, 0.6449]), `max: ${colour(2)}`);
  assert(near(colour(3), colour(2)), "values above maxLevels clip");
  assert(near(colour(4), [0.2582, 0.0386, 0.4065]), `quarter: ${colour(4)}`);
});

/** Runs the jnd command with its output captured. */
async function jndSaid(args: string[]): Promise<{ code: number; said: string[] }> {
  const log = console.log;
  const err = console.error;
  const said: string[] = [];
  console.log = (...a: unknown[]) => said.push(a.join(" "));
  console.error = (...a: unknown[]) => said.push(a.join(" "));
  try {
    return { code: await jndCommand(args), said };
  } finally {
    console.log = log;
    console.error = err;
  }
}

/** A testsrc2 ffv1 clip. */
async function testClip(file: string, w: number, h: number, frames: number): Promise<void> {
  const made = await new Deno.Command("ffmpeg", {
    args: [
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=${w}x${h}:rate=10`,
      "-frames:v",
      String(frames),
      "-c:v",
      "ffv1",
      `file:${file}`,
    ],
    stderr: "piped",
  }).output();
  assert(made.success, new TextDecoder().decode(made.stderr));
}

/** Rejects if `p` takes longer than `ms` (a FIFO opened by mistake blocks for ever). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("jnd command: bad inputs and a bad --out are one line (exit 1) before any work", async () => {
  const sb = await makeSandbox();
  try {
    const clip = `${sb.work}/clip.mkv`;
    await testClip(clip, 16, 12, 2);
    const fifo = `${sb.work}/pipe.mkv`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert(mk.success);
    await Deno.mkdir(`${sb.work}/folder.mkv`);
    await Deno.writeTextFile(`${sb.work}/empty.mkv`, "");
    await sb.mark();
    const file = `${sb.work}/sentinel-beside.txt`;
    const cases: [string[], string][] = [
      [["-i", fifo, "-o", sb.out], `"${fifo}": video is a FIFO (named pipe), not a regular file`],
      [
        ["-i", "/dev/zero", "-o", sb.out],
        `"/dev/zero": video is a character device, not a regular file`,
      ],
      [
        ["-i", `${sb.work}/folder.mkv`, "-o", sb.out],
        `"${sb.work}/folder.mkv": is a directory (a folder), not a video file`,
      ],
      [
        ["-i", `${sb.work}/empty.mkv`, "-o", sb.out],
        `"${sb.work}/empty.mkv": is empty (0 bytes), not a video`,
      ],
      [["-i", `${sb.work}/none.mkv`, "-o", sb.out], `"${sb.work}/none.mkv": no such file`],
      [["-i", clip, "-o", file], `${file}: --out is a file, not a folder`],
      [
        ["-i", clip, "-o", `${file}/sub`],
        `${file}/sub: cannot create --out under ${file}, which is a file`,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await within(jndSaid(args), 20_000, args.join(" "));
      assertEquals(r.code, 1, r.said.join("\n"));
      assertEquals(r.said, [message]);
    }
    // Nothing was made: not even the output folder.
    await sb.assertUntouched([]);
  } finally {
    await sb.dispose();
  }
});

Deno.test("jnd command: an output that would leave --out, or overwrite the input, is refused before any work", async () => {
  const sb = await makeSandbox();
  try {
    await Deno.mkdir(sb.out);
    const clip = `${sb.out}/jnd_heatmap.mkv`;
    await testClip(clip, 16, 12, 2);
    // The input is one of the outputs.
    let r = await jndSaid(["-i", clip, "-o", sb.out]);
    assertEquals(r.code, 1);
    assertEquals(r.said, [
      `${clip}: the input is also an output of this command (${clip}); choose another --out`,
    ]);
    // An output name that is a symbolic link out of --out.
    const input = `${sb.work}/in.mkv`;
    await Deno.rename(clip, input);
    const outside = `${sb.root}/sentinel-above.txt`;
    await Deno.symlink(outside, `${sb.out}/stats.csv`);
    await sb.mark();
    r = await jndSaid(["-i", input, "-o", sb.out]);
    assertEquals(r.code, 1);
    assertEquals(r.said, [
      `stats.csv: would be written outside the output folder ${sb.out}; refused`,
    ]);
    assertEquals(await Deno.readTextFile(outside), "above\n");
    const names = [];
    for await (const e of Deno.readDir(sb.out)) names.push(e.name);
    assertEquals(names, ["stats.csv"]);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});

Deno.test("jnd: frames too large for one binding are refused from the probe, naming --size that fits", () => {
  const limit = 4 * 2 ** 20;
  // 1920x1080 float RGB is 23.7 MiB: refused, and the --size offered fits.
  let message = "";
  try {
    planJndFrames("big.mp4", { width: 1920, height: 1080 }, { batch: 8, limit });
  } catch (e) {
    assert(e instanceof VideoError);
    message = e.message;
  }
  const m =
    /^"big\.mp4": one 1920x1080 frame needs 24 MiB on the GPU \(float32 RGB\), more than this adapter's 4 MiB storage-binding limit; pass --size (\d+) or less to scale the frames down$/
      .exec(message);
  assert(m, message);
  const fits = Number(m[1]);
  const plan = planJndFrames("big.mp4", { width: 1920, height: 1080 }, {
    batch: 8,
    size: fits,
    limit,
  });
  assert(3 * plan.width * plan.height * 4 <= limit, JSON.stringify(plan));
  assert(fits >= 700, `the --size offered is the largest that fits, not a guess: ${fits}`);
  let threw = false;
  try {
    planJndFrames("big.mp4", { width: 1920, height: 1080 }, { batch: 8, size: fits + 8, limit });
  } catch {
    threw = true;
  }
  assert(threw, "a size above the one offered does not fit");
  // Batches shrink to what one binding holds; portrait videos scale their height.
  assertEquals(planJndFrames("a.mkv", { width: 64, height: 64 }, { batch: 8, limit: 3 * 49152 }), {
    width: 64,
    height: 64,
    batch: 3,
  });
  assertEquals(
    planJndFrames("p.mkv", { width: 360, height: 640 }, { batch: 4, size: 320, limit }),
    {
      width: 180,
      height: 320,
      batch: 4,
      scale: { height: 320 },
    },
  );
});

Deno.test("jnd command: --size scales the frames; every output lands inside --out", async () => {
  await initGpu();
  const sb = await makeSandbox();
  try {
    const clip = `${sb.work}/clip.mkv`;
    await testClip(clip, 36, 22, 3);
    await sb.mark();
    const r = await jndSaid(["-i", clip, "-o", sb.out, "--size", "18", "--quiet"]);
    assertEquals(r.code, 0, r.said.join("\n"));
    const names = [];
    for await (const e of Deno.readDir(sb.out)) names.push(e.name);
    assertEquals(names.sort(), [
      "jnd_first.png",
      "jnd_heatmap.mkv",
      "jnd_last.png",
      "jnd_middle.png",
      "stats.csv",
    ]);
    const info = await probeVideo(`${sb.out}/jnd_heatmap.mkv`);
    assertEquals([info.width, info.height, info.frameCount], [18, 11, 3]);
    await sb.assertUntouched();
  } finally {
    await sb.dispose();
  }
});
