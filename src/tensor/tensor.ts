/**
 * Float32 tensors on the GPU, scopes that dispose them, and the tape that differentiates them.
 *
 * A tensor owns a reference to a pooled storage buffer (views such as `reshape` share it).
 * Ops record a {@link GradNode} on their output when grad mode is on and an input requires a
 * gradient; `backward()` visits the graph once in reverse topological order, accumulating
 * gradients, and leaves them in `.grad` of leaf tensors that require one.
 *
 * @module
 */

import { getGpu } from "../gpu/device.ts";
import { acquireBuffer, checkBindable, releaseBuffer } from "../gpu/pool.ts";
import { dispatch, grid1d, readBuffer, writeBuffer } from "../gpu/queue.ts";
import { ELEMENTWISE } from "./ops/_kernels.ts";
import { rangeInts } from "./_elementwise_params.ts";

/** A shape: non-negative integer sizes, outermost first. */
export type Shape = readonly number[];

/** A reference-counted GPU buffer shared by a tensor and its views. */
class Storage {
  buffer: GPUBuffer;
  refs = 1;
  constructor(readonly bytes: number) {
    this.buffer = acquireBuffer(bytes);
  }
  release(): void {
    if (--this.refs === 0) releaseBuffer(this.buffer);
  }
}

/**
 * How an op differentiates: given the gradient of its output, the gradients of its inputs
 * (null where an input needs none).
 */
export interface GradNode {
  /** The op's name, for error messages. */
  name: string;
  /** The op's tensor inputs, in order. */
  inputs: Tensor[];
  /** Maps the output gradient to one gradient per input (same shapes as the inputs). */
  backward: (grad: Tensor) => (Tensor | null)[];
  /**
   * For an op whose input gradient is zero outside a box of its one input (slice): the box and
   * a function that copies the output gradient into that box of a tensor of the input's shape.
   * Disjoint pieces of one tensor then fill one gradient buffer, instead of each making a
   * full-size zero tensor that is added to the others (quadratic in the number of pieces).
   */
  region?: GradRegion;
}

/**
 * The box of one input that an op's gradient covers (see {@link GradNode.region}): per axis,
 * the first index and one past the last; `write` copies the output gradient into that box of
 * `into` (a tensor of the input's shape) without touching anything else.
 */
export interface GradRegion {
  /** First index of the box per axis of the input. */
  start: readonly number[];
  /** One past the last index of the box per axis of the input. */
  end: readonly number[];
  /** Copies the output gradient `grad` into the box of `into`. */
  write: (grad: Tensor, into: Tensor) => void;
}

let nextId = 1;
let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

/**
 * Total number of elements of a shape.
 *
 * @example
 * ```ts
 * import { sizeOf } from "./tensor.ts";
 * sizeOf([2, 3, 4]); // 24
 * ```
 */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`${what}: shape [${shape.join(",")}] must hold non-negative integers`);
    }
  }
}

/** A float32 tensor on the GPU. Create one with {@link tensor} or an op. */
export class Tensor {
  /** Unique id, for debugging. */
  readonly id: number;
  /** Sizes, outermost first. */
  readonly shape: Shape;
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient after `backward()` (leaf tensors that require one). */
  grad: Tensor | null = null;
  /** How this tensor was made, when it is part of a differentiable graph. */
  node: GradNode | null = null;
  #storage: Storage | null;

  /** @internal Use {@link tensor}, {@link empty} or an op. */
  constructor(shape: Shape, storage?: Storage, requiresGrad = false) {
    checkShape(shape, "tensor");
    this.id = nextId++;
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    const bytes = Math.max(4, this.size * 4);
    if (storage) {
      storage.refs++;
      this.#storage = storage;
    } else {
      checkBindable(bytes, `tensor [${shape.join(",")}]`);
      this.#storage = new Storage(bytes);
    }
    this.requiresGrad = requiresGrad;
    scopes[scopes.length - 1]?.add(this);
  }

  /** The GPU buffer holding the values (may be larger than `size * 4` bytes). */
  get buffer(): GPUBuffer {
    if (!this.#storage) throw new Error(`tensor #${this.id} [${this.shape}] was disposed`);
    return this.#storage.buffer;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /**
   * A tensor of another shape with the same elements, sharing this one's buffer (no copy).
   * Differentiable.
   */
  reshape(shape: Shape): Tensor {
    const resolved = resolveReshape(this.shape, shape);
    const out = new Tensor(resolved, this.#storageOrThrow());
    const src = this.shape;
    return record(out, "reshape", [this], (g) => [g.reshape(src)]);
  }

  #storageOrThrow(): Storage {
    if (!this.#storage) throw new Error(`tensor #${this.id} [${this.shape}] was disposed`);
    return this.#storage;
  }

  /** Copies the values to the CPU. */
  read(): Promise<Float32Array> {
    return readBuffer(this.buffer, this.size * 4);
  }

  /** Releases the buffer (to the pool). Safe to call twice. */
  dispose(): void {
    if (!this.#storage) return;
    this.#storage.release();
    this.#storage = null;
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
    for (const s of scopes) s.delete(this);
  }

  /** Removes this tensor from the enclosing `tidy` scopes, so it outlives them. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /**
   * Back-propagates from this tensor. Without `grad`, the tensor must hold one element and its
   * gradient is 1. Gradients of intermediate tensors are disposed; leaf tensors that require a
   * gradient accumulate theirs into `.grad` (kept out of tidy scopes). The graph is freed.
   */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** A short description, e.g. `Tensor#3 [2,3] grad`. */
  toString(): string {
    return `Tensor#${this.id} [${this.shape.join(",")}]${this.requiresGrad ? " grad" : ""}`;
  }
}

function resolveReshape(from: Shape, to: Shape): number[] {
  const n = sizeOf(from);
  const unknown = to.indexOf(-1);
  const out = [...to];
  if (unknown >= 0) {
    const rest = sizeOf(to.filter((_, i) => i !== unknown));
    if (rest === 0 || n % rest !== 0) {
      throw new RangeError(`reshape: cannot reshape [${from}] to [${to}]`);
    }
    out[unknown] = n / rest;
  }
  if (sizeOf(out) !== n || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`reshape: cannot reshape [${from}] (${n} elements) to [${to}]`);
  }
  return out;
}

/**
 * Attaches a gradient node to `out` when grad mode is on and an input requires a gradient;
 * returns `out`. Every differentiable op ends with this.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { mul } from "./ops/elementwise.ts";
 * import { noGrad, record, type Tensor, tensor } from "./tensor.ts";
 * await initGpu();
 * // An op computing out = 2 * x, with its backward g -> 2 * g:
 * const double = (x: Tensor): Tensor =>
 *   record(noGrad(() => mul(x, 2)), "double", [x], (g) => [mul(g, 2)]);
 * const x = tensor([1, 2], [2], { requiresGrad: true });
 * const y = double(x);
 * assert.equal(y.node?.name, "double");
 * y.backward(tensor([1, 1], [2]));
 * assert.deepEqual([...await x.grad!.read()], [2, 2]);
 * ```
 */
export function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  backward: (grad: Tensor) => (Tensor | null)[],
  region?: GradRegion,
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = region ? { name, inputs, backward, region } : { name, inputs, backward };
  }
  return out;
}

/**
 * An uninitialised tensor (for op outputs).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { empty } from "./tensor.ts";
 * await initGpu();
 * const out = empty([2, 3]);
 * assert.equal(out.size, 6);
 * ```
 */
export function empty(shape: Shape): Tensor {
  return new Tensor(shape);
}

/**
 * A tensor from CPU data.
 *
 * @example
 * ```ts
 * import { initGpu } from "../gpu/device.ts";
 * import { tensor } from "./tensor.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
 * ```
 */
export function tensor(
  data: ArrayLike<number>,
  shape?: Shape,
  options: { requiresGrad?: boolean } = {},
): Tensor {
  const s = shape ?? [data.length];
  if (sizeOf(s) !== data.length) {
    throw new RangeError(
      `tensor: ${data.length} values do not fill shape [${s.join(",")}] (${sizeOf(s)} elements)`,
    );
  }
  getGpu();
  const t = new Tensor(s, undefined, options.requiresGrad ?? false);
  if (data.length) {
    const values = data instanceof Float32Array && data.buffer instanceof ArrayBuffer
      ? data as Float32Array<ArrayBuffer>
      : Float32Array.from(data);
    writeBuffer(t.buffer, values, { fresh: true });
  }
  return t;
}

/**
 * A tensor filled with one value.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { full } from "./tensor.ts";
 * await initGpu();
 * const ones = full([4, 4], 1);
 * assert.ok((await ones.read()).every((v) => v === 1));
 * ```
 */
export function full(
  shape: Shape,
  value: number,
  options: { requiresGrad?: boolean } = {},
): Tensor {
  const t = new Tensor(shape, undefined, options.requiresGrad ?? false);
  fillBuffer(t.buffer, t.size, value);
  return t;
}

/** Fills the first `n` floats of `buffer` with `value` on the GPU. */
function fillBuffer(buffer: GPUBuffer, n: number, value: number): void {
  const [x, y] = grid1d(n, 256);
  dispatch({
    op: "fill",
    kernel: ELEMENTWISE,
    entry: "fill",
    ints: rangeInts(n),
    floats: [value],
    workgroups: [x, y],
  }, [buffer]);
}

/** `a + b` into a new tensor (same sizes), for gradient accumulation; disposes `a` and `b`. */
function sumAndDispose(a: Tensor, b: Tensor): Tensor {
  const out = new Tensor(a.shape);
  const [x, y] = grid1d(a.size, 256);
  dispatch({
    op: "grad.accumulate",
    kernel: ELEMENTWISE,
    entry: "add_same",
    ints: rangeInts(a.size),
    workgroups: [x, y],
  }, [a.buffer, b.buffer, out.buffer]);
  a.dispose();
  b.dispose();
  return out;
}

/** Whether ops currently record gradient nodes. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording gradients (inference).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { mul } from "./ops/elementwise.ts";
 * import { isGradEnabled, noGrad, tensor } from "./tensor.ts";
 * await initGpu();
 * const w = tensor([2], [1], { requiresGrad: true });
 * const y = noGrad(() => mul(w, 3));
 * assert.equal(y.node, null); // no graph was recorded
 * assert.deepEqual([...await y.read()], [6]);
 * assert.equal(isGradEnabled(), true);
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/**
 * Activation checkpointing: `fn(...inputs)` runs without recording its graph, and one node
 * stands for it; its backward runs `fn` again with gradients on (on views of the inputs) and
 * back-propagates the output gradient through that graph alone, inside a `tidy`. A pass over
 * many such pieces (a transformer's blocks) then holds one piece's activations at a time, for
 * the cost of a second forward pass of each. The first pass runs in a `tidy` (only the output
 * is kept). `fn` must be deterministic; the other tensors it reads should be leaves (such as
 * parameters: their gradients accumulate during the recomputation), since the graph of a
 * non-leaf read from outside would be consumed there.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { mul, tanh } from "./ops/elementwise.ts";
 * import { sum } from "./ops/reduce.ts";
 * import { checkpoint, tensor } from "./tensor.ts";
 * await initGpu();
 * const x = tensor([0.5, -1], [2], { requiresGrad: true });
 * const y = checkpoint((v) => tanh(mul(v, 2)), [x]);
 * sum(y).backward();
 * const g = await x.grad!.read(); // 2 (1 - tanh(2x)^2)
 * assert.ok(Math.abs(g[0] - 2 * (1 - Math.tanh(1) ** 2)) < 1e-5);
 * ```
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[]): Tensor {
  const out = noGrad(() => tidy(() => fn(...inputs)));
  return record(out, "checkpoint", inputs, (g) =>
    tidy(() => {
      const leaves = inputs.map((x) => {
        const leaf = x.reshape(x.shape); // a view without history (gradients are off here)
        leaf.requiresGrad = x.requiresGrad;
        leaf.node = null;
        return leaf;
      });
      const before = gradEnabled;
      gradEnabled = true;
      let y: Tensor;
      try {
        y = fn(...leaves);
      } finally {
        gradEnabled = before;
      }
      if (!y.requiresGrad) return leaves.map(() => null);
      backward(y, g);
      // Taken off the leaves, which the tidy disposes (a tensor's dispose frees its .grad).
      const grads = leaves.map((l) => (l.requiresGrad ? l.grad : null));
      for (const l of leaves) l.grad = null;
      return grads;
    }));
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) value.forEach((v) => collectTensors(v, into));
  else if (value && typeof value === "object" && !(value instanceof Promise)) {
    Object.values(value).forEach((v) => collectTensors(v, into));
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it returns (in an array or
 * object too) and those marked with `keep()`. Nested scopes pass returned tensors outward.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { initGpu } from "../gpu/device.ts";
 * import { mul } from "./ops/elementwise.ts";
 * import { mean } from "./ops/reduce.ts";
 * import { type Tensor, tensor, tidy } from "./tensor.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3]);
 * const made: Tensor[] = [];
 * const loss = tidy(() => {
 *   const squares = mul(x, x);
 *   made.push(squares);
 *   return mean(squares);
 * });
 * assert.ok(made[0].disposed && !loss.disposed && !x.disposed);
 * assert.ok(Math.abs((await loss.read())[0] - 14 / 3) < 1e-5);
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keepSet = new Set<Tensor>();
  collectTensors(result, keepSet);
  for (const t of scope) {
    if (keepSet.has(t)) scopes[scopes.length - 1]?.add(t);
    else t.dispose();
  }
  return result;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS (deep graphs such as long GRU unrolls would overflow recursion).
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/** Whether two boxes of one tensor share no element (apart on some axis). */
function disjoint(a: GradRegion, b: GradRegion): boolean {
  return a.start.some((s, i) =>
    a.end[i] <= b.start[i] || b.end[i] <= s || a.end[i] <= s || b.end[i] <= b.start[i]
  );
}

function backward(root: Tensor, seed?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error(`backward: ${root} does not require a gradient (no input requires one)`);
  }
  if (!seed && root.size !== 1) {
    throw new Error(`backward: ${root} has ${root.size} elements; pass the output gradient`);
  }
  if (seed && seed.size !== root.size) {
    throw new RangeError(`backward: gradient [${seed.shape}] does not match ${root}`);
  }
  const order = topoOrder(root);
  // Every gradient in `grads` is a handle of its own; no buffer is ever updated in place, so
  // views that share storage (reshape, a user's seed) are safe. The one exception: a gradient
  // the engine made itself from zeros and region writes only (`regions` holds the boxes written
  // so far) takes further writes into boxes disjoint from those, before anything reads it.
  const grads = new Map<Tensor, Tensor>();
  const regions = new Map<Tensor, GradRegion[]>();
  const before = gradEnabled;
  gradEnabled = false;
  try {
    grads.set(root, seed ? seed.reshape(root.shape) : full(root.shape, 1));
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      regions.delete(t);
      const node = t.node;
      if (!node) {
        // A leaf: accumulate into .grad, outside any tidy scope.
        t.grad = (t.grad ? sumAndDispose(t.grad, g) : g).keep();
        continue;
      }
      for (const input of node.inputs) {
        if (input.disposed && input.requiresGrad) {
          throw new Error(
            `backward: an input of op '${node.name}' (${input}) was disposed before backward`,
          );
        }
      }
      const region = node.region;
      if (region && node.inputs.length === 1 && node.inputs[0].requiresGrad) {
        const input = node.inputs[0];
        const prev = grads.get(input);
        const boxes = regions.get(input);
        if (!prev || (boxes && boxes.every((b) => disjoint(b, region)))) {
          const into = prev ?? full(input.shape, 0);
          region.write(g, into);
          grads.set(input, into);
          if (boxes) boxes.push(region);
          else regions.set(input, [region]);
          g.dispose();
          t.node = null;
          continue;
        }
      }
      const inGrads = node.backward(g);
      node.inputs.forEach((input, i) => {
        const gi = inGrads[i];
        if (!gi || !input.requiresGrad) return;
        if (gi.size !== input.size) {
          throw new Error(
            `backward of '${node.name}': gradient [${gi.shape}] for input [${input.shape}]`,
          );
        }
        const view = gi.reshape(input.shape);
        const prev = grads.get(input);
        grads.set(input, prev ? sumAndDispose(prev, view) : view);
        regions.delete(input);
      });
      for (const gi of inGrads) gi?.dispose();
      g.dispose();
      t.node = null; // free the graph as it is consumed
    }
  } finally {
    gradEnabled = before;
    for (const g of grads.values()) g.dispose();
  }
}
