// Resizing of float32 tensors along one axis with tap tables, used by src/tensor/ops/resize.ts
// (torch's F.interpolate, bilinear and bicubic, align_corners=False, antialias on or off; the
// op runs it once along W, then once along H, and transposes the tables for the backward pass).
//
// The tensor is seen as [outer, len, inner]: the axis has len_in entries in src and len_out in
// dst; inner is 1 along W and the row length along H. One invocation per dst element:
//
//   resize_axis  b1 = src, b2 = dst, b3 = taps:
//                dst[q, o, r] = sum over k in [taps[o], taps[o + 1]) of
//                               taps[T + 2k + 1] * src[q, taps[T + 2k], r],   T = len_out + 1
//
// taps holds len_out + 1 offsets (counted in pairs), then the (index, weight) pairs, all as
// f32 (indices and offsets are whole numbers below 2^24, checked in resize.ts). The backward
// pass is the same entry with the transposed table: for each input index, the outputs it fed
// with the same weights, so every gradient is a gather, written once, without atomics. The
// tables are at most 4096 pairs per row (resize.ts), far below lavapipe's loop limit.

struct Params {
  n: u32,        // dst elements
  inner: u32,    // elements after the axis
  len_in: u32,   // src length of the axis
  len_out: u32,  // dst length of the axis
}

// Bindings (src/tensor/ops/_kernels.ts): params, src, dst, taps (read).

@compute @workgroup_size(64)
fn resize_axis(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let r = i % params.inner;
  let q = i / params.inner;
  let o = q % params.len_out;
  let base = (q / params.len_out) * params.len_in * params.inner + r;
  let first = u32(taps[o]);
  let last = u32(taps[o + 1u]);
  let pairs = params.len_out + 1u;
  var acc = 0.0;
  for (var k = first; k < last; k = k + 1u) {
    let at = pairs + 2u * k;
    acc = acc + taps[at + 1u] * src[base + u32(taps[at]) * params.inner];
  }
  dst[i] = acc;
}
