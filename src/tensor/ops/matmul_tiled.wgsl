// Batched matrix product C[b] = op(A[b]) * op(B[b]) (+ bias) with workgroup-memory tiles: the
// variant for GPUs (src/gpu/device.ts `kernelFamily()` "gpu"); matmul.wgsl is the one for CPU
// adapters, where workgroup memory does not pay (see its header).
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of C (the tile, its workgroup
// memory and its inner loop: tiles.wgsl, put before this file). Per step of TK = 16 along k
// it stages A's 64 x 16 and B's 16 x 64 tiles in workgroup memory (each invocation loads 4 values
// of each, consecutive invocations reading consecutive addresses of the stored layout), then
// every invocation accumulates its 4 x 4 outputs, rows lid.y + 16 i and columns lid.x + 16 j, so
// that a warp's shared-memory reads are broadcasts or consecutive. Bounds are checked in the
// loads (zeros past M, N, K) and in the stores.
//
// Specialisation ({{...}}, set by src/tensor/ops/matmul.ts): A_TRANS, B_TRANS (storage
// transposed: A as [K,M], B as [N,K]); BIAS 0: none, 1: bias[n] on every row, 2: bias[m] on
// every column. Same parameters as matmul.wgsl.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batch: u32,
  a_bstride: u32, // elements between batches of A (0: broadcast)
  b_bstride: u32,
  c_bstride: u32,
  z0: u32, // first batch of this dispatch
}

// Bindings (src/tensor/ops/_kernels.ts): params, a, b, c, bias (f32 arrays).

const A_TRANS: bool = {{A_TRANS|false}};
const B_TRANS: bool = {{B_TRANS|false}};
const BIAS: u32 = {{BIAS|0}}u;


fn a_at(base: u32, m: u32, k: u32) -> f32 {
  if (m >= params.m || k >= params.k) { return 0.0; }
  if (A_TRANS) { return a[base + k * params.m + m]; }
  return a[base + m * params.k + k];
}

fn b_at(base: u32, k: u32, n: u32) -> f32 {
  if (k >= params.k || n >= params.n) { return 0.0; }
  if (B_TRANS) { return b[base + n * params.k + k]; }
  return b[base + k * params.n + n];
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let z = params.z0 + wid.z;
  let abase = z * params.a_bstride;
  let bbase = z * params.b_bstride;
  let cbase = z * params.c_bstride;
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  let tid = lid.y * 16u + lid.x;
  var acc: array<vec4<f32>, 4>; // acc[i][j]: row lid.y + 16 i, column lid.x + 16 j
  for (var k0 = 0u; k0 < params.k; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let e = tid + 256u * r;
      // Consecutive invocations along the stored layout's contiguous axis.
      var mm = e / TK;
      var ka = e % TK;
      if (A_TRANS) { mm = e % TM; ka = e / TM; }
      As[ka * TM + mm] = a_at(abase, m0 + mm, k0 + ka);
      var nn = e % TN;
      var kb = e / TN;
      if (B_TRANS) { nn = e / TK; kb = e % TK; }
      Bs[kb * TN + nn] = b_at(bbase, k0 + kb, n0 + nn);
    }
    workgroupBarrier();
    tile_step(&acc, lid);
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + 16u * i;
    if (m >= params.m) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + 16u * j;
      if (n >= params.n) { continue; }
      var v = acc[i][j];
      if (BIAS == 1u) { v += bias[n]; }
      if (BIAS == 2u) { v += bias[m]; }
      c[cbase + m * params.n + n] = v;
    }
  }
}
