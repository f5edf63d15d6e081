/**
 * The video Swin transformer of FAST-VQA, FasterVQA and DOVER's technical branch (Liu et al.'s
 * Video Swin-T with Wu et al.'s "gated relative position bias"; the authors' `SwinTransformer3D`
 * of `swin_backbone.py`, read for the layout and names; this is our own code), as a
 * differentiable feature extractor of one clip.
 *
 * - **Patch embedding** (`patch_embed`): the clip `[3, D, H, W]` (normalised) is padded with
 *   zeros at the end to multiples of the patch (2,4,4), cut into patches and projected by
 *   `proj` (a Conv3d with kernel = stride = patch, computed as one matrix product), then
 *   layer-normalised (`norm`).
 * - **Stages** `layers.{i}` (i < 4; widths 96·2^i, heads [3, 6, 12, 24], blocks [2, 2, 6, 2]):
 *   each block is `x + proj(W-MSA(norm1(x)))` then `x + fc2(GELU(fc1(norm2(x))))`; odd blocks
 *   shift their windows by half the window. Window attention (see swin_windows.ts for the
 *   geometry): the normalised map is padded to whole windows, rolled by the shift, cut into
 *   windows of `N` tokens; `qkv` gives queries, keys and values per head; the scores
 *   `q·k^T / sqrt(head dim)` get the relative position bias `relative_position_bias_table`
 *   (gated with `fragment_position_bias_table` in the stages that have one: the first three in
 *   FAST-VQA) and, in shifted blocks, the -100 mask; softmax; values; `proj`; the windows are put
 *   back, rolled back and the padding cropped. Stages 0-2 end with `downsample` (PatchMerging:
 *   2x2 neighbours concatenated in the order (0,0), (1,0), (0,1), (1,1), `norm`, `reduction`
 *   without bias).
 * - **Output**: the last stage's map, layer-normalised (`norm`), `[D', H', W', 768]` (channels
 *   last).
 *
 * Layer norms use eps 1e-5. The attention runs window chunk by window chunk so that no score
 * tensor exceeds a binding; the bias tables are gathered per forward pass (`indexSelect`), so a
 * gradient reaches them too.
 *
 * @module
 */

import { z } from "zod";
import type { SameShape } from "../../_zod.ts";
import {
  add,
  attention,
  concat,
  gelu,
  indexSelect,
  layerNorm,
  linear,
  mul,
  pad,
  permute,
  roll,
  slice,
  sub,
  transpose,
} from "../../nn/mod.ts";
import { checkpoint, isGradEnabled, type Tensor, tensor, tidy } from "../../tensor/tensor.ts";
import {
  adaptiveWindow,
  type BlockGeometry,
  blockGeometry,
  relativePositionIndex,
  tableRows,
  type Triple,
  usedWindow,
} from "./swin_windows.ts";
import { MAX_MODEL_WIDTH, type ParamBuilder } from "./victim.ts";

/**
 * A video Swin transformer's shape.
 *
 * @example
 * ```ts
 * import { SWIN_T_FRAGMENTS, type SwinConfig } from "./swin3d.ts";
 * const tiny: SwinConfig = { ...SWIN_T_FRAGMENTS, embedDim: 8, heads: [1, 2, 2, 4] };
 * ```
 */
export type SwinConfig = {
  /** Channels after the patch embedding (96); stage i has `embedDim · 2^i`. */
  embedDim: number;
  /** Blocks per stage ([2, 2, 6, 2]). */
  depths: number[];
  /** Attention heads per stage ([3, 6, 12, 24]). */
  heads: number[];
  /** The window `[d, h, w]` the tables are made for ((8, 7, 7)). */
  window: [number, number, number];
  /** The patch `[d, h, w]` ((2, 4, 4)). */
  patch: [number, number, number];
  /** MLP hidden width over the stage width (4). */
  mlpRatio: number;
  /** Which stages have a fragment position bias table ([true, true, true, false]). */
  fragBiases: boolean[];
  /** The input size the window is made for, `[d, h, w]` ((32, 224, 224)). */
  baseSize: [number, number, number];
  /**
   * Scale the window with the input against `baseSize` (FAST-VQA's forward: true; DOVER's
   * technical branch: false, which reads the first N rows and columns of the index).
   */
  adaptiveWindow: boolean;
};

const triple = z.tuple([
  z.number().int().positive().max(64),
  z.number().int().positive().max(64),
  z.number().int().positive().max(64),
]);

const swinConfig = z.object({
  embedDim: z.number().int().positive().max(MAX_MODEL_WIDTH / 8),
  depths: z.array(z.number().int().positive().max(64)).min(1).max(6),
  heads: z.array(z.number().int().positive().max(64)).min(1).max(6),
  window: triple,
  patch: triple,
  mlpRatio: z.number().positive().max(16),
  fragBiases: z.array(z.boolean()).min(1).max(6),
  baseSize: z.tuple([
    z.number().int().positive().max(4096),
    z.number().int().positive().max(16384),
    z.number().int().positive().max(16384),
  ]),
  adaptiveWindow: z.boolean(),
}).strict().superRefine((c, ctx) => {
  if (c.heads.length !== c.depths.length || c.fragBiases.length !== c.depths.length) {
    ctx.addIssue({
      code: "custom",
      path: ["heads"],
      message: `depths, heads and fragBiases must have one entry per stage (${c.depths.length})`,
    });
    return;
  }
  c.heads.forEach((h, i) => {
    const dim = c.embedDim * 2 ** i;
    if (dim % h !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["heads", i],
        message: `stage ${i} has ${dim} channels, not a multiple of ${h} heads`,
      });
    }
  });
});
const _same: SameShape<SwinConfig, z.output<typeof swinConfig>> = true;

/**
 * Validates a {@link SwinConfig} (as a field of a victim's config).
 *
 * @example
 * ```ts
 * import { SWIN_T_FRAGMENTS, swinConfigZod } from "./swin3d.ts";
 * console.log(swinConfigZod.safeParse({ ...SWIN_T_FRAGMENTS, heads: [5, 6, 12, 24] }).success); // false
 * ```
 */
export const swinConfigZod: z.ZodType<SwinConfig> = swinConfig;

/**
 * Video Swin-T as FAST-VQA, FasterVQA and DOVER use it (`swin_tiny_grpb`, adaptive window).
 *
 * @example
 * ```ts
 * import { SWIN_T_FRAGMENTS } from "./swin3d.ts";
 * console.log(SWIN_T_FRAGMENTS.window); // [8, 7, 7]
 * ```
 */
export const SWIN_T_FRAGMENTS: SwinConfig = {
  embedDim: 96,
  depths: [2, 2, 6, 2],
  heads: [3, 6, 12, 24],
  window: [8, 7, 7],
  patch: [2, 4, 4],
  mlpRatio: 4,
  fragBiases: [true, true, true, false],
  baseSize: [32, 224, 224],
  adaptiveWindow: true,
};

/**
 * Channels of the backbone's output (`embedDim · 2^(stages-1)`).
 *
 * @example
 * ```ts
 * import { SWIN_T_FRAGMENTS, swinChannels } from "./swin3d.ts";
 * console.log(swinChannels(SWIN_T_FRAGMENTS)); // 768
 * ```
 */
export function swinChannels(c: SwinConfig): number {
  return c.embedDim * 2 ** (c.depths.length - 1);
}

/**
 * Multiply-add FLOPs (2 per product) of one forward pass on a clip of `[D, H, W]` frames: the
 * patch embedding, every block's qkv, attention (scores and values, on the padded windows),
 * output projection and MLP, and the PatchMerging reductions (norms, GELU, softmax and sums
 * are left out). Video Swin-T on FAST-VQA's 32 x 224 x 224 fragments: 176 GFLOP (88 G
 * multiply-adds, the Video Swin paper's figure).
 *
 * @example
 * ```ts
 * import { SWIN_T_FRAGMENTS, swinFlops } from "./swin3d.ts";
 * console.log((swinFlops(SWIN_T_FRAGMENTS, [32, 224, 224]) / 1e9).toFixed(1)); // GFLOP
 * ```
 */
export function swinFlops(c: SwinConfig, size: readonly [number, number, number]): number {
  const [pd, ph, pw] = c.patch;
  let [d, h, w] = [Math.ceil(size[0] / pd), Math.ceil(size[1] / ph), Math.ceil(size[2] / pw)];
  let flops = 2 * d * h * w * c.embedDim * 3 * pd * ph * pw;
  const window = c.adaptiveWindow ? adaptiveWindow(c.window, size, c.baseSize) : c.window;
  c.depths.forEach((depth, i) => {
    const ch = c.embedDim * 2 ** i;
    const hidden = Math.floor(ch * c.mlpRatio);
    const tokens = d * h * w;
    for (let b = 0; b < depth; b++) {
      const { window: ws } = usedWindow([d, h, w], window, [0, 0, 0]);
      const n = ws[0] * ws[1] * ws[2];
      const padded = [d, h, w].reduce((a, v, k) => a * Math.ceil(v / ws[k]) * ws[k], 1);
      flops += 2 * padded * ch * 3 * ch + 4 * padded * n * ch + 2 * padded * ch * ch;
      flops += 4 * tokens * ch * hidden;
    }
    if (i < c.depths.length - 1) {
      [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
      flops += 2 * d * h * w * 4 * ch * 2 * ch;
    }
  });
  return flops;
}

/** Layer norms of the Swin transformer (torch's default). */
const EPS = 1e-5;

/**
 * Creates a Swin transformer's parameters under `prefix` with the authors' names (see the
 * module's documentation): random near their usual scales (bias tables and layer norms drawn
 * away from their initial values, so a parity test exercises them).
 *
 * @example
 * ```ts
 * import { buildSwinParams, SWIN_T_FRAGMENTS } from "./swin3d.ts";
 * import { ParamBuilder } from "./victim.ts";
 * const pb = new ParamBuilder(0, { shapesOnly: true });
 * buildSwinParams(pb, "fragments_backbone.", SWIN_T_FRAGMENTS);
 * console.log(pb.shapes["fragments_backbone.layers.0.blocks.0.attn.relative_position_bias_table"]); // [2535, 3]
 * ```
 */
export function buildSwinParams(pb: ParamBuilder, prefix: string, c: SwinConfig): void {
  const [pd, ph, pw] = c.patch;
  const k = 3 * pd * ph * pw;
  pb.uniform(
    `${prefix}patch_embed.proj.weight`,
    [c.embedDim, 3, pd, ph, pw],
    -1 / Math.sqrt(k),
    1 / Math.sqrt(k),
  );
  pb.uniform(`${prefix}patch_embed.proj.bias`, [c.embedDim], -0.1, 0.1);
  pb.layerNorm(`${prefix}patch_embed.norm`, c.embedDim);
  const rows = tableRows(c.window);
  c.depths.forEach((depth, i) => {
    const dim = c.embedDim * 2 ** i;
    const heads = c.heads[i];
    const hidden = Math.floor(dim * c.mlpRatio);
    for (let b = 0; b < depth; b++) {
      const p = `${prefix}layers.${i}.blocks.${b}.`;
      pb.layerNorm(`${p}norm1`, dim);
      pb.uniform(`${p}attn.relative_position_bias_table`, [rows, heads], -0.5, 0.5);
      if (c.fragBiases[i]) {
        pb.uniform(`${p}attn.fragment_position_bias_table`, [rows, heads], -0.5, 0.5);
      }
      pb.linear(`${p}attn.qkv`, dim, 3 * dim);
      pb.linear(`${p}attn.proj`, dim, dim);
      pb.layerNorm(`${p}norm2`, dim);
      pb.linear(`${p}mlp.fc1`, dim, hidden);
      pb.linear(`${p}mlp.fc2`, hidden, dim);
    }
    if (i < c.depths.length - 1) {
      pb.layerNorm(`${prefix}layers.${i}.downsample.norm`, 4 * dim);
      const bound = 1 / Math.sqrt(4 * dim);
      pb.uniform(
        `${prefix}layers.${i}.downsample.reduction.weight`,
        [2 * dim, 4 * dim],
        -bound,
        bound,
      );
    }
  });
  pb.layerNorm(`${prefix}norm`, swinChannels(c));
}

/** Zeros appended at the end of each axis (`pads[i]` along axis i). Differentiable. */
function padEnd(x: Tensor, pads: readonly number[]): Tensor {
  return pad(x, pads.map((p) => [0, p] as const));
}

/** Largest score tensor of one attention chunk, in elements (32 MiB of float32). */
const CHUNK_SCORES = 8 * 2 ** 20;

/**
 * A video Swin transformer over parameters named as {@link buildSwinParams} names them.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { buildSwinParams, Swin3d, SWIN_T_FRAGMENTS, type SwinConfig } from "./swin3d.ts";
 * import { ParamBuilder } from "./victim.ts";
 * await initGpu();
 * const c: SwinConfig = {
 *   ...SWIN_T_FRAGMENTS, embedDim: 8, depths: [2, 2], heads: [1, 2], fragBiases: [true, false],
 *   window: [2, 3, 3], baseSize: [4, 24, 24],
 * };
 * const pb = new ParamBuilder(1);
 * buildSwinParams(pb, "b.", c);
 * const swin = new Swin3d(c, pb.params, "b.");
 * const y = swin.features(tensor(new Float32Array(3 * 4 * 24 * 24).fill(0.1), [3, 4, 24, 24]));
 * console.log(y.shape); // [2, 3, 3, 16]
 * ```
 */
export class Swin3d {
  readonly config: SwinConfig;
  #p: Record<string, Tensor>;
  #prefix: string;
  /** Gate and mask of each block geometry, by key. */
  #geometry = new Map<string, BlockGeometry>();
  /** Relative position index per (used window, adaptive). */
  #rpi = new Map<string, Int32Array>();

  /** The backbone over `params` (looked up by name under `prefix` at each pass). */
  constructor(config: SwinConfig, params: Record<string, Tensor>, prefix: string) {
    this.config = config;
    this.#p = params;
    this.#prefix = prefix;
  }

  #param(name: string): Tensor {
    const t = this.#p[this.#prefix + name];
    if (!t) throw new RangeError(`swin: no parameter '${this.#prefix}${name}'`);
    return t;
  }

  /**
   * Features `[D', H', W', C]` of one normalised clip `[3, D, H, W]` (channels last, after the
   * final layer norm). Differentiable.
   */
  features(clip: Tensor): Tensor {
    const c = this.config;
    if (clip.rank !== 4 || clip.shape[0] !== 3) {
      throw new RangeError(`swin: a clip must be [3, D, H, W], got [${clip.shape}]`);
    }
    const input = clip.shape.slice(1) as Triple;
    const window = c.adaptiveWindow ? adaptiveWindow(c.window, input, c.baseSize) : c.window;
    if (window.some((w, i) => w < 1 || w > c.window[i])) {
      throw new RangeError(
        `swin: a clip of [${input}] gives the adaptive window [${window}], outside 1..[${c.window}] ` +
          `(base size [${c.baseSize}])`,
      );
    }
    // Without gradients, each step runs in a tidy and the previous step's output is freed: a
    // forward pass holds two steps' tensors. With gradients, each block is recomputed in the
    // backward pass (checkpoint): a clip then holds the blocks' inputs and one block's
    // activations, not every block's (several GB for a 32x224x224 clip).
    const forwardOnly = !isGradEnabled();
    const checkpointed = !forwardOnly && clip.requiresGrad;
    let x = forwardOnly ? tidy(() => this.#embed(clip)) : this.#embed(clip);
    const step = (f: (y: Tensor) => Tensor) => {
      if (forwardOnly) {
        const prev = x;
        x = tidy(() => f(prev));
        prev.dispose();
      } else x = checkpointed ? checkpoint(f, [x]) : f(x);
    };
    c.depths.forEach((depth, i) => {
      for (let b = 0; b < depth; b++) step((y) => this.#block(y, i, b, window));
      if (i < c.depths.length - 1) step((y) => this.#merge(y, i));
    });
    if (forwardOnly) {
      const last = x;
      const out = layerNorm(last, this.#param("norm.weight"), this.#param("norm.bias"), {
        eps: EPS,
      });
      last.dispose();
      return out;
    }
    return layerNorm(x, this.#param("norm.weight"), this.#param("norm.bias"), { eps: EPS });
  }

  /** Patch embedding: `[3, D, H, W]` -> `[D', H', W', C]`. */
  #embed(clip: Tensor): Tensor {
    const c = this.config;
    const [pd, ph, pw] = c.patch;
    const [, d, h, w] = clip.shape;
    const pads = [0, (pd - d % pd) % pd, (ph - h % ph) % ph, (pw - w % pw) % pw];
    const x = padEnd(clip, pads);
    const [D, H, W] = [x.shape[1] / pd, x.shape[2] / ph, x.shape[3] / pw];
    const patches = permute(x.reshape([3, D, pd, H, ph, W, pw]), [1, 3, 5, 0, 2, 4, 6])
      .reshape([D * H * W, 3 * pd * ph * pw]);
    const weight = this.#param("patch_embed.proj.weight").reshape([c.embedDim, 3 * pd * ph * pw]);
    const y = linear(patches, weight, this.#param("patch_embed.proj.bias"));
    return layerNorm(
      y,
      this.#param("patch_embed.norm.weight"),
      this.#param("patch_embed.norm.bias"),
      { eps: EPS },
    ).reshape([D, H, W, c.embedDim]);
  }

  /** One Swin block on `[D, H, W, C]`. */
  #block(x: Tensor, stage: number, b: number, window: Triple): Tensor {
    const c = this.config;
    const p = `layers.${stage}.blocks.${b}.`;
    const [D, H, W, C] = x.shape;
    const half = c.window.map((v) => Math.floor(v / 2));
    const used = usedWindow([D, H, W], window, b % 2 === 0 ? [0, 0, 0] : half);
    const ws = used.window;
    const shift = used.shift;
    const h0 = layerNorm(x, this.#param(`${p}norm1.weight`), this.#param(`${p}norm1.bias`), {
      eps: EPS,
    });
    const pads = [0, 1, 2].map((i) => (ws[i] - [D, H, W][i] % ws[i]) % ws[i]);
    let h = padEnd(h0, [...pads, 0]);
    const dims = [D + pads[0], H + pads[1], W + pads[2]] as Triple;
    const shifted = shift.some((s) => s > 0);
    if (shifted) h = roll(h, shift.map((s) => -s), [0, 1, 2]);
    const [nd, nh, nw] = [dims[0] / ws[0], dims[1] / ws[1], dims[2] / ws[2]];
    const n = ws[0] * ws[1] * ws[2];
    const windows = permute(h.reshape([nd, ws[0], nh, ws[1], nw, ws[2], C]), [0, 2, 4, 1, 3, 5, 6])
      .reshape([nd * nh * nw, n, C]);
    const attn = this.#attention(windows, stage, p, dims, ws, shift);
    let y = permute(attn.reshape([nd, nh, nw, ws[0], ws[1], ws[2], C]), [0, 3, 1, 4, 2, 5, 6])
      .reshape([...dims, C]);
    if (shifted) y = roll(y, shift, [0, 1, 2]);
    if (pads.some((v) => v > 0)) {
      y = slice(y, [{ axis: 0, end: D }, { axis: 1, end: H }, { axis: 2, end: W }]);
    }
    const x1 = add(x, y);
    const m = layerNorm(x1, this.#param(`${p}norm2.weight`), this.#param(`${p}norm2.bias`), {
      eps: EPS,
    });
    const hid = gelu(linear(m, this.#param(`${p}mlp.fc1.weight`), this.#param(`${p}mlp.fc1.bias`)));
    return add(x1, linear(hid, this.#param(`${p}mlp.fc2.weight`), this.#param(`${p}mlp.fc2.bias`)));
  }

  /** The relative position bias `[1, nH, N, N]` of one table for a used window. */
  #tableBias(table: Tensor, ws: Triple, heads: number): Tensor {
    const c = this.config;
    const key = `${ws}|${c.adaptiveWindow}`;
    let rpi = this.#rpi.get(key);
    if (!rpi) {
      rpi = relativePositionIndex(c.window, ws, c.adaptiveWindow);
      this.#rpi.set(key, rpi);
    }
    const n = ws[0] * ws[1] * ws[2];
    return transpose(indexSelect(table, rpi), 0, 1).reshape([1, heads, n, n]);
  }

  /** Window attention of `[nW, N, C]` windows -> `[nW, N, C]` (after `proj`). */
  #attention(
    windows: Tensor,
    stage: number,
    p: string,
    dims: Triple,
    ws: Triple,
    shift: Triple,
  ): Tensor {
    const c = this.config;
    const [nW, n, C] = windows.shape;
    const heads = c.heads[stage];
    const hd = C / heads;
    const qkv = permute(
      linear(windows, this.#param(`${p}attn.qkv.weight`), this.#param(`${p}attn.qkv.bias`))
        .reshape([nW, n, 3, heads, hd]),
      [2, 0, 3, 1, 4],
    );
    const rpb = this.#tableBias(this.#param(`${p}attn.relative_position_bias_table`), ws, heads);
    const gated = c.fragBiases[stage];
    const shifted = shift.some((s) => s > 0);
    let base = rpb;
    let diff: Tensor | null = null;
    if (gated) {
      // rpb · gate + fpb · (1 - gate) = fpb + (rpb - fpb) · gate
      base = this.#tableBias(this.#param(`${p}attn.fragment_position_bias_table`), ws, heads);
      diff = sub(rpb, base);
    }
    const geo = gated || shifted ? this.#geometryOf(dims, ws, shift) : null;
    const chunk = Math.max(1, Math.floor(CHUNK_SCORES / (heads * n * n)));
    const outs: Tensor[] = [];
    for (let a = 0; a < nW; a += chunk) {
      const e = Math.min(nW, a + chunk);
      const part = (i: number) =>
        slice(qkv, [{ axis: 0, start: i, end: i + 1 }, { axis: 1, start: a, end: e }])
          .reshape([e - a, heads, n, hd]);
      let bias = base;
      if (geo && diff) {
        const gate = tensor(geo.gate.subarray(a * n * n, e * n * n), [e - a, 1, n, n]);
        bias = add(bias, mul(diff, gate));
      }
      if (geo?.mask) {
        bias = add(bias, tensor(geo.mask.subarray(a * n * n, e * n * n), [e - a, 1, n, n]));
      }
      outs.push(attention(part(0), part(1), part(2), { scale: hd ** -0.5, bias }));
    }
    const out = outs.length === 1 ? outs[0] : concat(outs, 0);
    const merged = permute(out, [0, 2, 1, 3]).reshape([nW, n, C]);
    return linear(merged, this.#param(`${p}attn.proj.weight`), this.#param(`${p}attn.proj.bias`));
  }

  #geometryOf(dims: Triple, ws: Triple, shift: Triple): BlockGeometry {
    const key = `${dims}|${ws}|${shift}`;
    let g = this.#geometry.get(key);
    if (!g) {
      g = blockGeometry(dims, ws, shift);
      this.#geometry.set(key, g);
    }
    return g;
  }

  /** PatchMerging: `[D, H, W, C]` -> `[D, ceil(H/2), ceil(W/2), 2C]`. */
  #merge(x: Tensor, stage: number): Tensor {
    const [D, H, W, C] = x.shape;
    const p = `layers.${stage}.downsample.`;
    const y = padEnd(x, [0, H % 2, W % 2, 0]);
    const [h2, w2] = [y.shape[1] / 2, y.shape[2] / 2];
    // [D, h2, a, w2, b, C] -> [D, h2, w2, b, a, C]: channel blocks (a,b) = (0,0), (1,0), (0,1), (1,1).
    const cat = permute(y.reshape([D, h2, 2, w2, 2, C]), [0, 1, 3, 4, 2, 5]).reshape([
      D,
      h2,
      w2,
      4 * C,
    ]);
    const normed = layerNorm(cat, this.#param(`${p}norm.weight`), this.#param(`${p}norm.bias`), {
      eps: EPS,
    });
    return linear(normed, this.#param(`${p}reduction.weight`));
  }
}
