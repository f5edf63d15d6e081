// Fused attention forward, used by src/tensor/ops/attention.ts: for each query row,
// softmax(scale * q k^T + bias) v without writing the scores. q is [B, Nq, D], k [B, Nk, D],
// v [B, Nk, DV], out [B, Nq, DV] (B = the product of the leading axes); up to two biases, each
// read at offs[2 b + n] + i * s_ni + j * s_nj (the host's broadcast strides: 0 along broadcast
// axes), so that a bias is never materialised per matrix.
//
// Indexing: workgroup (x, y, z) serves matrix b = y + z * nwg.y (the batch over a 2-D grid of
// workgroups); each of its WG invocations owns R consecutive query rows, from
// (x * WG + lane) * R. Rows past Nq are computed as copies of the last row and not written.
//
// Why this shape (lavapipe, where a workgroup's invocations are SIMD lanes): every storage load
// is fetched lane by lane, so each loaded value must feed many FMAs. A lane keeps its R rows of
// q * scale and R output rows in registers (named vec4 variables, written out by the host:
// llvmpipe keeps dynamically indexed private arrays in memory), loads each key k_j and value v_j
// once as vec4s and uses them for all R rows. No workgroup memory, no barriers.
//
// Per row the keys go by in blocks of KB: the block's scores s_j = q . k_j + biases, their max,
// one rescale of the running sum l and the output row by exp(old max - new max) ("online"
// softmax: the row max is subtracted before every exp, so scores of 1e4 do not overflow), then
// p_j = exp(s_j - max), l += p_j, acc += p_j v_j. Keys past Nk in the last block get the score
// LOWEST, hence p = 0. The only loop is over the blocks (Nk / KB iterations).
//
// The host generates the unrolled statements (src/tensor/ops/attention.ts, fusedSource) and
// fills the placeholders SETUP (q rows, accumulators, bias offsets), BLOCK (one block of KB keys
// from j0) and STORE (the normalised rows); D and DV are the head dims.
// Storage: q4, k4, v4, out4 as vec4 arrays (the buffer pool rounds sizes up to 16 bytes; an
// element e of a row that is not vec4-aligned is read as x4[e >> 2][e & 3]), offs (u32, two per
// matrix), bias1 and bias2 (f32, or the vec4 views bias1v, bias2v where a bias is contiguous along
// the keys and its rows start on vec4s). A specialisation uses (and is given) the bindings up to
// its last bias only.
//
//   attn_fwd  reads q4, k4, v4, offs, bias1, bias2; writes out4.

const WG: u32 = {{WG|64}}u;
const R: u32 = {{R|4}}u;
const KB: u32 = {{KB|8}}u;
// Below any float32 score: the running max before the first key, and the score of a missing key.
const LOWEST: f32 = -3.0e38;

struct Params {
  nq: u32,
  nk: u32,
  batch: u32, // B
  s1i: u32,   // bias1's stride along the query axis
  s1j: u32,   // ... along the key axis
  s2i: u32,
  s2j: u32,
  scale: f32,
}

@compute @workgroup_size(WG)
fn attn_fwd(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let bw = wid.y + wid.z * nwg.y;
  let live = bw < params.batch;
  let b = min(bw, params.batch - 1u);
  let nq = params.nq;
  let nk = params.nk;
  let i0 = (wid.x * WG + lid) * R;
  let kb = b * nk * {{D|1}}u;
  let vb = b * nk * {{DV|1}}u;
{{SETUP|}}
  for (var j0 = 0u; j0 < nk; j0 = j0 + KB) {
{{BLOCK|}}
  }
{{STORE|}}
}

// The backward (one kernel object per entry point, src/tensor/ops/_kernels.ts, each with its own
// bindings; the host generates the bodies, BWD_Q and BWD_KV, and the other entries compile empty).
//
// attn_bwd_q: as attn_fwd, R query rows per invocation: g_i, delta_i = g_i . out_i, then one
// pass over the keys for the row's max and sum (lse_i = max + log sum), a second for
// p_ij = exp(s_ij - lse_i), dp_ij = g_i . v_j, ds_ij = p_ij (dp_ij - delta_i), dq_i += ds_ij k_j;
// writes dq_i * scale and stats[2 row] = lse_i, stats[2 row + 1] = delta_i.
//   reads q4, k4, v4, g4, o4 (the forward's output), offs, bias1, bias2; writes dq4, stats.
//
// attn_bwd_kv: R key rows per invocation (from (x * WG + lane) * R), k_j * scale and v_j in
// registers, one pass over the queries in blocks of KB: with the same p and ds (lse_i and
// delta_i from stats), dv_j += p_ij g_i and dk_j += ds_ij q_i (times scale when written). So dk
// and dv are sums over queries owned by one invocation: no atomics, no scores in memory.
//   reads q4, k4, v4, g4, stats, offs, bias1, bias2; writes dk4, dv4.

@compute @workgroup_size(WG)
fn attn_bwd_q(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
{{BWD_Q|}}
}

@compute @workgroup_size(WG)
fn attn_bwd_kv(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
{{BWD_KV|}}
}
