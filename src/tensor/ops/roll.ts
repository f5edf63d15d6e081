/**
 * Cyclic shifts along axes (`torch.roll`), as used by the shifted windows of the Swin family.
 * Composed from shape.ts's slice and concat (two strided copies per rolled axis).
 *
 * @module
 */

import { noGrad, record, type Tensor } from "../tensor.ts";
import { concat, slice } from "./shape.ts";

const s = (shape: readonly number[]) => `[${shape.join(",")}]`;

/**
 * Rolls `x` cyclically, as PyTorch's `torch.roll(x, shifts, dims)`: along each axis of `axes`,
 * the element at index `i` moves to `(i + shift) mod size` (a positive shift moves towards
 * higher indices; shifts larger than the axis wrap around, negative shifts go the other way).
 * `shifts` and `axes` are one number each or arrays of the same length (an axis given twice
 * adds its shifts); negative axes count from the end. Without `axes`, the flattened tensor is
 * rolled and the shape restored (torch's default). Copies (shifts of whole turns only give a view).
 *
 * Differentiable: the gradient is the output gradient rolled back (the opposite shifts).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../../gpu/device.ts";
 * import { tensor } from "../tensor.ts";
 * import { roll } from "./roll.ts";
 * await initGpu();
 * const x = tensor([0, 1, 2, 3, 4, 5], [2, 3]);
 * assert.deepEqual([...await roll(x, 1, 1).read()], [2, 0, 1, 5, 3, 4]);
 * assert.deepEqual([...await roll(x, [-1, 1], [1, 0]).read()], [4, 5, 3, 1, 2, 0]);
 * assert.deepEqual([...await roll(x, 2).read()], [4, 5, 0, 1, 2, 3]); // flattened
 * ```
 */
export function roll(
  x: Tensor,
  shifts: number | readonly number[],
  axes?: number | readonly number[],
): Tensor {
  const op = "roll";
  const shiftList = typeof shifts === "number" ? [shifts] : [...shifts];
  for (const v of shiftList) {
    if (!Number.isInteger(v)) {
      throw new RangeError(`${op}: shifts must be integers, got ${s(shiftList)}`);
    }
  }
  if (axes === undefined) {
    if (shiftList.length !== 1) {
      throw new RangeError(
        `${op}: without axes, one shift rolls the flattened tensor; got shifts ${s(shiftList)}`,
      );
    }
    return rollAxes(x, shiftList, [0], true);
  }
  const axisList = typeof axes === "number" ? [axes] : [...axes];
  if (axisList.length !== shiftList.length) {
    throw new RangeError(
      `${op}: ${shiftList.length} shifts ${s(shiftList)} for ${axisList.length} axes ${
        s(axisList)
      }`,
    );
  }
  const norm = axisList.map((a) => {
    const ax = a < 0 ? a + x.rank : a;
    if (!Number.isInteger(a) || ax < 0 || ax >= x.rank) {
      throw new RangeError(`${op}: axis ${a} is out of range for x ${s(x.shape)}`);
    }
    return ax;
  });
  return rollAxes(x, shiftList, norm);
}

/** Rolls along normalised `axes` by `shifts` (same lengths); of the flattened `x` with `flat`. */
function rollAxes(
  x: Tensor,
  shifts: readonly number[],
  axes: readonly number[],
  flat = false,
): Tensor {
  const out = noGrad(() => {
    const base = flat ? x.reshape([x.size]) : x;
    let cur = base;
    shifts.forEach((shift, i) => {
      const axis = axes[i];
      const n = base.shape[axis];
      const k = n === 0 ? 0 : ((shift % n) + n) % n;
      if (k === 0) return;
      // The last k entries come first.
      const tail = slice(cur, { axis, start: n - k });
      const head = slice(cur, { axis, end: n - k });
      const next = concat([tail, head], axis);
      tail.dispose();
      head.dispose();
      if (cur !== base) cur.dispose();
      cur = next;
    });
    const y = cur.reshape(x.shape);
    if (base !== x && base !== cur) base.dispose();
    if (cur !== x) cur.dispose();
    return y;
  });
  return record(out, "roll", [x], (g) => [rollAxes(g, shifts.map((v) => -v), axes, flat)]);
}
