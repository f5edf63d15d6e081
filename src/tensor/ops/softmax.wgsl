// Softmax over the last axis (torch.softmax(x, dim=-1)), used by src/tensor/ops/softmax.ts. x is
// [N, C] (N = the product of the other axes, after the host has moved the softmax axis last).
//
//   m = max(x),  s = sum(exp(x - m)),  y = exp(x - m) / s
//   backward:  dx = y * (g - sum(g * y))
//
// Two layouts (the host picks one, softmax.ts). sm_fwd / sm_bwd: one 64-wide workgroup per row,
// rows laid over a 2-D grid of workgroups (grid1d with a width of 1: row = wid.x + wid.y * nwg.x),
// each invocation walking the row with a stride of 64 (few, long rows). sm_fwd_rows /
// sm_bwd_rows: one invocation per row, 64 rows per workgroup (grid1d with a width of 64), the
// same arithmetic without workgroup memory or barriers (many rows).
// The forward keeps a running (max, sum of exp(x - max)) per invocation in one pass ("online"
// softmax: when a larger value arrives the sum is rescaled by exp(old max - new max)), merges the
// 64 pairs as a tree in workgroup memory, then writes y in a second pass; the row max is
// subtracted before every exp, so large offsets (1e4) do not overflow.
//
//   sm_fwd  b1 = x; writes b2 = y.
//   sm_bwd  b1 = y (the forward's output), b2 = g (its gradient); writes b3 = dx.

const WG: u32 = 64u;
// Below any float32 input: the running max of an invocation that has seen nothing.
const LOWEST: f32 = -3.0e38;

struct Params {
  n: u32, // rows
  c: u32, // row length
}

// Bindings (src/tensor/ops/_kernels.ts SOFTMAX): params, then b1 (read-only), b2, b3.

var<workgroup> partial: array<vec2<f32>, 64>;

// Merges two (max, sum of exp(x - max)) pairs.
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(64)
fn sm_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform per workgroup, so the barriers below stay in uniform control flow.
  if (row >= params.n) { return; }
  let c = params.c;
  let base = row * c;
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < c; j = j + WG) {
    let v = b1[base + j];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s = s + exp(v - m);
    }
  }
  partial[lid] = vec2<f32>(m, s);
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (lid < step) { partial[lid] = merge(partial[lid], partial[lid + step]); }
    workgroupBarrier();
  }
  let total = partial[0];
  let inv = 1.0 / total.y;
  for (var j = lid; j < c; j = j + WG) {
    b2[base + j] = exp(b1[base + j] - total.x) * inv;
  }
}

var<workgroup> dots: array<f32, 64>;

@compute @workgroup_size(64)
fn sm_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; }
  let c = params.c;
  let base = row * c;
  var d = 0.0;
  for (var j = lid; j < c; j = j + WG) { d = d + b1[base + j] * b2[base + j]; }
  dots[lid] = d;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (lid < step) { dots[lid] = dots[lid] + dots[lid + step]; }
    workgroupBarrier();
  }
  let dot = dots[0];
  for (var j = lid; j < c; j = j + WG) {
    b3[base + j] = b1[base + j] * (b2[base + j] - dot);
  }
}

// Short rows (the host picks these below a row length where a workgroup per row costs more in
// barriers than it gains): one invocation per row, 64 rows per workgroup, no workgroup memory.

@compute @workgroup_size(64)
fn sm_fwd_rows(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= params.n) { return; }
  let c = params.c;
  let base = row * c;
  var m = LOWEST;
  var s = 0.0;
  for (var j = 0u; j < c; j = j + 1u) {
    let v = b1[base + j];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s = s + exp(v - m);
    }
  }
  let inv = 1.0 / s;
  for (var j = 0u; j < c; j = j + 1u) {
    b2[base + j] = exp(b1[base + j] - m) * inv;
  }
}

@compute @workgroup_size(64)
fn sm_bwd_rows(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= params.n) { return; }
  let c = params.c;
  let base = row * c;
  var dot = 0.0;
  for (var j = 0u; j < c; j = j + 1u) { dot = dot + b1[base + j] * b2[base + j]; }
  for (var j = 0u; j < c; j = j + 1u) {
    b3[base + j] = b1[base + j] * (b2[base + j] - dot);
  }
}
