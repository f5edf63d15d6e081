// 2x upsampling: forward against float64 references of PyTorch's formulas, gradients against
// finite differences, on 1x1, 3x5, 7x4 and 1x6 images.

import { nn, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu } from "./_helpers.ts";

type Dims = [number, number, number, number];

const SHAPES: Dims[] = [[2, 3, 1, 1], [2, 3, 3, 5], [1, 2, 7, 4], [1, 1, 1, 6]];

function nearestRef([n, c, h, w]: Dims) {
  return (x: Float64Array) => {
    const y = new Float64Array(n * c * 4 * h * w);
    let o = 0;
    for (let p = 0; p < n * c; p++) {
      for (let oy = 0; oy < 2 * h; oy++) {
        for (let ox = 0; ox < 2 * w; ox++) {
          y[o++] = x[p * h * w + Math.floor(oy / 2) * w + Math.floor(ox / 2)];
        }
      }
    }
    return y;
  };
}

/** PyTorch's upsample_bilinear2d (align_corners=False, scale 2) in float64. */
function bilinearRef([n, c, h, w]: Dims) {
  const axis = (d: number, size: number) => {
    const src = Math.max(0.5 * (d + 0.5) - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 < size - 1 ? i0 + 1 : i0;
    const l1 = src - i0;
    return { i0, i1, l0: 1 - l1, l1 };
  };
  return (x: Float64Array) => {
    const y = new Float64Array(n * c * 4 * h * w);
    let o = 0;
    for (let p = 0; p < n * c; p++) {
      const at = (iy: number, ix: number) => x[p * h * w + iy * w + ix];
      for (let oy = 0; oy < 2 * h; oy++) {
        const ty = axis(oy, h);
        for (let ox = 0; ox < 2 * w; ox++) {
          const tx = axis(ox, w);
          y[o++] = ty.l0 * (tx.l0 * at(ty.i0, tx.i0) + tx.l1 * at(ty.i0, tx.i1)) +
            ty.l1 * (tx.l0 * at(ty.i1, tx.i0) + tx.l1 * at(ty.i1, tx.i1));
        }
      }
    }
    return y;
  };
}

Deno.test("upsample2x nearest: forward and gradient", async () => {
  for (const shape of SHAPES) {
    await checkOp({
      name: "upsample2x nearest",
      inputs: [{ shape }],
      gpu: (x) => nn.upsample2x(x, { mode: "nearest" }),
      ref: nearestRef(shape),
    });
  }
});

Deno.test("upsample2x bilinear: forward and gradient", async () => {
  for (const shape of SHAPES) {
    await checkOp({
      name: "upsample2x bilinear",
      inputs: [{ shape }],
      gpu: (x) => nn.upsample2x(x, { mode: "bilinear" }),
      ref: bilinearRef(shape),
    });
  }
});

Deno.test("upsample2x bilinear: matches a PyTorch output", async () => {
  await initGpu();
  // torch.nn.functional.interpolate(torch.arange(12.).reshape(1, 1, 3, 4), scale_factor=2,
  // mode="bilinear", align_corners=False), printed by torch 2 (Debian python3-torch).
  const expected = [
    [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3],
    [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4],
    [3, 3.25, 3.75, 4.25, 4.75, 5.25, 5.75, 6],
    [5, 5.25, 5.75, 6.25, 6.75, 7.25, 7.75, 8],
    [7, 7.25, 7.75, 8.25, 8.75, 9.25, 9.75, 10],
    [8, 8.25, 8.75, 9.25, 9.75, 10.25, 10.75, 11],
  ].flat();
  const x = tensor(Array.from({ length: 12 }, (_, i) => i), [1, 1, 3, 4]);
  const y = tidy(() => nn.upsample2x(x, { mode: "bilinear" }));
  assertClose(await y.read(), expected, { rtol: 0, atol: 1e-6, what: "bilinear 3x4" });
  [x, y].forEach((t) => t.dispose());
});

Deno.test("upsample2x: the gradient of a sum is 4 for every input", async () => {
  await initGpu();
  // Along each axis the 2n outputs read their taps with weights summing to 1, and every input,
  // edges included, gets total weight 2 (edge row 0: 1 + 0.75 + 0.25), so d sum(y) / dx = 2 * 2.
  const x = tensor(new Float32Array(15), [1, 1, 3, 5], { requiresGrad: true });
  for (const mode of ["nearest", "bilinear"] as const) {
    const g = tidy(() => {
      nn.sum(nn.upsample2x(x, { mode })).backward();
      return x.grad!;
    });
    assertClose(await g.read(), new Array(15).fill(4), { what: `${mode} gradient of a sum` });
    g.dispose();
    x.grad = null;
  }
  x.dispose();
});

Deno.test("upsample2x: rejects bad input", async () => {
  await initGpu();
  const x = tensor([1, 2, 3], [1, 3]);
  let message = "";
  try {
    nn.upsample2x(x);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("NCHW")) throw new Error(`unexpected message: ${message}`);
  x.dispose();
});
