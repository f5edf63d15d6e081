// Weight gradient of 3x3 kernels with PW = 1 and SW = 1 or 2 (any SH, PH), widths multiples of 4.
// Each invocation owns one input channel ci and CBW (4 or 8) output channels, and accumulates
// all 9 taps of those kernels over a range of output rows (a split, params.chunk rows each),
// 4 output pixels at a time: per step CBW vec4 loads of dy and 3 aligned vec4 loads of x per
// tap row give 9 * CBW vec4 FMAs, each lane of an accumulator holding one pixel's partial sum
// (summed at the end). Output: partial sums [splits, Cout, Cin, 3, 3].
//
// Shared declarations (Params, src/wt/put, KH..SW2, xv): conv2d_common.wgsl, put before this file.

const CBW: u32 = {{CBW|4}}u;

// The three taps' x values for 4 output pixels at columns x0 .. (x0 is the aligned first
// column, 0 for ox0 = 0), from input row `row` (valid: ok).
fn taps_row(row: u32, ok: bool, x0: i32) -> mat3x4<f32> {
  let v0 = xv(row, ok, x0 - 4);
  let v1 = xv(row, ok, x0);
  let v2 = xv(row, ok, x0 + 4);
  if (SW2) {
    return mat3x4<f32>(vec4<f32>(v0.w, v1.y, v1.w, v2.y), vec4<f32>(v1.x, v1.z, v2.x, v2.z),
      vec4<f32>(v1.y, v1.w, v2.y, v2.w));
  }
  return mat3x4<f32>(vec4<f32>(v0.w, v1.x, v1.y, v1.z), v1, vec4<f32>(v1.y, v1.z, v1.w, v2.x));
}

// acc + d * t, tap by tap (one kernel row of one output channel).
fn dw_row(acc: mat3x4<f32>, d: vec4<f32>, t: mat3x4<f32>) -> mat3x4<f32> {
  return mat3x4<f32>(fma(d, t[0], acc[0]), fma(d, t[1], acc[1]), fma(d, t[2], acc[2]));
}

fn dw_store(base: u32, co: u32, ci: u32, ky: u32, acc: mat3x4<f32>) {
  if (co >= params.cout) { return; }
  let o = base + ((co * params.cin + ci) * 3u + ky) * 3u;
  put(o, dot(acc[0], vec4<f32>(1.0)));
  put(o + 1u, dot(acc[1], vec4<f32>(1.0)));
  put(o + 2u, dot(acc[2], vec4<f32>(1.0)));
}

@compute @workgroup_size(WG)
fn conv_dw_win(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // Invocation index = split * lanes + lane (splits share workgroups when lanes are few).
  let lanes = params.cin * ((params.cout + CBW - 1u) / CBW);
  let rows = params.nb * params.oh;
  let splits = (rows + params.chunk - 1u) / params.chunk;
  let gi = wid.x * WG + lid.x;
  let g = min(gi, lanes * splits - 1u);
  let lc = g % lanes;
  let split = g / lanes;
  let ci = lc % params.cin;
  let co0 = (lc / params.cin) * CBW;
  let last = params.cout - 1u;
  let ohw = params.oh * params.ow;
  let hw = params.h * params.w;
  let r0 = split * params.chunk;
  let r1 = min(r0 + params.chunk, rows);
  var a00 = mat3x4<f32>(); var a01 = mat3x4<f32>(); var a02 = mat3x4<f32>();
  var a10 = mat3x4<f32>(); var a11 = mat3x4<f32>(); var a12 = mat3x4<f32>();
  var a20 = mat3x4<f32>(); var a21 = mat3x4<f32>(); var a22 = mat3x4<f32>();
  var a30 = mat3x4<f32>(); var a31 = mat3x4<f32>(); var a32 = mat3x4<f32>();
  var a40 = mat3x4<f32>(); var a41 = mat3x4<f32>(); var a42 = mat3x4<f32>();
  var a50 = mat3x4<f32>(); var a51 = mat3x4<f32>(); var a52 = mat3x4<f32>();
  var a60 = mat3x4<f32>(); var a61 = mat3x4<f32>(); var a62 = mat3x4<f32>();
  var a70 = mat3x4<f32>(); var a71 = mat3x4<f32>(); var a72 = mat3x4<f32>();
  for (var r = r0; r < r1; r++) {
    let b = r / params.oh;
    let oy = r % params.oh;
    let plane = (b * params.cin + ci) * hw;
    let iy = i32(oy * SH) - PH;
    let ok0 = iy >= 0 && iy < i32(params.h);
    let ok1 = iy + 1 >= 0 && iy + 1 < i32(params.h);
    let ok2 = iy + 2 >= 0 && iy + 2 < i32(params.h);
    let hl = i32(params.h) - 1;
    let row0 = plane + u32(clamp(iy, 0, hl)) * params.w;
    let row1 = plane + u32(clamp(iy + 1, 0, hl)) * params.w;
    let row2 = plane + u32(clamp(iy + 2, 0, hl)) * params.w;
    let dyr = b * params.cout * ohw + oy * params.ow;
    let d0 = dyr + min(co0, last) * ohw;
    let d1 = dyr + min(co0 + 1u, last) * ohw;
    let d2 = dyr + min(co0 + 2u, last) * ohw;
    let d3 = dyr + min(co0 + 3u, last) * ohw;
    let d4 = dyr + min(co0 + 4u, last) * ohw;
    let d5 = dyr + min(co0 + 5u, last) * ohw;
    let d6 = dyr + min(co0 + 6u, last) * ohw;
    let d7 = dyr + min(co0 + 7u, last) * ohw;
    for (var ox0 = 0u; ox0 < params.ow; ox0 += 4u) {
      var x0 = i32(ox0);
      if (SW2) { x0 = 2 * i32(ox0); }
      let t0 = taps_row(row0, ok0, x0);
      let t1 = taps_row(row1, ok1, x0);
      let t2 = taps_row(row2, ok2, x0);
      let e0 = wt4[(d0 + ox0) >> 2u];
      let e1 = wt4[(d1 + ox0) >> 2u];
      let e2 = wt4[(d2 + ox0) >> 2u];
      let e3 = wt4[(d3 + ox0) >> 2u];
      a00 = dw_row(a00, e0, t0); a01 = dw_row(a01, e0, t1); a02 = dw_row(a02, e0, t2);
      a10 = dw_row(a10, e1, t0); a11 = dw_row(a11, e1, t1); a12 = dw_row(a12, e1, t2);
      a20 = dw_row(a20, e2, t0); a21 = dw_row(a21, e2, t1); a22 = dw_row(a22, e2, t2);
      a30 = dw_row(a30, e3, t0); a31 = dw_row(a31, e3, t1); a32 = dw_row(a32, e3, t2);
      if (CBW == 8u) {
        let e4 = wt4[(d4 + ox0) >> 2u];
        let e5 = wt4[(d5 + ox0) >> 2u];
        let e6 = wt4[(d6 + ox0) >> 2u];
        let e7 = wt4[(d7 + ox0) >> 2u];
        a40 = dw_row(a40, e4, t0); a41 = dw_row(a41, e4, t1); a42 = dw_row(a42, e4, t2);
        a50 = dw_row(a50, e5, t0); a51 = dw_row(a51, e5, t1); a52 = dw_row(a52, e5, t2);
        a60 = dw_row(a60, e6, t0); a61 = dw_row(a61, e6, t1); a62 = dw_row(a62, e6, t2);
        a70 = dw_row(a70, e7, t0); a71 = dw_row(a71, e7, t1); a72 = dw_row(a72, e7, t2);
      }
    }
  }
  if (gi >= lanes * splits) { return; }
  let base = split * params.cout * params.cin * 9u;
  dw_store(base, co0, ci, 0u, a00); dw_store(base, co0, ci, 1u, a01); dw_store(base, co0, ci, 2u, a02);
  dw_store(base, co0 + 1u, ci, 0u, a10); dw_store(base, co0 + 1u, ci, 1u, a11); dw_store(base, co0 + 1u, ci, 2u, a12);
  dw_store(base, co0 + 2u, ci, 0u, a20); dw_store(base, co0 + 2u, ci, 1u, a21); dw_store(base, co0 + 2u, ci, 2u, a22);
  dw_store(base, co0 + 3u, ci, 0u, a30); dw_store(base, co0 + 3u, ci, 1u, a31); dw_store(base, co0 + 3u, ci, 2u, a32);
  if (CBW == 4u) { return; }
  dw_store(base, co0 + 4u, ci, 0u, a40); dw_store(base, co0 + 4u, ci, 1u, a41); dw_store(base, co0 + 4u, ci, 2u, a42);
  dw_store(base, co0 + 5u, ci, 0u, a50); dw_store(base, co0 + 5u, ci, 1u, a51); dw_store(base, co0 + 5u, ci, 2u, a52);
  dw_store(base, co0 + 6u, ci, 0u, a60); dw_store(base, co0 + 6u, ci, 1u, a61); dw_store(base, co0 + 6u, ci, 2u, a62);
  dw_store(base, co0 + 7u, ci, 0u, a70); dw_store(base, co0 + 7u, ci, 1u, a71); dw_store(base, co0 + 7u, ci, 2u, a72);
}
