// Direct 3-tap-wide convolution (KW = 3, PW = 1, SW = 1 or 2; any KH, SH, PH), W and OW
// multiples of 4. Each invocation computes 16 consecutive output pixels of one row (two rows
// with ROWS2) for 8 output channels (4 with CB = 4). Per (ci, ky) it loads the input row
// segment those pixels need as aligned vec4s (6 for stride 1, 9 for stride 2) and derives the
// three taps' operands by swizzling, and it loads the 8 channels' weights as 6 vec4s (one per
// tap and 4 channels) from a packed copy (pack_w3): 12 or 15 vec4 loads per 384 FMAs.
//
// Shared declarations (Params, src/wt/put, KH..SW2, xv): conv2d_common.wgsl, put before this file.

const CB: u32 = {{CB|8}}u; // conv_win: output channels per invocation, 4 or 8

// Packed weights (read from binding 1, written to binding 2), four output channels per vec4:
// wp[((ci * KH + ky) * 3 + kx) * (coutp / 4) + co / 4][co % 4] = w[co, ci, ky, kx], zero for the
// padded channels co >= cout (coutp = cout rounded up to 8). With flip (params.chunk = 1), w
// is read as the weights of the transposed convolution: w'[co, ci, ky, kx] =
// w[ci, co, KH-1-ky, 2-kx] (w stored [cin', cout', KH, 3] with cin' = params.cout and
// cout' = params.cin), used for the input gradient of stride-1 convolutions.
@compute @workgroup_size(64)
fn pack_w3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  let q = (params.cout + 7u) / 8u * 2u;
  if (i >= params.cin * KH * 3u * q) { return; }
  let cg = i % q;
  let kx = (i / q) % 3u;
  let ky = (i / (3u * q)) % KH;
  let ci = i / (3u * q * KH);
  var v = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    let co = cg * 4u + t;
    if (co < params.cout) {
      if (params.chunk == 0u) {
        v[t] = src(((co * params.cin + ci) * KH + ky) * 3u + kx);
      } else {
        v[t] = src(((ci * params.cout + co) * KH + (KH - 1u - ky)) * 3u + (2u - kx));
      }
    }
  }
  wt4[i] = v;
}

// Packed weights of one stride phase (py, px) of the input gradient of a stride-2 convolution
// with KW = 3, PW = 1 (any KH, PH), in pack_w3's layout, for conv_win over dy: output channel
// co' = input channel of w, input channel ci' = output channel of w (params.cin = Cout of w,
// params.cout = Cin of w). Row tap t reads dy row u + t + params.w (the first row offset, as
// i32), which w row ky = py + PH - 2 (t + first) reaches; column tap t reads dy column v + t - 1,
// which w column kx = px + 3 - 2t reaches (taps that no w row or column reaches are 0).
@compute @workgroup_size(64)
fn pack_w3_phase(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  let q = (params.cout + 7u) / 8u * 2u;
  let khc = params.h;
  if (i >= params.cin * khc * 3u * q) { return; }
  let cg = i % q;
  let t = (i / q) % 3u;
  let tr = (i / (3u * q)) % khc;
  let ci = i / (3u * q * khc);
  let ky = i32(params.py) + PH - 2 * (i32(tr) + bitcast<i32>(params.w));
  let kx = i32(params.px) + 3 - 2 * i32(t);
  var v = vec4<f32>(0.0);
  if (ky >= 0 && ky < i32(KH) && kx >= 0 && kx < 3) {
    for (var j = 0u; j < 4u; j++) {
      let co = cg * 4u + j;
      if (co < params.cout) {
        v[j] = src(((ci * params.cout + co) * KH + u32(ky)) * 3u + u32(kx));
      }
    }
  }
  wt4[i] = v;
}

// The three taps' operands (pixel j of column group c, tap kx) for 16 output pixels starting
// at input column x0, from input row `row` (zero when !ok).
struct Taps {
  b0: mat4x4<f32>,
  b1: mat4x4<f32>,
  b2: mat4x4<f32>,
}

fn window16(row: u32, ok: bool, x0: i32) -> Taps {
  var t: Taps;
  if (SW2) {
    // pixel j, tap kx reads column x0 + 2j - 1 + kx
    let v0 = xv(row, ok, x0 - 4);
    let v1 = xv(row, ok, x0);
    let v2 = xv(row, ok, x0 + 4);
    let v3 = xv(row, ok, x0 + 8);
    let v4 = xv(row, ok, x0 + 12);
    let v5 = xv(row, ok, x0 + 16);
    let v6 = xv(row, ok, x0 + 20);
    let v7 = xv(row, ok, x0 + 24);
    let v8 = xv(row, ok, x0 + 28);
    t.b0 = mat4x4<f32>(vec4<f32>(v0.w, v1.y, v1.w, v2.y), vec4<f32>(v2.w, v3.y, v3.w, v4.y),
      vec4<f32>(v4.w, v5.y, v5.w, v6.y), vec4<f32>(v6.w, v7.y, v7.w, v8.y));
    t.b1 = mat4x4<f32>(vec4<f32>(v1.x, v1.z, v2.x, v2.z), vec4<f32>(v3.x, v3.z, v4.x, v4.z),
      vec4<f32>(v5.x, v5.z, v6.x, v6.z), vec4<f32>(v7.x, v7.z, v8.x, v8.z));
    t.b2 = mat4x4<f32>(vec4<f32>(v1.y, v1.w, v2.y, v2.w), vec4<f32>(v3.y, v3.w, v4.y, v4.w),
      vec4<f32>(v5.y, v5.w, v6.y, v6.w), vec4<f32>(v7.y, v7.w, v8.y, v8.w));
  } else {
    // pixel j, tap kx reads column x0 + j - 1 + kx
    let v0 = xv(row, ok, x0 - 4);
    let v1 = xv(row, ok, x0);
    let v2 = xv(row, ok, x0 + 4);
    let v3 = xv(row, ok, x0 + 8);
    let v4 = xv(row, ok, x0 + 12);
    let v5 = xv(row, ok, x0 + 16);
    t.b0 = mat4x4<f32>(vec4<f32>(v0.w, v1.x, v1.y, v1.z), vec4<f32>(v1.w, v2.x, v2.y, v2.z),
      vec4<f32>(v2.w, v3.x, v3.y, v3.z), vec4<f32>(v3.w, v4.x, v4.y, v4.z));
    t.b1 = mat4x4<f32>(v1, v2, v3, v4);
    t.b2 = mat4x4<f32>(vec4<f32>(v1.y, v1.z, v1.w, v2.x), vec4<f32>(v2.y, v2.z, v2.w, v3.x),
      vec4<f32>(v3.y, v3.z, v3.w, v4.x), vec4<f32>(v4.y, v4.z, v4.w, v5.x));
  }
  return t;
}

fn input_row(plane: u32, iy: i32) -> u32 {
  return plane + u32(clamp(iy, 0, i32(params.h) - 1)) * params.w;
}

fn row_ok(iy: i32) -> bool {
  return iy >= 0 && iy < i32(params.h);
}

fn tap3(acc: mat4x4<f32>, wv: vec4<f32>, t: Taps) -> mat4x4<f32> {
  return taps3(acc, wv, t.b0, t.b1, t.b2);
}

// acc + wv.x * b0 + wv.y * b1 + wv.z * b2 (one output channel, three taps).
fn taps3(acc: mat4x4<f32>, wv: vec4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    fma(vec4<f32>(wv.z), b2[0], fma(vec4<f32>(wv.y), b1[0], fma(vec4<f32>(wv.x), b0[0], acc[0]))),
    fma(vec4<f32>(wv.z), b2[1], fma(vec4<f32>(wv.y), b1[1], fma(vec4<f32>(wv.x), b0[1], acc[1]))),
    fma(vec4<f32>(wv.z), b2[2], fma(vec4<f32>(wv.y), b1[2], fma(vec4<f32>(wv.x), b0[2], acc[2]))),
    fma(vec4<f32>(wv.z), b2[3], fma(vec4<f32>(wv.y), b1[3], fma(vec4<f32>(wv.x), b0[3], acc[3]))));
}

// Stores 16 outputs of channel co, row oy, columns ox0 .. ox0+15 of image b; with PHASE, the
// output grid is one stride phase of dx and lands at (2*oy + py, 2*ox + px).
fn store16(b: u32, oy: u32, co: u32, ox0: u32, acc: mat4x4<f32>) {
  if (co >= params.cout || oy >= params.oh) { return; }
  // Written out (no loops over the columns: a dynamically indexed matrix goes to memory).
  if (PHASE) {
    let o = ((b * params.cout + co) * params.fh + 2u * oy + params.py) * params.fw + params.px;
    put_phase(o, ox0, acc[0]);
    put_phase(o, ox0 + 4u, acc[1]);
    put_phase(o, ox0 + 8u, acc[2]);
    put_phase(o, ox0 + 12u, acc[3]);
    return;
  }
  var bc = vec4<f32>(0.0);
  if (BIAS) { bc = vec4<f32>(bias[co]); }
  let o = ((b * params.cout + co) * params.oh + oy) * params.ow + ox0;
  if (ox0 < params.ow) { dst4[o >> 2u] = acc[0] + bc; }
  if (ox0 + 4u < params.ow) { dst4[(o + 4u) >> 2u] = acc[1] + bc; }
  if (ox0 + 8u < params.ow) { dst4[(o + 8u) >> 2u] = acc[2] + bc; }
  if (ox0 + 12u < params.ow) { dst4[(o + 12u) >> 2u] = acc[3] + bc; }
}

// Four outputs of a stride phase at columns ox .. ox+3 (dx columns 2*ox + px, ...).
fn put_phase(o: u32, ox: u32, v: vec4<f32>) {
  if (ox < params.ow) { put(o + 2u * ox, v.x); }
  if (ox + 1u < params.ow) { put(o + 2u * ox + 2u, v.y); }
  if (ox + 2u < params.ow) { put(o + 2u * ox + 4u, v.z); }
  if (ox + 3u < params.ow) { put(o + 2u * ox + 6u, v.w); }
}

// ROWS2: each invocation computes two output rows (oy, oy+1), so every weight loaded serves
// twice the FMAs (the weight loads, the same address in every lane, cost the most).
const ROWS2: bool = {{ROWS2|false}};
const PHASE: bool = {{PHASE|false}};

@compute @workgroup_size(WG)
fn conv_win(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  var nrow = params.oh;
  if (ROWS2) { nrow = (params.oh + 1u) / 2u; }
  let groups = params.nb * nrow * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  var oy = (g / owg) % nrow;
  if (ROWS2) { oy *= 2u; }
  let b = g / (owg * nrow);
  let co0 = wid.y * CB;
  let q = (params.cout + 7u) / 8u * 2u; // vec4s of packed weights per tap
  let hw = params.h * params.w;
  // Input column of window element 0, relative to which the vec4s are loaded.
  var x0 = i32(ox0);
  if (SW2) { x0 = 2 * i32(ox0); }
  var c0 = mat4x4<f32>();
  var c1 = mat4x4<f32>();
  var c2 = mat4x4<f32>();
  var c3 = mat4x4<f32>();
  var c4 = mat4x4<f32>();
  var c5 = mat4x4<f32>();
  var c6 = mat4x4<f32>();
  var c7 = mat4x4<f32>();
  var d0 = mat4x4<f32>();
  var d1 = mat4x4<f32>();
  var d2 = mat4x4<f32>();
  var d3 = mat4x4<f32>();
  var d4 = mat4x4<f32>();
  var d5 = mat4x4<f32>();
  var d6 = mat4x4<f32>();
  var d7 = mat4x4<f32>();
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    for (var ky = 0u; ky < KH; ky++) {
      let iy = i32(oy * SH + ky) - PH;
      let t = window16(input_row(plane, iy), row_ok(iy), x0);
      // the three taps of channels co0 .. co0+3 (and co0+4 .. co0+7): 3 or 6 vec4 loads
      let wb = (ci * KH + ky) * 3u * q + co0 / 4u;
      let k0 = wt4[wb];
      let k1 = wt4[wb + q];
      let k2 = wt4[wb + 2u * q];
      let w0 = vec4<f32>(k0.x, k1.x, k2.x, 0.0);
      let w1 = vec4<f32>(k0.y, k1.y, k2.y, 0.0);
      let w2 = vec4<f32>(k0.z, k1.z, k2.z, 0.0);
      let w3 = vec4<f32>(k0.w, k1.w, k2.w, 0.0);
      c0 = tap3(c0, w0, t);
      c1 = tap3(c1, w1, t);
      c2 = tap3(c2, w2, t);
      c3 = tap3(c3, w3, t);
      if (CB == 8u) {
        let h0 = wt4[wb + 1u];
        let h1 = wt4[wb + q + 1u];
        let h2 = wt4[wb + 2u * q + 1u];
        let w4 = vec4<f32>(h0.x, h1.x, h2.x, 0.0);
        let w5 = vec4<f32>(h0.y, h1.y, h2.y, 0.0);
        let w6 = vec4<f32>(h0.z, h1.z, h2.z, 0.0);
        let w7 = vec4<f32>(h0.w, h1.w, h2.w, 0.0);
        c4 = tap3(c4, w4, t);
        c5 = tap3(c5, w5, t);
        c6 = tap3(c6, w6, t);
        c7 = tap3(c7, w7, t);
        if (ROWS2) {
          let iy2 = iy + i32(SH);
          let u = window16(input_row(plane, iy2), row_ok(iy2), x0);
          d0 = tap3(d0, w0, u);
          d1 = tap3(d1, w1, u);
          d2 = tap3(d2, w2, u);
          d3 = tap3(d3, w3, u);
          d4 = tap3(d4, w4, u);
          d5 = tap3(d5, w5, u);
          d6 = tap3(d6, w6, u);
          d7 = tap3(d7, w7, u);
        }
      } else if (ROWS2) {
        let iy2 = iy + i32(SH);
        let u = window16(input_row(plane, iy2), row_ok(iy2), x0);
        d0 = tap3(d0, w0, u);
        d1 = tap3(d1, w1, u);
        d2 = tap3(d2, w2, u);
        d3 = tap3(d3, w3, u);
      }
    }
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  store16(b, oy, co0, ox0, c0);
  store16(b, oy, co0 + 1u, ox0, c1);
  store16(b, oy, co0 + 2u, ox0, c2);
  store16(b, oy, co0 + 3u, ox0, c3);
  if (CB == 8u) {
    store16(b, oy, co0 + 4u, ox0, c4);
    store16(b, oy, co0 + 5u, ox0, c5);
    store16(b, oy, co0 + 6u, ox0, c6);
    store16(b, oy, co0 + 7u, ox0, c7);
  }
  if (!ROWS2) { return; }
  store16(b, oy + 1u, co0, ox0, d0);
  store16(b, oy + 1u, co0 + 1u, ox0, d1);
  store16(b, oy + 1u, co0 + 2u, ox0, d2);
  store16(b, oy + 1u, co0 + 3u, ox0, d3);
  if (CB == 8u) {
    store16(b, oy + 1u, co0 + 4u, ox0, d4);
    store16(b, oy + 1u, co0 + 5u, ox0, d5);
    store16(b, oy + 1u, co0 + 6u, ox0, d6);
    store16(b, oy + 1u, co0 + 7u, ox0, d7);
  }
}

// conv_win3: conv_win for KH = 3, CB = 8 and two output rows, with the rows shared by both
// output rows loaded once (4 input rows per input channel at SH = 1, 5 at SH = 2, instead of 6)
// and all three kernel rows' weights held in registers.

struct Acc8 {
  m0: mat4x4<f32>,
  m1: mat4x4<f32>,
  m2: mat4x4<f32>,
  m3: mat4x4<f32>,
  m4: mat4x4<f32>,
  m5: mat4x4<f32>,
  m6: mat4x4<f32>,
  m7: mat4x4<f32>,
}

struct W8 {
  v0: vec4<f32>,
  v1: vec4<f32>,
  v2: vec4<f32>,
  v3: vec4<f32>,
  v4: vec4<f32>,
  v5: vec4<f32>,
  v6: vec4<f32>,
  v7: vec4<f32>,
}

// The three taps of channels co0 .. co0+7 for one (ci, ky): 6 vec4 loads of packed weights.
fn load_w8(wb: u32, q: u32) -> W8 {
  let k0 = wt4[wb];
  let k1 = wt4[wb + q];
  let k2 = wt4[wb + 2u * q];
  let h0 = wt4[wb + 1u];
  let h1 = wt4[wb + q + 1u];
  let h2 = wt4[wb + 2u * q + 1u];
  return W8(vec4<f32>(k0.x, k1.x, k2.x, 0.0), vec4<f32>(k0.y, k1.y, k2.y, 0.0),
    vec4<f32>(k0.z, k1.z, k2.z, 0.0), vec4<f32>(k0.w, k1.w, k2.w, 0.0),
    vec4<f32>(h0.x, h1.x, h2.x, 0.0), vec4<f32>(h0.y, h1.y, h2.y, 0.0),
    vec4<f32>(h0.z, h1.z, h2.z, 0.0), vec4<f32>(h0.w, h1.w, h2.w, 0.0));
}

fn apply8(a: Acc8, w: W8, t: Taps) -> Acc8 {
  return Acc8(tap3(a.m0, w.v0, t), tap3(a.m1, w.v1, t), tap3(a.m2, w.v2, t), tap3(a.m3, w.v3, t),
    tap3(a.m4, w.v4, t), tap3(a.m5, w.v5, t), tap3(a.m6, w.v6, t), tap3(a.m7, w.v7, t));
}

fn store8(b: u32, oy: u32, co0: u32, ox0: u32, a: Acc8) {
  store16(b, oy, co0, ox0, a.m0);
  store16(b, oy, co0 + 1u, ox0, a.m1);
  store16(b, oy, co0 + 2u, ox0, a.m2);
  store16(b, oy, co0 + 3u, ox0, a.m3);
  store16(b, oy, co0 + 4u, ox0, a.m4);
  store16(b, oy, co0 + 5u, ox0, a.m5);
  store16(b, oy, co0 + 6u, ox0, a.m6);
  store16(b, oy, co0 + 7u, ox0, a.m7);
}

@compute @workgroup_size(WG)
fn conv_win3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  let nrow = (params.oh + 1u) / 2u;
  let groups = params.nb * nrow * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  let oy = ((g / owg) % nrow) * 2u;
  let b = g / (owg * nrow);
  let co0 = wid.y * 8u;
  let q = (params.cout + 7u) / 8u * 2u;
  let hw = params.h * params.w;
  var x0 = i32(ox0);
  if (SW2) { x0 = 2 * i32(ox0); }
  let z = mat4x4<f32>();
  var A = Acc8(z, z, z, z, z, z, z, z);
  var B = Acc8(z, z, z, z, z, z, z, z);
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    let wb = ci * 9u * q + co0 / 4u;
    let w0 = load_w8(wb, q);
    let w1 = load_w8(wb + 3u * q, q);
    let w2 = load_w8(wb + 6u * q, q);
    // output row oy reads input rows iy .. iy+2, row oy+1 reads iy+SH .. iy+SH+2
    let iy = i32(oy * SH) - PH;
    let t0 = window16(input_row(plane, iy), row_ok(iy), x0);
    A = apply8(A, w0, t0);
    let t1 = window16(input_row(plane, iy + 1), row_ok(iy + 1), x0);
    A = apply8(A, w1, t1);
    let t2 = window16(input_row(plane, iy + 2), row_ok(iy + 2), x0);
    A = apply8(A, w2, t2);
    if (SH == 1u) {
      B = apply8(B, w0, t1);
      B = apply8(B, w1, t2);
    } else {
      B = apply8(B, w0, t2);
      let t3 = window16(input_row(plane, iy + 3), row_ok(iy + 3), x0);
      B = apply8(B, w1, t3);
    }
    let t4 = window16(input_row(plane, iy + i32(SH) + 2), row_ok(iy + i32(SH) + 2), x0);
    B = apply8(B, w2, t4);
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  store8(b, oy, co0, ox0, A);
  store8(b, oy + 1u, co0, ox0, B);
}

// conv_win3r8: conv_win3 for few output channels (CB = 4, the final RGB layer) at SH = 1: eight
// output rows per invocation from 10 shared input rows per input channel (conv_win with two
// rows reads 6 row windows per 2 output rows), and each packed weight vec4 serves 8 output rows.

struct Acc4 {
  m0: mat4x4<f32>,
  m1: mat4x4<f32>,
  m2: mat4x4<f32>,
  m3: mat4x4<f32>,
}

struct W4 {
  v0: vec4<f32>,
  v1: vec4<f32>,
  v2: vec4<f32>,
  v3: vec4<f32>,
}

// The three taps of channels co0 .. co0+3 for one (ci, ky): 3 vec4 loads of packed weights.
fn load_w4(wb: u32, q: u32) -> W4 {
  let k0 = wt4[wb];
  let k1 = wt4[wb + q];
  let k2 = wt4[wb + 2u * q];
  return W4(vec4<f32>(k0.x, k1.x, k2.x, 0.0), vec4<f32>(k0.y, k1.y, k2.y, 0.0),
    vec4<f32>(k0.z, k1.z, k2.z, 0.0), vec4<f32>(k0.w, k1.w, k2.w, 0.0));
}

// C3: only 3 output channels (an RGB output layer): the fourth accumulator is left alone.
const C3: bool = {{C3|false}};

fn apply4(a: Acc4, w: W4, t: Taps) -> Acc4 {
  var m3 = a.m3;
  if (!C3) { m3 = tap3(a.m3, w.v3, t); }
  return Acc4(tap3(a.m0, w.v0, t), tap3(a.m1, w.v1, t), tap3(a.m2, w.v2, t), m3);
}

fn store4(b: u32, oy: u32, co0: u32, ox0: u32, a: Acc4) {
  store16(b, oy, co0, ox0, a.m0);
  store16(b, oy, co0 + 1u, ox0, a.m1);
  store16(b, oy, co0 + 2u, ox0, a.m2);
  store16(b, oy, co0 + 3u, ox0, a.m3);
}

@compute @workgroup_size(WG)
fn conv_win3r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  let nrow = (params.oh + 7u) / 8u;
  let groups = params.nb * nrow * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  let oy = ((g / owg) % nrow) * 8u;
  let b = g / (owg * nrow);
  let co0 = wid.y * 4u;
  let q = (params.cout + 7u) / 8u * 2u;
  let hw = params.h * params.w;
  var x0 = i32(ox0);
  if (SW2) { x0 = 2 * i32(ox0); }
  let z = mat4x4<f32>();
  var A = Acc4(z, z, z, z);
  var B = Acc4(z, z, z, z);
  var C = Acc4(z, z, z, z);
  var D = Acc4(z, z, z, z);
  var E = Acc4(z, z, z, z);
  var F = Acc4(z, z, z, z);
  var G = Acc4(z, z, z, z);
  var H = Acc4(z, z, z, z);
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    let wb = ci * 9u * q + co0 / 4u;
    let w0 = load_w4(wb, q);
    let w1 = load_w4(wb + 3u * q, q);
    let w2 = load_w4(wb + 6u * q, q);
    let iy = i32(oy) - PH;
    let t0 = window16(input_row(plane, iy + 0), row_ok(iy + 0), x0);
    A = apply4(A, w0, t0);
    let t1 = window16(input_row(plane, iy + 1), row_ok(iy + 1), x0);
    A = apply4(A, w1, t1);
    B = apply4(B, w0, t1);
    let t2 = window16(input_row(plane, iy + 2), row_ok(iy + 2), x0);
    A = apply4(A, w2, t2);
    B = apply4(B, w1, t2);
    C = apply4(C, w0, t2);
    let t3 = window16(input_row(plane, iy + 3), row_ok(iy + 3), x0);
    B = apply4(B, w2, t3);
    C = apply4(C, w1, t3);
    D = apply4(D, w0, t3);
    let t4 = window16(input_row(plane, iy + 4), row_ok(iy + 4), x0);
    C = apply4(C, w2, t4);
    D = apply4(D, w1, t4);
    E = apply4(E, w0, t4);
    let t5 = window16(input_row(plane, iy + 5), row_ok(iy + 5), x0);
    D = apply4(D, w2, t5);
    E = apply4(E, w1, t5);
    F = apply4(F, w0, t5);
    let t6 = window16(input_row(plane, iy + 6), row_ok(iy + 6), x0);
    E = apply4(E, w2, t6);
    F = apply4(F, w1, t6);
    G = apply4(G, w0, t6);
    let t7 = window16(input_row(plane, iy + 7), row_ok(iy + 7), x0);
    F = apply4(F, w2, t7);
    G = apply4(G, w1, t7);
    H = apply4(H, w0, t7);
    let t8 = window16(input_row(plane, iy + 8), row_ok(iy + 8), x0);
    G = apply4(G, w2, t8);
    H = apply4(H, w1, t8);
    let t9 = window16(input_row(plane, iy + 9), row_ok(iy + 9), x0);
    H = apply4(H, w2, t9);
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  store4(b, oy + 0u, co0, ox0, A);
  store4(b, oy + 1u, co0, ox0, B);
  store4(b, oy + 2u, co0, ox0, C);
  store4(b, oy + 3u, co0, ox0, D);
  store4(b, oy + 4u, co0, ox0, E);
  store4(b, oy + 5u, co0, ox0, F);
  store4(b, oy + 6u, co0, ox0, G);
  store4(b, oy + 7u, co0, ox0, H);
}

// conv_win3s2r8: conv_win3 at SH = 2 with eight output rows per invocation (17 input rows per
// input channel for 8 output rows instead of 5 for 2), 8 output channels; each packed weight
// vec4 serves 8 output rows.
@compute @workgroup_size(WG)
fn conv_win3s2r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  let nrow = (params.oh + 7u) / 8u;
  let groups = params.nb * nrow * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  let oy = ((g / owg) % nrow) * 8u;
  let b = g / (owg * nrow);
  let co0 = wid.y * 8u;
  let q = (params.cout + 7u) / 8u * 2u;
  let hw = params.h * params.w;
  var x0 = i32(ox0);
  if (SW2) { x0 = 2 * i32(ox0); }
  let z = mat4x4<f32>();
  var a0 = Acc8(z, z, z, z, z, z, z, z);
  var a1 = Acc8(z, z, z, z, z, z, z, z);
  var a2 = Acc8(z, z, z, z, z, z, z, z);
  var a3 = Acc8(z, z, z, z, z, z, z, z);
  var a4 = Acc8(z, z, z, z, z, z, z, z);
  var a5 = Acc8(z, z, z, z, z, z, z, z);
  var a6 = Acc8(z, z, z, z, z, z, z, z);
  var a7 = Acc8(z, z, z, z, z, z, z, z);
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    let wb = ci * 9u * q + co0 / 4u;
    let w0 = load_w8(wb, q);
    let w1 = load_w8(wb + 3u * q, q);
    let w2 = load_w8(wb + 6u * q, q);
    let iy = i32(oy * 2u) - PH;
    let t0 = window16(input_row(plane, iy + 0), row_ok(iy + 0), x0);
    a0 = apply8(a0, w0, t0);
    let t1 = window16(input_row(plane, iy + 1), row_ok(iy + 1), x0);
    a0 = apply8(a0, w1, t1);
    let t2 = window16(input_row(plane, iy + 2), row_ok(iy + 2), x0);
    a0 = apply8(a0, w2, t2);
    a1 = apply8(a1, w0, t2);
    let t3 = window16(input_row(plane, iy + 3), row_ok(iy + 3), x0);
    a1 = apply8(a1, w1, t3);
    let t4 = window16(input_row(plane, iy + 4), row_ok(iy + 4), x0);
    a1 = apply8(a1, w2, t4);
    a2 = apply8(a2, w0, t4);
    let t5 = window16(input_row(plane, iy + 5), row_ok(iy + 5), x0);
    a2 = apply8(a2, w1, t5);
    let t6 = window16(input_row(plane, iy + 6), row_ok(iy + 6), x0);
    a2 = apply8(a2, w2, t6);
    a3 = apply8(a3, w0, t6);
    let t7 = window16(input_row(plane, iy + 7), row_ok(iy + 7), x0);
    a3 = apply8(a3, w1, t7);
    let t8 = window16(input_row(plane, iy + 8), row_ok(iy + 8), x0);
    a3 = apply8(a3, w2, t8);
    a4 = apply8(a4, w0, t8);
    let t9 = window16(input_row(plane, iy + 9), row_ok(iy + 9), x0);
    a4 = apply8(a4, w1, t9);
    let t10 = window16(input_row(plane, iy + 10), row_ok(iy + 10), x0);
    a4 = apply8(a4, w2, t10);
    a5 = apply8(a5, w0, t10);
    let t11 = window16(input_row(plane, iy + 11), row_ok(iy + 11), x0);
    a5 = apply8(a5, w1, t11);
    let t12 = window16(input_row(plane, iy + 12), row_ok(iy + 12), x0);
    a5 = apply8(a5, w2, t12);
    a6 = apply8(a6, w0, t12);
    let t13 = window16(input_row(plane, iy + 13), row_ok(iy + 13), x0);
    a6 = apply8(a6, w1, t13);
    let t14 = window16(input_row(plane, iy + 14), row_ok(iy + 14), x0);
    a6 = apply8(a6, w2, t14);
    a7 = apply8(a7, w0, t14);
    let t15 = window16(input_row(plane, iy + 15), row_ok(iy + 15), x0);
    a7 = apply8(a7, w1, t15);
    let t16 = window16(input_row(plane, iy + 16), row_ok(iy + 16), x0);
    a7 = apply8(a7, w2, t16);
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  store8(b, oy + 0u, co0, ox0, a0);
  store8(b, oy + 1u, co0, ox0, a1);
  store8(b, oy + 2u, co0, ox0, a2);
  store8(b, oy + 3u, co0, ox0, a3);
  store8(b, oy + 4u, co0, ox0, a4);
  store8(b, oy + 5u, co0, ox0, a5);
  store8(b, oy + 6u, co0, ox0, a6);
  store8(b, oy + 7u, co0, ox0, a7);
}

// conv_win3s1r8: conv_win3 at SH = 1 with eight output rows per invocation (10 input rows per
// input channel for 8 output rows instead of 4 for 2), 8 output channels; each packed weight
// vec4 serves 8 output rows.
@compute @workgroup_size(WG)
fn conv_win3s1r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  let nrow = (params.oh + 7u) / 8u;
  let groups = params.nb * nrow * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  let oy = ((g / owg) % nrow) * 8u;
  let b = g / (owg * nrow);
  let co0 = wid.y * 8u;
  let q = (params.cout + 7u) / 8u * 2u;
  let hw = params.h * params.w;
  var x0 = i32(ox0);
  if (SW2) { x0 = 2 * i32(ox0); }
  let z = mat4x4<f32>();
  var a0 = Acc8(z, z, z, z, z, z, z, z);
  var a1 = Acc8(z, z, z, z, z, z, z, z);
  var a2 = Acc8(z, z, z, z, z, z, z, z);
  var a3 = Acc8(z, z, z, z, z, z, z, z);
  var a4 = Acc8(z, z, z, z, z, z, z, z);
  var a5 = Acc8(z, z, z, z, z, z, z, z);
  var a6 = Acc8(z, z, z, z, z, z, z, z);
  var a7 = Acc8(z, z, z, z, z, z, z, z);
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    let wb = ci * 9u * q + co0 / 4u;
    let w0 = load_w8(wb, q);
    let w1 = load_w8(wb + 3u * q, q);
    let w2 = load_w8(wb + 6u * q, q);
    let iy = i32(oy * 1u) - PH;
    let t0 = window16(input_row(plane, iy + 0), row_ok(iy + 0), x0);
    a0 = apply8(a0, w0, t0);
    let t1 = window16(input_row(plane, iy + 1), row_ok(iy + 1), x0);
    a0 = apply8(a0, w1, t1);
    a1 = apply8(a1, w0, t1);
    let t2 = window16(input_row(plane, iy + 2), row_ok(iy + 2), x0);
    a0 = apply8(a0, w2, t2);
    a1 = apply8(a1, w1, t2);
    a2 = apply8(a2, w0, t2);
    let t3 = window16(input_row(plane, iy + 3), row_ok(iy + 3), x0);
    a1 = apply8(a1, w2, t3);
    a2 = apply8(a2, w1, t3);
    a3 = apply8(a3, w0, t3);
    let t4 = window16(input_row(plane, iy + 4), row_ok(iy + 4), x0);
    a2 = apply8(a2, w2, t4);
    a3 = apply8(a3, w1, t4);
    a4 = apply8(a4, w0, t4);
    let t5 = window16(input_row(plane, iy + 5), row_ok(iy + 5), x0);
    a3 = apply8(a3, w2, t5);
    a4 = apply8(a4, w1, t5);
    a5 = apply8(a5, w0, t5);
    let t6 = window16(input_row(plane, iy + 6), row_ok(iy + 6), x0);
    a4 = apply8(a4, w2, t6);
    a5 = apply8(a5, w1, t6);
    a6 = apply8(a6, w0, t6);
    let t7 = window16(input_row(plane, iy + 7), row_ok(iy + 7), x0);
    a5 = apply8(a5, w2, t7);
    a6 = apply8(a6, w1, t7);
    a7 = apply8(a7, w0, t7);
    let t8 = window16(input_row(plane, iy + 8), row_ok(iy + 8), x0);
    a6 = apply8(a6, w2, t8);
    a7 = apply8(a7, w1, t8);
    let t9 = window16(input_row(plane, iy + 9), row_ok(iy + 9), x0);
    a7 = apply8(a7, w2, t9);
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  store8(b, oy + 0u, co0, ox0, a0);
  store8(b, oy + 1u, co0, ox0, a1);
  store8(b, oy + 2u, co0, ox0, a2);
  store8(b, oy + 3u, co0, ox0, a3);
  store8(b, oy + 4u, co0, ox0, a4);
  store8(b, oy + 5u, co0, ox0, a5);
  store8(b, oy + 6u, co0, ox0, a6);
  store8(b, oy + 7u, co0, ox0, a7);
}
