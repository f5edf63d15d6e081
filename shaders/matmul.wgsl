// Batched matrix product C[b] = op(A[b]) * op(B[b]) (+ bias along columns), register-blocked.
//
// Each invocation computes an RM x (4*RN4) block of C in registers; a workgroup is WG
// invocations side by side along the columns (tile RM x 4*RN4*WG). There is no workgroup-shared
// tile: on lavapipe (llvmpipe) a workgroup's invocations are SIMD lanes and every lane-varying
// load, shared or global, is fetched lane by lane, so what pays is many FMAs per loaded value
// (large per-lane blocks) and 16-byte vec4 loads rather than scalar ones.
//
// The reduction runs over k in steps of 4. Per step a lane loads its A fragment af[r] =
// A(m0+r, k..k+3) and B fragment bf[j][c] = B(k+j, n0+4c..n0+4c+3), then does 4*RM*RN4 vec4 FMAs.
//
// Specialisation ({{...}}, set by src/tensor/ops/matmul.ts):
//   RM, RN4, WG   block rows, vec4 column groups per invocation, invocations per workgroup
//   A_MODE        0: A is [M,K] row-major and K % 4 == 0 (vec4 loads along k)
//                 1: A is stored transposed [K,M] and M % 4 == 0 (vec4 loads along m; RM % 4 == 0)
//                 2: any layout (scalar loads; transposition from A_TRANS)
//   B_MODE        0: B is [K,N] row-major and N % 4 == 0 (vec4 loads along n)
//                 1: B is stored transposed [N,K] and K % 4 == 0 (vec4 loads along k)
//                 2: any layout (scalar loads; transposition from B_TRANS)
//   A_TRANS, B_TRANS   storage transposed (used by mode 2)
//   C_VEC         N % 4 == 0 (vec4 stores)
//   BIAS          add bias[n] to every row
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

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

const RM: u32 = {{RM|8}}u;
const RN4: u32 = {{RN4|4}}u;
const WG: u32 = {{WG|8}}u;
const A_MODE: u32 = {{A_MODE|2}}u;
const B_MODE: u32 = {{B_MODE|2}}u;
const A_TRANS: bool = {{A_TRANS|false}};
const B_TRANS: bool = {{B_TRANS|false}};
const C_VEC: bool = {{C_VEC|false}};
const BIAS: bool = {{BIAS|false}};

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

@compute @workgroup_size(WG)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params.m;
  let N = params.n;
  let K = params.k;
  let m0 = wid.y * RM;
  let n0 = (wid.x * WG + lid.x) * (4u * RN4);
  let z = wid.z + params.z0;
  let aoff = z * params.a_bstride;
  let boff = z * params.b_bstride;
  let coff = z * params.c_bstride;

  var acc: array<vec4<f32>, RM * RN4>;
  for (var i = 0u; i < RM * RN4; i++) { acc[i] = vec4<f32>(0.0); }
  var af: array<vec4<f32>, RM>;
  var bf: array<vec4<f32>, 4u * RN4>;

  // Clamped row and column starts keep vec4 loads inside the matrices; what they compute for
  // rows or columns past the edge is never stored.
  for (var k0 = 0u; k0 < K; k0 += 4u) {
    // A fragment: af[r] = A(m0 + r, k0 .. k0 + 3)
    if (A_MODE == 0u) {
      for (var r = 0u; r < RM; r++) {
        let m = min(m0 + r, M - 1u);
        af[r] = a4[(aoff + m * K + k0) >> 2u];
      }
    } else if (A_MODE == 1u) {
      for (var j = 0u; j < 4u; j++) {
        let k = min(k0 + j, K - 1u);
        let keep = select(0.0, 1.0, k0 + j < K);
        for (var r4 = 0u; r4 < RM / 4u; r4++) {
          let m = min(m0 + 4u * r4, M - 4u);
          let v = a4[(aoff + k * M + m) >> 2u] * keep;
          af[4u * r4][j] = v.x;
          af[4u * r4 + 1u][j] = v.y;
          af[4u * r4 + 2u][j] = v.z;
          af[4u * r4 + 3u][j] = v.w;
        }
      }
    } else {
      for (var r = 0u; r < RM; r++) {
        for (var j = 0u; j < 4u; j++) { af[r][j] = a_at(aoff, m0 + r, k0 + j); }
      }
    }
    // B fragment: bf[j * RN4 + c] = B(k0 + j, n0 + 4c .. n0 + 4c + 3)
    if (B_MODE == 0u) {
      for (var j = 0u; j < 4u; j++) {
        let k = min(k0 + j, K - 1u);
        let keep = select(0.0, 1.0, k0 + j < K);
        for (var c = 0u; c < RN4; c++) {
          let n = min(n0 + 4u * c, N - 4u);
          bf[j * RN4 + c] = b4[(boff + k * N + n) >> 2u] * keep;
        }
      }
    } else if (B_MODE == 1u) {
      for (var c = 0u; c < RN4; c++) {
        for (var i = 0u; i < 4u; i++) {
          let n = min(n0 + 4u * c + i, N - 1u);
          let v = b4[(boff + n * K + k0) >> 2u];
          bf[c][i] = v.x;
          bf[RN4 + c][i] = v.y;
          bf[2u * RN4 + c][i] = v.z;
          bf[3u * RN4 + c][i] = v.w;
        }
      }
    } else {
      for (var j = 0u; j < 4u; j++) {
        for (var c = 0u; c < RN4; c++) {
          for (var i = 0u; i < 4u; i++) {
            bf[j * RN4 + c][i] = b_at(boff, k0 + j, n0 + 4u * c + i);
          }
        }
      }
    }
    for (var j = 0u; j < 4u; j++) {
      for (var r = 0u; r < RM; r++) {
        let a = vec4<f32>(af[r][j]);
        for (var c = 0u; c < RN4; c++) {
          acc[r * RN4 + c] = fma(a, bf[j * RN4 + c], acc[r * RN4 + c]);
        }
      }
    }
  }

  for (var r = 0u; r < RM; r++) {
    let m = m0 + r;
    if (m >= M) { break; }
    for (var c = 0u; c < RN4; c++) {
      let n = n0 + 4u * c;
      var v = acc[r * RN4 + c];
      if (BIAS) {
        for (var i = 0u; i < 4u; i++) { v[i] += bias[min(n + i, N - 1u)]; }
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
}
