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
@group(0) @binding(1) var<storage, read_write> src: array<f32>; // x (fwd, dw) or dy (dx)
@group(0) @binding(2) var<storage, read_write> wt: array<f32>; // w (fwd, dx) or dy (dw)
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

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
  return select(0.0, src[select(0u, i, inside)], inside);
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
        for (var r = 0u; r < RM; r++) { a[r] = wt[wrow[r] + k]; }
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
        dst[(b * params.cout + co) * ohw + p % ohw] = acc[r * RN + j] + bc;
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
          a[r] = wt[(co * params.cin + ci) * KHW + ky * KW + kx];
        }
        for (var j = 0u; j < RN; j++) {
          let ty = ty0[j] - i32(ky);
          let tx = tx0[j] - i32(kx);
          let oy = ty / i32(SH);
          let ox = tx / i32(SW);
          let ok = ty >= 0 && tx >= 0 && oy * i32(SH) == ty && ox * i32(SW) == tx &&
            oy < i32(params.oh) && ox < i32(params.ow);
          let i = db[j] + co * ohw + u32(max(oy, 0)) * params.ow + u32(max(ox, 0));
          bv[j] = select(0.0, src[select(0u, i, ok)], ok);
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
        dst[(b * params.cin + ci) * hw + p % hw] = acc[r * RN + j];
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
      a[r] = wt[dyb + co * ohw];
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
      if (q < ncol) { dst[out0 + co * ncol + q] = acc[r * RN + j]; }
    }
  }
}
