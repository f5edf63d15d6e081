/**
 * Scoring frames larger than one GPU binding: split a chunk by frames, and a frame by spatial
 * tiles.
 *
 * The victims' per-frame spatial part (input features such as MSCN, a stack of stride-2 3x3 convs,
 * global mean and std pooling of feature maps) is local: an output pixel of a map with total stride
 * `s` depends only on the input pixels within a fixed radius (the receptive field). So a frame can
 * be cut into tiles whose cores partition the frame, each tile read with a halo at least that
 * radius wide (clipped at the true image borders, so zero padding happens only there), with tile
 * origins on multiples of the largest stride (so every stride-2 layer samples the same grid as on
 * the whole frame); each map's core of each tile is then exactly the map of the whole frame at
 * those positions. The global pooling is combined across tiles exactly: per tile core the count,
 * the mean and the biased variance (float32, on the GPU), merged with Chan's parallel formula into
 * the mean and the unbiased standard deviation of the whole map (as `globalStdPool` computes it).
 *
 * Forward only: the streamed scorers that use these paths record nothing for gradients.
 *
 * @module
 */

import { bindingLimit } from "../../gpu/device.ts";
import {
  add,
  div,
  globalMeanPool,
  globalStdPool,
  mul,
  slice,
  sqrt,
  square,
  sub,
  variance,
} from "../../nn/mod.ts";
import { type Tensor, tidy } from "../../tensor/tensor.ts";

/** A rectangle of a frame: rows `[y0, y1)`, columns `[x0, x1)`. */
export interface Crop {
  /** First row. */
  y0: number;
  /** Row after the last. */
  y1: number;
  /** First column. */
  x0: number;
  /** Column after the last. */
  x1: number;
}

/** A tile: the crop read (the core and its halo, clipped at the frame) and its core. */
export interface Tile extends Crop {
  /** The part of the frame this tile's outputs stand for; the cores partition the frame. */
  core: Crop;
}

/** What {@link planTiles} and {@link pooledMoments} need to know of a family's spatial part. */
export interface TileGeometry {
  /** The model's name, for messages. */
  who: string;
  /** Frame height. */
  height: number;
  /** Frame width. */
  width: number;
  /** Tile origins fall on multiples of this (the largest total stride of a map, a power of 2). */
  align: number;
  /** Input pixels an output pixel of any map depends on, on each side (rounded up to `align`). */
  halo: number;
  /** Bytes of the largest tensor the spatial part makes for a crop of `h x w` pixels. */
  bytes(h: number, w: number): number;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;
}

/** Core starts of one axis cut into `k` aligned cores, and the longest crop with its halo. */
function axisCuts(length: number, k: number, align: number, halo: number) {
  const core = Math.ceil(Math.ceil(length / k) / align) * align;
  const starts: number[] = [];
  let longest = 0;
  for (let c0 = 0; c0 < length; c0 += core) {
    starts.push(c0);
    const c1 = Math.min(length, c0 + core);
    longest = Math.max(longest, Math.min(length, c1 + halo) - Math.max(0, c0 - halo));
  }
  return { core, starts, longest };
}

/**
 * The fewest tiles (cores on multiples of `align`, halos of `halo` rounded up to `align`, clipped
 * at the frame's borders) whose largest crop makes no tensor over `limit` bytes (default
 * {@link bindingLimit}); one tile covering the frame when the whole frame fits.
 *
 * @throws {RangeError} `<who>: a <W>x<H> frame cannot be scored within the binding limit of ...`
 *   when even cores of `align x align` pixels with their halo do not fit.
 * @example
 * ```ts
 * import assert from "assert";
 * import { planTiles } from "./tiles.ts";
 * const tiles = planTiles({
 *   who: "demo", height: 100, width: 60, align: 8, halo: 8,
 *   bytes: (h, w) => 4 * 16 * h * w,
 * }, 4 * 16 * 60 * 60);
 * assert.equal(tiles.length, 3); // three bands of rows: cores of 40, 40 and 20 rows
 * assert.deepEqual(tiles[2].core, { y0: 80, y1: 100, x0: 0, x1: 60 });
 * assert.deepEqual([tiles[2].y0, tiles[2].y1], [72, 100]); // the halo, clipped at the bottom
 * ```
 */
export function planTiles(g: TileGeometry, limit: number = bindingLimit()): Tile[] {
  const { height: H, width: W } = g;
  const align = Math.max(1, g.align);
  const halo = Math.ceil(Math.max(0, g.halo) / align) * align;
  let best: { ky: number; kx: number; n: number } | null = null;
  const maxKy = Math.ceil(H / align);
  const maxKx = Math.ceil(W / align);
  for (let ky = 1; ky <= maxKy; ky++) {
    const y = axisCuts(H, ky, align, halo);
    if (best && y.starts.length >= best.n) break;
    for (let kx = 1; kx <= maxKx; kx++) {
      const x = axisCuts(W, kx, align, halo);
      const n = y.starts.length * x.starts.length;
      if (best && n >= best.n) break;
      if (g.bytes(y.longest, x.longest) <= limit) {
        best = { ky, kx, n };
        break;
      }
    }
  }
  if (!best) {
    const side = Math.min(H, align + 2 * halo);
    const sideW = Math.min(W, align + 2 * halo);
    throw new RangeError(
      `${g.who}: a ${W}x${H} frame cannot be scored within the binding limit of ${
        mib(limit)
      } (maxStorageBufferBindingSize): even a tile of ${align}x${align} pixels with its halo of ${halo} ` +
        `(${sideW}x${side} read) needs ${mib(g.bytes(side, sideW))}`,
    );
  }
  const ys = axisCuts(H, best.ky, align, halo);
  const xs = axisCuts(W, best.kx, align, halo);
  const tiles: Tile[] = [];
  for (const cy0 of ys.starts) {
    const cy1 = Math.min(H, cy0 + ys.core);
    for (const cx0 of xs.starts) {
      const cx1 = Math.min(W, cx0 + xs.core);
      tiles.push({
        y0: Math.max(0, cy0 - halo),
        y1: Math.min(H, cy1 + halo),
        x0: Math.max(0, cx0 - halo),
        x1: Math.min(W, cx1 + halo),
        core: { y0: cy0, y1: cy1, x0: cx0, x1: cx1 },
      });
    }
  }
  return tiles;
}

/** The global mean and the unbiased standard deviation `[N,C]` of one feature map. */
export interface MapMoments {
  /** Mean over each `(n, c)` plane. */
  mean: Tensor;
  /** Unbiased standard deviation over each plane (as `globalStdPool`). */
  std: Tensor;
}

/** The map rows (or columns) of a tile's core, for a map of total stride `s`. */
function coreRange(start: number, end: number, full: number, core: [number, number], s: number) {
  const [c0, c1] = core;
  const from = (c0 - start) / s;
  const to = c1 === full ? end : (c1 - start) / s;
  if (!Number.isInteger(from) || !Number.isInteger(to)) {
    throw new Error(`tiles: core [${c0}, ${c1}) of a crop from ${start} is not on stride ${s}`);
  }
  return [from, Math.min(to, end)] as const;
}

/**
 * The global mean and unbiased standard deviation of every feature map a family's spatial part
 * makes from a frame (or a few frames), tiled when the whole frame does not fit one binding.
 * `maps(crop)` computes the maps `[n,C_k,h_k,w_k]` of a crop of the frames (the whole frame when
 * the crop covers it), map `k` having total stride `strides[k]` (its row `i` stands for input row
 * `crop.y0 + i * strides[k]`), with zero padding at the crop's borders as at the frame's.
 *
 * When `bytes(height, width)` fits the binding limit the maps of the whole frame are pooled
 * directly (`globalMeanPool`, `globalStdPool`), exactly as the whole-clip model pools them.
 * Otherwise the frame is cut by {@link planTiles}, each tile's maps are cropped to its core, and
 * the per-core counts, means and biased variances are merged exactly (the parallel variance
 * formula of Chan, Golub and LeVeque, in float32 on the GPU): `mean = sum(n_i mean_i) / N`,
 * `std = sqrt(sum(n_i (var_i + (mean_i - mean)^2)) / (N - 1))`. Forward only (no gradients are
 * meant to flow through the tiled path). Each tile runs in its own `tidy`.
 *
 * @throws {RangeError} as {@link planTiles}, or for a map of one element (no unbiased std).
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { conv2d, slice } from "../../nn/mod.ts";
 * import { pooledMoments } from "./tiles.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(3 * 20 * 24).map((_, i) => Math.sin(i)), [1, 3, 20, 24]);
 * const w = tensor(new Float32Array(4 * 3 * 9).fill(0.1), [4, 3, 3, 3]);
 * const [m] = pooledMoments({
 *   who: "demo", height: 20, width: 24, align: 2, halo: 2, strides: [2],
 *   bytes: (h, w) => 4 * 4 * h * w,
 * }, (c) => {
 *   const crop = slice(x, [{ axis: 2, start: c.y0, end: c.y1 }, { axis: 3, start: c.x0, end: c.x1 }]);
 *   return [conv2d(crop, w, undefined, { stride: 2, padding: 1 })];
 * }, 1000); // a 1000-byte limit: tiles
 * console.log(m.mean.shape, m.std.shape); // [1, 4] [1, 4]
 * ```
 */
export function pooledMoments(
  g: TileGeometry & { strides: readonly number[] },
  maps: (crop: Crop) => Tensor[],
  limit: number = bindingLimit(),
): MapMoments[] {
  const { height: H, width: W } = g;
  if (g.bytes(H, W) <= limit) {
    return maps({ y0: 0, y1: H, x0: 0, x1: W }).map((m) => ({
      mean: globalMeanPool(m),
      std: globalStdPool(m),
    }));
  }
  const tiles = planTiles(g, limit);
  // Per map: the counts, means and biased variances of every tile's core.
  const parts: { n: number; mean: Tensor; var: Tensor }[][] = g.strides.map(() => []);
  for (const tile of tiles) {
    const found: { k: number; n: number }[] = [];
    const got = tidy(() => {
      const out: Tensor[] = [];
      maps(tile).forEach((m, k) => {
        const s = g.strides[k];
        const [, , mh, mw] = m.shape;
        const [r0, r1] = coreRange(tile.y0, mh, H, [tile.core.y0, tile.core.y1], s);
        const [q0, q1] = coreRange(tile.x0, mw, W, [tile.core.x0, tile.core.x1], s);
        if (r1 <= r0 || q1 <= q0) return; // this map has no pixel in the core (a coarser grid)
        const core = slice(m, [{ axis: 2, start: r0, end: r1 }, { axis: 3, start: q0, end: q1 }]);
        const [n, c] = core.shape;
        out.push(
          globalMeanPool(core),
          variance(core, { axes: [2, 3], unbiased: false }).reshape([n, c]),
        );
        found.push({ k, n: (r1 - r0) * (q1 - q0) });
      });
      return out;
    });
    found.forEach(({ k, n }, i) => parts[k].push({ n, mean: got[2 * i], var: got[2 * i + 1] }));
  }
  return parts.map((list, k) => {
    const total = list.reduce((a, p) => a + p.n, 0);
    if (total < 2) {
      throw new RangeError(
        `${g.who}: map ${k + 1} of a ${W}x${H} frame has ${total} element(s); no unbiased std`,
      );
    }
    const mean = list.map((p) => mul(p.mean, p.n / total)).reduce((a, b) => add(a, b));
    const m2 = list
      .map((p) => mul(add(p.var, square(sub(p.mean, mean))), p.n))
      .reduce((a, b) => add(a, b));
    return { mean, std: sqrt(div(m2, total - 1)) };
  });
}

/**
 * Frames per group when a chunk's frames are scored a few at a time: as many frames as fit the
 * binding limit at `frameBytes` each (the largest per-frame intermediate), at least one (a frame
 * that does not fit alone is tiled by {@link pooledMoments}).
 *
 * @example
 * ```ts
 * import { framesPerGroup } from "./tiles.ts";
 * framesPerGroup(3 * 2 ** 20, 8 * 2 ** 20); // 2
 * ```
 */
export function framesPerGroup(frameBytes: number, limit: number = bindingLimit()): number {
  return Math.max(1, Math.floor(limit / Math.max(1, frameBytes)));
}

/**
 * Frames per group for a family's spatial part on frames of `one`'s size (`one.bytes` for a single
 * frame): {@link framesPerGroup}, after checking, when one frame does not fit, that tiles can
 * (so that {@link planTiles}'s error comes before anything is allocated).
 *
 * @throws {RangeError} as {@link planTiles}.
 * @example
 * ```ts
 * import { groupOrTiles } from "./tiles.ts";
 * const one = { who: "demo", height: 64, width: 64, align: 4, halo: 4, bytes: (h: number, w: number) => 24 * h * w };
 * groupOrTiles(one, 24 * 64 * 64 * 3); // 3 frames at a time
 * groupOrTiles(one, 24 * 64 * 40); // 1, in tiles
 * ```
 */
export function groupOrTiles(one: TileGeometry, limit: number = bindingLimit()): number {
  const per = one.bytes(one.height, one.width);
  if (per > limit) planTiles(one, limit);
  return framesPerGroup(per, limit);
}

/**
 * Runs `fn(start, end)` on consecutive groups of at most `size` of `frames` frames, each in its
 * own `tidy` (so one group's intermediates are freed before the next), and concatenates what they
 * return along axis 0 with `join` (one group's result is returned as it is).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { concat, slice } from "../../nn/mod.ts";
 * import { byFrameGroups } from "./tiles.ts";
 * await initGpu();
 * const x = tensor([1, 2, 3, 4, 5], [5, 1]);
 * const y = byFrameGroups(5, 2, (s, e) => slice(x, { axis: 0, start: s, end: e }), (p) => concat(p, 0));
 * console.log(await y.read()); // 1..5
 * ```
 */
export function byFrameGroups(
  frames: number,
  size: number,
  fn: (start: number, end: number) => Tensor,
  join: (parts: Tensor[]) => Tensor,
  options: {
    /**
     * Run each group in a tidy scope, freeing its intermediates as it ends (default true). Pass
     * false when a gradient will flow back through the groups: the graph holds them.
     */
    tidy?: boolean;
  } = {},
): Tensor {
  if (frames <= size) return fn(0, frames);
  const scoped = options.tidy ?? true;
  const parts: Tensor[] = [];
  for (let s = 0; s < frames; s += size) {
    const e = Math.min(frames, s + size);
    parts.push(scoped ? tidy(() => fn(s, e)) : fn(s, e));
  }
  return join(parts);
}

/**
 * Input pixels on each side that an output pixel of a stack of `layers` stride-2 3x3 convs
 * (padding 1) depends on: `2^layers - 1`, plus `extra` for what comes before the stack (e.g. 2
 * for a 5x5 MSCN window).
 *
 * @example
 * ```ts
 * import { convStackHalo } from "./tiles.ts";
 * convStackHalo(4, 2); // 17
 * ```
 */
export function convStackHalo(layers: number, extra = 0): number {
  return 2 ** layers - 1 + extra;
}

/**
 * A crop of frames `[n,C,H,W]` (the tensor itself when the crop covers the frame).
 *
 * @example
 * ```ts
 * import { initGpu, tensor } from "../../../mod.ts";
 * import { cropOf } from "./tiles.ts";
 * await initGpu();
 * const x = tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
 * cropOf(x, { y0: 2, y1: 6, x0: 0, x1: 8 }).shape; // [2, 3, 4, 8]
 * ```
 */
export function cropOf(x: Tensor, c: Crop): Tensor {
  const [, , h, w] = x.shape;
  if (c.y0 === 0 && c.x0 === 0 && c.y1 === h && c.x1 === w) return x;
  return slice(x, [{ axis: 2, start: c.y0, end: c.y1 }, { axis: 3, start: c.x0, end: c.x1 }]);
}
