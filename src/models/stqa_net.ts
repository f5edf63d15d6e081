/**
 * STQA-Net, the spatiotemporal attack generator (Hu, Liu, Sang and Wang, Knowledge-Based Systems
 * 293, 111655, 2024; the layer sizes are this project's, see docs/attack.md): JND maps (optionally with the frames) -> spatial encoder (3x3 convs, two of
 * stride 2, features at 1/4 resolution) -> convolutional GRU over time -> fusion of the spatial
 * features with the GRU state (1x1 conv) -> decoder (two bilinear x2 upsampling + 3x3 conv
 * stages, each also reading the encoder's features at its resolution through a skip
 * connection, then a 3x3 conv and tanh) -> attack weight maps `A` in [-1, 1] with 3 channels.
 * The perturbation is `d = eps * J * A`, so `|d| <= eps * J` by construction.
 *
 * The `two-branch` variant shares the encoder and the GRU and has two fusion+decoder branches,
 * `A+` (pushes the score up) and `A-` (down).
 *
 * The network is fully convolutional: it trains on small crops and attacks any frame size
 * (odd sizes too: each decoder stage is cropped to its encoder stage's size). The GRU state can
 * be carried from one chunk of frames to the next, so a long video goes through in chunks with
 * the same result as in one piece.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape, Schema } from "../_zod.ts";
import {
  concat,
  conv2d,
  convGruGates,
  leakyRelu,
  mean,
  mul,
  slice,
  stack,
  sub,
  tanh,
  upsample2x,
} from "../nn/mod.ts";
import { full, type Tensor } from "../tensor/tensor.ts";
import { ParamBuilder } from "./victims/victim.ts";

const int = z.number().int().positive();

/**
 * The generator's config (every field has a default in {@link StqaNetConfigSchema}). An object
 * type rather than an interface, so that a config is also a `Record<string, unknown>` (as saved
 * beside the weights).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { type StqaNetConfig, StqaNetConfigSchema } from "./stqa_net.ts";
 * const small: StqaNetConfig = { ...StqaNetConfigSchema.parse({}), encoder: [4, 8, 8], hidden: 8 };
 * const saved: Record<string, unknown> = small;
 * assert.deepEqual(StqaNetConfigSchema.parse(saved), small);
 * ```
 */
export type StqaNetConfig = {
  /** What the encoder reads: the JND map, or the JND map and the frame (`jnd+rgb`). */
  input: "jnd" | "jnd+rgb";
  /** `untargeted` (one decoder) or `two-branch` (decoders for up and down). */
  variant: "untargeted" | "two-branch";
  /** Output channels of the three encoder convs (stride 1, 2, 2). */
  encoder: [number, number, number];
  /** ConvGRU hidden channels (3x3 gates). */
  hidden: number;
  /** Output channels of the two upsampling decoder stages. */
  decoder: [number, number];
  /** Negative slope of the leaky ReLUs. */
  slope: number;
  /**
   * U-Net skip connections: each decoder stage also reads the encoder's features at its
   * resolution (without them the decoder only sees 1/4-resolution features and can make only
   * smooth maps; see the README's STQA-Net section for the measured difference).
   */
  skips: boolean;
  /**
   * Subtract each map's spatial mean (per frame and channel) before the tanh, so the maps are
   * textures rather than colour shifts (without it training settles on a global colour shift
   * within a few steps, saturates the tanh and stops learning; see the README).
   */
  centre: boolean;
  /** The JND map (levels/255) is multiplied by this before the encoder (about unit scale). */
  jndScale: number;
};

const stqaNetConfig = z.object({
  input: z.enum(["jnd", "jnd+rgb"]).default("jnd"),
  variant: z.enum(["untargeted", "two-branch"]).default("untargeted"),
  encoder: z.tuple([int, int, int]).default([16, 32, 64]),
  hidden: int.default(64),
  decoder: z.tuple([int, int]).default([32, 16]),
  slope: z.number().min(0).max(1).default(0.2),
  skips: z.boolean().default(true),
  centre: z.boolean().default(true),
  jndScale: z.number().positive().default(16),
}).strict();
const _sameConfig: SameShape<StqaNetConfig, z.output<typeof stqaNetConfig>> = true;

/**
 * Validates a generator config and fills in the defaults: `input` "jnd", `variant` "untargeted",
 * `encoder` [16, 32, 64], `hidden` 64, `decoder` [32, 16], `slope` 0.2, `skips` and `centre`
 * true, `jndScale` 16. Unknown fields are refused.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { StqaNetConfigSchema } from "./stqa_net.ts";
 * const c = StqaNetConfigSchema.parse({ hidden: 32 });
 * assert.deepEqual([c.hidden, c.encoder, c.variant], [32, [16, 32, 64], "untargeted"]);
 * assert.equal(StqaNetConfigSchema.safeParse({ hiden: 32 }).success, false);
 * ```
 */
export const StqaNetConfigSchema: Schema<StqaNetConfig> = stqaNetConfig;

/** What {@link StqaNet.forward} returns. */
export interface StqaNetOutput {
  /**
   * Attack weight maps in [-1, 1], shaped like the frames (`[T,3,H,W]`, or `[B,T,3,H,W]` for a
   * batch): one for `untargeted`, two (`[up, down]`) for `two-branch`.
   */
  weights: Tensor[];
  /** The GRU state after the last frame `[B, hidden, H/4, W/4]` (pass it to the next chunk). */
  state: Tensor;
}

/** Options of {@link StqaNet.forward}. */
export interface StqaNetForwardOptions {
  /** The frames `[T,3,H,W]` / `[B,T,3,H,W]` in [0,1]: required for `input: "jnd+rgb"`. */
  frames?: Tensor;
  /** The GRU state from the previous chunk (default zeros). */
  state?: Tensor;
}

/** Output size of a 3x3, stride-2, padding-1 conv. */
const half = (n: number) => Math.ceil(n / 2);

/**
 * The STQA-Net generator.
 *
 * @example
 * ```ts
 * import { initGpu, StqaNet, tensor } from "../../mod.ts";
 * await initGpu();
 * const net = new StqaNet({ seed: 1, config: { encoder: [4, 8, 8], hidden: 8, decoder: [8, 4] } });
 * const jnd = tensor(new Float32Array(2 * 16 * 16).fill(0.02), [2, 1, 16, 16]);
 * const { weights, state } = net.forward(jnd);
 * console.log(weights[0].shape); // [2, 3, 16, 16]
 * state.dispose();
 * ```
 */
export class StqaNet {
  /** The validated config. */
  readonly config: StqaNetConfig;
  #params: Record<string, Tensor>;

  /**
   * A network with freshly initialised weights: `config` overrides the defaults (checked, a bad
   * field throws a `RangeError` naming it), and `seed` (default 1) seeds the initialisers.
   */
  constructor(options: { seed?: number; config?: Record<string, unknown> } = {}) {
    const parsed = StqaNetConfigSchema.safeParse(options.config ?? {});
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new RangeError(`StqaNet config: ${i.path.join(".") || "(root)"}: ${i.message}`);
    }
    const c = this.config = parsed.data;
    const pb = new ParamBuilder(options.seed ?? 1);
    const [e1, e2, e3] = c.encoder;
    const cin = c.input === "jnd" ? 1 : 4;
    pb.conv("enc.0", cin, e1, 3, c.slope);
    pb.conv("enc.1", e1, e2, 3, c.slope);
    pb.conv("enc.2", e2, e3, 3, c.slope);
    // GRU convs: gain 1 (the gates are sigmoid/tanh, not leaky ReLU).
    pb.conv("gru.x", e3, 3 * c.hidden, 3, 1);
    pb.conv("gru.h", c.hidden, 3 * c.hidden, 3, 1);
    for (const b of this.branches()) {
      pb.conv(`${b}.fuse`, e3 + c.hidden, e3, 1, c.slope);
      const sk = c.skips ? [e2, e1] : [0, 0];
      pb.conv(`${b}.dec.0`, e3 + sk[0], c.decoder[0], 3, c.slope);
      pb.conv(`${b}.dec.1`, c.decoder[0] + sk[1], c.decoder[1], 3, c.slope);
      pb.conv(`${b}.out`, c.decoder[1], 3, 3, 1);
    }
    this.#params = pb.params;
  }

  /** The decoder branch names: `["dec"]` or `["up", "down"]`. */
  branches(): string[] {
    return this.config.variant === "two-branch" ? ["up", "down"] : ["dec"];
  }

  /** The parameters by name (the names of the safetensors file). */
  parameters(): Record<string, Tensor> {
    return this.#params;
  }

  /**
   * Bytes per frame of the largest tensor {@link StqaNet.forward} makes for `h x w` frames (a
   * tensor must fit in one storage binding): the widest activation at full, half and quarter
   * resolution. Divide the adapter's `maxStorageBufferBindingSize` by it for the most frames one
   * forward pass may take.
   *
   * @example
   * ```ts
   * import { StqaNet } from "./stqa_net.ts";
   * // const frames = Math.floor(limit / net.bytesPerFrame(540, 960));
   * ```
   */
  bytesPerFrame(h: number, w: number): number {
    const c = this.config;
    const [e1, e2, e3] = c.encoder;
    const [d0, d1] = c.decoder;
    const h1 = half(h), w1 = half(w), h2 = half(h1), w2 = half(w1);
    const full = Math.max(4, e1, d0 + (c.skips ? e1 : 0), d1, 3) * (2 * h1) * (2 * w1);
    const halfRes = Math.max(e2, e3 + (c.skips ? e2 : 0), d0) * (2 * h2) * (2 * w2);
    const quarter = Math.max(3 * c.hidden, e3 + c.hidden) * h2 * w2;
    return 4 * Math.max(full, halfRes, quarter);
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    return Object.values(this.#params).reduce((n, p) => n + p.size, 0);
  }

  #conv(name: string, x: Tensor, stride = 1): Tensor {
    const w = this.#params[`${name}.weight`];
    const pad = (w.shape[2] - 1) / 2;
    return conv2d(x, w, this.#params[`${name}.bias`], { stride, padding: pad });
  }

  /**
   * Attack weight maps for a clip `jnd` `[T,1,H,W]` (levels/255, from `computeJnd`) or a batch
   * `[B,T,1,H,W]`. Differentiable in the parameters (and in `frames` for `jnd+rgb`). Run it in
   * `tidy`; keep the returned state if it must outlive the scope.
   */
  forward(jnd: Tensor, options: StqaNetForwardOptions = {}): StqaNetOutput {
    const c = this.config;
    const batched = jnd.rank === 5;
    if (!((jnd.rank === 4 && jnd.shape[1] === 1) || (batched && jnd.shape[2] === 1))) {
      throw new RangeError(
        `StqaNet.forward: jnd must be [T,1,H,W] or [B,T,1,H,W], got [${jnd.shape}]`,
      );
    }
    const [b, t, , h, w] = batched ? jnd.shape : [1, ...jnd.shape];
    const frames = options.frames;
    if (c.input === "jnd+rgb") {
      const want = batched ? [b, t, 3, h, w] : [t, 3, h, w];
      if (!frames || frames.shape.join() !== want.join()) {
        throw new RangeError(
          `StqaNet.forward: input "jnd+rgb" needs frames [${want}], got ${
            frames ? `[${frames.shape}]` : "none"
          }`,
        );
      }
    }
    const h1 = half(h), w1 = half(w), h2 = half(h1), w2 = half(w1);
    const state0 = options.state;
    const stateShape = [b, c.hidden, h2, w2];
    if (state0 && state0.shape.join() !== stateShape.join()) {
      throw new RangeError(
        `StqaNet.forward: the carried state is [${state0.shape}], expected [${stateShape}] ` +
          "(chunks of one video must have the same batch and frame size)",
      );
    }
    const lrelu = (x: Tensor) => leakyRelu(x, c.slope);
    // Encoder over all B*T frames at once.
    let x0 = mul(jnd.reshape([b * t, 1, h, w]), c.jndScale);
    if (c.input === "jnd+rgb") {
      x0 = concat([x0, frames!.reshape([b * t, 3, h, w])], 1);
    }
    const f0 = lrelu(this.#conv("enc.0", x0));
    const f1 = lrelu(this.#conv("enc.1", f0, 2));
    const f = lrelu(this.#conv("enc.2", f1, 2)); // [B*T, e3, h2, w2]
    // ConvGRU over time; the input convs of all frames in one dispatch.
    const p = this.#params;
    const gx = this.#conv("gru.x", f).reshape([b, t, 3 * c.hidden, h2, w2]);
    let state = state0 ?? full(stateShape, 0);
    const hs: Tensor[] = [];
    for (let i = 0; i < t; i++) {
      const gxi = slice(gx, { axis: 1, start: i, end: i + 1 }).reshape([b, 3 * c.hidden, h2, w2]);
      const gh = conv2d(state, p["gru.h.weight"], p["gru.h.bias"], { padding: 1 });
      state = convGruGates(gxi, gh, state);
      hs.push(state);
    }
    const hseq = stack(hs, 1).reshape([b * t, c.hidden, h2, w2]);
    const fused = concat([f, hseq], 1);
    const crop = (x: Tensor, hh: number, ww: number) =>
      x.shape[2] === hh && x.shape[3] === ww ? x : slice(x, [
        { axis: 2, start: 0, end: hh },
        { axis: 3, start: 0, end: ww },
      ]);
    const up = (x: Tensor, hh: number, ww: number) =>
      crop(upsample2x(x, { mode: "bilinear" }), hh, ww);
    const weights = this.branches().map((br) => {
      const z = lrelu(this.#conv(`${br}.fuse`, fused));
      const skip = (x: Tensor, e: Tensor) => (c.skips ? concat([x, e], 1) : x);
      const d0 = lrelu(this.#conv(`${br}.dec.0`, skip(up(z, h1, w1), f1)));
      const d1 = lrelu(this.#conv(`${br}.dec.1`, skip(up(d0, h, w), f0)));
      const u = this.#conv(`${br}.out`, d1);
      const a = tanh(c.centre ? sub(u, mean(u, { axes: [2, 3], keepDims: true })) : u);
      return a.reshape(batched ? [b, t, 3, h, w] : [t, 3, h, w]);
    });
    return { weights, state };
  }

  /** Frees the parameters. */
  dispose(): void {
    for (const p of Object.values(this.#params)) p.dispose();
  }
}
