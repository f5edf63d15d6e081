/**
 * Scaled dot-product attention, `softmax(scale * q k^T + bias) v`, for window attention such as
 * the Swin family's, processed in chunks of the leading axes so that no score buffer outgrows a
 * storage binding (lavapipe: 128 MiB). Composed from matmul.ts, elementwise.ts and softmax.ts; the
 * backward recomputes each chunk's weights rather than keeping them.
 *
 * @module
 */

import { empty, noGrad, record, type Shape, sizeOf, type Tensor } from "../tensor.ts";
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
 * The flattened leading axes are processed in chunks whose scores hold at most `maxScoreBytes`
 * (default 64 MiB), so that the scores of all windows at once (which can outgrow a storage
 * binding) are never made; the bias follows each chunk (a box of it). Per chunk: `q k^T` (batched
 * matmul with `transB`), `* scale + bias`, softmax (softmax.wgsl), `@ v`.
 *
 * Differentiable in `q`, `k`, `v` and the bias. The backward recomputes each chunk's weights
 * `P` (nothing of the size of the scores is kept between the passes), then
 * `dv = P^T g`, `dS = softmax'(P, g v^T)`, `dq = scale * dS k`, `dk = scale * dS^T q` and the
 * bias gradient `dS` summed over the axes it was broadcast along.
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

  const out = noGrad(() => {
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
  return record(out, op, inputs, (g) => {
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
