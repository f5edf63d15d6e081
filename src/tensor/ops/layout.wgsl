// Layout kernels for the shape ops (src/tensor/ops/shape.ts): permute, slice, concat, stack and
// their gradients are all one strided copy.
//
// copy: for every coordinate c of a box of `shape`,
//   dst[dst_base + c . dst_strides] = src[src_base + c . src_strides].
// The host merges axes that are contiguous in both tensors and drops size-1 axes, then splits the
// box into its innermost axis (`inner` elements, strides inner_src / inner_dst) and up to 7 outer
// axes. Each invocation copies a segment of up to seg_len elements of one row, so the integer
// divisions that split an index into coordinates (slow on CPU adapters, which cannot vectorise
// them) are paid once per segment rather than once per element.
// Indexing: rows * n_segs items over a 2-D grid of 64-wide workgroups (see grid1d).

struct Params {
  n_rows: u32,
  inner: u32,
  seg_len: u32,
  n_segs: u32,
  rank: u32,
  src_base: u32,
  dst_base: u32,
  inner_src: u32,
  inner_dst: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  shape: array<vec4<u32>, 2>,
  src_strides: array<vec4<u32>, 2>,
  dst_strides: array<vec4<u32>, 2>,
}

// Bindings (src/tensor/ops/_kernels.ts): params, src, dst (f32 arrays).

@compute @workgroup_size(64)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n_rows * params.n_segs) { return; }
  var rem = t / params.n_segs;
  let seg = t - rem * params.n_segs;
  var so = params.src_base;
  var d_off = params.dst_base;
  for (var a = i32(params.rank) - 1; a >= 0; a = a - 1) {
    let d = dim(params.shape, u32(a));
    let c = rem % d;
    rem = rem / d;
    so = so + c * dim(params.src_strides, u32(a));
    d_off = d_off + c * dim(params.dst_strides, u32(a));
  }
  let j0 = seg * params.seg_len;
  let j1 = min(params.inner, j0 + params.seg_len);
  for (var j = j0; j < j1; j = j + 1u) {
    dst[d_off + j * params.inner_dst] = src[so + j * params.inner_src];
  }
}
