/**
 * The generator training step the benches time and profile (bench/stqa_net_bench.ts,
 * bench/train_step_bench.ts, bench/profile_train_step.ts), its input clip and its FLOP counts:
 * one home, so that every figure in bench/RESULTS.md about "a training step" is the same work.
 *
 * The step: `generatorPerturb` with the tape, the victim's `scoreBatch`, `boundaryLoss` +
 * {@link PENALTY} x `weightPenalty`, backward, loss read back, Adam step, `zeroGrad`.
 *
 * FLOPs (analytic, elementwise ops ignored): each conv 2·Cin·Cout·k·k·Hout·Wout per frame; the
 * encoder convs at full, 1/2 and 1/4 resolution, the two GRU convs (input and state, 3x3, to
 * 3·hidden channels) and the 1x1 fusion at 1/4, the decoder stages at 1/2 and full resolution.
 * A training step counts the generator's forward, its weight gradients and its input gradients
 * (all convs but the first, whose input needs none), and the victim's conv forward and input
 * gradients (its weights are frozen).
 *
 * @module
 */

import { StqaNet, type StqaNetConfig } from "../src/models/stqa_net.ts";
import { loadVictim, type Victim } from "../src/models/victims/mod.ts";
import { computeJnd } from "../src/jnd/mod.ts";
import { inputChannels } from "../src/models/victims/victim.ts";
import { generatorPerturb } from "../src/attack/stqa.ts";
import { boundaryLoss, weightPenalty } from "../src/attack/losses.ts";
import { add, mul } from "../src/nn/mod.ts";
import { Adam } from "../src/optim/optimizers.ts";
import { noGrad, type Tensor, tensor, tidy } from "../src/tensor/tensor.ts";
import { seededRandom } from "../src/_random.ts";

/** The JND model of the benches' clips. */
export const JND_MODEL = "namm-st";
/** Weight of the weight-map penalty in the step's loss. */
export const PENALTY = 0.1;

const half = (n: number) => Math.ceil(n / 2);
const conv = (cin: number, cout: number, k: number, h: number, w: number) =>
  2 * cin * cout * k * k * h * w;

/**
 * Forward conv FLOPs of STQA-Net on `t` frames of h x w, and those of its first conv.
 *
 * @example
 * ```ts
 * import { StqaNet } from "../src/models/stqa_net.ts";
 * import { generatorFlops } from "./_train_step.ts";
 * const { forward } = generatorFlops(new StqaNet().config, 16, 128, 128);
 * ```
 */
export function generatorFlops(
  c: StqaNetConfig,
  t: number,
  h: number,
  w: number,
): { forward: number; first: number } {
  const [e1, e2, e3] = c.encoder;
  const h1 = half(h), w1 = half(w), h2 = half(h1), w2 = half(w1);
  const first = conv(c.input === "jnd" ? 1 : 4, e1, 3, h, w);
  let f = first + conv(e1, e2, 3, h1, w1) + conv(e2, e3, 3, h2, w2);
  f += conv(e3, 3 * c.hidden, 3, h2, w2) + conv(c.hidden, 3 * c.hidden, 3, h2, w2);
  const branches = c.variant === "two-branch" ? 2 : 1;
  const sk = c.skips ? [e2, e1] : [0, 0];
  f += branches * (conv(e3 + c.hidden, e3, 1, h2, w2) +
    conv(e3 + sk[0], c.decoder[0], 3, h1, w1) +
    conv(c.decoder[0] + sk[1], c.decoder[1], 3, h, w) + conv(c.decoder[1], 3, 3, h, w));
  return { forward: t * f, first: t * first };
}

/**
 * Forward conv FLOPs of vsfa-mini (3x3 stride-2 convs over its input features) on `t` frames
 * of h x w.
 *
 * @example
 * ```ts
 * import { loadVictim } from "../src/models/victims/mod.ts";
 * import { victimFlops } from "./_train_step.ts";
 * const flops = victimFlops(await loadVictim("vsfa-mini"), 16, 128, 128);
 * ```
 */
export function victimFlops(victim: Victim, t: number, h: number, w: number): number {
  const vc = victim.config as unknown as { channels: number[]; input: "rgb" | "rgb+mscn" };
  let f = 0, cin = inputChannels(vc.input);
  for (const cout of vc.channels) {
    h = half(h);
    w = half(w);
    f += conv(cin, cout, 3, h, w);
    cin = cout;
  }
  return t * f;
}

/**
 * FLOPs of one training step (see the module doc) on one clip of `t` frames of h x w.
 *
 * @example
 * ```ts
 * import { StqaNet } from "../src/models/stqa_net.ts";
 * import { loadVictim } from "../src/models/victims/mod.ts";
 * import { trainStepFlops } from "./_train_step.ts";
 * const flops = trainStepFlops(new StqaNet(), await loadVictim("vsfa-mini"), 16, 128, 128);
 * ```
 */
export function trainStepFlops(
  net: StqaNet,
  victim: Victim,
  t: number,
  h: number,
  w: number,
): number {
  const { forward, first } = generatorFlops(net.config, t, h, w);
  return 3 * forward - first + 2 * victimFlops(victim, t, h, w);
}

/**
 * A smooth random field plus noise and a pan, `[T,3,H,W]` in [0,1] on 8-bit levels,
 * deterministic (kept: the caller disposes it).
 *
 * @example
 * ```ts
 * import { initGpu } from "../src/gpu/device.ts";
 * import { clip } from "./_train_step.ts";
 * await initGpu();
 * const x = clip(2, 32, 32);
 * ```
 */
export function clip(t: number, h: number, w: number): Tensor {
  const rand = seededRandom(2026);
  const ph = Array.from({ length: 9 }, () => rand.uniform() * 6.283);
  const out = new Float32Array(t * 3 * h * w);
  for (let f = 0; f < t; f++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        const cy = Math.cos(y * 0.07 + ph[c + 3]);
        for (let x = 0; x < w; x++) {
          const v = 0.5 + 0.25 * Math.sin((x + 2 * f) * 0.05 + ph[c]) * cy +
            0.15 * Math.sign(Math.sin((x + 2 * f) * 0.013 + y * 0.021 + ph[c + 6])) +
            0.05 * (rand.uniform() - 0.5);
          out[((f * 3 + c) * h + y) * w + x] = Math.round(255 * Math.min(1, Math.max(0, v))) / 255;
        }
      }
    }
  }
  return tensor(out, [t, 3, h, w]).keep();
}

/** What {@link trainStep} trains: a generator, its optimiser and one clip. */
export interface TrainStepInputs {
  /** The generator. */
  net: StqaNet;
  /** The victim (frozen). */
  victim: Victim;
  /** Adam (or another optimiser) over the generator's parameters. */
  opt: Adam;
  /** Frames `[1,T,3,H,W]`. */
  x: Tensor;
  /** JND maps `[1,T,1,H,W]`. */
  jnd: Tensor;
  /** The score the loss pulls the victim toward. */
  target: number;
}

/**
 * One training step (see the module doc); resolves to the CPU milliseconds spent encoding it
 * (forward, backward and Adam, not the wait for the loss) and the loss.
 *
 * @example
 * ```ts
 * import { trainStep, type TrainStepInputs } from "./_train_step.ts";
 * // const { loss } = await trainStep(inputs);
 * ```
 */
export async function trainStep(
  s: TrainStepInputs,
): Promise<{ encodeMs: number; loss: number }> {
  const t0 = performance.now();
  const loss = tidy(() => {
    const r = generatorPerturb(s.net, s.x, s.jnd);
    const l = add(
      boundaryLoss(s.victim.scoreBatch(r.adversarial[0]), [s.target]),
      mul(weightPenalty(r.weights[0]), PENALTY),
    );
    l.backward();
    return l;
  });
  const encodeMs = performance.now() - t0;
  const value = (await loss.read())[0];
  loss.dispose();
  if (!Number.isFinite(value)) throw new Error(`training loss is ${value}`);
  const t1 = performance.now();
  s.opt.step();
  s.opt.zeroGrad();
  return { encodeMs: encodeMs + performance.now() - t1, loss: value };
}

/**
 * The inputs of the benches' training step: a generator (the default config, or `config`),
 * vsfa-mini, Adam at lr 1e-4 and one clip of `t` frames of h x w with its namm-st JND maps, all
 * kept (the process owns them).
 *
 * @example
 * ```ts
 * import { initGpu } from "../src/gpu/device.ts";
 * import { stepInputs, trainStep } from "./_train_step.ts";
 * await initGpu();
 * // const inputs = await stepInputs({}, 16, 128, 128); await trainStep(inputs);
 * ```
 */
export async function stepInputs(
  config: Record<string, unknown>,
  t: number,
  h: number,
  w: number,
): Promise<TrainStepInputs> {
  const net = new StqaNet({ seed: 1, config });
  const frames = clip(t, h, w);
  const jnd = noGrad(() => computeJnd(frames, { model: JND_MODEL }));
  return {
    net,
    victim: await loadVictim("vsfa-mini"),
    opt: new Adam(Object.values(net.parameters()), { lr: 1e-4 }),
    x: frames.reshape([1, t, 3, h, w]).keep(),
    jnd: jnd.reshape([1, t, 1, h, w]).keep(),
    target: 1,
  };
}
