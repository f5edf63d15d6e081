// A gather of rows along the first axis and its gradient, used by src/tensor/ops/index_select.ts
// (torch.index_select(x, 0, indices)). x is [L, C] (C = the product of the other axes), the
// indices are M rows of x, the output is [M, C].
//
//   gather_fwd  src = x [L, C], table = indices [M] (u32); writes dst [M, C]:
//               dst[p, k] = src[table[p], k].
//   gather_bwd  src = g [M, C] (the output's gradient), table = the inverse map in CSR form:
//               table[0 .. L] are offsets, table[L + 1 + q] positions (the positions p with
//               indices[p] == r are table[L + 1 + table[r]] .. table[L + 1 + table[r + 1] - 1],
//               ascending); writes dst = gx [L, C]: gx[r, k] = sum over r's positions p of
//               g[p, k] (0 for a row no index names). No atomics: one invocation per element of
//               gx, summing in a fixed order (so the result is deterministic).
//
// Indexing: one invocation per output element (n of them), 64-wide workgroups over a 2-D grid
// (grid1d; i = flat_index). The backward loop over a row's positions is cut into passes of at
// most `chunk` positions (the host keeps chunk far below lavapipe's 65535-iteration loop limit):
// pass j handles positions start = j * chunk .. start + chunk - 1 of every row, writing the first
// pass's sums and adding the later ones (accumulate = 1).

struct Params {
  n: u32,          // invocations: M * C forward, L * C backward
  c: u32,          // row length C
  rows: u32,       // L (backward: where the positions start in `table`, after L + 1 offsets)
  start: u32,      // backward: first position of each row's list taken by this pass
  chunk: u32,      // backward: most positions per row in this pass
  accumulate: u32, // backward: add to dst rather than write it
}

// Bindings (src/tensor/ops/_kernels.ts, INDEX_SELECT): params, src (read-only f32), table
// (read-only u32), dst (f32).

@compute @workgroup_size(64)
fn gather_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let p = i / params.c;
  let k = i - p * params.c;
  dst[i] = src[table[p] * params.c + k];
}

@compute @workgroup_size(64)
fn gather_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 64u);
  if (i >= params.n) { return; }
  let r = i / params.c;
  let k = i - r * params.c;
  let end = table[r + 1u];
  let lo = min(table[r] + params.start, end);
  let hi = min(end, lo + params.chunk);
  let base = params.rows + 1u;
  var s = 0.0;
  for (var q = lo; q < hi; q = q + 1u) {
    s = s + src[table[base + q] * params.c + k];
  }
  if (params.accumulate != 0u) {
    dst[i] = dst[i] + s;
  } else {
    dst[i] = s;
  }
}
