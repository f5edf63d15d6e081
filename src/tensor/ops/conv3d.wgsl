// 3-D convolution (NCTHW float32, weights [Cout, Cin, KT, KH, KW], dilation 1, groups 1) as
// direct loops, used by src/tensor/ops/conv3d.ts: forward, input gradient and weight gradient.
// Kernel size, stride and padding are compile-time constants (KT..PW defines).
//
//   conv3d_fwd  src = x [N,Cin,T,H,W], wt = w, dst = y [N,Cout,OT,OH,OW] or, when the input
//               channels are split (gid.z = the chunk), partial sums [chunks, N,Cout,OT,OH,OW];
//               bias [Cout] (added by chunk 0 when BIAS). One invocation per 4 consecutive
//               output columns of one output row and block of 4 output channels (16 sums in
//               registers; 4 x and 4 w loads per tap): y[b,co,ot,oy,ox] = bias[co] +
//               sum_{ci,kt,ky,kx} w[co,ci,kt,ky,kx] x[b,ci,ot*ST-PT+kt,oy*SH-PH+ky,ox*SW-PW+kx],
//               the frames and rows in the padding skipped by the loop bounds, the columns
//               masked.
//   conv3d_dx   src = dy [N,Cout,OT,OH,OW], wt = w, dst = dx [N,Cin,T,H,W] or partial sums
//               [chunks, ...] over chunks of output channels (gid.z). One invocation per 4
//               input columns of one stride phase of a row (x = px + SW*(m0+j), which take the
//               same taps at consecutive output columns) and block of 4 input channels:
//               dx[b,ci,t,y,x] = sum_{co,kt,ky,kx}
//               w[co,ci,kt,ky,kx] dy[b,co,(t+PT-kt)/ST,(y+PH-ky)/SH,(x+PW-kx)/SW], visiting only
//               the taps whose divisions are exact (loops start at the phase, step the stride).
//   conv3d_dw   src = x, wt = dy, dst = dw [Cout,Cin,KT,KH,KW] or partial sums [splits, ...]
//               over chunks of output rows (b, ot, oy) (gid.z). One invocation per 4 column
//               taps (kt, ky, kx0 .. kx0+3), input channel and block of 4 output channels (16
//               sums; the columns in the padding masked): dw[co,ci,kt,ky,kx] =
//               sum_{b,ot,oy,ox} dy[b,co,ot,oy,ox] x[b,ci,ot*ST-PT+kt,oy*SH-PH+ky,ox*SW-PW+kx].
//
// lavapipe ends an invocation's loops after 65535 iterations in total: the host sizes `chunk`
// (channels, or output rows) so that each invocation runs at most about 16384.
//
// Bindings (src/tensor/ops/_kernels.ts): params, then src, wt, dst, bias (f32 arrays).

struct Params {
  n: u32,     // invocations of one gid.z layer
  nb: u32,    // batch
  cin: u32,
  cout: u32,
  t: u32,
  h: u32,
  w: u32,
  ot: u32,
  oh: u32,
  ow: u32,
  chunk: u32, // reduction per gid.z layer: channels (fwd: Cin, dx: Cout) or output rows (dw)
  total: u32, // elements of one partial-sum layer of dst
}

const KT: u32 = {{KT|1}}u;
const KH: u32 = {{KH|1}}u;
const KW: u32 = {{KW|1}}u;
const ST: u32 = {{ST|1}}u;
const SH: u32 = {{SH|1}}u;
const SW: u32 = {{SW|1}}u;
const PT: i32 = {{PT|0}};
const PH: i32 = {{PH|0}};
const PW: i32 = {{PW|0}};
const BIAS: bool = {{BIAS|false}};

const KVOL: u32 = KT * KH * KW;

// First and one-past-last tap k of a window starting at input position o (may be negative) that
// land inside [0, size).
fn taps(o: i32, k: u32, size: u32) -> vec2<u32> {
  return vec2<u32>(u32(max(0, -o)), u32(clamp(i32(size) - o, 0, i32(k))));
}

// x at flat row offset `row` and column `ix`, 0 outside [0, W) or for a column past OW (`ok`).
fn x_col(row: u32, ix: i32, ok: bool) -> f32 {
  let inside = ok && ix >= 0 && ix < i32(params.w);
  return select(0.0, src[row + u32(clamp(ix, 0, i32(params.w) - 1))], inside);
}

@compute @workgroup_size(64)
fn conv3d_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  // Four consecutive output columns (ox0 .. ox0+3) of one output row, 4 output channels.
  let owb = (params.ow + 3u) / 4u;
  let ohw = params.oh * params.ow;
  let opix = params.ot * ohw;
  let nrow = params.nb * params.ot * params.oh * owb;
  let p = i % nrow;
  let co0 = (i / nrow) * 4u;
  let ox0 = (p % owb) * 4u;
  let row = p / owb; // (b * OT + ot) * OH + oy
  let oy = row % params.oh;
  let ot = (row / params.oh) % params.ot;
  let b = row / (params.oh * params.ot);
  let t0 = i32(ot * ST) - PT;
  let y0 = i32(oy * SH) - PH;
  let x0 = i32(ox0 * SW) - PW;
  let ok1 = ox0 + 1u < params.ow;
  let ok2 = ox0 + 2u < params.ow;
  let ok3 = ox0 + 3u < params.ow;
  let kt = taps(t0, KT, params.t);
  let ky = taps(y0, KH, params.h);
  let hw = params.h * params.w;
  let thw = params.t * hw;
  // Weight offsets of the 4 output channels (past the last: the last again, not stored).
  let cs = params.cin * KVOL;
  let last = params.cout - 1u;
  let wa = min(co0, last) * cs;
  let wb = min(co0 + 1u, last) * cs;
  let wc = min(co0 + 2u, last) * cs;
  let wd = min(co0 + 3u, last) * cs;
  let ci0 = gid.z * params.chunk;
  let ci1 = min(ci0 + params.chunk, params.cin);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var ci = ci0; ci < ci1; ci++) {
    let xc = (b * params.cin + ci) * thw;
    let wci = ci * KVOL;
    for (var a = kt.x; a < kt.y; a++) {
      let xt = xc + u32(t0 + i32(a)) * hw;
      for (var c = ky.x; c < ky.y; c++) {
        let xr = xt + u32(y0 + i32(c)) * params.w;
        let wr = wci + (a * KH + c) * KW;
        for (var d = 0u; d < KW; d++) {
          let ix = x0 + i32(d);
          let k = wr + d;
          let wv = vec4<f32>(wt[wa + k], wt[wb + k], wt[wc + k], wt[wd + k]);
          acc0 = fma(vec4<f32>(x_col(xr, ix, true)), wv, acc0);
          acc1 = fma(vec4<f32>(x_col(xr, ix + i32(SW), ok1)), wv, acc1);
          acc2 = fma(vec4<f32>(x_col(xr, ix + 2 * i32(SW), ok2)), wv, acc2);
          acc3 = fma(vec4<f32>(x_col(xr, ix + 3 * i32(SW), ok3)), wv, acc3);
        }
      }
    }
  }
  let out0 = gid.z * params.total + (b * params.cout) * opix + (ot * params.oh + oy) * params.ow + ox0;
  for (var j = 0u; j < 4u; j++) {
    let co = co0 + j;
    if (co < params.cout) {
      var add = 0.0;
      if (BIAS && gid.z == 0u) { add = bias[co]; }
      let o = out0 + co * opix;
      dst[o] = acc0[j] + add;
      if (ok1) { dst[o + 1u] = acc1[j] + add; }
      if (ok2) { dst[o + 2u] = acc2[j] + add; }
      if (ok3) { dst[o + 3u] = acc3[j] + add; }
    }
  }
}

// dy at flat row offset `row` and output column `ox`, 0 outside [0, OW) or when not `ok`.
fn g_col(row: u32, ox: i32, ok: bool) -> f32 {
  let inside = ok && ox >= 0 && ox < i32(params.ow);
  return select(0.0, src[row + u32(clamp(ox, 0, i32(params.ow) - 1))], inside);
}

@compute @workgroup_size(64)
fn conv3d_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  // Four input columns of one stride phase px of one row: x = px + SW * (m0 + j), j = 0..3.
  // They take the same column taps, at consecutive output columns.
  let segs = ((params.w + SW - 1u) / SW + 3u) / 4u;
  let nrow = params.nb * params.t * params.h * SW * segs;
  let p = i % nrow;
  let ci0 = (i / nrow) * 4u;
  let m0 = (p % segs) * 4u;
  let px = (p / segs) % SW;
  let row = p / (segs * SW); // (b * T + t) * H + y
  let y = i32(row % params.h);
  let t = i32((row / params.h) % params.t);
  let b = row / (params.h * params.t);
  let ncol = (params.w + SW - 1u - px) / SW; // columns of this phase
  if (m0 >= ncol) { return; }
  let ok1 = m0 + 1u < ncol;
  let ok2 = m0 + 2u < ncol;
  let ok3 = m0 + 3u < ncol;
  let ohw = params.oh * params.ow;
  let opix = params.ot * ohw;
  let hw = params.h * params.w;
  let thw = params.t * hw;
  // The first tap of each axis in this pixel's stride phase.
  let a0 = u32(t + PT) % ST;
  let c0 = u32(y + PH) % SH;
  let d0 = (px + u32(PW)) % SW;
  let last = params.cin - 1u;
  let wa = min(ci0, last) * KVOL;
  let wb = min(ci0 + 1u, last) * KVOL;
  let wc = min(ci0 + 2u, last) * KVOL;
  let wd = min(ci0 + 3u, last) * KVOL;
  let co0 = gid.z * params.chunk;
  let co1 = min(co0 + params.chunk, params.cout);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var co = co0; co < co1; co++) {
    let gc = (b * params.cout + co) * opix;
    let wco = co * params.cin * KVOL;
    for (var a = a0; a < KT; a += ST) {
      let ta = t + PT - i32(a);
      if (ta < 0) { break; }
      let ot = u32(ta) / ST;
      if (ot >= params.ot) { continue; }
      for (var c = c0; c < KH; c += SH) {
        let ya = y + PH - i32(c);
        if (ya < 0) { break; }
        let oy = u32(ya) / SH;
        if (oy >= params.oh) { continue; }
        let gr = gc + ot * ohw + oy * params.ow;
        let wr = wco + (a * KH + c) * KW;
        for (var d = d0; d < KW; d += SW) {
          // Exact: px + PW - d is a multiple of SW.
          let ox = (i32(px) + PW - i32(d)) / i32(SW) + i32(m0);
          let k = wr + d;
          let wv = vec4<f32>(wt[wa + k], wt[wb + k], wt[wc + k], wt[wd + k]);
          acc0 = fma(vec4<f32>(g_col(gr, ox, true)), wv, acc0);
          acc1 = fma(vec4<f32>(g_col(gr, ox + 1, ok1)), wv, acc1);
          acc2 = fma(vec4<f32>(g_col(gr, ox + 2, ok2)), wv, acc2);
          acc3 = fma(vec4<f32>(g_col(gr, ox + 3, ok3)), wv, acc3);
        }
      }
    }
  }
  let x0 = px + SW * m0;
  let out0 = gid.z * params.total + (b * params.cin) * thw + (row % (params.t * params.h)) * params.w + x0;
  for (var j = 0u; j < 4u; j++) {
    if (ci0 + j < params.cin) {
      let o = out0 + (ci0 + j) * thw;
      dst[o] = acc0[j];
      if (ok1) { dst[o + SW] = acc1[j]; }
      if (ok2) { dst[o + 2u * SW] = acc2[j]; }
      if (ok3) { dst[o + 3u * SW] = acc3[j]; }
    }
  }
}

@compute @workgroup_size(64)
fn conv3d_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  // Taps (a, c, d0 .. d0+3) of one input channel and 4 output channels.
  let kwb = (KW + 3u) / 4u;
  let d0 = (i % kwb) * 4u;
  let rest = i / kwb;
  let c = rest % KH;
  let a = (rest / KH) % KT;
  let rest2 = rest / (KH * KT);
  let ci = rest2 % params.cin;
  let co0 = (rest2 / params.cin) * 4u;
  let ok1 = d0 + 1u < KW;
  let ok2 = d0 + 2u < KW;
  let ok3 = d0 + 3u < KW;
  let ohw = params.oh * params.ow;
  let opix = params.ot * ohw;
  let last = params.cout - 1u;
  let ga = min(co0, last) * opix;
  let gb = min(co0 + 1u, last) * opix;
  let gc = min(co0 + 2u, last) * opix;
  let gd = min(co0 + 3u, last) * opix;
  let rows = params.nb * params.ot * params.oh;
  let r0 = gid.z * params.chunk;
  let r1 = min(r0 + params.chunk, rows);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var row = r0; row < r1; row++) {
    let oy = row % params.oh;
    let q = row / params.oh;
    let ot = q % params.ot;
    let b = q / params.ot;
    let it = i32(ot * ST) - PT + i32(a);
    let iy = i32(oy * SH) - PH + i32(c);
    if (it < 0 || it >= i32(params.t) || iy < 0 || iy >= i32(params.h)) { continue; }
    let xr = (((b * params.cin + ci) * params.t + u32(it)) * params.h + u32(iy)) * params.w;
    let gr = b * params.cout * opix + ot * ohw + oy * params.ow;
    for (var ox = 0u; ox < params.ow; ox++) {
      let ix = i32(ox * SW) - PW + i32(d0);
      let g = gr + ox;
      let gv = vec4<f32>(wt[ga + g], wt[gb + g], wt[gc + g], wt[gd + g]);
      acc0 = fma(vec4<f32>(x_col(xr, ix, true)), gv, acc0);
      acc1 = fma(vec4<f32>(x_col(xr, ix + 1, ok1)), gv, acc1);
      acc2 = fma(vec4<f32>(x_col(xr, ix + 2, ok2)), gv, acc2);
      acc3 = fma(vec4<f32>(x_col(xr, ix + 3, ok3)), gv, acc3);
    }
  }
  let out0 = gid.z * params.total + ci * KVOL + (a * KH + c) * KW + d0;
  let ws = params.cin * KVOL;
  for (var j = 0u; j < 4u; j++) {
    if (co0 + j < params.cout) {
      let o = out0 + (co0 + j) * ws;
      dst[o] = acc0[j];
      if (ok1) { dst[o + 1u] = acc1[j]; }
      if (ok2) { dst[o + 2u] = acc2[j]; }
      if (ok3) { dst[o + 3u] = acc3[j]; }
    }
  }
}
