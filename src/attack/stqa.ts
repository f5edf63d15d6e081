/**
 * Applying an STQA-Net generator: the perturbation `d = eps * J * A` for a clip (or a batch, in
 * training), chunk by chunk with the GRU state carried across chunks, and 8-bit quantisation
 * that never leaves the JND box. `stqaAttack` wraps a loaded generator in the {@link Attack}
 * interface that the baselines share.
 *
 * @module
 */

import { computeJnd } from "../jnd/mod.ts";
import { bundledGeneratorName, type Generator } from "../models/generator_io.ts";
import type { StqaNet } from "../models/stqa_net.ts";
import type { Victim } from "../models/victims/victim.ts";
import { bindingLimit } from "../gpu/device.ts";
import { syncGpu } from "../gpu/queue.ts";
import { concat, mul, slice } from "../nn/mod.ts";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/tensor.ts";
import { attackTarget } from "./losses.ts";
import { applyPerturbation } from "./perturb.ts";
import type { Attack, AttackMode, AttackOptions, AttackOutput, AttackWindows } from "./types.ts";

/** Options of {@link generatorPerturb}. */
export interface GeneratorPerturbOptions {
  /** Multiple of the JND (default 1). */
  eps?: number;
  /** The GRU state carried from the previous chunk. */
  state?: Tensor;
  /**
   * A `signed` generator's direction: +1 (up, the map as it is) or -1 (down, negated), one
   * number for a clip or one per clip of a batch; then one adversarial result. Without it a
   * signed generator gives two, `[up, down]`, like a two-branch one.
   */
  signs?: number | number[];
  /**
   * Only these directions, in this order (0 up, 1 down for a two-branch or signed generator; 0
   * for the untargeted variant): an attack that reads one branch computes only that one's
   * perturbation (a signed generator's negation included). Default all; not with `signs`.
   */
  directions?: number[];
}

/** What {@link generatorPerturb} returns. */
export interface GeneratorPerturbResult {
  /**
   * Adversarial frames per branch, `clip(x + eps * J * A, 0, 1)`, shaped like the frames (for a
   * signed generator without `signs`: `[up, down]`, the map and its negation), or per entry of
   * `directions` when it is given.
   */
  adversarial: Tensor[];
  /** The attack weight maps per branch (a `signed` generator's with its signs applied). */
  weights: Tensor[];
  /** The GRU state after the last frame. */
  state: Tensor;
}

/**
 * Runs the generator on frames `[T,3,H,W]` (or a batch `[B,T,3,H,W]`) with their JND maps and
 * applies its perturbation. Differentiable in the generator's parameters; run it in `tidy`.
 * Frames too large for one pass (see {@link chunkFor}) go through the generator in spatial
 * tiles, with the same result; that path records no gradients (run it in `noGrad`).
 *
 * @example
 * ```ts
 * import { computeJnd, initGpu, StqaNet, tensor, tidy } from "../../mod.ts";
 * import { generatorPerturb } from "./stqa.ts";
 * await initGpu();
 * const net = new StqaNet({ seed: 1, config: { encoder: [4, 8, 8], hidden: 8, decoder: [8, 4] } });
 * const x = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const adv = tidy(() => generatorPerturb(net, x, computeJnd(x)).adversarial[0]);
 * ```
 */
export function generatorPerturb(
  net: StqaNet,
  frames: Tensor,
  jnd: Tensor,
  options: GeneratorPerturbOptions = {},
): GeneratorPerturbResult {
  const eps = options.eps ?? 1;
  const { weights, state } = net.forward(jnd, { frames, state: options.state });
  const box = eps === 1 ? jnd : mul(jnd, eps);
  const signs = options.signs;
  let steered = weights;
  if (signs === undefined) {
    const n = directionsOf(net);
    const picked = options.directions ?? Array.from({ length: n }, (_, i) => i);
    const bad = picked.find((d) => !Number.isInteger(d) || d < 0 || d >= n);
    if (bad !== undefined) {
      throw new RangeError(
        `generatorPerturb: direction ${bad} does not exist (the generator has ${n})`,
      );
    }
    const signed = net.config.variant === "signed";
    steered = picked.map((d) => signed ? (d === 0 ? weights[0] : mul(weights[0], -1)) : weights[d]);
  } else if (options.directions !== undefined) {
    throw new RangeError("generatorPerturb: give signs or directions, not both");
  } else {
    if (net.config.variant !== "signed") {
      throw new RangeError(
        `generatorPerturb: signs need a signed generator, not ${net.config.variant}`,
      );
    }
    const list = typeof signs === "number" ? [signs] : signs;
    if (list.some((v) => v !== 1 && v !== -1)) {
      throw new RangeError(`generatorPerturb: signs must be +1 or -1, got [${list}]`);
    }
    const batched = frames.rank === 5;
    if (typeof signs !== "number" && (!batched || signs.length !== frames.shape[0])) {
      throw new RangeError(
        `generatorPerturb: ${signs.length} sign(s) for frames [${frames.shape}] (one per clip of a batch)`,
      );
    }
    if (typeof signs === "number") {
      if (signs === -1) steered = weights.map((a) => mul(a, -1));
    } else {
      const s = tensor(signs, [signs.length, 1, 1, 1, 1]);
      steered = weights.map((a) => mul(a, s));
    }
  }
  const adversarial = steered.map((a) => applyPerturbation(frames, mul(box, a)));
  return { adversarial, weights: steered, state };
}

/**
 * Quantises adversarial frames to 8 bits without leaving the JND box: per value,
 * `dq = round(255 * (adv - clean))` clipped to `±floor(255 * eps * J)` (never rounded up past the box), and `clean + dq / 255`
 * (clean frames are 8-bit values, so the result is exactly representable as a level).
 * In place on `adv`; all arrays planar `[T,C,H,W]` (`jnd` `[T,1,H,W]`).
 *
 * @example
 * ```ts
 * import { quantizeInJnd } from "./stqa.ts";
 * const clean = new Float32Array([100 / 255]);
 * const adv = new Float32Array([103.7 / 255]);
 * quantizeInJnd(clean, adv, new Float32Array([3.5 / 255]), [1, 1, 1, 1]);
 * // adv[0] * 255 is 103 (the box allows 3 levels)
 * ```
 */
export function quantizeInJnd(
  clean: Float32Array,
  adv: Float32Array,
  jnd: Float32Array,
  shape: readonly number[],
  eps = 1,
): Float32Array {
  const [t, c, h, w] = shape;
  const plane = h * w;
  if (clean.length < t * c * plane || adv.length < t * c * plane || jnd.length < t * plane) {
    throw new RangeError(
      `quantizeInJnd: arrays of ${clean.length}, ${adv.length} and ${jnd.length} values are ` +
        `too short for [${shape}]`,
    );
  }
  for (let f = 0; f < t; f++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (f * c + ch) * plane;
      const jb = f * plane;
      for (let i = 0; i < plane; i++) {
        const k = base + i;
        const level = Math.round(clean[k] * 255);
        const bound = Math.floor(255 * eps * jnd[jb + i]);
        let dq = Math.round(255 * adv[k] - level);
        if (dq > bound) dq = bound;
        else if (dq < -bound) dq = -bound;
        let q = level + dq;
        if (q < 0) q = 0;
        else if (q > 255) q = 255;
        adv[k] = q / 255;
      }
    }
  }
  return adv;
}

/** Options of {@link attackWithGenerator}. */
export interface AttackWithGeneratorOptions {
  /** Multiple of the JND (default: the eps the generator was trained at). */
  eps?: number;
  /**
   * The direction: 0 (up) or 1 (down) for a two-branch generator (its branch) and a signed one
   * (its map or the negation); 0 for the untargeted variant.
   */
  branch?: number;
  /** Frames per chunk (default 16); the GRU state is carried across chunks. */
  chunkFrames?: number;
  /** Precomputed JND maps `[T,1,H,W]` (default: computed with the generator's JND model). */
  jnd?: Tensor;
  /** Quantise to 8 bits inside the JND box (default true). */
  quantize?: boolean;
  /**
   * The ConvGRU state to carry across calls, for a long clip attacked window by window: its
   * `state` (if any) starts this clip, and is replaced by the state after its last frame (kept,
   * owned by the caller, who disposes it at the end). Without it the state starts empty and is
   * freed.
   */
  carry?: { state?: Tensor };
}

/**
 * The adversarial version of a clip `[T,3,H,W]`, processed `chunkFrames` frames at a time with
 * the GRU state (and namm-st's previous frame) carried across chunks, so the result does not
 * depend on the chunk size. No gradients. Returns a new tensor.
 *
 * @example
 * ```ts
 * import { initGpu, loadGenerator, readVideo } from "../../mod.ts";
 * import { attackWithGenerator } from "./stqa.ts";
 * await initGpu();
 * const g = await loadGenerator("stqa-vsfa-mini");
 * const frames = await readVideo("data/samples/astronaut_pan.mkv");
 * const adv = await attackWithGenerator(g, frames);
 * ```
 */
export async function attackWithGenerator(
  generator: Generator,
  frames: Tensor,
  options: AttackWithGeneratorOptions = {},
): Promise<Tensor> {
  if (frames.rank !== 4 || frames.shape[1] !== 3) {
    throw new RangeError(`attackWithGenerator: frames must be [T,3,H,W], got [${frames.shape}]`);
  }
  const [t, , h, w] = frames.shape;
  const eps = options.eps ?? generator.info.eps;
  const branch = options.branch ?? 0;
  const nBranches = directionsOf(generator.net);
  if (!Number.isInteger(branch) || branch < 0 || branch >= nBranches) {
    throw new RangeError(
      `attackWithGenerator: branch ${branch} does not exist (the generator has ${nBranches})`,
    );
  }
  if (options.jnd && options.jnd.shape.join() !== [t, 1, h, w].join()) {
    throw new RangeError(
      `attackWithGenerator: jnd is [${options.jnd.shape}], frames need [${[t, 1, h, w]}]`,
    );
  }
  const chunk = chunkFor(generator.net, h, w, options.chunkFrames ?? 16);
  const pieces: Tensor[] = [];
  let state: Tensor | undefined = options.carry?.state;
  try {
    for (let s = 0; s < t; s += chunk) {
      const e = Math.min(t, s + chunk);
      const out = tidy(() =>
        noGrad(() => {
          const x = slice(frames, { axis: 0, start: s, end: e });
          const j = options.jnd
            ? slice(options.jnd, { axis: 0, start: s, end: e })
            : computeJnd(x, {
              model: generator.info.jnd,
              previous: s > 0 ? slice(frames, { axis: 0, start: s - 1, end: s }) : undefined,
            });
          const r = generatorPerturb(generator.net, x, j, { eps, state, directions: [branch] });
          return { adv: r.adversarial[0], state: r.state, x, j };
        })
      );
      state?.dispose();
      state = out.state.keep();
      if (options.quantize ?? true) {
        const shape = out.adv.shape;
        const q = quantizeInJnd(
          await out.x.read(),
          await out.adv.read(),
          await out.j.read(),
          shape,
          eps,
        );
        pieces.push(tensor(q, shape).keep());
      } else {
        pieces.push(out.adv.keep());
      }
      for (const k of [out.adv, out.x, out.j]) if (!pieces.includes(k)) k.dispose();
    }
    return pieces.length === 1 ? pieces[0] : tidy(() => concat(pieces, 0).keep());
  } catch (e) {
    if (pieces.length === 1) pieces[0].dispose();
    throw e;
  } finally {
    if (options.carry) options.carry.state = state;
    else state?.dispose();
    if (pieces.length > 1) { for (const p of pieces) p.dispose(); }
  }
}

/**
 * The frames per generator chunk: `requested`, lowered where needed so that every tensor of the
 * forward pass fits in one storage binding of the adapter (at 540x960 the default network's
 * widest activation is 95 MiB per frame against lavapipe's 128 MiB limit). Where even one frame
 * does not fit whole (1080p and 4K with the bundled generator on lavapipe), 1: the generator
 * then goes through that frame in spatial tiles with the same result ({@link StqaNet.tiling}).
 *
 * @throws {RangeError} for a `requested` that is not a positive whole number, and where even
 * tiles cannot help (one frame's weight maps or the GRU state pass the binding limit).
 * @example
 * ```ts
 * import { chunkFor } from "./stqa.ts";
 * // chunkFor(generator.net, 540, 960, 16); // 1 for the default config on lavapipe
 * // chunkFor(generator.net, 2160, 3840, 16); // 1, in tiles
 * ```
 */
export function chunkFor(net: StqaNet, h: number, w: number, requested: number): number {
  if (!Number.isInteger(requested) || requested < 1) {
    throw new RangeError(`chunkFrames must be a positive whole number, got ${requested}`);
  }
  const fit = Math.floor(bindingLimit() / net.bytesPerFrame(h, w));
  if (fit >= 1) return Math.min(requested, fit);
  net.tiling(h, w, 1); // throws where even tiles cannot help
  return 1;
}

/**
 * Whether a generator can push either way (two-branch and signed generators: the attack picks
 * the direction, for `untargeted` from one clean scoring pass); the paper's untargeted variant
 * cannot.
 *
 * @example
 * ```ts
 * import { StqaNet } from "../../mod.ts";
 * import { steerable } from "./stqa.ts";
 * // steerable(new StqaNet({ config: { variant: "signed" } })); // true
 * ```
 */
export function steerable(net: StqaNet): boolean {
  return net.config.variant !== "untargeted";
}

/**
 * The directions a generator's attack can take: 2 (up and down) for a {@link steerable} one,
 * else 1.
 *
 * @example
 * ```ts
 * import { directionsOf } from "./stqa.ts";
 * // directionsOf(twoBranchGenerator.net); // 2
 * ```
 */
export function directionsOf(net: StqaNet): number {
  return steerable(net) ? 2 : 1;
}

/**
 * The direction an attack mode uses: for the untargeted variant always 0 (it is trained for the
 * untargeted boundary); for two-branch and signed ones 0 (up) or 1 (down), and for `untargeted`
 * the one toward the score-reversed boundary of the clean score (decided by `median`, by default
 * the generator's training median).
 *
 * @example
 * ```ts
 * import { branchFor } from "./stqa.ts";
 * // branchFor(generator, "untargeted", 4.1); // 1 (down) for a two-branch generator, median 3
 * ```
 */
export function branchFor(
  generator: Generator,
  mode: AttackMode,
  cleanScore?: number,
  median: number = generator.info.median,
): number {
  if (!steerable(generator.net)) {
    if (mode !== "untargeted") {
      throw new RangeError(
        `mode '${mode}' needs a two-branch or signed generator; ${generator.path} is ` +
          "untargeted (train one with --variant signed or two-branch, or use --mode untargeted)",
      );
    }
    return 0;
  }
  if (mode === "up") return 0;
  if (mode === "down") return 1;
  if (cleanScore === undefined) {
    throw new RangeError(
      `branchFor: the untargeted direction of a ${generator.net.config.variant} generator ` +
        "needs the clean score",
    );
  }
  const { qMin, qMax } = generator.info;
  return attackTarget(cleanScore, "untargeted", { qMin, qMax, median }) === qMax ? 0 : 1;
}

/**
 * A loaded generator as an {@link Attack} (method name `stqa-net`): one forward pass per clip,
 * no victim passes (except one clean score when a two-branch generator attacks untargeted and
 * the caller gives no `cleanScore`). Its `jndModel` is the generator's (`generator.info.jnd`,
 * the model it was trained with): `options.jnd` must hold that model's maps, and is used as
 * given. `options.eps` defaults to the generator's. The adversarial frames are float values
 * inside the JND box (`jndBox`), not yet quantised to 8 bits (as the baselines return theirs);
 * `quantizeInJnd` rounds them without leaving the box.
 *
 * A long clip can be attacked window by window (`windows`): the ConvGRU state is carried from
 * each window to the next, so the frames equal one `run` on the whole clip; the branch of
 * `untargeted` then comes from `cleanScore` (the whole video's; required for a two-branch
 * generator, `usesCleanScore`). `bytesPerFrame` is what one frame binds at most: the network's
 * widest activation, or a frame's own floats where the network goes through the frame in tiles.
 *
 * @example
 * ```ts
 * import { computeJnd, initGpu, loadGenerator, loadVictim, readVideo } from "../../mod.ts";
 * import { stqaAttack } from "./stqa.ts";
 * await initGpu();
 * const attack = stqaAttack(await loadGenerator("stqa-vsfa-mini"));
 * const frames = await readVideo("data/samples/astronaut_pan.mkv");
 * const out = await attack.run(frames, await loadVictim("vsfa-mini"), { jnd: computeJnd(frames) });
 * ```
 */
export function stqaAttack(
  generator: Generator,
  options: { chunkFrames?: number; name?: string } = {},
): Attack {
  const net = generator.net;
  return {
    name: options.name ?? "stqa-net",
    jndBox: true,
    jndModel: generator.info.jnd,
    usesCleanScore: steerable(net),
    bytesPerFrame: (h, w) => net.tiling(h, w) ? 12 * h * w : net.bytesPerFrame(h, w),
    async run(frames: Tensor, victim: Victim, opts: AttackOptions): Promise<AttackOutput> {
      const t0 = performance.now();
      const mode = opts.mode ?? "untargeted";
      let passes = 0;
      let clean = opts.cleanScore;
      if (steerable(net) && mode === "untargeted" && clean === undefined) {
        const s = tidy(() => noGrad(() => victim.score(frames)));
        clean = (await s.read())[0];
        s.dispose();
        passes = 1;
      }
      const branch = branchFor(generator, mode, clean, opts.median);
      const adversarial = await attackWithGenerator(generator, frames, {
        eps: opts.eps,
        branch,
        jnd: opts.jnd,
        chunkFrames: options.chunkFrames,
        // Float frames in the box, like the baselines': the caller quantises (the eval with
        // quantizeInJnd), so every method is timed without the 8-bit step and its read-backs.
        quantize: false,
      });
      await syncGpu();
      return { adversarial, victimPasses: passes, seconds: (performance.now() - t0) / 1000 };
    },
    windows(_victim: Victim, opts: Omit<AttackOptions, "jnd">): AttackWindows {
      const branch = branchFor(generator, opts.mode ?? "untargeted", opts.cleanScore, opts.median);
      const eps = opts.eps ?? generator.info.eps;
      const carry: { state?: Tensor } = {};
      return {
        async next(frames: Tensor, jnd: Tensor): Promise<AttackOutput> {
          const t0 = performance.now();
          const adversarial = await attackWithGenerator(generator, frames, {
            eps,
            branch,
            jnd,
            chunkFrames: options.chunkFrames,
            quantize: false,
            carry,
          });
          await syncGpu();
          // The clean pass that picks a two-branch generator's branch is the caller's.
          return { adversarial, victimPasses: 0, seconds: (performance.now() - t0) / 1000 };
        },
        dispose() {
          carry.state?.dispose();
          carry.state = undefined;
        },
      };
    },
  };
}

/**
 * Checks that a generator can attack a victim: the same family as the victim it was trained
 * against (scores on the same scale). A generator trained against one victim can still be
 * applied to another family for transfer studies, through {@link attackVideo} directly.
 *
 * @example
 * ```ts
 * import { checkPair } from "./stqa.ts";
 * // checkPair(generator, victim); // throws on a mismatch
 * ```
 */
export function checkPair(generator: Generator, victim: Victim): void {
  if (generator.info.victimFamily !== victim.family) {
    throw new Error(
      `the generator ${generator.path} was trained against ${generator.info.victim} ` +
        `(${generator.info.victimFamily}), not ${victim.family} (${victim.name}); pass ` +
        `--generator ${bundledGeneratorName(victim.name)} or train one with ` +
        `\`deno task train --victim ${victim.name}\``,
    );
  }
}
