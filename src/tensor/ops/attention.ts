/**
 * Scaled dot-product attention, `softmax(scale * q k^T + bias) v`, for window attention such as
 * the Swin family's. Where the shapes allow (heads of at most 64 channels, at most two biases), a
 * fused kernel (attention.wgsl) computes each query row's scores, softmax and weighted sum of v
 * without writing the scores, and a fused backward (two passes: query rows, then key rows)
 * recomputes them row by row. Otherwise, and for a bias gradient, the op is composed from
 * matmul.ts, elementwise.ts and softmax.ts in chunks of the leading axes so that no score buffer
 * outgrows a storage binding (lavapipe: 128 MiB); its backward recomputes each chunk's weights
 * rather than keeping them.
 *
 * @module
 */

import { getGpu } from "../../gpu/device.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, noGrad, record, type Shape, sizeOf, type Tensor, tensor } from "../tensor.ts";
import { ATTENTION, ATTENTION_BWD_KV, ATTENTION_BWD_Q } from "./_kernels.ts";
import { add, broadcastShapes, mul } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { sumTo } from "./reduce.ts";
import { concat, slice, type SliceRange } from "./shape.ts";
import { softmax, softmaxLastBackward } from "./softmax.ts";

/** Options of {@link attention}. */
export interface AttentionOptions {
  /** Multiplies `q k^T` (default `1 / sqrt(d)`, d the last axis of `q`). */
  scale?: number;
  /**
   * Added to the scaled scores: one tensor or several (added together, so that e.g. Swin's
   * relative position bias `[nH, N, N]` and shifted-window mask `[nW, 1, N, N]` need not be
   * summed into one large tensor first), each broadcastable (NumPy rules) to the scores
   * `[..., Nq, Nk]`. Gradients flow to a bias that requires one.
   */
  bias?: Tensor | readonly Tensor[];
  /**
   * The most bytes of scores (`[..., Nq, Nk]` float32) one chunk may hold (default 64 MiB): the
   * leading axes are processed in chunks of at most this many (at least one `[Nq, Nk]` matrix
   * per chunk). Lower it to force chunking (tests).
   */
  maxScoreBytes?: number;
  /**
   * Whether the forward may run fused (attention.wgsl: one dispatch, no scores written), which
   * it does where {@link fusedAttentionApplies}; default true. Its backward is fused as well
   * unless a bias wants a gradient (then the chunked composition recomputes the weights).
   * `false` forces the chunked composition, forward and backward (tests, benches).
   */
  fused?: boolean;
}

/** The largest `d` and `dv` of the fused forward (each lane keeps its rows in registers). */
const FUSED_MAX_DIM = 64;
/**
 * The most keys of the fused forward: its one loop runs over blocks of the keys (`nk / 8`
 * iterations with the default tiling, `nk` with blocks of 1), within a LOOP_BUDGET-style bound
 * (lavapipe ends loops after 65535 iterations).
 */
const FUSED_MAX_KEYS = 16384;
/** The most matrices one fused dispatch takes (a 2-D grid of workgroups). */
const FUSED_MAX_BATCH = 65535 * 65535;

/**
 * Whether {@link attention}'s fused forward (attention.wgsl) takes these shapes: at most two
 * biases, `d` and `dv` at most 64, at most 16384 keys. Other shapes take the chunked
 * composition.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { fusedAttentionApplies } from "./attention.ts";
 * assert.ok(fusedAttentionApplies(392, 392, 32, 32, 2)); // Swin-T's windows of 8x7x7
 * assert.ok(!fusedAttentionApplies(392, 392, 96, 96, 0)); // heads over 64 channels
 * assert.ok(!fusedAttentionApplies(4, 20000, 32, 32, 0)); // too many keys
 * ```
 */
export function fusedAttentionApplies(
  nq: number,
  nk: number,
  d: number,
  dv: number,
  biases: number,
): boolean {
  return biases <= 2 && nq > 0 && nk > 0 && nk <= FUSED_MAX_KEYS && d > 0 && dv > 0 &&
    d <= FUSED_MAX_DIM && dv <= FUSED_MAX_DIM && nq <= 65535 * 64;
}

/**
 * Query rows per invocation and keys per block of the fused forward (see attention.wgsl), or null
 * for the defaults: 8 rows when `d` and `dv` are at most 32, else 4, at most `nq`; 8 keys.
 */
let fusedTiling: { rows: number; keys: number } | null = null;

/**
 * Sets the fused forward's query rows per invocation and keys per softmax block (`null`: the
 * defaults, 8 rows for heads of at most 32 channels, else 4, and 8 keys); returns the previous
 * setting. For benches (larger tiles: more FMAs per loaded value, more registers).
 *
 * @example
 * ```ts
 * import { setFusedAttentionTiling } from "./attention.ts";
 * const before = setFusedAttentionTiling({ rows: 4, keys: 4 });
 * setFusedAttentionTiling(before);
 * ```
 */
export function setFusedAttentionTiling(
  t: { rows: number; keys: number } | null,
): { rows: number; keys: number } | null {
  if (t && ![t.rows, t.keys].every((x) => Number.isInteger(x) && x >= 1 && x <= 16)) {
    throw new RangeError(
      `attention tiling: rows and keys must be whole numbers in 1..16, got ${JSON.stringify(t)}`,
    );
  }
  const before = fusedTiling;
  fusedTiling = t && { ...t };
  return before;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** Element `o + e` of the vec4 array `x4`, as a scalar. */
const el = (x: string, o: string, e: number) => `${x}4[(${o} + ${e}u) >> 2u][(${o} + ${e}u) & 3u]`;
/**
 * Elements `4c .. 4c + 3` of the row of `n` elements at offset `o` of `x4`: one vec4 load when
 * `n % 4 == 0` (every row then starts on a vec4), else element by element (zeros past `n`).
 */
const ld = (x: string, o: string, c: number, n: number) =>
  n % 4 === 0
    ? `${x}4[(${o} >> 2u) + ${c}u]`
    : `vec4<f32>(${range(4).map((t) => 4 * c + t < n ? el(x, o, 4 * c + t) : "0.0").join(", ")})`;
/** Stores the vec4 `val` as elements `4c ..` of the row of `n` elements at `o` of `x4`. */
const st = (x: string, o: string, c: number, n: number, val: string): string[] =>
  n % 4 === 0
    ? [`${x}4[(${o} >> 2u) + ${c}u] = ${val};`]
    : range(4).filter((t) => 4 * c + t < n).map((t) => `${el(x, o, 4 * c + t)} = (${val})[${t}];`);
/** The sum of a vec4 expression's components. */
const hsum = (t: string) => `dot(${t}, vec4<f32>(1.0))`;

/**
 * The unrolled statements of attention.wgsl for `d`, `dv`, `nbias` biases, `rows` query rows per
 * invocation and blocks of `keys` keys: named vec4 variables (llvmpipe keeps dynamically indexed
 * private arrays in memory). A row of `n` elements at offset `o` is read as vec4s `x4[o / 4 + c]`
 * when `n % 4 == 0` (every row then starts on a vec4), else element by element (zeros past `n`).
 */
function fusedSource(
  d: number,
  dv: number,
  nbias: number,
  rows: number,
  keys: number,
  bvec: readonly boolean[],
): Record<string, string> {
  const [d4, v4] = [Math.ceil(d / 4), Math.ceil(dv / 4)];
  const R = range(rows);
  const U = range(keys);
  const setup: string[] = [];
  for (const r of R) {
    setup.push(
      `  let i_${r} = min(i0 + ${r}u, nq - 1u);`,
      `  let qo_${r} = (b * nq + i_${r}) * ${d}u;`,
    );
    for (const c of range(d4)) {
      setup.push(`  let q_${r}_${c} = ${ld("q", `qo_${r}`, c, d)} * params.scale;`);
    }
    for (const c of range(v4)) setup.push(`  var a_${r}_${c} = vec4<f32>();`);
    setup.push(`  var m_${r} = LOWEST;`, `  var l_${r} = 0.0;`);
    if (nbias > 0) setup.push(`  let o1_${r} = offs[2u * b] + i_${r} * params.s1i;`);
    if (nbias > 1) setup.push(`  let o2_${r} = offs[2u * b + 1u] + i_${r} * params.s2i;`);
  }
  const block: string[] = [];
  const ind = "    ";
  // Biases read as vec4s along the keys (bvec[n]): 4 keys per load, clamped to the row's last
  // quad (past Nk the scores are LOWEST anyway).
  for (const n of range(nbias)) {
    if (!bvec[n]) continue;
    for (const r of R) {
      for (const w of range(keys / 4)) {
        block.push(
          `${ind}let bv${n + 1}_${r}_${w} = bias${n + 1}v[(o${n + 1}_${r} + min(j0 + ${
            4 * w
          }u, nk - 4u)) >> 2u];`,
        );
      }
    }
  }
  const biasAt = (n: number, r: number, u: number) =>
    bvec[n]
      ? `bv${n + 1}_${r}_${u >> 2}[${u & 3}]`
      : `bias${n + 1}[o${n + 1}_${r} + j_${u} * params.s${n + 1}j]`;
  for (const u of U) {
    block.push(
      `${ind}let j_${u} = min(j0 + ${u}u, nk - 1u);`,
      `${ind}let ko_${u} = kb + j_${u} * ${d}u;`,
    );
    for (const c of range(d4)) block.push(`${ind}let k_${u}_${c} = ${ld("k", `ko_${u}`, c, d)};`);
    for (const r of R) {
      const t = range(d4).map((c) => `q_${r}_${c} * k_${u}_${c}`).join(" + ");
      block.push(`${ind}let t_${r}_${u} = ${t};`);
      let sc = `t_${r}_${u}.x + t_${r}_${u}.y + t_${r}_${u}.z + t_${r}_${u}.w`;
      for (const n of range(nbias)) sc += ` + ${biasAt(n, r, u)}`;
      block.push(`${ind}let s_${r}_${u} = select(LOWEST, ${sc}, j0 + ${u}u < nk);`);
    }
  }
  for (const r of R) {
    const mx = U.map((u) => `s_${r}_${u}`).reduce((a, x) => `max(${a}, ${x})`, `m_${r}`);
    block.push(`${ind}let mn_${r} = ${mx};`, `${ind}let c_${r} = exp(m_${r} - mn_${r});`);
    block.push(`${ind}m_${r} = mn_${r};`);
    for (const c of range(v4)) block.push(`${ind}a_${r}_${c} = a_${r}_${c} * c_${r};`);
    for (const u of U) block.push(`${ind}let p_${r}_${u} = exp(s_${r}_${u} - mn_${r});`);
    block.push(`${ind}l_${r} = l_${r} * c_${r} + ${U.map((u) => `p_${r}_${u}`).join(" + ")};`);
  }
  for (const u of U) {
    block.push(`${ind}let vo_${u} = vb + j_${u} * ${dv}u;`);
    for (const c of range(v4)) {
      block.push(`${ind}let v_${u}_${c} = ${ld("v", `vo_${u}`, c, dv)};`);
      for (const r of R) block.push(`${ind}a_${r}_${c} = a_${r}_${c} + p_${r}_${u} * v_${u}_${c};`);
    }
  }
  const store: string[] = [];
  for (const r of R) {
    store.push(`  if (live && i0 + ${r}u < nq) {`, `    let inv = 1.0 / l_${r};`);
    store.push(`    let oo = (b * nq + i0 + ${r}u) * ${dv}u;`);
    for (const c of range(v4)) {
      if (dv % 4 === 0) store.push(`    out4[(oo >> 2u) + ${c}u] = a_${r}_${c} * inv;`);
      else {
        for (const t of range(4).filter((t) => 4 * c + t < dv)) {
          store.push(`    ${el("out", "oo", 4 * c + t)} = a_${r}_${c}[${t}] * inv;`);
        }
      }
    }
    store.push(`  }`);
  }
  return {
    D: d,
    DV: dv,
    R: rows,
    KB: keys,
    SETUP: setup.join("\n"),
    BLOCK: block.join("\n"),
    STORE: store.join("\n"),
  } as unknown as Record<string, string>;
}

/**
 * The bias offsets of the fused kernels: per matrix of the flattened `lead` and bias n,
 * `offs[2 b + n]`; the biases' strides along the query and key axes (`strides[2 n]`,
 * `strides[2 n + 1]`, 0 where broadcast); and whether bias n can be read as vec4s along the keys
 * (contiguous along them, every row starting on a vec4).
 */
function biasTable(
  biases: readonly Tensor[],
  lead: readonly number[],
  nk: number,
): { offs: Uint32Array<ArrayBuffer>; strides: number[]; aligned: boolean[] } {
  const batch = sizeOf(lead);
  const rank = lead.length + 2;
  const offs = new Uint32Array(2 * batch);
  const strides: number[] = [];
  biases.forEach((bias, n) => {
    const padded = [...Array(rank - bias.rank).fill(1), ...bias.shape];
    const bst = padded.map((size, a) => size === 1 ? 0 : sizeOf(padded.slice(a + 1)));
    for (let b = 0; b < batch; b++) {
      let rest = b;
      let off = 0;
      for (let a = lead.length - 1; a >= 0; a--) {
        off += (rest % lead[a]) * bst[a];
        rest = Math.floor(rest / lead[a]);
      }
      offs[2 * b + n] = off;
    }
    strides.push(bst[rank - 2], bst[rank - 1]);
  });
  while (strides.length < 4) strides.push(0);
  const aligned = biases.map((_, n) =>
    nk % 4 === 0 && strides[2 * n + 1] === 1 && strides[2 * n] % 4 === 0 &&
    offs.every((o, i) => i % 2 !== n || o % 4 === 0)
  );
  return { offs, strides, aligned };
}

/** Workgroup size and count along x for `lanes` invocations per matrix (whole groups of 8). */
function lanesGrid(lanes: number): [number, number] {
  const tiles = Math.ceil(lanes / 64);
  const wg = Math.min(64, 8 * Math.ceil(Math.ceil(lanes / tiles) / 8));
  return [wg, Math.ceil(lanes / wg)];
}

/**
 * The fused forward (attention.wgsl) over the flattened leading axes `lead`: one dispatch, no
 * scores. Each bias is read through its broadcast strides (an offset per matrix in a small u32
 * table, strides along the query and key axes). Records nothing.
 */
function fusedForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  biases: readonly Tensor[],
  lead: readonly number[],
  dims: { nq: number; nk: number; d: number; dv: number },
  scale: number,
  outShape: Shape,
): Tensor {
  const { nq, nk, d, dv } = dims;
  const batch = sizeOf(lead);
  const { offs, strides, aligned } = biasTable(biases, lead, nk);
  const { rows, keys } = fusedTiling ??
    { rows: Math.min(Math.max(d, dv) <= 32 ? 8 : 4, nq), keys: 8 };
  // vec4 bias loads along blocks of keys.
  const bvec = aligned.map((a) => a && keys % 4 === 0);
  // Invocations per matrix, in as few workgroups of at most 64 as can be, rounded up to whole
  // groups of 8 lanes (392 rows, 4 per lane: 98 lanes, 2 workgroups of 56).
  const [wg, gx] = lanesGrid(Math.ceil(nq / rows));
  const out = empty(outShape);
  const table = tensor(new Float32Array(offs.buffer), [offs.length]);
  const [gy, gz] = grid1d(batch, 1);
  dispatch({
    op: "attention",
    kernel: ATTENTION,
    entry: "attn_fwd",
    defines: { WG: wg, ...fusedSource(d, dv, biases.length, rows, keys, bvec) },
    ints: [nq, nk, batch, ...strides],
    floats: [scale],
    workgroups: [gx, gy, gz],
  }, [
    q.buffer,
    k.buffer,
    v.buffer,
    out.buffer,
    // Only the bindings the specialisation uses (the pipeline's layout is derived from them).
    ...(biases.length ? [table.buffer, ...biases.map((b) => b.buffer)] : []),
  ]);
  // The pool keeps a buffer released before the submit away from uploads until then.
  table.dispose();
  return out;
}

/** Query (or key) rows per invocation of the fused backward (null: 4). */
let fusedBackwardRows: number | null = null;

/**
 * Sets the rows per invocation of the fused backward's two passes (`null`: 4); returns the
 * previous setting. For benches and tests.
 *
 * @example
 * ```ts
 * import { setFusedAttentionBackwardRows } from "./attention.ts";
 * const before = setFusedAttentionBackwardRows(2);
 * setFusedAttentionBackwardRows(before);
 * ```
 */
export function setFusedAttentionBackwardRows(rows: number | null): number | null {
  if (rows !== null && !(Number.isInteger(rows) && rows >= 1 && rows <= 16)) {
    throw new RangeError(`attention backward rows must be a whole number in 1..16, got ${rows}`);
  }
  const before = fusedBackwardRows;
  fusedBackwardRows = rows;
  return before;
}

/** The prologue of the backward entry points (as attn_fwd's). */
const BWD_HEAD = `  let bw = wid.y + wid.z * nwg.y;
  let live = bw < params.batch;
  let b = min(bw, params.batch - 1u);
  let nq = params.nq;
  let nk = params.nk;
  let r0 = (wid.x * WG + lid) * R;`;

/**
 * The body of attn_bwd_q: `rows` query rows per invocation, keys in blocks of `keys`.
 */
function bwdQSource(
  d: number,
  dv: number,
  nbias: number,
  rows: number,
  keys: number,
  bvec: readonly boolean[],
): string {
  const [d4, v4] = [Math.ceil(d / 4), Math.ceil(dv / 4)];
  const R = range(rows);
  const U = range(keys);
  const L: string[] = [BWD_HEAD, `  let kb = b * nk * ${d}u;`, `  let vb = b * nk * ${dv}u;`];
  for (const r of R) {
    L.push(`  let i_${r} = min(r0 + ${r}u, nq - 1u);`);
    L.push(
      `  let qo_${r} = (b * nq + i_${r}) * ${d}u;`,
      `  let go_${r} = (b * nq + i_${r}) * ${dv}u;`,
    );
    for (const c of range(d4)) {
      L.push(`  let q_${r}_${c} = ${ld("q", `qo_${r}`, c, d)} * params.scale;`);
    }
    for (const c of range(v4)) L.push(`  let g_${r}_${c} = ${ld("g", `go_${r}`, c, dv)};`);
    const del = range(v4).map((c) => `g_${r}_${c} * ${ld("o", `go_${r}`, c, dv)}`).join(" + ");
    L.push(`  let del_${r} = ${hsum(del)};`);
    for (const c of range(d4)) L.push(`  var dq_${r}_${c} = vec4<f32>();`);
    L.push(`  var m_${r} = LOWEST;`, `  var l_${r} = 0.0;`);
    for (const n of range(nbias)) {
      L.push(`  let o${n + 1}_${r} = offs[2u * b + ${n}u] + i_${r} * params.s${n + 1}i;`);
    }
  }
  /** The block's scores s_r_u (LOWEST past nk), with its k_u_c loaded. */
  const scores = (ind: string) => {
    const out: string[] = [];
    for (const n of range(nbias)) {
      if (!bvec[n]) continue;
      for (const r of R) {
        for (const w of range(keys / 4)) {
          out.push(
            `${ind}let bv${n + 1}_${r}_${w} = bias${n + 1}v[(o${n + 1}_${r} + min(j0 + ${
              4 * w
            }u, nk - 4u)) >> 2u];`,
          );
        }
      }
    }
    for (const u of U) {
      out.push(
        `${ind}let j_${u} = min(j0 + ${u}u, nk - 1u);`,
        `${ind}let ko_${u} = kb + j_${u} * ${d}u;`,
      );
      for (const c of range(d4)) out.push(`${ind}let k_${u}_${c} = ${ld("k", `ko_${u}`, c, d)};`);
      for (const r of R) {
        let sc = hsum(range(d4).map((c) => `q_${r}_${c} * k_${u}_${c}`).join(" + "));
        for (const n of range(nbias)) {
          sc += bvec[n]
            ? ` + bv${n + 1}_${r}_${u >> 2}[${u & 3}]`
            : ` + bias${n + 1}[o${n + 1}_${r} + j_${u} * params.s${n + 1}j]`;
        }
        out.push(`${ind}let s_${r}_${u} = select(LOWEST, ${sc}, j0 + ${u}u < nk);`);
      }
    }
    return out;
  };
  const ind = "    ";
  L.push(`  for (var j0 = 0u; j0 < nk; j0 = j0 + KB) {`, ...scores(ind));
  for (const r of R) {
    const mx = U.map((u) => `s_${r}_${u}`).reduce((a, x) => `max(${a}, ${x})`, `m_${r}`);
    L.push(`${ind}let mn_${r} = ${mx};`);
    L.push(
      `${ind}l_${r} = l_${r} * exp(m_${r} - mn_${r}) + ${
        U.map((u) => `exp(s_${r}_${u} - mn_${r})`).join(" + ")
      };`,
    );
    L.push(`${ind}m_${r} = mn_${r};`);
  }
  L.push(`  }`);
  for (const r of R) L.push(`  let lse_${r} = m_${r} + log(l_${r});`);
  L.push(`  for (var j0 = 0u; j0 < nk; j0 = j0 + KB) {`, ...scores(ind));
  for (const u of U) {
    L.push(`${ind}let vo_${u} = vb + j_${u} * ${dv}u;`);
    for (const c of range(v4)) L.push(`${ind}let v_${u}_${c} = ${ld("v", `vo_${u}`, c, dv)};`);
    for (const r of R) {
      L.push(`${ind}let p_${r}_${u} = exp(s_${r}_${u} - lse_${r});`);
      const dp = hsum(range(v4).map((c) => `g_${r}_${c} * v_${u}_${c}`).join(" + "));
      L.push(`${ind}let ds_${r}_${u} = p_${r}_${u} * (${dp} - del_${r});`);
      for (const c of range(d4)) {
        L.push(`${ind}dq_${r}_${c} = dq_${r}_${c} + ds_${r}_${u} * k_${u}_${c};`);
      }
    }
  }
  L.push(`  }`);
  for (const r of R) {
    L.push(
      `  if (live && r0 + ${r}u < nq) {`,
      `    let row = b * nq + r0 + ${r}u;`,
      `    let qo = row * ${d}u;`,
    );
    for (const c of range(d4)) {
      L.push(...st("dq", "qo", c, d, `dq_${r}_${c} * params.scale`).map((x) => `    ${x}`));
    }
    L.push(`    stats[2u * row] = lse_${r};`, `    stats[2u * row + 1u] = del_${r};`, `  }`);
  }
  return L.join("\n");
}

/**
 * The body of attn_bwd_kv: `rows` key rows per invocation, queries in blocks of `keys`.
 */
function bwdKVSource(
  d: number,
  dv: number,
  nbias: number,
  rows: number,
  keys: number,
  bvec: readonly boolean[],
): string {
  const [d4, v4] = [Math.ceil(d / 4), Math.ceil(dv / 4)];
  const R = range(rows);
  const U = range(keys);
  const L: string[] = [BWD_HEAD];
  for (const r of R) {
    L.push(`  let j_${r} = min(r0 + ${r}u, nk - 1u);`);
    L.push(
      `  let ko_${r} = (b * nk + j_${r}) * ${d}u;`,
      `  let vo_${r} = (b * nk + j_${r}) * ${dv}u;`,
    );
    for (const c of range(d4)) {
      L.push(`  let k_${r}_${c} = ${ld("k", `ko_${r}`, c, d)} * params.scale;`);
    }
    for (const c of range(v4)) L.push(`  let v_${r}_${c} = ${ld("v", `vo_${r}`, c, dv)};`);
    for (const c of range(d4)) L.push(`  var dk_${r}_${c} = vec4<f32>();`);
    for (const c of range(v4)) L.push(`  var dv_${r}_${c} = vec4<f32>();`);
  }
  const ind = "    ";
  L.push(`  for (var i0 = 0u; i0 < nq; i0 = i0 + KB) {`);
  for (const u of U) {
    L.push(`${ind}let i_${u} = min(i0 + ${u}u, nq - 1u);`, `${ind}let row_${u} = b * nq + i_${u};`);
    L.push(`${ind}let qo_${u} = row_${u} * ${d}u;`, `${ind}let go_${u} = row_${u} * ${dv}u;`);
    for (const c of range(d4)) L.push(`${ind}let q_${u}_${c} = ${ld("q", `qo_${u}`, c, d)};`);
    for (const c of range(v4)) L.push(`${ind}let g_${u}_${c} = ${ld("g", `go_${u}`, c, dv)};`);
    L.push(
      `${ind}let lse_${u} = stats[2u * row_${u}];`,
      `${ind}let del_${u} = stats[2u * row_${u} + 1u];`,
    );
    for (const n of range(nbias)) {
      L.push(`${ind}let o${n + 1}_${u} = offs[2u * b + ${n}u] + i_${u} * params.s${n + 1}i;`);
      if (bvec[n]) {
        for (const w of range(rows / 4)) {
          L.push(
            `${ind}let bv${n + 1}_${u}_${w} = bias${n + 1}v[(o${n + 1}_${u} + min(r0 + ${
              4 * w
            }u, nk - 4u)) >> 2u];`,
          );
        }
      }
    }
    for (const r of R) {
      let sc = hsum(range(d4).map((c) => `q_${u}_${c} * k_${r}_${c}`).join(" + "));
      for (const n of range(nbias)) {
        sc += bvec[n]
          ? ` + bv${n + 1}_${u}_${r >> 2}[${r & 3}]`
          : ` + bias${n + 1}[o${n + 1}_${u} + j_${r} * params.s${n + 1}j]`;
      }
      L.push(`${ind}let p_${r}_${u} = select(0.0, exp(${sc} - lse_${u}), i0 + ${u}u < nq);`);
      const dp = hsum(range(v4).map((c) => `g_${u}_${c} * v_${r}_${c}`).join(" + "));
      L.push(`${ind}let ds_${r}_${u} = p_${r}_${u} * (${dp} - del_${u});`);
      for (const c of range(v4)) {
        L.push(`${ind}dv_${r}_${c} = dv_${r}_${c} + p_${r}_${u} * g_${u}_${c};`);
      }
      for (const c of range(d4)) {
        L.push(`${ind}dk_${r}_${c} = dk_${r}_${c} + ds_${r}_${u} * q_${u}_${c};`);
      }
    }
  }
  L.push(`  }`);
  for (const r of R) {
    L.push(`  if (live && r0 + ${r}u < nk) {`, `    let row = b * nk + r0 + ${r}u;`);
    L.push(`    let ko = row * ${d}u;`, `    let vo = row * ${dv}u;`);
    for (const c of range(d4)) {
      L.push(...st("dk", "ko", c, d, `dk_${r}_${c} * params.scale`).map((x) => `    ${x}`));
    }
    for (const c of range(v4)) {
      L.push(...st("dv", "vo", c, dv, `dv_${r}_${c}`).map((x) => `    ${x}`));
    }
    L.push(`  }`);
  }
  return L.join("\n");
}

/**
 * The fused backward (attention.wgsl, attn_bwd_q then attn_bwd_kv): `dq`, `dk`, `dv` of the
 * flattened leading axes from the forward's output `out` and its gradient `g`, the weights
 * recomputed row by row (no scores in memory). Records nothing.
 */
function fusedBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g: Tensor,
  out: Tensor,
  biases: readonly Tensor[],
  lead: readonly number[],
  dims: { nq: number; nk: number; d: number; dv: number },
  scale: number,
): [Tensor, Tensor, Tensor] {
  const { nq, nk, d, dv } = dims;
  const batch = sizeOf(lead);
  const { offs, strides, aligned } = biasTable(biases, lead, nk);
  const keys = 8;
  const rowsQ = Math.min(fusedBackwardRows ?? 4, nq);
  const rowsK = Math.min(fusedBackwardRows ?? 4, nk);
  const dq = empty(q.shape);
  const dk = empty(k.shape);
  const dvt = empty(v.shape);
  const stats = empty([batch * nq * 2]);
  const table = tensor(new Float32Array(offs.buffer), [offs.length]);
  const tail = biases.length ? [table.buffer, ...biases.map((b) => b.buffer)] : [];
  const [gy, gz] = grid1d(batch, 1);
  const ints = [nq, nk, batch, ...strides];
  const bq = aligned.map((a) => a && keys % 4 === 0);
  const [wq, xq] = lanesGrid(Math.ceil(nq / rowsQ));
  dispatch({
    op: "attention.backward",
    kernel: ATTENTION_BWD_Q,
    entry: "attn_bwd_q",
    defines: {
      WG: wq,
      R: rowsQ,
      KB: keys,
      BWD_Q: bwdQSource(d, dv, biases.length, rowsQ, keys, bq),
    },
    ints,
    floats: [scale],
    workgroups: [xq, gy, gz],
  }, [q.buffer, k.buffer, v.buffer, g.buffer, out.buffer, dq.buffer, stats.buffer, ...tail]);
  const bk = aligned.map((a) => a && rowsK % 4 === 0);
  const [wk, xk] = lanesGrid(Math.ceil(nk / rowsK));
  dispatch({
    op: "attention.backward",
    kernel: ATTENTION_BWD_KV,
    entry: "attn_bwd_kv",
    defines: {
      WG: wk,
      R: rowsK,
      KB: keys,
      BWD_KV: bwdKVSource(d, dv, biases.length, rowsK, keys, bk),
    },
    ints,
    floats: [scale],
    workgroups: [xk, gy, gz],
  }, [q.buffer, k.buffer, v.buffer, g.buffer, stats.buffer, dk.buffer, dvt.buffer, ...tail]);
  table.dispose();
  stats.dispose();
  return [dq, dk, dvt];
}

const s = (shape: Shape) => `[${shape.join(",")}]`;

/** One chunk of {@link attention}: a box of the leading axes, and its rows of the flattened batch. */
export interface AttentionChunk {
  /** The first row of the flattened leading axes `[B, ...]`. */
  start: number;
  /** One past the last row. */
  end: number;
  /** The box of the padded leading axes, as slices of a tensor of rank `lead.length + 2`. */
  ranges: { axis: number; start: number; end: number }[];
  /** The leading axes of the chunk's scores (before `[Nq, Nk]`), for broadcasting the bias. */
  shape: number[];
}

/**
 * How {@link attention} splits its leading axes `lead` into chunks whose scores (`nq * nk` float32
 * per matrix) hold at most `maxScoreBytes` (at least one matrix per chunk): whole trailing axes
 * from an axis `a` on, a range of axis `a`, single indices of the axes before it, so that each
 * chunk is a contiguous run of rows and a box of any tensor broadcast to `lead`. In row-major
 * order.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { attentionChunks } from "./attention.ts";
 * // 128 windows x 3 heads of 392 x 392 scores (236 MB) in chunks of at most 64 MiB.
 * const parts = attentionChunks([1, 128, 3], 392, 392, 64 * 2 ** 20);
 * assert.deepEqual(parts.map((c) => c.shape), [[36, 3], [36, 3], [36, 3], [20, 3]]);
 * assert.deepEqual([parts[1].start, parts[1].end], [108, 216]);
 * ```
 */
export function attentionChunks(
  lead: readonly number[],
  nq: number,
  nk: number,
  maxScoreBytes: number,
): AttentionChunk[] {
  const limit = Math.max(1, Math.floor(maxScoreBytes / (4 * Math.max(1, nq * nk))));
  const total = sizeOf(lead);
  if (total <= limit) {
    return [{ start: 0, end: total, ranges: [], shape: [...lead] }];
  }
  // The first axis whose trailing axes fit: ranges along it, whole axes after it.
  let a = 0;
  while (a < lead.length - 1 && sizeOf(lead.slice(a + 1)) > limit) a++;
  const inner = sizeOf(lead.slice(a + 1));
  const step = Math.max(1, Math.floor(limit / inner));
  const outer = sizeOf(lead.slice(0, a));
  const out: AttentionChunk[] = [];
  for (let p = 0; p < outer; p++) {
    // p as a multi-index over lead[0 .. a).
    const index: number[] = [];
    let rest = p;
    for (let i = a - 1; i >= 0; i--) {
      index[i] = rest % lead[i];
      rest = Math.floor(rest / lead[i]);
    }
    for (let r0 = 0; r0 < lead[a]; r0 += step) {
      const r1 = Math.min(lead[a], r0 + step);
      out.push({
        start: (p * lead[a] + r0) * inner,
        end: (p * lead[a] + r1) * inner,
        ranges: [
          ...index.map((i, axis) => ({ axis, start: i, end: i + 1 })),
          { axis: a, start: r0, end: r1 },
        ],
        shape: [r1 - r0, ...lead.slice(a + 1)],
      });
    }
  }
  return out;
}

/**
 * The box of a bias (padded to the rank of the scores) that a chunk adds, viewed with the chunk's
 * leading axes (axes where the bias is broadcast, size 1, stay whole), and a key naming the box.
 * Records nothing.
 */
function biasChunk(
  bias: Tensor,
  rank: number,
  chunk: AttentionChunk,
): { box: Tensor; key: string } {
  return noGrad(() => {
    const padded = [...Array(rank - bias.rank).fill(1), ...bias.shape];
    const ranges: SliceRange[] = chunk.ranges.filter((r) => padded[r.axis] !== 1);
    const view = bias.reshape(padded);
    const box = ranges.length ? slice(view, ranges) : view;
    // Drop the axes before the chunk's own leading axes (all of size 1 now).
    const drop = rank - 2 - chunk.shape.length;
    const out = box.reshape(box.shape.slice(drop));
    if (box !== view) box.dispose();
    view.dispose();
    return { box: out, key: JSON.stringify(ranges) };
  });
}

/**
 * Scaled dot-product attention over the last two axes, as PyTorch's
 * `F.softmax(q @ k.transpose(-2, -1) * scale + bias, dim=-1) @ v`: `q` is `[..., Nq, d]`, `k`
 * `[..., Nk, d]` and `v` `[..., Nk, dv]` with the same leading axes; the result is
 * `[..., Nq, dv]`. `bias` (one tensor, or several that are added) broadcasts to the scores
 * `[..., Nq, Nk]`, e.g. a relative position bias `[heads, N, N]` and a shifted-window mask
 * `[windows, 1, N, N]` with `q` `[B, windows, heads, N, d]`.
 *
 * Fused path (where {@link fusedAttentionApplies} and `fused` is not false): one dispatch of
 * attention.wgsl, a few query rows per invocation, an online softmax over blocks of keys, the
 * biases read through their broadcast strides; no scores are written, so nothing is chunked.
 *
 * Composed path: the flattened leading axes are processed in chunks whose scores hold at most
 * `maxScoreBytes` (default 64 MiB), so that the scores of all windows at once (which can outgrow
 * a storage binding) are never made; the bias follows each chunk (a box of it). Per chunk:
 * `q k^T` (batched matmul with `transB`), `* scale + bias`, softmax (softmax.wgsl), `@ v`.
 *
 * Differentiable in `q`, `k`, `v` and the bias, with `P = softmax(S)`: `dv = P^T g`,
 * `dS = P (g v^T - rowsum(g v^T * P))`, `dq = scale * dS k`, `dk = scale * dS^T q`, and the bias
 * gradient `dS` summed over the axes it was broadcast along. After a fused forward, when no bias
 * wants a gradient, the backward is fused too (attention.wgsl `attn_bwd_q`: each query row's
 * log-sum-exp, `rowsum(g * out)` and dq; `attn_bwd_kv`: each key row's dk and dv, a loop over the
 * queries). Otherwise it recomputes each chunk's weights `P` by composition (nothing of the size
 * of the scores is kept between the passes).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { attention } from "./attention.ts";
 * await initGpu();
 * // One query, two keys with scores 0 and ln 3 (scale 1): weights 1/4 and 3/4 of v.
 * const q = tensor([1], [1, 1]);
 * const k = tensor([0, Math.log(3)], [2, 1]);
 * const v = tensor([4, 8], [2, 1]);
 * const y = await attention(q, k, v, { scale: 1 }).read();
 * assert.ok(Math.abs(y[0] - 7) < 1e-5);
 * // A bias of -100 on the second key masks it out.
 * const masked = attention(q, k, v, { scale: 1, bias: tensor([0, -100], [1, 2]) });
 * assert.ok(Math.abs((await masked.read())[0] - 4) < 1e-4);
 * ```
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
): Tensor {
  const op = "attention";
  if (q.rank < 2 || k.rank !== q.rank || v.rank !== q.rank) {
    throw new RangeError(
      `${op}: q, k and v must be [..., N, d] of one rank >= 2, got q ${s(q.shape)}, k ${
        s(k.shape)
      }, v ${s(v.shape)}`,
    );
  }
  const lead0 = q.shape.slice(0, -2);
  const [nq, d] = q.shape.slice(-2);
  const [nk, dk] = k.shape.slice(-2);
  const [nv, dv] = v.shape.slice(-2);
  if (
    s(k.shape.slice(0, -2)) !== s(lead0) || s(v.shape.slice(0, -2)) !== s(lead0) || dk !== d ||
    nv !== nk
  ) {
    throw new RangeError(
      `${op}: q ${s(q.shape)}, k ${s(k.shape)} and v ${s(v.shape)} must be [..., Nq, d], ` +
        `[..., Nk, d] and [..., Nk, dv] with the same leading axes`,
    );
  }
  const scale = options.scale ?? 1 / Math.sqrt(d);
  if (!Number.isFinite(scale)) throw new RangeError(`${op}: scale must be finite, got ${scale}`);
  const maxBytes = options.maxScoreBytes ?? 64 * 2 ** 20;
  if (!(maxBytes > 0)) {
    throw new RangeError(`${op}: maxScoreBytes must be > 0, got ${options.maxScoreBytes}`);
  }
  const biases = options.bias === undefined
    ? []
    : options.bias instanceof Array
    ? [...options.bias]
    : [options.bias as Tensor];
  // No leading axes: one of size 1, so that every path below has a batch axis.
  const lead = lead0.length ? [...lead0] : [1];
  const scores = [...lead, nq, nk];
  for (const b of biases) {
    let ok = b.rank <= scores.length;
    try {
      ok &&= s(broadcastShapes(b.shape, scores)) === s(scores);
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new RangeError(
        `${op}: bias ${s(b.shape)} does not broadcast to the scores ${s(scores)} ` +
          `(q ${s(q.shape)}, k ${s(k.shape)})`,
      );
    }
  }
  const outShape = [...lead0, nq, dv];
  const batch = sizeOf(lead);
  if (batch === 0 || nq === 0 || dv === 0) return empty(outShape);
  const parts = attentionChunks(lead, nq, nk, maxBytes);
  const flat = (t: Tensor, rows: number, cols: number) => t.reshape([batch, rows, cols]);
  const rank = scores.length;
  const gradBias = biases.some((b) => b.requiresGrad);
  const chunkBiases = (c: AttentionChunk) => biases.map((b) => biasChunk(b, rank, c));

  /** One chunk's rows of a flattened `[batch, rows, cols]` tensor. */
  const rowsOf = (t: Tensor, c: AttentionChunk): Tensor =>
    c.start === 0 && c.end === batch
      ? t.reshape(t.shape)
      : slice(t, { axis: 0, start: c.start, end: c.end });
  /** The weights P = softmax(scale q k^T + bias) of a chunk, `[rows, Nq, Nk]`. */
  const weights = (qc: Tensor, kc: Tensor, c: AttentionChunk, bs: Tensor[]): Tensor => {
    const qs = mul(qc, scale);
    let sc = matmul(qs, kc, { transB: true });
    qs.dispose();
    if (bs.length) {
      let view = sc.reshape([...c.shape, nq, nk]);
      sc.dispose();
      for (const b of bs) {
        const next = add(view, b);
        view.dispose();
        view = next;
      }
      sc = view;
    }
    const p = softmax(sc);
    sc.dispose();
    return p.reshape([c.end - c.start, nq, nk]);
  };

  const fused = (options.fused ?? true) && batch <= FUSED_MAX_BATCH &&
    fusedAttentionApplies(nq, nk, d, dv, biases.length);
  const out = fused
    ? fusedForward(q, k, v, biases, lead, { nq, nk, d, dv }, scale, outShape)
    : noGrad(() => {
      const [qf, kf, vf] = [flat(q, nq, d), flat(k, nk, d), flat(v, nk, dv)];
      const outs = parts.map((c) => {
        const [qc, kc, vc] = [rowsOf(qf, c), rowsOf(kf, c), rowsOf(vf, c)];
        const bs = chunkBiases(c);
        const p = weights(qc, kc, c, bs.map((b) => b.box));
        const o = matmul(p, vc);
        [qc, kc, vc, p, ...bs.map((b) => b.box)].forEach((t) => t.dispose());
        return o;
      });
      [qf, kf, vf].forEach((t) => t.dispose());
      const joined = outs.length === 1 ? outs[0] : concat(outs, 0);
      if (outs.length > 1) outs.forEach((t) => t.dispose());
      const y = joined.reshape(outShape);
      joined.dispose();
      return y;
    });

  const inputs = [q, k, v, ...biases];
  // The fused backward where the forward was fused and no bias wants a gradient.
  const fusedBwd = fused && !gradBias &&
    getGpu().limits.maxStorageBuffersPerShaderStage >= 7 + biases.length;
  return record(out, op, inputs, (g) => {
    if (fusedBwd) {
      const grads = fusedBackward(q, k, v, g, out, biases, lead, { nq, nk, d, dv }, scale);
      const want = [q, k, v].map((t) => t.requiresGrad);
      grads.forEach((t, i) => want[i] || t.dispose());
      return [...grads.map((t, i) => want[i] ? t : null), ...biases.map(() => null)];
    }
    const [qf, kf, vf] = [flat(q, nq, d), flat(k, nk, d), flat(v, nk, dv)];
    const gf = flat(g, nq, dv);
    const dq: Tensor[] = [];
    const dk: Tensor[] = [];
    const dvs: Tensor[] = [];
    // Per bias: its gradient box by box (flattened), in the order of first appearance, which is
    // the bias's row-major order (see attentionChunks); chunks that share a box (the bias is broadcast
    // along their axes) add up.
    const dbias = biases.map(() => new Map<string, Tensor>());
    parts.forEach((c) => {
      const [qc, kc, vc, gc] = [rowsOf(qf, c), rowsOf(kf, c), rowsOf(vf, c), rowsOf(gf, c)];
      const bs = chunkBiases(c);
      const p = weights(qc, kc, c, bs.map((b) => b.box));
      if (v.requiresGrad) dvs.push(matmul(p, gc, { transA: true }));
      const dp = matmul(gc, vc, { transB: true });
      const ds = softmaxLastBackward(`${op}.backward`, p, dp);
      p.dispose();
      dp.dispose();
      if (q.requiresGrad) {
        const raw = matmul(ds, kc);
        dq.push(mul(raw, scale));
        raw.dispose();
      }
      if (k.requiresGrad) {
        const raw = matmul(ds, qc, { transA: true });
        dk.push(mul(raw, scale));
        raw.dispose();
      }
      if (gradBias) {
        const view = ds.reshape([...c.shape, nq, nk]);
        bs.forEach(({ box, key }, j) => {
          if (!biases[j].requiresGrad) return;
          const part = sumTo(view, box.shape);
          const flatPart = part.reshape([part.size]);
          part.dispose();
          const prev = dbias[j].get(key);
          dbias[j].set(key, prev ? add(prev, flatPart) : flatPart);
          if (prev) {
            prev.dispose();
            flatPart.dispose();
          }
        });
        view.dispose();
      }
      bs.forEach(({ box }) => box.dispose());
      [qc, kc, vc, gc, ds].forEach((t) => t.dispose());
    });
    [qf, kf, vf, gf].forEach((t) => t.dispose());
    const join = (xs: Tensor[], shape: Shape): Tensor | null => {
      if (!xs.length) return null;
      const joined = xs.length === 1 ? xs[0] : concat(xs, 0);
      if (xs.length > 1) xs.forEach((t) => t.dispose());
      const r = joined.reshape(shape);
      joined.dispose();
      return r;
    };
    const db = biases.map((b, j) => join([...dbias[j].values()], b.shape));
    return [join(dq, q.shape), join(dk, k.shape), join(dvs, v.shape), ...db];
  });
}
