// Reductions over chosen axes.
//
// sum_axes: one invocation per output element; it walks the reduced index space. The input is
// described as "kept" axes (those of the output) and "reduced" axes, each with sizes and strides
// into the input (rank <= 8 each). out = p0 * sum.

struct Params {
  n_out: u32,
  k: u32,
  rank_kept: u32,
  rank_red: u32,
  kept_shape: array<vec4<u32>, 2>,
  kept_strides: array<vec4<u32>, 2>,
  red_shape: array<vec4<u32>, 2>,
  red_strides: array<vec4<u32>, 2>,
  p0: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn dim(arr: array<vec4<u32>, 2>, i: u32) -> u32 {
  return arr[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn sum_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * 64u;
  if (o >= params.n_out) { return; }
  var rem = o;
  var base = 0u;
  for (var a = i32(params.rank_kept) - 1; a >= 0; a = a - 1) {
    let d = dim(params.kept_shape, u32(a));
    base = base + (rem % d) * dim(params.kept_strides, u32(a));
    rem = rem / d;
  }
  var acc = 0.0;
  var comp = 0.0; // Kahan compensation: long sums stay accurate in f32
  for (var r = 0u; r < params.k; r = r + 1u) {
    var rr = r;
    var off = base;
    for (var a = i32(params.rank_red) - 1; a >= 0; a = a - 1) {
      let d = dim(params.red_shape, u32(a));
      off = off + (rr % d) * dim(params.red_strides, u32(a));
      rr = rr / d;
    }
    let y = src[off] - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  dst[o] = acc * params.p0;
}
