// PyTorch parity: runs STQA's nn ops on the inputs stored in tests/fixtures/torch_fixtures.json
// (written by tests/fixtures/make_torch_fixtures.py with torch 1.13; torch is not needed here)
// and compares the outputs and the gradients of sum(w * out) for every input and parameter
// (batch norm's running statistics excepted: constants, as in torch's inference form) with
// PyTorch's.
//
// Error measure, per tensor: rel = max_i |a_i - b_i| / max(max_i |b_i|, TINY), where a is STQA's
// value and b PyTorch's; every tensor must have rel < 1e-4.

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import { familyTest, initGpu } from "./_helpers.ts";

/** Largest allowed relative error (see the header). */
const MAX_REL = 1e-4;
/** Floor of the denominator, for all-zero reference tensors. */
const TINY = 1e-12;

interface Stored {
  shape: number[];
  data: number[];
}

interface Case {
  op: string;
  seed: number;
  params: Record<string, number | string | boolean>;
  tensors: Record<string, Stored>;
}

const FIXTURES: { torch_version: string; cases: Record<string, Case> } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_fixtures.json", import.meta.url)),
);
// conv2d with groups (depthwise and grouped): tests/fixtures/make_torch_conv_groups.py, same format.
const GROUPS: { cases: Record<string, Case> } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_conv_groups.json", import.meta.url)),
);
const CASES = { ...FIXTURES.cases, ...GROUPS.cases };

/** max|a-b| / max(max|b|, TINY). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = d > diff || Number.isNaN(d) ? d : diff;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, TINY);
}

function check(what: string, got: ArrayLike<number>, shape: readonly number[], want: Stored) {
  if (shape.join(",") !== want.shape.join(",")) {
    throw new Error(`${what}: shape [${shape}], PyTorch [${want.shape}]`);
  }
  if (got.length !== want.data.length) {
    throw new Error(`${what}: ${got.length} values, PyTorch ${want.data.length}`);
  }
  const rel = relErr(got, want.data);
  if (!(rel < MAX_REL)) {
    throw new Error(`${what}: relative error ${rel.toExponential(3)} (limit ${MAX_REL})`);
  }
}

/**
 * Runs `fn` on the case's inputs `names` (each requiring a gradient) and `consts` (constants,
 * such as batch norm's running statistics), back-propagates the stored `w`, and checks the
 * output and every gradient of `names` against PyTorch's.
 */
async function parity(
  name: string,
  names: string[],
  fn: (t: Record<string, Tensor>, params: Case["params"]) => Tensor,
  consts: string[] = [],
): Promise<void> {
  await initGpu();
  const c = CASES[name];
  if (!c) throw new Error(`no fixture named ${name}`);
  const res = tidy(() => {
    const ins: Record<string, Tensor> = {};
    for (const n of [...names, ...consts]) {
      const s = c.tensors[n];
      if (!s) throw new Error(`${name}: no tensor ${n} in the fixture`);
      ins[n] = tensor(s.data, s.shape, { requiresGrad: names.includes(n) });
    }
    const out = fn(ins, c.params);
    out.backward(tensor(c.tensors.w.data, out.shape));
    return { out, ins, grads: names.map((n) => ins[n].grad) };
  });
  try {
    check(`${name}: output`, await res.out.read(), res.out.shape, c.tensors.out);
    for (let i = 0; i < names.length; i++) {
      const g = res.grads[i];
      if (!g) throw new Error(`${name}: ${names[i]} got no gradient`);
      check(
        `${name}: gradient of ${names[i]}`,
        await g.read(),
        g.shape,
        c.tensors[`grad_${names[i]}`],
      );
    }
  } finally {
    res.out.dispose();
    Object.values(res.ins).forEach((t) => t.dispose());
  }
}

/** The fixture names of one op, in file order. */
function casesOf(op: string): string[] {
  const names = Object.keys(CASES).filter((n) => CASES[n].op === op);
  if (names.length === 0) throw new Error(`no fixtures for ${op}`);
  return names;
}

const num = (v: number | string | boolean) => v as number;

Deno.test("torch parity: relErr measures what it says", () => {
  const e = relErr([1, 2.5, -3], [1, 2, -4]);
  if (Math.abs(e - 0.25) > 1e-15) throw new Error(`relErr gave ${e}, expected 0.25`);
  let threw = false;
  try {
    check("self-test", [1, 2, 3.001], [3], { shape: [3], data: [1, 2, 3] });
  } catch {
    threw = true;
  }
  if (!threw) throw new Error("check accepted a relative error of 3.3e-4");
});

// Both kernel families (see familyTest): ResNet-50's geometries (the conv2d_resnet_* cases, no
// bias) included.
for (const name of casesOf("conv2d")) {
  familyTest(`torch parity: ${name}`, async () => {
    const bias = CASES[name].params.bias !== false;
    await parity(
      name,
      bias ? ["x", "weight", "bias"] : ["x", "weight"],
      (t, p) =>
        nn.conv2d(t.x, t.weight, t.bias, { stride: num(p.stride), padding: num(p.padding) }),
    );
  });
}

// conv2d with groups: MobileNetV2's and ConvNeXt's depthwise layers, a channel multiplier, groups
// 2 and 3; both kernel families.
for (const name of casesOf("conv2dGroups")) {
  familyTest(`torch parity: ${name}`, async () => {
    await parity(
      name,
      ["x", "weight", "bias"],
      (t, p) =>
        nn.conv2d(t.x, t.weight, t.bias, {
          stride: num(p.stride),
          padding: num(p.padding),
          groups: num(p.groups),
        }),
    );
  });
}

for (const name of casesOf("matmul")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(name, ["a", "b"], (t) => nn.matmul(t.a, t.b));
  });
}

for (const name of casesOf("linear")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(name, ["x", "weight", "bias"], (t) => nn.linear(t.x, t.weight, t.bias));
  });
}

for (const name of casesOf("upsample2x")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(
      name,
      ["x"],
      (t, p) => nn.upsample2x(t.x, { mode: p.mode as "nearest" | "bilinear" }),
    );
  });
}

for (const name of casesOf("avgPool2d")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(name, ["x"], (t, p) =>
      nn.avgPool2d(t.x, {
        kernel: num(p.kernel),
        stride: num(p.stride),
        padding: num(p.padding),
        countIncludePad: p.count_include_pad as boolean,
      }));
  });
}

for (const name of casesOf("maxPool2d")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(
      name,
      ["x"],
      (t, p) =>
        nn.maxPool2d(t.x, {
          kernel: num(p.kernel),
          stride: num(p.stride),
          padding: num(p.padding),
        }),
    );
  });
}

for (const name of casesOf("adaptiveAvgPool2d")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(name, ["x"], (t, p) => nn.adaptiveAvgPool2d(t.x, [num(p.out_h), num(p.out_w)]));
  });
}

for (const name of casesOf("batchNorm2d")) {
  Deno.test(`torch parity: ${name}`, async () => {
    const affine = CASES[name].params.affine as boolean;
    await parity(
      name,
      affine ? ["x", "weight", "bias"] : ["x"],
      (t, p) =>
        nn.batchNorm2d(t.x, {
          weight: t.weight,
          bias: t.bias,
          runningMean: t.running_mean,
          runningVar: t.running_var,
          eps: num(p.eps),
        }),
      ["running_mean", "running_var"],
    );
  });
}

/** The batch norm of a convBatchNorm case, from its tensors. */
function caseBatchNorm(t: Record<string, Tensor>, p: Case["params"]) {
  return {
    weight: t.bn_weight,
    bias: t.bn_bias,
    runningMean: t.running_mean,
    runningVar: t.running_var,
    eps: num(p.eps),
  };
}

// A convolution then a batch norm (ResNet's stem, and a 3x3 stride-2 layer with a bias): the pair
// against torch (output and every gradient), then the folded convolution (output and input
// gradient), and the folded parameters against torch.nn.utils.fusion.fuse_conv_bn_weights.
for (const name of casesOf("convBatchNorm")) {
  const c = CASES[name];
  const conv = c.params.bias ? ["conv_weight", "conv_bias"] : ["conv_weight"];
  const stats = ["running_mean", "running_var"];
  const geometry = { stride: num(c.params.stride), padding: num(c.params.padding) };
  familyTest(`torch parity: ${name} (conv2d then batchNorm2d)`, async () => {
    await parity(
      name,
      ["x", ...conv, "bn_weight", "bn_bias"],
      (t, p) =>
        nn.batchNorm2d(nn.conv2d(t.x, t.conv_weight, t.conv_bias, geometry), caseBatchNorm(t, p)),
      stats,
    );
  });
  familyTest(`torch parity: ${name} (the folded conv2d)`, async () => {
    await parity(name, ["x"], (t, p) => {
      const f = nn.foldBatchNorm(
        { weight: t.conv_weight, bias: t.conv_bias },
        caseBatchNorm(t, p),
      );
      return nn.conv2d(t.x, f.weight, f.bias, geometry);
    }, [...conv, "bn_weight", "bn_bias", ...stats]);
  });
  Deno.test(`torch parity: ${name} (foldBatchNorm against fuse_conv_bn_weights)`, async () => {
    await initGpu();
    const ins: Record<string, Tensor> = {};
    for (const n of [...conv, "bn_weight", "bn_bias", ...stats]) {
      ins[n] = tensor(c.tensors[n].data, c.tensors[n].shape);
    }
    const f = nn.foldBatchNorm(
      { weight: ins.conv_weight, bias: ins.conv_bias },
      caseBatchNorm(ins, c.params),
    );
    try {
      check(
        `${name}: folded weight`,
        await f.weight.read(),
        f.weight.shape,
        c.tensors.fused_weight,
      );
      check(`${name}: folded bias`, await f.bias.read(), f.bias.shape, c.tensors.fused_bias);
    } finally {
      [...Object.values(ins), f.weight, f.bias].forEach((t) => t.dispose());
    }
  });
}

Deno.test("torch parity: global_mean", async () => {
  await parity("global_mean", ["x"], (t) => nn.globalMeanPool(t.x));
});

Deno.test("torch parity: global_std", async () => {
  await parity("global_std", ["x"], (t) => nn.globalStdPool(t.x));
});

for (const name of casesOf("gruCell")) {
  Deno.test(`torch parity: ${name}`, async () => {
    await parity(
      name,
      ["x", "h", "w_ih", "w_hh", "b_ih", "b_hh"],
      (t) => nn.gruCell(t.x, t.h, { wIh: t.w_ih, wHh: t.w_hh, bIh: t.b_ih, bHh: t.b_hh }),
    );
  });
}
