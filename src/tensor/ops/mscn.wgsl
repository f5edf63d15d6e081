// Local contrast normalisation (MSCN), fused: y = (x - mu) / (sqrt(max(m2 - mu^2, 0) + 1e-6) + c)
// with mu and m2 the means of x and x^2 over the K x K window around each pixel, border windows
// counting only the pixels inside the image (avg_pool2d with stride 1, padding (K-1)/2,
// count_include_pad=False). src/tensor/ops/mscn.ts runs it: the forward in two separable
// passes, the backward in four (the row sums recomputed; the gate maps; their row sums; their
// column sums with dx), instead of the six box-filter passes and some twenty
// elementwise dispatches of the composed formula.
//
// Per pixel with D = s + c, s = sqrt(var + 1e-6), u = x - mu and g the output's gradient:
//   g_u = g / D, g_var = -g u / D^2 / (2 s) where m2 - mu^2 > 0 (else 0),
//   g_mu = -g_u - 2 mu g_var, g_m2 = g_var,
//   dx = g_u + sum over windows o covering the pixel of (g_mu(o) + 2 x g_m2(o)) / count(o).
// The windows covering a pixel are the window around it (stride 1, symmetric padding), so the
// transposed box filter is the same clipped box sum.

struct Params {
  n: u32,      // pixels (planes * H * W)
  h: u32,
  w: u32,
  r: u32,      // window radius (K - 1) / 2
  c: f32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, b1 .. b5 (f32 arrays).

// Pixels of the window around (y, x) inside the image, along each axis.
fn span(i: u32, n: u32) -> vec2<u32> {
  return vec2<u32>(select(0u, i - params.r, i >= params.r), min(n - 1u, i + params.r));
}

// The two values a row pass sums at element j of b1: (x, x^2) of the input (SQUARE, the
// forward's moments), or the pair stored there (the backward's maps, interleaved).
const SQUARE: bool = {{SQUARE|true}};

fn pair_at(j: u32) -> vec2<f32> {
  if (SQUARE) {
    let v = b1[j];
    return vec2<f32>(v, v * v);
  }
  return vec2<f32>(b1[2u * j], b1[2u * j + 1u]);
}

// Row sums of the window along x: b1 -> b2 (two sums per pixel, interleaved).
@compute @workgroup_size(64)
fn mscn_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let x = i % params.w;
  let row = i - x;
  let s = span(x, params.w);
  var acc = vec2<f32>(0.0);
  for (var k = s.x; k <= s.y; k++) {
    acc += pair_at(row + k);
  }
  b2[2u * i] = acc.x;
  b2[2u * i + 1u] = acc.y;
}

// Column sums of the window along y of the row sums in b1 (interleaved pairs) at pixel i.
fn col_sums(i: u32) -> vec2<f32> {
  let plane = i / (params.h * params.w);
  let rem = i % (params.h * params.w);
  let sy = span(rem / params.w, params.h);
  let x = rem % params.w;
  var acc = vec2<f32>(0.0);
  for (var k = sy.x; k <= sy.y; k++) {
    let j = (plane * params.h + k) * params.w + x;
    acc += vec2<f32>(b1[2u * j], b1[2u * j + 1u]);
  }
  return acc;
}

// mu and m2 of pixel i from the row sums of (x, x^2) in b1.
fn moments(i: u32) -> vec2<f32> {
  return col_sums(i) / count(i);
}

// The count of pixel i's window.
fn count(i: u32) -> f32 {
  let rem = i % (params.h * params.w);
  let sy = span(rem / params.w, params.h);
  let sx = span(rem % params.w, params.w);
  return f32((sy.y - sy.x + 1u) * (sx.y - sx.x + 1u));
}

// Forward: b1 row sums, b2 x -> b3 y.
@compute @workgroup_size(64)
fn mscn_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let m = moments(i);
  let v = max(m.y - m.x * m.x, 0.0);
  b3[i] = (b2[i] - m.x) / (sqrt(v + 1e-6) + params.c);
}

// Backward, first pass: b1 row sums of x, b2 x, b3 g -> b4 (g_mu, g_m2) / count per pixel
// (interleaved), b5 g_u.
@compute @workgroup_size(64)
fn mscn_grad_maps(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let m = moments(i);
  let pre = m.y - m.x * m.x;
  let s = sqrt(max(pre, 0.0) + 1e-6);
  let d = s + params.c;
  let g = b3[i];
  let u = b2[i] - m.x;
  let gu = g / d;
  var gv = 0.0;
  if (pre > 0.0) { gv = -g * u / (d * d) / (2.0 * s); }
  let cnt = count(i);
  b4[2u * i] = (-gu - 2.0 * m.x * gv) / cnt;
  b4[2u * i + 1u] = gv / cnt;
  b5[i] = gu;
}

// Backward, last pass: b1 row sums of the maps, b2 x, b3 g_u -> b4 dx.
@compute @workgroup_size(64)
fn mscn_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let acc = col_sums(i);
  b4[i] = b3[i] + acc.x + 2.0 * b2[i] * acc.y;
}
