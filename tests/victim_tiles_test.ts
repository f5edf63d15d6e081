// Victims' streamed scorers on frames larger than one GPU binding: split by frames, then by
// spatial tiles (src/models/victims/tiles.ts). The binding limit is lowered (setBindingLimit) on
// small frames where the whole computation fits at the adapter's limit, so each split path is
// compared with the unsplit computation of the same frames: the whole-clip `frameScores` and
// `score` at the adapter's limit. At every lowered limit the unsplit computation is shown to
// fail (the limit binds), and a tiling without halo is shown to disagree (the comparison can
// fail). Random weights and random frames, several sizes including odd ones, several frames
// with the state carried across chunks.
//
// Tolerance: 1e-5 relative, as tests/victim_stream_test.ts. Tiles change only the order of
// float32 sums (each tile's core features are exactly the whole frame's; the global mean and
// std are merged from per-tile counts, means and variances), which moves a score by about 1e-7
// relative here, while a missing halo moves it by 1e-3 or more (checked below).

import assert from "assert";
import { bindingLimit, setBindingLimit } from "../src/gpu/device.ts";
import { poolStats } from "../src/gpu/pool.ts";
import { createVictim, loadVictim, type Victim } from "../src/models/victims/mod.ts";
import { type Crop, planTiles, pooledMoments } from "../src/models/victims/tiles.ts";
import { conv2d, leakyRelu, slice } from "../src/nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { initGpu, randn, randu, rng, RUN_SEED, withSeed } from "./_helpers.ts";

await initGpu();

const TOLERANCE = 1e-5;

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

/** Runs `fn` with the binding limit lowered to `bytes`, restoring it after. */
async function withLimit<T>(bytes: number, fn: () => T | Promise<T>): Promise<T> {
  const before = setBindingLimit(Math.floor(bytes));
  try {
    return await fn();
  } finally {
    setBindingLimit(before);
  }
}

Deno.test("planTiles: aligned cores partition the frame, halos clipped at the borders, every tile fits", () => {
  const r = rng(RUN_SEED * 31 + 1);
  for (let trial = 0; trial < 200; trial++) {
    const height = 1 + Math.floor(r.uniform() * 300);
    const width = 1 + Math.floor(r.uniform() * 300);
    const align = 2 ** Math.floor(r.uniform() * 5);
    const halo = Math.floor(r.uniform() * 40);
    const bytes = (h: number, w: number) => 24 * h * w;
    const haloA = Math.ceil(halo / align) * align;
    const smallest = bytes(Math.min(height, align + 2 * haloA), Math.min(width, align + 2 * haloA));
    const limit = Math.floor(smallest + r.uniform() * (bytes(height, width) - smallest + 1));
    const what = withSeed(`${width}x${height} align ${align} halo ${halo} limit ${limit}`);
    const tiles = planTiles({ who: "t", height, width, align, halo, bytes }, limit);
    const covered = new Uint8Array(height * width);
    for (const t of tiles) {
      const c = t.core;
      assert.ok(c.y0 % align === 0 && c.x0 % align === 0, `${what}: core origin ${c.y0},${c.x0}`);
      assert.ok(t.y0 % align === 0 && t.x0 % align === 0, `${what}: crop origin ${t.y0},${t.x0}`);
      assert.equal(t.y0, Math.max(0, c.y0 - haloA), what);
      assert.equal(t.x0, Math.max(0, c.x0 - haloA), what);
      assert.equal(t.y1, Math.min(height, c.y1 + haloA), what);
      assert.equal(t.x1, Math.min(width, c.x1 + haloA), what);
      assert.ok(bytes(t.y1 - t.y0, t.x1 - t.x0) <= limit, `${what}: a tile over the limit`);
      for (let y = c.y0; y < c.y1; y++) {
        for (let x = c.x0; x < c.x1; x++) covered[y * width + x]++;
      }
    }
    assert.ok(covered.every((n) => n === 1), `${what}: cores do not partition the frame`);
    if (bytes(height, width) <= limit) assert.equal(tiles.length, 1, what);
  }
  assert.throws(
    () =>
      planTiles({
        who: "demo-victim",
        height: 45,
        width: 67,
        align: 16,
        halo: 17,
        bytes: (h, w) => 24 * h * w,
      }, 20000),
    /^RangeError: demo-victim: a 67x45 frame cannot be scored within the binding limit of 0\.019 MiB.*even a tile of 16x16 pixels with its halo of 32/,
  );
});

/** Reads a tensor as float64 values. */
async function values(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

for (const [h, w] of [[45, 67], [96, 128], [33, 20]]) {
  Deno.test(`pooledMoments: tiled = whole map = float64 reference, a tiling without halo differs (${w}x${h})`, async () => {
    const seed = RUN_SEED * 37 + h;
    const x = tensor(Float32Array.from(randu(2 * 3 * h * w, seed)), [2, 3, h, w]);
    const w1 = tensor(Float32Array.from(randn(5 * 3 * 9, seed + 1, 0.4)), [5, 3, 3, 3]);
    const w2 = tensor(Float32Array.from(randn(4 * 5 * 9, seed + 2, 0.4)), [4, 5, 3, 3]);
    const maps = (c: Crop) => {
      const crop = slice(x, [{ axis: 2, start: c.y0, end: c.y1 }, {
        axis: 3,
        start: c.x0,
        end: c.x1,
      }]);
      const a = leakyRelu(conv2d(crop, w1, undefined, { stride: 2, padding: 1 }), 0.1);
      return [a, leakyRelu(conv2d(a, w2, undefined, { stride: 2, padding: 1 }), 0.1)];
    };
    const geometry = (halo: number) => ({
      who: "demo",
      height: h,
      width: w,
      align: 4,
      halo,
      strides: [2, 4],
      bytes: (th: number, tw: number) => 4 * 2 * 3 * th * tw, // the crop, the largest
    });
    const limit = geometry(0).bytes(h, w) / 2.5;
    const run = async (halo: number, lim: number) => {
      const got = tidy(() => noGrad(() => pooledMoments(geometry(halo), maps, lim)));
      const out = [];
      for (const m of got) out.push({ mean: await values(m.mean), std: await values(m.std) });
      got.forEach((m) => [m.mean, m.std].forEach((t) => t.dispose()));
      return out;
    };
    const whole = await run(3, Infinity);
    const tiled = await run(3, limit);
    assert.ok(planTiles(geometry(3), limit).length > 1, "the lowered limit must tile");
    // Float64 reference from the whole maps' values.
    const full = tidy(() => noGrad(() => maps({ y0: 0, y1: h, x0: 0, x1: w })));
    let worstNoHalo = 0;
    const noHalo = await run(0, limit);
    for (const [k, m] of full.entries()) {
      const [n, c, mh, mw] = m.shape;
      const v = await values(m);
      for (let i = 0; i < n * c; i++) {
        const plane = v.subarray(i * mh * mw, (i + 1) * mh * mw);
        const mean = plane.reduce((a, b) => a + b, 0) / plane.length;
        const sd = Math.sqrt(plane.reduce((a, b) => a + (b - mean) ** 2, 0) / (plane.length - 1));
        const what = withSeed(`map ${k + 1} plane ${i} (${w}x${h})`);
        for (const [name, got] of [["whole", whole], ["tiled", tiled]] as const) {
          assert.ok(
            Math.abs(got[k].mean[i] - mean) <= 1e-5 * (Math.abs(mean) + sd),
            `${what}: ${name} mean ${got[k].mean[i]}, float64 ${mean}`,
          );
          assert.ok(
            relErr(got[k].std[i], sd) <= 1e-5,
            `${what}: ${name} std ${got[k].std[i]}, float64 ${sd}`,
          );
        }
        worstNoHalo = Math.max(worstNoHalo, relErr(noHalo[k].std[i], sd));
      }
    }
    assert.ok(
      worstNoHalo > 100 * TOLERANCE,
      withSeed(`tiles without halo off by only ${worstNoHalo}`),
    );
    full.forEach((t) => t.dispose());
    [x, w1, w2].forEach((t) => t.dispose());
  });
}

interface Case {
  /** Label. */
  what: string;
  /** The victim (random weights, or bundled). */
  make: () => Promise<Victim>;
  /** Frame sizes [h, w]. */
  sizes: [number, number][];
  /** The largest per-frame intermediate of an h x w frame, by hand from the config. */
  frameBytes: (h: number, w: number) => number;
  /** The limit that splits by frames (default 1.5 frames' intermediates). */
  framesLimit?: number;
  /** Fastvqa's fragments are never tiled. */
  tiles: boolean;
}

const half = (n: number) => Math.ceil(n / 2);
const CASES: Case[] = [
  {
    what: "vsfa-mini, random weights, rgb, plain std",
    make: () =>
      Promise.resolve(createVictim("vsfa-mini", {
        seed: RUN_SEED + 3,
        config: { channels: [16, 8], reduced: 6, hidden: 5, input: "rgb", logStd: false },
      })),
    sizes: [[45, 67], [96, 128]],
    frameBytes: (h, w) => Math.max(12 * h * w, 4 * 16 * half(h) * half(w)),
    tiles: true,
  },
  {
    what: "vsfa-mini, random weights, rgb+mscn, log std",
    make: () =>
      Promise.resolve(createVictim("vsfa-mini", {
        seed: RUN_SEED + 4,
        config: { channels: [8, 12], reduced: 6, hidden: 5, input: "rgb+mscn", logStd: true },
      })),
    sizes: [[45, 67], [96, 128]],
    frameBytes: (h, w) => 24 * h * w,
    tiles: true,
  },
  {
    what: "vsfa-mini, bundled",
    make: () => loadVictim("vsfa-mini"),
    sizes: [[96, 128]],
    frameBytes: (h, w) => 24 * h * w,
    tiles: true,
  },
  {
    what: "simplevqa-mini, random weights",
    make: () =>
      Promise.resolve(createVictim("simplevqa-mini", {
        seed: RUN_SEED + 5,
        config: { channels: [8, 12], motionChannels: [4, 6], hidden: 5 },
      })),
    sizes: [[45, 67], [96, 128]],
    frameBytes: (h, w) => 24 * h * w,
    tiles: true,
  },
  {
    what: "simplevqa-mini, bundled",
    make: () => loadVictim("simplevqa-mini"),
    sizes: [[96, 128]],
    frameBytes: (h, w) => 24 * h * w,
    tiles: true,
  },
  {
    what: "fastvqa-mini, random weights",
    make: () =>
      Promise.resolve(createVictim("fastvqa-mini", {
        seed: RUN_SEED + 6,
        config: { channels: [16, 5, 6], grid: 2, patch: 6 },
      })),
    // Frames about as small as the fragments: a held frame must fit the lowered limit.
    sizes: [[13, 15], [12, 12]],
    // The first layer's features and their difference on 12x12 fragments: 32 bytes a pixel.
    frameBytes: () => 32 * 12 * 12,
    // One frame's features fit, two do not; the fragments of a chunk (12 bytes a pixel) do.
    framesLimit: 62 * 12 * 12,
    tiles: false,
  },
  {
    what: "fastvqa-mini, bundled",
    make: () => loadVictim("fastvqa-mini"),
    sizes: [[50, 61]],
    frameBytes: () => 32 * 48 * 48,
    framesLimit: 62 * 48 * 48,
    tiles: false,
  },
];

const T = 5;
const SPLITS = [[2, 3], [1, 1, 3], [5]];

/** The clip's frame scores and score, streamed in chunks of `split` (chunks made first). */
async function streamed(v: Victim, clip: Float32Array, h: number, w: number, limit: number) {
  const f = 3 * h * w;
  const out: { frameScores: number[]; score: number }[] = [];
  for (const split of SPLITS) {
    let at = 0;
    const chunks = split.map((n) => {
      const c = tensor(clip.slice(at * f, (at + n) * f), [n, 3, h, w]);
      at += n;
      return c;
    });
    const r = await withLimit(limit, () => {
      const s = v.stream();
      for (const c of chunks) s.push(c);
      return s.finish();
    });
    chunks.forEach((c) => c.dispose());
    out.push(r);
  }
  return out;
}

for (const [k, c] of CASES.entries()) {
  Deno.test(`${c.what}: streamed split by frames${c.tiles ? " and by tiles" : ""} equals the whole clip`, async () => {
    const v = await c.make();
    for (const [h, w] of c.sizes) {
      const clip = Float32Array.from(randu(T * 3 * h * w, RUN_SEED * 100 + k * 10 + h));
      const x = tensor(clip, [T, 3, h, w]);
      const [s, fs] = tidy(() => noGrad(() => [v.score(x), v.frameScores!(x)]));
      const whole = { score: (await s.read())[0], frameScores: Array.from(await fs.read()) };
      s.dispose();
      fs.dispose();
      const per = c.frameBytes(h, w);
      const limits: [string, number][] = [["by frames", c.framesLimit ?? 1.5 * per]];
      // Tiles: one frame fits (12 bytes a pixel), its features do not.
      if (c.tiles) limits.push(["by tiles", 13 * h * w]);
      for (const [how, limit] of limits) {
        const what = withSeed(`${c.what}, ${w}x${h}, ${how} (limit ${Math.floor(limit)})`);
        assert.ok(limit < 2 * per && limit < bindingLimit(), what);
        if (how === "by tiles") {
          assert.ok(per > limit, `${what}: one frame's features must not fit`);
        }
        // The limit binds: the whole computation cannot run under it.
        await withLimit(limit, () =>
          assert.throws(
            () => tidy(() => noGrad(() => v.frameScores!(x))),
            /maxStorageBufferBindingSize/,
            `${what}: the whole clip ran under the limit`,
          ));
        const inUse = poolStats().inUse;
        const runs = await streamed(v, clip, h, w, limit);
        assert.equal(poolStats().inUse, inUse, `${what}: buffers held after the streams`);
        for (const [i, r] of runs.entries()) {
          const label = `${what}, chunks [${SPLITS[i]}]`;
          assert.equal(r.frameScores.length, T, label);
          r.frameScores.forEach((q, j) =>
            assert.ok(
              relErr(q, whole.frameScores[j]) <= TOLERANCE,
              `${label}: frame ${j} split ${q}, whole ${whole.frameScores[j]}`,
            )
          );
          assert.ok(
            relErr(r.score, whole.score) <= TOLERANCE,
            `${label}: score split ${r.score}, whole ${whole.score}`,
          );
        }
      }
      x.dispose();
    }
    v.dispose();
  });
}

Deno.test("a frame that even tiles cannot score: one line naming the victim, the frame size and the limit", async () => {
  const vsfa = await loadVictim("vsfa-mini");
  const simple = await loadVictim("simplevqa-mini");
  const fast = await loadVictim("fastvqa-mini");
  const inUse = poolStats().inUse;
  const x = tensor(Float32Array.from(randu(2 * 3 * 45 * 67, RUN_SEED + 9)), [2, 3, 45, 67]);
  // vsfa-mini's four stride-2 layers need tiles of 16 pixels with a halo of 32: 80x80 at most,
  // more than the frame; 13 bytes a pixel fit the frame but not its six input channels.
  for (const v of [vsfa, simple]) {
    await withLimit(13 * 45 * 67, () => {
      const s = v.stream();
      assert.throws(
        () => s.push(x),
        new RegExp(
          `^RangeError: ${v.name}: a 67x45 frame cannot be scored within the binding limit of ` +
            `0\\.037 MiB \\(maxStorageBufferBindingSize\\): even a tile of 16x16 pixels with its halo of 32`,
        ),
      );
      s.dispose();
    });
  }
  // fastvqa-mini's fragments (48x48 whatever the frame) are never tiled.
  await withLimit(40000, () => {
    const s = fast.stream();
    assert.throws(
      () => s.push(x),
      /^RangeError: fastvqa-mini: the 48x48 fragments of a 67x45 frame need 0\.070 MiB .* more than the binding limit of 0\.038 MiB/,
    );
    s.dispose();
  });
  x.dispose();
  assert.equal(poolStats().inUse, inUse, "buffers held after the errors");
  [vsfa, simple, fast].forEach((v) => v.dispose());
});
