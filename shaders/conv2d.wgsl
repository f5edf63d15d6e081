// 2-D convolution (NCHW, weights [Cout, Cin, KH, KW]) as implicit GEMMs: the im2col coordinates
// are computed in the loaders, no im2col buffer is materialised.
//
//   conv_fwd   y[b,co,oy,ox] = bias[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] x[b,ci,oy*SH-PH+ky,ox*SW-PW+kx]
//              GEMM rows co (M = Cout), columns output pixels (N = B*OH*OW), K = Cin*KH*KW.
//   conv_dx    dx[b,ci,iy,ix] = sum_{co,ky,kx} w[co,ci,ky,kx] dy[b,co,(iy+PH-ky)/SH,(ix+PW-kx)/SW]
//              over the (ky,kx) where both divisions are exact and in range (a transposed
//              implicit GEMM: M = Cin, N = B*H*W, K = Cout*KH*KW).
//   conv_dw    dw[co,ci,ky,kx] = sum_{b,oy,ox} dy[b,co,oy,ox] x[b,ci,oy*SH-PH+ky,ox*SW-PW+kx]
//              (M = Cout, N = Cin*KH*KW, K = B*OH*OW), split along K into `splits` partial sums
//              [splits, Cout, Cin*KH*KW] that the caller adds up.
//
// Every invocation holds an RM x RN block of the output in registers (RM rows, RN consecutive
// columns); a workgroup is WG invocations along the columns. Kernel size, stride and padding are
// compile-time constants, so the (ky, kx) loops unroll and divisions by the stride are shifts.
// Loops stay under 65535 iterations each (lavapipe ends longer loops early).

struct Params {
  nb: u32, // batch
  cin: u32,
  h: u32,
  w: u32,
  cout: u32,
  oh: u32,
  ow: u32,
  chunk: u32, // conv_dw: pixels per split
}

@group(0) @binding(0) var<uniform> params: Params;
// All storage is bound as arrays of vec4 (the buffer pool rounds sizes up to 256 bytes); scalar
// element i is v[i >> 2][i & 3].
@group(0) @binding(1) var<storage, read_write> src4: array<vec4<f32>>; // x (fwd, dw) or dy (dx)
@group(0) @binding(2) var<storage, read_write> wt4: array<vec4<f32>>; // w (fwd, dx) or dy (dw)
@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

fn src(i: u32) -> f32 {
  return src4[i >> 2u][i & 3u];
}

fn wt(i: u32) -> f32 {
  return wt4[i >> 2u][i & 3u];
}

fn put(i: u32, v: f32) {
  dst4[i >> 2u][i & 3u] = v;
}

const KH: u32 = {{KH|3}}u;
const KW: u32 = {{KW|3}}u;
const SH: u32 = {{SH|1}}u;
const SW: u32 = {{SW|1}}u;
const PH: i32 = {{PH|1}};
const PW: i32 = {{PW|1}};
const RM: u32 = {{RM|8}}u;
const RN: u32 = {{RN|8}}u;
const WG: u32 = {{WG|8}}u;
const BIAS: bool = {{BIAS|false}};

const KHW: u32 = KH * KW;

// x[b, c, iy, ix] (channel count `ch`), 0 outside the image.
fn x_at(base: u32, iy: i32, ix: i32) -> f32 {
  let inside = iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
  let i = base + u32(max(iy, 0)) * params.w + u32(max(ix, 0));
  return select(0.0, src(select(0u, i, inside)), inside);
}

@compute @workgroup_size(WG)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let npix = params.nb * ohw;
  let hw = params.h * params.w;
  let co0 = wid.y * RM;
  let p0 = (wid.x * WG + lid.x) * RN;
  // Per-column (output pixel) coordinates, computed once.
  var xb: array<u32, RN>;
  var iy0: array<i32, RN>;
  var ix0: array<i32, RN>;
  for (var j = 0u; j < RN; j++) {
    let p = min(p0 + j, npix - 1u);
    let b = p / ohw;
    let r = p % ohw;
    xb[j] = b * params.cin * hw;
    iy0[j] = i32((r / params.ow) * SH) - PH;
    ix0[j] = i32((r % params.ow) * SW) - PW;
  }
  var wrow: array<u32, RM>;
  for (var r = 0u; r < RM; r++) { wrow[r] = min(co0 + r, params.cout - 1u) * params.cin * KHW; }
  var acc: array<f32, RM * RN>;
  for (var i = 0u; i < RM * RN; i++) { acc[i] = 0.0; }
  var a: array<f32, RM>;
  var bv: array<f32, RN>;
  for (var ci = 0u; ci < params.cin; ci++) {
    for (var ky = 0u; ky < KH; ky++) {
      for (var kx = 0u; kx < KW; kx++) {
        let k = ci * KHW + ky * KW + kx;
        for (var r = 0u; r < RM; r++) { a[r] = wt(wrow[r] + k); }
        for (var j = 0u; j < RN; j++) {
          bv[j] = x_at(xb[j] + ci * hw, iy0[j] + i32(ky), ix0[j] + i32(kx));
        }
        for (var r = 0u; r < RM; r++) {
          for (var j = 0u; j < RN; j++) { acc[r * RN + j] = fma(a[r], bv[j], acc[r * RN + j]); }
        }
      }
    }
  }
  for (var r = 0u; r < RM; r++) {
    let co = co0 + r;
    if (co >= params.cout) { break; }
    var bc = 0.0;
    if (BIAS) { bc = bias[co]; }
    for (var j = 0u; j < RN; j++) {
      let p = p0 + j;
      if (p < npix) {
        let b = p / ohw;
        put((b * params.cout + co) * ohw + p % ohw, acc[r * RN + j] + bc);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let hw = params.h * params.w;
  let npix = params.nb * hw;
  let ci0 = wid.y * RM;
  let p0 = (wid.x * WG + lid.x) * RN;
  // Per-column (input pixel) coordinates: dy batch base and iy + PH, ix + PW.
  var db: array<u32, RN>;
  var ty0: array<i32, RN>;
  var tx0: array<i32, RN>;
  for (var j = 0u; j < RN; j++) {
    let p = min(p0 + j, npix - 1u);
    let b = p / hw;
    let r = p % hw;
    db[j] = b * params.cout * ohw;
    ty0[j] = i32(r / params.w) + PH;
    tx0[j] = i32(r % params.w) + PW;
  }
  var acc: array<f32, RM * RN>;
  for (var i = 0u; i < RM * RN; i++) { acc[i] = 0.0; }
  var a: array<f32, RM>;
  var bv: array<f32, RN>;
  for (var co = 0u; co < params.cout; co++) {
    for (var ky = 0u; ky < KH; ky++) {
      for (var kx = 0u; kx < KW; kx++) {
        for (var r = 0u; r < RM; r++) {
          let ci = min(ci0 + r, params.cin - 1u);
          a[r] = wt((co * params.cin + ci) * KHW + ky * KW + kx);
        }
        for (var j = 0u; j < RN; j++) {
          let ty = ty0[j] - i32(ky);
          let tx = tx0[j] - i32(kx);
          let oy = ty / i32(SH);
          let ox = tx / i32(SW);
          let ok = ty >= 0 && tx >= 0 && oy * i32(SH) == ty && ox * i32(SW) == tx &&
            oy < i32(params.oh) && ox < i32(params.ow);
          let i = db[j] + co * ohw + u32(max(oy, 0)) * params.ow + u32(max(ox, 0));
          bv[j] = select(0.0, src(select(0u, i, ok)), ok);
        }
        for (var r = 0u; r < RM; r++) {
          for (var j = 0u; j < RN; j++) { acc[r * RN + j] = fma(a[r], bv[j], acc[r * RN + j]); }
        }
      }
    }
  }
  for (var r = 0u; r < RM; r++) {
    let ci = ci0 + r;
    if (ci >= params.cin) { break; }
    for (var j = 0u; j < RN; j++) {
      let p = p0 + j;
      if (p < npix) {
        let b = p / hw;
        put((b * params.cin + ci) * hw + p % hw, acc[r * RN + j]);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv_dw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let hw = params.h * params.w;
  let ncol = params.cin * KHW;
  let co0 = wid.y * RM;
  let q0 = (wid.x * WG + lid.x) * RN;
  let split = wid.z;
  // Per-column (weight tap) coordinates: channel offset, ky - PH, kx - PW.
  var cb: array<u32, RN>;
  var ky0: array<i32, RN>;
  var kx0: array<i32, RN>;
  for (var j = 0u; j < RN; j++) {
    let q = min(q0 + j, ncol - 1u);
    let t = q % KHW;
    cb[j] = (q / KHW) * hw;
    ky0[j] = i32(t / KW) - PH;
    kx0[j] = i32(t % KW) - PW;
  }
  var acc: array<f32, RM * RN>;
  for (var i = 0u; i < RM * RN; i++) { acc[i] = 0.0; }
  var a: array<f32, RM>;
  var bv: array<f32, RN>;
  let total = params.nb * ohw;
  let start = split * params.chunk;
  let end = min(start + params.chunk, total);
  // Walk this split's pixels in order, carrying (b, oy, ox) along (no divisions in the loop).
  var b = start / ohw;
  var oy = (start % ohw) / params.ow;
  var ox = start % params.ow;
  for (var t = start; t < end; t++) {
    let dyb = b * params.cout * ohw + oy * params.ow + ox;
    for (var r = 0u; r < RM; r++) {
      let co = min(co0 + r, params.cout - 1u);
      a[r] = wt(dyb + co * ohw);
    }
    let xb = b * params.cin * hw;
    let iy = i32(oy * SH);
    let ix = i32(ox * SW);
    for (var j = 0u; j < RN; j++) {
      bv[j] = x_at(xb + cb[j], iy + ky0[j], ix + kx0[j]);
    }
    for (var r = 0u; r < RM; r++) {
      for (var j = 0u; j < RN; j++) { acc[r * RN + j] = fma(a[r], bv[j], acc[r * RN + j]); }
    }
    ox++;
    if (ox == params.ow) {
      ox = 0u;
      oy++;
      if (oy == params.oh) {
        oy = 0u;
        b++;
      }
    }
  }
  let out0 = split * params.cout * ncol;
  for (var r = 0u; r < RM; r++) {
    let co = co0 + r;
    if (co >= params.cout) { break; }
    for (var j = 0u; j < RN; j++) {
      let q = q0 + j;
      if (q < ncol) { put(out0 + co * ncol + q, acc[r * RN + j]); }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Direct 3-tap-wide convolution (KW = 3, PW = 1, SW = 1 or 2; any KH, SH, PH), W and OW
// multiples of 4. Each invocation computes 16 consecutive output pixels of one row for 8 output
// channels (4 with CB = 4). Per (ci, ky) it loads the input row segment those pixels need as aligned vec4s
// (6 for stride 1, 9 for stride 2) and derives the three taps' operands by swizzling, and it
// loads the 8 channels' three weights as one vec4 each from a packed copy of the weights
// (pack_w3): 14 or 17 vec4 loads per 384 FMAs.

const SW2: bool = {{SW2|false}}; // conv_win: horizontal stride 2 (else 1)
const CB: u32 = {{CB|8}}u; // conv_win: output channels per invocation, 4 or 8

// Packed weights (read from binding 1, written to binding 2): wp[(ci * KH + ky) * coutp + co] = (w[co, ci, ky, 0..2], 0), zero for the padded
// channels co >= cout. With flip (params.chunk = 1), w is read as the weights of the transposed
// convolution: w'[co, ci, ky, kx] = w[ci, co, KH-1-ky, 2-kx] (w stored [cin', cout', KH, 3] with
// cin' = params.cout, cout' = params.cin), used for the input gradient of stride-1 convolutions.
@compute @workgroup_size(64)
fn pack_w3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let coutp = (params.cout + 7u) / 8u * 8u;
  if (i >= params.cin * KH * coutp) { return; }
  let co = i % coutp;
  let ky = (i / coutp) % KH;
  let ci = i / (coutp * KH);
  var v = vec4<f32>(0.0);
  if (co < params.cout) {
    for (var t = 0u; t < 3u; t++) {
      if (params.chunk == 0u) {
        v[t] = src(((co * params.cin + ci) * KH + ky) * 3u + t);
      } else {
        v[t] = src(((ci * params.cout + co) * KH + (KH - 1u - ky)) * 3u + (2u - t));
      }
    }
  }
  wt4[i] = v;
}

// Aligned vec4 of input row `row` (element offset, a multiple of 4) at column x (a multiple of
// 4), zero when the row or the columns are outside the image.
fn xv(row: u32, ok: bool, x: i32) -> vec4<f32> {
  let inside = ok && x >= 0 && x < i32(params.w);
  let v = src4[(row + u32(clamp(x, 0, i32(params.w) - 4))) >> 2u];
  return select(vec4<f32>(0.0), v, inside);
}

// acc + wv.x * b0 + wv.y * b1 + wv.z * b2 (one output channel, three taps).
fn taps3(acc: mat4x4<f32>, wv: vec4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    fma(vec4<f32>(wv.z), b2[0], fma(vec4<f32>(wv.y), b1[0], fma(vec4<f32>(wv.x), b0[0], acc[0]))),
    fma(vec4<f32>(wv.z), b2[1], fma(vec4<f32>(wv.y), b1[1], fma(vec4<f32>(wv.x), b0[1], acc[1]))),
    fma(vec4<f32>(wv.z), b2[2], fma(vec4<f32>(wv.y), b1[2], fma(vec4<f32>(wv.x), b0[2], acc[2]))),
    fma(vec4<f32>(wv.z), b2[3], fma(vec4<f32>(wv.y), b1[3], fma(vec4<f32>(wv.x), b0[3], acc[3]))));
}

fn store16(obase: u32, co: u32, ox0: u32, acc: mat4x4<f32>) {
  if (co >= params.cout) { return; }
  var bc = vec4<f32>(0.0);
  if (BIAS) { bc = vec4<f32>(bias[co]); }
  let o = obase + co * params.oh * params.ow;
  for (var c = 0u; c < 4u; c++) {
    if (ox0 + 4u * c < params.ow) { dst4[(o + ox0 + 4u * c) >> 2u] = acc[c] + bc; }
  }
}

@compute @workgroup_size(WG)
fn conv_win(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let owg = (params.ow + 15u) / 16u;
  let groups = params.nb * params.oh * owg;
  let g = min(wid.x * WG + lid.x, groups - 1u);
  let ox0 = (g % owg) * 16u;
  let oy = (g / owg) % params.oh;
  let b = g / (owg * params.oh);
  let co0 = wid.y * CB;
  let coutp = (params.cout + 7u) / 8u * 8u;
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
  for (var ci = 0u; ci < params.cin; ci++) {
    let plane = (b * params.cin + ci) * hw;
    for (var ky = 0u; ky < KH; ky++) {
      let iy = i32(oy * SH + ky) - PH;
      let ok = iy >= 0 && iy < i32(params.h);
      let row = plane + u32(clamp(iy, 0, i32(params.h) - 1)) * params.w;
      var b0: mat4x4<f32>;
      var b1: mat4x4<f32>;
      var b2: mat4x4<f32>;
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
        b0 = mat4x4<f32>(vec4<f32>(v0.w, v1.y, v1.w, v2.y), vec4<f32>(v2.w, v3.y, v3.w, v4.y),
          vec4<f32>(v4.w, v5.y, v5.w, v6.y), vec4<f32>(v6.w, v7.y, v7.w, v8.y));
        b1 = mat4x4<f32>(vec4<f32>(v1.x, v1.z, v2.x, v2.z), vec4<f32>(v3.x, v3.z, v4.x, v4.z),
          vec4<f32>(v5.x, v5.z, v6.x, v6.z), vec4<f32>(v7.x, v7.z, v8.x, v8.z));
        b2 = mat4x4<f32>(vec4<f32>(v1.y, v1.w, v2.y, v2.w), vec4<f32>(v3.y, v3.w, v4.y, v4.w),
          vec4<f32>(v5.y, v5.w, v6.y, v6.w), vec4<f32>(v7.y, v7.w, v8.y, v8.w));
      } else {
        // pixel j, tap kx reads column x0 + j - 1 + kx
        let v0 = xv(row, ok, x0 - 4);
        let v1 = xv(row, ok, x0);
        let v2 = xv(row, ok, x0 + 4);
        let v3 = xv(row, ok, x0 + 8);
        let v4 = xv(row, ok, x0 + 12);
        let v5 = xv(row, ok, x0 + 16);
        b0 = mat4x4<f32>(vec4<f32>(v0.w, v1.x, v1.y, v1.z), vec4<f32>(v1.w, v2.x, v2.y, v2.z),
          vec4<f32>(v2.w, v3.x, v3.y, v3.z), vec4<f32>(v3.w, v4.x, v4.y, v4.z));
        b1 = mat4x4<f32>(v1, v2, v3, v4);
        b2 = mat4x4<f32>(vec4<f32>(v1.y, v1.z, v1.w, v2.x), vec4<f32>(v2.y, v2.z, v2.w, v3.x),
          vec4<f32>(v3.y, v3.z, v3.w, v4.x), vec4<f32>(v4.y, v4.z, v4.w, v5.x));
      }
      let wb = (ci * KH + ky) * coutp + co0;
      c0 = taps3(c0, wt4[wb], b0, b1, b2);
      c1 = taps3(c1, wt4[wb + 1u], b0, b1, b2);
      c2 = taps3(c2, wt4[wb + 2u], b0, b1, b2);
      c3 = taps3(c3, wt4[wb + 3u], b0, b1, b2);
      if (CB == 4u) { continue; }
      c4 = taps3(c4, wt4[wb + 4u], b0, b1, b2);
      c5 = taps3(c5, wt4[wb + 5u], b0, b1, b2);
      c6 = taps3(c6, wt4[wb + 6u], b0, b1, b2);
      c7 = taps3(c7, wt4[wb + 7u], b0, b1, b2);
    }
  }
  if (wid.x * WG + lid.x >= groups) { return; }
  let obase = b * params.cout * params.oh * params.ow + oy * params.ow;
  store16(obase, co0, ox0, c0);
  store16(obase, co0 + 1u, ox0, c1);
  store16(obase, co0 + 2u, ox0, c2);
  store16(obase, co0 + 3u, ox0, c3);
  if (CB == 4u) { return; }
  store16(obase, co0 + 4u, ox0, c4);
  store16(obase, co0 + 5u, ox0, c5);
  store16(obase, co0 + 6u, ox0, c6);
  store16(obase, co0 + 7u, ox0, c7);
}
