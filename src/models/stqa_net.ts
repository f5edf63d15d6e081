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
 * `A+` (pushes the score up) and `A-` (down). The `signed` variant has one decoder whose map
 * pushes the score up; the attack applies `s * A` with the direction `s = +1` (up) or `-1` (down)
 * chosen per clip, for the untargeted attack from one clean scoring pass (so, unlike the
 * `untargeted` variant of the paper, it need not guess from the frames which way to push).
 *
 * The network is fully convolutional: it trains on small crops and attacks any frame size
 * (odd sizes too: each decoder stage is cropped to its encoder stage's size). The GRU state can
 * be carried from one chunk of frames to the next, so a long video goes through in chunks with
 * the same result as in one piece. Frames too large for one pass (1080p and 4K with the bundled
 * generator on lavapipe's 128 MiB bindings) go through in spatial tiles with exact halos
 * (stqa_tiles.ts), again with the same result; that path is for inference (no gradients).
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
import { bindingLimit } from "../gpu/device.ts";
import { full, isGradEnabled, type Tensor, tidy } from "../tensor/tensor.ts";
import {
  type AxisPlan,
  planTiles,
  type Span,
  tileBytes,
  type TileChannels,
  tileStarts,
} from "./stqa_tiles.ts";
import { ParamBuilder } from "./victims/victim.ts";

const int = z.number().int().positive();

/** The generator variants (see the module documentation). */
export type GeneratorVariant = "untargeted" | "two-branch" | "signed";

/** The variants, for option parsers. */
export const GENERATOR_VARIANTS: readonly GeneratorVariant[] = [
  "untargeted",
  "two-branch",
  "signed",
];

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
  /**
   * `untargeted` (one decoder, the paper's), `two-branch` (decoders for up and down) or `signed`
   * (one decoder for up; down is its negation).
   */
  variant: GeneratorVariant;
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
  variant: z.enum(["untargeted", "two-branch", "signed"]).default("untargeted"),
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
  /**
   * Force the tiled pass with this grid (for tests; by default {@link StqaNet.tiling} decides,
   * and tiles only where the whole pass would not fit in one storage binding).
   */
  tiles?: TileGrid;
}

/** Rows and columns of spatial tiles (see {@link StqaNet.tiling}). */
export interface TileGrid {
  /** Tiles down the frame. */
  rows: number;
  /** Tiles across the frame. */
  cols: number;
}

/** One tile's kept values: the state's core and, per branch, the output conv on the core. */
interface TileOut {
  state: Tensor;
  u: Tensor[];
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
   * Bytes per frame of the largest tensor the whole (untiled) pass of {@link StqaNet.forward}
   * makes for `h x w` frames (a tensor must fit in one storage binding): the widest activation
   * at full, half and quarter resolution. Divide the binding limit (`bindingLimit()`) by it for
   * the most frames one whole pass may take; where not even one frame fits, `forward` tiles
   * each frame ({@link StqaNet.tiling}) and its tensors are then those of a tile.
   *
   * @example
   * ```ts
   * import assert from "assert";
   * import { initGpu, StqaNet } from "../../mod.ts";
   * await initGpu();
   * const net = new StqaNet({ config: { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8] } });
   * // At full resolution the decoder's concat of 16 upsampled and 8 skip channels is widest.
   * assert.equal(net.bytesPerFrame(1080, 1920), 4 * 24 * 1080 * 1920); // 190 MiB
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
   * The tile grid {@link StqaNet.forward} uses for a clip of `frames` frames of `h x w`
   * (one clip; `batch` clips side by side in training): `null` when the whole pass fits in one
   * storage binding ({@link bytesPerFrame} times the frames, against `bindingLimit()`), else the
   * fewest rows and columns of tiles (cores aligned to multiples of 4, see stqa_tiles.ts) whose
   * largest tensor fits, the frames then going through one at a time.
   *
   * @throws {RangeError} when even one frame cannot go through: the weight maps of the clip
   * (`[T,3,H,W]`, never tiled), the GRU state, or the smallest tiles pass the limit.
   * @example
   * ```ts
   * import { initGpu, setBindingLimit, StqaNet } from "../../mod.ts";
   * await initGpu();
   * const net = new StqaNet({ config: { encoder: [8, 16, 32], hidden: 32, decoder: [16, 8] } });
   * console.log(net.tiling(64, 64)); // null: it fits whole
   * const before = setBindingLimit(2 ** 16);
   * try {
   *   console.log(net.tiling(64, 64)); // e.g. { rows: 3, cols: 2 }
   * } finally {
   *   setBindingLimit(before);
   * }
   * ```
   */
  tiling(h: number, w: number, frames = 1, batch = 1): TileGrid | null {
    const limit = bindingLimit();
    if (batch * frames * this.bytesPerFrame(h, w) <= limit) return null;
    const c = this.config;
    const where = `StqaNet: ${
      batch > 1 ? `${batch} clips of ` : ""
    }${frames} frame(s) of ${w}x${h}`;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const whole = [
      ["the weight maps", 4 * batch * frames * 3 * h * w],
      ["the GRU state", 4 * batch * c.hidden * half(half(h)) * half(half(w))],
    ] as const;
    for (const [what, bytes] of whole) {
      if (bytes > limit) {
        throw new RangeError(
          `${where}: ${what} need ${mib(bytes)} as one tensor, more than the binding limit of ` +
            `${mib(limit)} even with tiles; use fewer frames per chunk or smaller frames (--size)`,
        );
      }
    }
    const ch: TileChannels = {
      cin: c.input === "jnd" ? 1 : 4,
      encoder: c.encoder,
      hidden: c.hidden,
      decoder: c.decoder,
      skips: c.skips,
    };
    const largest = (rows: number, cols: number) => {
      const rp = planTiles(h, rows), cp = planTiles(w, cols);
      let most = 0;
      for (const r of rp) for (const q of cp) most = Math.max(most, tileBytes(r, q, ch, batch));
      return most;
    };
    // The per-axis core size shrinks by one alignment step at a time along the longer core.
    const next = (n: number, parts: number) => {
      const per = tileStarts(n, parts)[1] ?? n;
      let p = parts;
      while (p < Math.ceil(n / 4) && (tileStarts(n, p)[1] ?? n) >= per) p++;
      return (tileStarts(n, p)[1] ?? n) < per ? p : null;
    };
    let rows = 1, cols = 1;
    while (largest(rows, cols) > limit) {
      const coreR = tileStarts(h, rows)[1] ?? h, coreC = tileStarts(w, cols)[1] ?? w;
      const r = next(h, rows), q = next(w, cols);
      if (r === null && q === null) {
        throw new RangeError(
          `${where}: even 4x4-pixel tiles need ${mib(largest(rows, cols))} in one tensor, more ` +
            `than the binding limit of ${mib(limit)}`,
        );
      }
      if (q === null || (r !== null && coreR >= coreC)) rows = r!;
      else cols = q;
    }
    return { rows: tileStarts(h, rows).length, cols: tileStarts(w, cols).length };
  }

  /**
   * Attack weight maps for a clip `jnd` `[T,1,H,W]` (levels/255, from `computeJnd`) or a batch
   * `[B,T,1,H,W]`. Differentiable in the parameters (and in `frames` for `jnd+rgb`). Run it in
   * `tidy`; keep the returned state if it must outlive the scope.
   *
   * Where the whole pass would not fit in one storage binding ({@link StqaNet.tiling}: 1080p
   * and 4K frames with the bundled generator on lavapipe), the frames go through one at a time
   * and each frame in spatial tiles with halos wide enough for every stage's receptive field
   * (stqa_tiles.ts): the same weight maps and state as the whole pass (each kept value sums the
   * same terms; the per-frame centring and tanh run on the whole pasted frame). The tiled pass
   * is for inference: it throws a RangeError where it would record gradients (run it in
   * `noGrad`; training uses small crops, which never need tiles).
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
    const forced = options.tiles;
    if (forced && ![forced.rows, forced.cols].every((n) => Number.isInteger(n) && n >= 1)) {
      throw new RangeError(
        `StqaNet.forward: tiles must be whole numbers >= 1, got ${JSON.stringify(forced)}`,
      );
    }
    const grid = forced ?? this.tiling(h, w, t, b);
    if (grid) {
      const tracked = [jnd, frames, state0, ...Object.values(this.#params)];
      if (isGradEnabled() && tracked.some((x) => x?.requiresGrad)) {
        throw new RangeError(
          `StqaNet.forward: ${b * t} frame(s) of ${w}x${h} need tiles (${
            this.bytesPerFrame(h, w)
          } bytes per frame in one tensor, binding limit ${bindingLimit()}), and the tiled ` +
            "pass records no gradients: run it in noGrad, or train on smaller crops or fewer frames",
        );
      }
      const x5 = c.input === "jnd+rgb" ? frames!.reshape([b, t, 3, h, w]) : undefined;
      const out = this.#forwardTiled(jnd.reshape([b, t, 1, h, w]), x5, state0, grid);
      const shape = batched ? [b, t, 3, h, w] : [t, 3, h, w];
      return { weights: out.weights.map((a) => a.reshape(shape)), state: out.state };
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
      return this.#finish(u).reshape(batched ? [b, t, 3, h, w] : [t, 3, h, w]);
    });
    return { weights, state };
  }

  /** The maps from the output conv's values: centred per frame and channel (`centre`), tanh. */
  #finish(u: Tensor): Tensor {
    return tanh(this.config.centre ? sub(u, mean(u, { axes: [2, 3], keepDims: true })) : u);
  }

  /**
   * The tiled pass (see {@link StqaNet.forward}): frame by frame (the GRU's state of the whole
   * previous frame is what a step reads), and per frame tile by tile, each tile computing what
   * its plan says (stqa_tiles.ts) and keeping its cores; the cores are pasted with concat.
   */
  #forwardTiled(
    jnd: Tensor,
    frames: Tensor | undefined,
    state0: Tensor | undefined,
    grid: TileGrid,
  ): { weights: Tensor[]; state: Tensor } {
    const c = this.config;
    const [b, t, , h, w] = jnd.shape;
    const rowPlans = planTiles(h, grid.rows), colPlans = planTiles(w, grid.cols);
    const nBranches = this.branches().length;
    let state = state0 ?? full([b, c.hidden, half(half(h)), half(half(w))], 0);
    const maps: Tensor[][] = this.branches().map(() => []);
    const freeMaps = () => maps.forEach((list) => list.forEach((u) => u.dispose()));
    try {
      for (let i = 0; i < t; i++) {
        const prev = state;
        const step = tidy(() => {
          const at = { axis: 1, start: i, end: i + 1 };
          const j = slice(jnd, at).reshape([b, 1, h, w]);
          const x = frames && slice(frames, at).reshape([b, 3, h, w]);
          const tiles = rowPlans.map((rp) => colPlans.map((cp) => this.#tile(j, x, prev, rp, cp)));
          const paste = (pick: (k: TileOut) => Tensor) => {
            const rows = tiles.map((row) =>
              row.length === 1 ? pick(row[0]) : concat(row.map(pick), 3)
            );
            return rows.length === 1 ? rows[0] : concat(rows, 2);
          };
          const next = paste((k) => k.state);
          const us = Array.from(
            { length: nBranches },
            (_, br) => this.#finish(paste((k) => k.u[br])),
          );
          return { next, us };
        });
        if (prev !== state0) prev.dispose();
        state = step.next;
        step.us.forEach((u, br) => maps[br].push(u));
      }
    } catch (e) {
      if (state !== state0) state.dispose();
      freeMaps();
      throw e;
    }
    if (t === 1) return { weights: maps.map((l) => l[0].reshape([b, 1, 3, h, w])), state };
    const weights = maps.map((list) => stack(list, 1));
    freeMaps();
    return { weights, state };
  }

  /**
   * One tile of one frame: `jnd` `[B,1,H,W]`, `frames` `[B,3,H,W]` (jnd+rgb), the previous
   * state `[B,hidden,H/4,W/4]` of the whole frame; returns the tile's state core and its
   * output conv's values (before centring) on the core, per branch.
   */
  #tile(
    jnd: Tensor,
    frames: Tensor | undefined,
    prev: Tensor,
    rp: AxisPlan,
    cp: AxisPlan,
  ): TileOut {
    return tidy(() => {
      const c = this.config;
      const lrelu = (x: Tensor) => leakyRelu(x, c.slope);
      // `x` holds the region `from` (per axis, at its level); keep the region `to` of it.
      const cut = (x: Tensor, from: [Span, Span], to: [Span, Span]) => {
        const [fr, fc] = from, [tr, tc] = to;
        if (
          fr.start === tr.start && fr.end === tr.end && fc.start === tc.start && fc.end === tc.end
        ) {
          return x;
        }
        return slice(x, [
          { axis: 2, start: tr.start - fr.start, end: tr.end - fr.start },
          { axis: 3, start: tc.start - fc.start, end: tc.end - fc.start },
        ]);
      };
      const whole = (t: Tensor): [Span, Span] => [
        { start: 0, end: t.shape[2] },
        { start: 0, end: t.shape[3] },
      ];
      const r = <K extends keyof AxisPlan>(k: K): [Span, Span] => [rp[k], cp[k]];
      // A stride-2 conv over a region starting at an even index `s` yields level+1 from s/2.
      const down = (s: [Span, Span], y: Tensor): [Span, Span] => [
        { start: s[0].start / 2, end: s[0].start / 2 + y.shape[2] },
        { start: s[1].start / 2, end: s[1].start / 2 + y.shape[3] },
      ];
      const upFrom = (s: [Span, Span], y: Tensor): [Span, Span] => [
        { start: 2 * s[0].start, end: 2 * s[0].start + y.shape[2] },
        { start: 2 * s[1].start, end: 2 * s[1].start + y.shape[3] },
      ];
      const skip = (x: Tensor, e: Tensor) => (c.skips ? concat([x, e], 1) : x);
      // Encoder on the tile's input region.
      let x0 = mul(cut(jnd, whole(jnd), r("x")), c.jndScale);
      if (frames) x0 = concat([x0, cut(frames, whole(frames), r("x"))], 1);
      const f0 = lrelu(cut(this.#conv("enc.0", x0), r("x"), r("f0")));
      const y1 = this.#conv("enc.1", f0, 2);
      const f1 = lrelu(cut(y1, down(r("f0"), y1), r("f1")));
      const y2 = this.#conv("enc.2", f1, 2);
      const f = lrelu(cut(y2, down(r("f1"), y2), r("f"))); // on the region f (= z and 1 around)
      // One GRU step on the region z (its convs read f and the previous state 1 around).
      const p = this.#params;
      const gx = cut(this.#conv("gru.x", f), r("f"), r("z"));
      const hPrev = cut(prev, whole(prev), r("f"));
      const gh = cut(
        conv2d(hPrev, p["gru.h.weight"], p["gru.h.bias"], { padding: 1 }),
        r("f"),
        r("z"),
      );
      const hz = convGruGates(gx, gh, cut(hPrev, r("f"), r("z")));
      const fused = concat([cut(f, r("f"), r("z")), hz], 1);
      const u = this.branches().map((br) => {
        const z = lrelu(this.#conv(`${br}.fuse`, fused));
        const uz = upsample2x(z, { mode: "bilinear" });
        const a0 = skip(cut(uz, upFrom(r("z"), uz), r("c0")), cut(f1, r("f1"), r("c0")));
        const d0 = lrelu(cut(this.#conv(`${br}.dec.0`, a0), r("c0"), r("d0")));
        const ud = upsample2x(d0, { mode: "bilinear" });
        const a1 = skip(cut(ud, upFrom(r("d0"), ud), r("c1")), cut(f0, r("f0"), r("c1")));
        const d1 = lrelu(cut(this.#conv(`${br}.dec.1`, a1), r("c1"), r("d1")));
        return cut(this.#conv(`${br}.out`, d1), r("d1"), r("core"));
      });
      return { state: cut(hz, r("z"), r("coreQ")), u };
    });
  }
  /** Frees the parameters. */
  dispose(): void {
    for (const p of Object.values(this.#params)) p.dispose();
  }
}
