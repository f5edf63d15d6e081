// Layout kernels for the shape ops (src/tensor/ops/shape.ts): permute, slice, concat, stack and
// their gradients are all one strided copy.
//
// copy: for every index i of a box of `shape` (rank <= 8, outermost first; the host merges axes
// that are contiguous in both tensors and drops size-1 axes), with coordinates c,
//   dst[dst_base + c . dst_strides] = src[src_base + c . src_strides].
// Indexing: a 1-D range of n items over a 2-D grid of 256-wide workgroups (see grid1d).

struct Params {
  n: u32,
  rank: u32,
  src_base: u32,
  dst_base: u32,
  shape: array<vec4<u32>, 2>,
  src_strides: array<vec4<u32>, 2>,
  dst_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn dim(arr: array<vec4<u32>, 2>, i: u32) -> u32 {
  return arr[i / 4u][i % 4u];
}

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  var rem = i;
  var so = params.src_base;
  var d_off = params.dst_base;
  for (var a = i32(params.rank) - 1; a >= 0; a = a - 1) {
    let d = dim(params.shape, u32(a));
    let c = rem % d;
    rem = rem / d;
    so = so + c * dim(params.src_strides, u32(a));
    d_off = d_off + c * dim(params.dst_strides, u32(a));
  }
  dst[d_off] = src[so];
}
