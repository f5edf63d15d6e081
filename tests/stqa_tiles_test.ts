// STQA-Net's tiled forward pass (src/models/stqa_tiles.ts, StqaNet.forward's tiled path,
// chunkFor and generatorPerturb in src/attack/stqa.ts): the tile plans partition the frame, and
// the tiled pass (forced by lowering the binding limit with setBindingLimit, or by an explicit
// grid) gives the untiled pass's weight maps and GRU state on random weights and random frames
// of odd and even sizes, over several frames and two chunks with the state carried, for both
// variants; then the bundled generator on one 1080p frame.

import assert from "assert";
import {
  attackWithGenerator,
  computeJnd,
  type Generator,
  generatorPerturb,
  loadGenerator,
  noGrad,
  poolStats,
  StqaNet,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { chunkFor } from "../src/attack/stqa.ts";
import { bindingLimit, setBindingLimit } from "../src/gpu/device.ts";
import { planAxis, planTiles, tileStarts } from "../src/models/stqa_tiles.ts";
import { concat, slice } from "../src/nn/mod.ts";
import { initGpu, randu, rng, RUN_SEED, withSeed } from "./_helpers.ts";
import { INFO } from "./_attack_fixtures.ts";

await initGpu();

/** The layer sizes of the bundled generator, smaller for the binding-limit tests. */
const MINI = { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8] };
const SMALL = { encoder: [4, 8, 8], hidden: 8, decoder: [8, 4] };

/** Runs `fn` with the binding limit lowered to `bytes`, restoring it after. */
function withLimit<T>(bytes: number, fn: () => T): T {
  const before = setBindingLimit(bytes);
  try {
    return fn();
  } finally {
    setBindingLimit(before);
  }
}

/** Largest |a - b| and the number of values that differ at all. */
async function compare(a: Tensor, b: Tensor): Promise<{ max: number; differ: number }> {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [await a.read(), await b.read()];
  let max = 0, differ = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= max)) max = d;
    if (x[i] !== y[i]) differ++;
  }
  return { max, differ };
}

/** Values of one float32 rounding apart at most (maps and state lie in [-1, 1]). */
const TOL = 1e-6;

async function assertSame(a: Tensor, b: Tensor, what: string): Promise<void> {
  const { max, differ } = await compare(a, b);
  assert.ok(max <= TOL, withSeed(`${what}: tiled differs from whole by ${max} (${differ} values)`));
  // The maps must vary, or equality would prove nothing.
  const v = await a.read();
  assert.ok(Math.max(...v) - Math.min(...v) > 0.05, `${what}: the maps are nearly constant`);
}

/** Random frames [t,3,h,w] and JND maps [t,1,h,w] (levels/255, about what namm-st gives). */
function inputs(t: number, h: number, w: number, seed: number): { x: Tensor; j: Tensor } {
  const x = tensor(randu(t * 3 * h * w, seed), [t, 3, h, w]);
  const j = tensor(randu(t * h * w, seed + 1, 0.005, 0.05), [t, 1, h, w]);
  return { x, j };
}

/**
 * The whole clip in one untiled pass against the tiled pass in two chunks (state carried),
 * each chunk run under `tiled` (which lowers the limit or passes a grid).
 */
async function checkTiled(
  net: StqaNet,
  t: number,
  h: number,
  w: number,
  seed: number,
  tiled: <T>(fn: () => T) => T,
  grid?: { rows: number; cols: number },
): Promise<void> {
  const rgb = net.config.input === "jnd+rgb";
  const { x, j } = inputs(t, h, w, seed);
  const whole = tidy(() =>
    noGrad(() => {
      assert.equal(net.tiling(h, w, t), null);
      const o = net.forward(j, { frames: rgb ? x : undefined });
      return [...o.weights, o.state];
    })
  );
  const cut = Math.floor(t / 2);
  const pieces: Tensor[][] = [];
  let state: Tensor | undefined;
  for (const [s, e] of [[0, cut], [cut, t]]) {
    const out = tidy(() =>
      noGrad(() =>
        tiled(() => {
          const part = (a: Tensor) =>
            a.shape[0] === t ? slice(a, { axis: 0, start: s, end: e }) : a;
          const o = net.forward(part(j), {
            frames: rgb ? part(x) : undefined,
            state,
            tiles: grid,
          });
          return [...o.weights, o.state];
        })
      )
    );
    state?.dispose();
    state = out[out.length - 1];
    pieces.push(out.slice(0, -1));
  }
  const what = `${net.config.variant} ${net.config.input} ${w}x${h} x${t}` +
    (grid ? ` grid ${grid.rows}x${grid.cols}` : ` limit ${tiled(bindingLimit)}`);
  for (let br = 0; br < whole.length - 1; br++) {
    const joined = tidy(() => concat([pieces[0][br], pieces[1][br]], 0));
    await assertSame(joined, whole[br], `${what} branch ${br}`);
    joined.dispose();
  }
  await assertSame(state!, whole[whole.length - 1], `${what} state`);
  for (const a of [...whole, ...pieces.flat(), state!, x, j]) a.dispose();
}

Deno.test("stqa tiles: the cores partition each axis at every level, aligned to 4", () => {
  const r = rng(RUN_SEED + 11);
  for (let k = 0; k < 200; k++) {
    const n = 1 + Math.floor(r.uniform() * 300);
    const parts = 1 + Math.floor(r.uniform() * 12);
    const plans = planTiles(n, parts);
    const quarter = Math.ceil(n / 4);
    let at = 0, atQ = 0;
    for (const p of plans) {
      assert.equal(p.core.start, at, withSeed(`n ${n} parts ${parts}`));
      assert.equal(p.core.start % 4, 0);
      assert.equal(p.coreQ.start, atQ);
      // Every region lies in its level's axis, and stride-2 inputs start on even indices.
      for (const [s, len] of [[p.x, n], [p.f0, n], [p.c1, n], [p.d1, n]] as const) {
        assert.ok(s.start >= 0 && s.end <= len && s.start < s.end);
      }
      assert.equal(p.f0.start % 2, 0);
      assert.equal(p.f1.start % 2, 0);
      at = p.core.end;
      atQ = p.coreQ.end;
    }
    assert.equal(at, n);
    assert.equal(atQ, quarter);
  }
  assert.deepEqual(tileStarts(100, 3), [0, 36, 72]);
  assert.throws(() => planAxis(100, 2, 40), /multiple of 4/);
  assert.throws(() => planAxis(100, 0, 101), /multiple of 4/);
});

Deno.test("stqa tiles: explicit grids give the untiled maps and state (odd sizes, 2 chunks)", async () => {
  const cases = [
    { h: 37, w: 53, grids: [{ rows: 2, cols: 3 }, { rows: 10, cols: 1 }] },
    { h: 64, w: 96, grids: [{ rows: 3, cols: 2 }, { rows: 1, cols: 24 }] },
    { h: 13, w: 9, grids: [{ rows: 4, cols: 3 }] },
  ];
  let seed = RUN_SEED;
  for (const { h, w, grids } of cases) {
    for (const config of [{ ...MINI, input: "jnd+rgb" }, { ...MINI, variant: "two-branch" }]) {
      const net = new StqaNet({ seed: ++seed, config });
      for (const grid of grids) await checkTiled(net, 3, h, w, ++seed, (fn) => fn(), grid);
      net.dispose();
    }
  }
});

Deno.test("stqa tiles: a batch of clips [B,T,1,H,W] in tiles, as in one pass", async () => {
  for (const config of [{ ...MINI, variant: "two-branch" }, { ...MINI, input: "jnd+rgb" }]) {
    const net = new StqaNet({ seed: RUN_SEED + 20, config });
    const [b, t, h, w] = [2, 3, 29, 42];
    const j = tensor(randu(b * t * h * w, RUN_SEED + 21, 0.005, 0.05), [b, t, 1, h, w]);
    const x = tensor(randu(b * t * 3 * h * w, RUN_SEED + 22), [b, t, 3, h, w]);
    const frames = net.config.input === "jnd+rgb" ? x : undefined;
    const run = (tiles?: { rows: number; cols: number }) =>
      tidy(() =>
        noGrad(() => {
          const o = net.forward(j, { frames, tiles });
          return [...o.weights, o.state];
        })
      );
    const whole = run(), tiled = run({ rows: 3, cols: 2 });
    for (let k = 0; k < whole.length; k++) {
      await assertSame(
        tiled[k],
        whole[k],
        `batch ${net.config.variant} ${net.config.input} #${k}`,
      );
    }
    for (const a of [...whole, ...tiled, j, x]) a.dispose();
    net.dispose();
  }
});

Deno.test("stqa tiles: a lowered binding limit picks tiles by itself, same result", async () => {
  let seed = RUN_SEED + 100;
  const configs = [
    { ...MINI, input: "jnd+rgb" },
    { ...MINI, variant: "two-branch" },
    { ...MINI, skips: false, centre: false },
  ];
  const [t, h, w] = [3, 97, 130];
  for (const config of configs) {
    const net = new StqaNet({ seed: ++seed, config });
    const perFrame = net.bytesPerFrame(h, w);
    // The chunks hold 1 and 2 frames; the 2-frame weight maps must still fit (never tiled), and
    // so must the conv kernels' packed weights (110 KiB for the GRU's).
    const lowest = Math.ceil(1.05 * 4 * 2 * 3 * h * w);
    assert.ok(lowest < 0.7 * perFrame);
    const limits = [0.7 * perFrame, (0.7 * perFrame + lowest) / 2, lowest].map(Math.floor);
    const grids = new Set<string>();
    for (const limit of limits) {
      const grid = withLimit(limit, () => net.tiling(h, w, 2));
      assert.ok(grid && grid.rows * grid.cols > 1, `limit ${limit}: ${JSON.stringify(grid)}`);
      grids.add(JSON.stringify(grid));
      await checkTiled(net, t, h, w, ++seed, (fn) => withLimit(limit, fn));
    }
    assert.ok(grids.size >= 2, `the limits gave one grid only: ${[...grids]}`);
    // Frames that fit one at a time but not two together: frame by frame, one tile each.
    const split = Math.floor(perFrame * 1.5);
    assert.deepEqual(withLimit(split, () => net.tiling(h, w, 2)), { rows: 1, cols: 1 });
    await checkTiled(net, t, h, w, ++seed, (fn) => withLimit(split, fn));
    net.dispose();
  }
});

Deno.test("stqa tiles: generatorPerturb with its JND maps, tiled as chunkFor plans", async () => {
  const net = new StqaNet({ seed: RUN_SEED + 7, config: { ...MINI, input: "jnd+rgb" } });
  const [h, w] = [61, 90];
  const { x } = inputs(2, h, w, RUN_SEED + 8);
  const limit = Math.floor(net.bytesPerFrame(h, w) / 3.5);
  const whole = tidy(() =>
    noGrad(() => {
      const r = generatorPerturb(net, x, computeJnd(x), { eps: 2 });
      return [r.adversarial[0], r.state];
    })
  );
  const tiled = withLimit(limit, () => {
    assert.equal(chunkFor(net, h, w, 16), 1);
    assert.ok(net.tiling(h, w, 1));
    return tidy(() =>
      noGrad(() => {
        const r = generatorPerturb(net, x, computeJnd(x), { eps: 2 });
        return [r.adversarial[0], r.state];
      })
    );
  });
  for (let k = 0; k < 2; k++) {
    const { max } = await compare(tiled[k], whole[k]);
    assert.ok(max <= TOL, withSeed(`${k ? "state" : "adversarial frames"} differ by ${max}`));
  }
  for (const a of [...whole, ...tiled, x]) a.dispose();
  net.dispose();
});

Deno.test("stqa tiles: attackWithGenerator (chunkFor, JND carried) and no buffer leaks", async () => {
  const net = new StqaNet({ seed: RUN_SEED + 9, config: { ...MINI, input: "jnd+rgb" } });
  const g: Generator = {
    net,
    path: "(in memory)",
    info: { kind: "stqa-net", config: { ...net.config }, ...INFO, victimFamily: "vsfa-mini" },
  };
  const [t, h, w] = [3, 61, 90];
  const x = tensor(
    Float32Array.from(randu(t * 3 * h * w, RUN_SEED + 10), (v) => Math.round(255 * v) / 255),
    [t, 3, h, w],
  );
  const whole = await attackWithGenerator(g, x, { chunkFrames: 3, quantize: false });
  const limit = Math.floor(net.bytesPerFrame(h, w) / 2);
  const before = poolStats().inUse;
  const tiled = await withLimit(limit, async () => {
    assert.equal(chunkFor(net, h, w, 3), 1);
    assert.ok(net.tiling(h, w, 1));
    return await attackWithGenerator(g, x, { chunkFrames: 3, quantize: false });
  });
  assert.equal(poolStats().inUse, before + 1, "the tiled attack left buffers in use");
  const { max } = await compare(tiled, whole);
  assert.ok(max <= TOL, withSeed(`adversarial frames differ by ${max}`));
  for (const a of [whole, tiled, x]) a.dispose();
  net.dispose();
});

Deno.test("stqa tiles: refusals name the size (gradients, nothing fits, bad grid)", () => {
  const net = new StqaNet({ seed: 3, config: SMALL });
  const { j } = inputs(1, 16, 16, 5);
  // The tiled pass records no gradients (the parameters require them).
  assert.throws(
    () => tidy(() => net.forward(j, { tiles: { rows: 2, cols: 2 } })),
    /16x16 need tiles.*noGrad/,
  );
  assert.throws(
    () => tidy(() => noGrad(() => net.forward(j, { tiles: { rows: 0, cols: 2 } }))),
    /tiles must be whole numbers/,
  );
  // One frame's weight maps are never tiled: below them nothing helps.
  withLimit(3 * 16 * 16 * 4 - 4, () => {
    assert.throws(() => net.tiling(16, 16), /1 frame\(s\) of 16x16: the weight maps need/);
    assert.throws(() => chunkFor(net, 16, 16, 4), /the weight maps need.*--size/);
  });
  j.dispose();
  net.dispose();
});

Deno.test("stqa tiles: the bundled generator attacks one 1920x1080 frame", async () => {
  const g = await loadGenerator("stqa-vsfa-mini");
  const [h, w] = [1080, 1920];
  // The widest whole-frame tensor (190 MiB) passes lavapipe's 128 MiB: tiles are taken.
  const tiles = g.net.bytesPerFrame(h, w) > bindingLimit();
  if (tiles) {
    assert.equal(chunkFor(g.net, h, w, 16), 1);
    assert.ok(g.net.tiling(h, w, 1));
  }
  const v = new Float32Array(3 * h * w);
  for (let i = 0; i < v.length; i++) {
    v[i] = Math.round(255 * (0.5 + 0.4 * Math.sin(i * 0.37))) / 255;
  }
  const x = tensor(v, [1, 3, h, w]);
  const t0 = performance.now();
  const [adv, jnd, state] = tidy(() =>
    noGrad(() => {
      const j = computeJnd(x, { model: g.info.jnd });
      const r = generatorPerturb(g.net, x, j, { eps: g.info.eps });
      return [r.adversarial[0], j, r.state];
    })
  );
  const [a, jv] = [await adv.read(), await jnd.read()];
  const seconds = (performance.now() - t0) / 1000;
  assert.deepEqual(state.shape, [1, 32, 270, 480]);
  // Inside the JND box everywhere, and not the clean frame.
  let moved = 0, worst = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - v[i]);
    worst = Math.max(worst, d - g.info.eps * jv[i % (h * w)]);
    if (d > 0) moved++;
  }
  assert.ok(worst <= 1e-6, `a value leaves the JND box by ${worst}`);
  assert.ok(moved > a.length / 2, `only ${moved} values moved`);
  console.log(
    `1920x1080 frame (JND + generator${tiles ? " in tiles" : ""}): ${seconds.toFixed(1)} s`,
  );
  for (const t of [adv, jnd, state, x]) t.dispose();
  g.net.dispose();
});
