// Reductions over chosen axes (src/tensor/ops/reduce.ts).
//
// The input is described as "kept" axes (those of the output) and "reduced" axes, each with sizes
// and strides into the input (rank <= 8 each; adjacent axes are merged on the CPU first, so a
// reduction over the innermost axes has one reduced axis of stride 1). The reduced index space
// [0, k) is split into `chunks` chunks of `chunk_len`; each chunk of each output is summed by one
// workgroup (sum_tree) or one invocation (sum_axes) into a partial sum, and when chunks > 1 the
// host reduces the partials in a second pass. Partial layouts:
//   sum_tree: dst[o * chunks + c]   (reduced index innermost: the next pass is again contiguous)
//   sum_axes: dst[c * n_out + o]    (outputs innermost: neighbouring invocations, neighbouring o)
//
// Accuracy: each invocation sums its elements with Kahan compensation, and sum_tree combines the
// WG invocations of its workgroup (64, TREE_WG in reduce.ts) pairwise (a tree), so long f32 sums
// stay accurate.
//
// MODE (specialisation): 0 loads src[off]; 1 loads (src[off] - aux[o / aux_div])^2 (aux holds one
// mean per output of the whole reduction, aux_div partial outputs per final output: the second
// pass of the variance); 2 loads src[off] - aux[o / aux_div] (aux holds one shift per output: the
// shifted mean of var/std). For MODE 0 the host binds src again as aux.
//
// first_of and add_src: the shift of the variance's mean (the first reduced element of each
// output) and adding it back to the mean of the shifted values.
// SQRT (specialisation): the final pass writes sqrt(scale * sum) (the standard deviation).
//
// moments_grad: the gradient of var/std. gx[i] = g[o(i)] * coef * (x[i] - mean[o(i)]), times
// 1 / std[o(i)] for std (MODE 1; 0 where std is 0). It binds g (4) and, for std, std (5); for
// var the host binds g again as std.

struct Params {
  n_out: u32,
  k: u32,
  rank_kept: u32,
  rank_red: u32,
  chunks: u32,
  chunk_len: u32,
  aux_div: u32,
  _pad1: u32,
  kept_shape: array<vec4<u32>, 2>,
  kept_strides: array<vec4<u32>, 2>,
  red_shape: array<vec4<u32>, 2>,
  red_strides: array<vec4<u32>, 2>,
  scale: f32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, src, dst, aux, gout, gstd (f32 arrays).

const MODE: u32 = {{MODE|0}}u;
const SQRT: bool = {{SQRT|false}};
const WG: u32 = {{WG|256}}u;
const CONTIG: bool = {{CONTIG|false}};

var<workgroup> partial: array<f32, WG>;

// Offset into src of output element o (reduced index 0).
fn base_of(o: u32) -> u32 {
  var rem = o;
  var base = 0u;
  for (var a = i32(params.rank_kept) - 1; a >= 0; a = a - 1) {
    let d = dim(params.kept_shape, u32(a));
    base = base + (rem % d) * dim(params.kept_strides, u32(a));
    rem = rem / d;
  }
  return base;
}

// Offset into src of the outer reduced runs (all but the innermost) at flat index q.
fn outer_off(q: u32) -> u32 {
  var rem = q;
  var off = 0u;
  for (var a = i32(params.rank_red) - 2; a >= 0; a = a - 1) {
    let d = dim(params.red_shape, u32(a));
    off = off + (rem % d) * dim(params.red_strides, u32(a));
    rem = rem / d;
  }
  return off;
}

fn load(off: u32, ao: u32) -> f32 {
  let v = src[off];
  if (MODE == 1u) {
    let d = v - aux[ao];
    return d * d;
  }
  if (MODE == 2u) {
    return v - aux[ao];
  }
  return v;
}

fn finish(v: f32) -> f32 {
  if (SQRT) {
    return sqrt(max(v, 0.0));
  }
  return v;
}

// Kahan-compensated sum of reduced indices start, start + step, ... below end. The innermost
// reduced run is walked incrementally; the outer runs' offset is recomputed only when it wraps.
fn chunk_sum(base: u32, ao: u32, start: u32, end: u32, step: u32) -> f32 {
  var acc = 0.0;
  var comp = 0.0;
  if (CONTIG) {
    for (var r = start; r < end; r = r + step) {
      let y = load(base + r, ao) - comp;
      let t = acc + y;
      comp = (t - acc) - y;
      acc = t;
    }
    return acc - comp;
  }
  let last = params.rank_red - 1u;
  let inner_n = dim(params.red_shape, last);
  let inner_s = dim(params.red_strides, last);
  var inner = start % inner_n;
  var outer = start / inner_n;
  var ooff = base + outer_off(outer);
  for (var r = start; r < end; r = r + step) {
    let y = load(ooff + inner * inner_s, ao) - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
    inner = inner + step;
    if (inner >= inner_n) {
      let q = inner / inner_n;
      inner = inner - q * inner_n;
      outer = outer + q;
      ooff = base + outer_off(outer);
    }
  }
  return acc - comp;
}

// One workgroup per (output, chunk): invocations stride through the chunk, then a tree sum.
@compute @workgroup_size(WG)
fn sum_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= params.n_out * params.chunks) { return; } // whole workgroup: uniform
  let o = w / params.chunks;
  let c = w % params.chunks;
  let start = c * params.chunk_len;
  let end = min(params.k, start + params.chunk_len);
  partial[lid] = chunk_sum(base_of(o), o / params.aux_div, start + lid, end, WG);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      partial[lid] = partial[lid] + partial[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    dst[w] = finish(partial[0] * params.scale);
  }
}

// One invocation per (output, chunk), outputs innermost.
@compute @workgroup_size(64)
fn sum_axes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n_out * params.chunks) { return; }
  let o = i % params.n_out;
  let c = i / params.n_out;
  let start = c * params.chunk_len;
  let end = min(params.k, start + params.chunk_len);
  dst[i] = finish(chunk_sum(base_of(o), o / params.aux_div, start, end, 1u) * params.scale);
}

// dst[o] = scale * (sum over j < k of src[j * n_out + o]): the leading axis of a contiguous
// [k, n_out] (the partial sums of split kernels), without sum_axes's index arithmetic, which
// costs integer divisions per output (slow on CPU adapters).
@compute @workgroup_size(64)
fn sum_lead(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n_out) { return; }
  var acc = 0.0;
  var comp = 0.0;
  for (var j = 0u; j < params.k; j = j + 1u) {
    let y = src[j * params.n_out + o] - comp;
    let t = acc + y;
    comp = (t - acc) - y;
    acc = t;
  }
  dst[o] = finish((acc - comp) * params.scale);
}

// dst[o] = src[base_of(o)]: the first reduced element of each output (reduced index 0).
@compute @workgroup_size(64)
fn first_of(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n_out) { return; }
  dst[o] = src[base_of(o)];
}

// dst[o] = src[o] + dst[o] for o < n_out.
@compute @workgroup_size(64)
fn add_src(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = flat_index(gid, nwg, 64u);
  if (o >= params.n_out) { return; }
  dst[o] = src[o] + dst[o];
}

// Gradient kernels: walk a contiguous tensor x (the reduction's input shape) row by row, each
// invocation one segment of up to seg_len elements of a row, with the offset o into the
// keepDims-shaped reduced tensors (mean, g, std: strides 0 on reduced axes) alongside. Axes are
// merged on the host, so the integer divisions are paid once per segment. Params fields reused:
//   n_out = rows, k = row length, rank_kept = outer rank, rank_red = segments per row,
//   chunks = segment length, chunk_len = row stride of the reduced tensor (0 or 1),
//   kept_shape = outer sizes, kept_strides = outer strides of x,
//   red_shape = outer strides of the reduced tensor; scale = the constant factor.
struct Segment {
  x0: u32,
  o0: u32,
  j0: u32,
  j1: u32,
  ostep: u32,
}

fn segment(t: u32) -> Segment {
  let n_segs = params.rank_red;
  var rem = t / n_segs;
  let seg = t - rem * n_segs;
  var xo = 0u;
  var oo = 0u;
  for (var a = i32(params.rank_kept) - 1; a >= 0; a = a - 1) {
    let d = dim(params.kept_shape, u32(a));
    let c = rem % d;
    rem = rem / d;
    xo = xo + c * dim(params.kept_strides, u32(a));
    oo = oo + c * dim(params.red_shape, u32(a));
  }
  let j0 = seg * params.chunks;
  return Segment(xo, oo, j0, min(params.k, j0 + params.chunks), params.chunk_len);
}

// dst[i] = scale * src[o(i)]: the gradient of sum and mean (src = g).
@compute @workgroup_size(64)
fn broadcast_scaled(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n_out * params.rank_red) { return; }
  let sg = segment(t);
  for (var j = sg.j0; j < sg.j1; j = j + 1u) {
    dst[sg.x0 + j] = params.scale * src[sg.o0 + j * sg.ostep];
  }
}

// The gradient of var/std: src = x, aux = mean, gout = g, gstd = std (MODE 1; for var the host
// binds g again), dst = the gradient.
@compute @workgroup_size(64)
fn moments_grad(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let t = flat_index(gid, nwg, 64u);
  if (t >= params.n_out * params.rank_red) { return; }
  let sg = segment(t);
  for (var j = sg.j0; j < sg.j1; j = j + 1u) {
    let o = sg.o0 + j * sg.ostep;
    var f = params.scale * gout[o];
    if (MODE == 1u) {
      let s = gstd[o];
      f = select(0.0, f / s, s > 0.0);
    }
    let i = sg.x0 + j;
    dst[i] = f * (src[i] - aux[o]);
  }
}
