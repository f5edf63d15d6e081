// Depthwise 2-D convolution (groups = Cin, Cout = m * Cin with a channel multiplier m >= 1;
// weights [Cout, 1, KH, KW], output channel co reads input channel co / m), any kernel size,
// stride and padding, any image size. Both kernel families use it (see conv.ts).
//
//   dw_fwd  y[b,co,oy,ox] = bias[co] + sum_{ky,kx} w[co,0,ky,kx] x[b,co/m,oy*SH-PH+ky,ox*SW-PW+kx]
//           One invocation per 8 consecutive output pixels of one row (b, co, oy).
//   dw_dx   dx[b,ci,iy,ix] = sum_{j<m,ky,kx} w[ci*m+j,0,ky,kx] dy[b,ci*m+j,(iy+PH-ky)/SH,(ix+PW-kx)/SW]
//           over the taps where both divisions are exact and in range: the depthwise
//           convolution of dy with the flipped kernel. One invocation per 8 dx pixels of one
//           row and one stride phase of the columns (ix = px + SW * (8 * seg + j)), which all
//           take the same column taps kx = (px + PW) % SW, + SW, ... and read 8 consecutive dy
//           columns for each; the rows take ky = (iy + PH) % SH, + SH, ...
//   dw_dw   dw[co,0,ky,kx] = sum_{b,oy,ox} dy[b,co,oy,ox] x[b,co/m,oy*SH-PH+ky,ox*SW-PW+kx]
//           One invocation per (split, co, ky, block of 7 column taps): over the (b, oy) rows
//           of its split (params.chunk rows), 8 output pixels at a time, the 7 taps' sums in
//           7 named accumulators. Output: partial sums [splits, Cout, 1, KH, KW] that the
//           caller adds up (reduce.ts's sum).
//
// Window reuse: the 8 pixels' operands of column tap kx are 8 values one (stride) apart; the
// operands of tap kx + SW are the same shifted by one column (a "slide"). The 8 values are two
// vec4s; on lavapipe their components are separate SIMD registers, so a slide only renames
// registers. dw_fwd loads each kernel row's input once as aligned vec4s (row16: 16 values from
// 5 vec4 loads, shifted into place by selects since rows of 7, 14, 28... are not aligned, and
// zeroed outside the row; two for stride 2) and slides through them (KW <= 9 at stride 1, <= 17
// at stride 2; a fresh window of 8 scalar loads per tap otherwise). dw_dx does the same on dy at
// stride 1 (KW <= 9), and dw_dw on x at stride 1 or 2 (KW <= 7, the Slider); otherwise they load
// 8 scalars for a row's first tap and one per further tap. No private arrays: the windows and
// accumulators are named values and the taps of dw_dw are written out.
// Loop counts per invocation: KH * KW (forward), m * KH * KW / (SH * SW) (input gradient),
// chunk * ceil(OW / 8) (weight gradient), which conv.ts keeps far below lavapipe's 65535.
//
// Bindings (conv2d's, src/tensor/ops/_kernels.ts): 1 src4 (x; dy for dw_dx), 2 wt4 (w; dy for
// dw_dw), seen as the scalar array ws, 3 dst4 (output), seen as the scalar array ys, 4 bias.
// Shared declarations (Params, src, KH..BIAS, WG): conv2d_common.wgsl.

// Blocks of 7 column taps of dw_dw.
const KWB: u32 = (KW + 6u) / 7u;

// Eight consecutive window values: pixels 0..3 in a, 4..7 in b.
struct Win {
  a: vec4<f32>,
  b: vec4<f32>,
}

// src element `col` of the row starting at flat index `base` (row width `width`), zero outside.
fn ld(base: u32, col: i32, width: u32) -> f32 {
  let inside = col >= 0 && col < i32(width);
  return select(0.0, src(base + u32(clamp(col, 0, i32(width) - 1))), inside);
}

// Columns c, c + step, ..., c + 7 * step of a src row.
fn fresh(base: u32, c: i32, step: i32, width: u32) -> Win {
  return Win(
    vec4<f32>(ld(base, c, width), ld(base, c + step, width), ld(base, c + 2 * step, width),
      ld(base, c + 3 * step, width)),
    vec4<f32>(ld(base, c + 4 * step, width), ld(base, c + 5 * step, width),
      ld(base, c + 6 * step, width), ld(base, c + 7 * step, width)));
}

// The window one column further right: drops value 0, appends v.
fn slide_left(p: Win, v: f32) -> Win {
  return Win(vec4<f32>(p.a.y, p.a.z, p.a.w, p.b.x), vec4<f32>(p.b.y, p.b.z, p.b.w, v));
}

// The window one column further left: v becomes value 0, drops value 7.
fn slide_right(p: Win, v: f32) -> Win {
  return Win(vec4<f32>(v, p.a.x, p.a.y, p.a.z), vec4<f32>(p.a.w, p.b.x, p.b.y, p.b.z));
}

// x operands of column tap t (relative to the first tap of the invocation) for 8 output pixels
// whose first reads column c0 at tap 0: columns c0 + t + SW * j. p1 and p2 are the windows of
// taps t - 1 and t - 2 (read only when SW is 1 or 2 and t >= SW).
fn tap_win(t: u32, p1: Win, p2: Win, base: u32, c0: i32) -> Win {
  let c = c0 + i32(t);
  if (t >= SW && SW <= 2u) {
    var p = p1;
    if (SW == 2u) { p = p2; }
    return slide_left(p, ld(base, c + 7 * i32(SW), params.w));
  }
  return fresh(base, c, i32(SW), params.w);
}

fn fma8(acc: Win, s: f32, v: Win) -> Win {
  return Win(fma(vec4<f32>(s), v.a, acc.a), fma(vec4<f32>(s), v.b, acc.b));
}

fn dot8(u: Win, v: Win) -> f32 {
  return dot(u.a, v.a) + dot(u.b, v.b);
}

// Stores up to 8 values at o, o + step, ... (value j only when first + j * step < limit).
fn store8(o: u32, step: u32, first: u32, limit: u32, v: Win) {
  if (first < limit) { ys[o] = v.a.x; }
  if (first + step < limit) { ys[o + step] = v.a.y; }
  if (first + 2u * step < limit) { ys[o + 2u * step] = v.a.z; }
  if (first + 3u * step < limit) { ys[o + 3u * step] = v.a.w; }
  if (first + 4u * step < limit) { ys[o + 4u * step] = v.b.x; }
  if (first + 5u * step < limit) { ys[o + 5u * step] = v.b.y; }
  if (first + 6u * step < limit) { ys[o + 6u * step] = v.b.z; }
  if (first + 7u * step < limit) { ys[o + 7u * step] = v.b.w; }
}

// Sixteen consecutive values of a row: columns c .. c + 15 in a, b, c, d.
struct W16 {
  a: vec4<f32>,
  b: vec4<f32>,
  c: vec4<f32>,
  d: vec4<f32>,
}

// Elements off .. off + 3 of the 8 values u, v (off 0 to 3; selects, no dynamic index).
fn shift4(u: vec4<f32>, v: vec4<f32>, off: u32) -> vec4<f32> {
  let lo = select(u, vec4<f32>(u.y, u.z, u.w, v.x), off == 1u);
  let hi = select(vec4<f32>(u.z, u.w, v.x, v.y), vec4<f32>(u.w, v.x, v.y, v.z), off == 3u);
  return select(lo, hi, off >= 2u);
}

// src4 vec4 q (clamped to the buffer; the values outside the row are masked by the caller).
fn xq(q: i32) -> vec4<f32> {
  return src4[clamp(q, 0, i32(arrayLength(&src4)) - 1)];
}

// Columns c .. c + 15 of the src row at flat index `base` (row width `width`), zero outside the
// row: five aligned vec4 loads (rows need not be aligned), shifted into place by selects.
fn row16(base: u32, c: i32, width: u32) -> W16 {
  let f = i32(base) + c;
  let q = f >> 2u; // floor(f / 4), also for f < 0
  let off = u32(f - 4 * q);
  let v0 = xq(q);
  let v1 = xq(q + 1);
  let v2 = xq(q + 2);
  let v3 = xq(q + 3);
  let v4 = xq(q + 4);
  let col = vec4<i32>(c, c + 1, c + 2, c + 3);
  let wi = i32(width);
  let z = vec4<f32>(0.0);
  return W16(
    select(z, shift4(v0, v1, off), col >= vec4<i32>(0) & col < vec4<i32>(wi)),
    select(z, shift4(v1, v2, off), col + 4 >= vec4<i32>(0) & col + 4 < vec4<i32>(wi)),
    select(z, shift4(v2, v3, off), col + 8 >= vec4<i32>(0) & col + 8 < vec4<i32>(wi)),
    select(z, shift4(v3, v4, off), col + 12 >= vec4<i32>(0) & col + 12 < vec4<i32>(wi)));
}

// Whether the forward takes its rows as aligned vec4s (the taps of 8 pixels fit 16 values at
// stride 1, 32 at stride 2).
const VEC_ROWS: bool = (SW == 1u && KW <= 9u) || (SW == 2u && KW <= 17u);

@compute @workgroup_size(WG)
fn dw_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  let segs = (params.ow + 7u) / 8u;
  if (i >= params.nb * params.cout * params.oh * segs) { return; }
  let seg = i % segs;
  let r = i / segs;
  let oy = r % params.oh;
  let bc = r / params.oh; // b * cout + co
  let co = bc % params.cout;
  let b = bc / params.cout;
  let m = params.cout / params.cin;
  let plane = (b * params.cin + co / m) * params.h * params.w;
  let ox0 = seg * 8u;
  let c0 = i32(ox0 * SW) - PW;
  var acc = Win(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * SH + ky) - PH;
    if (iy < 0 || iy >= i32(params.h)) { continue; }
    let base = plane + u32(iy) * params.w;
    let wb = (co * KH + ky) * KW;
    // The branches are on constants: one straight loop per stride, no per-tap choice. Other
    // strides and wider kernels load a fresh window per tap.
    if (VEC_ROWS && SW == 1u) {
      // window of tap t: values t .. t + 7 of r; the values after it queue in q
      let r = row16(base, c0, params.w);
      var win = Win(r.a, r.b);
      var q = Win(r.c, r.d);
      for (var t = 0u; t < KW; t++) {
        acc = fma8(acc, ws[wb + t], win);
        win = slide_left(win, q.a.x);
        q = slide_left(q, 0.0);
      }
    } else if (VEC_ROWS && SW == 2u) {
      // values 0 .. 31 from c0; even taps read the even values, odd taps the odd ones
      let r = row16(base, c0, params.w);
      let u = row16(base, c0 + 16, params.w);
      var ev = Win(vec4<f32>(r.a.x, r.a.z, r.b.x, r.b.z), vec4<f32>(r.c.x, r.c.z, r.d.x, r.d.z));
      var od = Win(vec4<f32>(r.a.y, r.a.w, r.b.y, r.b.w), vec4<f32>(r.c.y, r.c.w, r.d.y, r.d.w));
      var qe = Win(vec4<f32>(u.a.x, u.a.z, u.b.x, u.b.z), vec4<f32>(u.c.x, u.c.z, u.d.x, u.d.z));
      var qo = Win(vec4<f32>(u.a.y, u.a.w, u.b.y, u.b.w), vec4<f32>(u.c.y, u.c.w, u.d.y, u.d.w));
      for (var t = 0u; t < KW; t += 2u) {
        acc = fma8(acc, ws[wb + t], ev);
        ev = slide_left(ev, qe.a.x);
        qe = slide_left(qe, 0.0);
        if (t + 1u < KW) {
          acc = fma8(acc, ws[wb + t + 1u], od);
          od = slide_left(od, qo.a.x);
          qo = slide_left(qo, 0.0);
        }
      }
    } else {
      for (var t = 0u; t < KW; t++) {
        acc = fma8(acc, ws[wb + t], fresh(base, c0 + i32(t), i32(SW), params.w));
      }
    }
  }
  if (BIAS) {
    let bv = vec4<f32>(bias[co]);
    acc = Win(acc.a + bv, acc.b + bv);
  }
  store8((bc * params.oh + oy) * params.ow + ox0, 1u, ox0, params.ow, acc);
}

@compute @workgroup_size(WG)
fn dw_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  let segs = ((params.w + SW - 1u) / SW + 7u) / 8u; // of the largest phase (px = 0)
  if (i >= params.nb * params.cin * params.h * SW * segs) { return; }
  let seg = i % segs;
  var r = i / segs;
  let px = r % SW;
  r = r / SW;
  let iy = r % params.h;
  let bc = r / params.h; // b * cin + ci
  let ci = bc % params.cin;
  let b = bc / params.cin;
  let m = params.cout / params.cin;
  let ix0 = px + SW * seg * 8u; // first dx column
  if (ix0 >= params.w) { return; }
  let kx0 = (px + u32(PW)) % SW;
  let ky0 = (iy + u32(PH)) % SH;
  var acc = Win(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var j = 0u; j < m; j++) {
    let co = ci * m + j;
    let plane = (b * params.cout + co) * params.oh * params.ow;
    for (var ky = ky0; ky < KH; ky += SH) {
      let oy = (i32(iy) + PH - i32(ky)) / i32(SH); // exact
      if (oy < 0 || oy >= i32(params.oh)) { continue; }
      let base = plane + u32(oy) * params.ow;
      let wb = (co * KH + ky) * KW;
      if (SW == 1u && KW <= 9u) {
        // dy columns ix0 + PW - kx + j: tap kx = KW - 1 - t reads values t .. t + 7 of one
        // 16-value row (aligned vec4 loads) from column ix0 + PW - (KW - 1)
        let r = row16(base, i32(ix0) + PW - i32(KW - 1u), params.ow);
        var win = Win(r.a, r.b);
        var q = Win(r.c, r.d);
        for (var t = 0u; t < KW; t++) {
          acc = fma8(acc, ws[wb + KW - 1u - t], win);
          win = slide_left(win, q.a.x);
          q = slide_left(q, 0.0);
        }
      } else {
        // dy column of dx column ix0 at tap kx0; one column further left per further tap.
        var c = (i32(ix0) + PW - i32(kx0)) / i32(SW);
        var win = fresh(base, c, 1, params.ow);
        for (var kx = kx0; kx < KW; kx += SW) {
          acc = fma8(acc, ws[wb + kx], win);
          c -= 1;
          win = slide_right(win, ld(base, c, params.ow));
        }
      }
    }
  }
  store8((bc * params.h + iy) * params.w + ix0, SW, ix0, params.w, acc);
}

// dy value (from wt4) of column ox of the row at `base`, zero past the row's end.
fn dyv(base: u32, ox: u32) -> f32 {
  return select(0.0, ws[base + min(ox, params.ow - 1u)], ox < params.ow);
}

// 8 dy values of row `base` at columns ox0 .. ox0 + 7.
fn dy8(base: u32, ox0: u32) -> Win {
  return Win(
    vec4<f32>(dyv(base, ox0), dyv(base, ox0 + 1u), dyv(base, ox0 + 2u), dyv(base, ox0 + 3u)),
    vec4<f32>(dyv(base, ox0 + 4u), dyv(base, ox0 + 5u), dyv(base, ox0 + 6u), dyv(base, ox0 + 7u)));
}

// dw_dw's x windows for stride 1 or 2 (VEC_ROWS), from aligned vec4 rows: tap t's window is
// e (stride 1; even t at stride 2) or o (odd t at stride 2), each slid from its queue after use.
struct Slider {
  e: Win,
  o: Win,
  qe: Win,
  qo: Win,
}

fn slider(base: u32, c0: i32) -> Slider {
  let r = row16(base, c0, params.w);
  if (SW == 1u) {
    return Slider(Win(r.a, r.b), Win(r.a, r.b), Win(r.c, r.d), Win(r.c, r.d));
  }
  let u = row16(base, c0 + 16, params.w);
  return Slider(
    Win(vec4<f32>(r.a.x, r.a.z, r.b.x, r.b.z), vec4<f32>(r.c.x, r.c.z, r.d.x, r.d.z)),
    Win(vec4<f32>(r.a.y, r.a.w, r.b.y, r.b.w), vec4<f32>(r.c.y, r.c.w, r.d.y, r.d.w)),
    Win(vec4<f32>(u.a.x, u.a.z, u.b.x, u.b.z), vec4<f32>(u.c.x, u.c.z, u.d.x, u.d.z)),
    Win(vec4<f32>(u.a.y, u.a.w, u.b.y, u.b.w), vec4<f32>(u.c.y, u.c.w, u.d.y, u.d.w)));
}

// The window of tap t (a constant at every call), and the slider advanced past it.
fn next_tap(t: u32, s: ptr<function, Slider>) -> Win {
  if (SW == 2u && t % 2u == 1u) {
    let w = (*s).o;
    (*s).o = slide_left(w, (*s).qo.a.x);
    (*s).qo = slide_left((*s).qo, 0.0);
    return w;
  }
  let w = (*s).e;
  (*s).e = slide_left(w, (*s).qe.a.x);
  (*s).qe = slide_left((*s).qe, 0.0);
  return w;
}

@compute @workgroup_size(WG)
fn dw_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  let lanes = params.cout * KH * KWB;
  let rows = params.nb * params.oh;
  let splits = (rows + params.chunk - 1u) / params.chunk;
  if (i >= lanes * splits) { return; }
  let lane = i % lanes;
  let split = i / lanes;
  let blk = lane % KWB;
  let ky = (lane / KWB) % KH;
  let co = lane / (KWB * KH);
  let m = params.cout / params.cin;
  let ci = co / m;
  let kx0 = select(blk * 7u, 0u, KWB == 1u);
  let n = KW - kx0; // taps of this block: min(n, 7)
  let segs = (params.ow + 7u) / 8u;
  let r0 = split * params.chunk;
  let r1 = min(r0 + params.chunk, rows);
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  var a4 = 0.0;
  var a5 = 0.0;
  var a6 = 0.0;
  for (var r = r0; r < r1; r++) {
    let b = r / params.oh;
    let oy = r % params.oh;
    let iy = i32(oy * SH + ky) - PH;
    if (iy < 0 || iy >= i32(params.h)) { continue; }
    let xbase = ((b * params.cin + ci) * params.h + u32(iy)) * params.w;
    let dbase = ((b * params.cout + co) * params.oh + oy) * params.ow;
    for (var seg = 0u; seg < segs; seg++) {
      let ox0 = seg * 8u;
      let d = dy8(dbase, ox0);
      let c0 = i32(ox0 * SW) - PW + i32(kx0);
      if (VEC_ROWS && KW <= 7u) {
        // one block of taps: the x values come as aligned vec4 rows
        var sl = slider(xbase, c0);
        a0 += dot8(d, next_tap(0u, &sl));
        if (KW > 1u) { a1 += dot8(d, next_tap(1u, &sl)); }
        if (KW > 2u) { a2 += dot8(d, next_tap(2u, &sl)); }
        if (KW > 3u) { a3 += dot8(d, next_tap(3u, &sl)); }
        if (KW > 4u) { a4 += dot8(d, next_tap(4u, &sl)); }
        if (KW > 5u) { a5 += dot8(d, next_tap(5u, &sl)); }
        if (KW > 6u) { a6 += dot8(d, next_tap(6u, &sl)); }
        continue;
      }
      var p1 = tap_win(0u, d, d, xbase, c0);
      var p2 = p1;
      a0 += dot8(d, p1);
      if (n > 1u) {
        let q = tap_win(1u, p1, p2, xbase, c0);
        a1 += dot8(d, q);
        p2 = p1;
        p1 = q;
      }
      if (n > 2u) {
        let q = tap_win(2u, p1, p2, xbase, c0);
        a2 += dot8(d, q);
        p2 = p1;
        p1 = q;
      }
      if (n > 3u) {
        let q = tap_win(3u, p1, p2, xbase, c0);
        a3 += dot8(d, q);
        p2 = p1;
        p1 = q;
      }
      if (n > 4u) {
        let q = tap_win(4u, p1, p2, xbase, c0);
        a4 += dot8(d, q);
        p2 = p1;
        p1 = q;
      }
      if (n > 5u) {
        let q = tap_win(5u, p1, p2, xbase, c0);
        a5 += dot8(d, q);
        p2 = p1;
        p1 = q;
      }
      if (n > 6u) {
        let q = tap_win(6u, p1, p2, xbase, c0);
        a6 += dot8(d, q);
      }
    }
  }
  let o = ((split * params.cout + co) * KH + ky) * KW + kx0;
  ys[o] = a0;
  if (n > 1u) { ys[o + 1u] = a1; }
  if (n > 2u) { ys[o + 2u] = a2; }
  if (n > 3u) { ys[o + 3u] = a3; }
  if (n > 4u) { ys[o + 4u] = a4; }
  if (n > 5u) { ys[o + 5u] = a5; }
  if (n > 6u) { ys[o + 6u] = a6; }
}
