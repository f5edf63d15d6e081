// Batch normalisation in inference form (torch.nn.functional.batch_norm with training=False), used
// by src/tensor/ops/norm.ts. x is [N, C, S] (S = the product of the trailing axes: 1 for [N, C],
// H*W for [N, C, H, W], T*H*W for [N, C, T, H, W]); the per-channel statistics are constants.
//
//   y = (x - mean[c]) * alpha[c] + bias[c],   alpha[c] = weight[c] / sqrt(var[c] + eps)
//
// Indexing: each invocation handles a segment of up to SEG contiguous elements of one (n, c)
// plane: it splits its index into (plane, segment) and the plane into its channel once (two
// integer divisions per segment, not per element: they are slow on CPU adapters), reads the
// channel's four statistics once and then walks the segment. One invocation per segment over a
// 2-D grid of 64-wide workgroups (grid1d).
//
//   bn_apply  b1 = x, b6 = out. CENTRE 1: the forward, out = (x - mean) * alpha + bias.
//             CENTRE 0: the input gradient alone, with b1 = g: out = g * alpha.
//             foldBatchNorm runs both: CENTRE 0 on the convolution's weight as [1, Cout, rest]
//             (w * alpha), CENTRE 1 on its bias as [1, Cout] ((b - mean) * alpha + bias).
//   bn_bwd    b1 = x, b7 = g; writes b8 = g * xhat (xhat = (x - mean) / sqrt(var + eps); summed
//             per channel by the host into the weight's gradient) and, when WANT_DX is 1,
//             b6 = g * alpha (the input gradient) in the same pass.
//
// b2 = weight, b3 = bias, b4 = mean, b5 = var ([C] each). A missing weight (HAS_WEIGHT 0) counts
// as ones and a missing bias (HAS_BIAS 0) as zeros; the host then binds another [C] buffer in
// their place (the inputs are read-only bindings, so one buffer may fill several).

const SEG: u32 = 32u;

struct Params {
  n: u32,          // segments this dispatch covers (planes * n_segs)
  c: u32,          // channels
  s: u32,          // elements per plane
  n_segs: u32,     // segments per plane, ceil(s / SEG)
  has_weight: u32,
  has_bias: u32,
  centre: u32,     // bn_apply: CENTRE (1 forward, 0 input gradient)
  want_dx: u32,    // bn_bwd: WANT_DX (also write the input gradient to b6)
  eps: f32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, then b1 .. b5 (read-only f32 arrays), b6 .. b8
// (f32 arrays).

// (alpha, 1 / sqrt(var + eps), mean, bias) of channel c.
fn channel(c: u32) -> vec4<f32> {
  let inv = 1.0 / sqrt(b5[c] + params.eps);
  var w = 1.0;
  if (params.has_weight != 0u) { w = b2[c]; }
  var b = 0.0;
  if (params.has_bias != 0u) { b = b3[c]; }
  return vec4<f32>(w * inv, inv, b4[c], b);
}

// For segment t: (first element, its length, channel).
fn segment(t: u32) -> vec3<u32> {
  let plane = t / params.n_segs;
  let j0 = (t - plane * params.n_segs) * SEG;
  return vec3<u32>(plane * params.s + j0, min(SEG, params.s - j0), plane % params.c);
}

@compute @workgroup_size(64)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n) { return; }
  let seg = segment(t);
  let k = channel(seg.z);
  if (params.centre != 0u) {
    for (var j = seg.x; j < seg.x + seg.y; j = j + 1u) {
      b6[j] = (b1[j] - k.z) * k.x + k.w;
    }
  } else {
    for (var j = seg.x; j < seg.x + seg.y; j = j + 1u) {
      b6[j] = b1[j] * k.x;
    }
  }
}

@compute @workgroup_size(64)
fn bn_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n) { return; }
  let seg = segment(t);
  let k = channel(seg.z);
  for (var j = seg.x; j < seg.x + seg.y; j = j + 1u) {
    let g = b7[j];
    b8[j] = g * (b1[j] - k.z) * k.y;
    if (params.want_dx != 0u) { b6[j] = g * k.x; }
  }
}
