// Arithmetic peak of the adapter: a measurement kernel, used only by bench/_peak.ts.
//
// Every invocation runs CHAINS independent vec4 FMA chains, a = fma(a, m, c), for `iters` loop
// trips, then writes the sum of its accumulators so that the compiler cannot remove the work.
// m and c are read from the buffer (not constants) so nothing can be folded; with m = 0.999 and
// c = 0.001 every chain converges to 1 (no overflow, no denormals).
// FLOPs per dispatch = 2 (mul + add) * 4 (lanes) * CHAINS * iters * invocations.
//
// Specialisation ({{...}} placeholders, filled by bench/_peak.ts):
//   CHAINS  independent vec4 accumulators per invocation (1 to 16)
//   WG      workgroup size
//
// On lavapipe a workgroup's invocations become SIMD lanes of the CPU (8 f32 lanes at 256 bits),
// so one vec4 chain is 4 vector registers: CHAINS trades latency hiding against register spills,
// and the benchmark sweeps it.

struct Params {
  iters: u32,
  n: u32,
  _pad0: u32,
  _pad1: u32,
}

// Bindings (PEAK in bench/_peak.ts): params, io (vec4<f32>): io[0] = m, io[1] = c,
// io[2 + i] = result of invocation i.

const CHAINS: u32 = {{CHAINS|8}}u;
const WG: u32 = {{WG|64}}u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, WG);
  let m = io[0];
  let c = io[1];
  let s = f32(i % 1024u) * 1e-4;
  var a0 = vec4<f32>(s, s + 0.01, s + 0.02, s + 0.03);
  var a1 = a0 + 0.1;
  var a2 = a0 + 0.2;
  var a3 = a0 + 0.3;
  var a4 = a0 + 0.4;
  var a5 = a0 + 0.5;
  var a6 = a0 + 0.6;
  var a7 = a0 + 0.7;
  var a8 = a0 - 0.1;
  var a9 = a0 - 0.2;
  var a10 = a0 - 0.3;
  var a11 = a0 - 0.4;
  var a12 = a0 - 0.5;
  var a13 = a0 - 0.6;
  var a14 = a0 - 0.7;
  var a15 = a0 - 0.8;
  // The CHAINS tests are on a constant: the compiler drops the unused chains.
  for (var k = 0u; k < params.iters; k++) {
    a0 = fma(a0, m, c);
    if (CHAINS > 1u) { a1 = fma(a1, m, c); }
    if (CHAINS > 2u) { a2 = fma(a2, m, c); }
    if (CHAINS > 3u) { a3 = fma(a3, m, c); }
    if (CHAINS > 4u) { a4 = fma(a4, m, c); }
    if (CHAINS > 5u) { a5 = fma(a5, m, c); }
    if (CHAINS > 6u) { a6 = fma(a6, m, c); }
    if (CHAINS > 7u) { a7 = fma(a7, m, c); }
    if (CHAINS > 8u) { a8 = fma(a8, m, c); }
    if (CHAINS > 9u) { a9 = fma(a9, m, c); }
    if (CHAINS > 10u) { a10 = fma(a10, m, c); }
    if (CHAINS > 11u) { a11 = fma(a11, m, c); }
    if (CHAINS > 12u) { a12 = fma(a12, m, c); }
    if (CHAINS > 13u) { a13 = fma(a13, m, c); }
    if (CHAINS > 14u) { a14 = fma(a14, m, c); }
    if (CHAINS > 15u) { a15 = fma(a15, m, c); }
  }
  let sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) +
    ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
  if (i < params.n) {
    io[2u + i] = sum;
  }
}
