/**
 * Optimisers: Adam and SGD, updating parameters in place on the GPU.
 *
 * Each `step()` encodes one dispatch per parameter that has a gradient (adam.wgsl); the
 * kernel reads the gradient and updates the parameter and the optimiser's state buffers in place.
 * Scalars that depend only on the step count (bias corrections) are computed on the CPU in
 * float64. The update formulas are those of PyTorch's `torch.optim.Adam` (without amsgrad) and
 * `torch.optim.SGD`, including where weight decay enters. Like PyTorch, each parameter keeps its
 * own step count, which advances only on steps where it has a gradient, and state is created
 * lazily on a parameter's first step.
 *
 * The optimiser owns its state tensors: they are kept out of `tidy` scopes and freed by
 * `dispose()`.
 *
 * @module
 */

import { dispatch, grid1d } from "../gpu/queue.ts";
import { kernel } from "../gpu/program.ts";
import { full, type Tensor } from "../tensor/tensor.ts";

/** The in-place updates (adam.wgsl): param, grad, the first state, Adam's second state. */
const ADAM = kernel(new URL("./adam.wgsl", import.meta.url), {
  storage: ["param", "grad", "state1", "state2"],
});

/** Options of {@link Adam}. */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay of the first-moment average (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment average (default 0.999). */
  beta2?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient as `weightDecay * p` (default 0), as in torch.optim.Adam. */
  weightDecay?: number;
}

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate (required). */
  lr: number;
  /** Momentum factor (default 0: plain SGD, no state). */
  momentum?: number;
  /** Dampening of the momentum update (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient as `weightDecay * p` (default 0). */
  weightDecay?: number;
}

function checkParams(name: string, params: Tensor[]): Tensor[] {
  const seen = new Set<Tensor>();
  for (const p of params) {
    if (p.disposed) throw new Error(`${name}: parameter ${p} was disposed`);
    if (seen.has(p)) throw new Error(`${name}: parameter ${p} appears twice`);
    seen.add(p);
  }
  return [...params];
}

function checkNumber(name: string, what: string, v: number, lo: number, hi = Infinity): void {
  if (!Number.isFinite(v) || v < lo || v > hi) {
    throw new RangeError(`${name}: ${what} must be in [${lo}, ${hi}], got ${v}`);
  }
}

/** Disposes and clears `.grad` of every parameter. */
function clearGrads(params: Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

function checkGrad(name: string, p: Tensor): Tensor | null {
  const g = p.grad;
  if (!g) return null;
  if (p.disposed) throw new Error(`${name}.step: parameter ${p} was disposed`);
  if (g.size !== p.size) {
    throw new Error(`${name}.step: gradient [${g.shape}] does not match parameter ${p}`);
  }
  return g;
}

/** A zero-filled tensor kept out of tidy scopes, for optimiser state. */
function zeroState(p: Tensor): Tensor {
  return full(p.shape, 0).keep();
}

/**
 * Adam (Kingma and Ba 2015) with PyTorch's update:
 * `g = grad + wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
 *
 * @example
 * ```ts
 * import { Adam, initGpu, nn, tensor } from "../../mod.ts";
 * await initGpu();
 * const w = tensor([1, -2, 3], [3], { requiresGrad: true });
 * const opt = new Adam([w], { lr: 0.1 });
 * for (let i = 0; i < 10; i++) {
 *   const loss = nn.sum(nn.square(w));
 *   loss.backward();
 *   loss.dispose();
 *   opt.step();
 *   opt.zeroGrad();
 * }
 * console.log(await w.read());
 * ```
 */
export class Adam {
  /** The parameters this optimiser updates. */
  readonly params: readonly Tensor[];
  /** Learning rate (may be changed between steps, e.g. by a schedule). */
  lr: number;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator epsilon. */
  readonly eps: number;
  /** Weight decay (L2 penalty on the gradient). */
  readonly weightDecay: number;
  #state = new Map<Tensor, { m: Tensor; v: Tensor; step: number }>();

  /**
   * An Adam optimiser of `params`, with checked options.
   *
   * @param params The tensors to update (none disposed, none twice).
   * @param options Learning rate, betas, eps and weight decay (PyTorch's defaults); a value out
   *   of range is a RangeError naming the option.
   */
  constructor(params: Tensor[], options: AdamOptions = {}) {
    this.params = checkParams("Adam", params);
    const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = options;
    checkNumber("Adam", "lr", lr, 0);
    checkNumber("Adam", "beta1", beta1, 0, 1 - Number.EPSILON);
    checkNumber("Adam", "beta2", beta2, 0, 1 - Number.EPSILON);
    checkNumber("Adam", "eps", eps, 0);
    checkNumber("Adam", "weightDecay", weightDecay, 0);
    this.lr = lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
  }

  /** Updates every parameter that has a gradient (one dispatch each); others are skipped. */
  step(): void {
    checkNumber("Adam", "lr", this.lr, 0);
    for (const p of this.params) {
      const g = checkGrad("Adam", p);
      if (!g) continue;
      let s = this.#state.get(p);
      if (!s) {
        s = { m: zeroState(p), v: zeroState(p), step: 0 };
        this.#state.set(p, s);
      }
      s.step++;
      const bc1 = 1 - this.beta1 ** s.step;
      const bc2 = 1 - this.beta2 ** s.step;
      const [x, y] = grid1d(p.size, 256);
      dispatch({
        op: "adam.step",
        kernel: ADAM,
        entry: "adam",
        ints: [p.size, 0, 0, 0],
        floats: [
          this.lr,
          this.beta1,
          1 - this.beta1,
          this.beta2,
          1 - this.beta2,
          this.eps,
          this.weightDecay,
          this.lr / bc1,
          Math.sqrt(bc2),
        ],
        workgroups: [x, y],
      }, [p.buffer, g.buffer, s.m.buffer, s.v.buffer]);
    }
  }

  /** Disposes `.grad` of every parameter (sets it to null). */
  zeroGrad(): void {
    clearGrads(this.params as Tensor[]);
  }

  /** Steps taken by a parameter (0 before its first update). */
  stepCount(p: Tensor): number {
    return this.#state.get(p)?.step ?? 0;
  }

  /** The moment estimates of a parameter (undefined before its first update); owned by the optimiser. */
  moments(p: Tensor): { m: Tensor; v: Tensor } | undefined {
    const s = this.#state.get(p);
    return s && { m: s.m, v: s.v };
  }

  /** Frees the optimiser's state buffers (the parameters are untouched). */
  dispose(): void {
    for (const s of this.#state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.#state.clear();
  }
}

/**
 * Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
 * decay, as torch.optim.SGD: `g = grad + wd p`; with momentum `b = g` on the first step, then
 * `b = momentum b + (1 - dampening) g`, and `g = b` (or `g + momentum b` with Nesterov);
 * `p -= lr g`.
 *
 * @example
 * ```ts
 * import { initGpu, nn, SGD, tensor } from "../../mod.ts";
 * await initGpu();
 * const w = tensor([1, -2, 3], [3], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
 * const loss = nn.sum(nn.square(w));
 * loss.backward();
 * opt.step();
 * opt.zeroGrad();
 * ```
 */
export class SGD {
  /** The parameters this optimiser updates. */
  readonly params: readonly Tensor[];
  /** Learning rate (may be changed between steps). */
  lr: number;
  /** Momentum factor. */
  readonly momentum: number;
  /** Dampening of the momentum update. */
  readonly dampening: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** Weight decay (L2 penalty on the gradient). */
  readonly weightDecay: number;
  #buffers = new Map<Tensor, Tensor>();

  /**
   * An SGD optimiser of `params`, with checked options.
   *
   * @param params The tensors to update (none disposed, none twice).
   * @param options The learning rate (required), momentum, dampening, Nesterov and weight
   *   decay; a value out of range is a RangeError naming the option.
   */
  constructor(params: Tensor[], options: SGDOptions) {
    this.params = checkParams("SGD", params);
    const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = options ?? {};
    checkNumber("SGD", "lr", lr, 0);
    checkNumber("SGD", "momentum", momentum, 0);
    checkNumber("SGD", "dampening", dampening, 0, 1);
    checkNumber("SGD", "weightDecay", weightDecay, 0);
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new RangeError("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
    }
    this.lr = lr;
    this.momentum = momentum;
    this.dampening = dampening;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
  }

  /** Updates every parameter that has a gradient (one dispatch each); others are skipped. */
  step(): void {
    checkNumber("SGD", "lr", this.lr, 0);
    for (const p of this.params) {
      const g = checkGrad("SGD", p);
      if (!g) continue;
      const [x, y] = grid1d(p.size, 256);
      if (this.momentum === 0) {
        dispatch({
          op: "sgd.step",
          kernel: ADAM,
          entry: "sgd",
          ints: [p.size, 0, 0, 0],
          floats: [this.lr, 0, 0, 0, 0, 0, this.weightDecay],
          workgroups: [x, y],
        }, [p.buffer, g.buffer]);
        continue;
      }
      let b = this.#buffers.get(p);
      const first = !b;
      if (!b) {
        b = full(p.shape, 0).keep();
        this.#buffers.set(p, b);
      }
      dispatch({
        op: "sgd.step",
        kernel: ADAM,
        entry: "sgd_momentum",
        ints: [p.size, first ? 1 : 0, this.nesterov ? 1 : 0, 0],
        floats: [this.lr, this.momentum, 1 - this.dampening, 0, 0, 0, this.weightDecay],
        workgroups: [x, y],
      }, [p.buffer, g.buffer, b.buffer]);
    }
  }

  /** Disposes `.grad` of every parameter (sets it to null). */
  zeroGrad(): void {
    clearGrads(this.params as Tensor[]);
  }

  /** Frees the momentum buffers (the parameters are untouched). */
  dispose(): void {
    for (const b of this.#buffers.values()) b.dispose();
    this.#buffers.clear();
  }
}
