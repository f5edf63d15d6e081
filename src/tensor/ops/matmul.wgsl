// Batched matrix product C[b] = op(A[b]) * op(B[b]) (+ bias along columns), register-blocked.
//
// Each invocation computes an 8 x 16 block of C in registers (one mat4x4 per row: four vec4
// column groups); a workgroup is WG invocations side by side along the columns (tile 8 x 16*WG).
// There is no workgroup-shared tile: on lavapipe (llvmpipe) a workgroup's invocations are SIMD
// lanes and every lane-varying load, shared or global, is fetched lane by lane, so what pays is
// many FMAs per loaded value (large per-lane blocks) and 16-byte vec4 loads rather than scalar
// ones. The block is written out by hand (named variables, no private arrays): llvmpipe keeps
// dynamically indexed private arrays in memory, which costs more than an order of magnitude.
//
// The reduction runs over k in steps of 4. Per step a lane loads its A fragment a_r =
// A(m0+r, k..k+3) (r < 8) and B fragment b_j = B(k+j, n0..n0+15) (j < 4, a mat4x4 whose column c
// holds columns n0+4c..n0+4c+3), then does 128 vec4 FMAs.
//
// Specialisation ({{...}}, set by src/tensor/ops/matmul.ts):
//   WG            invocations per workgroup
//   A_MODE        0: A is [M,K] row-major and K % 4 == 0 (vec4 loads along k)
//                 1: A is stored transposed [K,M] and M % 4 == 0 (vec4 loads along m)
//                 2: any layout (scalar loads; transposition from A_TRANS)
//   B_MODE        0: B is [K,N] row-major and N % 4 == 0 (vec4 loads along n)
//                 1: B is stored transposed [N,K] and K % 4 == 0 (vec4 loads along k)
//                 2: any layout (scalar loads; transposition from B_TRANS)
//   A_TRANS, B_TRANS   storage transposed (used by mode 2)
//   C_VEC         N % 4 == 0 (vec4 stores)
//   K4            K % 4 == 0 (no bounds checks along k)
//   BIAS          0: none; 1: add bias[n] to every row; 2: add bias[m] to every column
//
// Storage is bound as arrays of vec4 (sizes are rounded up by the buffer pool); a scalar element
// i is x[i >> 2][i & 3]. Batch offsets are in elements and must be multiples of 4 in modes 0/1.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batch: u32,
  a_bstride: u32, // elements between batches of A (0: broadcast)
  b_bstride: u32,
  c_bstride: u32,
  z0: u32, // first batch of this dispatch (batches beyond 65535 take several)
}

// Bindings (src/tensor/ops/_kernels.ts): params, a4, b4, c4 (vec4<f32> arrays), bias (f32).

const RM: u32 = 8u;
const RN: u32 = 16u;
const WG: u32 = {{WG|8}}u;
const A_MODE: u32 = {{A_MODE|2}}u;
const B_MODE: u32 = {{B_MODE|2}}u;
const A_TRANS: bool = {{A_TRANS|false}};
const B_TRANS: bool = {{B_TRANS|false}};
const C_VEC: bool = {{C_VEC|false}};
const K4: bool = {{K4|false}}; // K % 4 == 0: no k-quad runs past the end
const BIAS: u32 = {{BIAS|0}}u;

fn lda(i: u32) -> f32 {
  return a4[i >> 2u][i & 3u];
}

fn ldb(i: u32) -> f32 {
  return b4[i >> 2u][i & 3u];
}

// A(m, k) of batch offset `off`, 0 outside the matrix (scalar path).
fn a_at(off: u32, m: u32, k: u32) -> f32 {
  if (m >= params.m || k >= params.k) { return 0.0; }
  if (A_TRANS) { return lda(off + k * params.m + m); }
  return lda(off + m * params.k + k);
}

fn b_at(off: u32, k: u32, n: u32) -> f32 {
  if (k >= params.k || n >= params.n) { return 0.0; }
  if (B_TRANS) { return ldb(off + n * params.k + k); }
  return ldb(off + k * params.n + n);
}

// A(m, k0 .. k0+3) in modes 0 and 2 (mode 1 goes through a_quad).
fn a_row(off: u32, m: u32, k0: u32) -> vec4<f32> {
  if (A_MODE == 0u) {
    return a4[(off + min(m, params.m - 1u) * params.k + k0) >> 2u];
  }
  return vec4<f32>(a_at(off, m, k0), a_at(off, m, k0 + 1u), a_at(off, m, k0 + 2u), a_at(off, m, k0 + 3u));
}

// Mode 1: A(m .. m+3, k) (m % 4 == 0), 0 past the last k.
fn a_col(off: u32, m: u32, k: u32) -> vec4<f32> {
  if (K4) { return a4[(off + k * params.m + min(m, params.m - 4u)) >> 2u]; }
  let v = a4[(off + min(k, params.k - 1u) * params.m + min(m, params.m - 4u)) >> 2u];
  return select(vec4<f32>(0.0), v, k < params.k);
}

// Mode 1: rows m .. m+3 (m % 4 == 0) of A(., k0 .. k0+3), one row per column of the result.
fn a_quad(off: u32, m: u32, k0: u32) -> mat4x4<f32> {
  return transpose(mat4x4<f32>(a_col(off, m, k0), a_col(off, m, k0 + 1u), a_col(off, m, k0 + 2u), a_col(off, m, k0 + 3u)));
}

// B(k, n .. n+3).
fn b_vec(off: u32, k: u32, n: u32) -> vec4<f32> {
  if (B_MODE == 0u) {
    if (K4) { return b4[(off + k * params.n + min(n, params.n - 4u)) >> 2u]; }
    let v = b4[(off + min(k, params.k - 1u) * params.n + min(n, params.n - 4u)) >> 2u];
    return select(vec4<f32>(0.0), v, k < params.k);
  }
  return vec4<f32>(b_at(off, k, n), b_at(off, k, n + 1u), b_at(off, k, n + 2u), b_at(off, k, n + 3u));
}

// B(k, n .. n+15) as four column groups.
fn b_row(off: u32, k: u32, n: u32) -> mat4x4<f32> {
  return mat4x4<f32>(b_vec(off, k, n), b_vec(off, k, n + 4u), b_vec(off, k, n + 8u), b_vec(off, k, n + 12u));
}

// Mode 1: B(k0 .. k0+3, n .. n+3) from rows n .. n+3 of the stored [N,K] matrix; column j of the
// result is B(k0+j, n .. n+3).
fn b_quad(off: u32, k0: u32, n: u32) -> mat4x4<f32> {
  let base = off + k0;
  let last = params.n - 1u;
  return transpose(mat4x4<f32>(b4[(base + min(n, last) * params.k) >> 2u], b4[(base + min(n + 1u, last) * params.k) >> 2u],
    b4[(base + min(n + 2u, last) * params.k) >> 2u], b4[(base + min(n + 3u, last) * params.k) >> 2u]));
}

// acc + a * b, column by column.
fn axpy(acc: mat4x4<f32>, a: f32, b: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(fma(vec4<f32>(a), b[0], acc[0]), fma(vec4<f32>(a), b[1], acc[1]),
    fma(vec4<f32>(a), b[2], acc[2]), fma(vec4<f32>(a), b[3], acc[3]));
}

fn store_row(coff: u32, m: u32, n0: u32, acc: mat4x4<f32>) {
  if (m >= params.m) { return; }
  let N = params.n;
  for (var c = 0u; c < 4u; c++) {
    let n = n0 + 4u * c;
    var v = acc[c];
    if (BIAS == 2u) {
      v += vec4<f32>(bias[m]);
    } else if (BIAS == 1u) {
      v += vec4<f32>(bias[min(n, N - 1u)], bias[min(n + 1u, N - 1u)], bias[min(n + 2u, N - 1u)], bias[min(n + 3u, N - 1u)]);
    }
    let o = coff + m * N + n;
    if (C_VEC) {
      if (n < N) { c4[o >> 2u] = v; }
    } else {
      for (var i = 0u; i < 4u; i++) {
        if (n + i < N) { c4[(o + i) >> 2u][(o + i) & 3u] = v[i]; }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let K = params.k;
  let m0 = wid.y * RM;
  let n0 = (wid.x * WG + lid.x) * RN;
  let z = wid.z + params.z0;
  let aoff = z * params.a_bstride;
  let boff = z * params.b_bstride;
  let coff = z * params.c_bstride;

  var c0 = mat4x4<f32>();
  var c1 = mat4x4<f32>();
  var c2 = mat4x4<f32>();
  var c3 = mat4x4<f32>();
  var c4_ = mat4x4<f32>();
  var c5 = mat4x4<f32>();
  var c6 = mat4x4<f32>();
  var c7 = mat4x4<f32>();
  // Two loop levels keep each loop far below lavapipe's 65535-iteration limit.
  for (var kc = 0u; kc < K; kc += 65536u) {
    let kend = min(kc + 65536u, K);
    for (var k0 = kc; k0 < kend; k0 += 4u) {
      var b0: mat4x4<f32>;
      var b1: mat4x4<f32>;
      var b2: mat4x4<f32>;
      var b3: mat4x4<f32>;
      if (B_MODE == 1u) {
        let q0 = b_quad(boff, k0, n0);
        let q1 = b_quad(boff, k0, n0 + 4u);
        let q2 = b_quad(boff, k0, n0 + 8u);
        let q3 = b_quad(boff, k0, n0 + 12u);
        b0 = mat4x4<f32>(q0[0], q1[0], q2[0], q3[0]);
        b1 = mat4x4<f32>(q0[1], q1[1], q2[1], q3[1]);
        b2 = mat4x4<f32>(q0[2], q1[2], q2[2], q3[2]);
        b3 = mat4x4<f32>(q0[3], q1[3], q2[3], q3[3]);
      } else {
        b0 = b_row(boff, k0, n0);
        b1 = b_row(boff, k0 + 1u, n0);
        b2 = b_row(boff, k0 + 2u, n0);
        b3 = b_row(boff, k0 + 3u, n0);
      }
      var a0: vec4<f32>;
      var a1: vec4<f32>;
      var a2: vec4<f32>;
      var a3: vec4<f32>;
      var a4_: vec4<f32>;
      var a5: vec4<f32>;
      var a6: vec4<f32>;
      var a7: vec4<f32>;
      if (A_MODE == 1u) {
        let lo = a_quad(aoff, m0, k0);
        let hi = a_quad(aoff, m0 + 4u, k0);
        a0 = lo[0]; a1 = lo[1]; a2 = lo[2]; a3 = lo[3];
        a4_ = hi[0]; a5 = hi[1]; a6 = hi[2]; a7 = hi[3];
      } else {
        a0 = a_row(aoff, m0, k0);
        a1 = a_row(aoff, m0 + 1u, k0);
        a2 = a_row(aoff, m0 + 2u, k0);
        a3 = a_row(aoff, m0 + 3u, k0);
        a4_ = a_row(aoff, m0 + 4u, k0);
        a5 = a_row(aoff, m0 + 5u, k0);
        a6 = a_row(aoff, m0 + 6u, k0);
        a7 = a_row(aoff, m0 + 7u, k0);
      }
      // k outermost, rows inner: consecutive FMAs update different accumulators, so no FMA
      // waits on the one before it.
      c0 = axpy(c0, a0.x, b0); c1 = axpy(c1, a1.x, b0); c2 = axpy(c2, a2.x, b0); c3 = axpy(c3, a3.x, b0);
      c4_ = axpy(c4_, a4_.x, b0); c5 = axpy(c5, a5.x, b0); c6 = axpy(c6, a6.x, b0); c7 = axpy(c7, a7.x, b0);
      c0 = axpy(c0, a0.y, b1); c1 = axpy(c1, a1.y, b1); c2 = axpy(c2, a2.y, b1); c3 = axpy(c3, a3.y, b1);
      c4_ = axpy(c4_, a4_.y, b1); c5 = axpy(c5, a5.y, b1); c6 = axpy(c6, a6.y, b1); c7 = axpy(c7, a7.y, b1);
      c0 = axpy(c0, a0.z, b2); c1 = axpy(c1, a1.z, b2); c2 = axpy(c2, a2.z, b2); c3 = axpy(c3, a3.z, b2);
      c4_ = axpy(c4_, a4_.z, b2); c5 = axpy(c5, a5.z, b2); c6 = axpy(c6, a6.z, b2); c7 = axpy(c7, a7.z, b2);
      c0 = axpy(c0, a0.w, b3); c1 = axpy(c1, a1.w, b3); c2 = axpy(c2, a2.w, b3); c3 = axpy(c3, a3.w, b3);
      c4_ = axpy(c4_, a4_.w, b3); c5 = axpy(c5, a5.w, b3); c6 = axpy(c6, a6.w, b3); c7 = axpy(c7, a7.w, b3);
    }
  }
  store_row(coff, m0, n0, c0);
  store_row(coff, m0 + 1u, n0, c1);
  store_row(coff, m0 + 2u, n0, c2);
  store_row(coff, m0 + 3u, n0, c3);
  store_row(coff, m0 + 4u, n0, c4_);
  store_row(coff, m0 + 5u, n0, c5);
  store_row(coff, m0 + 6u, n0, c6);
  store_row(coff, m0 + 7u, n0, c7);
}
