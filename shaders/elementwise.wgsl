// Elementwise kernels: fill, unary maps and their gradients, binary ops with broadcasting.
//
// Specialisation ({{...}} placeholders, filled per op by src/tensor/ops/elementwise.ts):
//   EXPR   unary forward, of x and p0/p1 (float params)
//   DEXPR  unary derivative, of x, y (the forward output) and p0/p1
//   BEXPR  binary forward, of a and b;  DA, DB  its derivatives with respect to a and b
//
// Indexing: a 1-D range of n items over a 2-D grid of 256-wide workgroups (see grid1d).
// Broadcasting: the output index is split into coordinates with `shape` (rank <= 8, outermost
// first), and each input's offset is the dot product with its strides (0 on broadcast axes).

struct Params {
  n: u32,
  rank: u32,
  _pad0: u32,
  _pad1: u32,
  shape: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
  p0: f32,
  p1: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn dim(arr: array<vec4<u32>, 2>, i: u32) -> u32 {
  return arr[i / 4u][i % 4u];
}

// Offsets of output element `i` into a and b, given per-axis strides.
fn offsets(i: u32) -> vec2<u32> {
  var rem = i;
  var oa = 0u;
  var ob = 0u;
  for (var k = i32(params.rank) - 1; k >= 0; k = k - 1) {
    let d = dim(params.shape, u32(k));
    let c = rem % d;
    rem = rem / d;
    oa = oa + c * dim(params.sa, u32(k));
    ob = ob + c * dim(params.sb, u32(k));
  }
  return vec2<u32>(oa, ob);
}

// b1 = p0
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  b1[i] = params.p0;
}

// b3 = b1 + b2 (same sizes)
@compute @workgroup_size(256)
fn add_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  b3[i] = b1[i] + b2[i];
}

// b2 = EXPR(x = b1)
@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let x = b1[i];
  let p0 = params.p0;
  let p1 = params.p1;
  b2[i] = {{EXPR|0.0}};
}

// b4 = g * DEXPR(x = b1, y = b2), g = b3
@compute @workgroup_size(256)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let x = b1[i];
  let y = b2[i];
  let p0 = params.p0;
  let p1 = params.p1;
  b4[i] = b3[i] * ({{DEXPR|0.0}});
}

// b3 = BEXPR(a = b1, b = b2) with broadcasting
@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let o = offsets(i);
  let a = b1[o.x];
  let b = b2[o.y];
  b3[i] = {{BEXPR|0.0}};
}

// Gradients in the output's shape (reduced to each input's shape by the caller):
// b4 = g * DA(a, b), b5 = g * DB(a, b), with g = b3.
@compute @workgroup_size(256)
fn binary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= params.n) { return; }
  let o = offsets(i);
  let a = b1[o.x];
  let b = b2[o.y];
  let g = b3[i];
  b4[i] = g * ({{DA|0.0}});
  b5[i] = g * ({{DB|0.0}});
}
