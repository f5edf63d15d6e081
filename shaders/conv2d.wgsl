// 2-D convolution (NCHW, weights [Cout, Cin, KH, KW]) as implicit GEMMs: the im2col coordinates
// are computed in the loaders, no im2col buffer is materialised.
//
//   conv_fwd   y[b,co,oy,ox] = bias[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] x[b,ci,oy*SH-PH+ky,ox*SW-PW+kx]
//              GEMM rows co (M = Cout), columns output pixels (N = B*OH*OW), K = Cin*KH*KW.
//   conv_dx    dx[b,ci,iy,ix] = sum_{co,ky,kx} w[co,ci,ky,kx] dy[b,co,(iy+PH-ky)/SH,(ix+PW-kx)/SW]
//              over the (ky,kx) where both divisions are exact and in range (a transposed
//              implicit GEMM: M = Cin, N = B*H*W, K = Cout*KH*KW), one dispatch layer per
//              stride phase of the input pixels so that only the taps that divide are visited.
//   conv_dw    dw[co,ci,ky,kx] = sum_{b,oy,ox} dy[b,co,oy,ox] x[b,ci,oy*SH-PH+ky,ox*SW-PW+kx]
//              (M = Cout, N = Cin*KH*KW, K = B*OH*OW), split along K into `splits` partial sums
//              [splits, Cout, Cin*KH*KW] that the caller adds up.
//
// Every invocation holds an 8 x 16 block of the output in registers (8 rows, 16 consecutive
// columns, one mat4x4 per row); a workgroup is WG invocations along the columns. The hot loops
// use named variables only: llvmpipe keeps dynamically indexed private arrays in memory, which
// costs more than an order of magnitude (arrays appear only in the one-off column set-up).
// Kernel size, stride and padding are compile-time constants (divisions by the stride become
// shifts). Loops stay under 65535 iterations each (lavapipe ends longer loops early).
//
// The general kernels gather their operands with scalar loads; conv_win / conv_win3 (and
// conv_dw_win for the weight gradient) below are the fast paths for 3-wide kernels, and 1x1
// convolutions run as batched GEMMs (shaders/matmul.wgsl). On lavapipe every lane-varying load
// is fetched lane by lane, so the fast paths load aligned vec4s and reuse each many times.

struct Params {
  nb: u32, // batch
  cin: u32,
  h: u32,
  w: u32,
  cout: u32,
  oh: u32,
  ow: u32,
  chunk: u32, // conv_dw: pixels per split; pack_w3: 1 = transposed and flipped
  // conv_win with PHASE (stride-2 input gradient, one stride phase): the full dx height and
  // width, and the phase (py, px) whose pixels this dispatch writes; pack_w3_phase: the phase
  // and the first row offset
  fh: u32,
  fw: u32,
  py: u32,
  px: u32,
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
const WG: u32 = {{WG|8}}u;
const BIAS: bool = {{BIAS|false}};

const KHW: u32 = KH * KW;

// x at (iy, ix) of the plane starting at `base`, 0 outside the image.
fn x_at(base: u32, iy: i32, ix: i32) -> f32 {
  let inside = iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
  let i = base + u32(max(iy, 0)) * params.w + u32(max(ix, 0));
  return select(0.0, src(select(0u, i, inside)), inside);
}

// Four columns' x values (plane bases, rows, columns per lane of the vec4s).
fn x_at4(base: vec4<u32>, iy: vec4<i32>, ix: vec4<i32>) -> vec4<f32> {
  return vec4<f32>(x_at(base.x, iy.x, ix.x), x_at(base.y, iy.y, ix.y), x_at(base.z, iy.z, ix.z),
    x_at(base.w, iy.w, ix.w));
}

// acc + a * b, column by column (one row of the 8 x 16 block).
fn axpy(acc: mat4x4<f32>, a: f32, b: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(fma(vec4<f32>(a), b[0], acc[0]), fma(vec4<f32>(a), b[1], acc[1]),
    fma(vec4<f32>(a), b[2], acc[2]), fma(vec4<f32>(a), b[3], acc[3]));
}

// Stores one row of a block: 16 values at column indices col0 .. col0+15 of a GEMM whose
// column j lands at dst element row_off + pix_off(j); columns >= ncol are skipped.
fn store_cols(row_off: vec4<u32>, row_off2: vec4<u32>, row_off3: vec4<u32>, row_off4: vec4<u32>, row: u32, nrow: u32, stride: u32, col0: u32, ncol: u32, v: mat4x4<f32>, add: f32) {
  if (row >= nrow) { return; }
  let o = array<vec4<u32>, 4>(row_off, row_off2, row_off3, row_off4);
  for (var c = 0u; c < 4u; c++) {
    for (var i = 0u; i < 4u; i++) {
      if (col0 + 4u * c + i < ncol) { put(o[c][i] + row * stride, v[c][i] + add); }
    }
  }
}

@compute @workgroup_size(WG)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let npix = params.nb * ohw;
  let hw = params.h * params.w;
  let co0 = wid.y * 8u;
  let p0 = (wid.x * WG + lid.x) * 16u;
  // Column (output pixel) coordinates: input batch base, top-left input row and column, and
  // where the column lands in y (without the channel term).
  var xb: array<vec4<u32>, 4>;
  var iy0: array<vec4<i32>, 4>;
  var ix0: array<vec4<i32>, 4>;
  var yo: array<vec4<u32>, 4>;
  for (var c = 0u; c < 4u; c++) {
    for (var i = 0u; i < 4u; i++) {
      let p = min(p0 + 4u * c + i, npix - 1u);
      let b = p / ohw;
      let r = p % ohw;
      xb[c][i] = b * params.cin * hw;
      iy0[c][i] = i32((r / params.ow) * SH) - PH;
      ix0[c][i] = i32((r % params.ow) * SW) - PW;
      yo[c][i] = b * params.cout * ohw + r;
    }
  }
  let xb0 = xb[0]; let xb1 = xb[1]; let xb2 = xb[2]; let xb3 = xb[3];
  let iya = iy0[0]; let iyb = iy0[1]; let iyc = iy0[2]; let iyd = iy0[3];
  let ixa = ix0[0]; let ixb = ix0[1]; let ixc = ix0[2]; let ixd = ix0[3];
  let kk = params.cin * KHW;
  let last = params.cout - 1u;
  let w0 = min(co0, last) * kk; let w1 = min(co0 + 1u, last) * kk;
  let w2 = min(co0 + 2u, last) * kk; let w3 = min(co0 + 3u, last) * kk;
  let w4 = min(co0 + 4u, last) * kk; let w5 = min(co0 + 5u, last) * kk;
  let w6 = min(co0 + 6u, last) * kk; let w7 = min(co0 + 7u, last) * kk;
  var c0 = mat4x4<f32>(); var c1 = mat4x4<f32>(); var c2 = mat4x4<f32>(); var c3 = mat4x4<f32>();
  var c4 = mat4x4<f32>(); var c5 = mat4x4<f32>(); var c6 = mat4x4<f32>(); var c7 = mat4x4<f32>();
  for (var ci = 0u; ci < params.cin; ci++) {
    let pl = vec4<u32>(ci * hw);
    for (var ky = 0u; ky < KH; ky++) {
      for (var kx = 0u; kx < KW; kx++) {
        let dy = vec4<i32>(i32(ky));
        let dx = vec4<i32>(i32(kx));
        let bm = mat4x4<f32>(x_at4(xb0 + pl, iya + dy, ixa + dx), x_at4(xb1 + pl, iyb + dy, ixb + dx),
          x_at4(xb2 + pl, iyc + dy, ixc + dx), x_at4(xb3 + pl, iyd + dy, ixd + dx));
        let k = ci * KHW + ky * KW + kx;
        c0 = axpy(c0, wt(w0 + k), bm); c1 = axpy(c1, wt(w1 + k), bm);
        c2 = axpy(c2, wt(w2 + k), bm); c3 = axpy(c3, wt(w3 + k), bm);
        c4 = axpy(c4, wt(w4 + k), bm); c5 = axpy(c5, wt(w5 + k), bm);
        c6 = axpy(c6, wt(w6 + k), bm); c7 = axpy(c7, wt(w7 + k), bm);
      }
    }
  }
  let o0 = yo[0]; let o1 = yo[1]; let o2 = yo[2]; let o3 = yo[3];
  let st = ohw;
  store_cols(o0, o1, o2, o3, co0, params.cout, st, p0, npix, c0, bias_of(co0));
  store_cols(o0, o1, o2, o3, co0 + 1u, params.cout, st, p0, npix, c1, bias_of(co0 + 1u));
  store_cols(o0, o1, o2, o3, co0 + 2u, params.cout, st, p0, npix, c2, bias_of(co0 + 2u));
  store_cols(o0, o1, o2, o3, co0 + 3u, params.cout, st, p0, npix, c3, bias_of(co0 + 3u));
  store_cols(o0, o1, o2, o3, co0 + 4u, params.cout, st, p0, npix, c4, bias_of(co0 + 4u));
  store_cols(o0, o1, o2, o3, co0 + 5u, params.cout, st, p0, npix, c5, bias_of(co0 + 5u));
  store_cols(o0, o1, o2, o3, co0 + 6u, params.cout, st, p0, npix, c6, bias_of(co0 + 6u));
  store_cols(o0, o1, o2, o3, co0 + 7u, params.cout, st, p0, npix, c7, bias_of(co0 + 7u));
}

fn bias_of(co: u32) -> f32 {
  if (BIAS) { return bias[min(co, params.cout - 1u)]; }
  return 0.0;
}

// dy at output position (ty/SH, tx/SW) of the plane at `base` (ty = iy + PH - ky and
// tx = ix + PW - kx, exact multiples of the strides by construction), 0 outside.
fn dy_at(base: u32, ty: i32, tx: i32) -> f32 {
  let oy = ty / i32(SH);
  let ox = tx / i32(SW);
  let ok = ty >= 0 && tx >= 0 && oy < i32(params.oh) && ox < i32(params.ow);
  let i = base + u32(max(oy, 0)) * params.ow + u32(max(ox, 0));
  return select(0.0, src(select(0u, i, ok)), ok);
}

fn dy_at4(base: vec4<u32>, ty: vec4<i32>, tx: vec4<i32>) -> vec4<f32> {
  return vec4<f32>(dy_at(base.x, ty.x, tx.x), dy_at(base.y, ty.y, tx.y), dy_at(base.z, ty.z, tx.z),
    dy_at(base.w, ty.w, tx.w));
}

// The input pixels fall into SH*SW classes by (iy % SH, ix % SW) (wid.z); within a class the
// taps that reach an output pixel are the same for every pixel (ky = (iy + PH) mod SH, + SH, ...),
// so the loops visit only those and no work is spent on taps that a stride skips.
@compute @workgroup_size(WG)
fn conv_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let hw = params.h * params.w;
  let py = wid.z / SW;
  let px = wid.z % SW;
  if (py >= params.h || px >= params.w) { return; }
  let hc = (params.h - py + SH - 1u) / SH;
  let wc = (params.w - px + SW - 1u) / SW;
  let npix = params.nb * hc * wc;
  let ci0 = wid.y * 8u;
  let p0 = (wid.x * WG + lid.x) * 16u;
  // Column (input pixel) coordinates: dy batch base, iy + PH, ix + PW, and the dx offset.
  var db: array<vec4<u32>, 4>;
  var ty0: array<vec4<i32>, 4>;
  var tx0: array<vec4<i32>, 4>;
  var xo: array<vec4<u32>, 4>;
  for (var c = 0u; c < 4u; c++) {
    for (var i = 0u; i < 4u; i++) {
      let p = min(p0 + 4u * c + i, npix - 1u);
      let b = p / (hc * wc);
      let r = p % (hc * wc);
      let iy = (r / wc) * SH + py;
      let ix = (r % wc) * SW + px;
      db[c][i] = b * params.cout * ohw;
      ty0[c][i] = i32(iy) + PH;
      tx0[c][i] = i32(ix) + PW;
      xo[c][i] = b * params.cin * hw + iy * params.w + ix;
    }
  }
  let db0 = db[0]; let db1 = db[1]; let db2 = db[2]; let db3 = db[3];
  let tya = ty0[0]; let tyb = ty0[1]; let tyc = ty0[2]; let tyd = ty0[3];
  let txa = tx0[0]; let txb = tx0[1]; let txc = tx0[2]; let txd = tx0[3];
  let ky0 = (py + u32(PH)) % SH;
  let kx0 = (px + u32(PW)) % SW;
  let last = params.cin - 1u;
  let w0 = min(ci0, last) * KHW; let w1 = min(ci0 + 1u, last) * KHW;
  let w2 = min(ci0 + 2u, last) * KHW; let w3 = min(ci0 + 3u, last) * KHW;
  let w4 = min(ci0 + 4u, last) * KHW; let w5 = min(ci0 + 5u, last) * KHW;
  let w6 = min(ci0 + 6u, last) * KHW; let w7 = min(ci0 + 7u, last) * KHW;
  var c0 = mat4x4<f32>(); var c1 = mat4x4<f32>(); var c2 = mat4x4<f32>(); var c3 = mat4x4<f32>();
  var c4 = mat4x4<f32>(); var c5 = mat4x4<f32>(); var c6 = mat4x4<f32>(); var c7 = mat4x4<f32>();
  for (var co = 0u; co < params.cout; co++) {
    let pl = vec4<u32>(co * ohw);
    let wco = co * params.cin * KHW;
    for (var ky = ky0; ky < KH; ky += SH) {
      for (var kx = kx0; kx < KW; kx += SW) {
        let dy = vec4<i32>(i32(ky));
        let dx = vec4<i32>(i32(kx));
        let bm = mat4x4<f32>(dy_at4(db0 + pl, tya - dy, txa - dx), dy_at4(db1 + pl, tyb - dy, txb - dx),
          dy_at4(db2 + pl, tyc - dy, txc - dx), dy_at4(db3 + pl, tyd - dy, txd - dx));
        let k = wco + ky * KW + kx;
        c0 = axpy(c0, wt(w0 + k), bm); c1 = axpy(c1, wt(w1 + k), bm);
        c2 = axpy(c2, wt(w2 + k), bm); c3 = axpy(c3, wt(w3 + k), bm);
        c4 = axpy(c4, wt(w4 + k), bm); c5 = axpy(c5, wt(w5 + k), bm);
        c6 = axpy(c6, wt(w6 + k), bm); c7 = axpy(c7, wt(w7 + k), bm);
      }
    }
  }
  let o0 = xo[0]; let o1 = xo[1]; let o2 = xo[2]; let o3 = xo[3];
  store_cols(o0, o1, o2, o3, ci0, params.cin, hw, p0, npix, c0, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 1u, params.cin, hw, p0, npix, c1, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 2u, params.cin, hw, p0, npix, c2, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 3u, params.cin, hw, p0, npix, c3, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 4u, params.cin, hw, p0, npix, c4, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 5u, params.cin, hw, p0, npix, c5, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 6u, params.cin, hw, p0, npix, c6, 0.0);
  store_cols(o0, o1, o2, o3, ci0 + 7u, params.cin, hw, p0, npix, c7, 0.0);
}

@compute @workgroup_size(WG)
fn conv_dw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let ohw = params.oh * params.ow;
  let hw = params.h * params.w;
  let ncol = params.cin * KHW;
  let co0 = wid.y * 8u;
  let q0 = (wid.x * WG + lid.x) * 16u;
  let split = wid.z;
  // Column (weight tap) coordinates: channel plane offset, ky - PH, kx - PW, and dw offset.
  var cb: array<vec4<u32>, 4>;
  var ky0: array<vec4<i32>, 4>;
  var kx0: array<vec4<i32>, 4>;
  var wo: array<vec4<u32>, 4>;
  for (var c = 0u; c < 4u; c++) {
    for (var i = 0u; i < 4u; i++) {
      let q = min(q0 + 4u * c + i, ncol - 1u);
      let t = q % KHW;
      cb[c][i] = (q / KHW) * hw;
      ky0[c][i] = i32(t / KW) - PH;
      kx0[c][i] = i32(t % KW) - PW;
      wo[c][i] = split * params.cout * ncol + q;
    }
  }
  let cb0 = cb[0]; let cb1 = cb[1]; let cb2 = cb[2]; let cb3 = cb[3];
  let kya = ky0[0]; let kyb = ky0[1]; let kyc = ky0[2]; let kyd = ky0[3];
  let kxa = kx0[0]; let kxb = kx0[1]; let kxc = kx0[2]; let kxd = kx0[3];
  let last = params.cout - 1u;
  let d0 = min(co0, last) * ohw; let d1 = min(co0 + 1u, last) * ohw;
  let d2 = min(co0 + 2u, last) * ohw; let d3 = min(co0 + 3u, last) * ohw;
  let d4 = min(co0 + 4u, last) * ohw; let d5 = min(co0 + 5u, last) * ohw;
  let d6 = min(co0 + 6u, last) * ohw; let d7 = min(co0 + 7u, last) * ohw;
  var c0 = mat4x4<f32>(); var c1 = mat4x4<f32>(); var c2 = mat4x4<f32>(); var c3 = mat4x4<f32>();
  var c4 = mat4x4<f32>(); var c5 = mat4x4<f32>(); var c6 = mat4x4<f32>(); var c7 = mat4x4<f32>();
  let total = params.nb * ohw;
  let start = split * params.chunk;
  let end = min(start + params.chunk, total);
  // Walk this split's pixels in order, carrying (b, oy, ox) along (no divisions in the loop).
  var b = start / ohw;
  var oy = (start % ohw) / params.ow;
  var ox = start % params.ow;
  for (var t = start; t < end; t++) {
    let dyb = b * params.cout * ohw + oy * params.ow + ox;
    let xb = vec4<u32>(b * params.cin * hw);
    let iy = vec4<i32>(i32(oy * SH));
    let ix = vec4<i32>(i32(ox * SW));
    let bm = mat4x4<f32>(x_at4(xb + cb0, iy + kya, ix + kxa), x_at4(xb + cb1, iy + kyb, ix + kxb),
      x_at4(xb + cb2, iy + kyc, ix + kxc), x_at4(xb + cb3, iy + kyd, ix + kxd));
    c0 = axpy(c0, wt(dyb + d0), bm); c1 = axpy(c1, wt(dyb + d1), bm);
    c2 = axpy(c2, wt(dyb + d2), bm); c3 = axpy(c3, wt(dyb + d3), bm);
    c4 = axpy(c4, wt(dyb + d4), bm); c5 = axpy(c5, wt(dyb + d5), bm);
    c6 = axpy(c6, wt(dyb + d6), bm); c7 = axpy(c7, wt(dyb + d7), bm);
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
  let o0 = wo[0]; let o1 = wo[1]; let o2 = wo[2]; let o3 = wo[3];
  store_cols(o0, o1, o2, o3, co0, params.cout, ncol, q0, ncol, c0, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 1u, params.cout, ncol, q0, ncol, c1, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 2u, params.cout, ncol, q0, ncol, c2, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 3u, params.cout, ncol, q0, ncol, c3, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 4u, params.cout, ncol, q0, ncol, c4, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 5u, params.cout, ncol, q0, ncol, c5, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 6u, params.cout, ncol, q0, ncol, c6, 0.0);
  store_cols(o0, o1, o2, o3, co0 + 7u, params.cout, ncol, q0, ncol, c7, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Direct 3-tap-wide convolution (KW = 3, PW = 1, SW = 1 or 2; any KH, SH, PH), W and OW
// multiples of 4. Each invocation computes 16 consecutive output pixels of one row (two rows
// with ROWS2) for 8 output channels (4 with CB = 4). Per (ci, ky) it loads the input row
// segment those pixels need as aligned vec4s (6 for stride 1, 9 for stride 2) and derives the
// three taps' operands by swizzling, and it loads the 8 channels' weights as 6 vec4s (one per
// tap and 4 channels) from a packed copy (pack_w3): 12 or 15 vec4 loads per 384 FMAs.

const SW2: bool = {{SW2|false}}; // conv_win: horizontal stride 2 (else 1)
const CB: u32 = {{CB|8}}u; // conv_win: output channels per invocation, 4 or 8

// Packed weights (read from binding 1, written to binding 2), four output channels per vec4:
// wp[((ci * KH + ky) * 3 + kx) * (coutp / 4) + co / 4][co % 4] = w[co, ci, ky, kx], zero for the
// padded channels co >= cout (coutp = cout rounded up to 8). With flip (params.chunk = 1), w
// is read as the weights of the transposed convolution: w'[co, ci, ky, kx] =
// w[ci, co, KH-1-ky, 2-kx] (w stored [cin', cout', KH, 3] with cin' = params.cout and
// cout' = params.cin), used for the input gradient of stride-1 convolutions.
@compute @workgroup_size(64)
fn pack_w3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
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
  let i = gid.x + gid.y * nwg.x * 64u;
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

// Aligned vec4 of input row `row` (element offset, a multiple of 4) at column x (a multiple of
// 4), zero when the row or the columns are outside the image.
fn xv(row: u32, ok: bool, x: i32) -> vec4<f32> {
  let inside = ok && x >= 0 && x < i32(params.w);
  let v = src4[(row + u32(clamp(x, 0, i32(params.w) - 4))) >> 2u];
  return select(vec4<f32>(0.0), v, inside);
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

// ---------------------------------------------------------------------------------------------
// Weight gradient of 3x3 kernels with PW = 1 and SW = 1 or 2 (any SH, PH), widths multiples of 4.
// Each invocation owns one input channel ci and CBW (4 or 8) output channels, and accumulates
// all 9 taps of those kernels over a range of output rows (a split, params.chunk rows each),
// 4 output pixels at a time: per step CBW vec4 loads of dy and 3 aligned vec4 loads of x per
// tap row give 9 * CBW vec4 FMAs, each lane of an accumulator holding one pixel's partial sum
// (summed at the end). Output: partial sums [splits, Cout, Cin, 3, 3].

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
