// Activation checkpointing (tensor.ts `checkpoint`): the gradients equal those of the recorded
// graph, for several inputs (some without gradients), chains and nesting, region-writing ops
// inside; the forward records one node and keeps none of the piece's intermediates.

import assert from "assert";
import { initGpu, nn } from "../mod.ts";
import { checkpoint, type Tensor, tensor } from "../src/tensor/tensor.ts";

await initGpu();

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return new Float32Array(n).map(() => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/** A piece with slices (region gradients), a matmul, a broadcast and a nonlinearity. */
function piece(x: Tensor, w: Tensor): Tensor {
  const a = nn.slice(x, { axis: 1, start: 0, end: 3 });
  const b = nn.slice(x, { axis: 1, start: 3, end: 6 });
  const h = nn.tanh(nn.add(nn.matmul(a, w), b));
  return nn.concat([nn.mul(h, x.shape[0]), nn.slice(x, { axis: 1, start: 3 })], 1);
}

async function grads(
  useCheckpoint: boolean,
  nested: boolean,
): Promise<{ x: Float32Array; w: Float32Array; y: Float32Array }> {
  const x = tensor(rand(4 * 6, 1), [4, 6], { requiresGrad: true });
  const w = tensor(rand(3 * 3, 2), [3, 3], { requiresGrad: true });
  const c = tensor(rand(4 * 6, 3), [4, 6]); // no gradient
  let y: Tensor = x;
  for (let k = 0; k < 3; k++) {
    const step = (v: Tensor, ww: Tensor, cc: Tensor) =>
      nn.add(piece(v, ww), nn.mul(cc, 0.1 * (k + 1)));
    const inner = (v: Tensor, ww: Tensor, cc: Tensor) =>
      nested ? checkpoint((a, b, d) => step(a, b, d), [v, ww, cc]) : step(v, ww, cc);
    y = useCheckpoint ? checkpoint(inner, [y, w, c]) : step(y, w, c);
  }
  const loss = nn.sum(nn.square(y));
  const yv = await y.read();
  loss.backward();
  return { x: await x.grad!.read(), w: await w.grad!.read(), y: yv };
}

Deno.test("checkpoint: gradients equal the recorded graph's (chained, nested, mixed inputs)", async () => {
  const want = await grads(false, false);
  for (const nested of [false, true]) {
    const got = await grads(true, nested);
    for (const k of ["y", "x", "w"] as const) {
      want[k].forEach((v, i) =>
        assert.ok(
          Math.abs(got[k][i] - v) <= 1e-5 * Math.max(1, Math.abs(v)),
          `${k}[${i}] ${got[k][i]} vs ${v} (nested ${nested})`,
        )
      );
    }
  }
});

Deno.test("checkpoint: the forward records one node over the inputs", () => {
  const x = tensor(rand(6, 4), [6], { requiresGrad: true });
  const y = checkpoint((v) => nn.tanh(nn.mul(nn.exp(v), 2)), [x]);
  assert.equal(y.node?.name, "checkpoint");
  assert.deepEqual(y.node?.inputs, [x]);
  const z = checkpoint((v) => nn.tanh(v), [tensor(rand(6, 5), [6])]);
  assert.equal(z.node, null); // nothing requires a gradient
  assert.equal(z.requiresGrad, false);
});
