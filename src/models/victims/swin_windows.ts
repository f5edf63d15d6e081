/**
 * The window geometry of the video Swin transformer as FAST-VQA, FasterVQA and DOVER run it
 * (their `swin_backbone.py`, read for the layout; this is our own code), computed on the CPU
 * once per feature-map size: which window and shift a block uses, the relative position index
 * into its bias tables, the fragment gate of the "gated relative position bias" and the
 * shifted-window attention mask.
 *
 * - **Window and shift** (`get_window_size`): per axis, a map no larger than the window uses the
 *   map's size as its window and no shift.
 * - **Adaptive window** (`get_adaptive_window_size`, FAST-VQA's default): the window scales with
 *   the network input against a base size: `(8·D_in) // 32, (7·H_in) // 224, (7·W_in) // 224`
 *   for the published window (8,7,7) and base (32,224,224).
 * - **Relative position index**: Swin's, for the configured window `(Wd,Wh,Ww)`:
 *   `(dd+Wd-1)(2Wh-1)(2Ww-1) + (dh+Wh-1)(2Ww-1) + (dw+Ww-1)` with `d = coords(query) -
 *   coords(key)`. A smaller window used by a block takes, with the adaptive window, the
 *   sub-block `[:d,:h,:w,:d,:h,:w]` of the index seen as 6-D; without it (DOVER's forward), the
 *   first `N` rows and columns of the flat index (`rpi[:N,:N]`), as the authors' code does.
 * - **Fragment gate**: every token gets the coordinates of its fragment, a `(1, wh, ww)` grid
 *   stretched over the padded map by nearest-neighbour interpolation (torch's `nearest`:
 *   `floor(dst · in/out)` in float32), rolled with the cyclic shift and split into windows; the
 *   gate of a query-key pair is the L1 distance of their fragment coordinates (0 in the same
 *   fragment; 1 or 2 across fragments, as the authors' `fmask.abs().sum(-1)` computes it). A
 *   stage with a fragment table uses the bias `rpb · gate + fpb · (1 - gate)`.
 * - **Attention mask** (Swin's `compute_mask`): the padded map is cut, per axis, by the Python
 *   slices `[:-w]`, `[-w:-s]`, `[-s:]` into regions numbered in order (with `s = 0` the last
 *   slice is the whole axis and overrides the others, as in Python); pairs in different regions
 *   get -100.
 *
 * @module
 */

/** Three sizes, `[d, h, w]`. */
export type Triple = [number, number, number];

/**
 * The window and shift a block uses on a `[D, H, W]` map (`get_window_size`): per axis, a map
 * no larger than the window takes the map's size as the window and no shift.
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { usedWindow } from "./swin_windows.ts";
 * const { window, shift } = usedWindow([16, 7, 7], [8, 7, 7], [4, 3, 3]);
 * assert.deepEqual([window, shift], [[8, 7, 7], [4, 0, 0]]);
 * ```
 */
export function usedWindow(
  size: readonly number[],
  window: readonly number[],
  shift: readonly number[],
): { window: Triple; shift: Triple } {
  const w = [...window] as Triple;
  const s = [...shift] as Triple;
  for (let i = 0; i < 3; i++) {
    if (size[i] <= window[i]) {
      w[i] = size[i];
      s[i] = 0;
    }
  }
  return { window: w, shift: s };
}

/**
 * FAST-VQA's adaptive window (`get_adaptive_window_size`): `(window_i · input_i) // base_i` per
 * axis, from the network input's `[D, H, W]` (the fragments, before patch embedding).
 *
 * @example
 * ```ts
 * import { adaptiveWindow } from "./swin_windows.ts";
 * console.log(adaptiveWindow([8, 7, 7], [32, 224, 224], [32, 224, 224])); // [8, 7, 7]
 * ```
 */
export function adaptiveWindow(
  window: readonly number[],
  input: readonly number[],
  base: readonly number[],
): Triple {
  return [0, 1, 2].map((i) => Math.floor((window[i] * input[i]) / base[i])) as Triple;
}

/**
 * Rows of a relative position table for a window: `(2Wd-1)(2Wh-1)(2Ww-1)`.
 *
 * @example
 * ```ts
 * import { tableRows } from "./swin_windows.ts";
 * console.log(tableRows([8, 7, 7])); // 2535
 * ```
 */
export function tableRows(window: readonly number[]): number {
  return (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1);
}

/** Token coordinates of a `[d, h, w]` window in row-major order. */
function windowCoords(w: readonly number[]): Triple[] {
  const out: Triple[] = [];
  for (let a = 0; a < w[0]; a++) {
    for (let b = 0; b < w[1]; b++) for (let c = 0; c < w[2]; c++) out.push([a, b, c]);
  }
  return out;
}

/**
 * The relative position index `[N·N]` (row-major, query by key) a block with window `used`
 * reads from tables made for the configured window `full` (see the module's documentation);
 * `adaptive` selects the sub-block (FAST-VQA), otherwise the first `N` rows and columns of the
 * flat index (DOVER's forward).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { relativePositionIndex } from "./swin_windows.ts";
 * const rpi = relativePositionIndex([1, 2, 2], [1, 2, 2], true);
 * assert.deepEqual([...rpi], [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
 * ```
 */
export function relativePositionIndex(
  full: readonly number[],
  used: readonly number[],
  adaptive: boolean,
): Int32Array {
  const [, wh, ww] = full;
  const index = (p: Triple, q: Triple) =>
    (p[0] - q[0] + full[0] - 1) * (2 * wh - 1) * (2 * ww - 1) +
    (p[1] - q[1] + wh - 1) * (2 * ww - 1) + (p[2] - q[2] + ww - 1);
  for (let i = 0; i < 3; i++) {
    if (used[i] > full[i] || used[i] < 1) {
      throw new RangeError(
        `swin: a window of [${used}] does not fit the tables made for [${full}]`,
      );
    }
  }
  if (adaptive) {
    const c = windowCoords(used);
    const n = c.length;
    const out = new Int32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = index(c[i], c[j]);
    return out;
  }
  const c = windowCoords(full);
  const n = used[0] * used[1] * used[2];
  const out = new Int32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = index(c[i], c[j]);
  return out;
}

/** torch's `nearest` source index: `min(floor(dst · (in/out as float32)), in - 1)`. */
function nearest(dst: number, inSize: number, outSize: number): number {
  const scale = Math.fround(inSize / outSize);
  return Math.min(Math.floor(Math.fround(dst * scale)), inSize - 1);
}

/** Python's `x[start:stop]` range on an axis of `n` (negative indices from the end). */
function pyRange(start: number | null, stop: number | null, n: number): [number, number] {
  const at = (v: number | null, dflt: number) =>
    v === null ? dflt : v < 0 ? Math.max(0, v + n) : Math.min(v, n);
  const a = at(start, 0);
  const b = at(stop, n);
  return [a, Math.max(a, b)];
}

/** Window index and position inside it of every token of a `[Dp,Hp,Wp]` map. */
function windowOf(
  dims: readonly number[],
  window: readonly number[],
): { windows: number; place: (z: number, y: number, x: number) => [number, number] } {
  const nw = [0, 1, 2].map((i) => dims[i] / window[i]);
  return {
    windows: nw[0] * nw[1] * nw[2],
    place: (z, y, x) => {
      const p = [z, y, x];
      const wi = p.map((v, i) => Math.floor(v / window[i]));
      const ti = p.map((v, i) => v % window[i]);
      return [
        (wi[0] * nw[1] + wi[1]) * nw[2] + wi[2],
        (ti[0] * window[1] + ti[1]) * window[2] + ti[2],
      ];
    },
  };
}

/** Geometry of one block on one padded map: gate and mask per window, `[nW, N, N]` each. */
export interface BlockGeometry {
  /** Windows of the map. */
  windows: number;
  /** Tokens per window. */
  tokens: number;
  /** The fragment gate (L1 distance of fragment coordinates), `[nW·N·N]`. */
  gate: Float32Array;
  /** The shifted-window mask (0 or -100) `[nW·N·N]`, or null without a shift. */
  mask: Float32Array | null;
}

/**
 * The fragment gate and attention mask of a block (see the module's documentation) on a padded
 * `[Dp, Hp, Wp]` map with the block's window and shift (from {@link usedWindow}); the mask is
 * null when the block has no shift. `maskShift` is the shift its stage computes the mask with
 * (the same as the block's for the shifted blocks).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { blockGeometry } from "./swin_windows.ts";
 * const g = blockGeometry([1, 4, 4], [1, 2, 2], [0, 1, 1]);
 * assert.equal(g.windows, 4);
 * assert.equal(g.mask!.length, 4 * 4 * 4);
 * ```
 */
export function blockGeometry(
  dims: readonly number[],
  window: readonly number[],
  shift: readonly number[],
): BlockGeometry {
  for (let i = 0; i < 3; i++) {
    if (dims[i] % window[i] !== 0) {
      throw new RangeError(`swin: padded map [${dims}] is not a multiple of window [${window}]`);
    }
  }
  const [dp, hp, wp] = dims;
  const n = window[0] * window[1] * window[2];
  const { windows, place } = windowOf(dims, window);
  // Fragment coordinates (0, h-id, w-id) of each source token: a (1, wh, ww) grid, nearest.
  const fh = (y: number) => nearest(y, window[1], hp);
  const fw = (x: number) => nearest(x, window[2], wp);
  // Region ids of the mask (compute_mask), by source position of the padded map.
  const regions = new Int32Array(dp * hp * wp);
  const shifted = shift.some((s) => s > 0);
  if (shifted) {
    const ranges = [0, 1, 2].map((i) => {
      const w = window[i], s = shift[i], len = dims[i];
      return [
        pyRange(null, -w, len),
        pyRange(-w, -s, len),
        pyRange(s === 0 ? 0 : -s, null, len),
      ];
    });
    let cnt = 0;
    for (const rd of ranges[0]) {
      for (const rh of ranges[1]) {
        for (const rw of ranges[2]) {
          for (let z = rd[0]; z < rd[1]; z++) {
            for (let y = rh[0]; y < rh[1]; y++) {
              for (let x = rw[0]; x < rw[1]; x++) regions[(z * hp + y) * wp + x] = cnt;
            }
          }
          cnt++;
        }
      }
    }
  }
  // Per window, the tokens' fragment coordinates and region ids, in window order.
  const fragH = new Int32Array(windows * n);
  const fragW = new Int32Array(windows * n);
  const region = new Int32Array(windows * n);
  for (let z = 0; z < dp; z++) {
    for (let y = 0; y < hp; y++) {
      for (let x = 0; x < wp; x++) {
        const [wi, ti] = place(z, y, x);
        // The rolled map's token (z, y, x) comes from source token (z + s) mod D: the
        // fragment coordinates roll with the features (torch.roll(coords, -shift)).
        const sy = (y + shift[1]) % hp;
        const sx = (x + shift[2]) % wp;
        fragH[wi * n + ti] = fh(sy);
        fragW[wi * n + ti] = fw(sx);
        // The mask's regions are laid on the rolled map itself (compute_mask has no roll).
        region[wi * n + ti] = regions[(z * hp + y) * wp + x];
      }
    }
  }
  const gate = new Float32Array(windows * n * n);
  const mask = shifted ? new Float32Array(windows * n * n) : null;
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < n; i++) {
      const a = w * n + i;
      for (let j = 0; j < n; j++) {
        const b = w * n + j;
        const o = (w * n + i) * n + j;
        gate[o] = Math.abs(fragH[b] - fragH[a]) + Math.abs(fragW[b] - fragW[a]);
        if (mask && region[a] !== region[b]) mask[o] = -100;
      }
    }
  }
  return { windows, tokens: n, gate, mask };
}
