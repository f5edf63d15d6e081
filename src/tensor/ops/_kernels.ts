/**
 * The kernels of the tensor ops: each .wgsl file beside this module, with its bindings (binding 0
 * is the uniform `params: Params` of each file, then the storage arrays below, 1, 2, ...). The
 * loader writes these declarations after the shared prelude (src/gpu/prelude.wgsl).
 *
 * @module
 */

import { kernel } from "../../gpu/program.ts";

const here = (name: string) => new URL(`./${name}`, import.meta.url);
const f32 = (n: number) => Array.from({ length: n }, (_, i) => `b${i + 1}`);

/** Fill, unary and binary maps with broadcasting, and their gradients (elementwise.wgsl). */
export const ELEMENTWISE = kernel(here("elementwise.wgsl"), { storage: f32(5) });

/** The strided copy behind permute, slice, concat and stack (layout.wgsl). */
export const LAYOUT = kernel(here("layout.wgsl"), { storage: ["src", "dst"] });

/** Reductions over axes, and the gradients of var and std (reduce.wgsl). */
export const REDUCE = kernel(here("reduce.wgsl"), {
  storage: ["src", "dst", "aux", "gout", "gstd"],
});

/** Elementwise regression losses, fused with their sums (loss.wgsl). */
export const LOSS = kernel(here("loss.wgsl"), { storage: f32(5) });

/** Local contrast normalisation (MSCN), forward and backward (mscn.wgsl). */
export const MSCN = kernel(here("mscn.wgsl"), { storage: f32(5) });

/** Batch normalisation in inference form, forward and backward (norm.wgsl). */
export const NORM = kernel(here("norm.wgsl"), {
  storage: [
    ...f32(5).map((name) => ({ name, access: "read" as const })),
    "b6",
    { name: "b7", access: "read" as const },
    "b8",
  ],
});

/** Pooling and per-plane means and standard deviations (pool.wgsl). */
export const POOL = kernel(here("pool.wgsl"), { storage: f32(3) });

/** 2x nearest and bilinear upsampling (resample.wgsl); output-shaped buffers also as pairs. */
export const RESAMPLE = kernel(here("resample.wgsl"), {
  storage: [
    { name: "b1", views: { g2: "vec2<f32>" } },
    { name: "b2", views: { out2: "vec2<f32>" } },
  ],
});

/** Resizing along one axis with tap tables, bilinear and bicubic as torch (resize.wgsl). */
export const RESIZE = kernel(here("resize.wgsl"), {
  storage: ["src", "dst", { name: "taps", access: "read" as const }],
});

/** A GRU's recurrence over time in one dispatch each way (gru_seq.wgsl). */
export const GRU_SEQ = kernel(here("gru_seq.wgsl"), { storage: f32(7) });

/** The fused ConvGRU gates, forward and backward (conv_gru.wgsl; T is f32 or vec4<f32>). */
export const CONV_GRU = kernel(here("conv_gru.wgsl"), {
  storage: f32(7).map((name) => ({ name, type: "T" })),
});

const vec4Operands = [
  { name: "a4", type: "vec4<f32>" },
  { name: "b4", type: "vec4<f32>" },
  { name: "c4", type: "vec4<f32>" },
  "bias",
];

/** Register-blocked batched matrix products (matmul.wgsl). */
export const MATMUL = kernel(here("matmul.wgsl"), { storage: vec4Operands });

/** Batched matrix products with workgroup-memory tiles, for GPUs (matmul_tiled.wgsl). */
export const MATMUL_TILED = kernel(here("matmul_tiled.wgsl"), {
  storage: ["a", "b", "c", "bias"],
  includes: [here("tiles.wgsl")],
});

const conv2d = (name: string, extra: URL[] = []) =>
  kernel(here(name), {
    storage: [
      { name: "src4", type: "vec4<f32>" },
      { name: "wt4", type: "vec4<f32>" },
      { name: "dst4", type: "vec4<f32>" },
      "bias",
    ],
    includes: [here("conv2d_common.wgsl"), ...extra],
  });

/** 2-D convolution as implicit GEMMs, any geometry (conv2d_gemm.wgsl). */
export const CONV2D_GEMM = conv2d("conv2d_gemm.wgsl");

/** 3-wide direct convolution and its weight packing (conv2d_window.wgsl). */
export const CONV2D_WINDOW = conv2d("conv2d_window.wgsl");

/** The weight gradient of 3x3 convolutions (conv2d_dw_window.wgsl). */
export const CONV2D_DW_WINDOW = conv2d("conv2d_dw_window.wgsl");

/** Forward, input and weight gradients with workgroup-memory tiles, for GPUs (conv2d_tiled.wgsl). */
export const CONV2D_TILED = conv2d("conv2d_tiled.wgsl", [here("tiles.wgsl")]);

/** 3-D convolution: forward, input and weight gradients as direct loops (conv3d.wgsl). */
export const CONV3D = kernel(here("conv3d.wgsl"), { storage: ["src", "wt", "dst", "bias"] });

/** Depthwise convolution (groups = Cin), forward, input and weight gradients, both kernel
 * families (conv2d_depthwise.wgsl); conv2d's bindings, also seen as scalar arrays. */
export const CONV2D_DEPTHWISE = kernel(here("conv2d_depthwise.wgsl"), {
  storage: [
    { name: "src4", type: "vec4<f32>" },
    { name: "wt4", type: "vec4<f32>", views: { ws: "f32" } },
    { name: "dst4", type: "vec4<f32>", views: { ys: "f32" } },
    "bias",
  ],
  includes: [here("conv2d_common.wgsl")],
});

/** Row gathers along the first axis and their gradients by inverse maps (index_select.wgsl). */
export const INDEX_SELECT = kernel(here("index_select.wgsl"), {
  storage: [
    { name: "src", access: "read" as const },
    { name: "table", type: "u32", access: "read" as const },
    "dst",
  ],
});

/** Softmax over the last axis, forward and backward (softmax.wgsl). */
export const SOFTMAX = kernel(here("softmax.wgsl"), {
  storage: [{ name: "b1", access: "read" as const }, "b2", "b3"],
});

const attnRead = (names: string[]) =>
  names.map((name) => ({ name, type: "vec4<f32>", access: "read" as const }));
const attnTail = [
  { name: "offs", type: "u32", access: "read" as const },
  ...[1, 2].map((n) => ({
    name: `bias${n}`,
    access: "read" as const,
    views: { [`bias${n}v`]: "vec4<f32>" },
  })),
];

/** Fused attention forward, a few query rows per invocation (attention.wgsl). */
export const ATTENTION = kernel(here("attention.wgsl"), {
  storage: [
    ...attnRead(["q4", "k4", "v4"]),
    { name: "out4", type: "vec4<f32>" },
    ...attnTail,
  ],
});

/** The fused attention backward's dq pass, with the rows' lse and delta (attention.wgsl). */
export const ATTENTION_BWD_Q = kernel(here("attention.wgsl"), {
  storage: [
    ...attnRead(["q4", "k4", "v4", "g4", "o4"]),
    { name: "dq4", type: "vec4<f32>" },
    "stats",
    ...attnTail,
  ],
});

/** The fused attention backward's dk and dv pass, a few key rows per invocation (attention.wgsl). */
export const ATTENTION_BWD_KV = kernel(here("attention.wgsl"), {
  storage: [
    ...attnRead(["q4", "k4", "v4", "g4"]),
    { name: "stats", access: "read" as const },
    { name: "dk4", type: "vec4<f32>" },
    { name: "dv4", type: "vec4<f32>" },
    ...attnTail,
  ],
});
