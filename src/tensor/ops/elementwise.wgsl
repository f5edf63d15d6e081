// Elementwise kernels: fill, unary maps and their gradients, binary ops with broadcasting.
//
// Specialisation ({{...}} placeholders, filled per op by src/tensor/ops/elementwise.ts):
//   EXPR   unary forward, of x and p0/p1 (float params)
//   DEXPR  unary derivative, of x, y (the forward output) and p0/p1
//   BEXPR  binary forward, of a and b;  DA, DB  its derivatives with respect to a and b
//
// Indexing: a 1-D range of n items over a 2-D grid of 256-wide workgroups (see grid1d).
// Broadcasting (binary, binary_grad): the output is split into rows of its innermost axis
// (`inner` elements) and up to 7 outer axes (`shape`, outermost first). Each invocation handles a
// segment of up to SEG elements of one row: it splits the row index into coordinates once (integer
// division is slow on CPU adapters) and then steps along the row with each input's innermost
// stride (0 where that input is broadcast). Strides `sa`/`sb` are per outer axis, 0 on broadcast
// axes. binary_same and binary_grad_same skip all index arithmetic for equal shapes.

const SEG: u32 = 32u;

struct Params {
  n: u32,
  rank: u32,
  inner: u32,
  n_segs: u32,
  inner_a: u32,
  inner_b: u32,
  _pad0: u32,
  _pad1: u32,
  shape: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
  p0: f32,
  p1: f32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, then b1 .. b5 (f32 arrays; each entry point's roles below).

// For segment t: x = first output index, y = its offset into a, z = into b, w = segment length.
fn segment(t: u32) -> vec4<u32> {
  var row = t / params.n_segs;
  let j0 = (t - row * params.n_segs) * SEG;
  let out0 = row * params.inner + j0;
  var oa = j0 * params.inner_a;
  var ob = j0 * params.inner_b;
  for (var k = i32(params.rank) - 1; k >= 0; k = k - 1) {
    let d = dim(params.shape, u32(k));
    let c = row % d;
    row = row / d;
    oa = oa + c * dim(params.sa, u32(k));
    ob = ob + c * dim(params.sb, u32(k));
  }
  return vec4<u32>(out0, oa, ob, min(SEG, params.inner - j0));
}

// The standard normal CDF Phi(x) = 0.5 * (1 + erf(x / sqrt(2))), for gelu (torch's exact form,
// 0.5 * x * (1 + erf(x / sqrt(2))) = x * Phi(x)). WGSL has no erf: erfc(z), z = |x| / sqrt(2) >= 0,
// is the Chebyshev fit of Numerical Recipes' erfcc (Press et al., 6.2), fractional error below
// 1.2e-7 for every z >= 0 (a relative bound, unlike Abramowitz-Stegun 7.1.26's 1.5e-7 absolute
// one), so Phi(x) = erfc(z) / 2 keeps float32 relative accuracy far into the negative tail, and
// Phi(x) = 1 - erfc(z) / 2 for x >= 0.
fn normal_cdf(x: f32) -> f32 {
  let z = abs(x) * 0.70710678118654752;
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let half_erfc = 0.5 * t * exp(p - z * z);
  return select(1.0 - half_erfc, half_erfc, x < 0.0);
}

// gelu's derivative: Phi(x) + x * phi(x), phi the standard normal density.
fn gelu_grad(x: f32) -> f32 {
  return normal_cdf(x) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}

// b1 = p0
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  b1[i] = params.p0;
}

// b3 = b1 + b2 (same sizes)
@compute @workgroup_size(256)
fn add_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  b3[i] = b1[i] + b2[i];
}

// b2 = EXPR(x = b1)
@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let x = b1[i];
  let p0 = params.p0;
  let p1 = params.p1;
  b2[i] = {{EXPR|0.0}};
}

// b4 = g * DEXPR(x = b1, y = b2), g = b3
@compute @workgroup_size(256)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let x = b1[i];
  let y = b2[i];
  let p0 = params.p0;
  let p1 = params.p1;
  b4[i] = b3[i] * ({{DEXPR|0.0}});
}

// b3 = BEXPR(a = b1, b = b2), equal shapes
@compute @workgroup_size(256)
fn binary_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let a = b1[i];
  let b = b2[i];
  b3[i] = {{BEXPR|0.0}};
}

// b3 = BEXPR(a = b1, b = b2) with broadcasting; n = number of segments
@compute @workgroup_size(64)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n) { return; }
  let s = segment(t);
  for (var j = 0u; j < s.w; j = j + 1u) {
    let a = b1[s.y + j * params.inner_a];
    let b = b2[s.z + j * params.inner_b];
    b3[s.x + j] = {{BEXPR|0.0}};
  }
}

// Gradients in the output's shape (reduced to each input's shape by the caller), equal shapes:
// b4 = g * DA(a, b), b5 = g * DB(a, b), with g = b3.
@compute @workgroup_size(256)
fn binary_grad_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let a = b1[i];
  let b = b2[i];
  let g = b3[i];
  b4[i] = g * ({{DA|0.0}});
  b5[i] = g * ({{DB|0.0}});
}

// The same with broadcasting; n = number of segments.
@compute @workgroup_size(64)
fn binary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n) { return; }
  let s = segment(t);
  for (var j = 0u; j < s.w; j = j + 1u) {
    let a = b1[s.y + j * params.inner_a];
    let b = b2[s.z + j * params.inner_b];
    let g = b3[s.x + j];
    b4[s.x + j] = g * ({{DA|0.0}});
    b5[s.x + j] = g * ({{DB|0.0}});
  }
}
