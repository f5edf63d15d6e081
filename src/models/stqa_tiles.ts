/**
 * Spatial tiles for STQA-Net's no-grad forward pass on frames whose activations would not fit
 * in one storage binding (1080p and 4K with the bundled generator on lavapipe): the planning
 * only (pure arithmetic on intervals); `StqaNet.forward` runs the tiles.
 *
 * A tile is a block of output rows and columns (its core) whose origin is a multiple of 4, so
 * that the stride-2 grids of the tile and of the whole frame agree (full resolution, level 0;
 * half, level 1; quarter, level 2). Working backward from the core, every stage's needed region
 * grows by what its operation reads, clipped at the true image borders:
 *
 * - a 3x3 conv (stride 1, padding 1): 1 on each side at its level;
 * - a 3x3 stride-2 conv: output `j` reads inputs `2j-1 .. 2j+1`, so `[p, q)` needs
 *   `[2p-2, 2q)` (the start rounded down to even, so the tile's grid is the frame's);
 * - the bilinear x2 upsampling (align_corners false): output `2m` reads inputs `m-1, m`, output
 *   `2m+1` reads `m, m+1`, so `[p, q)` needs `[floor((p-1)/2), floor(q/2)+1)`;
 * - the 1x1 fusion and the GRU gates read only their own pixel; the GRU's two 3x3 convs read
 *   the encoder's features and the previous frame's state 1 around.
 *
 * Where a region meets the true border it is clipped, so zero padding (and the upsampling's
 * edge replication) happens there exactly as in the whole frame; everywhere else every value a
 * kept output reads is present. Each kept output therefore sums the same terms as in the whole
 * frame, and the cores (and the state's quarter-resolution cores) tile the frame exactly. The
 * halos depend only on the kernel sizes, not on the layer widths: away from the borders a tile
 * reads its input 19 pixels before its core and 13 after (the decoder's 2 convs and 2
 * upsamplings, the GRU's 3x3 convs at quarter resolution, the encoder's 3 convs), computes the
 * GRU step 2 quarter-resolution pixels around its state core, and discards the rest.
 *
 * @module
 */

/** A half-open interval `[start, end)` along one axis at one resolution. */
export interface Span {
  /** First index. */
  start: number;
  /** One past the last index. */
  end: number;
}

/**
 * The regions one tile computes along one axis, each at its own resolution (level 0 full,
 * level 1 half, level 2 quarter): what each stage must produce for the core to be exact.
 */
export interface AxisPlan {
  /** The output core (level 0): the tile's share of the weight maps. */
  core: Span;
  /** The state's core (level 2): the tile's share of the GRU state. */
  coreQ: Span;
  /** The input read (level 0): JND map and frames. */
  x: Span;
  /** enc.0's output kept (level 0). */
  f0: Span;
  /** enc.1's output kept (level 1). */
  f1: Span;
  /** enc.2's output kept (level 2): the GRU's input conv and the fusion read it. */
  f: Span;
  /** The GRU state and the fusion computed (level 2). */
  z: Span;
  /** dec.0's input, the upsampled fusion with the skip from enc.1 (level 1). */
  c0: Span;
  /** dec.0's output kept (level 1). */
  d0: Span;
  /** dec.1's input, the upsampled dec.0 with the skip from enc.0 (level 0). */
  c1: Span;
  /** dec.1's output kept (level 0): `out` reads it. */
  d1: Span;
}

/** Output size of a 3x3, stride-2, padding-1 conv. */
const half = (n: number) => Math.ceil(n / 2);
const len = (s: Span) => s.end - s.start;
const dilate = (s: Span, n: number): Span => ({
  start: Math.max(0, s.start - 1),
  end: Math.min(n, s.end + 1),
});
const upNeed = (s: Span, n: number): Span => ({
  start: Math.max(0, Math.floor((s.start - 1) / 2)),
  end: Math.min(n, Math.floor(s.end / 2) + 1),
});
const stride2Need = (s: Span, nIn: number): Span => ({
  start: Math.max(0, 2 * s.start - 2),
  end: Math.min(nIn, 2 * s.end),
});
const hull = (a: Span, b: Span): Span => ({
  start: Math.min(a.start, b.start),
  end: Math.max(a.end, b.end),
});
const even = (s: Span): Span => ({ start: s.start - (s.start % 2), end: s.end });
const inside = (a: Span, b: Span) => a.start >= b.start && a.end <= b.end;

/**
 * Plans one axis of a tile whose core is `[start, end)` on an axis of `n` full-resolution
 * pixels (`start` a multiple of 4; `end` a multiple of 4 or `n`).
 *
 * @throws {RangeError} for a core that is empty, outside the axis or not aligned.
 * @example
 * ```ts
 * import assert from "assert";
 * import { planAxis } from "./stqa_tiles.ts";
 * const p = planAxis(1080, 512, 768);
 * assert.deepEqual(p.coreQ, { start: 128, end: 192 });
 * assert.deepEqual(p.x, { start: 493, end: 781 }); // 19 and 13 pixels of halo
 * assert.deepEqual(p.z, { start: 126, end: 194 }); // the GRU step, 2 around the state core
 * ```
 */
export function planAxis(n: number, start: number, end: number): AxisPlan {
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n ||
    start >= end || start % 4 !== 0 || (end % 4 !== 0 && end !== n)
  ) {
    throw new RangeError(
      `planAxis: a tile core must be [start, end) with start a multiple of 4 and end a ` +
        `multiple of 4 or the axis length, inside [0, ${n}); got [${start}, ${end})`,
    );
  }
  const n0 = n, n1 = half(n0), n2 = half(n1);
  const core = { start, end };
  const coreQ = { start: start / 4, end: end === n ? n2 : end / 4 };
  const d1 = dilate(core, n0);
  const c1 = dilate(d1, n0);
  const d0 = upNeed(c1, n1);
  const c0 = dilate(d0, n1);
  const z = upNeed(c0, n2);
  const f = dilate(z, n2);
  // (Both starts come out even for cores aligned to 4; `even` guards the stride-2 grids.)
  const f1 = even(hull(stride2Need(f, n1), c0));
  const f0 = even(hull(stride2Need(f1, n0), c1));
  const x = dilate(f0, n0);
  const plan = { core, coreQ, x, f0, f1, f, z, c0, d0, c1, d1 };
  if (!inside(coreQ, z)) {
    throw new Error(`planAxis: internal error, state core outside the GRU region`);
  }
  return plan;
}

/**
 * The core origins of `parts` tiles along an axis of `n` pixels: multiples of 4, as even as
 * the alignment allows (fewer tiles when the axis is too short for `parts`).
 *
 * @example
 * ```ts
 * import assert from "assert";
 * import { tileStarts } from "./stqa_tiles.ts";
 * assert.deepEqual(tileStarts(1080, 3), [0, 360, 720]);
 * assert.deepEqual(tileStarts(10, 4), [0, 4, 8]);
 * ```
 */
export function tileStarts(n: number, parts: number): number[] {
  const per = 4 * Math.ceil(Math.ceil(n / 4) / parts);
  const starts: number[] = [];
  for (let s = 0; s < n; s += per) starts.push(s);
  return starts;
}

/** The plans of every tile along one axis for `parts` tiles (see {@link tileStarts}). */
export function planTiles(n: number, parts: number): AxisPlan[] {
  const starts = tileStarts(n, parts);
  return starts.map((s, i) => planAxis(n, s, starts[i + 1] ?? n));
}

/** The layer widths {@link tileBytes} needs (a subset of `StqaNetConfig`). */
export interface TileChannels {
  /** Encoder input channels (1 for `jnd`, 4 for `jnd+rgb`). */
  cin: number;
  /** Encoder output channels. */
  encoder: readonly [number, number, number];
  /** GRU hidden channels. */
  hidden: number;
  /** Decoder output channels. */
  decoder: readonly [number, number];
  /** Whether the decoder reads the encoder's skips. */
  skips: boolean;
}

/**
 * Bytes of the largest tensor one tile makes (every stage's input, output and crop, for
 * `batch` clips), to compare with the binding limit.
 *
 * @example
 * ```ts
 * import { planAxis, tileBytes } from "./stqa_tiles.ts";
 * const ch = { cin: 4, encoder: [8, 16, 32], hidden: 32, decoder: [16, 8], skips: true } as const;
 * const bytes = tileBytes(planAxis(1080, 0, 540), planAxis(1920, 0, 960), ch, 1);
 * ```
 */
export function tileBytes(rows: AxisPlan, cols: AxisPlan, ch: TileChannels, batch: number): number {
  const [e1, e2, e3] = ch.encoder;
  const [dd0, dd1] = ch.decoder;
  const hd = ch.hidden;
  const area = (r: number, c: number) => r * c;
  const at = (k: keyof AxisPlan) => area(len(rows[k]), len(cols[k]));
  const s0 = ch.skips ? e2 : 0, s1 = ch.skips ? e1 : 0;
  const sizes = [
    Math.max(ch.cin, 3, e1) * at("x"),
    e1 * at("f0"),
    e2 * area(half(len(rows.f0)), half(len(cols.f0))),
    e3 * area(half(len(rows.f1)), half(len(cols.f1))),
    3 * hd * at("f"),
    (e3 + hd) * at("z"),
    e3 * area(2 * len(rows.z), 2 * len(cols.z)),
    (e3 + s0) * at("c0"),
    dd0 * area(2 * len(rows.d0), 2 * len(cols.d0)),
    (dd0 + s1) * at("c1"),
    Math.max(dd1, 3) * at("d1"),
  ];
  return 4 * batch * Math.max(...sizes);
}
