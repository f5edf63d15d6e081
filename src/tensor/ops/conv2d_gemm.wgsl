// 2-D convolution as implicit GEMMs (conv_fwd, conv_dx, conv_dw): the general strategy, for any
// kernel size, stride and padding. Shared declarations: conv2d_common.wgsl (put before this file).

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
