// The workgroup-memory tile of the GPU kernel family (matmul_tiled.wgsl, conv2d_tiled.wgsl; the
// loader puts this file before them, see `includes` in src/tensor/ops/_kernels.ts): a workgroup of
// 16 x 16 invocations owns a TM x TN tile of C; per step of TK along the reduction the kernel
// stages A's TM x TK tile in As ([TK][TM]) and B's TK x TN tile in Bs ([TK][TN]), and
// tile_step adds their product to each invocation's 4 x 4 outputs, rows lid.y + 16 i and
// columns lid.x + 16 j (acc[i][j]), so that a warp's workgroup-memory reads are broadcasts or
// consecutive.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

fn tile_step(acc: ptr<function, array<vec4<f32>, 4>>, lid: vec3<u32>) {
  for (var kk = 0u; kk < TK; kk++) {
    let a4 = vec4<f32>(As[kk * TM + lid.y], As[kk * TM + lid.y + 16u],
      As[kk * TM + lid.y + 32u], As[kk * TM + lid.y + 48u]);
    let b4 = vec4<f32>(Bs[kk * TN + lid.x], Bs[kk * TN + lid.x + 16u],
      Bs[kk * TN + lid.x + 32u], Bs[kk * TN + lid.x + 48u]);
    (*acc)[0] = fma(vec4<f32>(a4.x), b4, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a4.y), b4, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a4.z), b4, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a4.w), b4, (*acc)[3]);
  }
}
