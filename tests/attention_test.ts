// attention: forward against a float64 reference and the gradients of q, k, v and the bias
// against finite differences, on fresh random inputs (no leading axes to rank 5, Nq != Nk,
// dv != d, biases broadcast as Swin's relative position bias [nH, N, N] and shifted-window mask
// [nW, 1, N, N], several biases, -100 masked entries); the chunked path (maxScoreBytes forced
// small, chunks along inner and outer axes) against the float64 reference and equal to the
// unchunked one; Swin stage 1 at 224x224 (scores of 236 MB, over the 128 MiB binding) against
// the reference on sampled windows; PyTorch's F.softmax(q @ k^T * scale + bias) @ v (float64) on
// fixed inputs: outputs and gradients; errors. The default tests take the fused forward (and the
// fused backward where no bias wants a gradient); others force each path (`fused: false`) on the
// same inputs: shapes with N from 1 to 400, d from 1 to 64, Nq != Nk, biases broadcast several
// ways, -100 masks, rows of large magnitude, other tilings, shapes beyond the fused kernels.

import assert from "assert";
import { nn, noGrad, type Tensor, tensor, tidy } from "../mod.ts";
import {
  attentionChunks,
  fusedAttentionApplies,
  setFusedAttentionTiling,
} from "../src/tensor/ops/attention.ts";
import { assertClose, checkOp, initGpu, numel, randn, withSeed } from "./_helpers.ts";

/** Row-major strides of `shape` broadcast to `to` (0 on broadcast axes). */
function bstrides(shape: number[], to: number[]): number[] {
  const out = new Array(to.length).fill(0);
  let st = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const ax = to.length - shape.length + i;
    out[ax] = shape[i] === 1 ? 0 : st;
    st *= shape[i];
  }
  return out;
}

/**
 * Float64 attention: q [..., nq, d], k [..., nk, d], v [..., nk, dv], biases broadcast to
 * [..., nq, nk]; softmax with the row max subtracted.
 */
function attnRef(
  lead: number[],
  nq: number,
  nk: number,
  d: number,
  dv: number,
  scale: number,
  biasShapes: number[][] = [],
) {
  const scores = [...lead, nq, nk];
  const strides = biasShapes.map((b) => bstrides(b, scores));
  const batch = numel(lead);
  return (q: Float64Array, k: Float64Array, v: Float64Array, ...bs: Float64Array[]) => {
    const y = new Float64Array(batch * nq * dv);
    const row = new Float64Array(nk);
    for (let b = 0; b < batch; b++) {
      // The multi-index of b over lead, for the bias offsets.
      const idx: number[] = [];
      let rest = b;
      for (let i = lead.length - 1; i >= 0; i--) {
        idx[i] = rest % lead[i];
        rest = Math.floor(rest / lead[i]);
      }
      const base = strides.map((st) => idx.reduce((p, ix, i) => p + ix * st[i], 0));
      for (let i = 0; i < nq; i++) {
        let m = -Infinity;
        for (let j = 0; j < nk; j++) {
          let sc = 0;
          for (let t = 0; t < d; t++) sc += q[(b * nq + i) * d + t] * k[(b * nk + j) * d + t];
          sc *= scale;
          bs.forEach((bias, n) => {
            const st = strides[n];
            sc += bias[base[n] + i * st[lead.length] + j * st[lead.length + 1]];
          });
          row[j] = sc;
          m = Math.max(m, sc);
        }
        let sum = 0;
        for (let j = 0; j < nk; j++) {
          row[j] = Math.exp(row[j] - m);
          sum += row[j];
        }
        for (let t = 0; t < dv; t++) {
          let acc = 0;
          for (let j = 0; j < nk; j++) acc += row[j] * v[(b * nk + j) * dv + t];
          y[(b * nq + i) * dv + t] = acc / sum;
        }
      }
    }
    return y;
  };
}

interface Case {
  lead: number[];
  nq: number;
  nk?: number;
  d: number;
  dv?: number;
  biases?: number[][];
  maxScoreBytes?: number;
  /** Passed to nn.attention (default: its own, the fused forward where it applies). */
  fused?: boolean;
}

const name = (c: Case) =>
  `attention lead [${c.lead}] ${c.nq}x${c.nk ?? c.nq} d ${c.d}/${c.dv ?? c.d} bias ${
    JSON.stringify(c.biases ?? [])
  }${c.maxScoreBytes ? ` maxScoreBytes ${c.maxScoreBytes}` : ""}${
    c.fused === false ? " composed" : ""
  }`;

async function check(c: Case, biasGrad = true, scale = 0.35): Promise<void> {
  const nk = c.nk ?? c.nq;
  const dv = c.dv ?? c.d;
  const biases = c.biases ?? [];
  await checkOp({
    name: name(c),
    inputs: [
      { shape: [...c.lead, c.nq, c.d] },
      { shape: [...c.lead, nk, c.d] },
      { shape: [...c.lead, nk, dv] },
      ...biases.map((shape) => ({ shape, grad: biasGrad })),
    ],
    gpu: (q, k, v, ...bias) =>
      nn.attention(q, k, v, {
        scale,
        bias: bias.length === 1 ? bias[0] : bias,
        maxScoreBytes: c.maxScoreBytes,
        fused: c.fused,
      }),
    ref: attnRef(c.lead, c.nq, nk, c.d, dv, scale, biases),
    rtol: 1e-4,
    atol: 1e-5,
    maxFd: 24,
  });
}

Deno.test("attention: forward and gradients of q, k, v (no bias, shapes)", async () => {
  const cases: Case[] = [
    { lead: [], nq: 5, d: 4 },
    { lead: [3], nq: 7, d: 8 },
    { lead: [2, 3], nq: 6, nk: 9, d: 5, dv: 3 },
    { lead: [2, 1, 2], nq: 49, d: 8 },
    { lead: [1], nq: 1, d: 1 },
    { lead: [2], nq: 70, nk: 130, d: 4, dv: 6 },
  ];
  for (const c of cases) await check(c);
});

Deno.test("attention: biases broadcast to the scores, with gradients", async () => {
  const cases: Case[] = [
    { lead: [], nq: 5, d: 4, biases: [[5, 5]] },
    { lead: [2, 3], nq: 7, d: 4, biases: [[7, 7]] },
    // Swin: q [B, nW, nH, N, d], relative position bias [nH, N, N], mask [nW, 1, N, N].
    { lead: [2, 4, 3], nq: 9, d: 4, biases: [[3, 9, 9], [4, 1, 9, 9]] },
    { lead: [2, 4, 3], nq: 9, d: 4, biases: [[4, 3, 9, 9]] },
    { lead: [3, 2], nq: 6, nk: 8, d: 4, biases: [[3, 1, 1, 8], [1, 6, 1]] },
    { lead: [2], nq: 4, d: 4, biases: [[1], [2, 1, 1]] },
  ];
  for (const c of cases) await check(c);
  // A constant bias (no gradient asked for it).
  await check({ lead: [2, 3], nq: 7, d: 4, biases: [[3, 7, 7]] }, false);
});

Deno.test("attention: -100 masked scores (Swin's shifted-window mask)", async () => {
  const lead = [3, 2];
  const n = 16;
  const maskShape = [3, 1, n, n];
  const mask = Array.from({ length: numel(maskShape) }, (_, i) => (i * 7919) % 5 === 0 ? -100 : 0);
  await checkOp({
    name: "attention mask -100",
    inputs: [
      { shape: [...lead, n, 8] },
      { shape: [...lead, n, 8] },
      { shape: [...lead, n, 8] },
      { shape: maskShape, data: mask, grad: false },
    ],
    gpu: (q, k, v, m) => nn.attention(q, k, v, { bias: m }),
    ref: attnRef(lead, n, n, 8, 8, 8 ** -0.5, [maskShape]),
    atol: 1e-5,
    maxFd: 24,
  });
});

Deno.test("attention: the chunked path (maxScoreBytes forced small) against the reference", async () => {
  const nn9 = 4 * 9 * 9; // bytes of one 9x9 score matrix
  const cases: Case[] = [
    // Chunks of 2 along the last leading axis (3 of them: 2, 2, 1... per outer index).
    { lead: [2, 4, 3], nq: 9, d: 4, biases: [[3, 9, 9], [4, 1, 9, 9]], maxScoreBytes: 2 * nn9 },
    // Less than one matrix: one matrix per chunk.
    { lead: [2, 4, 3], nq: 9, d: 4, biases: [[4, 3, 9, 9]], maxScoreBytes: 100 },
    // Chunks along an outer axis (whole inner axes: 7 of the 12 matrices of [4, 3]).
    {
      lead: [3, 4, 3],
      nq: 9,
      d: 4,
      biases: [[3, 1, 1, 9, 9], [4, 1, 9, 9]],
      maxScoreBytes: 30 * nn9,
    },
    { lead: [5], nq: 9, nk: 7, d: 3, dv: 2, biases: [[5, 1, 7]], maxScoreBytes: 2 * 4 * 63 },
  ];
  // The fused forward writes no scores, so only the backward is chunked there: the composed
  // forward too.
  for (const c of cases) for (const fused of [true, false]) await check({ ...c, fused });
});

Deno.test("attention: chunks hold at most maxScoreBytes and cover the rows in order", () => {
  const cases: [number[], number, number, number][] = [
    [[1, 128, 3], 392, 392, 64 * 2 ** 20],
    [[16, 12], 392, 392, 64 * 2 ** 20],
    [[2, 4, 3], 9, 9, 2 * 4 * 81],
    [[3, 4, 3], 9, 9, 30 * 4 * 81],
    [[3, 4, 3], 9, 9, 100],
    [[5], 9, 7, 2 * 4 * 63],
    [[7, 5, 3], 4, 4, 1e9],
  ];
  for (const [lead, nq, nk, bytes] of cases) {
    const parts = attentionChunks(lead, nq, nk, bytes);
    const per = Math.max(1, Math.floor(bytes / (4 * nq * nk)));
    let at = 0;
    for (const c of parts) {
      const rows = c.end - c.start;
      assert.equal(c.start, at, `[${lead}] ${bytes}: chunks in order`);
      assert.ok(rows >= 1 && rows <= per, `[${lead}] ${bytes}: ${rows} matrices > ${per}`);
      assert.equal(numel(c.shape), rows);
      // The box's offset in the leading axes is the chunk's first row.
      const first = c.ranges.reduce((p, r) => p + r.start * numel(lead.slice(r.axis + 1)), 0);
      assert.equal(first, c.start);
      at = c.end;
    }
    assert.equal(at, numel(lead));
    // No more chunks than needed along the split axis (full chunks but the last of each run).
    if (numel(lead) <= per) assert.equal(parts.length, 1);
  }
  assert.equal(attentionChunks([1, 128, 3], 392, 392, 64 * 2 ** 20).length, 4);
  assert.equal(attentionChunks([16, 12], 392, 392, 64 * 2 ** 20).length, 2);
});

Deno.test("attention: chunked equals unchunked (outputs and gradients)", async () => {
  await initGpu();
  const lead = [2, 5, 3];
  const n = 12;
  const d = 8;
  const mk = (shape: number[], seed: number) =>
    tensor(Float32Array.from(randn(numel(shape), seed)), shape, { requiresGrad: true });
  const run = (maxScoreBytes?: number) =>
    tidy(() => {
      const q = mk([...lead, n, d], 1);
      const k = mk([...lead, n, d], 2);
      const v = mk([...lead, n, d], 3);
      const rel = mk([3, n, n], 4);
      const mask = mk([5, 1, n, n], 5);
      const y = nn.attention(q, k, v, { bias: [rel, mask], maxScoreBytes });
      y.backward(tensor(Float32Array.from(randn(y.size, 6)), y.shape));
      const ins = [q, k, v, rel, mask];
      return { values: [y, ...ins.map((t) => t.grad!)], ins };
    });
  const whole = run();
  const dispose = (r: { values: Tensor[]; ins: Tensor[] }) =>
    [...r.values, ...r.ins].forEach((t) => t.dispose());
  const what = ["y", "dq", "dk", "dv", "drel", "dmask"];
  for (const bytes of [4 * n * n, 3 * 4 * n * n, 7 * 4 * n * n, 4 * n * n * 16]) {
    const parts = run(bytes);
    for (let i = 0; i < what.length; i++) {
      const a = await parts.values[i].read();
      const b = await whole.values[i].read();
      assertClose(a, b, {
        rtol: 1e-5,
        atol: 1e-6,
        what: withSeed(`${what[i]} chunks of ${bytes}`),
      });
    }
    dispose(parts);
  }
  dispose(whole);
});

Deno.test("attention: fused and composed forwards against float64 (shapes, broadcasts, masks, large rows)", async () => {
  await initGpu();
  interface FwdCase extends Case {
    /** Multiplies q (scores of that many times more). */
    qScale?: number;
    /** The data of bias n at flat index i (default: normal). */
    bias?: (n: number, i: number) => number;
    /** Tolerances against the float64 reference (default 1e-4, 1e-5). */
    tol?: [number, number];
  }
  const mask = (i: number) => (i * 7919) % 5 === 0 ? -100 : 0;
  const cases: FwdCase[] = [
    { lead: [2], nq: 1, d: 1 },
    { lead: [], nq: 3, nk: 1, d: 2, dv: 5 },
    { lead: [1], nq: 100, nk: 3, d: 64, dv: 1 },
    { lead: [3], nq: 37, nk: 200, d: 7, dv: 5, biases: [[37, 1], [3, 1, 200]] },
    { lead: [2, 3], nq: 5, nk: 6, d: 9, dv: 12, biases: [[5, 6]] },
    // Swin: relative position bias [nH, N, N] and a -100 shifted-window mask [nW, 1, N, N].
    {
      lead: [1, 2, 3],
      nq: 392,
      d: 32,
      biases: [[3, 392, 392], [2, 1, 392, 392]],
      bias: (n, i) => n === 1 ? mask(i) : Math.sin(i),
    },
    {
      lead: [2, 3],
      nq: 400,
      d: 64,
      biases: [[3, 400, 400], [2, 1, 400, 400]],
      bias: (n, i) => n === 1 ? mask(i) : Math.cos(i),
    },
    { lead: [4], nq: 60, nk: 132, d: 48, dv: 40, biases: [[4, 60, 132]] },
    { lead: [2, 2], nq: 17, nk: 9, d: 3, dv: 64, biases: [[2, 1, 1, 9], [17, 1]] },
    // Rows of large magnitude: scores near 1e3 from q, and offsets of 1e4 per row from a bias.
    {
      lead: [2, 2],
      nq: 50,
      nk: 64,
      d: 16,
      qScale: 30,
      biases: [[50, 1], [2, 2, 50, 64]],
      bias: (n, i) => n === 0 ? 1e4 * (i % 7) : mask(i),
      tol: [2e-2, 2e-2],
    },
  ];
  const scale = 0.3;
  let worst = 0;
  for (const [ci, c] of cases.entries()) {
    const nk = c.nk ?? c.nq;
    const dv = c.dv ?? c.d;
    const biases = c.biases ?? [];
    const data = [[...c.lead, c.nq, c.d], [...c.lead, nk, c.d], [...c.lead, nk, dv]].map((sh, i) =>
      randn(numel(sh), 100 * ci + i, i === 0 ? c.qScale ?? 1 : 1)
    );
    const bdata = biases.map((sh, n) =>
      c.bias
        ? Float64Array.from({ length: numel(sh) }, (_, i) => Math.fround(c.bias!(n, i)))
        : randn(numel(sh), 100 * ci + 10 + n)
    );
    const want = attnRef(c.lead, c.nq, nk, c.d, dv, scale, biases)(
      data[0],
      data[1],
      data[2],
      ...bdata,
    );
    const [rtol, atol] = c.tol ?? [1e-4, 1e-5];
    const errs: number[] = [];
    for (const fused of [true, false]) {
      const got = await tidy(() => {
        const [q, k, v] = data.map((x, i) =>
          tensor(
            Float32Array.from(x),
            [
              [...c.lead, c.nq, c.d],
              [...c.lead, nk, c.d],
              [...c.lead, nk, dv],
            ][i],
          )
        );
        const bias = bdata.map((x, n) => tensor(Float32Array.from(x), biases[n]));
        return noGrad(() => nn.attention(q, k, v, { scale, bias, fused })).read();
      });
      assertClose(got, want, {
        rtol,
        atol,
        what: withSeed(`${name(c)}${fused ? " fused" : " composed"} vs float64`),
      });
      let err = 0;
      for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
      errs.push(err);
    }
    if (!c.tol) worst = Math.max(worst, errs[0]);
    else {
      // Large rows: float32 rounds the scores themselves (an ulp of 6e4 is 4e-3), whichever
      // path adds them up; the fused one must not do worse than the composition.
      console.log(
        `${name(c)}: worst absolute error fused ${errs[0].toExponential(2)}, ` +
          `composed ${errs[1].toExponential(2)}`,
      );
      assert.ok(errs[0] <= 2 * errs[1] + 1e-5, `fused ${errs[0]} vs composed ${errs[1]}`);
    }
  }
  console.log(
    `fused attention: worst absolute error ${worst.toExponential(2)} (float64 reference)`,
  );
});

Deno.test("attention: fused backward (biases without gradients) against finite differences", async () => {
  // Biases that want no gradient: the fused backward (attn_bwd_q, attn_bwd_kv), each case also
  // composed; aligned (vec4) and unaligned biases and heads, Nq != Nk, rows past a lane's end.
  const cases: Case[] = [
    { lead: [2, 3], nq: 20, nk: 12, d: 36, dv: 8, biases: [[3, 20, 12], [2, 1, 1, 12]] },
    { lead: [1, 2, 3], nq: 16, d: 8, biases: [[3, 16, 16], [2, 1, 16, 16]] },
    { lead: [3], nq: 9, nk: 7, d: 3, dv: 5, biases: [[9, 1], [3, 1, 7]] },
    { lead: [2], nq: 1, nk: 1, d: 1 },
    { lead: [], nq: 33, nk: 40, d: 64, dv: 64, biases: [[33, 40]] },
    { lead: [2, 2], nq: 13, nk: 8, d: 12, dv: 2 },
  ];
  for (const c of cases) for (const fused of [true, false]) await check({ ...c, fused }, false);
});

Deno.test("attention: fused gradients equal the composed ones at a Swin shape (-100 mask)", async () => {
  await initGpu();
  const [lead, n, d] = [[1, 4, 3], 392, 32];
  const mk = (shape: number[], seed: number, data?: Float64Array) =>
    tensor(Float32Array.from(data ?? randn(numel(shape), seed)), shape, { requiresGrad: true });
  const maskData = Float64Array.from(
    { length: 4 * n * n },
    (_, i) => (i * 7919) % 7 === 0 ? -100 : 0,
  );
  const run = async (fused: boolean) => {
    const [q, k, v] = [1, 2, 3].map((i) => mk([...lead, n, d], i));
    const y = tidy(() => {
      const rel = tensor(Float32Array.from(randn(3 * n * n, 4)), [3, n, n]);
      const mask = tensor(Float32Array.from(maskData), [4, 1, n, n]);
      const y = nn.attention(q, k, v, { bias: [rel, mask], fused });
      y.backward(tensor(Float32Array.from(randn(y.size, 6)), y.shape));
      return y;
    });
    const out = await Promise.all([y, q.grad!, k.grad!, v.grad!].map((t) => t.read()));
    [y, q, k, v].forEach((t) => t.dispose());
    return out;
  };
  const [a, b] = [await run(true), await run(false)];
  for (const [i, what] of ["y", "dq", "dk", "dv"].entries()) {
    assertClose(a[i], b[i], {
      rtol: 1e-4,
      atol: 1e-5,
      what: withSeed(`Swin ${what} fused vs composed`),
    });
  }
});

Deno.test("attention: fused forward with gradients, and shapes that take the composition", async () => {
  // The forward is fused, the bias wants a gradient: the backward recomputes by composition.
  await check({ lead: [2, 3], nq: 20, nk: 12, d: 36, dv: 8, biases: [[3, 20, 12], [2, 1, 1, 12]] });
  // Heads over 64 channels and three biases are composed.
  assert.ok(!fusedAttentionApplies(3, 3, 65, 2, 0));
  assert.ok(!fusedAttentionApplies(5, 5, 4, 4, 3));
  await check({ lead: [2], nq: 3, d: 65, dv: 2 });
  await check({ lead: [2, 3], nq: 5, d: 4, biases: [[5, 5], [3, 1, 5], [2, 1, 1, 5]] });
  // Other tilings of the fused forward (rows per invocation, keys per block) agree.
  const before = setFusedAttentionTiling({ rows: 3, keys: 5 });
  try {
    await check({ lead: [2, 2], nq: 11, nk: 13, d: 6, biases: [[2, 1, 11, 13]] });
  } finally {
    setFusedAttentionTiling(before);
  }
});

Deno.test("attention: Swin stage 1 at 224x224 (scores over the 128 MiB binding)", async () => {
  await initGpu();
  // q [1, 128 windows, 3 heads, 392 tokens, 32]: 59 million scores (236 MB) in one tensor, which
  // no storage binding holds; the default chunks hold 64 MiB. Windows sampled from several
  // chunks are checked against the float64 reference.
  const lead = [1, 128, 3];
  const [n, d] = [392, 32];
  const shape = [...lead, n, d];
  const datas = [1, 2, 3].map((i) => randn(numel(shape), 40 + i));
  const rel = randn(3 * n * n, 44);
  const mask = Float64Array.from(
    { length: 128 * n * n },
    (_, i) => (i * 7919) % 7 === 0 ? -100 : 0,
  );
  const got = await tidy(() => {
    const [q, k, v] = datas.map((x) => tensor(Float32Array.from(x), shape));
    const y = noGrad(() =>
      nn.attention(q, k, v, {
        scale: d ** -0.5,
        bias: [
          tensor(Float32Array.from(rel), [3, n, n]),
          tensor(Float32Array.from(mask), [128, 1, n, n]),
        ],
      })
    );
    return y.read();
  });
  for (const w of [0, 41, 77, 127]) {
    for (const h of [0, 2]) {
      const b = w * 3 + h;
      const sub = (x: Float64Array) => x.subarray(b * n * d, (b + 1) * n * d);
      const ref = attnRef([1], n, n, d, d, d ** -0.5, [[n, n], [n, n]])(
        sub(datas[0]),
        sub(datas[1]),
        sub(datas[2]),
        rel.subarray(h * n * n, (h + 1) * n * n),
        mask.subarray(w * n * n, (w + 1) * n * n),
      );
      assertClose(got.subarray(b * n * d, (b + 1) * n * d), ref, {
        rtol: 1e-4,
        atol: 1e-5,
        what: withSeed(`window ${w} head ${h}`),
      });
    }
  }
});

interface Packed {
  shape: number[];
  data: number[];
}

interface TorchCase {
  op: string;
  scale: number;
  q: Packed;
  k: Packed;
  v: Packed;
  bias?: Packed;
  out: Packed;
  w: Packed;
  grad_q: Packed;
  grad_k: Packed;
  grad_v: Packed;
  grad_bias?: Packed;
}

Deno.test("attention: against PyTorch's F.softmax(q @ k^T * scale + bias) @ v (float64)", async () => {
  await initGpu();
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/attention_torch.json", import.meta.url)),
  ) as { cases: TorchCase[] };
  const cases = fixture.cases.filter((k) => k.op === "attention");
  assert.ok(cases.length >= 4);
  let worstY = 0;
  let worstG = 0;
  for (const c of cases) {
    for (const maxScoreBytes of [undefined, 4 * c.q.shape.at(-2)! ** 2]) {
      const label = `attention torch q [${c.q.shape}] bias [${c.bias?.shape ?? ""}]${
        maxScoreBytes ? " chunked" : ""
      }`;
      const t = (p: Packed) => tensor(Float32Array.from(p.data), p.shape, { requiresGrad: true });
      const [q, k, v] = [t(c.q), t(c.k), t(c.v)];
      const bias = c.bias ? t(c.bias) : undefined;
      const y = tidy(() => {
        const y = nn.attention(q, k, v, { scale: c.scale, bias, maxScoreBytes });
        y.backward(tensor(Float32Array.from(c.w.data), c.w.shape));
        return y;
      });
      try {
        const got = await y.read();
        assertClose(got, c.out.data, { rtol: 1e-4, atol: 1e-5, what: `${label} forward` });
        for (let i = 0; i < got.length; i++) {
          worstY = Math.max(worstY, Math.abs(got[i] - c.out.data[i]));
        }
        const pairs: [string, Tensor | undefined, Packed | undefined][] = [
          ["q", q, c.grad_q],
          ["k", k, c.grad_k],
          ["v", v, c.grad_v],
          ["bias", bias, c.grad_bias],
        ];
        for (const [what, input, want] of pairs) {
          if (!input || !want) continue;
          const g = await input.grad!.read();
          assertClose(g, want.data, { rtol: 1e-4, atol: 1e-5, what: `${label} grad ${what}` });
          for (let i = 0; i < g.length; i++) {
            worstG = Math.max(worstG, Math.abs(g[i] - want.data[i]));
          }
        }
      } finally {
        [q, k, v, bias, y].forEach((x) => x?.dispose());
      }
    }
  }
  console.log(
    `attention vs torch: worst absolute error forward ${worstY.toExponential(2)}, ` +
      `gradients ${worstG.toExponential(2)}`,
  );
});

Deno.test("attention: errors", async () => {
  await initGpu();
  tidy(() => {
    const q = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const k5 = tensor(new Float32Array(2 * 3 * 5), [2, 3, 5]);
    const k1 = tensor(new Float32Array(3 * 4), [1, 3, 4]);
    assert.throws(() => nn.attention(q, k5, q), /q \[2,3,4\], k \[2,3,5\] and v \[2,3,4\]/);
    assert.throws(() => nn.attention(q, k1, k1), /same leading axes/);
    assert.throws(() => nn.attention(tensor([1, 2]), q, q), /rank >= 2/);
    const bad = tensor(new Float32Array(4), [4]);
    assert.throws(
      () => nn.attention(q, q, q, { bias: bad }),
      /bias \[4\] does not broadcast to the scores \[2,3,3\]/,
    );
    const big = tensor(new Float32Array(2 * 2 * 3 * 3), [2, 2, 3, 3]);
    assert.throws(
      () => nn.attention(q, q, q, { bias: big }),
      /bias \[2,2,3,3\] does not broadcast/,
    );
    assert.throws(() => nn.attention(q, q, q, { scale: NaN }), /scale must be finite/);
    assert.throws(() => nn.attention(q, q, q, { maxScoreBytes: 0 }), /maxScoreBytes must be > 0/);
    const e = nn.attention(
      tensor(new Float32Array(0), [0, 3, 4]),
      tensor(new Float32Array(0), [0, 3, 4]),
      tensor(new Float32Array(0), [0, 3, 4]),
    );
    assert.deepEqual(e.shape, [0, 3, 4]);
  });
});
