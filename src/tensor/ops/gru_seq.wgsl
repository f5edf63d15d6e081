// A GRU's recurrence over time in one dispatch (forward) and one (backward): the per-frame
// loop of the victims (VSFA's GRU over frame features) as two kernels instead of ~30 dispatches
// per frame. Gate order r, z, n as PyTorch's torch.nn.GRU. The input projections
// gi = W_ih x_t + b_ih of all frames are one matrix product before this kernel (src/nn/gru.ts).
//
//   gh = W_hh h + b_hh;  r = σ(gi_r + gh_r);  z = σ(gi_z + gh_z);  n = tanh(gi_n + r ⊙ gh_n)
//   h' = (1 − z) ⊙ n + z ⊙ h
//
// One workgroup per sequence (batch item, workgroup_id.x), one invocation per hidden unit j
// (params.hid <= WG); the state lives in workgroup memory between steps (barriers around each
// write). Forward buffers (f32): b1 gi [B,T,3H], b2 h0 [B,H], b3 whh [3H,H], b4 bhh [3H],
// b5 hs [B,T,H].
//
// gru_seq_bwd runs the steps in reverse, recomputing each step's gates from gi, the previous
// state (hs of the step before, or h0) and W_hh (nothing is kept between the passes, as in the
// fused ConvGRU gates). From dhs [B,T,H] (b1, the gradient of every output) it writes into b7,
// one after the other: dgi [B,T,3H] (the gradient of the gate pre-activations on the input
// side), dgh [B,T,3H] (on the hidden side: r and z as dgi, n as dgi_n ⊙ r) and dh0 [B,H]; the
// host turns them into the gradients of x, W_ih, b_ih, W_hh, b_hh with matrix products and
// sums. Backward buffers: b1 dhs, b2 gi, b3 whh, b4 bhh, b5 hs, b6 h0, b7 out.
// Loops: T steps of one (forward) or two (backward) H-long loops per invocation; the host splits
// longer sequences so that T * (2H + 2) stays at half of lavapipe's 65535 iterations.

struct Params {
  batch: u32,
  steps: u32,
  hid: u32,
  has_bias: u32,
}

// Bindings (src/tensor/ops/_kernels.ts): params, b1 .. b7 (f32 arrays), as above.

const WG: u32 = {{WG|64}}u;

var<workgroup> hsh: array<f32, WG>;
var<workgroup> gsh: array<f32, 3 * WG>;

fn sigmoid(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

// Unit j's hidden-side gate pre-activations (W_hh h + b_hh for r, z, n) from the state in hsh.
// W_hh is b3 and b_hh b4 in both entry points.
fn hidden_gates(j: u32, H: u32) -> vec3<f32> {
  var gh = vec3<f32>(0.0);
  if (params.has_bias != 0u) {
    gh = vec3<f32>(b4[j], b4[H + j], b4[2u * H + j]);
  }
  for (var k = 0u; k < H; k++) {
    let hk = hsh[k];
    gh = fma(vec3<f32>(b3[j * H + k], b3[(H + j) * H + k], b3[(2u * H + j) * H + k]), vec3<f32>(hk), gh);
  }
  return gh;
}

@compute @workgroup_size(WG)
fn gru_seq_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let j = lid.x;
  let H = params.hid;
  let on = j < H;
  var h = 0.0;
  if (on) { h = b2[b * H + j]; }
  hsh[j] = h;
  workgroupBarrier();
  for (var t = 0u; t < params.steps; t++) {
    if (on) {
      let gh = hidden_gates(j, H);
      let gi = (b * params.steps + t) * 3u * H;
      let r = sigmoid(b1[gi + j] + gh.x);
      let z = sigmoid(b1[gi + H + j] + gh.y);
      let n = tanh(b1[gi + 2u * H + j] + r * gh.z);
      h = n + z * (h - n);
      b5[(b * params.steps + t) * H + j] = h;
    }
    workgroupBarrier();
    hsh[j] = h;
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn gru_seq_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let j = lid.x;
  let H = params.hid;
  let T = params.steps;
  let on = j < H;
  let dgh_base = params.batch * T * 3u * H; // dgh after dgi in b7, then dh0
  var dh = 0.0;
  for (var s = 0u; s < T; s++) {
    let t = T - 1u - s;
    let o = b * T + t;
    // The previous state of the whole layer (this step's input), into workgroup memory.
    var hpj = 0.0;
    if (on) {
      if (t > 0u) { hpj = b5[(o - 1u) * H + j]; } else { hpj = b6[b * H + j]; }
    }
    hsh[j] = hpj;
    workgroupBarrier();
    var dr = 0.0;
    var dz = 0.0;
    var dghn = 0.0;
    var direct = 0.0;
    if (on) {
      let gh = hidden_gates(j, H);
      let ghn = gh.z;
      let g = o * 3u * H;
      let r = sigmoid(b2[g + j] + gh.x);
      let z = sigmoid(b2[g + H + j] + gh.y);
      let n = tanh(b2[g + 2u * H + j] + r * ghn);
      dh += b1[o * H + j];
      let dnp = dh * (1.0 - z) * (1.0 - n * n);
      dr = dnp * ghn * r * (1.0 - r);
      dz = dh * (hpj - n) * z * (1.0 - z);
      dghn = dnp * r;
      direct = dh * z;
      b7[g + j] = dr;
      b7[g + H + j] = dz;
      b7[g + 2u * H + j] = dnp;
      b7[dgh_base + g + j] = dr;
      b7[dgh_base + g + H + j] = dz;
      b7[dgh_base + g + 2u * H + j] = dghn;
    }
    gsh[j] = dr;
    gsh[WG + j] = dz;
    gsh[2u * WG + j] = dghn;
    workgroupBarrier();
    if (on) {
      var acc = direct;
      for (var k = 0u; k < H; k++) {
        acc = fma(gsh[k], b3[k * H + j], acc);
        acc = fma(gsh[WG + k], b3[(H + k) * H + j], acc);
        acc = fma(gsh[2u * WG + k], b3[(2u * H + k) * H + j], acc);
      }
      dh = acc;
    }
    workgroupBarrier();
  }
  if (on) { b7[2u * dgh_base + b * H + j] = dh; }
}
