// nn.resize (torch's F.interpolate, bilinear and bicubic, align_corners=False, antialias off and
// on), nn.centerCrop and nn.shortSideSize: forward against a float64 reference written from
// torch 1.13's UpSampleKernel.cpp (each output as a direct 2-D sum over its taps, not the op's
// separable tables), gradients against finite differences of that reference, and values and
// input gradients against PyTorch (tests/fixtures/resize_torch.json, written by
// tests/fixtures/make_resize_fixture.py), which also checks the reference itself.

import { nn, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, checkOp, initGpu } from "./_helpers.ts";

type Dims = [number, number, number, number];
type Mode = "bilinear" | "bicubic";
const MODES: [Mode, boolean][] = [
  ["bilinear", false],
  ["bilinear", true],
  ["bicubic", false],
  ["bicubic", true],
];
const label = (mode: Mode, aa: boolean) => `${mode}${aa ? " antialias" : ""}`;

// --- The float64 reference --------------------------------------------------------------------

/** Keys' cubic convolution kernel, as torch's cubic_convolution1/2 (|x| < 1 and 1 <= |x| < 2). */
function keys(x: number, a: number): number {
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/**
 * The inputs output `o` of an axis reads and their weights (indices may repeat: torch's
 * clamped reads), transcribed from torch 1.13: area_pixel_compute_source_index and
 * upsample_get_value_bounded without antialias, _compute_weights_aa with it. Float64, except the
 * values torch holds as float32 where the rounding shows at 1080 -> 520 (found against torch's
 * outputs): the scale in / out, and with antialias the centre, the support, 1 / scale, the
 * window's ends and the filter's argument.
 */
function taps(o: number, n: number, m: number, mode: Mode, aa: boolean): [number, number][] {
  const scale = Math.fround(n / m);
  if (aa) {
    const interp = mode === "bilinear" ? 2 : 4;
    const support = Math.fround((interp / 2) * Math.max(scale, 1));
    const inv = scale >= 1 ? Math.fround(1 / scale) : 1;
    const center = Math.fround(scale * (o + 0.5));
    const xmin = Math.max(Math.trunc(Math.fround(center - support) + 0.5), 0);
    const xsize = Math.min(Math.trunc(Math.fround(center + support) + 0.5), n) - xmin;
    const ws: [number, number][] = [];
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const x = Math.fround(Math.fround(Math.fround(j + xmin - center) + 0.5) * inv);
      const w = mode === "bilinear" ? Math.max(0, 1 - Math.abs(x)) : keys(x, -0.5);
      ws.push([xmin + j, w]);
      total += w;
    }
    return total === 0 ? ws : ws.map(([i, w]) => [i, w / total]);
  }
  if (mode === "bilinear") {
    const real = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.trunc(real);
    const i1 = i0 + (i0 < n - 1 ? 1 : 0);
    const l1 = real - i0;
    return [[i0, 1 - l1], [i1, l1]];
  }
  const real = scale * (o + 0.5) - 0.5;
  const i0 = Math.floor(real);
  const t = real - i0;
  const bounded = (i: number) => Math.max(Math.min(i, n - 1), 0);
  return [
    [bounded(i0 - 1), keys(t + 1, -0.75)],
    [bounded(i0), keys(t, -0.75)],
    [bounded(i0 + 1), keys(1 - t, -0.75)],
    [bounded(i0 + 2), keys(2 - t, -0.75)],
  ];
}

/** F.interpolate(x, size=(oh, ow), mode, align_corners=False, antialias) in float64. */
function resizeRef([n, c, h, w]: Dims, oh: number, ow: number, mode: Mode, aa: boolean) {
  const ty = Array.from({ length: oh }, (_, o) => taps(o, h, oh, mode, aa));
  const tx = Array.from({ length: ow }, (_, o) => taps(o, w, ow, mode, aa));
  return (x: Float64Array) => {
    const y = new Float64Array(n * c * oh * ow);
    let k = 0;
    for (let p = 0; p < n * c; p++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (const [iy, wy] of ty[oy]) {
            for (const [ix, wx] of tx[ox]) s += wy * wx * x[(p * h + iy) * w + ix];
          }
          y[k++] = s;
        }
      }
    }
    return y;
  };
}

// --- Finite differences ------------------------------------------------------------------------

/** [input shape, output height, output width]: up, down, odd, N > 1, C = 3 and 5, same size. */
const CASES: [Dims, number, number][] = [
  [[1, 3, 7, 7], 13, 13], // 7 -> 13
  [[2, 3, 13, 13], 7, 7], // 13 -> 7, N = 2
  [[2, 5, 5, 8], 11, 3], // H up, W down, C = 5
  [[1, 5, 9, 6], 9, 6], // same size
  [[1, 2, 9, 6], 9, 4], // one axis only
  [[1, 1, 1080, 3], 520, 3], // Resize(520) on 1080p
  [[1, 1, 2, 1920], 2, 224], // 1920 -> 224
  [[1, 1, 1, 1], 3, 2], // one pixel up
  [[1, 2, 4, 5], 1, 1], // down to one pixel
];

for (const [mode, aa] of MODES) {
  Deno.test(`resize ${label(mode, aa)}: forward and gradient against float64`, async () => {
    for (const [shape, oh, ow] of CASES) {
      await checkOp({
        name: `resize ${label(mode, aa)} to ${oh}x${ow}`,
        inputs: [{ shape }],
        gpu: (x) => nn.resize(x, { height: oh, width: ow, mode, antialias: aa }),
        ref: resizeRef(shape, oh, ow, mode, aa),
        rtol: 1e-5,
        atol: 1e-5,
      });
    }
  });
}

Deno.test("resize: the same size is an exact copy in every mode", async () => {
  await initGpu();
  const data = Float32Array.from({ length: 2 * 3 * 5 * 7 }, (_, i) => Math.sin(i) * 10);
  const x = tensor(data, [2, 3, 5, 7]);
  for (const [mode, antialias] of MODES) {
    const y = nn.resize(x, { height: 5, width: 7, mode, antialias });
    assertClose(await y.read(), data, { rtol: 0, atol: 0, what: `${label(mode, antialias)}` });
    y.dispose();
  }
  x.dispose();
});

// --- PyTorch -----------------------------------------------------------------------------------

interface Stored {
  shape: number[];
  data: number[];
}

interface FixtureCase {
  x_seed: number;
  w_seed: number;
  x_shape: Dims;
  params: { height: number; width: number; mode: Mode; antialias: boolean };
  tensors: { out: Stored; grad_x: Stored };
}

const FIXTURE: {
  cases: Record<string, FixtureCase>;
  center_crops: number[][];
  short_side_sizes: number[][];
} = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/resize_torch.json", import.meta.url)),
);

/** The fixture script's MINSTD draws in [-1, 1), rounded to float32 (exact integer steps). */
function minstd(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 48271) % 2147483647;
    out[i] = s / 2147483647 * 2 - 1;
  }
  return out;
}

/** max|a - b| / max|b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / Math.max(s, 1e-12);
}

Deno.test("resize: values and input gradients as PyTorch 1.13 (and the reference as PyTorch)", async () => {
  await initGpu();
  const names = Object.keys(FIXTURE.cases);
  if (names.length !== 12) throw new Error(`${names.length} fixture cases, expected 12`);
  const worst = { out: 0, grad: 0, ref: 0 };
  for (const name of names) {
    const c = FIXTURE.cases[name];
    const { height, width, mode, antialias } = c.params;
    const xs = minstd(c.x_seed, c.x_shape.reduce((a, b) => a * b, 1));
    const ws = minstd(c.w_seed, c.tensors.out.data.length);
    const { out, grad, x } = tidy(() => {
      const x = tensor(xs, c.x_shape, { requiresGrad: true });
      const y = nn.resize(x, { height, width, mode, antialias });
      y.backward(tensor(ws, y.shape));
      return { out: y, grad: x.grad as Tensor, x };
    });
    if (out.shape.join() !== c.tensors.out.shape.join()) {
      throw new Error(`${name}: shape [${out.shape}], PyTorch [${c.tensors.out.shape}]`);
    }
    const errs = {
      out: relErr(await out.read(), c.tensors.out.data),
      grad: relErr(await grad.read(), c.tensors.grad_x.data),
      ref: relErr(
        resizeRef(c.x_shape, height, width, mode, antialias)(Float64Array.from(xs)),
        c.tensors.out.data,
      ),
    };
    for (const k of ["out", "grad", "ref"] as const) {
      if (!(errs[k] < 2e-6)) {
        throw new Error(`${name}: ${k} relative error ${errs[k].toExponential(2)} (limit 2e-6)`);
      }
      worst[k] = Math.max(worst[k], errs[k]);
    }
    [out, grad, x].forEach((t) => t.dispose());
  }
  console.log(
    `resize vs PyTorch, ${names.length} cases, worst relative error: values ` +
      `${worst.out.toExponential(2)}, gradients ${worst.grad.toExponential(2)}, ` +
      `float64 reference ${worst.ref.toExponential(2)}`,
  );
});

// --- centerCrop and shortSideSize ---------------------------------------------------------------

Deno.test("centerCrop: the corner torchvision's center_crop takes (round half to even)", async () => {
  await initGpu();
  for (const [h, w, ch, cw, top, left] of FIXTURE.center_crops) {
    const x = tensor(Float32Array.from({ length: h * w }, (_, i) => i), [1, h, w]);
    const y = nn.centerCrop(x, { height: ch, width: cw });
    const what = `${h}x${w} to ${ch}x${cw}`;
    if (y.shape.join() !== [1, ch, cw].join()) throw new Error(`${what}: shape [${y.shape}]`);
    const expected = Array.from(
      { length: ch * cw },
      (_, i) => (top + Math.floor(i / cw)) * w + left + (i % cw),
    );
    assertClose(await y.read(), expected, { rtol: 0, atol: 0, what });
    [x, y].forEach((t) => t.dispose());
  }
});

Deno.test("centerCrop: gradient scatters into zeros", async () => {
  const shape: Dims = [2, 3, 7, 8];
  await checkOp({
    name: "centerCrop 7x8 to 4x3",
    inputs: [{ shape }],
    gpu: (x) => nn.centerCrop(x, { height: 4, width: 3 }),
    ref: (x) => {
      const y: number[] = [];
      for (let p = 0; p < 6; p++) {
        for (let r = 0; r < 4; r++) {
          for (let k = 0; k < 3; k++) y.push(x[(p * 7 + 2 + r) * 8 + 2 + k]);
        }
      }
      return Float64Array.from(y);
    },
  });
});

Deno.test("shortSideSize: torchvision's Resize(size) output sizes", () => {
  for (const [h, w, size, oh, ow] of FIXTURE.short_side_sizes) {
    const got = nn.shortSideSize(h, w, size);
    if (got.height !== oh || got.width !== ow) {
      throw new Error(`${h}x${w} to ${size}: ${got.height}x${got.width}, torchvision ${oh}x${ow}`);
    }
  }
});

// --- Refusals -----------------------------------------------------------------------------------

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return e.message;
  }
  throw new Error("no error");
}

Deno.test("resize, centerCrop, shortSideSize: refusals name the shapes", async () => {
  await initGpu();
  const x = tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
  const flat = tensor(new Float32Array(12), [3, 4]);
  const long = tensor(new Float32Array(20000), [1, 1, 1, 20000]);
  const dot = tensor([1], [1, 1, 1, 1], { requiresGrad: true });
  const bad: [() => unknown, string[]][] = [
    [() => nn.resize(flat, { height: 2, width: 2 }), ["[3,4]", "NCHW"]],
    [() => nn.resize(x, { height: 0, width: 2 }), ["height", "0", "[2,3,4,5]"]],
    [() => nn.resize(x, { height: 2, width: -3 }), ["width", "-3", "[2,3,4,5]"]],
    [() => nn.resize(x, { height: 2, width: 2.5 }), ["width", "2.5", "[2,3,4,5]"]],
    [
      () => nn.resize(x, { height: 2, width: 2, mode: "nearest" as "bilinear" }),
      ["mode", "nearest"],
    ],
    [
      () => nn.resize(long, { height: 1, width: 2, mode: "bicubic", antialias: true }),
      ["[1,1,1,20000] -> [1,1,1,2]", "4096"],
    ],
    [() => nn.resize(dot, { height: 1, width: 5000 }), ["[1,1,1,1] -> [1,1,1,5000] (backward)"]],
    [() => nn.centerCrop(x, { height: 5, width: 2 }), ["5x2", "[2,3,4,5]"]],
    [() => nn.centerCrop(x, { height: 0, width: 2 }), ["height", "[2,3,4,5]"]],
    [() => nn.shortSideSize(0, 10, 5), ["h", "0x10"]],
    [() => nn.shortSideSize(10, 10, 0), ["size", "10x10"]],
  ];
  for (const [fn, words] of bad) {
    const message = refusal(fn);
    for (const word of words) {
      if (!message.includes(word)) throw new Error(`"${message}" does not name ${word}`);
    }
  }
  // Without a gradient the same enlargement runs (its forward rows have 2 taps).
  const wide = tidy(() => nn.resize(tensor([1], [1, 1, 1, 1]), { height: 1, width: 5000 }));
  assertClose(await wide.read(), new Array(5000).fill(1), { what: "1 -> 5000 without gradient" });
  [x, flat, long, dot, wide].forEach((t) => t.dispose());
});
