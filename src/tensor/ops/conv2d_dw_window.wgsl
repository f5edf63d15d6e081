// Weight gradient of 3x3 kernels with PW = 1 and SW = 1 or 2 (any SH, PH), widths multiples of 4.
// Each invocation owns one input channel ci and CBW (4, 8 or 16) output channels, and accumulates
// all 9 taps of those kernels over a range of output rows (a split, params.chunk rows each),
// 4 output pixels at a time: per step CBW vec4 loads of dy and 3 aligned vec4 loads of x per
// tap row give 9 * CBW dot products of 4 pixels, one accumulator per output channel and tap.
// Output: partial sums [splits, Cout, Cin, 3, 3]. On lavapipe the loads cost more than the
// arithmetic (each lane loads its own vec4s), so more output channels per invocation pay: CBW 16
// against 8 and one accumulator per tap (not per tap and pixel) took 18 to 21% less time on
// STQA-Net's layers (bench/RESULTS.md); CBW 32 showed no further gain.
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

// acc + (d . t0, d . t1, d . t2): the 4 pixels' products of one kernel row of one output
// channel, summed at once (one accumulator per tap, not per tap and pixel: a quarter of the
// registers, which llvmpipe would otherwise spill).
fn dw_row(acc: vec3<f32>, d: vec4<f32>, t: mat3x4<f32>) -> vec3<f32> {
  return acc + vec3<f32>(dot(d, t[0]), dot(d, t[1]), dot(d, t[2]));
}

fn dw_store(base: u32, co: u32, ci: u32, ky: u32, acc: vec3<f32>) {
  if (co >= params.cout) { return; }
  let o = base + ((co * params.cin + ci) * 3u + ky) * 3u;
  put(o, acc.x);
  put(o + 1u, acc.y);
  put(o + 2u, acc.z);
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
  var a0_0 = vec3<f32>(); var a0_1 = vec3<f32>(); var a0_2 = vec3<f32>();
  var a1_0 = vec3<f32>(); var a1_1 = vec3<f32>(); var a1_2 = vec3<f32>();
  var a2_0 = vec3<f32>(); var a2_1 = vec3<f32>(); var a2_2 = vec3<f32>();
  var a3_0 = vec3<f32>(); var a3_1 = vec3<f32>(); var a3_2 = vec3<f32>();
  var a4_0 = vec3<f32>(); var a4_1 = vec3<f32>(); var a4_2 = vec3<f32>();
  var a5_0 = vec3<f32>(); var a5_1 = vec3<f32>(); var a5_2 = vec3<f32>();
  var a6_0 = vec3<f32>(); var a6_1 = vec3<f32>(); var a6_2 = vec3<f32>();
  var a7_0 = vec3<f32>(); var a7_1 = vec3<f32>(); var a7_2 = vec3<f32>();
  var a8_0 = vec3<f32>(); var a8_1 = vec3<f32>(); var a8_2 = vec3<f32>();
  var a9_0 = vec3<f32>(); var a9_1 = vec3<f32>(); var a9_2 = vec3<f32>();
  var a10_0 = vec3<f32>(); var a10_1 = vec3<f32>(); var a10_2 = vec3<f32>();
  var a11_0 = vec3<f32>(); var a11_1 = vec3<f32>(); var a11_2 = vec3<f32>();
  var a12_0 = vec3<f32>(); var a12_1 = vec3<f32>(); var a12_2 = vec3<f32>();
  var a13_0 = vec3<f32>(); var a13_1 = vec3<f32>(); var a13_2 = vec3<f32>();
  var a14_0 = vec3<f32>(); var a14_1 = vec3<f32>(); var a14_2 = vec3<f32>();
  var a15_0 = vec3<f32>(); var a15_1 = vec3<f32>(); var a15_2 = vec3<f32>();
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
    let d8 = dyr + min(co0 + 8u, last) * ohw;
    let d9 = dyr + min(co0 + 9u, last) * ohw;
    let d10 = dyr + min(co0 + 10u, last) * ohw;
    let d11 = dyr + min(co0 + 11u, last) * ohw;
    let d12 = dyr + min(co0 + 12u, last) * ohw;
    let d13 = dyr + min(co0 + 13u, last) * ohw;
    let d14 = dyr + min(co0 + 14u, last) * ohw;
    let d15 = dyr + min(co0 + 15u, last) * ohw;
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
      a0_0 = dw_row(a0_0, e0, t0); a0_1 = dw_row(a0_1, e0, t1); a0_2 = dw_row(a0_2, e0, t2);
      a1_0 = dw_row(a1_0, e1, t0); a1_1 = dw_row(a1_1, e1, t1); a1_2 = dw_row(a1_2, e1, t2);
      a2_0 = dw_row(a2_0, e2, t0); a2_1 = dw_row(a2_1, e2, t1); a2_2 = dw_row(a2_2, e2, t2);
      a3_0 = dw_row(a3_0, e3, t0); a3_1 = dw_row(a3_1, e3, t1); a3_2 = dw_row(a3_2, e3, t2);
      if (CBW >= 8u) {
        let e4 = wt4[(d4 + ox0) >> 2u];
        let e5 = wt4[(d5 + ox0) >> 2u];
        let e6 = wt4[(d6 + ox0) >> 2u];
        let e7 = wt4[(d7 + ox0) >> 2u];
        a4_0 = dw_row(a4_0, e4, t0); a4_1 = dw_row(a4_1, e4, t1); a4_2 = dw_row(a4_2, e4, t2);
        a5_0 = dw_row(a5_0, e5, t0); a5_1 = dw_row(a5_1, e5, t1); a5_2 = dw_row(a5_2, e5, t2);
        a6_0 = dw_row(a6_0, e6, t0); a6_1 = dw_row(a6_1, e6, t1); a6_2 = dw_row(a6_2, e6, t2);
        a7_0 = dw_row(a7_0, e7, t0); a7_1 = dw_row(a7_1, e7, t1); a7_2 = dw_row(a7_2, e7, t2);
      }
      if (CBW == 16u) {
        let e8 = wt4[(d8 + ox0) >> 2u];
        let e9 = wt4[(d9 + ox0) >> 2u];
        let e10 = wt4[(d10 + ox0) >> 2u];
        let e11 = wt4[(d11 + ox0) >> 2u];
        let e12 = wt4[(d12 + ox0) >> 2u];
        let e13 = wt4[(d13 + ox0) >> 2u];
        let e14 = wt4[(d14 + ox0) >> 2u];
        let e15 = wt4[(d15 + ox0) >> 2u];
        a8_0 = dw_row(a8_0, e8, t0); a8_1 = dw_row(a8_1, e8, t1); a8_2 = dw_row(a8_2, e8, t2);
        a9_0 = dw_row(a9_0, e9, t0); a9_1 = dw_row(a9_1, e9, t1); a9_2 = dw_row(a9_2, e9, t2);
        a10_0 = dw_row(a10_0, e10, t0); a10_1 = dw_row(a10_1, e10, t1); a10_2 = dw_row(a10_2, e10, t2);
        a11_0 = dw_row(a11_0, e11, t0); a11_1 = dw_row(a11_1, e11, t1); a11_2 = dw_row(a11_2, e11, t2);
        a12_0 = dw_row(a12_0, e12, t0); a12_1 = dw_row(a12_1, e12, t1); a12_2 = dw_row(a12_2, e12, t2);
        a13_0 = dw_row(a13_0, e13, t0); a13_1 = dw_row(a13_1, e13, t1); a13_2 = dw_row(a13_2, e13, t2);
        a14_0 = dw_row(a14_0, e14, t0); a14_1 = dw_row(a14_1, e14, t1); a14_2 = dw_row(a14_2, e14, t2);
        a15_0 = dw_row(a15_0, e15, t0); a15_1 = dw_row(a15_1, e15, t1); a15_2 = dw_row(a15_2, e15, t2);
      }
    }
  }
  if (gi >= lanes * splits) { return; }
  let base = split * params.cout * params.cin * 9u;
  dw_store(base, co0, ci, 0u, a0_0); dw_store(base, co0, ci, 1u, a0_1); dw_store(base, co0, ci, 2u, a0_2);
  dw_store(base, co0 + 1u, ci, 0u, a1_0); dw_store(base, co0 + 1u, ci, 1u, a1_1); dw_store(base, co0 + 1u, ci, 2u, a1_2);
  dw_store(base, co0 + 2u, ci, 0u, a2_0); dw_store(base, co0 + 2u, ci, 1u, a2_1); dw_store(base, co0 + 2u, ci, 2u, a2_2);
  dw_store(base, co0 + 3u, ci, 0u, a3_0); dw_store(base, co0 + 3u, ci, 1u, a3_1); dw_store(base, co0 + 3u, ci, 2u, a3_2);
  if (CBW == 4u) { return; }
  dw_store(base, co0 + 4u, ci, 0u, a4_0); dw_store(base, co0 + 4u, ci, 1u, a4_1); dw_store(base, co0 + 4u, ci, 2u, a4_2);
  dw_store(base, co0 + 5u, ci, 0u, a5_0); dw_store(base, co0 + 5u, ci, 1u, a5_1); dw_store(base, co0 + 5u, ci, 2u, a5_2);
  dw_store(base, co0 + 6u, ci, 0u, a6_0); dw_store(base, co0 + 6u, ci, 1u, a6_1); dw_store(base, co0 + 6u, ci, 2u, a6_2);
  dw_store(base, co0 + 7u, ci, 0u, a7_0); dw_store(base, co0 + 7u, ci, 1u, a7_1); dw_store(base, co0 + 7u, ci, 2u, a7_2);
  if (CBW == 8u) { return; }
  dw_store(base, co0 + 8u, ci, 0u, a8_0); dw_store(base, co0 + 8u, ci, 1u, a8_1); dw_store(base, co0 + 8u, ci, 2u, a8_2);
  dw_store(base, co0 + 9u, ci, 0u, a9_0); dw_store(base, co0 + 9u, ci, 1u, a9_1); dw_store(base, co0 + 9u, ci, 2u, a9_2);
  dw_store(base, co0 + 10u, ci, 0u, a10_0); dw_store(base, co0 + 10u, ci, 1u, a10_1); dw_store(base, co0 + 10u, ci, 2u, a10_2);
  dw_store(base, co0 + 11u, ci, 0u, a11_0); dw_store(base, co0 + 11u, ci, 1u, a11_1); dw_store(base, co0 + 11u, ci, 2u, a11_2);
  dw_store(base, co0 + 12u, ci, 0u, a12_0); dw_store(base, co0 + 12u, ci, 1u, a12_1); dw_store(base, co0 + 12u, ci, 2u, a12_2);
  dw_store(base, co0 + 13u, ci, 0u, a13_0); dw_store(base, co0 + 13u, ci, 1u, a13_1); dw_store(base, co0 + 13u, ci, 2u, a13_2);
  dw_store(base, co0 + 14u, ci, 0u, a14_0); dw_store(base, co0 + 14u, ci, 1u, a14_1); dw_store(base, co0 + 14u, ci, 2u, a14_2);
  dw_store(base, co0 + 15u, ci, 0u, a15_0); dw_store(base, co0 + 15u, ci, 1u, a15_1); dw_store(base, co0 + 15u, ci, 2u, a15_2);
}
