/**
 * A differentiable gather of rows along the first axis, as `torch.index_select(x, 0, indices)`
 * with the indices known on the CPU (e.g. the relative position index that expands a Swin
 * transformer's bias table). Kernels: index_select.wgsl, one dispatch forward; the backward sums
 * the gradient's rows through the inverse map (built here once per call, in CSR form), one
 * dispatch unless some row of x is named more than {@link BACKWARD_CHUNK} times.
 *
 * @module
 */

import { dispatch, grid1d } from "../../gpu/queue.ts";
import { INDEX_SELECT } from "./_kernels.ts";
import { empty, record, type Tensor, tensor } from "../tensor.ts";

/**
 * Most positions of one row of x that one backward invocation sums (a pass; more take more
 * passes), far below lavapipe's 65535-iteration loop limit.
 */
const BACKWARD_CHUNK = 4096;

const fmt = (shape: readonly number[]) => `[${shape.join(",")}]`;

/** A u32 table as a tensor of the same bytes (the kernel reads it as `array<u32>`). */
function upload(table: Uint32Array<ArrayBuffer>): Tensor {
  return tensor(new Float32Array(table.buffer, table.byteOffset, table.length));
}

/**
 * The inverse map of `indices` over `rows` rows, in CSR form, as one table: `rows + 1` offsets,
 * then the positions of each row (ascending). Also the longest row's length.
 */
function inverseMap(
  indices: Uint32Array,
  rows: number,
): { table: Uint32Array<ArrayBuffer>; widest: number } {
  const m = indices.length;
  const table = new Uint32Array(rows + 1 + m);
  for (let p = 0; p < m; p++) table[indices[p] + 1]++;
  let widest = 0;
  for (let r = 0; r < rows; r++) {
    widest = Math.max(widest, table[r + 1]);
    table[r + 1] += table[r];
  }
  const next = table.slice(0, rows);
  const base = rows + 1;
  for (let p = 0; p < m; p++) table[base + next[indices[p]]++] = p;
  return { table, widest };
}

/**
 * Rows of `x` along its first axis, as `torch.index_select(x, 0, indices)` (or `x[indices]`):
 * `x` is `[L, ...rest]` (any rank >= 1), `indices` are `M >= 1` integers in `[0, L)` (repeats
 * allowed, rows may go unused), and the result is `[M, ...rest]` with `out[p] = x[indices[p]]`.
 * The indices are read once, on the CPU (a later change to the array does not affect the result
 * or its gradient). One dispatch, one invocation per output element.
 *
 * Differentiable in `x`: `dx[r] = sum of g[p] over the positions p with indices[p] == r` (zero
 * for unused rows), computed without atomics from the inverse map (for each row, its positions),
 * built on the CPU once per call: one invocation per element of `dx` sums its row's positions in
 * ascending order (deterministic), in passes of at most 4096 positions.
 *
 * @throws {RangeError} if `x` has no axis, `indices` is empty, or an index is not an integer in
 * `[0, L)` (naming its position and value).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { indexSelect } from "./index_select.ts";
 * await initGpu();
 * // Three rows of two; gather rows 2, 0, 2.
 * const x = tensor([1, 2, 3, 4, 5, 6], [3, 2], { requiresGrad: true });
 * const y = indexSelect(x, [2, 0, 2]);
 * assert.deepEqual(y.shape, [3, 2]);
 * assert.deepEqual([...await y.read()], [5, 6, 1, 2, 5, 6]);
 * // Row 2 was taken twice, row 1 never.
 * y.backward(tensor([1, 1, 1, 1, 1, 1], [3, 2]));
 * assert.deepEqual([...await x.grad!.read()], [1, 1, 0, 0, 2, 2]);
 * ```
 */
export function indexSelect(x: Tensor, indices: Int32Array | readonly number[]): Tensor {
  const op = "indexSelect";
  if (x.rank < 1) throw new RangeError(`${op}: x must have at least one axis, got ${fmt(x.shape)}`);
  const m = indices.length;
  if (m < 1) throw new RangeError(`${op}: indices must not be empty (x ${fmt(x.shape)})`);
  const rows = x.shape[0];
  const idx = new Uint32Array(m);
  for (let p = 0; p < m; p++) {
    const v = indices[p];
    if (!Number.isInteger(v) || v < 0 || v >= rows) {
      throw new RangeError(
        `${op}: index ${v} at position ${p} is not an integer in [0, ${rows}) for x ${
          fmt(x.shape)
        }`,
      );
    }
    idx[p] = v;
  }
  const rest = x.shape.slice(1);
  const c = rest.reduce((a, b) => a * b, 1);
  const out = empty([m, ...rest]);
  if (c === 0) return out;
  const t = upload(idx);
  dispatch({
    op,
    kernel: INDEX_SELECT,
    entry: "gather_fwd",
    ints: [m * c, c, rows, 0, 0, 0],
    workgroups: grid1d(m * c, 64),
  }, [x.buffer, t.buffer, out.buffer]);
  t.dispose(); // reusable once this batch is submitted
  return record(out, op, [x], (g) => {
    const name = `${op}.backward`;
    const { table, widest } = inverseMap(idx, rows);
    const dx = empty(x.shape);
    const map = upload(table);
    const passes = Math.max(1, Math.ceil(widest / BACKWARD_CHUNK));
    for (let j = 0; j < passes; j++) {
      dispatch({
        op: name,
        kernel: INDEX_SELECT,
        entry: "gather_bwd",
        ints: [rows * c, c, rows, j * BACKWARD_CHUNK, BACKWARD_CHUNK, j > 0 ? 1 : 0],
        workgroups: grid1d(rows * c, 64),
      }, [g.buffer, map.buffer, dx.buffer]);
    }
    map.dispose(); // reusable once this batch is submitted
    return [dx];
  });
}
