// indexSelect: the forward against a float64 gather and the gradient against a float64 sum over
// the inverse map and against finite differences, on fresh random inputs of rank 1 to 4 (repeated
// indices, unused rows, more indices than rows, one index, rows of one element); Swin's relative
// position bias expansion (L = 2535 rows of nH = 3 by the 153664 indices of an 8x7x7 window,
// timed); grids of more than 65535 workgroups forward and backward; a row named more than 4096
// times (several backward passes); PyTorch's torch.index_select (float64) on fixed inputs; the
// indices are copied at the call; errors.

import assert from "assert";
import { indexSelect } from "../src/tensor/ops/index_select.ts";
import { syncGpu } from "../src/gpu/queue.ts";
import { type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import {
  assertClose,
  checkOp,
  initGpu,
  numel,
  randn,
  rng,
  RUN_SEED,
  withSeed,
} from "./_helpers.ts";

/** Float64 gather of rows of `c` elements. */
function gatherRef(indices: ArrayLike<number>, c: number) {
  return (x: Float64Array): Float64Array => {
    const y = new Float64Array(indices.length * c);
    for (let p = 0; p < indices.length; p++) {
      for (let k = 0; k < c; k++) y[p * c + k] = x[indices[p] * c + k];
    }
    return y;
  };
}

/** Float64 gradient of the gather: the rows of `g` summed into the rows they came from; also
 * the sums of their magnitudes (the scale of float32 summation errors). */
function scatterRef(indices: ArrayLike<number>, rows: number, c: number, g: ArrayLike<number>) {
  const gx = new Float64Array(rows * c);
  const scale = new Float64Array(rows * c);
  for (let p = 0; p < indices.length; p++) {
    for (let k = 0; k < c; k++) {
      gx[indices[p] * c + k] += g[p * c + k];
      scale[indices[p] * c + k] += Math.abs(g[p * c + k]);
    }
  }
  return { gx, scale };
}

/** Random integers in [0, n). */
function randomIndices(m: number, n: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: m }, () => Math.min(n - 1, Math.floor(r.uniform() * n)));
}

/** The relative position index of a Video Swin window (d, h, w): [N * N] rows of the
 * (2d-1)(2h-1)(2w-1)-row bias table, N = d * h * w. */
function swinIndex(d: number, h: number, w: number): Int32Array {
  const n = d * h * w;
  const out = new Int32Array(n * n);
  const coord = (i: number) => [Math.floor(i / (h * w)), Math.floor(i / w) % h, i % w];
  for (let i = 0; i < n; i++) {
    const [di, hi, wi] = coord(i);
    for (let j = 0; j < n; j++) {
      const [dj, hj, wj] = coord(j);
      out[i * n + j] = (di - dj + d - 1) * (2 * h - 1) * (2 * w - 1) +
        (hi - hj + h - 1) * (2 * w - 1) +
        (wi - wj + w - 1);
    }
  }
  return out;
}

/** Largest |got - want| / (scale + floor) over the elements. */
function worstScaled(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale: ArrayLike<number>,
  floor = 1e-30,
) {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (scale[i] + floor);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  return { worst, at };
}

/** Runs `indexSelect(x, indices)` and its backward from `g`; checks both exactly/to `tol` times
 * the float32 summation scale; returns the forward and backward times (ms) and the worst error. */
async function checkLarge(
  name: string,
  shape: number[],
  indices: Int32Array,
  opts: { tol?: number; time?: boolean } = {},
): Promise<{ fwdMs: number; bwdMs: number; worst: number }> {
  await initGpu();
  const rows = shape[0];
  const c = numel(shape) / rows;
  const xs = randn(numel(shape), RUN_SEED + 1);
  const gs = randn(indices.length * c, RUN_SEED + 2);
  const x = tensor(Float32Array.from(xs), shape, { requiresGrad: true });
  const g = tensor(Float32Array.from(gs), [indices.length, ...shape.slice(1)]);
  try {
    let fwdMs = Infinity;
    let bwdMs = Infinity;
    let y: Tensor | null = null;
    // Warm once (pipelines), then the best of the timed runs.
    for (let run = 0; run < (opts.time ? 3 : 1); run++) {
      y?.dispose();
      x.grad?.dispose();
      x.grad = null;
      await syncGpu();
      const t0 = performance.now();
      y = indexSelect(x, indices);
      await syncGpu();
      const t1 = performance.now();
      y.backward(g);
      await syncGpu();
      const t2 = performance.now();
      if (run > 0 || !opts.time) {
        [fwdMs, bwdMs] = [Math.min(fwdMs, t1 - t0), Math.min(bwdMs, t2 - t1)];
      }
    }
    assert.deepEqual(y!.shape, [indices.length, ...shape.slice(1)]);
    const got = await y!.read();
    const want = gatherRef(indices, c)(xs);
    for (let i = 0; i < want.length; i++) {
      if (got[i] !== want[i]) {
        throw new Error(
          withSeed(`${name} forward: element ${i} is ${got[i]}, expected ${want[i]}`),
        );
      }
    }
    y!.dispose();
    const { gx, scale } = scatterRef(indices, rows, c, gs);
    const gotG = await x.grad!.read();
    const { worst, at } = worstScaled(gotG, gx, scale);
    const tol = opts.tol ?? 1e-5;
    assert.ok(
      worst <= tol,
      withSeed(
        `${name} gradient: element ${at} is ${gotG[at]}, expected ${
          gx[at]
        } (error ${worst} of the scale)`,
      ),
    );
    return { fwdMs, bwdMs, worst };
  } finally {
    x.grad?.dispose();
    x.dispose();
    g.dispose();
  }
}

const CASES: { shape: number[]; indices: number[] | Int32Array }[] = [
  { shape: [7], indices: [3, 0, 6, 6, 1] },
  { shape: [1], indices: [0, 0, 0] },
  { shape: [5, 4], indices: [4, 4, 1, 4, 0, 2, 2, 1, 4, 3, 0, 4] }, // M > L, repeats
  { shape: [6, 1], indices: [5, 2] }, // unused rows, rows of one element
  { shape: [6, 3, 5], indices: [2, 2, 5, 0, 1, 1, 5] },
  { shape: [3, 2, 2, 3], indices: [1] },
  { shape: [9, 70], indices: [8, 0, 0, 8, 3] }, // rows longer than a workgroup
  { shape: [40, 3], indices: randomIndices(100, 40, RUN_SEED + 5) },
  { shape: [100, 2], indices: randomIndices(30, 100, RUN_SEED + 6) },
];

Deno.test("indexSelect: forward and gradient against float64 references and finite differences", async () => {
  for (const { shape, indices } of CASES) {
    const c = numel(shape) / shape[0];
    await checkOp({
      name: `indexSelect [${indices.length > 12 ? `${indices.length} indices` : [...indices]}]`,
      inputs: [{ shape }],
      gpu: (x) => indexSelect(x, indices),
      ref: gatherRef(indices, c),
      rtol: 0,
      atol: 0, // a gather copies values
    });
    // The whole gradient against the inverse-map sums (finite differences sample it).
    await initGpu();
    const xs = randn(numel(shape), RUN_SEED + 3);
    const gs = randn(indices.length * c, RUN_SEED + 4);
    const x = tensor(Float32Array.from(xs), shape, { requiresGrad: true });
    tidy(() =>
      indexSelect(x, indices).backward(
        tensor(Float32Array.from(gs), [indices.length, ...shape.slice(1)]),
      )
    );
    try {
      const { gx } = scatterRef(indices, shape[0], c, gs);
      assertClose(await x.grad!.read(), gx, {
        rtol: 1e-6,
        atol: 1e-6,
        what: `indexSelect [${shape}] gradient`,
      });
    } finally {
      x.grad?.dispose();
      x.dispose();
    }
  }
});

Deno.test("indexSelect: Swin's relative position bias (2535 x 3 by 153664 indices), timed", async () => {
  const indices = swinIndex(8, 7, 7);
  assert.equal(indices.length, 153664);
  const { fwdMs, bwdMs, worst } = await checkLarge("indexSelect swin", [2535, 3], indices, {
    time: true,
  });
  console.log(
    `indexSelect [2535,3] by 153664 indices: forward ${fwdMs.toFixed(1)} ms, backward ` +
      `${bwdMs.toFixed(1)} ms; worst gradient error ${worst.toExponential(2)} of sum |g|`,
  );
});

Deno.test("indexSelect: more than 65535 workgroups forward (153664 x 28) and backward (70000 x 64)", async () => {
  const fwd = await checkLarge("indexSelect 2-D grid forward", [2535, 28], swinIndex(8, 7, 7));
  const bwd = await checkLarge(
    "indexSelect 2-D grid backward",
    [70000, 64],
    randomIndices(70000, 70000, RUN_SEED + 8),
  );
  console.log(
    `indexSelect large: worst gradient errors ${fwd.worst.toExponential(2)}, ${
      bwd.worst.toExponential(2)
    } of sum |g|`,
  );
});

Deno.test("indexSelect: a row named 9000 times (three backward passes of 4096)", async () => {
  const indices = randomIndices(10000, 5, RUN_SEED + 9);
  for (let p = 0; p < 9000; p++) indices[(p * 7919) % 10000] = 2;
  const { worst } = await checkLarge("indexSelect long row", [5, 3], indices, { tol: 1e-4 });
  console.log(`indexSelect long row: worst gradient error ${worst.toExponential(2)} of sum |g|`);
});

interface Packed {
  shape: number[];
  data: number[];
}

Deno.test("indexSelect: against PyTorch's torch.index_select (float64)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/index_select_torch.json", import.meta.url)),
  ) as { cases: { x: Packed; indices: number[]; out: Packed; w: Packed; grad_x: Packed }[] };
  assert.ok(fixture.cases.length >= 5);
  let worstG = 0;
  for (const k of fixture.cases) {
    const name = `indexSelect torch [${k.x.shape}] by ${k.indices.length}`;
    const x = tensor(Float32Array.from(k.x.data), k.x.shape, { requiresGrad: true });
    const y = tidy(() => {
      const y = indexSelect(x, k.indices);
      y.backward(tensor(Float32Array.from(k.w.data), k.w.shape));
      return y;
    });
    try {
      assert.deepEqual(y.shape, k.out.shape, name);
      // The fixture holds float32 values with 12 digits: exact once rounded to float32.
      assertClose(await y.read(), Float32Array.from(k.out.data), {
        rtol: 0,
        atol: 0,
        what: `${name} forward`,
      });
      const g = await x.grad!.read();
      assertClose(g, k.grad_x.data, { rtol: 1e-6, atol: 1e-6, what: `${name} grad x` });
      g.forEach((v, i) => worstG = Math.max(worstG, Math.abs(v - k.grad_x.data[i])));
    } finally {
      [x, x.grad, y].forEach((v) => v?.dispose());
    }
  }
  console.log(
    `indexSelect vs torch: forward exact, worst gradient error ${worstG.toExponential(2)}`,
  );
});

Deno.test("indexSelect: the indices are read at the call; Int32Array; no graph without gradients", async () => {
  await initGpu();
  const x = tensor([1, 2, 3, 4, 5, 6], [3, 2], { requiresGrad: true });
  const plain = tensor([1, 2, 3], [3]);
  try {
    const indices = Int32Array.from([1, 1, 0]);
    const y = indexSelect(x, indices);
    indices.fill(2); // too late to matter
    assert.deepEqual([...await y.read()], [3, 4, 3, 4, 1, 2]);
    y.backward(tensor([1, 2, 3, 4, 5, 6], [3, 2]));
    assert.deepEqual([...await x.grad!.read()], [5, 6, 4, 6, 0, 0]);
    y.dispose();
    const z = indexSelect(plain, [2, 0]);
    assert.ok(!z.node);
    assert.equal(z.requiresGrad, false);
    assert.deepEqual([...await z.read()], [3, 1]);
    z.dispose();
  } finally {
    x.grad?.dispose();
    x.dispose();
    plain.dispose();
  }
});

Deno.test("indexSelect: errors", async () => {
  await initGpu();
  const x = tensor(new Float32Array(6), [3, 2]);
  const scalar = tensor([1], []);
  try {
    assert.throws(
      () => indexSelect(scalar, [0]),
      /indexSelect: x must have at least one axis, got \[\]/,
    );
    assert.throws(() => indexSelect(x, []), RangeError);
    assert.throws(() => indexSelect(x, new Int32Array(0)), /indices must not be empty/);
    assert.throws(
      () => indexSelect(x, [0, 1, 3]),
      /index 3 at position 2 is not an integer in \[0, 3\)/,
    );
    assert.throws(() => indexSelect(x, [0, -1]), /index -1 at position 1 /);
    assert.throws(() => indexSelect(x, [1.5]), /index 1.5 at position 0 /);
    assert.throws(() => indexSelect(x, [0, 0, NaN]), /index NaN at position 2 /);
    assert.throws(() => indexSelect(x, Int32Array.from([2, 7])), RangeError);
    const none = indexSelect(tensor(new Float32Array(0), [3, 0]), [2, 2]);
    assert.deepEqual(none.shape, [2, 0]);
    none.dispose();
  } finally {
    x.dispose();
    scalar.dispose();
  }
});
