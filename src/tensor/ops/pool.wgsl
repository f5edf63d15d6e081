// Pooling kernels (NCHW float32), used by src/tensor/ops/pool.ts.
//
// Windowed pooling (PyTorch semantics, floor mode): output (oh, ow) of plane p covers input rows
// oh*SH - PH .. oh*SH - PH + KH - 1 (and likewise columns); positions outside the image are
// padding. Average pooling divides by KH*KW, padding counting as zeros (count_include_pad), or
// when include_pad is 0 by the number of window positions inside the image;
// max pooling treats padding as -inf and takes the first maximum in row-major window order.
// All windowed kernels use one invocation per element over a 2-D grid of 64-wide workgroups.
//
//   avg_pool_fwd   b1 = x, b2 = out
//   avg_pool_rows  b1 = x, b2 = row sums [planes, H, OW]: each output column's window summed
//                  along one input row (the first half of the separable forward pass)
//   avg_pool_cols  b1 = row sums, b2 = out: the row sums of each output's window rows added
//                  and divided (the second half); KH + KW loads per output instead of KH * KW
//   avg_pool_bwd   b1 = g (output gradient), b2 = gin; each input gathers the outputs whose
//                  windows cover it (no atomics)
//   max_pool_fwd   b1 = x, b2 = out
//   max_pool_arg   b1 = x, b2 = argmax (row-major index within the plane, as f32: exact below
//                  2^24, which the host checks)
//   max_pool_bwd   b1 = g, b2 = argmax from max_pool_arg, b3 = gin; each input gathers the
//                  gradients of the outputs whose argmax it is
//
// Adaptive average pooling (PyTorch's adaptive_avg_pool2d): output oy of OH covers input rows
// [floor(oy*H/OH), ceil((oy+1)*H/OH)) (likewise columns), and divides by the window's size.
// Separable: each pass sums along one axis, so an invocation loops at most over one row or
// column (the host keeps H and W below lavapipe's loop limit).
//
//   adaptive_rows      b1 = x, b2 = row sums [planes, H, OW]
//   adaptive_cols      b1 = row sums, b2 = out: the window's row sums added and divided
//   adaptive_bwd_cols  b1 = g, b2 = [planes, H, OW]: per input row y, the sum over the output
//                      rows whose windows hold y of g / window size
//   adaptive_bwd_rows  b1 = that, b2 = gin: per input pixel, its sum over the output columns
//                      whose windows hold the pixel's column
//
// Global pooling: one workgroup of WG (64) invocations per (n, c) plane of HW elements, a strided
// pass and a tree reduction in workgroup memory. Only for planes of at most 4096 elements (64 per
// invocation and loop): lavapipe silently ends an invocation's loops after 65535 iterations in
// total, so the host sends larger planes to reduce.wgsl's chunked reductions instead.
//
//   global_mean_fwd  b1 = x, b2 = out [planes]
//   global_mean_bwd  b1 = g [planes], b2 = gin; one invocation per element
//   global_std_fwd   b1 = x, b2 = out [planes]; two passes (mean, then squared deviations)
//   global_std_bwd   b1 = x, b2 = g [planes], b3 = gin; recomputes mean and std per plane
//   *_small          the same with one invocation per plane (64 per workgroup), for planes so
//                    small that a workgroup each would leave most invocations idle

struct Params {
  n: u32,       // elements this dispatch covers (outputs, inputs or planes)
  planes: u32,  // N * C
  h: i32,
  w: i32,
  oh: i32,
  ow: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  ph: i32,
  pw: i32,
  include_pad: i32, // avg: 1 to divide by KH*KW, 0 by the positions inside the image
  f0: f32,          // global: divisor of the variance (HW - 1 or HW)
}

// Bindings (src/tensor/ops/_kernels.ts): params, then b1 .. b3 (f32 arrays).

// Range of output indices [lo, hi] along one axis whose windows cover input position i.
fn covering(i: i32, k: i32, s: i32, p: i32, n_out: i32) -> vec2<i32> {
  // o*s - p <= i  and  o*s - p + k - 1 >= i
  let a = i + p - k + 1;
  var lo = 0;
  if (a > 0) { lo = (a + s - 1) / s; }
  let hi = min((i + p) / s, n_out - 1);
  return vec2<i32>(lo, hi);
}

// Divisor of output (oy, ox) of average pooling.
fn avg_divisor(oy: i32, ox: i32) -> f32 {
  if (params.include_pad != 0) { return f32(params.kh * params.kw); }
  let y0 = oy * params.sh - params.ph;
  let x0 = ox * params.sw - params.pw;
  let rows = min(y0 + params.kh, params.h) - max(y0, 0);
  let cols = min(x0 + params.kw, params.w) - max(x0, 0);
  return f32(rows * cols);
}

@compute @workgroup_size(64)
fn avg_pool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let plane_out = u32(params.oh * params.ow);
  let pl = o / plane_out;
  let r = i32(o % plane_out);
  let oy = r / params.ow;
  let ox = r % params.ow;
  let base = pl * u32(params.h * params.w);
  let y0 = oy * params.sh - params.ph;
  let x0 = ox * params.sw - params.pw;
  var acc = 0.0;
  for (var dy = 0; dy < params.kh; dy = dy + 1) {
    let y = y0 + dy;
    if (y < 0 || y >= params.h) { continue; }
    for (var dx = 0; dx < params.kw; dx = dx + 1) {
      let x = x0 + dx;
      if (x < 0 || x >= params.w) { continue; }
      acc = acc + b1[base + u32(y * params.w + x)];
    }
  }
  b2[o] = acc / avg_divisor(oy, ox);
}

@compute @workgroup_size(64)
fn avg_pool_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let ox = i32(o % u32(params.ow));
  let row = o / u32(params.ow); // plane * H + y
  let base = row * u32(params.w);
  let x0 = ox * params.sw - params.pw;
  var acc = 0.0;
  for (var dx = max(0, -x0); dx < min(params.kw, params.w - x0); dx = dx + 1) {
    acc = acc + b1[base + u32(x0 + dx)];
  }
  b2[o] = acc;
}

@compute @workgroup_size(64)
fn avg_pool_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let plane_out = u32(params.oh * params.ow);
  let pl = o / plane_out;
  let r = i32(o % plane_out);
  let oy = r / params.ow;
  let ox = r % params.ow;
  let base = pl * u32(params.h * params.ow);
  let y0 = oy * params.sh - params.ph;
  var acc = 0.0;
  for (var dy = max(0, -y0); dy < min(params.kh, params.h - y0); dy = dy + 1) {
    acc = acc + b1[base + u32((y0 + dy) * params.ow + ox)];
  }
  b2[o] = acc / avg_divisor(oy, ox);
}

@compute @workgroup_size(64)
fn avg_pool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let pl = i / plane_in;
  let r = i32(i % plane_in);
  let y = r / params.w;
  let x = r % params.w;
  let ry = covering(y, params.kh, params.sh, params.ph, params.oh);
  let rx = covering(x, params.kw, params.sw, params.pw, params.ow);
  let base = pl * u32(params.oh * params.ow);
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
    for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
      acc = acc + b1[base + u32(oy * params.ow + ox)] / avg_divisor(oy, ox);
    }
  }
  b2[i] = acc;
}

// The separable backward of average pooling, in two passes (KH + KW terms per input instead of
// KH * KW divisions): first, per input row y and output column ox, the sum over the output rows
// oy whose windows cover y of dy[oy, ox] / divisor(oy, ox) ([planes, H, OW]); then, per input
// pixel, the sum of that over the output columns whose windows cover x.
@compute @workgroup_size(64)
fn avg_pool_bwd_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let ox = i32(o % u32(params.ow));
  let row = o / u32(params.ow); // plane * H + y
  let pl = row / u32(params.h);
  let y = i32(row % u32(params.h));
  let ry = covering(y, params.kh, params.sh, params.ph, params.oh);
  let base = pl * u32(params.oh * params.ow);
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
    acc = acc + b1[base + u32(oy * params.ow + ox)] / avg_divisor(oy, ox);
  }
  b2[o] = acc;
}

@compute @workgroup_size(64)
fn avg_pool_bwd_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let x = i32(i % u32(params.w));
  let row = i / u32(params.w); // plane * H + y
  let rx = covering(x, params.kw, params.sw, params.pw, params.ow);
  let base = row * u32(params.ow);
  var acc = 0.0;
  for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
    acc = acc + b1[base + u32(ox)];
  }
  b2[i] = acc;
}

// ---- adaptive average pooling ----

// Window [start, end) of output o of n_out over n_in inputs: floor(o*n_in/n_out) and
// ceil((o+1)*n_in/n_out).
fn adaptive_window(o: i32, n_out: i32, n_in: i32) -> vec2<i32> {
  return vec2<i32>((o * n_in) / n_out, ((o + 1) * n_in + n_out - 1) / n_out);
}

// Outputs [lo, hi] whose windows hold input i: start(o) <= i < end(o).
fn adaptive_covering(i: i32, n_out: i32, n_in: i32) -> vec2<i32> {
  return vec2<i32>((i * n_out) / n_in, min(((i + 1) * n_out - 1) / n_in, n_out - 1));
}

@compute @workgroup_size(64)
fn adaptive_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let ox = i32(o % u32(params.ow));
  let base = (o / u32(params.ow)) * u32(params.w); // (plane * H + y) * W
  let win = adaptive_window(ox, params.ow, params.w);
  var acc = 0.0;
  for (var x = win.x; x < win.y; x = x + 1) {
    acc = acc + b1[base + u32(x)];
  }
  b2[o] = acc;
}

@compute @workgroup_size(64)
fn adaptive_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let plane_out = u32(params.oh * params.ow);
  let pl = o / plane_out;
  let r = i32(o % plane_out);
  let oy = r / params.ow;
  let ox = r % params.ow;
  let wy = adaptive_window(oy, params.oh, params.h);
  let wx = adaptive_window(ox, params.ow, params.w);
  let base = pl * u32(params.h * params.ow) + u32(ox);
  var acc = 0.0;
  for (var y = wy.x; y < wy.y; y = y + 1) {
    acc = acc + b1[base + u32(y * params.ow)];
  }
  b2[o] = acc / f32((wy.y - wy.x) * (wx.y - wx.x));
}

@compute @workgroup_size(64)
fn adaptive_bwd_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  let ox = i32(o % u32(params.ow));
  let row = o / u32(params.ow); // plane * H + y
  let pl = row / u32(params.h);
  let y = i32(row % u32(params.h));
  let wx = adaptive_window(ox, params.ow, params.w);
  let cover = adaptive_covering(y, params.oh, params.h);
  let base = pl * u32(params.oh * params.ow) + u32(ox);
  var acc = 0.0;
  for (var oy = cover.x; oy <= cover.y; oy = oy + 1) {
    let wy = adaptive_window(oy, params.oh, params.h);
    acc = acc + b1[base + u32(oy * params.ow)] / f32((wy.y - wy.x) * (wx.y - wx.x));
  }
  b2[o] = acc;
}

@compute @workgroup_size(64)
fn adaptive_bwd_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let x = i32(i % u32(params.w));
  let base = (i / u32(params.w)) * u32(params.ow); // (plane * H + y) * OW
  let cover = adaptive_covering(x, params.ow, params.w);
  var acc = 0.0;
  for (var ox = cover.x; ox <= cover.y; ox = ox + 1) {
    acc = acc + b1[base + u32(ox)];
  }
  b2[i] = acc;
}

// ---- max pooling ----

// The first maximum of output o's window: (value, row-major index in the plane; -1 if none).
fn window_max(o: u32) -> vec2<f32> {
  let plane_out = u32(params.oh * params.ow);
  let pl = o / plane_out;
  let r = i32(o % plane_out);
  let oy = r / params.ow;
  let ox = r % params.ow;
  let base = pl * u32(params.h * params.w);
  let y0 = oy * params.sh - params.ph;
  let x0 = ox * params.sw - params.pw;
  var best = 0.0;
  var arg = -1;
  for (var dy = 0; dy < params.kh; dy = dy + 1) {
    let y = y0 + dy;
    if (y < 0 || y >= params.h) { continue; }
    for (var dx = 0; dx < params.kw; dx = dx + 1) {
      let x = x0 + dx;
      if (x < 0 || x >= params.w) { continue; }
      let j = y * params.w + x;
      let v = b1[base + u32(j)];
      // NaN wins (as in PyTorch), so a NaN input shows in the output.
      if (arg < 0 || v > best || v != v) {
        best = v;
        arg = j;
        if (v != v) { return vec2<f32>(v, f32(arg)); }
      }
    }
  }
  return vec2<f32>(best, f32(arg));
}

@compute @workgroup_size(64)
fn max_pool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  b2[o] = window_max(o).x;
}

@compute @workgroup_size(64)
fn max_pool_arg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n) { return; }
  b2[o] = window_max(o).y;
}

@compute @workgroup_size(64)
fn max_pool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let pl = i / plane_in;
  let r = i32(i % plane_in);
  let y = r / params.w;
  let x = r % params.w;
  let ry = covering(y, params.kh, params.sh, params.ph, params.oh);
  let rx = covering(x, params.kw, params.sw, params.pw, params.ow);
  let base = pl * u32(params.oh * params.ow);
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
    for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
      let o = base + u32(oy * params.ow + ox);
      if (i32(b2[o]) == r) { acc = acc + b1[o]; }
    }
  }
  b3[i] = acc;
}

// ---- global pooling ----

const WG: u32 = {{WG|64}}u;
var<workgroup> red: array<f32, WG>;

fn plane_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// Tree sum of `v` over the workgroup; every invocation gets the total. Must be reached by all
// invocations of the workgroup (uniform control flow).
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// Strided, Kahan-compensated sum of one plane's elements minus `shift`, by one invocation.
// Means are taken as shift + mean(x - shift) with shift = the plane's first element: exact for a
// constant plane (so its std is exactly 0, as torch's) and accurate when the mean is far from 0.
fn strided_sum(base: u32, hw: u32, lid: u32, shift: f32) -> f32 {
  var acc = 0.0;
  var comp = 0.0;
  for (var j = lid; j < hw; j = j + WG) {
    let y = (b1[base + j] - shift) - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  return acc;
}

// Strided, Kahan-compensated sum of squared deviations from `m`.
fn strided_sq_dev(base: u32, hw: u32, lid: u32, m: f32) -> f32 {
  var acc = 0.0;
  var comp = 0.0;
  for (var j = lid; j < hw; j = j + WG) {
    let d = b1[base + j] - m;
    let y = d * d - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  return acc;
}

@compute @workgroup_size(WG)
fn global_mean_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = plane_index(wid, nwg);
  if (p >= params.planes) { return; } // uniform per workgroup
  let hw = u32(params.h * params.w);
  let shift = b1[p * hw];
  let total = workgroup_sum(strided_sum(p * hw, hw, lid, shift), lid);
  if (lid == 0u) { b2[p] = shift + total / f32(hw); }
}

@compute @workgroup_size(64)
fn global_mean_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let hw = u32(params.h * params.w);
  b2[i] = b1[i / hw] / f32(hw);
}

// Mean and standard deviation of plane p (all invocations get both).
fn plane_moments(p: u32, lid: u32) -> vec2<f32> {
  let hw = u32(params.h * params.w);
  let base = p * hw;
  let shift = b1[base];
  let m = shift + workgroup_sum(strided_sum(base, hw, lid, shift), lid) / f32(hw);
  let ss = workgroup_sum(strided_sq_dev(base, hw, lid, m), lid);
  return vec2<f32>(m, sqrt(ss / params.f0));
}

@compute @workgroup_size(WG)
fn global_std_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = plane_index(wid, nwg);
  if (p >= params.planes) { return; }
  let ms = plane_moments(p, lid);
  if (lid == 0u) { b2[p] = ms.y; }
}

// d std / d x_j = (x_j - mean) / (divisor * std); 0 where std is 0 (as torch masks it).
@compute @workgroup_size(WG)
fn global_std_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = plane_index(wid, nwg);
  if (p >= params.planes) { return; }
  let hw = u32(params.h * params.w);
  let base = p * hw;
  let ms = plane_moments(p, lid);
  var scale = 0.0;
  if (ms.y > 0.0) { scale = b2[p] / (params.f0 * ms.y); }
  for (var j = lid; j < hw; j = j + WG) {
    b3[base + j] = (b1[base + j] - ms.x) * scale;
  }
}

// ---- global pooling of small planes: one invocation per plane ----

// Mean of plane elements base .. base + hw - 1 (shifted and Kahan-compensated, as strided_sum).
fn serial_mean(base: u32, hw: u32) -> f32 {
  let shift = b1[base];
  var acc = 0.0;
  var comp = 0.0;
  for (var j = 0u; j < hw; j = j + 1u) {
    let y = (b1[base + j] - shift) - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  return shift + acc / f32(hw);
}

// (mean, std) of one plane with the divisor f0, by one invocation.
fn serial_moments(base: u32, hw: u32) -> vec2<f32> {
  let m = serial_mean(base, hw);
  var acc = 0.0;
  var comp = 0.0;
  for (var j = 0u; j < hw; j = j + 1u) {
    let d = b1[base + j] - m;
    let y = d * d - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  return vec2<f32>(m, sqrt(acc / params.f0));
}

@compute @workgroup_size(64)
fn global_mean_fwd_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat_index(gid, nwg, 64u);
  if (p >= params.planes) { return; }
  let hw = u32(params.h * params.w);
  b2[p] = serial_mean(p * hw, hw);
}

@compute @workgroup_size(64)
fn global_std_fwd_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat_index(gid, nwg, 64u);
  if (p >= params.planes) { return; }
  let hw = u32(params.h * params.w);
  b2[p] = serial_moments(p * hw, hw).y;
}

@compute @workgroup_size(64)
fn global_std_bwd_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat_index(gid, nwg, 64u);
  if (p >= params.planes) { return; }
  let hw = u32(params.h * params.w);
  let base = p * hw;
  let ms = serial_moments(base, hw);
  var scale = 0.0;
  if (ms.y > 0.0) { scale = b2[p] / (params.f0 * ms.y); }
  for (var j = 0u; j < hw; j = j + 1u) {
    b3[base + j] = (b1[base + j] - ms.x) * scale;
  }
}
