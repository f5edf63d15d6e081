// Elementwise regression losses f(pred - target), used by src/tensor/ops/loss.ts.
//
// Specialisation: F is the loss of the difference d (e.g. "abs(d)" or "d * d"), DF its
// derivative (e.g. "sign(d)" or "2.0 * d").
//
//   loss_none      b1 = pred, b2 = target, b3 = out: out[i] = F(pred[i] - target[i])
//   loss_partial   b1 = pred, b2 = target, b3 = partial sums, one per workgroup of WG invocations
//                  over a contiguous chunk of `chunk` elements (Kahan-compensated, then a tree)
//   loss_final     b1 = partial sums (count of them), b2 = out[0] = scale * their sum (one
//                  workgroup)
//   loss_bwd_one   b1 = pred, b2 = target, b3 = g, b4 = gin: gin[i] = sign * gs * DF(d), with
//                  gs = scale * g[0] when reduced, else g[i] (sign +1 for pred, -1 for target)
//   loss_bwd_both  the same for both inputs at once: b4 = d/dpred, b5 = d/dtarget
//
// Elementwise entries: one invocation per element over a 2-D grid of 256-wide workgroups.

struct Params {
  n: u32,
  reduced: u32, // backward: 1 when the output was a mean or sum (g has one element)
  chunk: u32,   // loss_partial: elements per workgroup
  count: u32,   // loss_final: number of partial sums
  scale: f32,   // 1/n for a mean, 1 for a sum
  sign: f32,    // loss_bwd_one: +1 for pred, -1 for target
}

// Bindings (src/tensor/ops/_kernels.ts): params, then b1 .. b5 (f32 arrays; roles above).

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

fn f(d: f32) -> f32 {
  return {{F|d}};
}

fn df(d: f32) -> f32 {
  return {{DF|1.0}};
}

@compute @workgroup_size(WG)
fn loss_none(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  b3[i] = f(b1[i] - b2[i]);
}

// Tree sum over the workgroup, returned to every invocation (uniform control flow required).
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

@compute @workgroup_size(WG)
fn loss_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let start = wid.x * params.chunk;
  let end = min(start + params.chunk, params.n);
  var acc = 0.0;
  var comp = 0.0;
  for (var i = start + lid; i < end; i = i + WG) {
    let y = f(b1[i] - b2[i]) - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) { b3[wid.x] = total; }
}

@compute @workgroup_size(WG)
fn loss_final(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  var comp = 0.0;
  for (var i = lid; i < params.count; i = i + WG) {
    let y = b1[i] - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  let total = workgroup_sum(acc, lid);
  if (lid == 0u) { b2[0] = total * params.scale; }
}

fn grad_scale(i: u32) -> f32 {
  if (params.reduced == 1u) { return b3[0] * params.scale; }
  return b3[i];
}

@compute @workgroup_size(WG)
fn loss_bwd_one(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  b4[i] = params.sign * grad_scale(i) * df(b1[i] - b2[i]);
}

@compute @workgroup_size(WG)
fn loss_bwd_both(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  if (i >= params.n) { return; }
  let gp = grad_scale(i) * df(b1[i] - b2[i]);
  b4[i] = gp;
  b5[i] = -gp;
}
