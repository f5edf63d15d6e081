// roll: values against a CPU reference (positive, negative, zero and wrapping shifts, several
// axes, an axis given twice, negative axes, the flattened default) and the gradient against
// finite differences (the opposite roll); torch.roll's values on fixed inputs; errors.

import assert from "assert";
import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu, numel } from "./_helpers.ts";

/** `torch.roll` on the CPU: shifts along axes (normalised), or of the flattened array. */
function rollRef(shape: number[], shifts: number[], axes?: number[]) {
  return (x: Float64Array): Float64Array => {
    if (!axes) {
      const n = x.length;
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) y[(((i + shifts[0]) % n) + n) % n] = x[i];
      return y;
    }
    let cur = x;
    axes.forEach((a, t) => {
      const axis = a < 0 ? a + shape.length : a;
      const size = shape[axis];
      const inner = numel(shape.slice(axis + 1));
      const y = new Float64Array(cur.length);
      for (let i = 0; i < cur.length; i++) {
        const j = Math.floor(i / inner) % size;
        const to = (((j + shifts[t]) % size) + size) % size;
        y[i + (to - j) * inner] = cur[i];
      }
      cur = y;
    });
    return cur;
  };
}

const cases: [number[], number[], number[] | undefined][] = [
  [[7], [3], [0]],
  [[7], [-2], [0]],
  [[7], [7], [0]],
  [[7], [0], [0]],
  [[4, 5], [-1], [1]],
  [[4, 5], [1], [-2]],
  [[2, 8, 8, 3], [-3, -3], [1, 2]],
  [[2, 8, 8, 3], [3, 3], [1, 2]],
  // Swin3D: window 8x7x7 on [D, H, W] of [B, D, H, W, C], shifted by half.
  [[1, 4, 14, 14, 3], [-2, -3, -3], [1, 2, 3]],
  [[3, 4, 5], [7, -9, 0], [0, 1, 2]],
  // An axis given twice: its shifts add.
  [[2, 3, 6], [2, 1], [-1, -1]],
  // The flattened default.
  [[3, 4], [5], undefined],
  [[3, 4], [-13], undefined],
];

Deno.test("roll: values and gradient (the opposite roll)", async () => {
  for (const [shape, shifts, axes] of cases) {
    await checkOp({
      name: `roll [${shape}] by [${shifts}] on ${axes ? `[${axes}]` : "the flattened tensor"}`,
      inputs: [{ shape }],
      gpu: (x) => axes ? nn.roll(x, shifts, axes) : nn.roll(x, shifts[0]),
      ref: rollRef(shape, shifts, axes),
      // A permutation: exact.
      rtol: 0,
      atol: 0,
      maxFd: 32,
    });
  }
});

Deno.test("roll: a number for shifts and axes, a whole turn", async () => {
  await initGpu();
  const x = tensor([0, 1, 2, 3, 4, 5], [2, 3]);
  const ys = [nn.roll(x, 1, 1), nn.roll(x, -1, 0), nn.roll(x, 3, 1)];
  try {
    assert.deepEqual([...await ys[0].read()], [2, 0, 1, 5, 3, 4]);
    assert.deepEqual([...await ys[1].read()], [3, 4, 5, 0, 1, 2]);
    // A whole turn: the same values, in a handle of its own (x may go).
    assert.deepEqual(ys[2].shape, [2, 3]);
    x.dispose();
    assert.deepEqual([...await ys[2].read()], [0, 1, 2, 3, 4, 5]);
  } finally {
    [x, ...ys].forEach((t) => t.dispose());
  }
});

interface Packed {
  shape: number[];
  data: number[];
}

Deno.test("roll: against torch.roll", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/attention_torch.json", import.meta.url)),
  ) as { cases: { op: string; shifts: number[]; axes: number[]; x: Packed; out: Packed }[] };
  const rolls = fixture.cases.filter((k) => k.op === "roll");
  assert.ok(rolls.length >= 5);
  for (const k of rolls) {
    const got = await tidy(() => {
      const x = tensor(Float32Array.from(k.x.data), k.x.shape);
      return nn.roll(x, k.shifts, k.axes).read();
    });
    // 9 significant digits name a float32 exactly.
    assertClose(got, Float32Array.from(k.out.data), {
      rtol: 0,
      atol: 0,
      what: `roll torch [${k.x.shape}] by [${k.shifts}] on [${k.axes}]`,
    });
  }
});

Deno.test("roll: errors", async () => {
  await initGpu();
  tidy(() => {
    const x = tensor(new Float32Array(6), [2, 3]);
    assert.throws(() => nn.roll(x, [1, 2], [0]), /2 shifts \[1,2\] for 1 axes \[0\]/);
    assert.throws(() => nn.roll(x, 1, 2), /axis 2 is out of range for x \[2,3\]/);
    assert.throws(() => nn.roll(x, 1, -3), /axis -3 is out of range/);
    assert.throws(() => nn.roll(x, 0.5, 0), /shifts must be integers/);
    assert.throws(() => nn.roll(x, [1, 1]), /without axes, one shift/);
  });
});
