// 2-D convolution, the part every strategy shares: the parameters, the scalar and vec4 views
// of the storage bindings, the kernel geometry constants and the aligned row loads. The loader
// puts this file before conv2d_gemm.wgsl, conv2d_window.wgsl and conv2d_dw_window.wgsl (see
// `includes` in src/tensor/ops/_kernels.ts). Bindings: 1 src4, 2 wt4, 3 dst4 (vec4), 4 bias.
//
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
// conv_dw_win for the weight gradient) are the fast paths for 3-wide kernels, and 1x1
// convolutions run as batched GEMMs (matmul.wgsl). On lavapipe every lane-varying load
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

// Bindings (src/tensor/ops/_kernels.ts): params, src4, wt4, dst4, bias. All storage except bias
// is bound as arrays of vec4 (the buffer pool rounds sizes up to 256 bytes); scalar
// element i is v[i >> 2][i & 3].

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

const SW2: bool = {{SW2|false}}; // conv_win, conv_dw_win: horizontal stride 2 (else 1)

// Aligned vec4 of input row `row` (element offset, a multiple of 4) at column x (a multiple of
// 4), zero when the row or the columns are outside the image.
fn xv(row: u32, ok: bool, x: i32) -> vec4<f32> {
  let inside = ok && x >= 0 && x < i32(params.w);
  let v = src4[(row + u32(clamp(x, 0, i32(params.w) - 4))) >> 2u];
  return select(vec4<f32>(0.0), v, inside);
}
