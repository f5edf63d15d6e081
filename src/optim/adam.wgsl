// Optimiser updates, in place, one dispatch per parameter (src/optim/optimizers.ts).
//
// Both follow PyTorch's single-tensor torch.optim.Adam / torch.optim.SGD formulas. Scalars that
// depend only on the step count (bias corrections) are computed on the CPU in float64 and passed
// in as floats.
//
// Bindings: 1 param, 2 grad, 3 first state (Adam m / SGD momentum buffer), 4 Adam v.
// Indexing: a 1-D range of n items over a 2-D grid of 256-wide workgroups (see grid1d).

struct Params {
  n: u32,
  // SGD: 1 on a parameter's first step (the momentum buffer starts as the gradient), 1 for
  // Nesterov in `nesterov`. Unused by Adam.
  first: u32,
  nesterov: u32,
  _pad: u32,
  lr: f32,
  // Adam: beta1, 1 - beta1, beta2, 1 - beta2; SGD: momentum, 1 - dampening, unused, unused.
  // The complements are computed on the CPU in float64 (as PyTorch does with Python floats):
  // 1 - f32(0.999) in float32 would be off by 1.3e-5 relative.
  c0: f32,
  c1: f32,
  c2: f32,
  c3: f32,
  eps: f32,
  weight_decay: f32,
  // Adam: lr / (1 - beta1^t) and sqrt(1 - beta2^t).
  step_size: f32,
  bc2_sqrt: f32,
}

// Bindings (ADAM in src/optim/optimizers.ts): params, param, grad, state1, state2 (f32 arrays).

// Adam (Kingma and Ba), as torch.optim.Adam without amsgrad:
//   g = grad + wd * p
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let p = param[i];
  let g = grad[i] + params.weight_decay * p;
  let m = params.c0 * state1[i] + params.c1 * g;
  let v = params.c2 * state2[i] + params.c3 * g * g;
  state1[i] = m;
  state2[i] = v;
  param[i] = p - params.step_size * m / (sqrt(v) / params.bc2_sqrt + params.eps);
}

// SGD with optional momentum, dampening and Nesterov momentum, as torch.optim.SGD:
//   g = grad + wd * p
//   b = g on the first step, else momentum * b + (1 - dampening) * g
//   g = g + momentum * b (Nesterov) or b
//   p = p - lr * g
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let momentum = params.c0;
  let p = param[i];
  var g = grad[i] + params.weight_decay * p;
  var b = g;
  if (params.first == 0u) {
    b = momentum * state1[i] + params.c1 * g;
  }
  state1[i] = b;
  if (params.nesterov != 0u) {
    g = g + momentum * b;
  } else {
    g = b;
  }
  param[i] = p - params.lr * g;
}

// Plain SGD (no momentum buffer): p = p - lr * (grad + wd * p).
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg, 256u);
  if (i >= params.n) { return; }
  let p = param[i];
  param[i] = p - params.lr * (grad[i] + params.weight_decay * p);
}
