// Layer normalisation over the last axis (torch.nn.functional.layer_norm with
// normalized_shape = [C]), used by src/tensor/ops/layer_norm.ts. x is [N, C] (N = the product of
// the leading axes); weight and bias are [C].
//
//   mean = sum(x) / C,  var = sum((x - mean)^2) / C  (two passes, biased, as torch)
//   rstd = 1 / sqrt(var + eps),  xhat = (x - mean) * rstd,  y = xhat * weight + bias
//
// Indexing: one 64-wide workgroup per row, rows laid over a 2-D grid of workgroups (grid1d with a
// width of 1: row = wid.x + wid.y * nwg.x). Each invocation walks the row with a stride of 64 and
// the workgroup sums its partial sums as a tree in workgroup memory. Nothing is saved between the
// passes: the backward recomputes the row's mean and rstd.
//
//   ln_fwd  b1 = x, b2 = weight, b3 = bias; writes b4 = y.
//   ln_bwd  b1 = x, b2 = weight, b3 = g (the output's gradient). With gw = g * weight:
//           dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), written to b4 when WANT_DX is
//           1; g * xhat (summed over the rows by the host into the weight's gradient) written to
//           b5 when WANT_TERMS is 1.
//
// A missing weight (HAS_WEIGHT 0) counts as ones and a missing bias (HAS_BIAS 0) as zeros; the
// host then binds x in their place (b1 .. b3 are read-only bindings, so one buffer may fill
// several).

const WG: u32 = 64u;

struct Params {
  n: u32,          // rows
  c: u32,          // row length
  has_weight: u32,
  has_bias: u32,
  want_dx: u32,    // ln_bwd: write dx to b4
  want_terms: u32, // ln_bwd: write g * xhat to b5
  eps: f32,
}

// Bindings (src/tensor/ops/layer_norm.ts): params, then b1 .. b3 (read-only f32 arrays), b4, b5
// (f32 arrays).

var<workgroup> partial: array<vec2<f32>, 64>;

// The workgroup's sum of each invocation's `v` (called in uniform control flow).
fn wg_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
  workgroupBarrier(); // earlier readers of `partial` are done
  partial[lid] = v;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (lid < step) { partial[lid] = partial[lid] + partial[lid + step]; }
    workgroupBarrier();
  }
  return partial[0];
}

// (mean, rstd) of the row starting at `base`.
fn row_stats(base: u32, lid: u32) -> vec2<f32> {
  let c = params.c;
  var s = 0.0;
  for (var j = lid; j < c; j = j + WG) { s = s + b1[base + j]; }
  let mean = wg_sum(lid, vec2<f32>(s, 0.0)).x / f32(c);
  var q = 0.0;
  for (var j = lid; j < c; j = j + WG) {
    let d = b1[base + j] - mean;
    q = q + d * d;
  }
  let variance = wg_sum(lid, vec2<f32>(q, 0.0)).x / f32(c);
  return vec2<f32>(mean, 1.0 / sqrt(variance + params.eps));
}

fn weight_at(j: u32) -> f32 {
  if (params.has_weight != 0u) { return b2[j]; }
  return 1.0;
}

@compute @workgroup_size(64)
fn ln_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; }
  let base = row * params.c;
  let st = row_stats(base, lid);
  for (var j = lid; j < params.c; j = j + WG) {
    var y = (b1[base + j] - st.x) * st.y * weight_at(j);
    if (params.has_bias != 0u) { y = y + b3[j]; }
    b4[base + j] = y;
  }
}

@compute @workgroup_size(64)
fn ln_bwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; }
  let base = row * params.c;
  let st = row_stats(base, lid);
  var acc = vec2<f32>(0.0, 0.0); // (sum gw, sum gw * xhat)
  for (var j = lid; j < params.c; j = j + WG) {
    let g = b3[base + j];
    let xhat = (b1[base + j] - st.x) * st.y;
    let gw = g * weight_at(j);
    acc = acc + vec2<f32>(gw, gw * xhat);
    if (params.want_terms != 0u) { b5[base + j] = g * xhat; }
  }
  let sums = wg_sum(lid, acc) / f32(params.c);
  if (params.want_dx != 0u) {
    for (var j = lid; j < params.c; j = j + WG) {
      let xhat = (b1[base + j] - st.x) * st.y;
      let gw = b3[base + j] * weight_at(j);
      b4[base + j] = st.y * (gw - sums.x - xhat * sums.y);
    }
  }
}
