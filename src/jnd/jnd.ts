/**
 * Just-noticeable-difference (JND) maps on the GPU (formulas and check values: docs/jnd.md;
 * kernels in jnd.wgsl beside this file).
 *
 * `computeJnd(frames)` takes RGB frames `[T, 3, H, W]` in [0, 1] and returns `[T, 1, H, W]` in
 * the same units (8-bit levels / 255). Every kernel (dispatch) covers all T frames of the batch
 * at once (grid z = frame); borders replicate at every stage. Stages:
 *
 * 1. luma `p = 255 * (0.299 R + 0.587 G + 0.114 B)` (BT.601);
 * 2. background luminance `bg` (5x5 weights `B` / 32), maximum weighted gradient `mg`
 *    (`max_k |p * G_k| / 16`), and the Sobel gradient of luma for the edge detector;
 * 3. edge detector (all models but chou-li), a simplified Canny named `canny-l1`:
 *    3x3 Sobel `gx`, `gy` on luma in levels, L1 magnitude `m = |gx| + |gy|` (OpenCV's default
 *    Canny magnitude; a step of h levels gives 4h), non-maximum suppression across the gradient
 *    in four sectors (boundaries at 22.5 degrees; a pixel survives when `m > m_before` and
 *    `m >= m_after` along the gradient), double threshold `edgeLow` = 50 and `edgeHigh` = 150,
 *    and one-step hysteresis (a weak pixel is an edge when one of its 8 neighbours is strong; no
 *    iterative tracing). No Gaussian pre-smoothing: Sobel smooths across the gradient. The
 *    decisions (sector, suppression, thresholds) are taken on float32 values that the CPU
 *    reference reproduces bit for bit, so both agree at ties;
 * 4. the edge map `E` dilated with a 3x3 square, `W = 1 - 0.95 * E` smoothed by a 7x7 Gaussian
 *    (sigma 0.8, normalised);
 * 5. the model: `chou-li` = `max(T_l, alpha(bg) mg + beta(bg))`; `namm` =
 *    `T_l + T_t - 0.3 min(T_l, T_t)` with `T_t = max(0, alpha(bg) mg W + beta(bg))`; `namm-st` =
 *    `namm` times the temporal factor `f(ild)`, `ild = ((p_t - p_{t-1}) + (bg_t - bg_{t-1})) / 2`
 *    (frame 0 uses `options.previous` when given, else `f = 1`); `wu2017` (Wu et al. 2017) =
 *    `LA + VM - 0.3 min(LA, VM)` with `VM = max(LC, PM)`: contrast masking `LC` from the 5x5
 *    standard deviation of luma, pattern masking `PM` from it, the pattern complexity of local
 *    orientations (Prewitt, 15 bins of 12 degrees) and the NAMM edge weight `W` (details in
 *    `WU2017`, src/jnd/models.ts).
 *
 * The JND is a constant to the attack: it is computed from the clean frames and no gradient
 * flows through it (the result never requires a gradient, whatever its input does).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { computeJnd } from "./jnd.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
 * const jnd = computeJnd(frames, { model: "namm-st" }); // [2, 1, 16, 16]
 * console.log((await jnd.read())[0] * 255); // levels
 * ```
 * @module
 */

import { dispatch } from "../gpu/queue.ts";
import { kernel } from "../gpu/program.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import {
  complexityWeights,
  DEFAULT_EDGE_HIGH,
  DEFAULT_EDGE_LOW,
  DEFAULT_JND_MODEL,
  gaussianWeights,
  JND_MODELS,
  type JndModel,
  orientationBoundaries,
  WU2017,
} from "./models.ts";

/** The JND kernels (jnd.wgsl): b1 .. b7 are the stages' planes, as each entry point says. */
const JND = kernel(new URL("./jnd.wgsl", import.meta.url), {
  storage: ["b1", "b2", "b3", "b4", "b5", "b6", "b7"],
});

/** Options of {@link computeJnd}. */
export interface ComputeJndOptions {
  /** The model: `chou-li`, `namm` (default), `namm-st` (the default for video) or `wu2017`. */
  model?: JndModel;
  /**
   * The frame before `frames[0]`, `[3, H, W]` or `[1, 3, H, W]`, so that `namm-st` has a temporal
   * factor for frame 0 when a video is processed in batches. Ignored by the other models.
   */
  previous?: Tensor;
  /** Weak-edge threshold on the L1 Sobel magnitude of luma in levels (default 50). */
  edgeLow?: number;
  /** Strong-edge threshold (default 150). */
  edgeHigh?: number;
}

// Workgroup 16 x 4 invocations (64 x 4 pixels); on lavapipe 8 x 8 was up to 1.7x slower for the
// 5x5 and combine kernels.
const WG_X = 16;
const WG_Y = 4;
const MODEL_CODE: Record<JndModel, number> = { "chou-li": 0, "namm": 1, "namm-st": 2, "wu2017": 3 };

/** A WGSL f32 literal that rounds to exactly the float32 value `v`. */
function f32Literal(v: number): string {
  return `(${Math.fround(v).toPrecision(9)})`;
}

/**
 * wu2017 specialisation: the orientation-bin test as one expression (boundaries passed, per
 * lane) with float32 constants identical to the reference's, the squared-gradient threshold in
 * Prewitt-sum units, and the 3x3 complexity Gaussian.
 */
function wuDefines(): Record<string, string> {
  const passed = orientationBoundaries().map((b) =>
    `select(zero, one, py * ${f32Literal(b.cos)} > px * ${f32Literal(b.sin)})`
  ).join(" + ");
  const cw = complexityWeights();
  return {
    WU: "true",
    WU_PASSED: passed,
    WU_G2MIN: f32Literal((3 * WU2017.gradientMin) ** 2),
    CW0: f32Literal(cw[1]),
    CW1: f32Literal(cw[0]),
  };
}

/**
 * JND maps of RGB frames: `[T, 3, H, W]` in [0, 1] to `[T, 1, H, W]` in levels / 255. The result
 * carries no gradient (the JND is a constant to the attack). See the module documentation for
 * the models and the edge detector.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { computeJnd } from "./jnd.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(3 * 8 * 8).fill(0.2), [1, 3, 8, 8]);
 * const jnd = computeJnd(frames); // namm
 * ```
 */
export function computeJnd(frames: Tensor, options: ComputeJndOptions = {}): Tensor {
  const model = options.model ?? DEFAULT_JND_MODEL;
  if (!(JND_MODELS as readonly string[]).includes(model)) {
    throw new RangeError(`computeJnd: unknown model '${model}' (one of ${JND_MODELS.join(", ")})`);
  }
  const s = frames.shape;
  if (s.length !== 4 || s[1] !== 3) {
    throw new RangeError(`computeJnd: frames must be [T, 3, H, W], got [${s.join(", ")}]`);
  }
  const [t, , h, w] = s;
  const edgeLow = options.edgeLow ?? DEFAULT_EDGE_LOW;
  const edgeHigh = options.edgeHigh ?? DEFAULT_EDGE_HIGH;
  if (!(edgeLow >= 0 && edgeHigh >= edgeLow)) {
    throw new RangeError(`computeJnd: need 0 <= edgeLow <= edgeHigh, got ${edgeLow}, ${edgeHigh}`);
  }
  const out = empty([t, 1, h, w]);
  if (out.size === 0) return out;
  const prev = model === "namm-st" ? options.previous : undefined;
  if (prev && prev.size !== 3 * h * w) {
    throw new RangeError(
      `computeJnd: previous frame [${prev.shape.join(", ")}] does not match frames [3, ${h}, ${w}]`,
    );
  }
  const hasPrev = prev ? 1 : 0;
  const tm = t + hasPrev; // frames in the intermediate maps
  const edgesOn = model !== "chou-li";
  const g = gaussianWeights();
  const gauss = { G0: g[3], G1: g[4], G2: g[5], G3: g[6] };
  const floats = [edgeLow, edgeHigh];
  // Each invocation computes four horizontally adjacent pixels.
  const groups = (frameCount: number): [number, number, number] => [
    Math.ceil(Math.ceil(w / 4) / WG_X),
    Math.ceil(h / WG_Y),
    frameCount,
  ];
  const mapInts = [w, h, tm, hasPrev];
  const p = empty([tm, h, w]);
  const bg = empty([tm, h, w]);
  const mg = empty([tm, h, w]);
  const mag = empty(edgesOn ? [tm, h, w] : [1]);
  const sector = empty(edgesOn ? [tm, h, w] : [1]);
  const wu = model === "wu2017";
  const wuDefs = wu ? wuDefines() : {};
  const contrast = empty(wu ? [tm, h, w] : [1]);
  const label = empty(wu ? [tm, h, w] : [1]);
  const count = empty(wu ? [tm, h, w] : [1]);
  const temps = [p, bg, mg, mag, sector, contrast, label, count];
  try {
    dispatch({
      op: "jnd.luma",
      kernel: JND,
      entry: "luma",
      ints: mapInts,
      floats,
      workgroups: groups(tm),
    }, [frames.buffer, (prev ?? frames).buffer, p.buffer]);
    dispatch({
      op: "jnd.features",
      kernel: JND,
      entry: "features",
      defines: { EDGES: edgesOn ? "true" : "false", ...wuDefs },
      ints: mapInts,
      floats,
      // Outputs a model does not need are 1-element placeholders the kernel never touches.
      workgroups: groups(tm),
    }, [
      p.buffer,
      bg.buffer,
      mg.buffer,
      mag.buffer,
      sector.buffer,
      contrast.buffer,
      label.buffer,
    ]);
    if (wu) {
      dispatch({
        op: "jnd.complexity",
        kernel: JND,
        entry: "complexity",
        ints: mapInts,
        floats,
        workgroups: groups(tm),
      }, [label.buffer, count.buffer]);
      label.dispose();
    }
    let edgeMap = mag; // any buffer for chou-li (unused)
    if (edgesOn) {
      const code = empty([tm, h, w]);
      temps.push(code);
      dispatch({
        op: "jnd.nms",
        kernel: JND,
        entry: "nms",
        ints: mapInts,
        floats,
        workgroups: groups(tm),
      }, [mag.buffer, sector.buffer, code.buffer]);
      // Released buffers may serve the next maps at once: kernels run in encoding order.
      mag.dispose();
      sector.dispose();
      const dilated = empty([tm, h, w]);
      temps.push(dilated);
      dispatch({
        op: "jnd.edges",
        kernel: JND,
        entry: "edges",
        ints: mapInts,
        floats,
        workgroups: groups(tm),
      }, [code.buffer, dilated.buffer]);
      code.dispose();
      edgeMap = empty([tm, h, w]);
      temps.push(edgeMap);
      dispatch({
        op: "jnd.blur_rows",
        kernel: JND,
        entry: "blur_rows",
        defines: gauss,
        ints: mapInts,
        floats,
        workgroups: groups(tm),
      }, [dilated.buffer, edgeMap.buffer]);
      dilated.dispose();
    }
    dispatch({
      op: "jnd.combine",
      kernel: JND,
      entry: "combine",
      defines: { MODEL: MODEL_CODE[model], ...gauss, ...(wu ? wuDefs : {}) },
      ints: [w, h, t, hasPrev],
      floats,
      workgroups: groups(t),
    }, [
      p.buffer,
      bg.buffer,
      mg.buffer,
      edgeMap.buffer,
      out.buffer,
      contrast.buffer,
      count.buffer,
    ]);
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    for (const x of temps) x.dispose();
  }
  return out;
}

/** Options of {@link jndHeatmap}. */
export interface JndHeatmapOptions {
  /** The JND (in 8-bit levels) shown at the top of the colour ramp; larger values clip. Default 32. */
  maxLevels?: number;
}

/**
 * Colours JND maps `[T, 1, H, W]` (levels / 255) on an inferno-like ramp (black, purple, red,
 * orange, pale yellow; piecewise linear through five colours of matplotlib's inferno), from 0 to
 * `maxLevels` levels: RGB frames `[T, 3, H, W]` in [0, 1], ready for `writeVideo`.
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../mod.ts";
 * import { computeJnd, jndHeatmap } from "./mod.ts";
 * await initGpu();
 * const frames = tensor(new Float32Array(3 * 8 * 8).fill(0.2), [1, 3, 8, 8]);
 * const rgb = jndHeatmap(computeJnd(frames), { maxLevels: 24 }); // [1, 3, 8, 8]
 * ```
 */
export function jndHeatmap(jnd: Tensor, options: JndHeatmapOptions = {}): Tensor {
  const s = jnd.shape;
  if (s.length !== 4 || s[1] !== 1) {
    throw new RangeError(`jndHeatmap: maps must be [T, 1, H, W], got [${s.join(", ")}]`);
  }
  const maxLevels = options.maxLevels ?? 32;
  if (!(maxLevels > 0)) throw new RangeError(`jndHeatmap: maxLevels must be > 0, got ${maxLevels}`);
  const [t, , h, w] = s;
  const out = empty([t, 3, h, w]);
  if (out.size === 0) return out;
  dispatch({
    op: "jnd.heatmap",
    kernel: JND,
    entry: "heatmap",
    ints: [w, h, t, 0],
    floats: [255 / maxLevels, 0],
    workgroups: [Math.ceil(w / WG_X), Math.ceil(h / WG_Y), t],
  }, [jnd.buffer, out.buffer]);
  return out;
}
