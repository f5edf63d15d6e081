// 2x upsampling of NCHW float32 planes of H x W to 2H x 2W, used by src/tensor/ops/resample.ts.
// One invocation per input element over a 2-D grid of 64-wide workgroups: forward kernels write
// the 2x2 block of outputs at (2y, 2x); backward kernels gather the output gradients that the
// input contributed to, so every input gradient is written once, without atomics.
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

// Bindings (src/tensor/ops/_kernels.ts): params, b1 (also seen as g2), b2 (also seen as out2).

// Output-shaped buffers seen as pairs of floats (output rows have even length 2W): the forward
// outputs, and the output gradients read by the backward kernels. Different entry points use
// each binding as one type or the other.

@compute @workgroup_size(64)
fn nearest_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let ow = 2 * params.w;
  let top = p * u32(4 * params.h * params.w) + u32((2 * (r / params.w)) * ow + 2 * (r % params.w));
  let v = vec2<f32>(b1[i]);
  out2[top / 2u] = v;
  out2[(top + u32(ow)) / 2u] = v;
}

@compute @workgroup_size(64)
fn nearest_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let ow = 2 * params.w;
  let top = p * u32(4 * params.h * params.w) + u32((2 * (r / params.w)) * ow + 2 * (r % params.w));
  let a = g2[top / 2u];
  let b = g2[(top + u32(ow)) / 2u];
  b2[i] = (a.x + a.y) + (b.x + b.y);
}

// Along an axis of n inputs, input i feeds outputs 2i (with input i-1) and 2i+1 (with i+1):
//   out[2i]   = a * in[i-1] + (1 - a) * in[i],   a = 0.25, or 0 at i = 0 (source clamped at 0)
//   out[2i+1] = (1 - b) * in[i] + b * in[i+1],   b = 0.25, or 0 at i = n-1 (edge replicated)
// which is PyTorch's l0 * in[i0] + l1 * in[i1] with source (d + 0.5) / 2 - 0.5 (at the edges
// PyTorch's weights are 1 and 0, or 0.75 and 0.25 on one replicated input: the same sum).
fn lo_weight(i: i32) -> f32 {
  return select(0.25, 0.0, i == 0);
}

fn hi_weight(i: i32, n: i32) -> f32 {
  return select(0.25, 0.0, i == n - 1);
}

@compute @workgroup_size(64)
fn bilinear_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let iy = r / params.w;
  let ix = r % params.w;
  let base = p * plane_in;
  // Rows iy-1, iy, iy+1 and columns ix-1, ix, ix+1, clamped (a clamped cell has weight 0).
  let r0 = base + u32(max(iy - 1, 0) * params.w);
  let r1 = base + u32(iy * params.w);
  let r2 = base + u32(min(iy + 1, params.h - 1) * params.w);
  let c0 = u32(max(ix - 1, 0));
  let c1 = u32(ix);
  let c2 = u32(min(ix + 1, params.w - 1));
  let ax = lo_weight(ix);
  let bx = hi_weight(ix, params.w);
  let ay = lo_weight(iy);
  let by = hi_weight(iy, params.h);
  // Horizontal pass on the three rows: left (2ix) and right (2ix+1) outputs.
  let x1 = b1[r1 + c1];
  let l0 = ax * b1[r0 + c0] + (1.0 - ax) * b1[r0 + c1];
  let l1 = ax * b1[r1 + c0] + (1.0 - ax) * x1;
  let l2 = ax * b1[r2 + c0] + (1.0 - ax) * b1[r2 + c1];
  let q0 = (1.0 - bx) * b1[r0 + c1] + bx * b1[r0 + c2];
  let q1 = (1.0 - bx) * x1 + bx * b1[r1 + c2];
  let q2 = (1.0 - bx) * b1[r2 + c1] + bx * b1[r2 + c2];
  let ow = u32(2 * params.w);
  let top = p * (4u * plane_in) + u32(2 * iy) * ow + u32(2 * ix);
  out2[top / 2u] = vec2<f32>(ay * l0 + (1.0 - ay) * l1, ay * q0 + (1.0 - ay) * q1);
  out2[(top + ow) / 2u] = vec2<f32>((1.0 - by) * l1 + by * l2, (1.0 - by) * q1 + by * q2);
}

// Weights with which outputs 2i-1, 2i, 2i+1, 2i+2 read input i (0 where an output is absent).
fn axis_weights(i: i32, n: i32) -> vec4<f32> {
  return vec4<f32>(
    select(0.0, 0.25, i > 0),
    select(0.75, 1.0, i == 0),
    select(0.75, 1.0, i == n - 1),
    select(0.0, 0.25, i < n - 1),
  );
}

@compute @workgroup_size(64)
fn bilinear_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let plane_in = u32(params.h * params.w);
  let p = i / plane_in;
  let r = i32(i % plane_in);
  let iy = r / params.w;
  let ix = r % params.w;
  let oh = 2 * params.h;
  let wy = axis_weights(iy, params.h);
  let wx = axis_weights(ix, params.w);
  // In pairs of output columns: (2ix-2, 2ix-1), (2ix, 2ix+1), (2ix+2, 2ix+3), clamped where
  // absent (their weights are 0); rows 2iy-1 .. 2iy+2 likewise.
  let base = p * (2u * plane_in); // in pairs
  let cl = u32(max(ix - 1, 0));
  let cr = u32(min(ix + 1, params.w - 1));
  var acc = 0.0;
  for (var k = 0; k < 4; k = k + 1) {
    let row = base + u32(clamp(2 * iy - 1 + k, 0, oh - 1) * params.w);
    let m = g2[row + u32(ix)];
    let v = vec4<f32>(g2[row + cl].y, m.x, m.y, g2[row + cr].x);
    acc = acc + wy[k] * dot(wx, v);
  }
  b2[i] = acc;
}
