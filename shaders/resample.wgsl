// 2x upsampling of NCHW float32 planes of H x W to 2H x 2W, used by src/tensor/ops/resample.ts.
// One invocation per element (outputs forward, inputs backward) over a 2-D grid of 64-wide
// workgroups. Backward kernels gather the output gradients that each input contributed to, so
// every input gradient is written once, without atomics.
//
//   nearest_fwd   b1 = x, b2 = out: out[y, x] = in[y / 2, x / 2]
//   nearest_bwd   b1 = g, b2 = gin: the sum of the 2x2 block of outputs an input feeds
//   bilinear_fwd  b1 = x, b2 = out, as PyTorch's F.interpolate(scale_factor=2, mode="bilinear",
//                 align_corners=False): source coordinate (d + 0.5) / 2 - 0.5 clamped at 0, the
//                 second tap replicated at the last row/column
//   bilinear_bwd  b1 = g, b2 = gin: along each axis, input i is read only by outputs
//                 2i-1 .. 2i+2, so each input sums over at most 4x4 outputs, weighting each by
//                 the same per-axis weights the forward pass used

struct Params {
  n: u32,       // elements this dispatch covers
  planes: u32,  // N * C
  h: i32,       // input height
  w: i32,       // input width
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64)
fn nearest_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat(gid, nwg);
  if (o >= params.n) { return; }
  let ow = 2 * params.w;
  let plane_out = u32(2 * params.h * ow);
  let p = o / plane_out;
  let r = i32(o % plane_out);
  let y = (r / ow) / 2;
  let x = (r % ow) / 2;
  b2[o] = b1[p * u32(params.h * params.w) + u32(y * params.w + x)];
}

@compute @workgroup_size(64)
fn nearest_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let ow = 2 * params.w;
  let top = p * u32(4 * params.h * params.w) + u32((2 * (r / params.w)) * ow + 2 * (r % params.w));
  b2[i] = (b1[top] + b1[top + 1u]) + (b1[top + u32(ow)] + b1[top + u32(ow) + 1u]);
}

// The two taps (i0, i1) and weights (l0, l1) of output coordinate d on an axis of n inputs.
struct Taps {
  i0: i32,
  i1: i32,
  l0: f32,
  l1: f32,
}

fn taps(d: i32, n: i32) -> Taps {
  let s = max(0.5 * (f32(d) + 0.5) - 0.5, 0.0);
  let i0 = min(i32(s), n - 1);
  let i1 = select(i0, i0 + 1, i0 < n - 1);
  let l1 = s - f32(i0);
  return Taps(i0, i1, 1.0 - l1, l1);
}

@compute @workgroup_size(64)
fn bilinear_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat(gid, nwg);
  if (o >= params.n) { return; }
  let ow = 2 * params.w;
  let plane_out = u32(2 * params.h * ow);
  let p = o / plane_out;
  let r = i32(o % plane_out);
  let ty = taps(r / ow, params.h);
  let tx = taps(r % ow, params.w);
  let base = p * u32(params.h * params.w);
  let r0 = base + u32(ty.i0 * params.w);
  let r1 = base + u32(ty.i1 * params.w);
  let top = tx.l0 * b1[r0 + u32(tx.i0)] + tx.l1 * b1[r0 + u32(tx.i1)];
  let bottom = tx.l0 * b1[r1 + u32(tx.i0)] + tx.l1 * b1[r1 + u32(tx.i1)];
  b2[o] = ty.l0 * top + ty.l1 * bottom;
}

// Weight with which output coordinate d reads input i along an axis of n inputs (both taps count
// when they coincide at the edge).
fn tap_weight(d: i32, i: i32, n: i32) -> f32 {
  let t = taps(d, n);
  return select(0.0, t.l0, t.i0 == i) + select(0.0, t.l1, t.i1 == i);
}

@compute @workgroup_size(64)
fn bilinear_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let iy = r / params.w;
  let ix = r % params.w;
  let oh = 2 * params.h;
  let ow = 2 * params.w;
  let base = p * u32(oh * ow);
  var wx: array<f32, 4>;
  for (var c = 0; c < 4; c = c + 1) {
    let ox = 2 * ix - 1 + c;
    wx[c] = select(0.0, tap_weight(ox, ix, params.w), ox >= 0 && ox < ow);
  }
  var acc = 0.0;
  for (var cy = 0; cy < 4; cy = cy + 1) {
    let oy = 2 * iy - 1 + cy;
    if (oy < 0 || oy >= oh) { continue; }
    let wy = tap_weight(oy, iy, params.h);
    if (wy == 0.0) { continue; }
    let row = base + u32(oy * ow);
    var racc = 0.0;
    for (var cx = 0; cx < 4; cx = cx + 1) {
      let ox = 2 * ix - 1 + cx;
      if (wx[cx] != 0.0) { racc = racc + wx[cx] * b1[row + u32(ox)]; }
    }
    acc = acc + wy * racc;
  }
  b2[i] = acc;
}
