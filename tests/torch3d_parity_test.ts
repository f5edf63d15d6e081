// PyTorch parity of the 3-D ops (nn.conv3d, nn.maxPool3d, nn.avgPool3d) at SlowFast-R50's
// geometries: the inputs stored in tests/fixtures/torch3d_fixtures.json (written by
// tests/fixtures/make_torch3d_fixtures.py with torch 1.13; torch is not needed here), outputs and
// the gradients of sum(w * out) for every input compared with PyTorch's. conv3d runs both as
// routed (conv2d where exact, both kernel families) and on conv3d.wgsl's direct kernels.
//
// Error measure, per tensor: rel = max_i |a_i - b_i| / max(max_i |b_i|, 1e-12), a STQA's value, b
// PyTorch's; every tensor must have rel < 1e-4 (as tests/torch_parity_test.ts).

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import { setConv3dDirect } from "../src/tensor/ops/conv3d.ts";
import { familyTest, initGpu } from "./_helpers.ts";

const MAX_REL = 1e-4;

interface Stored {
  shape: number[];
  data: number[];
}

type V3 = [number, number, number];

interface Case {
  op: string;
  params: { stride: V3; padding: V3; kernel?: V3; bias?: boolean; countIncludePad?: boolean };
  tensors: Record<string, Stored>;
}

const FIXTURES: { cases: Record<string, Case> } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch3d_fixtures.json", import.meta.url)),
);
const CASES = FIXTURES.cases;

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = d > diff || Number.isNaN(d) ? d : diff;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Worst relative error seen per tensor kind, printed at the end of each test (for reports). */
async function parity(name: string, fn: (t: Record<string, Tensor>) => Tensor): Promise<number> {
  await initGpu();
  const c = CASES[name];
  const names = Object.keys(c.tensors).filter((n) => !/^(out|w|grad_.*)$/.test(n));
  const res = tidy(() => {
    const ins: Record<string, Tensor> = {};
    for (const n of names) {
      ins[n] = tensor(c.tensors[n].data, c.tensors[n].shape, { requiresGrad: true });
    }
    const out = fn(ins);
    out.backward(tensor(c.tensors.w.data, out.shape));
    return { out, ins };
  });
  let worst = 0;
  try {
    const check = (what: string, got: Tensor, want: Stored, values: Float32Array) => {
      if (got.shape.join(",") !== want.shape.join(",")) {
        throw new Error(`${name}: ${what} shape [${got.shape}], PyTorch [${want.shape}]`);
      }
      const rel = relErr(values, want.data);
      if (!(rel < MAX_REL)) {
        throw new Error(`${name}: ${what} relative error ${rel.toExponential(3)} (${MAX_REL})`);
      }
      worst = Math.max(worst, rel);
    };
    check("output", res.out, c.tensors.out, await res.out.read());
    for (const n of names) {
      const g = res.ins[n].grad;
      if (!g) throw new Error(`${name}: ${n} got no gradient`);
      check(`gradient of ${n}`, g, c.tensors[`grad_${n}`], await g.read());
    }
  } finally {
    res.out.dispose();
    Object.values(res.ins).forEach((t) => t.dispose());
  }
  return worst;
}

function casesOf(op: string): string[] {
  const names = Object.keys(CASES).filter((n) => CASES[n].op === op);
  if (names.length === 0) throw new Error(`no fixtures for ${op}`);
  return names;
}

const conv = (t: Record<string, Tensor>, p: Case["params"]) =>
  nn.conv3d(t.x, t.weight, t.bias, { stride: p.stride, padding: p.padding });

familyTest("torch parity: conv3d as routed (conv2d where exact)", async () => {
  let worst = 0;
  for (const name of casesOf("conv3d")) {
    worst = Math.max(worst, await parity(name, (t) => conv(t, CASES[name].params)));
  }
  console.log(`conv3d (routed) worst relative error vs torch: ${worst.toExponential(2)}`);
});

Deno.test("torch parity: conv3d on conv3d.wgsl's direct kernels", async () => {
  const before = setConv3dDirect(true);
  try {
    let worst = 0;
    for (const name of casesOf("conv3d")) {
      worst = Math.max(worst, await parity(name, (t) => conv(t, CASES[name].params)));
    }
    console.log(`conv3d (direct) worst relative error vs torch: ${worst.toExponential(2)}`);
  } finally {
    setConv3dDirect(before);
  }
});

Deno.test("torch parity: maxPool3d (ties included) and avgPool3d", async () => {
  for (const op of ["maxPool3d", "avgPool3d"] as const) {
    let worst = 0;
    for (const name of casesOf(op)) {
      const p = CASES[name].params;
      const options = {
        kernel: p.kernel!,
        stride: p.stride,
        padding: p.padding,
        countIncludePad: p.countIncludePad,
      };
      worst = Math.max(worst, await parity(name, (t) => nn[op](t.x, options)));
    }
    console.log(`${op} worst relative error vs torch: ${worst.toExponential(2)}`);
  }
});
