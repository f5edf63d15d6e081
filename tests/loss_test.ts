// Regression losses: forward against float64 references, gradients to both arguments against
// finite differences, every reduction, and a target that requires no gradient.

import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu } from "./_helpers.ts";

type Reduction = "mean" | "sum" | "none";

const SHAPES = [[7], [3, 5], [2, 3, 7, 5], [2, 3, 61, 67]]; // the last: several partial sums

function lossRef(f: (d: number) => number, reduction: Reduction) {
  return (p: Float64Array, t: Float64Array) => {
    const e = p.map((v, i) => f(v - t[i]));
    if (reduction === "none") return e;
    const s = e.reduce((a, b) => a + b, 0);
    return Float64Array.of(reduction === "mean" ? s / e.length : s);
  };
}

const LOSSES = [
  ["l1Loss", nn.l1Loss, Math.abs],
  ["mseLoss", nn.mseLoss, (d: number) => d * d],
] as const;

for (const [name, op, f] of LOSSES) {
  for (const reduction of ["mean", "sum", "none"] as const) {
    Deno.test(`${name} ${reduction}: forward and gradients to both arguments`, async () => {
      for (const shape of SHAPES) {
        await checkOp({
          name: `${name} ${reduction}`,
          inputs: [{ shape }, { shape }],
          gpu: (p, t) => op(p, t, { reduction }),
          ref: lossRef(f, reduction),
        });
      }
    });
  }

  Deno.test(`${name}: a target (or prediction) without gradient`, async () => {
    for (const reduction of ["mean", "none"] as const) {
      await checkOp({
        name: `${name} ${reduction}, target constant`,
        inputs: [{ shape: [2, 3, 7, 5] }, { shape: [2, 3, 7, 5], grad: false }],
        gpu: (p, t) => op(p, t, { reduction }),
        ref: lossRef(f, reduction),
      });
      await checkOp({
        name: `${name} ${reduction}, prediction constant`,
        inputs: [{ shape: [3, 5], grad: false }, { shape: [3, 5] }],
        gpu: (p, t) => op(p, t, { reduction }),
        ref: lossRef(f, reduction),
      });
    }
  });
}

Deno.test("losses: mean and sum return shape [] and default to the mean", async () => {
  await initGpu();
  const p = tensor([1, 2, 3, 4], [2, 2]);
  const t = tensor([0, 2, 5, 3], [2, 2]);
  const r = tidy(() => ({
    l1: nn.l1Loss(p, t),
    l1s: nn.l1Loss(p, t, { reduction: "sum" }),
    mse: nn.mseLoss(p, t),
  }));
  if (r.l1.shape.length !== 0 || r.mse.shape.length !== 0) throw new Error("expected shape []");
  assertClose(await r.l1.read(), [1], { what: "l1 mean" });
  assertClose(await r.l1s.read(), [4], { what: "l1 sum" });
  assertClose(await r.mse.read(), [1.5], { what: "mse mean" });
  [p, t, r.l1, r.l1s, r.mse].forEach((x) => x.dispose());
});

Deno.test("l1Loss: zero difference has gradient 0, as PyTorch", async () => {
  await initGpu();
  const p = tensor([1, 2, 3], [3], { requiresGrad: true });
  const t = tensor([1, 0, 5], [3]);
  const g = tidy(() => {
    nn.l1Loss(p, t, { reduction: "sum" }).backward();
    return p.grad!;
  });
  assertClose(await g.read(), [0, 1, -1], { what: "l1 gradient" });
  [p, t].forEach((x) => x.dispose());
});

Deno.test("losses: shape mismatch and bad reduction throw", async () => {
  await initGpu();
  const p = tensor([1, 2, 3, 4], [2, 2]);
  const t = tensor([1, 2, 3, 4], [4]);
  const expectThrow = (fn: () => unknown, text: string) => {
    let message = "";
    try {
      fn();
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.includes(text)) throw new Error(`expected "${text}", got "${message}"`);
  };
  expectThrow(() => nn.mseLoss(p, t), "same shape");
  expectThrow(
    () => nn.l1Loss(p, p, { reduction: "max" as unknown as "mean" }),
    "reduction must be",
  );
  [p, t].forEach((x) => x.dispose());
});
