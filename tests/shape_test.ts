// Shape ops (permute, transpose, slice, split, concat, stack, squeeze, unsqueeze, pad): forward
// against float64 references, gradients against finite differences, argument errors.

import { initGpu, nn, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, numel, randn, RUN_SEED } from "./_helpers.ts";
import { contiguousStrides, MAX_RANK, mergeAxes, padTo } from "../src/tensor/_layout.ts";
import assert from "assert";

function strides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

function coordsOf(i: number, shape: number[]): number[] {
  const c = new Array(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    c[a] = i % shape[a];
    i = Math.floor(i / shape[a]);
  }
  return c;
}

/** Output element i of a permute takes input coordinate c[perm^-1]. */
function permuteRef(shape: number[], axes: number[]): (x: Float64Array) => Float64Array {
  const rank = shape.length;
  const perm = axes.map((a) => (a < 0 ? a + rank : a));
  const outShape = perm.map((a) => shape[a]);
  const st = strides(shape);
  return (x) => {
    const y = new Float64Array(x.length);
    for (let i = 0; i < y.length; i++) {
      const c = coordsOf(i, outShape);
      let off = 0;
      perm.forEach((a, j) => (off += c[j] * st[a]));
      y[i] = x[off];
    }
    return y;
  };
}

/** The box [starts, starts + sizes) of x. */
function sliceRef(shape: number[], starts: number[], sizes: number[]) {
  const st = strides(shape);
  return (x: Float64Array) => {
    const y = new Float64Array(numel(sizes));
    for (let i = 0; i < y.length; i++) {
      const c = coordsOf(i, sizes);
      let off = 0;
      c.forEach((v, a) => (off += (v + starts[a]) * st[a]));
      y[i] = x[off];
    }
    return y;
  };
}

/** Concatenation of xs (shapes) along axis. */
function concatRef(shapes: number[][], axis: number) {
  const rank = shapes[0].length;
  const ax = axis < 0 ? axis + rank : axis;
  const outShape = [...shapes[0]];
  outShape[ax] = shapes.reduce((p, s) => p + s[ax], 0);
  return (...xs: Float64Array[]) => {
    const y = new Float64Array(numel(outShape));
    for (let i = 0; i < y.length; i++) {
      const c = coordsOf(i, outShape);
      let k = 0;
      while (c[ax] >= shapes[k][ax]) c[ax] -= shapes[k++][ax];
      const st = strides(shapes[k]);
      y[i] = xs[k][c.reduce((p, v, a) => p + v * st[a], 0)];
    }
    return y;
  };
}

Deno.test("permute: forward and gradient, ranks 2 to 5, negative axes", async () => {
  const cases: [number[], number[]][] = [
    [[3, 5], [1, 0]],
    [[4, 3, 5], [0, 1, 2]],
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[3, 2, 5, 3], [-1, 0, -2, 1]],
    [[2, 3, 1, 4, 3], [4, 2, 0, 3, 1]],
    [[3, 2, 2, 3, 2], [1, 3, 4, 0, 2]],
  ];
  for (const [shape, axes] of cases) {
    await checkOp({
      name: `permute [${axes}]`,
      inputs: [{ shape }],
      gpu: (x) => {
        const y = nn.permute(x, axes);
        const want = axes.map((a) => shape[a < 0 ? a + shape.length : a]);
        if (y.shape.join() !== want.join()) throw new Error(`shape [${y.shape}] != [${want}]`);
        return y;
      },
      ref: permuteRef(shape, axes),
    });
  }
});

Deno.test("permute of a larger rank-4 tensor matches the reference", async () => {
  await initGpu();
  const shape = [3, 17, 33, 9];
  const axes = [2, 0, 3, 1];
  const data = randn(numel(shape), RUN_SEED + 3);
  const y = tidy(() => nn.permute(tensor(Float32Array.from(data), shape), axes));
  assertClose(await y.read(), permuteRef(shape, axes)(data), { rtol: 0, atol: 0, what: "permute" });
  y.dispose();
});

Deno.test("long rows (many copy segments): concat, slice and stack match the references", async () => {
  await initGpu();
  const shapes = [[3, 1000], [3, 77], [3, 5]];
  const datas = shapes.map((s, i) => randn(numel(s), RUN_SEED + 11 * i));
  const [c, sl, st] = tidy(() => {
    const xs = shapes.map((s, i) => tensor(Float32Array.from(datas[i]), s));
    return [
      nn.concat(xs, 1),
      nn.slice(xs[0], { axis: 1, start: 3, end: -7 }),
      nn.stack([xs[0], xs[0]], 2),
    ];
  });
  const exact = { rtol: 0, atol: 0 };
  assertClose(await c.read(), concatRef(shapes, 1)(...datas), { ...exact, what: "concat" });
  assertClose(await sl.read(), sliceRef([3, 1000], [0, 3], [3, 990])(datas[0]), {
    ...exact,
    what: "slice",
  });
  const s2 = [3, 1000, 1];
  assertClose(await st.read(), concatRef([s2, s2], 2)(datas[0], datas[0]), {
    ...exact,
    what: "stack",
  });
  [c, sl, st].forEach((t) => t.dispose());
});

Deno.test("large contiguous rows (buffer-to-buffer copies): concat, slice and their gradients match the references", async () => {
  await initGpu();
  // Frames of images concatenated along channels and along frames, rows of >= 4096 elements.
  const shapes = [[2, 3, 40, 110], [2, 1, 40, 110], [2, 2, 40, 110]];
  const datas = shapes.map((s, i) => randn(numel(s), RUN_SEED + 31 * i));
  const exact = { rtol: 0, atol: 0 };
  for (const axis of [0, 1]) {
    const cat = axis === 0 ? shapes.map((s) => [s[1], s[0], s[2], s[3]]) : shapes;
    await checkOp({
      name: `concat of large rows, axis ${axis}`,
      inputs: cat.map((shape) => ({ shape })),
      gpu: (...xs) => nn.concat(xs, axis),
      ref: concatRef(cat, axis),
    });
    const y = tidy(() =>
      nn.concat(cat.map((s, i) => tensor(Float32Array.from(datas[i]), s)), axis)
    );
    assertClose(await y.read(), concatRef(cat, axis)(...datas), {
      ...exact,
      what: `concat ${axis}`,
    });
    y.dispose();
  }
  // A slice of whole channels (rows of 4400 elements at an offset) and of frames.
  const x = tensor(Float32Array.from(datas[0]), shapes[0]);
  for (const [axis, start, end] of [[1, 1, 3], [0, 1, 2]]) {
    const y = nn.slice(x, { axis, start, end });
    const lo = [0, 0, 0, 0];
    const sizes = [...shapes[0]];
    lo[axis] = start;
    sizes[axis] = end - start;
    assertClose(await y.read(), sliceRef(shapes[0], lo, sizes)(datas[0]), {
      ...exact,
      what: `slice axis ${axis}`,
    });
    y.dispose();
  }
  x.dispose();
});

Deno.test("transpose: default last two axes and explicit axes", async () => {
  await checkOp({
    name: "transpose",
    inputs: [{ shape: [3, 5] }],
    gpu: (x) => nn.transpose(x),
    ref: permuteRef([3, 5], [1, 0]),
  });
  await checkOp({
    name: "transpose(0, -1)",
    inputs: [{ shape: [2, 3, 7] }],
    gpu: (x) => nn.transpose(x, 0, -1),
    ref: permuteRef([2, 3, 7], [2, 1, 0]),
  });
  await checkOp({
    name: "transpose [2,3,4,5]",
    inputs: [{ shape: [2, 3, 4, 5] }],
    gpu: (x) => nn.transpose(x),
    ref: permuteRef([2, 3, 4, 5], [0, 1, 3, 2]),
  });
});

Deno.test("slice: forward and gradient (scatter into zeros), negative indices", async () => {
  // [shape, ranges, starts, sizes]
  const cases: [number[], nn.SliceRange[], number[], number[]][] = [
    [[7, 5], [{ axis: 0, start: 2, end: -1 }], [2, 0], [4, 5]],
    [[3, 4, 5], [{ axis: -1, start: 1, end: 4 }, { axis: 0, start: -2 }], [1, 0, 1], [2, 4, 3]],
    [[2, 3, 7, 5], [{ axis: 2, start: 3, end: 4 }], [0, 0, 3, 0], [2, 3, 1, 5]],
    [[2, 3, 7, 5], [{ axis: 1, end: 2 }, { axis: 3, start: -3, end: -1 }], [0, 0, 0, 2], [
      2,
      2,
      7,
      2,
    ]],
    [[9], [{ axis: 0, start: 0, end: 9 }], [0], [9]],
  ];
  for (const [shape, ranges, starts, sizes] of cases) {
    await checkOp({
      name: `slice ${JSON.stringify(ranges)}`,
      inputs: [{ shape }],
      gpu: (x) => {
        const y = nn.slice(x, ranges);
        if (y.shape.join() !== sizes.join()) throw new Error(`shape [${y.shape}] != [${sizes}]`);
        return y;
      },
      ref: sliceRef(shape, starts, sizes),
    });
  }
});

Deno.test("slice: an empty range gives a size-0 axis", async () => {
  await initGpu();
  tidy(() => {
    const y = nn.slice(tensor(new Float32Array(15), [3, 5]), { axis: 1, start: 2, end: 2 });
    if (y.shape.join() !== "3,0") throw new Error(`shape [${y.shape}]`);
  });
});

Deno.test("concat: three tensors of different sizes along an axis, gradients split", async () => {
  const cases: [number[][], number][] = [
    [[[2, 3, 4], [2, 1, 4], [2, 5, 4]], 1],
    [[[3, 2], [3, 5], [3, 1]], -1],
    [[[1, 3, 2], [4, 3, 2], [2, 3, 2]], 0],
    [[[2, 3, 2, 3], [2, 3, 3, 3], [2, 3, 1, 3]], -2],
  ];
  for (const [shapes, axis] of cases) {
    await checkOp({
      name: `concat axis ${axis}`,
      inputs: shapes.map((shape) => ({ shape })),
      gpu: (...xs) => nn.concat(xs, axis),
      ref: concatRef(shapes, axis),
    });
  }
});

Deno.test("concat: an input that does not need a gradient, and one used twice", async () => {
  await checkOp({
    name: "concat [a, b(no grad), a]",
    inputs: [{ shape: [2, 3] }, { shape: [2, 4], grad: false }],
    gpu: (a, b) => nn.concat([a, b, a], 1),
    ref: (a, b) => concatRef([[2, 3], [2, 4], [2, 3]], 1)(a, b, a),
  });
});

Deno.test("stack: new axis at every position, gradients", async () => {
  const shape = [3, 5];
  for (const axis of [0, 1, 2, -1, -3]) {
    const ax = axis < 0 ? axis + 3 : axis;
    // stack == concat of unsqueezed inputs
    const unsq = [...shape.slice(0, ax), 1, ...shape.slice(ax)];
    await checkOp({
      name: `stack axis ${axis}`,
      inputs: [{ shape }, { shape }, { shape }],
      gpu: (...xs) => {
        const y = nn.stack(xs, axis);
        const want = [...shape.slice(0, ax), 3, ...shape.slice(ax)];
        if (y.shape.join() !== want.join()) throw new Error(`shape [${y.shape}] != [${want}]`);
        return y;
      },
      ref: concatRef([unsq, unsq, unsq], ax),
    });
  }
  await checkOp({
    name: "stack rank 3, axis 2",
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }],
    gpu: (a, b) => nn.stack([a, b], 2),
    ref: concatRef([[2, 3, 1, 4], [2, 3, 1, 4]], 2),
  });
});

Deno.test("split: sizes and equal pieces; gradients through a reordered concat", async () => {
  await checkOp({
    name: "split [1,2,3] axis 1",
    inputs: [{ shape: [4, 6, 3] }],
    gpu: (x) => {
      const [a, b, c] = nn.split(x, [1, 2, 3], 1);
      return nn.concat([c, a, b], 1);
    },
    ref: (x) => {
      const pieces = [[0, 1], [1, 2], [3, 3]].map(([s, n]) =>
        sliceRef([4, 6, 3], [0, s, 0], [4, n, 3])(x)
      );
      return concatRef([[4, 3, 3], [4, 1, 3], [4, 2, 3]], 1)(pieces[2], pieces[0], pieces[1]);
    },
  });
  await checkOp({
    name: "split 3 axis -1",
    inputs: [{ shape: [5, 9] }],
    gpu: (x) => {
      const parts = nn.split(x, 3, -1);
      if (parts.length !== 3 || parts.some((p) => p.shape.join() !== "5,3")) {
        throw new Error(`pieces ${parts.map((p) => p.shape)}`);
      }
      return nn.concat([parts[1], parts[2], parts[0]], -1);
    },
    ref: (x) => {
      const p = [0, 3, 6].map((s) => sliceRef([5, 9], [0, s], [5, 3])(x));
      return concatRef([[5, 3], [5, 3], [5, 3]], 1)(p[1], p[2], p[0]);
    },
  });
});

Deno.test("squeeze and unsqueeze: shapes and gradients", async () => {
  const check = (t: Tensor, want: number[]) => {
    if (t.shape.join() !== want.join()) throw new Error(`shape [${t.shape}] != [${want}]`);
    return t;
  };
  const id = (x: Float64Array) => x.slice();
  await checkOp({
    name: "squeeze all",
    inputs: [{ shape: [1, 3, 1, 5] }],
    gpu: (x) => check(nn.squeeze(x), [3, 5]),
    ref: id,
  });
  await checkOp({
    name: "squeeze -2",
    inputs: [{ shape: [1, 3, 1, 5] }],
    gpu: (x) => check(nn.squeeze(x, -2), [1, 3, 5]),
    ref: id,
  });
  await checkOp({
    name: "unsqueeze",
    inputs: [{ shape: [3, 5] }],
    gpu: (x) => check(nn.unsqueeze(nn.unsqueeze(x, -1), 0), [1, 3, 5, 1]),
    ref: id,
  });
});

function expectError(fn: () => unknown, ...parts: string[]): void {
  let message = "";
  try {
    fn();
  } catch (e) {
    message = (e as Error).message;
  }
  for (const p of parts) {
    if (!message.includes(p)) throw new Error(`expected an error with '${p}', got '${message}'`);
  }
}

Deno.test("bad shape-op arguments give errors naming shapes and axes", async () => {
  await initGpu();
  tidy(() => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    const y = tensor(new Float32Array(10), [2, 5]);
    expectError(() => nn.permute(x, [0, 1]), "permute", "[0,1]", "[2,3,4]");
    expectError(() => nn.permute(x, [0, 1, 1]), "permute", "repeat", "[2,3,4]");
    expectError(() => nn.permute(x, [0, 1, 3]), "permute", "axis 3", "[2,3,4]");
    expectError(() => nn.transpose(tensor([1, 2], [2])), "transpose", "[2]");
    expectError(() => nn.slice(x, { axis: 1, start: 4 }), "slice", "start 4", "size 3", "[2,3,4]");
    expectError(() => nn.slice(x, { axis: 2, start: 3, end: 1 }), "slice", "end 1", "start 3");
    expectError(() => nn.slice(x, { axis: -4 }), "slice", "axis -4", "[2,3,4]");
    expectError(() => nn.concat([x, y], 1), "concat", "[2,3,4]", "[2,5]");
    expectError(() => nn.concat([y, tensor(new Float32Array(6), [3, 2])], 1), "axis 1", "[3,2]");
    expectError(() => nn.concat([]), "concat", "at least one");
    expectError(() => nn.stack([y, tensor(new Float32Array(10), [5, 2])]), "stack", "[5,2]");
    expectError(() => nn.stack([y, y], 3), "stack", "axis 3", "[2,5]");
    expectError(() => nn.split(y, 2, 1), "split", "[2,5]", "2 equal");
    expectError(() => nn.split(y, [2, 2], 1), "split", "[2,2]", "[2,5]");
    expectError(() => nn.squeeze(x, 1), "squeeze", "axis 1", "[2,3,4]", "size 3");
    expectError(() => nn.unsqueeze(x, 4), "unsqueeze", "axis 4", "[2,3,4]");
  });
});

Deno.test("_layout: contiguous strides, padding and axis merging", () => {
  assert.deepEqual(contiguousStrides([2, 3, 4]), [12, 4, 1]);
  assert.deepEqual(contiguousStrides([5]), [1]);
  assert.deepEqual(contiguousStrides([]), []);
  assert.equal(MAX_RANK, 8);
  assert.deepEqual(padTo([3, 5]), [3, 5, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(padTo([1, 2, 3], 4), [1, 2, 3, 0]);
  assert.throws(() => padTo(new Array(9).fill(1)), RangeError);
  // Contiguous in both layouts: one run.
  const c = contiguousStrides([2, 3, 4]);
  assert.deepEqual(mergeAxes([2, 3, 4], [c, c]), [{ size: 24, strides: [1, 1] }]);
  // Size-1 axes are dropped; a box of one element has no runs.
  assert.deepEqual(mergeAxes([1, 1], [[1, 1], [1, 1]]), []);
  assert.deepEqual(mergeAxes([2, 1, 3], [[3, 3, 1], [3, 9, 1]]), [{ size: 6, strides: [1, 1] }]);
  // Transposed source: nothing merges.
  assert.deepEqual(mergeAxes([2, 3, 4], [[1, 2, 6], c]), [
    { size: 2, strides: [1, 12] },
    { size: 3, strides: [2, 4] },
    { size: 4, strides: [6, 1] },
  ]);
  // A slice of the last axis ([2,3] of a [2,3,4] tensor written to [2,3,2]): the outer axes merge
  // in the source and in the destination, the inner one does not.
  assert.deepEqual(mergeAxes([2, 3, 2], [c, [6, 2, 1]]), [
    { size: 6, strides: [4, 2] },
    { size: 2, strides: [1, 1] },
  ]);
  // Broadcast layout (stride 0 on a reduced axis) merges only with other stride-0 axes.
  assert.deepEqual(mergeAxes([2, 3, 4], [c, [0, 0, 1]]), [
    { size: 6, strides: [4, 0] },
    { size: 4, strides: [1, 1] },
  ]);
});

Deno.test("slice gradients: disjoint pieces fill one buffer; overlaps, mixed uses and nesting stay exact", async () => {
  await initGpu();
  const { queueStats } = await import("../src/gpu/queue.ts");
  const shape = [2, 12, 3, 5];
  const st = strides(shape);
  const n = numel(shape);
  // Each case: pieces as (start, end) along axis 1 of x, plus an optional direct use of x.
  const cases: { name: string; pieces: [number, number][]; direct: boolean; nested?: boolean }[] = [
    {
      name: "12 one-frame pieces",
      pieces: Array.from({ length: 12 }, (_, i) => [i, i + 1]),
      direct: false,
    },
    { name: "uneven pieces, some frames unused", pieces: [[0, 3], [5, 6], [6, 11]], direct: false },
    { name: "overlapping pieces", pieces: [[0, 7], [4, 12], [5, 6], [9, 10]], direct: false },
    { name: "pieces and a direct use", pieces: [[0, 4], [4, 8]], direct: true },
    { name: "a direct use between pieces", pieces: [[2, 3], [0, 1], [7, 9]], direct: true },
    { name: "pieces of a piece", pieces: [[1, 2], [3, 5]], direct: false, nested: true },
  ];
  for (const [k, c] of cases.entries()) {
    const xd = randn(n, RUN_SEED + 10 * k);
    const ws = c.pieces.map(([a, b], i) =>
      randn(shape[0] * (b - a) * shape[2] * shape[3], RUN_SEED + 10 * k + i + 1)
    );
    const cd = randn(n, RUN_SEED + 10 * k + 9);
    const x = tensor(Float32Array.from(xd), shape, { requiresGrad: true });
    const before = queueStats().dispatches;
    let forward = 0;
    tidy(() => {
      // The nested case slices x[:, 1:7] first and takes its pieces from that.
      const src = c.nested ? nn.slice(x, { axis: 1, start: 1, end: 7 }) : x;
      const off = c.nested ? 1 : 0;
      let loss: Tensor | null = null;
      c.pieces.forEach(([a, b], i) => {
        if (c.direct && i === 1) {
          loss = nn.add(loss!, nn.sum(nn.mul(x, tensor(Float32Array.from(cd), shape))));
        }
        const p = nn.slice(src, { axis: 1, start: a - off, end: b - off });
        const term = nn.sum(nn.mul(p, tensor(Float32Array.from(ws[i]), p.shape)));
        loss = loss ? nn.add(loss, term) : term;
      });
      forward = queueStats().dispatches - before;
      loss!.backward();
    });
    const backward = queueStats().dispatches - before - forward;
    // Reference: each piece's weights scattered into its box, summed; plus c for the direct use.
    const want = new Float64Array(n);
    c.pieces.forEach(([a, b], i) => {
      const box = [shape[0], b - a, shape[2], shape[3]];
      for (let j = 0; j < ws[i].length; j++) {
        const q = coordsOf(j, box);
        want[q[0] * st[0] + (q[1] + a) * st[1] + q[2] * st[2] + q[3]] += ws[i][j];
      }
    });
    if (c.direct) cd.forEach((v, i) => (want[i] += v));
    assertClose(await x.grad!.read(), want, { what: `${c.name}: dx`, rtol: 1e-5, atol: 1e-6 });
    if (c.name === "12 one-frame pieces") {
      // The backward mirrors the forward (per piece: a copy into the one gradient buffer, the
      // gradients of mul and sum; one zero fill). Without the region path it would add 11 zero
      // fills and 11 additions of full-size gradients.
      assert.ok(backward <= forward + 4, `backward ${backward} dispatches, forward ${forward}`);
    }
    x.dispose();
  }
});

/** Zero padding `pads` ([before, after] per leading axis) of a row-major `shape`. */
function padRef(shape: number[], pads: [number, number][]): (x: Float64Array) => Float64Array {
  const full = pads.map(([b, a], i) => [b, a, shape[i]]);
  const out = shape.map((d, i) => d + (full[i] ? full[i][0] + full[i][1] : 0));
  const so = strides(out);
  return (x) => {
    const y = new Float64Array(numel(out));
    for (let i = 0; i < x.length; i++) {
      const c = coordsOf(i, shape);
      y[c.reduce((s, v, a) => s + (v + (full[a] ? full[a][0] : 0)) * so[a], 0)] = x[i];
    }
    return y;
  };
}

Deno.test("pad: zeros before and after each axis, gradient the inner box, errors", async () => {
  const cases: [number[], [number, number][]][] = [
    [[3, 4], [[1, 0], [0, 2]]],
    [[2, 3, 5], [[0, 0], [2, 2], [1, 3]]],
    [[1, 2, 3, 4, 5], [[0, 0], [0, 0], [1, 1]]],
    [[4], [[0, 0]]],
  ];
  for (const [shape, pads] of cases) {
    await checkOp({
      name: `pad ${JSON.stringify(pads)}`,
      inputs: [{ shape }],
      gpu: (x) => nn.pad(x, pads),
      ref: padRef(shape, pads),
    });
  }
  const x = tensor([1, 2], [2]);
  assert.throws(() => nn.pad(x, [[0, 1], [0, 1]]), /pad: 2 axes of padding for shape \[2\]/);
  assert.throws(() => nn.pad(x, [[-1, 0]]), /padding -1 on axis 0 must be a whole number >= 0/);
  x.dispose();
});
