// 2-D convolution as implicit GEMMs with workgroup-memory tiles: the variant for GPUs
// (src/gpu/device.ts `kernelFamily()` "gpu"); conv2d_gemm.wgsl, conv2d_window.wgsl and
// conv2d_dw_window.wgsl are the ones for CPU adapters. Shared declarations (Params, src/wt/put,
// KH..PW, BIAS): conv2d_common.wgsl, put before this file. The GEMMs (see conv2d_common.wgsl):
//
//   MODE 0, forward   C[co, p]  = sum_k  w[co, k] * im2col(x)[k, p]      M = Cout, N = B*OH*OW,
//                                                                        K = Cin*KH*KW
//   MODE 1, dx        C[ci, q]  = sum_k  w[co, ci, ky, kx] * dy[b, co, (iy+PH-ky)/SH, (ix+PW-kx)/SW]
//                     over k = (co, ky, kx) where both divisions are exact and in range;
//                     M = Cin, N = B*H*W, K = Cout*KH*KW
//   MODE 2, dw        C[co, k]  = sum_p  dy[b, co, p] * im2col(x)[k, p]  M = Cout, N = Cin*KH*KW,
//                     K = B*OH*OW, split along K into partial sums [splits, Cout, N]
//                     (params.chunk pixels per split, a multiple of TK; the caller adds them)
//
// Bindings: src = x (MODE 0, 2) or dy (MODE 1); wt = w (MODE 0, 1) or dy (MODE 2); dst = y,
// dx or the partial dw sums; bias (MODE 0 with BIAS).
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of C (tiles.wgsl, put before this
// file): per step of TK = 16 along
// the reduction it stages A's 64 x 16 and B's 16 x 64 tiles in workgroup memory (4 values of
// each per invocation, zeros outside the GEMM and the image), then each invocation accumulates
// its 4 x 4 outputs, rows lid.y + 16 i and columns lid.x + 16 j.

const MODE: u32 = {{MODE|0}}u;


fn gemm_m() -> u32 {
  if (MODE == 1u) { return params.cin; }
  return params.cout;
}

fn gemm_n() -> u32 {
  if (MODE == 0u) { return params.nb * params.oh * params.ow; }
  if (MODE == 1u) { return params.nb * params.h * params.w; }
  return params.cin * KHW;
}

fn gemm_k() -> u32 {
  if (MODE == 0u) { return params.cin * KHW; }
  if (MODE == 1u) { return params.cout * KHW; }
  return params.nb * params.oh * params.ow;
}

// x[b, ci, oy*SH - PH + ky, ox*SW - PW + kx] for tap t = ky*KW + kx and output pixel r of
// image b; 0 outside the image.
fn x_tap(b: u32, ci: u32, t: u32, r: u32) -> f32 {
  let iy = i32((r / params.ow) * SH + t / KW) - PH;
  let ix = i32((r % params.ow) * SW + t % KW) - PW;
  if (iy < 0 || iy >= i32(params.h) || ix < 0 || ix >= i32(params.w)) { return 0.0; }
  return src(((b * params.cin + ci) * params.h + u32(iy)) * params.w + u32(ix));
}

// A[m, k] (m < M, k < K checked by the caller).
fn a_at(m: u32, k: u32) -> f32 {
  if (MODE == 0u) { return wt(m * params.cin * KHW + k); }
  if (MODE == 1u) {
    let co = k / KHW;
    return wt((co * params.cin + m) * KHW + k % KHW);
  }
  let ohw = params.oh * params.ow;
  return wt(((k / ohw) * params.cout + m) * ohw + k % ohw);
}

// B[k, n] (k < K, n < N checked by the caller).
fn b_at(k: u32, n: u32) -> f32 {
  let ohw = params.oh * params.ow;
  if (MODE == 0u) { return x_tap(n / ohw, k / KHW, k % KHW, n % ohw); }
  if (MODE == 2u) { return x_tap(k / ohw, n / KHW, n % KHW, k % ohw); }
  // MODE 1: dy at the output pixel that tap (ky, kx) of input pixel n reads from, if any.
  let hw = params.h * params.w;
  let b = n / hw;
  let iy = (n % hw) / params.w;
  let ix = n % params.w;
  let co = k / KHW;
  let t = k % KHW;
  let ty = i32(iy) + PH - i32(t / KW);
  let tx = i32(ix) + PW - i32(t % KW);
  if (ty < 0 || tx < 0) { return 0.0; }
  let oy = u32(ty) / SH;
  let ox = u32(tx) / SW;
  if (oy * SH != u32(ty) || ox * SW != u32(tx) || oy >= params.oh || ox >= params.ow) {
    return 0.0;
  }
  return src(((b * params.cout + co) * params.oh + oy) * params.ow + ox);
}

fn store(m: u32, n: u32, split: u32, v: f32) {
  if (MODE == 0u) {
    let ohw = params.oh * params.ow;
    var y = v;
    if (BIAS) { y += bias[m]; }
    put(((n / ohw) * params.cout + m) * ohw + n % ohw, y);
    return;
  }
  if (MODE == 1u) {
    let hw = params.h * params.w;
    put(((n / hw) * params.cin + m) * hw + n % hw, v);
    return;
  }
  put((split * params.cout + m) * params.cin * KHW + n, v);
}

@compute @workgroup_size(16, 16)
fn conv_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let gm = gemm_m();
  let gn = gemm_n();
  let gk = gemm_k();
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  var k_begin = 0u;
  var k_end = gk;
  if (MODE == 2u) {
    k_begin = wid.z * params.chunk;
    k_end = min(gk, k_begin + params.chunk);
  }
  let tid = lid.y * 16u + lid.x;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let e = tid + 256u * r;
      // A: consecutive invocations along k (w is [M, K] row-major in MODE 0) or along m.
      var mm = e / TK;
      var ka = e % TK;
      if (MODE != 0u) { mm = e % TM; ka = e / TM; }
      var av = 0.0;
      if (m0 + mm < gm && k0 + ka < k_end) { av = a_at(m0 + mm, k0 + ka); }
      As[ka * TM + mm] = av;
      let nn = e % TN;
      let kb = e / TN;
      var bv = 0.0;
      if (n0 + nn < gn && k0 + kb < k_end) { bv = b_at(k0 + kb, n0 + nn); }
      Bs[kb * TN + nn] = bv;
    }
    workgroupBarrier();
    tile_step(&acc, lid);
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 16u * i;
    if (m >= gm) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (n < gn) { store(m, n, wid.z, acc[i][j]); }
    }
  }
}
